"""Reports of census files (``Census.dump``, ``classtrack attach -o``):
``report`` of one census or of a series, ``diff`` of two, ``html`` of one.
Like every report module, these take loaded censuses and never gather.

A series is several censuses of one process in time order (``attach
--every S --count N -o PREFIX``): the table gives each class's count and
bytes at the first and the last census and the change, and ``--growth N``
names the classes whose count rose at each of the last N censuses.
"""
import html
import json
import os
from typing import IO, Any, Dict, List, Optional, Sequence

from classtrack._census import FORMAT, Census, load_census
from classtrack._dumps import UserError

_SNIFF = 256


def is_census(path: str) -> bool:
    """Whether `path` looks like a census file (JSON of format
    classtrack-census) rather than a dump; a cheap look at its start."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and FORMAT.encode() in head


def which(paths: Sequence[str]) -> bool:
    """True when every path is a census, False when none is; UserError for
    a mix."""
    kinds = {is_census(p) for p in paths}
    if len(kinds) > 1:
        raise UserError("census files and dumps cannot be read together: %s"
                        % ", ".join(paths))
    return kinds == {True}


def load(paths: Sequence[str]) -> List[Census]:
    """The censuses of `paths`, in time order; UserError naming a bad one."""
    out = []
    for p in paths:
        try:
            out.append(load_census(p))
        except (ValueError, OSError) as e:
            raise UserError("cannot read %s: %s" % (p, getattr(e, "strerror", None) or e)) \
                from None
    pids = {c.pid for c in out}
    if len(pids) > 1:
        raise UserError("these censuses are of %d processes (PIDs %s): a series is of one"
                        % (len(pids), ", ".join(str(p) for p in sorted(pids))))
    return sorted(out, key=lambda c: c.time)


def _n(v: Optional[int]) -> str:
    return "" if v is None else format(v, ",")


def _signed(v: int) -> str:
    return "%+d" % v if abs(v) < 1000 else ("+" if v > 0 else "-") + format(abs(v), ",")


def _contains(name: str, contains: Optional[str]) -> bool:
    return contains is None or contains in name


def report(censuses: List[Census], out: IO[str], limit: Optional[int] = None,
           contains: Optional[str] = None, as_json: bool = False,
           growth: Optional[int] = None) -> None:
    """One census as its table, several as a series."""
    if len(censuses) == 1 and growth is None:
        c = censuses[0]
        if as_json:
            doc = c.as_json()
            doc["classes"] = [r for r in doc["classes"] if _contains(r["name"], contains)]
            doc["classes"] = doc["classes"][:limit] if limit else doc["classes"]
            out.write(json.dumps(doc) + "\n")
            return
        if contains is not None:
            c = Census([r for r in c.classes if _contains(r.name, contains)], c.objects,
                       c.bytes, c.pause_s, c.package, c.pid, c.python, c.time)
        c.print(limit=limit or 20, file=out)
        return
    series = _series(censuses, contains)
    if growth is not None:
        _growth(censuses, series, growth, out, limit, as_json)
        return
    if as_json:
        out.write(json.dumps({"format": "classtrack-census-series", "version": 1,
                              "pid": censuses[0].pid, "times": [c.time for c in censuses],
                              "classes": [{"name": n, "counts": counts, "sizes": sizes}
                                          for n, counts, sizes in series[:limit]]}) + "\n")
        return
    first, last = censuses[0], censuses[-1]
    out.write("%d censuses of process %d over %.1f s: %s -> %s objects, %s -> %s bytes\n"
              % (len(censuses), first.pid, last.time - first.time, _n(first.objects),
                 _n(last.objects), _n(first.bytes), _n(last.bytes)))
    rows = series[:limit] if limit else series
    width = max([len(n) for n, _, _ in rows] + [5])
    out.write("%-*s  %11s  %11s  %9s  %13s  %13s\n" % (width, "class", "first count",
                                                     "last count", "change", "last bytes",
                                                     "change"))
    for name, counts, sizes in rows:
        out.write("%-*s  %11s  %11s  %9s  %13s  %13s\n" % (
            width, name, _n(counts[0]), _n(counts[-1]), _signed(counts[-1] - counts[0]),
            _n(sizes[-1]), _signed(sizes[-1] - sizes[0])))
    if len(series) > len(rows):
        out.write("(%d more classes not shown: --limit)\n" % (len(series) - len(rows)))


def _series(censuses: List[Census], contains: Optional[str]) -> List[Any]:
    """[(name, counts, sizes)] over the censuses, largest growth in bytes
    first; a class absent from a census counts 0 there."""
    names: Dict[str, None] = {}
    for c in censuses:
        for r in c.classes:
            if _contains(r.name, contains):
                names.setdefault(r.name)
    by_name = [{r.name: r for r in c.classes} for c in censuses]
    table = []
    for name in names:
        rows = [index.get(name) for index in by_name]
        table.append((name, [r.count if r else 0 for r in rows],
                      [r.size if r else 0 for r in rows]))
    table.sort(key=lambda t: (-(t[2][-1] - t[2][0]), t[0]))
    return table


def _growth(censuses: List[Census], series: List[Any], n: int, out: IO[str],
            limit: Optional[int], as_json: bool) -> None:
    if n < 1:
        raise UserError("--growth needs at least 1 interval, not %d" % n)
    found = [(name, counts, sizes) for name, counts, sizes in series
             if len(counts) > n and all(counts[-k] > counts[-k - 1] for k in range(1, n + 1))]
    found = found[:limit] if limit else found
    if as_json:
        out.write(json.dumps({"format": "classtrack-census-growth", "version": 1,
                              "pid": censuses[0].pid, "intervals": n,
                              "times": [c.time for c in censuses],
                              "classes": [{"name": name, "counts": counts[-n - 1:],
                                           "sizes": sizes[-n - 1:]}
                                          for name, counts, sizes in found]}) + "\n")
        return
    if len(censuses) <= n:
        out.write("nothing to show: --growth %d needs %d censuses, there %s %d\n"
                  % (n, n + 1, "is" if len(censuses) == 1 else "are", len(censuses)))
        return
    if not found:
        out.write("no class grew at each of the last %d censuses of process %d\n"
                  % (n, censuses[0].pid))
        return
    out.write("%d %s grew at each of the last %d censuses of process %d:\n"
              % (len(found), "class" if len(found) == 1 else "classes", n, censuses[0].pid))
    for name, counts, sizes in found:
        out.write("  %s: %s (%s bytes)\n" % (name, " -> ".join(_n(c) for c in counts[-n - 1:]),
                                           _signed(sizes[-1] - sizes[-n - 1])))


def diff(old: Census, new: Census, out: IO[str], limit: Optional[int] = None,
         as_json: bool = False) -> None:
    """Per class, new minus old, the largest growth in bytes first."""
    changes = new.diff(old)
    shown = changes[:limit] if limit else changes
    if as_json:
        out.write(json.dumps({"format": "classtrack-census-diff", "version": 1,
                              "old": {"pid": old.pid, "time": old.time},
                              "new": {"pid": new.pid, "time": new.time},
                              "classes": [c._asdict() for c in shown]}) + "\n")
        return
    out.write("census of process %d at +%.1f s against process %d: %s objects (%s), "
              "%s bytes (%s)\n" % (new.pid, new.time - old.time, old.pid, _n(new.objects),
                                   _signed(new.objects - old.objects), _n(new.bytes),
                                   _signed(new.bytes - old.bytes)))
    if not changes:
        out.write("no class changed\n")
        return
    width = max([len(c.name) for c in shown] + [5])
    out.write("%-*s  %11s  %9s  %13s  %13s\n" % (width, "class", "count", "change", "bytes",
                                                "change"))
    for c in shown:
        out.write("%-*s  %11s  %9s  %13s  %13s\n" % (width, c.name, _n(c.count),
                                                    _signed(c.count_change), _n(c.size),
                                                    _signed(c.size_change)))
    if len(changes) > len(shown):
        out.write("(%d more classes changed: --limit)\n" % (len(changes) - len(shown)))


def html_page(c: Census, title: Optional[str] = None) -> str:
    """One census as a self-contained HTML page (every name escaped)."""
    esc = html.escape
    head = title or "classtrack census of process %d" % c.pid
    rows = "".join(
        "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n" % (
            esc(r.name), _n(r.count), _n(r.size), _n(r.retained), esc(r.path or ""))
        for r in c.classes)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title>\n"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{padding:2px 10px;border-bottom:1px solid #ddd}"
            "td:nth-child(2),td:nth-child(3),td:nth-child(4){text-align:right}</style>"
            "</head><body>\n<h1>%s</h1>\n<p>Python %s, %s objects, %s bytes, %d classes; "
            "the census took %.2f s.</p>\n<table><tr><th>class</th><th>count</th>"
            "<th>bytes</th><th>retained</th><th>why one is alive</th></tr>\n%s</table>\n"
            "</body></html>\n" % (esc(head), esc(head), esc(c.python), _n(c.objects),
                                  _n(c.bytes), len(c.classes), c.pause_s, rows))


def default_html_name(path: str) -> str:
    return os.path.splitext(path)[0] + ".html"
