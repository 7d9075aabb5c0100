"""Count-only classes: classes whose instances cannot be followed one by
one (module and bytes subclasses; NamedTuple, IntEnum and __slots__
without __weakref__ while the allocator cannot be watched; C and compiled
classes) are counted and sized at every snapshot instead."""
import json
import os
import subprocess
import sys
import types
from typing import NamedTuple

import pytest

from classtrack import _core
from classtrack.asizeof import flatsize
from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import Stats
from helpers import write_files

PACKAGE = """
    import enum
    import types
    from typing import NamedTuple


    class Point(NamedTuple):
        x: int
        y: int


    class Level(enum.IntEnum):
        LOW = 1
        HIGH = 2


    class Slotted:
        __slots__ = ("a", "b")


    class Mod(types.ModuleType):
        pass


    class Blob(bytes):
        pass
"""

# The program waits, after each phase, until the monitor has taken two
# more snapshots: at least one of them saw the phase whole.
PROGRAM = """
    import json, sys, time
    import {pkg} as p
    from classtrack import asizeof, classtracker

    def settle():
        (thread,) = list(classtracker._monitors)
        snaps = thread.tracker.snapshots
        n = len(snaps)
        deadline = time.monotonic() + 60
        while len(snaps) < n + 2 and time.monotonic() < deadline:
            time.sleep(0.002)

    pts = [p.Point(i, -i) for i in range(300)]
    mods = [p.Mod("m%d" % i) for i in range(5)]
    slots = [p.Slotted() for _ in range(7)]
    blobs = [p.Blob(b"x" * 40) for _ in range(9)]
    settle()
    del pts[100:], mods[2:], slots[3:], blobs[4:]
    settle()
    one = {{"point": [sys.getsizeof(pts[0]), p.Point.__itemsize__, asizeof.flatsize(pts[0])],
            "mod": [sys.getsizeof(mods[0]), asizeof.flatsize(mods[0])],
            "slotted": [sys.getsizeof(slots[0]), asizeof.flatsize(slots[0])],
            "blob": [sys.getsizeof(blobs[0]), asizeof.flatsize(blobs[0])],
            "level": [[sys.getsizeof(m), asizeof.flatsize(m)] for m in p.Level]}}
    with open(sys.argv[1], "w") as f:
        json.dump(one, f)
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The program run under `classtrack run --track-package`, twice: as
    usual, and with tracemalloc tracing (the allocator is not watched then,
    so the NamedTuple, the IntEnum and the __slots__ class without
    __weakref__ cannot be followed either)."""
    root = tmp_path_factory.mktemp("counted")
    pkg = "ctcount_%d" % os.getpid()
    write_files(root, {pkg + "/__init__.py": PACKAGE, "prog.py": PROGRAM.format(pkg=pkg)})
    out = {}
    for mode, extra in (("plain", {}), ("tracemalloc", {"PYTHONTRACEMALLOC": "1"})):
        dump = str(root / ("%s.ctdump" % mode))
        sizes = str(root / ("%s.json" % mode))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(root)] + [p for p in sys.path if p]), **extra)
        proc = subprocess.run(
            [sys.executable, "-m", "classtrack", "run", "--interval", "0.01",
             "--track-package", pkg, "-o", dump, "prog.py", sizes],
            cwd=str(root), env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        with open(sizes) as f:
            out[mode] = (pkg, dump, proc, json.load(f))
    return out


def _series(stats, name):
    return [(s.counted or {}).get(name, (0, 0)) for s in stats.snapshots]


def _phases(series):
    """The series without repeats in a row."""
    out = []
    for v in series:
        if not out or out[-1] != v:
            out.append(v)
    return out


@pytest.mark.parametrize("mode", ["plain", "tracemalloc"])
def test_run_counts_what_it_cannot_follow(ran, mode):
    pkg, dump, proc, one = ran[mode]
    stats = Stats(filename=dump)
    point, mod, level = pkg + ".Point", pkg + ".Mod", pkg + ".Level"
    blob, slotted = pkg + ".Blob", pkg + ".Slotted"
    last = stats.snapshots[-1].counted
    # exact sizes: a NamedTuple instance is what sys.getsizeof says plus the
    # item PyType_GenericAlloc allocates beyond ob_size for a subclass of a
    # variable-sized type; a module subclass's is sys.getsizeof's
    getsize, itemsize, flat = one["point"]
    assert flat == getsize + itemsize
    assert one["mod"][0] == one["mod"][1]
    # module and bytes subclasses: counted either way
    for n, size in _series(stats, mod):
        assert size == n * one["mod"][1]
    mods = _phases([n for n, _ in _series(stats, mod)])
    assert 5 in mods and mods[-1] == 2 and mods.index(5) < len(mods) - 1, mods
    blobs = _phases([n for n, _ in _series(stats, blob)])
    assert 9 in blobs and blobs[-1] == 4, blobs
    assert last[blob] == (4, 4 * one["blob"][1]) and one["blob"][1] >= one["blob"][0]
    # the summary line says they are counted
    assert "classes counted at snapshots (cannot be followed one by one: " in proc.stderr
    if mode == "tracemalloc":     # no allocator watch: counted too
        for n, size in _series(stats, point):
            assert size == n * flat
        # the phases, in order: all made, some freed; the exit snapshot last
        pts = _phases([n for n, _ in _series(stats, point)])
        assert 300 in pts and pts[-1] == 100 and pts.index(300) < len(pts) - 1, pts
        # IntEnum members: made once, at import (int subclass: the extra
        # digit GenericAlloc allocates and the __dict__ pointer make them
        # larger than sys.getsizeof says)
        assert last[level] == (2, sum(f for _, f in one["level"]))
        assert all(f >= g for g, f in one["level"])
        slots = _phases([n for n, _ in _series(stats, slotted)])
        assert 7 in slots and slots[-1] == 3, slots
        assert last[slotted] == (3, 3 * one["slotted"][1])
        assert one["slotted"][0] == one["slotted"][1]
    else:                         # followed one by one through the allocator
        for name, made, alive, size in ((point, 300, 100, flat), (slotted, 7, 3, None),
                                        (level, 2, 2, None)):
            assert name not in last
            records = stats.index[name]
            assert len(records) == made, name
            assert sum(1 for r in records if r.death is None) == alive, name
            if size is not None:
                assert all(r.snapshots[-1][1].flat == size for r in records
                           if r.death is None and len(r.snapshots) > 1)
        # IntEnum members, made while their class is built, before it could
        # be tracked: followed from the moment it is, with their exact sizes
        sizes = sorted(r.snapshots[-1][1].flat for r in stats.index[level])
        assert sizes == sorted(f for _, f in one["level"])


def test_dump_round_trip_keeps_the_counts(ran, tmp_path):
    pkg, dump, _, _ = ran["tracemalloc"]
    with open(dump, "rb") as f:
        raw = f.read()
    data = _core.dump_read(raw)
    assert all(len(row) == 17 for row in data.snapshots)
    points = [{cls: (n, size) for cls, n, size in row.counted}.get(pkg + ".Point")
              for row in data.snapshots if row.counted]
    assert (300, 300 * ran["tracemalloc"][3]["point"][2]) in points
    again = str(tmp_path / "again.ctdump")
    Stats(filename=dump).dump_stats(again)
    assert [s.counted for s in Stats(filename=again).snapshots] \
        == [s.counted for s in Stats(filename=dump).snapshots]
    # a writer of the 1.1 shape (15 fields) writes no COUNTED section
    old = tuple(data)[:10] + ([tuple(row)[:15] for row in data.snapshots],)
    path = str(tmp_path / "old.ctdump")
    with open(path, "wb") as f:
        _core.dump_write(f, old)
    assert all(s.counted is None for s in Stats(filename=path).snapshots)


def test_report_shows_counted_classes(ran):
    pkg, dump, _, _ = ran["tracemalloc"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    text = subprocess.run([sys.executable, "-m", "classtrack", "report", dump], env=env,
                          capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    assert "counted at snapshots (not followed one by one):" in text.stdout
    after = text.stdout.split("counted at snapshots (not followed one by one):")[1]
    assert pkg + ".Point" in after and pkg + ".Mod" in after and pkg + ".Level" in after
    js = subprocess.run([sys.executable, "-m", "classtrack", "report", "--json", dump],
                        env=env, capture_output=True, text=True, timeout=120)
    doc = json.loads(js.stdout)
    rows = {c["name"]: c for c in doc["counted"]}
    assert rows[pkg + ".Point"]["last_count"] == 100
    assert rows[pkg + ".Point"]["peak_count"] == 300
    assert pkg + ".Point" not in {c["name"] for c in doc["classes"]}
    summary = subprocess.run([sys.executable, "-m", "classtrack", "report", "--summary", dump],
                             env=env, capture_output=True, text=True, timeout=120)
    assert "counted at snapshot" in summary.stdout


def test_html_and_diff_show_counted_classes(ran, tmp_path):
    pkg, dump, _, _ = ran["tracemalloc"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    page = str(tmp_path / "r.html")
    proc = subprocess.run([sys.executable, "-m", "classtrack", "html", dump, "-o", page],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with open(page) as f:
        html = f.read()
    section = html.split('<section id="counted">')[1].split("</section>")[0]
    assert "Counted at snapshots" in section and pkg + ".Point" in section
    proc = subprocess.run([sys.executable, "-m", "classtrack", "diff", dump, dump, "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    diff = Stats(filename=dump).diff_snapshots(0, -1)
    point = diff.row(pkg + ".Point")
    assert point.counted and point.new_count == 100
    assert point.new_size == Stats(filename=dump).snapshots[-1].counted[pkg + ".Point"][1]
    assert pkg + ".Point (counted)" in str(diff)


class Pair(NamedTuple):
    a: int
    b: int


class Blob(bytes):
    pass


class Sub(Pair):
    __slots__ = ()


def test_count_class_counts_instances_and_subclasses():
    tracker = ClassTracker()
    try:
        with pytest.raises(TypeError, match="count_class"):
            tracker.track_class(Blob)         # raises, as Pympler's does
        tracker.count_class(Pair)
        tracker.create_snapshot("none")
        objs = [Pair(1, 2) for _ in range(10)] + [Sub(3, 4) for _ in range(4)]
        tracker.create_snapshot("some")
        del objs[5:]
        tracker.create_snapshot("fewer")
        name = Pair.__module__ + ".Pair"
        size = flatsize(Pair(1, 2))
        assert flatsize(Sub(1, 2)) == size
        assert [s.counted[name] for s in tracker.snapshots] == [
            (0, 0), (14, 14 * size), (5, 5 * size)]
        assert tracker.counted_classes() == [(name, None)]
        # a subclass counted on its own is no longer its base's
        tracker.count_class(Sub, name="sub")
        tracker.create_snapshot()
        assert tracker.snapshots[-1].counted == {name: (5, 5 * size), "sub": (0, 0)}
        tracker.detach_class(Sub)
        tracker.detach_class(Pair)
        tracker.create_snapshot()
        assert tracker.snapshots[-1].counted is None
        del objs
    finally:
        tracker.close()


def test_count_instances_finds_non_gc_instances():
    import gc
    held = [10 ** 20 + i for i in range(6)]     # ints: never in gc.get_objects()
    (n, size), = _core.count_instances(gc.get_objects(), [(int,)], (), -1)
    assert n >= 6 and size >= sum(flatsize(x) for x in held)
    assert _core.count_instances(gc.get_objects(), [(int,)], (), 0) == [(0, 0)]
    with pytest.raises(ValueError, match="two rows"):
        _core.count_instances([], [(int,), (int,)], (), -1)
    del held


def test_counting_in_place_matches_the_list():
    """objs=None visits the collector's objects with no list of the heap
    (PyUnstable_GC_VisitObjects on 3.12+, the generation lists before):
    the same figures as counting over gc.get_objects()."""
    import gc

    class Other:
        pass

    objs = [Pair(i, i) for i in range(50)] + [Sub(1, 2)] * 3 + [Other() for _ in range(7)]
    rows = [(Pair, Sub), (Other,)]
    heap = gc.get_objects()
    by_list = _core.count_instances(heap, rows, (), -1)
    del heap
    assert _core.count_instances(None, rows, (), -1) == by_list
    assert by_list[0][0] >= 51 and by_list[1][0] == 7
    before = [sys.getrefcount(o) for o in objs[:60:7]]
    for _ in range(3):
        _core.count_instances(None, rows, (), -1)
    assert [sys.getrefcount(o) for o in objs[:60:7]] == before
    # every generation: objects of all ages, in their thousands
    gc.collect()
    young = [[i] for i in range(3000)]
    heap = gc.get_objects()
    listed = _core.count_instances(heap, [(list,), (dict,)], (), -1)
    del heap
    walked = _core.count_instances(None, [(list,), (dict,)], (), -1)
    assert listed[0][0] > 3000 and listed[1][0] > 1000
    for (n1, b1), (n2, b2) in zip(listed, walked):
        assert abs(n1 - n2) <= 3 and abs(b1 - b2) <= 3 * 1024, (listed, walked)
    del young
    # a type the collector never lists needs the walk over the whole list
    with pytest.raises(ValueError, match="not a GC type"):
        _core.count_instances(None, [(int,)], (), -1)
    del objs


def test_count_instances_checks_objs():
    with pytest.raises(TypeError, match="list or None, not tuple"):
        _core.count_instances((), [(int,)], (), -1)


def test_counting_never_materialises_a_dict():
    class WithDict(types.ModuleType):
        pass

    m = WithDict("x")
    tracker = ClassTracker()
    try:
        tracker.count_class(int)            # a C class, not a GC type: the walk
        tracker.count_class(WithDict)
        before = sys.getrefcount(m)
        tracker.create_snapshot()
        assert sys.getrefcount(m) == before
        name = WithDict.__module__ + "." + WithDict.__qualname__
        assert tracker.snapshots[-1].counted[name][0] == 1
        assert tracker.snapshots[-1].counted["builtins.int"][0] > 0
    finally:
        tracker.close()


class NeverMade(NamedTuple):
    a: int


class SometimesMade(NamedTuple):
    a: int


def test_report_sums_up_counted_classes_never_seen(tmp_path):
    """A counted class with no instance at any snapshot is one line under
    the table, not a row of zeros (Sphinx: 43 of 49 counted classes)."""
    t = ClassTracker()
    t.count_class(NeverMade)
    t.count_class(SometimesMade)
    made = [SometimesMade(i) for i in range(3)]
    t.create_snapshot("one")
    path = str(tmp_path / "c.ctdump")
    Stats(tracker=t).dump_stats(path)
    t.clear()
    del made
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-m", "classtrack", "report", path], env=env,
                         capture_output=True, text=True, timeout=120).stdout
    assert "SometimesMade" in out and "NeverMade" not in out, out
    assert "(1 counted class had no instance at any snapshot)" in out
    doc = json.loads(subprocess.run([sys.executable, "-m", "classtrack", "report", "--json",
                                     path], env=env, capture_output=True, text=True,
                                    timeout=120).stdout)
    assert sorted(c["name"].rsplit(".", 1)[1] for c in doc["counted"]) == [
        "NeverMade", "SometimesMade"]        # the JSON keeps every class
