"""Several dumps as one: the processes of a ``run --follow-fork``.

``load(paths, cls)`` reads each dump's columns (the dataset tuple of
``_core/dump/dumpfmt.h``), merges them column by column into one dataset, and
loads that into a ``Stats`` subclass through the dump reader, so every
report works on the merged data unchanged.  Each dump also gets a
``Process`` summary for the per-process breakdown.

How the columns combine:

* tracking names and classes: the union, first appearance first; each
  record's name and class numbers, trace numbers, custom reprs and
  referent trees are renumbered;
* records: one after the other, dumps in the order of their first
  snapshot.  A record still alive at its process's last snapshot is given
  a death just after it (the process ended: its objects went with it), so
  it does not count as alive after its process;
* snapshots: one merged snapshot per snapshot of any process, in time
  order (the dumps of one ``--follow-fork`` run share the parent's clock).
  A merged snapshot holds, for every process running at that instant
  (between its first and last snapshot), the entries of its snapshot
  nearest in time: live counts are exact at that instant (from births and
  deaths), sizes are each process's nearest measurement (processes are not
  measured at the same instants), totals (tracked, RSS, VSZ) are sums over
  those processes.  Its label is the process's
  own, with ``(pid N)``.  Over ``MAX_SNAPSHOTS`` merged snapshots, evenly
  spread ones are kept, with each process's first and last.
"""
import array
import bisect
import math
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from classtrack import _core
from classtrack._dumps import UserError, load_stats, read_dump, say_unfinished
from classtrack._rows import PROCESS_RSS, Dataset, SnapRow, dataset
from classtrack.report.svg import fmt_bytes, fmt_seconds
from classtrack.report.table import ClassRow

MAX_SNAPSHOTS = 1000
# NAME.<run>.<pid>.ctdump (run --follow-fork); NAME.<pid>.ctdump before runs had tokens
_PID = re.compile(r"(?:\.([0-9a-f]{8}))?\.(\d+)\.ctdump$")


class Process:
    """One dump of a merge: the process that wrote it and its own figures."""

    def __init__(self, path: str, raw: tuple, info: Optional[Dict[str, Any]] = None) -> None:
        raw = dataset(raw)
        self.path = path
        m = _PID.search(os.path.basename(path))
        self.pid: Optional[int] = int(m.group(2)) if m else None
        # the dump's PROCESS section (1.2) says it too (the name, which the
        # user sees, comes first); older dumps have only the name
        info = info or {}
        if self.pid is None and "pid" in info:
            self.pid = info["pid"]
        self.ppid: Optional[int] = info.get("ppid")
        self.run: Optional[str] = m.group(1) if m else None
        snaps = raw.snaps
        self.times = [row.time for row in snaps]
        self.labels = [row.desc for row in snaps]
        self.nrecords = len(raw.rec_id) // 8
        self.rows = _class_rows(raw)
        # (time, bytes) at each of its snapshots that read the process's numbers
        self.rss: List[Tuple[float, int]] = [(row.time, row.process[PROCESS_RSS])
                                             for row in snaps if row.process is not None]

    @property
    def label(self) -> str:
        """The pid, or for a dump not named NAME.<run>.<pid>.ctdump, its file name."""
        return "pid %d" % self.pid if self.pid is not None else os.path.basename(self.path)

    def rows_with_instances(self, contains: Optional[str] = None
                            ) -> Tuple[List[ClassRow], int]:
        """The classes (whose name holds `contains`) that had instances in
        this process, and how many matching ones had none (classes tracked
        in every process of the run, by name, module or package, that this
        one never made)."""
        rows = [r for r in self.rows if not contains or contains in r.name]
        shown = [r for r in rows if r.instances]
        return shown, len(rows) - len(shown)

    @property
    def start(self) -> Optional[float]:
        return self.times[0] if self.times else None

    @property
    def end(self) -> Optional[float]:
        return self.times[-1] if self.times else None

    def as_dict(self, contains: Optional[str] = None) -> Dict[str, Any]:
        """This process for report --json: the classes it made instances
        of, as the text and HTML tables list them, and how many others
        ("classes_without_instances": tracked by name, module or package
        in every process of the run, never made in this one)."""
        shown, hidden = self.rows_with_instances(contains)
        return {
            "pid": self.pid,
            "ppid": self.ppid,
            "dump": self.path,
            "instances": self.nrecords,
            "snapshots": len(self.times),
            "start": self.start, "end": self.end,
            "end_label": self.labels[-1] if self.labels else None,
            "classes": [{"name": r.name, "instances": r.instances,
                         "peak_size": r.peak_size, "peak_count": r.peak_count,
                         "last_size": r.last_size, "last_count": r.last_count}
                        for r in shown],
            "classes_without_instances": hidden,
        }


