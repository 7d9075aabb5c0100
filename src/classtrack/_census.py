"""What the whole heap holds, by class: ``classtrack.census()`` (this
module is private: its public names are classtrack's).

One walk of the heap graph (the engine behind ``retained_size`` and
``why_alive``) groups every object it finds by class: the classes of the
program, builtins (``dict``, ``str``, ...) and C types alike.  For each
class: how many instances, their exact bytes (the sizer's flat size of
each: its own allocations, not what it refers to), and on demand the
bytes freeing all of them would free (retained) and why one of them is
alive.

What is counted: every object the collector tracks (``gc.get_objects()``)
and every object one of them refers to.  Not counted: objects that only C
code holds and no object refers to (interned strings on 3.12+, objects a C
extension keeps in a static variable), non-GC objects (str, bytes, int,
float) that only the local variables of running functions hold (on 3.11+
a running function's frame is no object until something asks for it),
and the census's own objects.  The
bytes are the objects' bytes, not the process's: allocator slack, free
lists and C-level buffers that no object reports are not in them.

Cost: one heap-graph build and one flat size per object, about two
``gc.collect()``s; ``retained=True`` adds one walk of the graph per class
whose instances refer to anything, and ``paths=K`` one graph build per
path.  Nothing stays behind: the graph is C memory, freed before the
call returns.
"""
from __future__ import annotations

import gc
import json
import os
import sys
import time
from typing import IO, Any, Dict, Iterable, List, NamedTuple, Optional

from classtrack import _core, _safefile
from classtrack.alive import _qualname, release, why_alive

__all__ = ["Census", "CensusRow", "CensusChange", "census", "load_census"]

FORMAT = "classtrack-census"
VERSION = 1


class CensusRow(NamedTuple):
    """One class of a census."""
    name: str                   # module.qualname (builtins: bare name)
    count: int                  # instances found
    size: int                   # their bytes
    retained: Optional[int]     # bytes freed with all of them; None: not asked
    path: Optional[str]         # why one of them is alive; None: not asked


class CensusChange(NamedTuple):
    """One class of a census diff (new minus old)."""
    name: str
    count: int                  # instances in the new census
    size: int                   # their bytes in the new census
    count_change: int
    size_change: int


def _check(package: Any, retained: Any, paths: Any) -> None:
    if package is not None and (not isinstance(package, str) or not package or not all(
            p.isidentifier() for p in package.split("."))):
        raise ValueError("package must be a dotted module name like 'app' or "
                         "'app.models', not %r" % (package,))
    if not isinstance(retained, int) or (not isinstance(retained, bool) and retained < 1):
        raise ValueError("retained must be True, False or a number of classes >= 1, not %r"
                         % (retained,))
    if not isinstance(paths, int) or isinstance(paths, bool) or paths < 0:
        raise ValueError("paths must be an int >= 0, not %r" % (paths,))


def _in_package(tp: type, package: Optional[str]) -> bool:
    if package is None:
        return True
    mod = getattr(tp, "__module__", None)
    return isinstance(mod, str) and (mod == package or mod.startswith(package + "."))


