"""Off-line analysis of ClassTracker data -- a drop-in for
``pympler.classtracker_stats``.

``Stats`` reads a live tracker or a dump; ``ConsoleStats`` prints reports
laid out like Pympler's, with human-readable sizes.  Data is held in
columns (the engine's records, exported as flat arrays); the per-class
totals of a snapshot are computed in C over those columns.

Dumps use classtrack's own format (``docs/dump-format.md``), never pickle:
loading a dump runs no code from it, and any malformed input raises
``DumpError`` (a ``ValueError``) saying what is wrong and where.  A Pympler
dump (a pickle) is recognised and refused with instructions;
``convert_pympler_dump`` converts one you trust.
"""

from __future__ import annotations

import array
import copy
import os
import sys
from typing import IO, Any, Dict, Iterable, List, Optional, Tuple, Union

from classtrack import _core, _safefile
from classtrack._dataset import ColumnData, _loaded_snapshot
from classtrack._dataset import empty as empty_dataset
from classtrack._dataset import history as dataset_history
from classtrack._rows import Record
from classtrack.asizeof import Asized
from classtrack.snapshot import Snapshot, _SizeQueries, _birth_entry

__all__ = ["Stats", "ConsoleStats", "HtmlStats", "DumpError", "convert_pympler_dump"]

DumpError = _core.DumpError

_SORT_CRITERIA = ("classname", "tsize", "birth", "death", "name", "repr", "size")


# -- text helpers ----------------------------------------------------------------

def trunc(obj: Any, max_len: int, left: bool = False) -> str:
    """str(obj) on one line, cut to max_len characters with '...'."""
    s = str(obj).replace("\n", "|")
    if len(s) <= max_len:
        return s
    return "..." + s[len(s) - max_len + 3:] if left else s[:max_len - 3] + "..."


def pp(n: float, base: int = 1024) -> str:
    """A size as a human-readable string, e.g. '  12.50 KB'."""
    degree = 0
    pattern = "%4d     %s"
    while n > base:
        pattern = "%7.2f %s"
        n = n / float(base)
        degree += 1
    return pattern % (n, ("B", "KB", "MB", "GB", "TB", "PB", "EB")[degree])


def pp_timestamp(t: Optional[float]) -> str:
    if t is None:
        return ""
    h, m, s = int(t / 3600), int(t / 60 % 60), t % 60
    return "%02d:%02d:%05.2f" % (h, m, s)


def _format_trace(trace: Iterable[tuple]) -> str:
    lines = []
    for fname, lineno, func, src, _ in trace:
        if src:
            for line in src:
                lines.append("    " + line.strip() + "\n")
        lines.append("  %s:%4d in %s\n" % (fname, lineno, func))
    return "".join(lines)


class _DataObject(_SizeQueries):
    """A tracked object as recorded in a dataset: Pympler's TrackedObject
    interface (ref, id, name, repr, birth, death, trace, snapshots,
    get_max_size, get_size_at_time)."""

    __slots__ = ("_stats", "_index", "classname", "size", "tsize")

    def __init__(self, stats: "Stats", index: int) -> None:
        self._stats = stats
        self._index = index

    @property
    def _data(self) -> ColumnData:
        return self._stats._data

    def ref(self) -> Any:
        tracker = self._stats.tracker
        if tracker is None:
            return None
        return Record._make(tracker._engine.record(self._index)).obj

    @property
    def id(self) -> int:
        return self._data.ids[self._index]

    @property
    def name(self) -> str:
        return self._data.names[self._data.rec_name[self._index]]

    @property
    def birth(self) -> float:
        return self._data.births[self._index]

    @property
    def death(self) -> Optional[float]:
        d = self._data.deaths[self._index]
        return d if d else None

    @property
    def repr(self) -> str:
        data = self._data
        custom = data.reprs.get(self._index)
        if custom is not None:
            return custom
        c = data.rec_class[self._index]
        cls = data.classes[c - 1] if c else "object"
        return "<%s object at 0x%x>" % (cls, data.ids[self._index])

    @property
    def trace(self) -> Optional[List[tuple]]:
        t = self._data.rec_trace[self._index]
        if not t:
            return None
        return [(f, ln, fn, [src] if src else None, 0 if src else None)
                for f, ln, fn, src in self._data.traces[t - 1]]

    @property
    def snapshots(self) -> List[Tuple[float, Asized]]:
        """The birth entry, then one entry per snapshot, as the live view."""
        return self._stats._sizes_of(self._index)

    def __repr__(self) -> str:
        return "<TrackedObject %s %s>" % (self.name, self.repr)


