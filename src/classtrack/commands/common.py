"""Helpers shared by the subcommands (they live below the command layer,
in ``classtrack._dumps``, as the reports use them too)."""
import os
import shutil
from typing import Optional, TextIO

from classtrack._dumps import UserError, load_stats, progress

__all__ = ["UserError", "load_stats", "progress", "width"]


def width(out: TextIO) -> Optional[int]:
    """The line length to fit: $COLUMNS if set, the terminal's width on a
    terminal, else None -- a pipe or a file gets whole lines."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    return shutil.get_terminal_size().columns if tty else None
