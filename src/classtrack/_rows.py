"""The engine's rows by name: the one place that knows their field order.

The C engine hands Python plain tuples (see ``_core/dumpfmt.h`` for the
dataset and its snapshot rows, ``tracker_type.c`` for a tracked record).
Readers wrap them here, once, where they come from the engine, and use
field names from then on.  The wrappers are tuple subclasses: the engine
takes them back (``dump_write``) as it takes its own tuples.
"""
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple

# the process tuple of a snapshot row (dumpfmt.h CT_DUMP_PROCESS_FIELDS)
PROCESS_FIELDS = ("vsz", "rss", "rss_peak", "vsz_peak", "data_segment", "code_segment",
                  "shared_segment", "stack_segment", "locked", "page_tables", "pagefaults")
PROCESS_RSS = PROCESS_FIELDS.index("rss")


class Dataset(NamedTuple):
    """Records and snapshots as columns (dumpfmt.h, CT_DATASET_FIELDS)."""
    names: Any          # list of str
    classes: Any        # list of str
    rec_id: Any         # bytes-like, uint64 per record
    rec_name: Any       # uint32: index into names
    rec_class: Any      # uint32: 1 + index into classes, 0 unknown
    rec_birth: Any      # double
    rec_death: Any      # double, 0 alive
    rec_trace: Any      # uint32: 1 + index into traces, 0 none
    reprs: Any          # dict record index -> str
    traces: Any         # list of tuples (file, line, function, source or None)
    snaps: Any          # list of snapshot rows


class SnapRow(NamedTuple):
    """One snapshot (dumpfmt.h, CT_SNAPSHOT_FIELDS; 1.0's rows stop before
    `retained`, 1.1's before `counted`, older 1.2 writers' before `collected`).  `entries` is a ``_core.Entries``, or the idx column with
    `size` and `flat` its size and flat size columns."""
    time: float
    desc: str
    tracked_total: int
    asizeof_total: int
    overhead: int
    interval: float
    effective_interval: float
    stretched: bool
    process: Optional[Sequence[int]]    # PROCESS_FIELDS, or None
    entries: Any
    size: Any = None
    flat: Any = None
    trees: Any = None                   # dict record index -> (name, size, flat, refs)
    retained: Optional[bytes] = None    # uint64 per entry
    shared: Optional[int] = None
    counted: Optional[Sequence[Tuple[str, int, int]]] = None   # (class, instances, bytes)
    collected: bool = False             # gc.collect() ran right before it


class Record(NamedTuple):
    """``Tracker.record(i)``: one tracked object as the engine knows it."""
    id: int
    name: str
    birth: float
    death: Optional[float]
    trace_no: int
    resolution: int
    obj: Any            # the object, None once it died
    cls: Any
    repr: Optional[str]


def dataset(raw: Sequence[Any]) -> Dataset:
    """A dataset tuple from the engine (or built like one), by name, its
    snapshot rows too."""
    d = raw if isinstance(raw, Dataset) else Dataset._make(raw)
    return d._replace(snaps=[snap_row(row) for row in d.snaps])


def snap_row(row: Sequence[Any]) -> SnapRow:
    """A snapshot row by name; 1.0's 13 fields and 1.1's 15 get None for
    the fields they lack."""
    if isinstance(row, SnapRow):
        return row
    return SnapRow(*row)