def _merge_asized(base: Asized, other: Asized, level: int = 0) -> None:
    """Merge `other` into `base` by referent name (the part before ':')."""
    base.size += other.size
    base.flat += other.flat
    if level > 0 and base.name:
        base.name = base.name.split(":")[0]
    refs = list(base.refs)
    by_key = {str(r.name).split(":")[0]: r for r in refs}
    for ref in other.refs:
        key = str(ref.name).split(":")[0]
        if key in by_key:
            _merge_asized(by_key[key], ref, level + 1)
        else:
            new = copy.deepcopy(ref)
            new.name = key
            refs.append(new)
            by_key[key] = new
    base.refs = tuple(refs)


# -- Stats ----------------------------------------------------------------------------

class Stats:
    """Statistics over a live ClassTracker or a dump."""

    def __init__(self, tracker: Any = None, filename: Optional[Union[str, os.PathLike]] = None,
                 stream: Optional[IO[str]] = None) -> None:
        self.stream = stream if stream else sys.stdout
        self.tracker = tracker
        self._index: Optional[Dict[str, List[Any]]] = {}
        self._history: Any = None    # dict, or a function making it on first use
        self.snapshots: List[Snapshot] = []
        self._sorted: Any = []       # a list, or a _SortedRecords made by sort_stats
        self._data: Optional[ColumnData] = None
        self._signature: Optional[tuple] = None
        self._size_cache: Dict[int, List[Tuple[float, Asized]]] = {}
        self._views: Dict[int, _DataObject] = {}
        # of a loaded dump: see load_stats; of a live tracker: this process
        self.dump_info: Dict[str, Any] = {}
        if tracker is not None:
            self._refresh()
        if filename is not None:
            self.load_stats(filename)

    # -- data ------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Re-read a live tracker when it changed since the last look."""
        t = self.tracker
        if t is None:
            return
        sig = (len(t._engine), t._engine.nsnapshots, t._engine.alive, len(t.snapshots))
        if sig == self._signature:
            return
        self._signature = sig
        self._install(ColumnData.from_tracker(t), list(t.snapshots))
        self._history = lambda: t.history

    def _install(self, data: ColumnData, snapshots: List[Snapshot]) -> None:
        self._data = data
        self.snapshots = snapshots
        self._sorted = []
        self._size_cache = {}
        self._views = {}
        for s in snapshots:
            s.classes = None
        self._index = None      # views are made on first use of index

    @property
    def index(self) -> Dict[str, List[Any]]:
        """{classname: [tracked object views]}: the classes are known at
        once, each class's views are made when that class is first looked
        up (a report that never looks at single objects never pays for
        them, one that looks at one class pays for that class)."""
        if self._index is None:
            data = self._data
            self._index = _LazyIndex(self, data.by_class() if data is not None else {})
        return self._index

    def _view(self, i: int) -> "_DataObject":
        """The one view of record i (sorted and index share it)."""
        v = self._views.get(i)
        if v is None:
            v = self._views[i] = _DataObject(self, i)
            data = self._data
            v.classname = data.names[data.rec_name[i]]
            # get_max_size(), as Pympler sorts: the birth entry counts
            v.size = max(data.record_max("size")[i], self._basic_of(i))
            v.tsize = data.record_max("tsize")[i]
        return v

    def _class_counts(self) -> Dict[str, int]:
        """{classname: instances}, without making views."""
        data = self._data
        if data is None:
            return {}
        counts = data.counts()
        return {c: sum(counts[n] for n in ns) for c, ns in data.by_class().items()}

    @property
    def sorted(self) -> Any:
        """The tracked objects in the order of the last sort_stats (a
        sequence of views, made as they are read)."""
        return self._sorted

    @sorted.setter
    def sorted(self, value: Any) -> None:
        self._sorted = value

    @index.setter
    def index(self, value: Dict[str, List[Any]]) -> None:
        self._index = value

    @property
    def history(self) -> Dict[str, List[Tuple[float, int]]]:
        """{classname: [(time, live count), ...]}, computed on first use."""
        if callable(self._history):
            self._history = self._history()
        return self._history if self._history is not None else {}

    @history.setter
    def history(self, value: Dict[str, List[Tuple[float, int]]]) -> None:
        self._history = value

    def _basic_of(self, i: int) -> int:
        """The size of record i's birth entry: the class's basic size as the
        dataset records it.  Dump format 1.0 has no field for it, so every
        dataset -- a live tracker's too, so that a Stats and its dump print
        the same (as Pympler's do) -- says 0, Pympler's own value for
        "unknown".  The live view (TrackedObject.snapshots) knows the class
        and gives the real basic size.  See docs/pympler-differences.md."""
        return 0

    def _sizes_of(self, i: int) -> List[Tuple[float, Asized]]:
        cached = self._size_cache.get(i)
        if cached is not None:
            return cached
        data = self._data
        out = [_birth_entry(data.births[i], self._basic_of(i))]
        name = data.names[data.rec_name[i]]
        for row in data.snaps:
            hit = row.entries.get(i)
            if hit is None:
                continue
            pos, size, flat = hit
            tree = row.trees.get(i)
            if tree is not None:
                a = Asized._from_tuple(tree)
            else:
                a = Asized(size, flat, (), name)
            if row.retained is not None:
                a.retained = memoryview(row.retained).cast("Q")[pos] or None
            out.append((row.time, a))
        self._size_cache[i] = out
        return out

    def load_stats(self, fdump: Union[str, os.PathLike, IO[bytes]]) -> None:
        """Load a dump from a path or a binary file object."""
        info: Dict[str, Any] = {}
        if isinstance(fdump, (str, os.PathLike)):
            # unbuffered: the engine reads the descriptor directly
            with open(fdump, "rb", buffering=0) as f:
                raw = _core.dump_read(f, info)
        else:
            raw = _core.dump_read(fdump, info)
        self._load_dataset(raw)
        # what kind of file it was: ``streamed`` (written as the program
        # ran), ``complete`` (False: its program never finished it, it was
        # read to its last whole snapshot), and with ``dropped`` the bytes
        # of an incomplete snapshot left out
        self.dump_info = info

    def _load_dataset(self, raw: tuple) -> None:
        """Install a dataset (the dumpfmt.h tuple, as dump_read returns it
        or report/merge.py makes it) as if loaded from a dump."""
        data = ColumnData(raw)
        self.tracker = None
        self._signature = None
        self._install(data, [_loaded_snapshot(row) for row in data.snaps])
        self._history = lambda: dataset_history(data)

    def dump_stats(self, fdump: Union[str, os.PathLike, IO[bytes]], close: bool = True) -> None:
        """Write the data to a path or a binary file object, in classtrack's
        dump format.  Stops a live tracker's periodic snapshots first.

        A path gets a new file, readable by its owner only (0600), renamed
        over it once written: a write that fails (a full disk) leaves the
        file that was there whole.  A symbolic link at the path is
        followed to the file it names, which is replaced."""
        if self.tracker is not None:
            self.tracker.stop_periodic_snapshots()
            self._refresh()
        if isinstance(fdump, (str, os.PathLike)):
            self._dump_to(fdump, named=True)
            return
        _core.dump_write(fdump, self._dump_data(), self._process())
        if close:
            fdump.close()

    def _process(self) -> Optional[Tuple[int, int]]:
        """(pid, ppid) of the process the data is of: this one for a live
        tracker, the dump's for a loaded one (None if it did not say)."""
        if self.tracker is not None:
            return os.getpid(), os.getppid()
        if "pid" in self.dump_info:
            return self.dump_info["pid"], self.dump_info["ppid"]
        return None

    def _dump_data(self) -> tuple:
        data = self._data if self._data is not None else empty_dataset()
        return data.as_tuple()

    def _dump_to(self, path: Union[str, os.PathLike], named: bool) -> None:
        """Write the dump to `path` as ``_safefile.replacing`` does: a new
        file (mode 0600) renamed over it, so that a failed write leaves the
        previous dump whole; `named`: the user named `path` (a link there
        is followed), else classtrack did (a link there is refused)."""
        if self.tracker is not None:
            self.tracker.stop_periodic_snapshots()
            self._refresh()
        # unbuffered (an io.FileIO): the engine writes to the descriptor directly
        with _safefile.replacing(path, named=named) as f:
            _core.dump_write(f, self._dump_data(), self._process())

    # -- sorting ----------------------------------------------------------------------

    def _init_sort(self) -> None:
        """Pympler's initial order (by class, first seen first, then by
        record), as a list of views: only the Python-key sort needs it."""
        self._refresh()
        if isinstance(self._sorted, list) and self._sorted or self._data is None:
            return
        self._sorted = [self._view(i) for i in self._record_order((), None, -1)]

    def _record_order(self, keys: Tuple[str, ...], wanted: Optional[bytes],
                      limit: int) -> memoryview:
        """Record indices in the order of `keys` (see order.c), of the
        names flagged in `wanted` (None: all), at most `limit` (-1: all)."""
        data = self._data
        names = data.names
        ranks = {n: r for r, n in enumerate(sorted(set(names)))}
        first = {c: r for r, c in enumerate(data.by_class())}
        name_rank = array.array("I", [ranks[n] for n in names])
        name_first = array.array("I", [first.get(n, len(first)) for n in names])
        raw = data._raw
        return memoryview(_core.record_order(
            tuple(keys), raw.rec_name, name_rank,
            name_first, raw.rec_birth, raw.rec_death, data.record_max("size"),
            data.record_max("tsize"),
            wanted, limit)).cast("I")

    def sort_stats(self, *args: str) -> "Stats":
        """Sort by 'classname', 'tsize', 'birth', 'death', 'name', 'repr',
        'size' (sizes descending, the rest ascending); no argument sorts by
        all of them in that order.  Returns self.  Without 'repr' the order
        is computed in C over the columns, and only as far as it is read."""
        for arg in args:
            if arg not in _SORT_CRITERIA:
                raise ValueError("invalid sort criterion %r; choose from %s"
                                 % (arg, ", ".join(_SORT_CRITERIA)))
        keys = args or _SORT_CRITERIA
        self._refresh()
        if self._data is None:
            return self
        if "repr" not in keys:
            self._sorted = _SortedRecords(self, tuple(keys))
            return self
        self._init_sort()
        if not isinstance(self._sorted, list):
            self._sorted = list(self._sorted)

        def key(tobj: Any) -> tuple:
            out: List[Any] = []
            for k in keys:
                if k in ("size", "tsize"):
                    out.append(-int(getattr(tobj, k)))
                elif k == "death":
                    d = tobj.death
                    out.append((d is None, d or 0.0))
                else:
                    out.append(getattr(tobj, k))
            return tuple(out)

        self._sorted.sort(key=key)
        return self

    def reverse_order(self) -> "Stats":
        self._refresh()
        if isinstance(self._sorted, _SortedRecords):
            self._sorted = self._sorted.reversed()
            return self
        self._init_sort()
        self._sorted.reverse()
        return self

    # -- per-class summaries ------------------------------------------------------------

    def annotate(self) -> None:
        """Compute every snapshot's per-class summary."""
        self._refresh()
        for snapshot in self.snapshots:
            self.annotate_snapshot(snapshot)

    def annotate_snapshot(self, snapshot: Snapshot) -> Dict[str, Dict[str, Any]]:
        """{classname: {'sum', 'avg', 'pct', 'active', 'merged'}} for one
        snapshot, cached on it."""
        self._refresh()
        if snapshot.classes is not None:
            return snapshot.classes
        data = self._data
        pos = next((k for k, s in enumerate(self.snapshots) if s is snapshot), None)
        if data is None or pos is None or pos >= len(data.snaps):
            raise ValueError("snapshot does not belong to these statistics")
        row = data.snaps[pos]
        raw = data._raw
        entries = row.entries
        sums, flats, active = _core.aggregate(raw.rec_name, raw.rec_birth, raw.rec_death,
                                              entries, snapshot.timestamp, len(data.names))
        retained = None
        if row.retained is not None:     # retained sizes add up (see create_snapshot)
            retained, _, _ = _core.aggregate(raw.rec_name, raw.rec_birth, raw.rec_death,
                                             entries, snapshot.timestamp, len(data.names),
                                             row.retained)
        total = snapshot.total
        trees_by_name: Dict[int, List[int]] = {}
        for i in row.trees:
            trees_by_name.setdefault(data.rec_name[i], []).append(i)
        classes: Dict[str, Dict[str, Any]] = {}
        for n, classname in enumerate(data.names):
            merged = Asized(0, 0, (), classname)
            tree_ids = trees_by_name.get(n, ())
            if tree_ids:
                plain_size, plain_flat = sums[n], flats[n]
                for i in tree_ids:
                    _merge_asized(merged, Asized._from_tuple(row.trees[i]))
                    hit = entries.get(i)
                    if hit is not None:
                        _, hit_size, hit_flat = hit
                        plain_size -= hit_size
                        plain_flat -= hit_flat
                merged.size += plain_size
                merged.flat += plain_flat
            else:
                merged.size, merged.flat = sums[n], flats[n]
            classes[classname] = {
                "sum": sums[n],
                "avg": sums[n] / active[n] if active[n] else 0,
                "pct": sums[n] * 100.0 / total if total else 0,
                "active": active[n],
                "merged": merged,
            }
            if retained is not None:
                classes[classname]["retained"] = retained[n]
                merged.retained = retained[n]
        snapshot.classes = classes
        return classes

    @property
    def tracked_classes(self) -> List[str]:
        """Names of all tracked classes, sorted."""
        self._refresh()
        return sorted(self._data.by_class()) if self._data is not None else []

    # -- diffs -------------------------------------------------------------------------

    def diff(self, other: "Stats") -> Any:
        """What changed per class from these statistics to `other`:
        ``old.diff(new)`` is new minus old, each at its last snapshot.
        Returns a ``ClassDiff`` (``classtrack.report.diff``): ``DiffRow``
        rows (count, size and retained deltas), largest size growth first;
        ``str()`` of it is a table."""
        if not isinstance(other, Stats):
            raise TypeError("diff() compares two Stats, not %s" % type(other).__name__)
        for which, stats in (("old", self), ("new", other)):
            stats._refresh()
            if not stats.snapshots:
                raise ValueError("the %s statistics have no snapshot to compare" % which)
        return _diff(self, self.snapshots[-1], other, other.snapshots[-1])

    def diff_snapshots(self, old: Union[Snapshot, int], new: Union[Snapshot, int]) -> Any:
        """The same as ``diff`` between two snapshots of these statistics,
        each given as a Snapshot of ``self.snapshots`` or its index."""
        self._refresh()
        return _diff(self, self._snapshot_of(old), self, self._snapshot_of(new))

    def _snapshot_of(self, which: Union[Snapshot, int]) -> Snapshot:
        if isinstance(which, Snapshot):
            if any(s is which for s in self.snapshots):
                return which
            raise ValueError("snapshot %s is not one of these statistics' snapshots"
                             % which.label)
        if isinstance(which, bool) or not isinstance(which, int):
            raise TypeError("a snapshot is a Snapshot or an index, not %s"
                            % type(which).__name__)
        n = len(self.snapshots)
        if not -n <= which < n:
            raise IndexError("snapshot index %d out of range: there %s %d snapshot%s"
                             % (which, "is" if n == 1 else "are", n, "" if n == 1 else "s"))
        return self.snapshots[which]


