"""What the live view (``classtrack.classtracker``) and the recorded one
(``classtrack.classtracker_stats``) share: ``Snapshot``, the size queries
of a tracked object, its birth entry and the cut of creation stacks.

Both modules import this one; it imports neither.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from classtrack.asizeof import Asized

__all__ = ["Snapshot"]


def _birth_entry(birth: float, basic: int) -> Tuple[float, Asized]:
    """Pympler's first ``snapshots`` entry: the basic size at birth.  Its
    name is None, as in Pympler: it is a guess, not a measurement."""
    return (birth, Asized(basic, basic))


class _SizeQueries:
    """get_max_size / get_size_at_time over a ``snapshots`` list, shared by
    the live view (TrackedObject) and the recorded one (Stats).  As in
    Pympler, the birth entry is one of the samples: an object never sized
    has its basic size as its maximum, and asking for the size at its birth
    time gives the basic size (a snapshot at that same instant wins)."""

    __slots__ = ()
    snapshots: List[Tuple[float, Asized]]

    def get_max_size(self) -> int:
        """The largest size sampled, the birth entry included."""
        return max((s.size for _, s in self.snapshots), default=0)

    def get_size_at_time(self, timestamp: float) -> int:
        """The size at that snapshot (or at birth), 0 if not alive or not
        sized then."""
        size = 0
        for ts, s in self.snapshots:
            if ts == timestamp:
                size = s.size
        return size


def _is_runpy(filename: str) -> bool:
    return filename == "<frozen runpy>" or os.path.basename(filename) == "runpy.py"


# Set by `classtrack run`: its traces start at the program.  Otherwise
# traces are whole, as inspect.stack() gives them (and Pympler keeps them).
_cut_launcher = False


def program_frames(pairs: Any) -> Any:
    """A creation stack (``(code, line)`` pairs, outermost first); under
    ``classtrack run``, without the frames that started the program:
    everything up to the last frame of ``runpy``, which ``run`` starts it
    through (the console script and classtrack's own frames are outer to
    it), as Python's tracebacks leave them out."""
    if not _cut_launcher:
        return pairs
    cut = 0
    for k, (code, _) in enumerate(pairs):
        if _is_runpy(code.co_filename):
            cut = k + 1
    return pairs[cut:] if cut < len(pairs) else pairs


class Snapshot:
    """Sizes of the tracked objects and of the process at one instant."""

    def __init__(self, timestamp: float, description: str = "") -> None:
        # lazy: start-up time of `import classtrack`; the first snapshot pays
        # (start_periodic_snapshots imports it ahead, off the monitor's budget)
        from classtrack.process import ProcessMemoryInfo
        self.tracked_total = 0
        self.asizeof_total = 0
        self.overhead = 0
        self.timestamp = timestamp
        self.system_total = ProcessMemoryInfo()
        self.desc = description
        self.classes: Optional[Dict[str, Dict[str, Any]]] = None
        # retained=True: bytes the measured objects keep alive only together
        self.shared: Optional[int] = None
        # count-only classes (instances counted at snapshots, not followed
        # one by one): {"module.qualname": (instances, bytes)}, None if none
        self.counted: Optional[Dict[str, Tuple[int, int]]] = None
        # set by the background monitor: requested and effective interval
        self.interval: Optional[float] = None
        self.effective_interval: Optional[float] = None
        self.stretched = False
        # a full garbage collection (gc.collect()) ran right before it
        self.collected = False

    @property
    def total(self) -> int:
        """Virtual size of the process (as Pympler); the best number
        available where the process cannot be read."""
        if self.system_total.available:
            return self.system_total.vsz
        if self.asizeof_total:
            return self.asizeof_total
        return self.tracked_total

    @property
    def label(self) -> str:
        if not self.desc:
            return "%.3fs" % self.timestamp
        return "%s (%.3fs)" % (self.desc, self.timestamp)
