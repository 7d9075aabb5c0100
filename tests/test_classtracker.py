"""ClassTracker: tracking objects and classes, lifetimes, traces, snapshots."""
import copy
import gc
import inspect
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

import classtrack
from classtrack.asizeof import asizeof
from classtrack.classtracker import ClassTracker


class Node:
    def __init__(self, i=0):
        self.value = i * 1000 + 7
        self.name = "node-%d" % i
        self.children = []


class Leaf(Node):
    pass


class Quiet(Node):
    def __init__(self):  # never calls Node.__init__
        self.quiet = True


class Slotted:
    __slots__ = ("a",)


class SlottedWeak:
    __slots__ = ("a", "__weakref__")


def tracked_ids(tracker):
    return {o.id for o in tracker.objects.values() if o.ref() is not None}


# -- track_object -------------------------------------------------------------

def test_top_level_export():
    assert classtrack.ClassTracker is ClassTracker


def test_track_object_default_name_and_record(tracker):
    n = Node(1)
    tracker.track_object(n)
    tobj = tracker.objects[id(n)]
    assert tobj.name == "Node"
    assert tobj.ref() is n
    assert tobj.id == id(n)
    assert tobj.death is None
    assert 0 < tobj.birth <= time.monotonic()  # seconds since import, float
    assert isinstance(tobj.birth, float)
    assert tracker.index["Node"] == [tobj]


@pytest.mark.parametrize("value", [12345678, "a string", [1, 2], {"a": 1}, (1, 2)])
def test_track_object_needs_weakref_or_keep(tracker, value):
    with pytest.raises(TypeError, match="weakly referenced|keep=True"):
        tracker.track_object(value)
    tracker.track_object(value, keep=True)
    assert tracker.objects[id(value)].ref() is value


def test_keep_holds_the_object(tracker):
    n = Node(2)
    ref = weakref.ref(n)
    tracker.track_object(n, keep=True)
    del n
    gc.collect()
    assert ref() is not None


def test_track_object_twice_is_a_no_op(tracker):
    n = Node(3)
    tracker.track_object(n, name="first")
    tracker.track_object(n, name="second")
    assert list(tracker.index) == ["first"]
    assert len(tracker.index["first"]) == 1


def test_track_object_bad_arguments(tracker):
    with pytest.raises(TypeError):
        tracker.track_object(Node(), name=5)
    with pytest.raises(ValueError):
        tracker.track_object(Node(), resolution_level=-1)


# -- track_class: every creation path ----------------------------------------------

def test_track_class_default_name(tracker):
    tracker.track_class(Node)
    Node()
    assert list(tracker.index) == [Node.__module__ + ".Node"]


def test_track_class_rejects_non_classes_and_c_classes(tracker):
    with pytest.raises(TypeError, match="only class objects"):
        tracker.track_class(Node())
    with pytest.raises(TypeError, match="implemented in C"):
        tracker.track_class(dict)
    with pytest.raises(TypeError, match="implemented in C"):
        tracker.track_class(int)


def _make_via(path):
    if path == "call":
        return Node(1)
    if path == "__new__":
        return Node.__new__(Node)
    if path == "copy":
        return copy.copy(Node(1))
    if path == "deepcopy":
        return copy.deepcopy(Node(1))
    if path.startswith("pickle"):
        proto = int(path[-1])
        return pickle.loads(pickle.dumps(Node(1), protocol=proto))
    if path == "subclass_without_super_init":
        return Quiet()
    raise AssertionError(path)


@pytest.mark.parametrize("path", ["call", "__new__", "copy", "deepcopy", "pickle0",
                                  "pickle2", "pickle4", "pickle5",
                                  "subclass_without_super_init"])
def test_every_creation_path_is_tracked(tracker, path):
    tracker.track_class(Node)
    obj = _make_via(path)
    assert id(obj) in tracked_ids(tracker)


def test_subclass_defined_after_track_class(tracker):
    tracker.track_class(Node)

    class Late(Node):
        def __init__(self):
            pass

    late = Late()
    assert id(late) in tracked_ids(tracker)
    # also through type() directly, picked up at the next track/snapshot call
    Dyn = type("Dyn", (Node,), {})
    tracker.create_snapshot()
    dyn = Dyn()
    assert id(dyn) in tracked_ids(tracker)


