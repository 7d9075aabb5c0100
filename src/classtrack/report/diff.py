"""Per-class diffs between two snapshots, and classes that keep growing.

Data in, text out: ``ClassDiff`` holds the rows ``Stats.diff`` computed
from the per-class aggregates of two snapshots and lays them out as a
table or JSON; ``growing(rows, n)`` picks, from the report's ``ClassRow``
list, the classes whose live count rose at each of the last ``n``
snapshots.  Nothing here reads a tracker or a file.
"""
import json
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from classtrack.report.svg import fmt_bytes
from classtrack.report.table import _count, _count_change, _size_change, grouped_lines

JSON_FORMAT = "classtrack-diff"
JSON_VERSION = 1
_GAP = 2


class DiffRow:
    """One class: its live count, size and retained bytes in the old and the
    new snapshot, and the changes (new minus old).  A class missing on one
    side counts 0 there.  Retained figures are None where that snapshot did
    not measure retained sizes; the change is then None too."""

    __slots__ = ("name", "old_count", "new_count", "old_size", "new_size",
                 "old_retained", "new_retained", "counted")

    def __init__(self, name: str, old: Tuple[int, int, Optional[int]],
                 new: Tuple[int, int, Optional[int]], counted: bool = False) -> None:
        self.name = name
        # a count-only class: counted at snapshots, not followed one by one
        self.counted = counted
        self.old_count, self.old_size, self.old_retained = old
        self.new_count, self.new_size, self.new_retained = new

    @property
    def count_delta(self) -> int:
        return self.new_count - self.old_count

    @property
    def size_delta(self) -> int:
        return self.new_size - self.old_size

    @property
    def retained_delta(self) -> Optional[int]:
        if self.old_retained is None or self.new_retained is None:
            return None
        return self.new_retained - self.old_retained

    @property
    def changed(self) -> bool:
        return bool(self.count_delta or self.size_delta or self.retained_delta)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "old_count": self.old_count, "new_count": self.new_count,
            "count_change": self.count_delta,
            "old_size": self.old_size, "new_size": self.new_size,
            "size_change": self.size_delta,
            "old_retained": self.old_retained, "new_retained": self.new_retained,
            "retained_change": self.retained_delta,
            "counted": self.counted,
        }

    def __repr__(self) -> str:
        return "<DiffRow %s count %+d size %+d retained %s>" % (
            self.name, self.count_delta, self.size_delta,
            "?" if self.retained_delta is None else "%+d" % self.retained_delta)


def _label(snapshot: Any) -> str:
    return snapshot.label if snapshot is not None else ""


class ClassDiff:
    """The rows of a diff, largest size growth first (then count growth,
    then name).  Iterable and indexable like a list of ``DiffRow``;
    ``str()`` is the table, ``as_json()`` the document ``classtrack diff
    --json`` prints."""

    def __init__(self, rows: List[DiffRow], old: Any = None, new: Any = None) -> None:
        self.rows = sorted(rows, key=lambda r: (-r.size_delta, -r.count_delta, r.name))
        self.old = old          # the Snapshot compared from
        self.new = new          # the Snapshot compared to

    def __iter__(self) -> Iterator[DiffRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, k: Any) -> Any:
        return self.rows[k]

    def row(self, name: str) -> Optional[DiffRow]:
        """The row of class `name`, or None."""
        return next((r for r in self.rows if r.name == name), None)

    @property
    def has_retained(self) -> bool:
        return any(r.retained_delta is not None for r in self.rows)

    def changed(self) -> List[DiffRow]:
        return [r for r in self.rows if r.changed]

    def format(self, width: Optional[int] = None, limit: Optional[int] = None) -> str:
        """The changed classes as a table (one line per class; `width`: the
        line length to fit, None for no limit; `limit`: at most that many
        rows), then a line counting the unchanged ones."""
        rows = self.changed()
        shown = rows if limit is None else rows[:limit]
        lines = ["%s -> %s: %s changed, %s unchanged" % (
            _label(self.old) or "old", _label(self.new) or "new",
            _plural(len(rows), "class", "classes"), _count(len(self.rows) - len(rows)))]
        if shown:
            lines += format_rows(shown, width, self.has_retained)
        if len(shown) < len(rows):
            lines.append("(%s not shown: --limit)" % _plural(len(rows) - len(shown),
                                                            "more class", "more classes"))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return "<ClassDiff %d rows>" % len(self.rows)

    def as_json(self, old_source: Optional[str] = None, new_source: Optional[str] = None,
                limit: Optional[int] = None) -> str:
        def side(s: Any, source: Optional[str]) -> Dict[str, Any]:
            return {"dump": source, "label": s.desc if s is not None else None,
                    "time": s.timestamp if s is not None else None}
        rows = self.rows if limit is None else self.rows[:limit]
        return json.dumps({"format": JSON_FORMAT, "version": JSON_VERSION,
                           "old": side(self.old, old_source),
                           "new": side(self.new, new_source),
                           "classes": [r.as_dict() for r in rows]},
                          separators=(",", ":"))


