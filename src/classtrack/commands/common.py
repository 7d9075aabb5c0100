"""Helpers shared by the subcommands (they live below the command layer,
in ``classtrack._dumps``, as the reports use them too)."""
from classtrack._dumps import UserError, load_stats, progress

__all__ = ["UserError", "load_stats", "progress"]
