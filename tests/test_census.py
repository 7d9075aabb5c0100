"""classtrack.census(): the whole heap by class, against tracemalloc and
the sizer, with nothing left behind."""
import gc
import json
import sys
import tracemalloc

import pytest

import classtrack
from classtrack import _core
from classtrack.asizeof import flatsize
from classtrack import Census, census, load_census


class Leaf:
    def __init__(self, i):
        self.i = i * 1000 + 7
        self.name = "leaf-%d" % i
        self.kids = [i, -i]


HELD = {}


def _row(c, name):
    rows = [r for r in c.classes if r.name == name]
    assert len(rows) <= 1
    return rows[0] if rows else None


def test_counts_and_sizes_of_a_class_are_exact():
    leaves = [Leaf(i) for i in range(3000)]
    c = census(package=__name__)
    row = _row(c, __name__ + ".Leaf")
    assert row.count == 3000
    assert row.size == sum(flatsize(x) for x in leaves)
    # builtins are there too, over the whole heap
    whole = census()
    lists = _row(whole, "list")
    assert lists.count >= 3000
    assert whole.objects >= sum(r.count for r in whole.classes if r.name.endswith("Leaf"))
    assert whole.total.count == whole.objects and whole.total.size == whole.bytes
    del leaves


def test_total_bytes_follow_tracemalloc():
    # what a burst of objects adds to the census is what tracemalloc saw
    # allocated, within 1% (tracemalloc also counts allocator rounding of
    # blocks the sizer cannot see, and the census's own few objects)
    gc.collect()
    tracemalloc.start()
    try:
        before_bytes = census().bytes
        gc.collect()
        t0 = tracemalloc.get_traced_memory()[0]
        made = [Leaf(i) for i in range(20000)]
        gc.collect()
        t1 = tracemalloc.get_traced_memory()[0]
        after_bytes = census().bytes
    finally:
        tracemalloc.stop()
    traced = t1 - t0
    counted = after_bytes - before_bytes
    assert abs(counted - traced) <= 0.01 * traced, (counted, traced)
    del made


def test_retained_per_class_is_what_freeing_all_of_them_frees():
    HELD["leaves"] = [Leaf(i) for i in range(500)]
    try:
        c = census(package=__name__, retained=True)
        row = _row(c, __name__ + ".Leaf")
        assert row.retained == classtrack.retained_size(*HELD["leaves"])
        assert row.retained > row.size
        # a class whose instances hold nothing retains its own bytes
        whole = census(retained=True)
        assert _row(whole, "str").retained == _row(whole, "str").size
        # retained=K: the K largest classes only, the same figures
        top = census(retained=2)
        assert [r.retained is not None for r in top.classes[:3]] == [True, True, False]
        assert all(r.retained >= r.size for r in top.classes[:2])
    finally:
        del HELD["leaves"]


def test_paths_name_the_holder():
    HELD["one"] = [Leaf(1)]
    try:
        c = census(package=__name__, paths=1)
        row = _row(c, __name__ + ".Leaf")
        assert row.path == ("module %s -> dict['HELD'] -> dict['one'] -> list[0] -> %s.Leaf"
                            % (__name__, __name__)), row.path
        assert census(package=__name__).classes[0].path is None
    finally:
        del HELD["one"]


def test_nothing_left_behind():
    leaf = Leaf(5)
    gc.collect()
    refs = sys.getrefcount(leaf), sys.getrefcount(Leaf)
    n = len(gc.get_objects())
    for _ in range(3):
        census(retained=True, paths=2)
    gc.collect()
    assert (sys.getrefcount(leaf), sys.getrefcount(Leaf)) == refs
    assert abs(len(gc.get_objects()) - n) <= 5
    # and memory: a census taken and dropped leaves the heap as it was
    tracemalloc.start()
    try:
        census(retained=True)
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            census(retained=True)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown


def test_diff_shows_what_grew():
    old = census(package=__name__)
    HELD["more"] = [Leaf(i) for i in range(250)]
    try:
        new = census(package=__name__)
        changes = {c.name: c for c in new.diff(old)}
        assert changes[__name__ + ".Leaf"].count_change == 250
        assert changes[__name__ + ".Leaf"].size_change == sum(
            flatsize(x) for x in HELD["more"])
    finally:
        del HELD["more"]
    with pytest.raises(TypeError, match="diff needs a Census"):
        new.diff({})


def test_dump_and_load(tmp_path):
    HELD["d"] = [Leaf(i) for i in range(10)]
    try:
        c = census(package=__name__, retained=True, paths=1)
    finally:
        del HELD["d"]
    path = tmp_path / "c.json"
    c.dump(path)
    data = json.loads(path.read_text())
    assert data["format"] == "classtrack-census" and data["version"] == 1
    for key in ("pid", "python", "objects", "bytes", "pause_s", "classes"):
        assert key in data
    back = load_census(path)
    assert isinstance(back, Census)
    assert back.classes == c.classes and back.objects == c.objects
    assert (path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("text, message", [
    ("not json", "not a classtrack census"),
    ('{"format": "other"}', "not a classtrack census"),
    ('{"format": "classtrack-census", "version": 9}', "census version 9"),
    ('{"format": "classtrack-census", "version": 1, "classes": [{"name": 1}]}',
     "'name' is missing or not str"),
    ('{"format": "classtrack-census", "version": 1}', "'classes' is missing"),
])
def test_load_refuses_bad_files(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_census(path)


def test_bad_arguments():
    with pytest.raises(ValueError, match="package must be a dotted module name"):
        census(package="not a name")
    with pytest.raises(ValueError, match="retained must be True, False or a number"):
        census(retained=0)
    with pytest.raises(ValueError, match="retained must be True, False or a number"):
        census(retained="yes")
    with pytest.raises(ValueError, match="paths must be an int >= 0"):
        census(paths=-1)
    with pytest.raises(ValueError, match="limit must be a positive int"):
        census(package=__name__).print(limit=0)


def test_the_walk_finds_what_the_graph_holds():
    # census() without retained bytes walks the heap without building the
    # graph; both must see the same objects, each once: untracked
    # containers (a dict of ints, a tuple of atomics), str keys that
    # dict_traverse skips, shared strings, an instance's attributes
    HELD["shapes"] = [{"k%d" % i: i} for i in range(50)] + [
        (i, "t%d" % i) for i in range(50)] + [Leaf(i) for i in range(50)]
    gc.collect()        # untracks the tuples of atomics
    try:
        heap = gc.get_objects()
        frame = sys._getframe()
        walked = _core.census(heap, (frame,), 0)
        graphed = _core.census(heap, (frame,), -1)
        by_type = [{r[0]: (r[1], r[2]) for r in rows} for rows, _, _ in (walked, graphed)]
        assert by_type[0] == by_type[1]
        assert walked[1:] == graphed[1:]        # objects, bytes
        del heap, walked, graphed, by_type
    finally:
        del HELD["shapes"]
