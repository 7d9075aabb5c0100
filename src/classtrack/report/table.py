"""The compact per-class table of ``classtrack report``, and its JSON form.

Data in, text out: ``class_rows(stats)`` reads the public ``Stats`` API
(``snapshots``, ``index``, ``annotate_snapshot``) into one ``ClassRow``
per class; ``format_table`` and ``as_json`` lay the rows out.  Nothing
here reads a tracker or a file.
"""
import json
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from classtrack.report.svg import fmt_bytes

JSON_FORMAT = "classtrack-report"
JSON_VERSION = 1


class ClassRow:
    """One class over all snapshots: its live count and size in each."""

    __slots__ = ("name", "instances", "counts", "sizes", "retained")

    def __init__(self, name: str, instances: int, counts: List[int], sizes: List[int],
                 retained: Optional[List[Optional[int]]] = None) -> None:
        self.name = name
        self.instances = instances      # tracked over the whole run, alive or not
        self.counts = counts            # alive at each snapshot
        self.sizes = sizes              # bytes at each snapshot
        # retained bytes at each snapshot (None where not measured)
        self.retained = retained if retained is not None else [None] * len(sizes)

    @property
    def last_retained(self) -> Optional[int]:
        """Retained bytes at the latest snapshot that measured them."""
        for r in reversed(self.retained):
            if r is not None:
                return r
        return None

    def _peak(self, series: List[int]) -> Tuple[int, Optional[int]]:
        """(largest value, first snapshot holding it); (0, None) if no snapshot."""
        if not series:
            return 0, None
        top = max(series)
        return top, series.index(top)

    @property
    def peak_size(self) -> int:
        return self._peak(self.sizes)[0]

    @property
    def peak_count(self) -> int:
        return self._peak(self.counts)[0]

    @property
    def last_size(self) -> int:
        return self.sizes[-1] if self.sizes else 0

    @property
    def last_count(self) -> int:
        return self.counts[-1] if self.counts else 0

    @property
    def size_change(self) -> int:
        return self.sizes[-1] - self.sizes[0] if self.sizes else 0

    @property
    def count_change(self) -> int:
        return self.counts[-1] - self.counts[0] if self.counts else 0

    def as_dict(self) -> Dict[str, Any]:
        peak_size, at_size = self._peak(self.sizes)
        peak_count, at_count = self._peak(self.counts)
        return {
            "name": self.name,
            "instances": self.instances,
            "peak_size": peak_size, "peak_size_snapshot": at_size,
            "peak_count": peak_count, "peak_count_snapshot": at_count,
            "last_size": self.last_size, "last_count": self.last_count,
            "size_change": self.size_change, "count_change": self.count_change,
            "sizes": list(self.sizes), "counts": list(self.counts),
            "retained": list(self.retained), "last_retained": self.last_retained,
        }


def instance_counts(stats: Any) -> Dict[str, int]:
    """{classname: instances tracked}, from the columns when `stats` has
    them (a classtrack Stats makes no view for it), else from its index."""
    counts = getattr(stats, "_class_counts", None)
    if counts is not None:
        return counts()
    return {name: len(objs) for name, objs in stats.index.items()}


def class_rows(stats: Any, contains: Optional[str] = None) -> List[ClassRow]:
    """Rows for the classes of `stats` (those whose name contains `contains`,
    if given), largest peak size first, then by name."""
    per_snapshot = [stats.annotate_snapshot(s) for s in stats.snapshots]
    instances = instance_counts(stats)
    rows = []
    for name in stats.tracked_classes:
        if contains and contains not in name:
            continue
        counts, sizes, retained = [], [], []
        for classes in per_snapshot:
            info = classes.get(name)
            counts.append(int(info["active"]) if info else 0)
            sizes.append(int(info["sum"]) if info else 0)
            r = info.get("retained") if info else None
            retained.append(None if r is None else int(r))
        rows.append(ClassRow(name, instances.get(name, 0), counts, sizes, retained))
    rows.sort(key=lambda r: (-r.peak_size, -r.peak_count, r.name))
    return rows


COUNTED_HEADING = "counted at snapshots (not followed one by one):"


