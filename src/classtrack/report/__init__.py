"""Report rendering: data in, text out; never gathers data itself."""
