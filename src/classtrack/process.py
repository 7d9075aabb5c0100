"""Memory of the current process -- a drop-in for ``pympler.process``.

``ProcessMemoryInfo()`` reads the process's memory once, at creation
(``update()`` reads it again).  Fields as in Pympler: ``pagesize``, ``vsz``,
``rss``, ``pagefaults``, ``data_segment``, ``code_segment``,
``shared_segment``, ``stack_segment``, ``available``, ``os_specific``; plus
``rss_peak`` (VmHWM).  On Linux everything comes from ``/proc/self/stat``
and ``/proc/self/status`` with no process spawned; elsewhere ``getrusage``
fills what it can and ``available`` says whether the numbers are real.
"""

from __future__ import annotations

import os
import threading
from typing import Iterable, List, Tuple

__all__ = ["ProcessMemoryInfo", "is_available", "ThreadInfo",
           "get_current_threads", "get_current_thread_id"]

_STATUS_LABELS = {
    "VmPeak": "Peak virtual memory size",
    "VmSize": "Virtual memory size",
    "VmLck": "Locked memory size",
    "VmHWM": "Peak resident set size",
    "VmRSS": "Resident set size",
    "VmStk": "Size of stack segment",
    "VmData": "Size of data segment",
    "VmExe": "Size of code segment",
    "VmLib": "Shared library code size",
    "VmPTE": "Page table entries size",
}


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return "%d %s" % (n, unit) if unit == "B" else "%.2f %s" % (n, unit)
        n /= 1024.0  # type: ignore[assignment]
    return str(n)


class ProcessMemoryInfo:
    """Memory sizes of this process at the time of creation or update()."""

    try:
        pagesize = os.sysconf("SC_PAGESIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover
        pagesize = 4096

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.rss = 0
        self.rss_peak = 0
        self.vsz = 0
        self.pagefaults = 0
        self.os_specific: List[Tuple[str, str]] = []
        self.data_segment = 0
        self.code_segment = 0
        self.shared_segment = 0
        self.stack_segment = 0
        self.available = self.update()

    def __repr__(self) -> str:
        return "<%s vsz=%d rss=%d>" % (type(self).__name__, self.vsz, self.rss)

    def update(self) -> bool:
        """Read the numbers again; True when they are real."""
        try:
            with open("/proc/self/stat", "rb") as f:
                stat = f.read()
            with open("/proc/self/status", "rb") as f:
                status = f.read().decode("ascii", "replace")
        except OSError:
            return self._update_rusage()
        # fields after the parenthesised command name, which may hold spaces
        fields = stat[stat.rindex(b")") + 2:].split()
        self.pagefaults = int(fields[9])
        self.vsz = int(fields[20])
        self.rss = int(fields[21]) * self.pagesize
        self.os_specific = []
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key not in _STATUS_LABELS:
                continue
            try:
                size = int(value.split()[0]) * 1024
            except (IndexError, ValueError):
                continue
            if key == "VmData":
                self.data_segment = size
            elif key == "VmExe":
                self.code_segment = size
            elif key == "VmLib":
                self.shared_segment = size
            elif key == "VmStk":
                self.stack_segment = size
            elif key == "VmHWM":
                self.rss_peak = size
            self.os_specific.append((_STATUS_LABELS[key], _human(size)))
        return True

    def _update_rusage(self) -> bool:
        try:
            import resource
        except ImportError:  # pragma: no cover
            return False
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # ru_maxrss is the peak, in KiB on Linux: the current RSS is unknown
        self.rss_peak = usage.ru_maxrss * 1024
        self.pagefaults = usage.ru_majflt
        return False

    def __sub__(self, other: "ProcessMemoryInfo") -> Iterable[Tuple[str, int]]:
        return [
            ("Resident set size (delta)", self.rss - other.rss),
            ("Virtual size (delta)", self.vsz - other.vsz),
        ]


def is_available() -> bool:
    """True when process memory can be read on this platform."""
    return ProcessMemoryInfo().available


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