def _class_rows(raw: Dataset) -> List[ClassRow]:
    """Per class of one dump: instances and its series over the dump's own
    snapshots (what ``table.class_rows`` gives for that dump alone)."""
    names = raw.names
    counts = [0] * len(names)
    for n in memoryview(raw.rec_name).cast("I"):
        if n < len(counts):
            counts[n] += 1
    series = [_core.aggregate(raw.rec_name, raw.rec_birth, raw.rec_death, row.entries,
                              row.time, len(names))
              for row in raw.snaps]
    rows: Dict[str, ClassRow] = {}
    for n, name in enumerate(names):
        row = rows.get(name)
        sizes = [int(sums[n]) for sums, _, _ in series]
        active = [int(alive[n]) for _, _, alive in series]
        if row is None:
            rows[name] = ClassRow(name, counts[n], active, sizes)
        else:   # a name listed twice: one row
            row.instances += counts[n]
            row.counts = [a + b for a, b in zip(row.counts, active)]
            row.sizes = [a + b for a, b in zip(row.sizes, sizes)]
    return sorted(rows.values(), key=lambda r: (-r.peak_size, -r.peak_count, r.name))


def _read_columns(path: str) -> Tuple[Dataset, Dict[str, Any]]:
    info: Dict[str, Any] = {}
    with open(path, "rb", buffering=0) as f:    # read by the engine directly
        data = dataset(_core.dump_read(f, info))
    say_unfinished(path, info)
    return data, info


def load(paths: Sequence[str], cls: Any) -> Tuple[Any, List[Process]]:
    """A `cls` (Stats subclass) over the merged dumps, and one Process per
    dump in merge order (by first snapshot)."""
    seen: Dict[str, str] = {}
    for p in paths:
        key = os.path.realpath(p)
        if key in seen:
            raise UserError("%s is given twice (as %s and %s)" % (p, seen[key], p))
        seen[key] = p
    # each dump's columns and what kind of file it was (UserError naming a problem)
    read_ = [read_dump(p, _read_columns) for p in paths]
    raws = [raw for raw, _ in read_]
    order = sorted(range(len(paths)), key=lambda k: (_first_time(raws[k]), k))
    raws = [raws[k] for k in order]
    procs = [Process(paths[k], raw, read_[k][1]) for k, raw in zip(order, raws)]
    merged = merge(raws, [p.label for p in procs])
    stats = cls()
    stats._load_dataset(merged)
    return stats, procs


def run_of(path: str) -> Optional[str]:
    """The run token of a per-process dump's name, or None."""
    m = _PID.search(os.path.basename(path))
    return m.group(1) if m else None


def _one_run(paths: Sequence[str]) -> None:
    """UserError unless `paths` are the per-process dumps of one run
    (``NAME.<run>.<pid>.ctdump`` with one NAME and one token; or, from
    before runs had tokens, ``NAME.<pid>.ctdump`` with one NAME).  Merging
    adds processes that ran at the same time; dumps of different runs did
    not, and adding them up would mislead: ``diff`` compares them."""
    runs: Dict[Tuple[str, Optional[str]], List[str]] = {}
    for p in paths:
        m = _PID.search(os.path.basename(p))
        if m is None:
            raise UserError(
                "%s is not one of the per-process dumps of a 'run --follow-fork' "
                "(NAME.<run>.<pid>.ctdump): only the processes of one run are merged; "
                "to compare two runs, use 'classtrack diff OLD NEW'" % p)
        runs.setdefault((_PID.sub("", p), m.group(1)), []).append(p)
    if len(runs) < 2:
        return
    what = []
    for (base, token), group in sorted(runs.items(), key=lambda kv: -len(kv[1])):
        what.append("%s.%s*.ctdump (%d)" % (base, token + "." if token else "", len(group)))
    raise UserError("these dumps come from %d different runs: %s; report one run at a "
                    "time, and compare two with 'classtrack diff'"
                    % (len(runs), ", ".join(what)))


