"""The recorded data of a Stats: records and snapshots as columns, in the
layout of the engine's dumps (``classtrack._rows.Dataset``), from a live
tracker or from a dump; and the Snapshot objects a loaded dump gives.

Below ``classtrack.classtracker_stats``, which builds its Pympler API on
it; above the engine and ``classtrack.snapshot``.
"""
from __future__ import annotations

import array
import linecache
from typing import Any, Dict, Iterable, List, Optional, Tuple

from classtrack import _core
from classtrack._rows import PROCESS_FIELDS, Dataset, SnapRow, dataset, snap_row
from classtrack.process import ProcessMemoryInfo
from classtrack.snapshot import Snapshot, program_frames


class ColumnData:
    """Records and snapshots as columns (``classtrack._rows.Dataset``, the
    layout of dumpfmt.h).

    Each snapshot row (a ``SnapRow``) holds its entries as one
    ``_core.Entries`` (its ``size`` and ``flat`` None): compact, immutable,
    queried in C.  Rows given with idx/size/flat columns (merge.py,
    convert_pympler_dump, 1.0's 13 fields) are turned into that form here."""

    def __init__(self, data: tuple) -> None:
        raw = dataset(data)
        self._raw = raw          # its record columns, as bytes, for the engine
        (self.names, self.classes, rec_id, rec_name, rec_class, rec_birth, rec_death,
         rec_trace, self.reprs, self.traces, snaps) = raw
        self.ids = memoryview(rec_id).cast("Q")
        self.rec_name = memoryview(rec_name).cast("I")
        self.rec_class = memoryview(rec_class).cast("I")
        self.births = memoryview(rec_birth).cast("d")
        self.deaths = memoryview(rec_death).cast("d")
        self.rec_trace = memoryview(rec_trace).cast("I")
        self.nrec = len(self.ids)
        self.snaps = [_entries_row(row, self.nrec) for row in snaps]
        self._counts: Optional[List[int]] = None
        self._firsts: Optional[List[int]] = None
        self._max: Dict[str, memoryview] = {}

    def as_tuple(self) -> Dataset:
        return self._raw._replace(names=self.names, classes=self.classes, reprs=self.reprs,
                                  traces=self.traces, snaps=self.snaps)

    def entries(self, k: int) -> Any:
        """Snapshot k's entries (a ``_core.Entries``)."""
        return self.snaps[k].entries

    def counts(self) -> List[int]:
        """Records per name number, computed once."""
        if self._counts is None:
            self._counts = _core.count_by_name(self._raw.rec_name, len(self.names))
        return self._counts

    def name_mask(self, numbers: Iterable[int]) -> bytes:
        """One byte per name number, 1 for those given: how the engine's
        column functions are told which names to look at."""
        wanted = bytearray(len(self.names))
        for n in numbers:
            wanted[n] = 1
        return bytes(wanted)

    def by_class(self) -> Dict[str, List[int]]:
        """{tracking name: its name numbers} for the names that have
        records, in the order of their first record (the order of
        ``Stats.index``)."""
        if self._firsts is None:
            self._firsts = _core.first_by_name(self._raw.rec_name, len(self.names))
        out: Dict[str, List[int]] = {}
        for n in sorted((n for n, f in enumerate(self._firsts) if f >= 0),
                        key=self._firsts.__getitem__):
            out.setdefault(self.names[n], []).append(n)
        return out

    def record_max(self, which: str) -> memoryview:
        """Per record, uint64: 'size' its largest size over all snapshots,
        'tsize' its size at the snapshot of the largest tracked total."""
        col = self._max.get(which)
        if col is None:
            if which == "size":
                ents = [row.entries for row in self.snaps]
            else:
                largest = max(self.snaps, key=lambda r: r.tracked_total, default=None)
                ents = [largest.entries] if largest is not None else []
            col = memoryview(_core.record_max(self.nrec, ents)).cast("Q")
            self._max[which] = col
        return col

    @classmethod
    def from_tracker(cls, tracker: Any) -> "ColumnData":
        (names, classes, rec_id, rec_name, rec_class, rec_birth, rec_death, rec_trace,
         reprs, raw_traces, snap_cols) = tracker._engine.export()
        source = tracker._engine.reprs      # False: no source line leaves the process
        traces = [trace_frames(tr, source) for tr in raw_traces]
        snaps = snapshot_rows(tracker, tracker.snapshots, snap_cols)
        return cls((names, classes, rec_id, rec_name, rec_class, rec_birth, rec_death,
                    rec_trace, reprs, traces, snaps))


