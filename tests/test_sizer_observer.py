"""Sizing leaves nothing behind in the measured program."""
import gc
import sys
import tracemalloc

from classtrack.asizeof import Asizer, asized, asizeof


class Plain:
    def __init__(self, i):
        self.num = i * 1000 + 7
        self.label = "p%d" % i


def _traced_around(action):
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        action()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before


def test_sizing_does_not_grow_the_program():
    objs = [Plain(i) for i in range(10_000)]
    asizeof(objs)  # warm up lazily created module state
    grown = _traced_around(lambda: asizeof(objs))
    assert abs(grown) < 8 * 1024, "sizing grew the program by %d bytes" % grown
    grown = _traced_around(lambda: asized(objs, detail=3))
    assert abs(grown) < 8 * 1024, "asized grew the program by %d bytes" % grown


def test_no_instance_dict_materialised():
    objs = [Plain(i) for i in range(1000)]
    before = [sys.getsizeof(o) for o in objs]
    # gc.get_referents reports an instance dict if one exists (3.9-3.12);
    # on every version tracemalloc above catches a materialised dict.
    refs_before = [sum(isinstance(r, dict) for r in gc.get_referents(o)) for o in objs]
    asizeof(objs)
    asized(objs, detail=4)
    assert [sys.getsizeof(o) for o in objs] == before
    assert [sum(isinstance(r, dict) for r in gc.get_referents(o)) for o in objs] == refs_before


def test_detail_does_not_materialise_dict_either():
    objs = [Plain(i) for i in range(2000)]
    asized(objs[0], detail=2)
    grown = _traced_around(lambda: [asized(o, detail=2) for o in objs])
    # the Asized trees are garbage by now; a dict per object would be
    # 2000 * 64+ bytes
    assert abs(grown) < 16 * 1024


def test_asizer_keeps_no_references():
    objs = [Plain(i) for i in range(100)]
    counts = [sys.getrefcount(o) for o in objs]
    sizer = Asizer()
    sizer.asizeof(objs)
    sizer.asized(objs, detail=2)
    assert [sys.getrefcount(o) for o in objs] == counts