def _plural(n: int, one: str, many: str) -> str:
    return "%s %s" % (_count(n), one if n == 1 else many)


def _retained_change(r: DiffRow) -> str:
    d = r.retained_delta
    return "?" if d is None else _size_change(d)


_COLUMNS = (
    ("count", "old", lambda r: _count(r.old_count)),
    ("count", "new", lambda r: _count(r.new_count)),
    ("count", "change", lambda r: _count_change(r.count_delta)),
    ("size", "old", lambda r: fmt_bytes(r.old_size)),
    ("size", "new", lambda r: fmt_bytes(r.new_size)),
    ("size", "change", lambda r: _size_change(r.size_delta)),
)
_RETAINED = (("retained", "change", _retained_change),)


def format_rows(rows: Sequence[DiffRow], width: Optional[int] = None,
                retained: bool = False) -> List[str]:
    """The rows as table lines, laid out as the report's table: number
    columns as wide as their values, the class column the rest of `width`,
    a name that does not fit on a line of its own above its numbers."""
    columns = _COLUMNS + (_RETAINED if retained else ())
    return grouped_lines(columns, [_Marked(r) if r.counted else r for r in rows], width)


class _Marked:
    """A count-only class's row as the table shows it: its name marked."""

    def __init__(self, row: DiffRow) -> None:
        self._row = row
        self.name = row.name + " (counted)"

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._row, attr)


# -- growth ------------------------------------------------------------------------

def spaced(times: Sequence[float], labels: Optional[Sequence[str]] = None) -> List[int]:
    """The indices of the snapshots to judge growth on: all of them, less
    each periodic (unlabelled) one taken less than half the usual spacing
    (the median gap between periodic ones) before the next one kept.  A
    labelled snapshot right after a periodic one (``classtrack run``'s exit
    snapshot, 0.1 s after the last periodic one) would otherwise show no
    change and hide a steady leak; the later of the two is kept (it is the
    newer state).  Labelled snapshots (taken on purpose) are all kept."""
    n = len(times)
    labels = list(labels) if labels is not None else [""] * n
    periodic = [k for k in range(n) if not labels[k]]
    gaps = sorted(times[b] - times[a] for a, b in zip(periodic, periodic[1:]) if b == a + 1)
    if n < 3 or not gaps:
        return list(range(n))
    usual = gaps[len(gaps) // 2]
    keep = [n - 1]
    for k in range(n - 2, -1, -1):
        if labels[k] or times[keep[-1]] - times[k] >= usual / 2:
            keep.append(k)
    return keep[::-1]


def growing(rows: Sequence[Any], n: int, keep: Optional[Sequence[int]] = None
            ) -> List[Tuple[Any, List[int]]]:
    """(row, its counts over the last `n` snapshots of `keep`, by default
    all) for every row (a ``ClassRow``) whose live count rose from each of
    those snapshots to the next, most growth first.  Fewer than `n`
    snapshots: none."""
    if n < 2:
        raise ValueError("growth needs at least 2 snapshots to compare, not %d" % n)
    out = []
    for r in rows:
        counts = list(r.counts[-n:]) if keep is None else [r.counts[k] for k in keep[-n:]]
        if len(counts) == n and all(a < b for a, b in zip(counts, counts[1:])):
            out.append((r, counts))
    out.sort(key=lambda rc: (-(rc[1][-1] - rc[1][0]), rc[0].name))
    return out


def format_growth(found: Sequence[Tuple[Any, List[int]]], labels: Sequence[str]) -> List[str]:
    """The growing classes, each with its counts at the snapshots `labels`."""
    name_width = max([len("class")] + [len(r.name) for r, _ in found])
    cells = [[_count(c) for c in counts] + [_count_change(counts[-1] - counts[0])]
             for _, counts in found]
    heads = list(labels) + ["change"]
    widths = [max([len(h)] + [len(row[k]) for row in cells]) for k, h in enumerate(heads)]

    def line(name: str, values: Sequence[str]) -> str:
        return (name.ljust(name_width) + "".join(
            " " * _GAP + v.rjust(w) for w, v in zip(widths, values))).rstrip()

    return [line("class", heads)] + [line(r.name, row) for (r, _), row in zip(found, cells)]


def growth_dict(found: Sequence[Tuple[Any, List[int]]], n: int,
                first: Optional[int], judged: Optional[Sequence[int]] = None
                ) -> Dict[str, Any]:
    """The "growth" field of ``report --json``: `first` is the index of the
    first of the last `n` snapshots judged (None if there are fewer than
    `n`), `judged` the indices of those snapshots."""
    out = {"last": n, "first_snapshot": first,
           "classes": [{"name": r.name, "counts": counts} for r, counts in found]}
    if judged is not None:
        out["snapshots"] = list(judged)
    return out
