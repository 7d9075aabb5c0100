"""Subcommands of the classtrack command line, one module each."""