def counted_rows(stats: Any, contains: Optional[str] = None) -> List[ClassRow]:
    """Rows for the count-only classes of `stats` (``Snapshot.counted``:
    instances counted and sized at each snapshot, never followed one by
    one, so no births, deaths or lifetimes), largest peak size first.
    Their ``instances`` is 0: nothing was tracked."""
    snaps = stats.snapshots
    names: Dict[str, None] = {}
    for s in snaps:
        for name in getattr(s, "counted", None) or ():
            names[name] = None
    rows = []
    for name in names:
        if contains and contains not in name:
            continue
        figures = [(getattr(s, "counted", None) or {}).get(name, (0, 0)) for s in snaps]
        rows.append(ClassRow(name, 0, [n for n, _ in figures], [b for _, b in figures]))
    rows.sort(key=lambda r: (-r.peak_size, -r.peak_count, r.name))
    return rows


def counted_dict(row: ClassRow) -> Dict[str, Any]:
    """A count-only class in ``report --json`` ("counted")."""
    d = row.as_dict()
    for key in ("instances", "retained", "last_retained"):
        del d[key]
    return d


def total_row(rows: Sequence[ClassRow], nsnapshots: int) -> ClassRow:
    """The rows summed snapshot by snapshot: its peak is the largest total
    at one instant, not a sum of peaks."""
    counts = [sum(r.counts[k] for r in rows) for k in range(nsnapshots)]
    sizes = [sum(r.sizes[k] for r in rows) for k in range(nsnapshots)]
    retained: List[Optional[int]] = []
    for k in range(nsnapshots):
        measured = [r.retained[k] for r in rows if r.retained[k] is not None]
        retained.append(sum(measured) if measured else None)
    return ClassRow("(%d classes)" % len(rows), sum(r.instances for r in rows), counts, sizes,
                    retained)


def limit_rows(rows: List[ClassRow], limit: Optional[float]) -> List[ClassRow]:
    """`limit` as the object listing reads it: a count, or below 1 a share."""
    if limit is None:
        return rows
    if limit < 1.0:
        return rows[:max(1, int(len(rows) * limit))]
    return rows[:int(limit)]


# -- text ------------------------------------------------------------------------

def _count(n: int) -> str:
    return "{:,}".format(n)


def _signed(text: str, n: int) -> str:
    if n == 0:
        return "0"
    return ("+" if n > 0 else "-") + text


def _size_change(n: int) -> str:
    return _signed(fmt_bytes(abs(n)), n)


def _count_change(n: int) -> str:
    return _signed(_count(abs(n)), n)


# (group, column, value of a row)
_COLUMNS = (
    ("peak", "size", lambda r: fmt_bytes(r.peak_size)),
    ("peak", "count", lambda r: _count(r.peak_count)),
    ("last", "size", lambda r: fmt_bytes(r.last_size)),
    ("last", "count", lambda r: _count(r.last_count)),
    ("change", "size", lambda r: _size_change(r.size_change)),     # first to last
    ("change", "count", lambda r: _count_change(r.count_change)),
)
# retained bytes at the latest snapshot that measured them
_RETAINED = ("last", "retained", lambda r: "-" if r.last_retained is None
             else fmt_bytes(r.last_retained))
_GAP = 2


def _span(text: str, width: int) -> str:
    """A group label centred over `width` columns: '--- peak ---'."""
    return (" %s " % text).center(width, "-")


def format_table(rows: Sequence[ClassRow], width: Optional[int] = None,
                 total: Optional[ClassRow] = None) -> List[str]:
    """The table as lines.  `width`: the line length to fit (None: no limit).
    A `total` row comes last, under a rule."""
    body = list(rows) + ([total] if total is not None else [])
    columns = _COLUMNS
    if any(r.last_retained is not None for r in body):     # snapshots measured them
        columns = _COLUMNS[:4] + (_RETAINED,) + _COLUMNS[4:]
    return grouped_lines(columns, body, width, total is not None)


