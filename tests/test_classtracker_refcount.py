"""Track/snapshot/detach loops keep block and reference counts flat."""
import copy

from leakcheck import assert_no_leak
from classtrack.classtracker import ClassTracker


class Node:
    def __init__(self, i=0):
        self.value = i * 1000 + 7
        self.name = "node-%d" % i
        self.children = []


class Fancy(Node):
    def __repr__(self):
        return "Fancy(%d)" % self.value


class Kept:
    __slots__ = ("a",)


def test_track_class_snapshot_detach_no_leak():
    def action():
        t = ClassTracker()
        t.track_class(Node, trace=True)
        t.track_class(Fancy, resolution_level=2)
        t.track_class(Kept, keep=True)
        # (a class defined per call, or pickling, fills CPython's type caches
        # with new name strings for thousands of calls; those creation paths
        # have their own tests)
        objs = [Node(i) for i in range(5)] + [Fancy(1), copy.copy(Node(2)), Kept()]
        t.create_snapshot("one")
        del objs[:3]
        t.create_snapshot()
        _ = (t.objects, t.index, t.history)
        for tobj in t.objects.values():
            _ = (tobj.snapshots, tobj.trace, tobj.repr, tobj.death)
        t.detach_class(Fancy)
        t.clear()
        del objs
    assert_no_leak(action, per_round=30)


def test_track_object_and_change_no_leak():
    def action():
        t = ClassTracker()
        a, b = Node(1), [1, 2, 3]
        t.track_object(a, resolution_level=1)
        t.track_object(b, keep=True)
        t.track_object(a)
        t.track_change(a, 2)
        try:
            t.track_object(12345)
        except TypeError:
            pass
        try:
            t.track_change(Node())
        except KeyError:
            pass
        t.create_snapshot()
        t.clear()
    assert_no_leak(action)


class Flaky(Node):
    """A repr that works on every other call: the snapshot stores it, then
    deletes it again."""
    calls = 0

    def __repr__(self):
        Flaky.calls += 1
        if Flaky.calls % 2:
            raise ValueError("not now")
        return "Flaky(%d)" % self.value


class Other:
    pass


def test_snapshot_reprs_morphs_and_trees_no_leak():
    # the tables a snapshot writes per object: reprs (set and deleted),
    # type overrides (set, found, set back) and trees; the objects come
    # after 300 others, so that their record numbers, the tables' keys,
    # are not small ints (a leaked small int grows no block count)
    def action():
        t = ClassTracker()
        t.track_class(Kept)
        filler = [Kept() for _ in range(300)]
        t.track_class(Node, resolution_level=1)
        t.track_class(Flaky)
        objs = [Node(i) for i in range(3)] + [Flaky(1), Flaky(2)]
        objs[0].children.append(objs[1])
        t.create_snapshot()
        objs[2].__class__ = Other
        t.create_snapshot()
        t.create_snapshot()
        objs[2].__class__ = Node
        t.create_snapshot()
        assert t.objects[id(objs[2])].classname.endswith("Node")
        t.clear()
        del objs, filler
    assert_no_leak(action, per_round=30)


def test_survivors_query_no_leak_and_exact():
    """Tracker.survivors(): the pytest plugin's per-test question, with a
    class changed after tracking (its record's class is the new one) and
    record numbers past the small ints."""
    def action():
        t = ClassTracker()
        t.track_class(Kept)
        filler = [Kept() for _ in range(300)]
        t.track_class(Node)
        objs = [Node(i) for i in range(4)]
        t.create_snapshot()
        objs[1].__class__ = Other
        t.create_snapshot()
        del objs[2]
        rows = t._engine.survivors()
        got = [(i, o, c) for i, o, c in rows if i >= 300]
        assert [o for _, o, _ in got] == objs
        assert [c for _, _, c in got] == [Node, Other, Node]
        assert len(rows) == 303
        del rows, got, filler
        t.clear()
        assert t._engine.survivors() == []
        del objs
    assert_no_leak(action, per_round=30)