def _first_time(raw: Dataset) -> float:
    snaps = raw.snaps
    return snaps[0].time if snaps else math.inf


def merge(raws: Sequence[tuple], labels: Sequence[str]) -> tuple:
    """One dataset (the dumpfmt.h tuple) from several, in the given order.
    Columns are joined and renumbered in the engine (merge.c): no Python
    object per record or entry."""
    name_no: Dict[str, int] = {}
    class_no: Dict[str, int] = {}
    # the record columns, as bytes-like pieces, joined once
    ids: List[Any] = []
    rec_names: List[Any] = []
    rec_classes: List[Any] = []
    births: List[Any] = []
    deaths: List[Any] = []
    rec_traces: List[Any] = []
    reprs: Dict[int, str] = {}
    traces: List[Any] = []
    offsets: List[int] = []
    base = 0
    raws = [dataset(raw) for raw in raws]
    for raw in raws:
        (d_names, d_classes, d_id, d_name, d_class, d_birth, d_death, d_trace, d_reprs,
         d_traces, d_snaps) = raw
        offsets.append(base)
        nmap = array.array("I", [name_no.setdefault(n, len(name_no)) for n in d_names])
        cmap = array.array("I", [0] + [class_no.setdefault(c, len(class_no)) + 1
                                       for c in d_classes])
        tmap = array.array("I", range(len(traces), len(traces) + len(d_traces) + 1))
        tmap[0] = 0
        traces.extend(d_traces)
        end = d_snaps[-1].time if d_snaps else 0.0
        ids.append(d_id)
        rec_names.append(_core.remap_u32(d_name, nmap))
        rec_classes.append(_core.remap_u32(d_class, cmap))
        births.append(d_birth)
        # alive when its process ended: it died with the process
        deaths.append(_core.close_deaths(d_birth, d_death, end))
        rec_traces.append(_core.remap_u32(d_trace, tmap))
        for i, text in d_reprs.items():
            reprs[base + i] = text
        base += len(d_id) // 8
    names = sorted(name_no, key=name_no.get)
    classes = sorted(class_no, key=class_no.get)
    snaps = _merged_snapshots(raws, offsets, labels, base)
    return Dataset(names, classes, b"".join(ids), b"".join(rec_names), b"".join(rec_classes),
                   b"".join(births), b"".join(deaths), b"".join(rec_traces), reprs, traces,
                   snaps)


def _points(raws: Sequence[Dataset]) -> List[Tuple[float, int, int]]:
    """(time, dump, snapshot) of the merged timeline, at most MAX_SNAPSHOTS."""
    pts = sorted((row.time, d, k) for d, raw in enumerate(raws)
                 for k, row in enumerate(raw.snaps))
    if len(pts) <= MAX_SNAPSHOTS:
        return pts
    ends = {(d, 0) for d in range(len(raws))} | {(d, len(raw.snaps) - 1)
                                                for d, raw in enumerate(raws)}
    keep = [p for p in pts if p[1:] in ends]
    rest = [p for p in pts if p[1:] not in ends]
    room = max(0, MAX_SNAPSHOTS - len(keep))
    if room and rest:
        step = len(rest) / float(room)
        keep += [rest[int(j * step)] for j in range(min(room, len(rest)))]
    return sorted(keep)


def _nearest(ts: List[float], t: float) -> int:
    """The snapshot of one process nearest in time to t (the earlier if tied)."""
    j = bisect.bisect_right(ts, t) - 1
    if j + 1 < len(ts) and ts[j + 1] - t < t - ts[j]:
        return j + 1
    return j