def grouped_lines(columns: Sequence[Tuple[str, str, Callable[[Any], str]]],
                  rows: Sequence[Any], width: Optional[int] = None,
                  rule_before_last: bool = False) -> List[str]:
    """The one table layout of ``report`` and ``diff``: a class column, then
    number columns (`columns`: group, heading, the cell of a row) under
    group labels ('--- peak ---').  Number columns are as wide as their
    widest value and their group's label; the class column takes the rest
    of `width` (None: no limit), and a name longer than that is written
    whole on a line of its own with its numbers on the next (as ``df``
    does), so names are never cut."""
    cells = [[value(r) for _, _, value in columns] for r in rows]
    widths = [len(col) for _, col, _ in columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    # a group's label must fit over its columns
    groups: List[Tuple[str, List[int]]] = []
    for k, (group, _, _) in enumerate(columns):
        if groups and groups[-1][0] == group:
            groups[-1][1].append(k)
        else:
            groups.append((group, [k]))
    for group, cols in groups:
        span = sum(widths[k] for k in cols) + _GAP * (len(cols) - 1)
        short = len(group) + 4 - span      # at least '- group -'
        if short > 0:
            widths[cols[-1]] += short
    numbers = sum(widths) + _GAP * len(widths)
    longest = max([len("class")] + [len(r.name) for r in rows])
    name_width = longest
    if width is not None and longest + numbers > width:
        name_width = max(len("class"), width - numbers)

    def line(name: str, values: Sequence[str]) -> str:
        out = name.ljust(name_width)
        for w, v in zip(widths, values):
            out += " " * _GAP + v.rjust(w)
        return out.rstrip()

    head = " " * name_width
    for group, cols in groups:
        span = sum(widths[k] for k in cols) + _GAP * (len(cols) - 1)
        head += " " * _GAP + _span(group, span)
    lines = [head, line("class", [col for _, col, _ in columns])]
    for k, (r, values) in enumerate(zip(rows, cells)):
        if rule_before_last and k == len(rows) - 1:
            lines.append("-" * len(lines[1]))
        if len(r.name) > name_width:
            lines.append(r.name)
            lines.append(line("", values))
        else:
            lines.append(line(r.name, values))
    return lines


def describe(stats: Any, rows: Sequence[ClassRow], contains: Optional[str] = None,
             counted: Sequence[ClassRow] = ()) -> str:
    """One line: what the data covers (the classes of `rows`, those whose
    name contains `contains` when a filter chose them, and the `counted`
    classes)."""
    snaps = stats.snapshots
    nclasses = len(rows)
    instances = sum(r.instances for r in rows)
    text = "%s %s%s, %s %s tracked, %s%d %s" % (
        _count(nclasses), "class" if nclasses == 1 else "classes",
        " matching %r" % contains if contains else "",
        _count(instances), "instance" if instances == 1 else "instances",
        "%s %s counted at snapshots, " % (_count(len(counted)), "class" if len(counted) == 1
                                          else "classes") if counted else "",
        len(snaps), "snapshot" if len(snaps) == 1 else "snapshots")
    if len(snaps) > 1:
        text += " over %.2f s" % (snaps[-1].timestamp - snaps[0].timestamp)
        if snaps[0].desc or snaps[-1].desc:
            text += " (%s to %s)" % (snaps[0].desc or "first", snaps[-1].desc or "last")
    text += collected_note(snaps)
    return text


def collected_note(snaps: Any) -> str:
    """Which snapshots followed a full garbage collection (their counts
    leave out cycles nothing held any more), as a clause of the header."""
    done = [s for s in snaps if getattr(s, "collected", False)]
    if not done:
        return ""
    if len(done) == len(snaps):
        return "; every snapshot after gc.collect()"
    if len(done) == 1:
        return "; the %s snapshot after gc.collect()" % (done[0].desc or "one")
    return "; %d snapshots after gc.collect() (the others may count unreachable cycles)" \
        % len(done)


# -- JSON ------------------------------------------------------------------------

def _snapshot_dict(s: Any) -> Dict[str, Any]:
    proc = s.system_total
    available = proc is not None and getattr(proc, "available", False)
    return {
        "label": s.desc,
        "time": s.timestamp,
        "tracked_total": int(s.tracked_total or 0),
        "collected": bool(getattr(s, "collected", False)),
        "vsz": int(proc.vsz) if available else None,
        "rss": int(proc.rss) if available else None,
    }


def as_json(stats: Any, rows: Sequence[ClassRow], source: Optional[str] = None,
            extra: Optional[Dict[str, Any]] = None,
            counted: Sequence[ClassRow] = ()) -> str:
    """The rows and the snapshots they refer to, as a JSON document (the
    schema is in docs/cli.md, section "report --json"); `extra`: more
    top-level fields (a merge's "dumps" and "processes"); `counted`: the
    count-only classes (``counted_rows``)."""
    doc = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "dump": source,
        "snapshots": [_snapshot_dict(s) for s in stats.snapshots],
        "classes": [r.as_dict() for r in rows],
        "counted": [counted_dict(r) for r in counted],
    }
    doc.update(extra or {})
    return json.dumps(doc, separators=(",", ":"))
