"""Reading dump files for the command line and the reports: the checks on
a dump's path and the one-line errors, in one place.

``UserError`` is a problem with what the user asked for: the command line
reports it in one line and exits with status 1.
"""
import os
import sys
from typing import Any, Callable, Dict, Optional, TypeVar

from classtrack._core import DumpError

T = TypeVar("T")
_BIG = 8 << 20      # bytes: over this, loading says so (on a terminal)


class UserError(Exception):
    """A problem with what the user asked for: reported in one line, exit 1."""


def progress(message: str) -> None:
    """Progress for long work, on stderr, only when it is a terminal."""
    if sys.stderr.isatty():
        sys.stderr.write("classtrack: %s\n" % message)
        sys.stderr.flush()


def read_dump(path: str, reader: Callable[[str], T]) -> T:
    """``reader(path)`` for an existing dump file, or UserError naming the
    problem (no such file, a directory, unreadable, not a valid dump)."""
    if not os.path.exists(path):
        raise UserError("no such dump file: %s" % path)
    if os.path.isdir(path):
        raise UserError("%s is a directory, not a dump file" % path)
    try:
        size = os.path.getsize(path)
        if size > _BIG:
            progress("loading %s (%.0f MB)..." % (path, size / 1048576.0))
        return reader(path)
    except DumpError as exc:
        raise UserError("cannot read %s: %s" % (path, exc)) from None
    except OSError as exc:
        raise UserError("cannot read %s: %s" % (path, exc.strerror or exc)) from None


def load_stats(path: str, cls: Any) -> Any:
    """A Stats subclass loaded from a dump, or UserError naming the problem;
    a dump its program never finished is said so on stderr."""
    stats = read_dump(path, lambda p: cls(filename=p))
    say_unfinished(path, getattr(stats, "dump_info", None))
    return stats


def unfinished(path: str, info: Optional[Dict[str, Any]]) -> Optional[str]:
    """One line for a streamed dump that ends without its end marker (its
    program was killed, or is still running), else None."""
    if not info or not info.get("streamed") or info.get("complete"):
        return None
    dropped = info.get("dropped", 0)
    return ("%s was not finished (its program was killed, or is still running): read up "
            "to its last complete snapshot%s" % (
                path, "; %s bytes of an incomplete one left out" % format(dropped, ",")
                if dropped else ""))


def say_unfinished(path: str, info: Optional[Dict[str, Any]]) -> None:
    line = unfinished(path, info)
    if line:
        sys.stderr.write("classtrack: %s\n" % line)
