"""Memory of the current process -- a drop-in for ``pympler.process``.

``ProcessMemoryInfo()`` reads the process's memory once, at creation
(``update()`` reads it again).  Fields as in Pympler: ``pagesize``, ``vsz``,
``rss``, ``pagefaults``, ``data_segment``, ``code_segment``,
``shared_segment``, ``stack_segment``, ``available``, ``os_specific``; and
more: ``rss_peak`` (VmHWM), ``vsz_peak`` (VmPeak), and ``uss``/``pss``/
``swap`` (read from ``/proc/self/smaps_rollup`` when first asked for, as
that read costs more).  On Linux everything is read in C from ``/proc``
with no process spawned (about 10 us); elsewhere ``getrusage`` gives the
peak RSS and ``available`` is False, since current sizes are unknown.
"""

from __future__ import annotations

import os
import threading
from typing import Iterable, List, Optional, Tuple

from classtrack import _core

__all__ = ["ProcessMemoryInfo", "is_available", "ThreadInfo",
           "get_current_threads", "get_current_thread_id"]

_LABELS = (
    ("vsz", "Virtual memory size"),
    ("rss", "Resident set size"),
    ("rss_peak", "Peak resident set size"),
    ("vsz_peak", "Peak virtual memory size"),
    ("data_segment", "Size of data segment"),
    ("code_segment", "Size of code segment"),
    ("shared_segment", "Shared library code size"),
    ("stack_segment", "Size of stack segment"),
    ("locked", "Locked memory size"),
    ("page_tables", "Page table entries size"),
)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return "%d %s" % (n, unit) if unit == "B" else "%.2f %s" % (n, unit)
        n /= 1024.0
    return str(n)


class ProcessMemoryInfo:
    """Memory sizes of this process at the time of creation or update()."""

    try:
        pagesize = os.sysconf("SC_PAGESIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover
        pagesize = 4096

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.vsz = self.rss = self.rss_peak = self.vsz_peak = 0
        self.data_segment = self.code_segment = 0
        self.shared_segment = self.stack_segment = 0
        self.locked = self.page_tables = 0
        self.pagefaults = 0
        self._smaps: Optional[Tuple[int, int, int, int]] = None
        self.available = self.update()

    @classmethod
    def from_fields(cls, fields: Optional[Tuple[int, ...]]) -> "ProcessMemoryInfo":
        """Numbers recorded earlier (as a dump keeps them), not read now:
        (vsz, rss, rss_peak, vsz_peak, data, code, lib, stack, locked,
        page_tables, major_faults), or None for unavailable."""
        self = cls.__new__(cls)
        self.pid = 0
        self._frozen = True
        self._smaps = (0, 0, 0, 0)
        names = ("vsz", "rss", "rss_peak", "vsz_peak", "data_segment", "code_segment",
                 "shared_segment", "stack_segment", "locked", "page_tables", "pagefaults")
        for name, value in zip(names, fields or (0,) * len(names)):
            setattr(self, name, int(value))
        self.available = fields is not None
        return self

    def update(self) -> bool:
        """Read the numbers again; True when they are the real current ones."""
        self._smaps = None
        status = _core.process_status()
        if status is None:
            return self._update_rusage()
        (self.vsz, self.rss, self.rss_peak, self.vsz_peak, self.data_segment,
         self.code_segment, self.shared_segment, self.stack_segment, self.locked,
         self.page_tables, self.pagefaults) = status
        return True

    def _update_rusage(self) -> bool:
        try:
            import resource  # Unix only: a fallback where /proc is missing
        except ImportError:  # pragma: no cover
            return False
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # ru_maxrss is the peak, in KiB on Linux and bytes on macOS: the
        # current sizes stay unknown, so the numbers are not "available"
        scale = 1 if os.uname().sysname == "Darwin" else 1024
        self.rss_peak = usage.ru_maxrss * scale
        self.pagefaults = usage.ru_majflt
        return False

    def _rollup(self) -> Tuple[int, int, int, int]:
        if self._smaps is None:
            self._smaps = _core.process_smaps() or (0, 0, 0, 0)
        return self._smaps

    @property
    def pss(self) -> int:
        """Proportional set size: RSS with shared pages split among sharers."""
        return self._rollup()[1]

    @property
    def uss(self) -> int:
        """Unique set size: memory freed if the process ended now."""
        return self._rollup()[2]

    @property
    def swap(self) -> int:
        return self._rollup()[3]

    @property
    def os_specific(self) -> List[Tuple[str, str]]:
        """(label, human-readable size) pairs, as Pympler lists them."""
        if not self.available:
            return []
        return [(label, _human(getattr(self, attr))) for attr, label in _LABELS]

    def __repr__(self) -> str:
        return "<%s vsz=%d rss=%d>" % (type(self).__name__, self.vsz, self.rss)

    def __sub__(self, other: "ProcessMemoryInfo") -> Iterable[Tuple[str, int]]:
        return [
            ("Resident set size (delta)", self.rss - other.rss),
            ("Virtual size (delta)", self.vsz - other.vsz),
        ]

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k != "_smaps"}
        state["_smaps"] = None
        return state


def is_available() -> bool:
    """True when current process memory can be read on this platform."""
    return _core.process_status() is not None


class ThreadInfo:
    """Information about an active thread."""

    def __init__(self, thread: threading.Thread) -> None:
        self.ident = thread.ident
        self.name = thread.name
        self.daemon = thread.daemon


def get_current_threads() -> Iterable[ThreadInfo]:
    return [ThreadInfo(t) for t in threading.enumerate()]


def get_current_thread_id() -> int:
    return threading.get_ident()