def census(package: Optional[str] = None, retained: bool = False,
           paths: int = 0) -> "Census":
    """Every live object by class, largest first.

    ``package``: list only the classes defined in this package or its
    subpackages (the totals still cover the whole heap).  ``retained``:
    also the bytes freeing all of a class's instances would free (True:
    for every class; a number K: for the K largest, which costs less:
    one walk of the heap graph per class).
    ``paths``: the ``paths`` largest classes each get one ``why_alive``
    path, for one of their instances."""
    _check(package, retained, paths)
    start = time.perf_counter()
    # only this frame is left out (it holds the list of the heap): the
    # callers' frames are the program's, and what they hold is counted
    want = -1 if retained is True else int(retained)
    heap = gc.get_objects()
    try:
        raw, objects, nbytes = _core.census(heap, (sys._getframe(),), want)
    finally:
        release(heap)
        del heap
    # one row per class name: classes made again and again (a namedtuple
    # in a loop) are one line, as a reader would count them
    by_name: Dict[str, List[Any]] = {}
    leaves: List[Any] = []      # samples no path to a GC object goes through
    for tp, count, size, kept, sample in raw:
        if not _in_package(tp, package):
            continue
        name = _qualname(tp) if isinstance(tp, type) else repr(tp)
        row = by_name.get(name)
        if row is None:
            # an object the collector does not track holds no GC object
            leaf = not gc.is_tracked(sample)
            by_name[name] = [name, count, size, kept, tp, len(leaves) if leaf else None]
            if leaf:
                leaves.append(sample)
        else:
            row[1] += count
            row[2] += size
            row[3] = None if kept is None or row[3] is None else row[3] + kept
    raw.clear()
    sample = None
    rows = sorted(by_name.values(), key=lambda r: (-r[2], r[0]))
    out = []
    for i, (name, count, size, kept, tp, k) in enumerate(rows):
        path = None
        if i < paths:
            # one instance, held by this frame alone while its path is
            # sought: a sample another sample led to would otherwise show
            # as held from outside.  The untracked samples kept meanwhile
            # (str, int, tuples of them) lie on no path to anything else.
            path = _path_of(leaves[k] if k is not None else _instance_of(tp), leaves)
        out.append(CensusRow(name, count, size, kept, path))
    leaves.clear()
    return Census(out, objects, nbytes, time.perf_counter() - start, package)


def _path_of(obj: Any, leaves: List[Any]) -> str:
    """why_alive's first path to obj, as text (nothing of it kept)."""
    found = why_alive(obj, limit=1, _left_out=(leaves,)) if obj is not None else []
    return str(found[0]) if found else "(no reference path from a root found)"


def _instance_of(tp: Any) -> Any:
    """An instance of exactly `tp` the collector lists (the last: the
    oldest generation comes last, a long-lived one), or None."""
    found = None
    heap = gc.get_objects()
    for o in heap:
        if type(o) is tp:
            found = o
    release(heap)
    return found


