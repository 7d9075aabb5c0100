"""Helpers shared by the subcommands (they live below the command layer,
in ``classtrack._dumps``, as the reports use them too)."""
import argparse
import contextlib
import os
import shutil
import sys
from typing import Iterator, Optional, TextIO

from classtrack._dumps import UserError, load_stats, progress
from classtrack._safefile import RefusedPath

__all__ = ["UserError", "load_stats", "progress", "width", "positive_int", "writing_report"]


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a whole number: %r" % text) from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1, not %d" % n)
    return n


@contextlib.contextmanager
def writing_report(out: str) -> Iterator[None]:
    """Around the writing of a report file: a refused path or a failed
    write becomes a UserError naming it; success is said on stderr."""
    try:
        yield
    except RefusedPath as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError("cannot write %s: %s" % (out, exc.strerror or exc)) from None
    print("classtrack: report written to %s" % os.path.abspath(out), file=sys.stderr)


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