def _class_totals(stats: Stats, snapshot: Snapshot) -> Dict[str, Tuple[int, int, Optional[int]]]:
    """{classname: (live count, size, retained or None)} at one snapshot,
    from its per-class aggregates.  Retained bytes come from the summary's
    "retained" field or its merged Asized's ``retained``, when the snapshot
    measured them; then a class without a figure retained 0."""
    classes = stats.annotate_snapshot(snapshot)
    out: Dict[str, Tuple[int, int, Optional[int]]] = {}
    measured = False
    for name, info in classes.items():
        retained = info.get("retained")
        if retained is None:
            retained = getattr(info.get("merged"), "retained", None)
        measured = measured or retained is not None
        out[name] = (int(info["active"]), int(info["sum"]),
                     None if retained is None else int(retained))
    if measured:
        out = {k: (c, s, r or 0) for k, (c, s, r) in out.items()}
    return out


def _diff(old_stats: Stats, old: Snapshot, new_stats: Stats, new: Snapshot) -> Any:
    # lazy: only diff() needs the diff layout; `classtrack run` imports this module
    from classtrack.report.diff import ClassDiff, DiffRow
    a = _class_totals(old_stats, old)
    b = _class_totals(new_stats, new)
    zero_a = (0, 0, 0 if any(r is not None for _, _, r in a.values()) else None)
    zero_b = (0, 0, 0 if any(r is not None for _, _, r in b.values()) else None)
    # the classes `report` counts too: those with a tracked instance (in
    # either statistics), not every class a tracker watched
    had = set(old_stats.tracked_classes) | set(new_stats.tracked_classes)
    names = [n for n in list(a) + [n for n in b if n not in a] if n in had]
    rows = [DiffRow(n, a.get(n, zero_a), b.get(n, zero_b)) for n in names]
    # count-only classes: their counts and bytes at the two snapshots
    ca, cb = getattr(old, "counted", None) or {}, getattr(new, "counted", None) or {}
    for n in list(ca) + [n for n in cb if n not in ca]:
        (c0, s0), (c1, s1) = ca.get(n, (0, 0)), cb.get(n, (0, 0))
        rows.append(DiffRow(n, (c0, s0, None), (c1, s1, None), counted=True))
    return ClassDiff(rows, old, new)