def test_existing_instances_are_not_tracked(tracker):
    before = Node(1)
    tracker.track_class(Node)
    after = Node(2)
    ids = tracked_ids(tracker)
    assert id(after) in ids and id(before) not in ids


def test_most_specialised_settings_win(tracker):
    tracker.track_class(Node, name="node", resolution_level=0)
    tracker.track_class(Leaf, name="leaf", resolution_level=2)
    n, leaf = Node(), Leaf()
    objs = tracker.objects
    assert objs[id(n)].name == "node"
    assert objs[id(leaf)].name == "leaf"
    tracker.create_snapshot()
    assert objs[id(leaf)].snapshots[-1][1].refs  # resolution 2 -> referents
    assert objs[id(n)].snapshots[-1][1].refs == ()


def test_track_class_again_changes_settings(tracker):
    tracker.track_class(Node, name="old")
    a = Node()
    tracker.track_class(Node, name="new")
    b = Node()
    assert tracker.objects[id(a)].name == "old"
    assert tracker.objects[id(b)].name == "new"
    assert set(tracker.index) == {"old", "new"}


def test_hot_loop_creation_is_tracked(tracker):
    # 3.13 specialises instance creation; the hook must survive it
    tracker.track_class(Node)
    objs = [Node(i) for i in range(5000)]
    assert len(tracked_ids(tracker)) == 5000
    del objs


# -- the class is left unchanged -----------------------------------------------------

class Watched:
    subclasses_seen = []

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        Watched.subclasses_seen.append(cls.__name__)

    def __init__(self, x=1):
        self.x = x

    def __repr__(self):
        return "Watched(%r)" % self.x


def test_class_is_not_modified(tracker):
    pickle.dumps(Watched())  # copyreg caches __slotnames__ on first pickling
    before_vars = dict(vars(Watched))
    before_dir = dir(Watched)
    init = Watched.__init__
    tracker.track_class(Watched)
    assert dict(vars(Watched)) == before_vars
    assert dir(Watched) == before_dir
    assert Watched.__init__ is init
    w = Watched(5)
    assert isinstance(w, Watched) and repr(w) == "Watched(5)"
    assert pickle.loads(pickle.dumps(w)).x == 5

    class Child(Watched):
        pass

    assert "Child" in Watched.subclasses_seen
    assert id(Child()) in tracked_ids(tracker)
    tracker.detach_class(Watched)
    assert dict(vars(Watched)) == before_vars
    assert Watched.__init__ is init


def test_builtins_build_class_restored_after_detach(tracker):
    import builtins
    original = builtins.__build_class__
    tracker.track_class(Node)
    tracker.detach_all_classes()
    assert builtins.__build_class__ is original


# -- detaching ---------------------------------------------------------------------

def test_detach_class(tracker):
    tracker.track_class(Node)
    a = Node()
    tracker.detach_class(Node)
    b = Node()
    ids = tracked_ids(tracker)
    assert id(a) in ids and id(b) not in ids  # existing ones stay tracked
    with pytest.raises(KeyError):
        tracker.detach_class(Node)
    assert Node not in classtrack._core.hooked_types()


def test_detach_all_and_clear(tracker):
    tracker.track_class(Node)
    tracker.track_class(SlottedWeak)
    a, s = Node(), SlottedWeak()
    tracker.create_snapshot()
    tracker.detach_all_classes()
    assert Node() is not None and len(tracker.objects) == 2
    tracker.detach_all()
    assert tracker.objects == {} and dict(tracker.index) == {}
    assert len(tracker.snapshots) == 1
    tracker.clear()
    assert tracker.snapshots == []
    assert not classtrack._core.hooked_types()
    del a, s


def test_close_detaches_classes():
    import contextlib
    with contextlib.closing(ClassTracker()) as t:
        t.track_class(Node)
        Node()
    n = Node()
    assert id(n) not in tracked_ids(t)