class Census:
    """A census: ``classes`` (CensusRow, largest first), ``objects`` and
    ``bytes`` of the whole heap, ``total`` (the rows listed, summed),
    ``pause_s`` (how long it took), ``pid``, ``python`` and ``time``."""

    def __init__(self, classes: List[CensusRow], objects: int, nbytes: int,
                 pause_s: float, package: Optional[str] = None, pid: Optional[int] = None,
                 python: Optional[str] = None, when: Optional[float] = None) -> None:
        self.classes = classes
        self.objects = objects
        self.bytes = nbytes
        self.pause_s = pause_s
        self.package = package
        self.pid = os.getpid() if pid is None else pid
        self.python = python or "%d.%d.%d" % sys.version_info[:3]
        self.time = time.time() if when is None else when

    @property
    def total(self) -> CensusRow:
        return CensusRow("total", sum(r.count for r in self.classes),
                         sum(r.size for r in self.classes), None, None)

    def __repr__(self) -> str:
        return "<Census %s objects, %s bytes, %d classes>" % (
            format(self.objects, ","), format(self.bytes, ","), len(self.classes))

    def print(self, limit: int = 20, file: Optional[IO[str]] = None) -> None:
        """The ``limit`` largest classes as a table, with their paths."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError("limit must be a positive int, not %r" % (limit,))
        out = sys.stdout if file is None else file
        rows = self.classes[:limit]
        with_retained = any(r.retained is not None for r in rows)
        width = max([len(r.name) for r in rows] + [5])
        head = "%-*s  %11s  %13s" % (width, "class", "count", "bytes")
        if with_retained:
            head += "  %13s" % "retained"
        print("census of process %d (Python %s): %s objects, %s bytes, %d classes; "
              "took %.2f s" % (self.pid, self.python, format(self.objects, ","),
                               format(self.bytes, ","), len(self.classes), self.pause_s),
              file=out)
        print(head, file=out)
        for r in rows:
            line = "%-*s  %11s  %13s" % (width, r.name, format(r.count, ","),
                                         format(r.size, ","))
            if with_retained:
                line += "  %13s" % ("" if r.retained is None else format(r.retained, ","))
            print(line, file=out)
            if r.path:
                print("    why alive: %s" % r.path, file=out)
        if len(self.classes) > limit:
            print("(%d more classes not shown)" % (len(self.classes) - limit), file=out)

    def diff(self, other: "Census") -> List[CensusChange]:
        """Per class, this census minus ``other`` (an older one), the
        largest growth in bytes first; classes unchanged are left out."""
        if not isinstance(other, Census):
            raise TypeError("diff needs a Census, not %s" % type(other).__name__)
        old = {r.name: r for r in other.classes}
        changes = []
        for r in self.classes:
            o = old.pop(r.name, None)
            dc, ds = r.count - (o.count if o else 0), r.size - (o.size if o else 0)
            if dc or ds:
                changes.append(CensusChange(r.name, r.count, r.size, dc, ds))
        for o in old.values():
            changes.append(CensusChange(o.name, 0, 0, -o.count, -o.size))
        changes.sort(key=lambda c: (-c.size_change, c.name))
        return changes

    def as_json(self) -> Dict[str, Any]:
        """The census as JSON data (the schema of ``classtrack attach --json``)."""
        return {"format": FORMAT, "version": VERSION, "pid": self.pid,
                "python": self.python, "time": self.time, "package": self.package,
                "objects": self.objects, "bytes": self.bytes, "pause_s": self.pause_s,
                "classes": [r._asdict() for r in self.classes]}

    def dump(self, path: Any) -> None:
        """Writes the census to ``path`` (JSON, created 0600, replaced
        whole: see docs/files.md)."""
        with _safefile.replacing(path, named=True, text=True) as f:
            json.dump(self.as_json(), f)
            f.write("\n")


def _field(data: Dict[str, Any], key: str, kinds: Any, where: str) -> Any:
    """data[key], which must be of one of `kinds`; ValueError otherwise."""
    v = data.get(key)
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if (isinstance(v, bool) and bool not in kinds) or not isinstance(v, kinds):
        raise ValueError("%s: %r is missing or not %s" % (
            where, key, "/".join("null" if k is type(None) else k.__name__ for k in kinds)))
    return v


def load_census(path: Any) -> Census:
    """A census written by ``Census.dump`` or ``classtrack attach -o``.
    Raises ValueError naming the problem for anything else."""
    where = os.fspath(path)
    try:
        with open(where, encoding="utf-8") as f:
            data = json.load(f)
    except UnicodeDecodeError:
        raise ValueError("%s: not a classtrack census (not text)" % where) from None
    except json.JSONDecodeError as e:
        raise ValueError("%s: not a classtrack census (%s)" % (where, e)) from None
    return census_from_json(data, where)


def census_from_json(data: Any, where: str) -> Census:
    """The Census of ``Census.as_json()``'s data; ValueError naming the
    problem (``where`` says whose data) for anything else."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("%s: not a classtrack census" % where)
    if data.get("version") != VERSION:
        raise ValueError("%s: census version %r; this classtrack reads version %d"
                         % (where, data.get("version"), VERSION))
    rows = []
    for i, c in enumerate(_field(data, "classes", list, where)):
        at = "%s: classes[%d]" % (where, i)
        if not isinstance(c, dict):
            raise ValueError("%s is not an object" % at)
        rows.append(CensusRow(_field(c, "name", str, at), _field(c, "count", int, at),
                              _field(c, "size", int, at),
                              _field(c, "retained", (int, type(None)), at),
                              _field(c, "path", (str, type(None)), at)))
    package = data.get("package")
    return Census(rows, _field(data, "objects", int, where), _field(data, "bytes", int, where),
                  float(_field(data, "pause_s", (int, float), where)),
                  package if isinstance(package, str) else None,
                  _field(data, "pid", int, where), _field(data, "python", str, where),
                  float(_field(data, "time", (int, float), where)))