def trace_frames(raw: Any, source: bool) -> tuple:
    """A creation stack as the dump keeps it, from the engine's (code,
    line) pairs; `source` False: no source line."""
    return tuple(_frame(code, line, source) for code, line in program_frames(raw))


def snapshot_rows(tracker: Any, snapshots: List[Snapshot], snap_cols: Any) -> List[SnapRow]:
    """The dataset's rows of a live tracker's snapshots, given with the
    engine's (entries, trees) of each (``Tracker.export``)."""
    rows = []
    for snapshot, (entries, trees) in zip(snapshots, snap_cols):
        measured = tracker._retained_at.get(snapshot.timestamp)
        retained = None
        if measured is not None:
            idx_col, _, _ = entries.columns()
            idx = memoryview(idx_col).cast("I")
            retained = array.array("Q", (measured.get(i, 0) for i in idx)).tobytes()
        rows.append(_snapshot_row(snapshot, entries, trees, retained))
    return rows


def _entries_row(row: tuple, nrec: int) -> SnapRow:
    """A snapshot row with all its fields and its entries as an Entries."""
    row = snap_row(row)
    if isinstance(row.entries, _core.Entries):
        return row
    entries = _core.Entries(row.entries, row.size, row.flat, nrec)
    return row._replace(entries=entries, size=None, flat=None)


def _frame(code: Any, line: int, source: bool = True) -> tuple:
    src = linecache.getline(code.co_filename, line) if source and line and line > 0 else ""
    return (code.co_filename, line, code.co_name, src or None)


def _snapshot_row(s: Snapshot, entries: Any, trees: dict,
                  retained: Optional[bytes] = None) -> SnapRow:
    proc = s.system_total
    fields = None
    if proc is not None and getattr(proc, "available", False):
        fields = tuple(int(getattr(proc, f, 0) or 0) for f in PROCESS_FIELDS)
    return SnapRow(float(s.timestamp), str(s.desc), int(s.tracked_total),
                   int(s.asizeof_total or 0), int(s.overhead or 0), float(s.interval or 0.0),
                   float(s.effective_interval or 0.0), bool(s.stretched), fields, entries,
                   None, None, trees, retained,
                   None if s.shared is None or retained is None else int(s.shared),
                   _counted_row(getattr(s, "counted", None)),
                   bool(getattr(s, "collected", False)))


def _counted_row(counted: Optional[Dict[str, Tuple[int, int]]]) -> Optional[tuple]:
    """A snapshot's count-only classes as the dataset holds them (field
    ``counted``): ((class, instances, bytes), ...), or None."""
    if not counted:
        return None
    return tuple((str(name), int(n), int(size)) for name, (n, size) in counted.items())


def _loaded_snapshot(row: SnapRow) -> Snapshot:
    s = Snapshot.__new__(Snapshot)
    s.timestamp = row.time
    s.desc = row.desc
    s.tracked_total = row.tracked_total
    s.asizeof_total = row.asizeof_total
    s.overhead = row.overhead
    s.classes = None
    s.interval = row.interval or None
    s.effective_interval = row.effective_interval or None
    s.stretched = row.stretched
    s.shared = row.shared
    s.counted = {name: (n, size) for name, n, size in row.counted} if row.counted else None
    s.collected = bool(row.collected)
    s.system_total = ProcessMemoryInfo.from_fields(row.process)
    return s


def history(data: ColumnData) -> Dict[str, List[Tuple[float, int]]]:
    raw = data._raw
    return _core.history(list(data.names), raw.rec_name, raw.rec_birth, raw.rec_death)


def empty() -> ColumnData:
    return ColumnData(([], [], b"", b"", b"", b"", b"", b"", {}, [], []))