# -- __slots__ without __weakref__, morphing ------------------------------------------

def test_slots_without_weakref_are_tracked(tracker):
    # deaths come from the allocator watch, no weak reference is needed
    tracker.track_class(Slotted)
    s = Slotted()
    assert id(s) in tracked_ids(tracker)
    tobj = tracker.objects[id(s)]
    del s
    assert tobj.death is not None and tobj.death >= tobj.birth
    tracker.track_class(SlottedWeak)
    w = SlottedWeak()
    assert id(w) in tracked_ids(tracker)


class BytesLike(bytes):
    pass


def test_uncoverable_classes_say_what_is_needed(tracker):
    # a bytes subclass is neither weakly referenceable nor watchable (its
    # block may be reallocated, which the watch would not see)
    with pytest.raises(TypeError, match="__weakref__.*keep=True"):
        tracker.track_class(BytesLike)
    tracker.track_class(BytesLike, keep=True)
    i = BytesLike(b"five")
    assert id(i) in tracked_ids(tracker)


def test_morphing_keeps_tracking_and_shows_new_class(tracker):
    class A:
        pass

    class B:
        pass

    tracker.track_class(A)
    obj = A()
    tracker.create_snapshot()
    obj.__class__ = B
    tobj = tracker.objects[id(obj)]
    assert tobj.ref() is obj
    tracker.create_snapshot()
    assert ".B object at" in tobj.repr
    assert tobj.classname == "B"


def test_a_repr_that_changes_its_own_class(tmp_path):
    # the __repr__ runs after sizing: it changes the object's class, and a
    # collection frees the old class in the middle of the call.  The
    # snapshot shows the new class, as the text does, and nothing reads
    # the freed class (the debug allocator would crash on it); a slow
    # class first, so that the strikes table is looked at on every call
    prog = tmp_path / "morph.py"
    prog.write_text(textwrap.dedent("""
        import gc
        import time
        from classtrack.classtracker import ClassTracker

        class Plain:
            pass

        def to_plain(self):
            self.__class__ = Plain      # the last reference to its class
            gc.collect()
            return "now plain"

        class Sleepy:
            def __repr__(self):
                time.sleep(0.02)
                return "sleepy"

        class Orig:
            def __repr__(self):
                return "orig"

        class Morpher:
            def __repr__(self):
                victim.__class__ = type("Z", (), {"__repr__": to_plain})
                return "morpher"

        tracker = ClassTracker()
        for cls in (Sleepy, Morpher, Orig):
            tracker.track_class(cls)
        s, m, victim = Sleepy(), Morpher(), Orig()
        gc.disable()
        tracker.create_snapshot()
        tobj = tracker.objects[id(victim)]
        print(tobj.classname, tobj.repr)
    """))
    env = dict(os.environ, PYTHONMALLOC="debug")
    r = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Plain", "now", "plain"], r.stdout


# -- track_change ----------------------------------------------------------------------

def test_track_change(tracker):
    n = Node(4)
    with pytest.raises(KeyError):
        tracker.track_change(n, 1)
    tracker.track_object(n)
    tracker.create_snapshot()
    tracker.track_change(n, resolution_level=2)
    tracker.create_snapshot()
    snaps = tracker.objects[id(n)].snapshots
    assert snaps[-2][1].refs == ()
    assert [r.name for r in snaps[-1][1].refs] == ["__dict__"]


# -- lifetimes and history ---------------------------------------------------------------

def test_history_counts(tracker):
    tracker.track_class(Node, name="n")
    a = Node()
    b = Node()
    c = Node()
    del a
    del b
    d = Node()
    del c
    del d
    gc.collect()
    counts = [count for _, count in tracker.history["n"]]
    assert counts == [1, 2, 3, 2, 1, 2, 1, 0]
    times = [ts for ts, _ in tracker.history["n"]]
    assert times == sorted(times)


def test_birth_and_death(tracker):
    tracker.track_class(Node)
    t0 = time.perf_counter()
    n = Node()
    tobj = tracker.objects[id(n)]
    assert tobj.death is None
    del n
    gc.collect()
    assert tobj.death is not None and tobj.death >= tobj.birth
    assert tobj.ref() is None
    assert time.perf_counter() - t0 < 5