def _merged_snapshots(raws: Sequence[Dataset], offsets: List[int],
                      labels: Sequence[str], nrec: int) -> List[SnapRow]:
    times = [[row.time for row in raw.snaps] for raw in raws]
    out = []
    for t, d, k in _points(raws):
        src = raws[d].snaps[k]
        parts = []
        trees: Dict[int, Any] = {}
        retained = bytearray()
        measured = False
        shared: Optional[int] = None
        tracked = asizeof_total = overhead = 0
        fields: Optional[List[int]] = None
        counted: Dict[str, List[int]] = {}     # summed over the processes
        for e, raw in enumerate(raws):
            ts = times[e]
            if not ts or not ts[0] <= t <= ts[-1]:
                continue
            j = k if e == d else _nearest(ts, t)
            row = raw.snaps[j]
            base = offsets[e]
            parts.append((row.entries, base))
            for i, tree in row.trees.items():
                trees[base + i] = tree
            if row.retained is not None:
                measured = True
                retained += row.retained
                if row.shared is not None:
                    shared = (shared or 0) + row.shared
            else:   # not measured in this process: zeros, one per entry
                retained += bytes(8 * len(row.entries))
            tracked += row.tracked_total
            asizeof_total += row.asizeof_total
            overhead += row.overhead
            for cls, n, size in row.counted or ():
                c = counted.setdefault(cls, [0, 0])
                c[0] += n
                c[1] += size
            if row.process is not None:
                fields = list(row.process) if fields is None else [
                    a + b for a, b in zip(fields, row.process)]
        desc = "%s (%s)" % (src.desc or "snapshot", labels[d])
        out.append(SnapRow(t, desc, tracked, asizeof_total, overhead, src.interval,
                           src.effective_interval, src.stretched,
                           tuple(fields) if fields is not None else None,
                           _core.entries_concat(parts, nrec), None, None, trees,
                           bytes(retained) if measured else None,
                           shared if measured else None,
                           tuple((cls, n, size) for cls, (n, size) in counted.items())
                           or None, src.collected))
    return out


# -- the per-process breakdown as text ---------------------------------------------------

# Dumps of 1.2 say which process started each (PROCESS: pid, ppid); older
# ones do not, and the breakdown says when each process started instead.
ORDER_NOTE = ("in the order they started (their first snapshot); parent: the process "
              "that started it (-: a dump from before classtrack recorded it)")


def parent_label(p: Process, procs: Sequence[Process]) -> str:
    """The parent of `p` as the breakdown shows it: "pid N", marked when
    it is not one of the run's processes (the shell that started the run)."""
    if p.ppid is None:
        return "-"
    if any(q.pid == p.ppid for q in procs):
        return "pid %d" % p.ppid
    return "pid %d (outside)" % p.ppid


def process_lines(procs: Sequence[Process], contains: Optional[str] = None) -> List[str]:
    """The per-process section of ``classtrack report``: one line per
    process and class it made instances of (instances ever tracked, peak
    and last in that process's own snapshots), then how many tracked
    classes each process made none of."""
    head = ("process", "parent", "started", "ended", "class", "instances", "peak size",
            "peak count", "last size", "last count")
    body: List[Tuple[str, ...]] = []
    left_out: List[Tuple[Process, int]] = []
    for p in procs:
        rows, hidden = p.rows_with_instances(contains)
        if hidden:
            left_out.append((p, hidden))
        started = fmt_seconds(p.start) if p.start is not None else "-"
        ended = p.labels[-1] if p.labels else ""
        parent = parent_label(p, procs)
        if not rows:
            body.append((p.label, parent, started, ended, "-", "0", "", "", "", ""))
        for r in rows:
            body.append((p.label, parent, started, ended, r.name, "{:,}".format(r.instances),
                         fmt_bytes(r.peak_size), "{:,}".format(r.peak_count),
                         fmt_bytes(r.last_size), "{:,}".format(r.last_count)))
    widths = [max(len(row[c]) for row in [head] + body) for c in range(len(head))]
    left = (0, 1, 3, 4)

    def line(row: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if c in left else v.rjust(w)
                         for c, (v, w) in enumerate(zip(row, widths))).rstrip()

    total = sum(p.nrecords for p in procs)
    out = (["", "%d processes, %s instances tracked; per process:"
            % (len(procs), "{:,}".format(total)), line(head)]
           + [line(row) for row in body])
    if left_out:
        out.append("(left out: the classes with no instances in that process, %s)"
                   % ", ".join("%s for %s" % ("{:,}".format(n), p.label) for p, n in left_out))
    out.append("(%s)" % ORDER_NOTE)
    return out


def load_any(paths: Any, cls: Any) -> Tuple[Any, Optional[List[Process]]]:
    """One dump as before (no breakdown), several merged with theirs."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if len(paths) == 1:
        return load_stats(paths[0], cls), None
    stats, procs = load(paths, cls)     # read first: a bad file is said first
    _one_run(paths)
    return stats, procs