class _LazyIndex(dict):
    """Stats.index: a dict {classname: [views]} whose lists are made on
    first lookup of their class.  Everything that reads values goes through
    __getitem__, so it behaves as the full dict would."""

    def __init__(self, stats: Stats, by_class: Dict[str, List[int]]) -> None:
        super().__init__((c, None) for c in by_class)
        self._stats = stats
        self._numbers = by_class

    def __getitem__(self, classname: str) -> List[Any]:
        v = dict.__getitem__(self, classname)
        if v is None:
            data = self._stats._data
            view = self._stats._view
            # record order: the stable sort by class keeps it within a class
            order = self._stats._record_order((), data.name_mask(self._numbers[classname]), -1)
            v = [view(i) for i in order]
            dict.__setitem__(self, classname, v)
        return v

    def get(self, classname: str, default: Any = None) -> Any:
        return self[classname] if classname in self else default

    def __iter__(self) -> Any:
        return iter(list(self.keys()))

    def values(self) -> Any:   # type: ignore[override]
        return [self[c] for c in self.keys()]

    def items(self) -> Any:    # type: ignore[override]
        return [(c, self[c]) for c in self.keys()]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict):
            return NotImplemented
        return dict(self.items()) == dict(other.items() if not isinstance(other, _LazyIndex)
                                          else other.items())

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None     # type: ignore[assignment]

    def copy(self) -> Dict[str, List[Any]]:
        return dict(self.items())

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class _SortedRecords:
    """Stats.sorted after sort_stats without 'repr': the records in that
    order, computed in C over the columns (order.c) only as far as they
    are read; views are made one at a time."""

    def __init__(self, stats: Stats, keys: Tuple[str, ...], backwards: bool = False) -> None:
        self._stats = stats
        self._keys = keys
        self._backwards = backwards
        self._order: Optional[memoryview] = None
        self._first: Tuple[int, Optional[memoryview]] = (0, None)

    def reversed(self) -> "_SortedRecords":
        return _SortedRecords(self._stats, self._keys, not self._backwards)

    def _all(self) -> memoryview:
        if self._order is None:
            order = self._stats._record_order(self._keys, None, -1)
            self._order = order[::-1] if self._backwards else order
        return self._order

    def _prefix(self, k: int) -> memoryview:
        """The first k record indices (fewer if there are fewer)."""
        if self._order is not None or self._backwards:
            return self._all()[:k]
        n, got = self._first
        if got is None or n < k:
            got = self._stats._record_order(self._keys, None, k)
            self._first = (k, got)
        return got[:k]

    def first(self, k: int, clsname: Optional[str] = None) -> List[Any]:
        """The first k views, of classes whose name contains clsname."""
        view = self._stats._view
        if not clsname:
            return [view(i) for i in self._prefix(k)]
        names = self._stats._data.names
        wanted = bytes(1 if clsname in n else 0 for n in names)
        if self._backwards:
            return [view(i) for i in self._all() if wanted[self._stats._data.rec_name[i]]][:k]
        return [view(i) for i in self._stats._record_order(self._keys, wanted, k)]

    def __len__(self) -> int:
        return self._stats._data.nrec

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, i: Any) -> Any:
        view = self._stats._view
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if start >= 0 and step > 0 and stop <= len(self) and (
                    self._order is None and i.start in (None, 0)):
                return [view(r) for r in self._prefix(stop)][start:stop:step]
            return [view(r) for r in self._all()[i]]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("sorted index out of range")
        return view(self._prefix(i + 1)[i] if i < 64 else self._all()[i])

    def __iter__(self) -> Any:
        view = self._stats._view
        return (view(r) for r in self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, _SortedRecords)):
            return list(self) == list(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None     # type: ignore[assignment]

    def sort(self, key: Any = None, reverse: bool = False) -> None:
        raise TypeError("Stats.sorted is computed by sort_stats(); use list(stats.sorted) "
                        "to sort it another way")

    def __repr__(self) -> str:
        return "<sorted by %s: %d tracked objects>" % (", ".join(self._keys), len(self))


class ConsoleStats(Stats):
    """Stats printed as text, laid out like Pympler's."""

    def _print_refs(self, refs: Iterable[Asized], total: int, prefix: str = "    ",
                    level: int = 1, minsize: int = 0, minpct: float = 0.1) -> None:
        for ref in sorted(refs, key=lambda r: r.size, reverse=True):
            if ref.size > minsize and total and ref.size * 100.0 / total > minpct:
                self.stream.write("%-50s %-14s %3d%% [%d]\n" % (
                    trunc(prefix + str(ref.name), 50), pp(ref.size),
                    int(ref.size * 100.0 / total), level))
                self._print_refs(ref.refs, total, prefix + "  ", level + 1)

    def print_object(self, tobj: Any) -> None:
        """One tracked object: name, id or '( free )', repr, trace, sizes."""
        if tobj.death:
            self.stream.write("%-32s ( free )   %-35s\n" % (
                trunc(tobj.name, 32, left=True), trunc(tobj.repr, 35)))
        else:
            self.stream.write("%-32s 0x%08x %-35s\n" % (
                trunc(tobj.name, 32, left=True), tobj.id, trunc(tobj.repr, 35)))
        if tobj.trace:
            self.stream.write(_format_trace(tobj.trace))
        for timestamp, size in tobj.snapshots:
            retained = getattr(size, "retained", None)
            self.stream.write("  %-30s %s%s\n" % (
                pp_timestamp(timestamp), pp(size.size),
                "" if retained is None else "  (retained %s)" % pp(retained)))
            self._print_refs(size.refs, size.size)
        if tobj.death is not None:
            self.stream.write("  %-30s finalize\n" % (pp_timestamp(tobj.death),))

    def print_stats(self, clsname: Optional[str] = None, limit: float = 1.0) -> None:
        """Print tracked objects, filtered by a substring of the class name
        and pruned by `limit` (< 1: a share of all objects; >= 1: a count).
        After a sort without 'repr', only the printed records are read."""
        if self.tracker is not None:
            self.tracker.stop_periodic_snapshots()
        if not self.sorted:
            self.sort_stats()
        if limit < 1.0:
            limit = max(1, int(len(self.sorted) * limit))
        limit = int(limit)
        chosen: Iterable[Any]
        if isinstance(self.sorted, _SortedRecords):
            chosen = self.sorted.first(limit, clsname or None)
        else:
            chosen = self.sorted
            if clsname:
                chosen = [t for t in chosen if clsname in t.classname]
            chosen = chosen[:limit]
        for tobj in chosen:
            self.print_object(tobj)

    def print_summary(self) -> None:
        """Per-class summary of each snapshot."""
        classlist = self.tracked_classes
        out = self.stream
        out.write("---- SUMMARY " + "-" * 66 + "\n")
        for snapshot in self.snapshots:
            classes = self.annotate_snapshot(snapshot)
            rss = getattr(snapshot.system_total, "rss", 0) if snapshot.system_total else 0
            out.write("%-35s %11s %12s %12s %5s\n" % (
                trunc(snapshot.label, 35), "active", pp(snapshot.tracked_total),
                "average", "pct"))
            for classname in classlist:
                info = classes[classname]
                retained = info.get("retained")
                out.write("  %-33s %11d %12s %12s %4d%%%s\n" % (
                    trunc(classname, 33), info["active"], pp(info["sum"]),
                    pp(info["avg"]), info["pct"],
                    "" if retained is None else "  retained %s" % pp(retained)))
            if snapshot.shared is not None:
                out.write("  %-33s %11s %12s\n" % ("(kept alive only together)", "",
                                                   pp(snapshot.shared)))
            for name, (n, size) in (getattr(snapshot, "counted", None) or {}).items():
                # count-only classes: counted at the snapshot, not followed one by one
                out.write("  %-33s %11d %12s %12s  counted at snapshot\n" % (
                    trunc(name, 33), n, pp(size), pp(size // n if n else 0)))
            out.write("  %-33s %11s %12s %12s\n" % (
                "(process: vsz / rss)", "", pp(snapshot.total), pp(rss)))
        out.write("-" * 79 + "\n")


class HtmlStats(Stats):
    """Stats as an HTML report that opens offline, straight from disk."""

    def create_html(self, fname: Union[str, os.PathLike],
                    title: str = "ClassTracker Statistics", _named: bool = True) -> None:
        """Write the index page to `fname` and one page per tracked class to
        the folder `<stem>_files/` beside it.

        Each page is a new file renamed over the old one; a symbolic link
        at `fname` is followed, one in place of the folder or of a class
        page is refused (``OSError``).  `_named`: False when classtrack
        chose `fname` (a link there is refused too)."""
        # lazy: only HTML reports need the renderer and its imports
        from classtrack.report.html import write_report
        if self.tracker is not None:
            self.tracker.stop_periodic_snapshots()
        self._refresh()
        write_report(self, fname, title, named=_named)


def convert_pympler_dump(src: Union[str, os.PathLike], dst: Union[str, os.PathLike]) -> None:
    """Convert a Pympler dump (a pickle) into a classtrack dump.

    Only for files you trust: reading a pickle can run code.  Unpickling is
    restricted to the classes a Pympler dump contains (Pympler need not be
    installed)."""
    import pickle  # lazy: only converting a Pympler dump unpickles

    class _Obj:
        def __setstate__(self, state: Any) -> None:
            self.__dict__.update(state if isinstance(state, dict) else state[1] or {})

    allowed = {("collections", "defaultdict"), ("builtins", "list"), ("builtins", "dict")}

    class _Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in allowed:
                return pickle.Unpickler.find_class(self, module, name)
            if module.startswith("pympler."):
                return type(name, (_Obj,), {})
            raise DumpError("refusing to load %s.%s from a pickle" % (module, name))

    with open(src, "rb") as f:
        unpickler = _Unpickler(f)
        index = unpickler.load()
        snapshots = unpickler.load()
    names = sorted(index)
    recs = [(n, t) for n, objs in index.items() for t in objs]
    recs.sort(key=lambda r: getattr(r[1], "birth", 0.0))
    ids = array.array("Q", [int(getattr(t, "id", 0)) for _, t in recs])
    rname = array.array("I", [names.index(n) for n, _ in recs])
    births = array.array("d", [float(getattr(t, "birth", 0.0) or 0.0) for _, t in recs])
    deaths = array.array("d", [float(getattr(t, "death", 0.0) or 0.0) for _, t in recs])
    reprs = {i: str(getattr(t, "repr", "")) for i, (_, t) in enumerate(recs) if getattr(t, "repr", "")}
    snaps = []
    for s in snapshots:
        ts = float(getattr(s, "timestamp", 0.0))
        idx, size, flat = array.array("I"), array.array("Q"), array.array("Q")
        for i, (_, t) in enumerate(recs):
            for sts, asz in getattr(t, "snapshots", []):
                if sts == ts:
                    idx.append(i)
                    size.append(int(getattr(asz, "size", 0)))
                    flat.append(int(getattr(asz, "flat", 0)))
        snaps.append((ts, str(getattr(s, "desc", "")), int(getattr(s, "tracked_total", 0)),
                      int(getattr(s, "asizeof_total", 0) or 0), int(getattr(s, "overhead", 0) or 0),
                      0.0, 0.0, False, None, idx.tobytes(), size.tobytes(), flat.tobytes(), {}))
    data = (names, [], ids.tobytes(), rname.tobytes(), bytes(4 * len(recs)), births.tobytes(),
            deaths.tobytes(), bytes(4 * len(recs)), reprs, [], snaps)
    with _safefile.replacing(dst, named=True) as f:
        _core.dump_write(f, data)