# -- traces --------------------------------------------------------------------------------

def _create_with_stack(cls):
    obj = cls(); stack = inspect.stack()  # noqa: E702 - same line on purpose
    return obj, stack


def test_trace_equals_inspect_stack(tracker):
    tracker.track_class(Node, trace=True)
    obj, stack = _create_with_stack(Node)
    trace = tracker.objects[id(obj)].trace
    expected = [tuple(frame[1:]) for frame in reversed(stack)]
    assert trace == expected
    assert trace[-1][2] == "_create_with_stack"
    assert not any("classtrack" + "/" in t[0] and "/tests/" not in t[0] for t in trace)


def test_untraced_has_no_trace(tracker):
    tracker.track_class(Node)
    obj = Node()
    assert tracker.objects[id(obj)].trace is None


# -- snapshots ---------------------------------------------------------------------------------

def test_snapshot_fields(tracker):
    n = Node(5)
    tracker.track_object(n)
    tracker.create_snapshot()
    tracker.create_snapshot("after", compute_total=True)
    s0, s1 = tracker.snapshots
    assert s0.desc == "" and s0.label == "%.3fs" % s0.timestamp
    assert s1.desc == "after" and s1.label == "after (%.3fs)" % s1.timestamp
    assert s0.tracked_total == asizeof(n)
    assert s0.overhead > 0 and s0.asizeof_total == 0
    assert s1.asizeof_total > s1.tracked_total
    assert s0.system_total.available and s0.total == s0.system_total.vsz
    assert s0.timestamp < s1.timestamp
    tobj = tracker.objects[id(n)]
    assert tobj.get_size_at_time(s0.timestamp) == asizeof(n)
    assert tobj.get_max_size() == asizeof(n)
    assert tobj.get_size_at_time(-1.0) == 0


def test_shared_data_goes_to_first_and_tracked_referents_excluded(tracker):
    shared = ["s%d" % i * 20 for i in range(20)]
    a, b = Node(1), Node(2)
    a.children = [shared]
    b.children = [shared, a]  # b refers to a tracked object
    tracker.track_object(a)
    tracker.track_object(b)
    tracker.create_snapshot()
    sa = tracker.objects[id(a)].snapshots[-1][1].size
    sb = tracker.objects[id(b)].snapshots[-1][1].size
    assert sa == asizeof(a)
    assert sb == asizeof(b) - asizeof(a)
    assert tracker.snapshots[-1].tracked_total == sa + sb


def test_dead_objects_are_not_sized(tracker):
    tracker.track_class(Node)
    n = Node()
    del n
    gc.collect()
    tracker.create_snapshot()
    assert tracker.snapshots[-1].tracked_total == 0


def test_repr_clipped_and_safe(tracker):
    class Long:
        def __repr__(self):
            return "x" * 1000

    class Raising:
        def __repr__(self):
            raise ValueError("no")

    class Slow:
        calls = 0

        def __repr__(self):
            Slow.calls += 1
            time.sleep(0.05)
            return "slow"

    objs = [Long(), Raising(), Slow(), Slow()]
    for o in objs:
        tracker.track_object(o)
    tracker.create_snapshot()
    tracker.create_snapshot()
    reprs = [tracker.objects[id(o)].repr for o in objs]
    assert len(reprs[0]) <= 128 and "...." in reprs[0]
    assert reprs[1].startswith("<") and "Raising object at 0x" in reprs[1]
    # too slow in 3 calls in a row (the 2 of the first snapshot, the first
    # of the second): not called again
    assert Slow.calls == 3


def test_default_repr_costs_no_call(tracker):
    n = Node()
    tracker.track_object(n)
    tracker.create_snapshot()
    assert tracker.objects[id(n)].repr == object.__repr__(n)


def test_concurrent_snapshots_are_serialised(tracker):
    tracker.track_class(Node)
    keep = [Node(i) for i in range(200)]
    errors = []

    def work():
        try:
            for _ in range(10):
                tracker.create_snapshot()
                keep.append(Node())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(tracker.snapshots) == 40
    stamps = [s.timestamp for s in tracker.snapshots]
    assert stamps == sorted(stamps)


