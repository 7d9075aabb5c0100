"""Helpers shared by the subcommands."""
import os
import sys
from typing import Any


class UserError(Exception):
    """A problem with what the user asked for: reported in one line, exit 1."""


def progress(message: str) -> None:
    """Progress for long work, on stderr, only when it is a terminal."""
    if sys.stderr.isatty():
        sys.stderr.write("classtrack: %s\n" % message)
        sys.stderr.flush()


def load_stats(path: str, cls: Any) -> Any:
    """A Stats subclass loaded from a dump, or UserError naming the problem."""
    from classtrack import DumpError
    if not os.path.exists(path):
        raise UserError("no such dump file: %s" % path)
    if os.path.isdir(path):
        raise UserError("%s is a directory, not a dump file" % path)
    try:
        size = os.path.getsize(path)
        if size > 8 << 20:
            progress("loading %s (%.0f MB)..." % (path, size / 1048576.0))
        return cls(filename=path)
    except DumpError as exc:
        raise UserError("cannot read %s: %s" % (path, exc)) from None
    except OSError as exc:
        raise UserError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