def test_threads_tracking_and_dying_during_snapshots(tracker):
    tracker.track_class(Node)
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            objs = [Node(i) for i in range(100)]
            objs[0].children.extend(objs[1:])
            del objs

    workers = [threading.Thread(target=churn) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        for _ in range(20):
            tracker.create_snapshot()
            assert 0 <= tracker.snapshots[-1].tracked_total < 1 << 32
    finally:
        stop.set()
        for w in workers:
            w.join()
    history = tracker.history[Node.__module__ + ".Node"]
    assert all(count >= 0 for _, count in history)


# -- object model -------------------------------------------------------------------------------

def test_tracked_object_snapshots_and_resolution(tracker):
    n = Node(6)
    tracker.track_object(n, resolution_level=1)
    tracker.create_snapshot()
    tobj = tracker.objects[id(n)]
    assert len(tobj.snapshots) == 2  # the birth entry, then the snapshot
    last = tobj.snapshots[-1]
    assert last[0] == tracker.snapshots[-1].timestamp
    assert last[1].size == asizeof(n)
    assert [r.name for r in last[1].refs] == ["__dict__"]
    tobj.set_resolution_level(0)
    tracker.create_snapshot()
    assert tobj.snapshots[-1][1].refs == ()


def test_clearing_from_inside_a_snapshot_is_refused_not_crashing(tracker):
    class Meddler:
        def __repr__(self):
            tracker.detach_all()  # RuntimeError inside the snapshot: treated as a failing repr
            return "meddler"

        def __sizeof__(self):
            tracker.clear()
            return object.__sizeof__(self)

    objs = [Meddler() for _ in range(3)]
    for o in objs:
        tracker.track_object(o)
    tracker.create_snapshot()
    assert len(tracker.snapshots) == 1
    assert all(tracker.objects[id(o)].ref() is o for o in objs)
    tracker.detach_all()  # outside a snapshot it works
    assert tracker.objects == {}


def test_clear_from_another_thread_waits_for_the_snapshot(tracker):
    import threading

    sizing = threading.Event()

    class Slow:
        def __sizeof__(self):
            sizing.set()
            time.sleep(0.01)
            return object.__sizeof__(self)

    objs = [Slow() for _ in range(30)]
    for o in objs:
        tracker.track_object(o)
    t = threading.Thread(target=tracker.create_snapshot)
    t.start()
    # the snapshot has begun sizing (30 objects, 10 ms each: 0.3 s to go)
    assert sizing.wait(30), "the snapshot never sized an object"
    tracker.clear()  # must not pull the records from under the snapshot
    t.join()
    assert tracker.objects == {} and tracker.snapshots == []


def test_enum_members_are_tracked_with_their_class(tracker):
    """Members exist before track_class can be called (made while the
    class is built): they are tracked from the call on, once each (not
    their aliases), and a Flag's combinations as they are made."""
    import enum

    class Color(enum.Enum):
        RED = 1
        GREEN = 2
        CRIMSON = 1             # an alias of RED

    class Level(enum.IntEnum):  # variable-sized: the death watch follows it
        LOW = 1
        HIGH = 2

    class Perm(enum.IntFlag):
        R = 4
        W = 2

    for cls in (Color, Level, Perm):
        tracker.track_class(cls)
    tracker.track_class(Color)  # again: no second record
    both = Perm.R | Perm.W
    prefix = __name__ + "."
    counts = {k[len(prefix):]: len(v) for k, v in tracker.index.items()}
    assert counts == {"Color": 2, "Level": 2, "Perm": 3}
    assert {id(o) for o in (Color.RED, Color.GREEN, Level.LOW, Level.HIGH, both)} \
        <= set(tracker.objects)
    tracker.create_snapshot()
    sizes = {t.name: t.snapshots[-1][1].flat for t in tracker.objects.values()}
    assert sizes[prefix + "Level"] >= sys.getsizeof(Level.LOW)
