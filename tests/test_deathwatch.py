"""Deaths learnt from the object allocator (src/classtrack/_core/tracker/deathwatch.c).

Every test checks a death the watch must not miss (a missed death would
leave a record pointing at freed memory: wrong counts, then a crash when
a snapshot sizes it) or a case where the watch must step aside.
"""
import collections
import copy
import gc
import pickle
import subprocess
import sys
import textwrap

import pytest

from classtrack.classtracker import ClassTracker


class Node:
    def __init__(self, i=0):
        self.value = i
        self.children = []


class Other:
    def __init__(self):
        self.value = 0
        self.children = []


def alive(tracker):
    return sum(1 for o in tracker.objects.values() if o.ref() is not None)


def test_instances_of_python_classes_are_watched(tracker):
    tracker.track_class(Node)
    assert tracker._engine.watched()
    n = Node()
    tobj = tracker.objects[id(n)]
    assert tobj.ref() is n and tobj.death is None
    del n
    assert tobj.ref() is None
    assert tobj.death is not None and tobj.death >= tobj.birth


def test_death_after_class_reassignment(tracker):
    tracker.track_class(Node)
    objs = [Node(i) for i in range(200)]
    for o in objs:
        o.__class__ = Other     # Other is not tracked: its dealloc is not ours
    records = [tracker.objects[id(o)] for o in objs]
    del objs, o
    assert all(r.death is not None for r in records)
    # the memory is reused by untracked objects of the same size: a missed
    # death would now size (or crash on) one of them
    fillers = [Other() for _ in range(2000)]
    snap_before = len(tracker.snapshots)
    tracker.create_snapshot()
    assert len(tracker.snapshots) == snap_before + 1
    assert tracker.snapshots[-1].tracked_total == 0
    assert alive(tracker) == 0
    del fillers


def test_deaths_in_collected_cycles(tracker):
    tracker.track_class(Node)
    gc.collect()
    ring = [Node(i) for i in range(50)]
    for a, b in zip(ring, ring[1:] + ring[:1]):
        a.children.append(b)
    records = [tracker.objects[id(o)] for o in ring]
    del ring, a, b
    assert all(r.death is None for r in records)    # the cycle keeps them
    gc.collect()
    assert all(r.death is not None for r in records)
    assert alive(tracker) == 0


class Phoenix:
    saved = []

    def __del__(self):
        if not Phoenix.saved:
            Phoenix.saved.append(self)   # resurrected once


def test_resurrection_is_not_a_death(tracker):
    tracker.track_class(Phoenix)
    p = Phoenix()
    tobj = tracker.objects[id(p)]
    del p
    assert Phoenix.saved and tobj.death is None
    assert tobj.ref() is Phoenix.saved[0]
    tracker.create_snapshot()
    # the birth entry, then the snapshot's
    assert len(tobj.snapshots) == 2, "the resurrected object is sized"
    assert tobj.snapshots[1][1].size > 0
    Phoenix.saved.clear()
    assert tobj.death is not None


@pytest.mark.parametrize("base", [dict, list, set, Exception])
def test_subclasses_of_builtins(tracker, base):
    cls = type("Sub" + base.__name__, (base,), {})
    tracker.track_class(cls)
    o = cls()
    tobj = tracker.objects[id(o)]
    del o
    assert tobj.death is not None


_BUILTIN_BASES = [dict, list, set, frozenset, Exception, bytearray, str, object,
                  collections.defaultdict, tuple, int, collections.deque]


@pytest.mark.parametrize("base", _BUILTIN_BASES, ids=lambda b: b.__name__)
def test_subclasses_of_builtins_every_creation_path(tracker, base):
    # 3.14's set/frozenset and 3.15's dict constructors allocate without
    # the class's tp_alloc: every path must still register, exactly once
    cls = type("Sub" + base.__name__, (base,), {"__module__": __name__})
    globals()[cls.__name__] = cls      # picklable by reference
    try:
        sub = type("Subsub" + base.__name__, (cls,), {})
        tracker.track_class(cls)
        made = [cls(), cls.__new__(cls), copy.copy(cls()), copy.deepcopy(cls()), sub()]
        made += [pickle.loads(pickle.dumps(cls(), proto)) for proto in (0, 2, 5)]
        missed = [i for i, o in enumerate(made) if id(o) not in tracker.objects]
        assert missed == [], "creation paths not tracked: %r" % missed
        # the temporaries of copy/deepcopy/pickle are records too, once each
        assert len(tracker._engine) == len(made) + 5
        assert tracker._engine.alive == len(made)
        tobjs = [tracker.objects[id(o)] for o in made]
        del made
        gc.collect()
        assert all(t.death is not None for t in tobjs)
        assert tracker._engine.alive == 0
    finally:
        del globals()[cls.__name__]


def test_set_subclass_tracked_again_after_tracemalloc_stops(tracker):
    # 3.14+: set subclasses are registered by a reference tracer, which
    # tracemalloc.start() replaces and tracemalloc.stop() clears; the next
    # snapshot (or lookup) puts it back
    import tracemalloc
    cls = type("SubsetTM", (set,), {})
    tracker.track_class(cls, keep=True)
    tracemalloc.start()
    try:
        during = cls()
    finally:
        tracemalloc.stop()
    tracker.create_snapshot()
    after = cls()
    assert id(after) in tracker.objects
    del during


def test_two_trackers_both_see_the_death(tracker):
    other = ClassTracker()
    try:
        tracker.track_class(Node)
        other.track_class(Node)
        n = Node()
        a, b = tracker.objects[id(n)], other.objects[id(n)]
        del n
        assert a.death is not None and b.death is not None
    finally:
        other.close()


def test_track_object_of_existing_instance(tracker):
    n = Node()
    tracker.track_object(n)
    tobj = tracker.objects[id(n)]
    tracker.track_object(n)      # found again: no second record
    assert len(tracker.index["Node"]) == 1
    del n
    assert tobj.death is not None


def run_child(code):
    """Run `code` (dedented) in a fresh interpreter; its stdout."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_tracemalloc_started_first_means_weak_references():
    # tracemalloc.stop() would unhook a watch installed above it: the
    # tracker must not install it, and still record every death
    out = run_child("""
        import tracemalloc, gc
        tracemalloc.start()
        from classtrack import ClassTracker
        class Node: pass
        class Slotted:
            __slots__ = ("a",)
        t = ClassTracker()
        t.track_class(Node)
        assert not t._engine.watched()
        objs = [Node() for _ in range(100)]
        records = [t.objects[id(o)] for o in objs]
        try:
            t.track_class(Slotted)
        except TypeError as e:
            assert "keep=True" in str(e)
        else:
            raise AssertionError("Slotted needs keep=True without the watch")
        tracemalloc.stop()
        del objs
        assert all(r.death is not None for r in records)
        # tracemalloc gone: the watch can be installed now
        t.track_class(Slotted)
        assert t._engine.watched()
        s = Slotted(); r = t.objects[id(s)]; del s
        assert r.death is not None
        t.create_snapshot()
        print("ok")
    """)
    assert out.strip() == "ok"


# The start of a child program (for run_child): a tracker `t` whose death
# watch follows the instances of Node.
WATCHING = """
        import gc, tracemalloc
        from classtrack import ClassTracker
        class Node: pass
        t = ClassTracker()
        t.track_class(Node)
        assert t._engine.watched()
"""


def test_tracemalloc_started_later_keeps_the_watch():
    out = run_child(WATCHING + """
        tracemalloc.start()            # wraps the watch
        a = [Node() for _ in range(100)]
        tracemalloc.stop()             # restores it
        b = [Node() for _ in range(100)]
        records = [t.objects[id(o)] for o in a + b]
        del a, b
        assert all(r.death is not None for r in records)
        fill = [Node.__new__(Node) for _ in range(1000)]
        t.create_snapshot()
        assert t.snapshots[-1].tracked_total > 0
        print("ok")
    """)
    assert out.strip() == "ok"


def test_watch_removed_when_the_last_tracker_goes():
    out = run_child(WATCHING + """
        t.close(); del t; gc.collect()
        # with no tracker left the watch is gone: tracemalloc started now
        # and stopped later must leave a new tracker on weak references
        tracemalloc.start()
        t = ClassTracker()
        t.track_class(Node)
        print(t._engine.watched())
        n = Node(); r = t.objects[id(n)]
        tracemalloc.stop()
        del n
        assert r.death is not None
    """)
    assert out.strip() == "False"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="own-GIL subinterpreters are 3.12+")
def test_other_interpreters_frees_pass_through(tracker):
    try:
        import _interpreters as interpreters      # 3.13
    except ImportError:
        try:
            import _xxsubinterpreters as interpreters   # 3.12
        except ImportError:
            pytest.skip("no subinterpreter module in this build")
    tracker.track_class(Node)
    keep = [Node(i) for i in range(100)]
    interp = interpreters.create()
    try:
        code = "x = [object() for _ in range(10000)]\ndel x\n"
        if hasattr(interpreters, "run_string"):
            interpreters.run_string(interp, code)
        else:
            interpreters.exec(interp, code)
    finally:
        interpreters.destroy(interp)
    assert alive(tracker) == 100
    tracker.create_snapshot()
    del keep
    assert alive(tracker) == 0


# The start of a child program (for run_child): tracemalloc traces, its
# tracing state hidden from the watch's install check by a fake _tracemalloc
# module, so that the watch is installed on top of it.  `real` is the real
# module: put back, tracemalloc.stop() takes the watch with it.
HIDDEN_TRACEMALLOC = """
        import sys, tracemalloc, types, warnings
        tracemalloc.start()
        real = sys.modules["_tracemalloc"]
        fake = types.ModuleType("_tracemalloc"); fake.is_tracing = lambda: False
        sys.modules["_tracemalloc"] = fake
        class Node:
            __slots__ = ("a",)
"""


def test_watch_removed_by_another_hook_is_detected():
    # An allocator hook installed before the watch and removed after it
    # takes the watch with it (simulated with tracemalloc, its tracing
    # state hidden from the install check).  The tracker must notice
    # before trusting any record: objects are marked dead with a warning,
    # nothing reads freed memory, new objects use weak references.
    out = run_child(HIDDEN_TRACEMALLOC + """
        from classtrack import ClassTracker
        class Weak:
            pass
        t = ClassTracker()
        t.track_class(Node)
        t.track_class(Weak)
        sys.modules["_tracemalloc"] = real
        tracemalloc.stop()               # the watch goes with it
        objs = [Node() for _ in range(500)]
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            views = [t.objects[id(o)] for o in objs]
            del objs
            filler = [bytearray(8) for _ in range(20000)]
            refs = [v.ref() for v in views]
        assert all(r is None for r in refs)
        assert all(v.death is not None for v in views)
        assert any("removed the death watch" in str(x.message) for x in w), w
        assert not t._engine.watched()
        k = Weak(); r = t.objects[id(k)]; del k
        assert r.death is not None
        t.create_snapshot()
        print("ok")
    """)
    assert out.strip() == "ok"


def test_trackers_that_used_weak_references_are_freed():
    out = run_child("""
        import gc
        from classtrack import _core
        def f(): pass
        def count():
            gc.collect()
            return sum(1 for o in gc.get_objects() if type(o) is _core.Tracker)
        base = count()
        for k in range(5):
            t = _core.Tracker()
            t.track(f, "f", 0, False, False)   # a weak reference via weakref.__new__
            del t
        print(count() - base)
    """)
    assert out.strip() == "0"


def test_record_names_while_the_collector_tracks_more(tracker):
    eng = tracker._engine
    tracker.track_class(Node)
    keep = []

    class Bomb:
        def __del__(self):
            keep.extend(Node() for _ in range(2000))

    gc.collect()
    b = Bomb()
    b.self = b
    del b
    old = gc.get_threshold()
    gc.set_threshold(1)
    try:
        names = eng.record_names()
    finally:
        gc.set_threshold(*old)
    assert len(names) <= len(eng)


def test_trackers_in_subinterpreters_use_weak_references():
    _testcapi = pytest.importorskip("_testcapi")
    code = textwrap.dedent("""
        from classtrack.classtracker import ClassTracker
        class Node:
            def __init__(self): self.x = [1, 2, 3]
        t = ClassTracker()
        t.track_class(Node)
        objs = [Node() for _ in range(200)]
        recs = [t.objects[id(o)] for o in objs]
        del objs
        assert all(r.death is not None for r in recs), "missed deaths"
        junk = [bytearray(64) for _ in range(5000)]
        t.create_snapshot()
        assert t.snapshots[-1].tracked_total == 0
        t.close()
    """)
    assert _testcapi.run_in_subinterp(code) == 0


@pytest.mark.skipif(sys.version_info < (3, 12), reason="interpreters are filtered on 3.12+; "
                    "and 3.11's Py_NewInterpreter deadlocks with tracemalloc tracing")
def test_subinterpreter_tracker_does_not_judge_the_main_watch():
    # tracemalloc started after the tracker wraps the watch (it is not on
    # top): a tracker in another interpreter must not probe it, conclude it
    # is gone and mark the main interpreter's live objects dead
    out = run_child("""
        import tracemalloc, textwrap, _testcapi
        from classtrack import _core
        class Node:
            __slots__ = ("a",)
        eng = _core.Tracker()
        eng.hook(Node, "Node", 0, False, False)
        objs = [Node() for _ in range(10)]
        tracemalloc.start()
        code = "from classtrack import _core\\ne = _core.Tracker()\\ne.find(object())\\n"
        assert _testcapi.run_in_subinterp(code) == 0
        assert eng.alive == 10 and eng.watched()
        assert eng.record(0)[3] is None
        tracemalloc.stop()
        del objs
        assert eng.alive == 0
        print("ok")
    """)
    assert out.strip() == "ok"


def test_warning_that_clears_the_tracker_inside_record():
    out = run_child(HIDDEN_TRACEMALLOC + """
        from classtrack import _core
        eng = _core.Tracker()
        eng.hook(Node, "Node", 0, False, False)
        sys.modules["_tracemalloc"] = real
        objs = [Node() for _ in range(10)]
        tracemalloc.stop()
        warnings.showwarning = lambda *a, **k: eng.clear_records()
        warnings.simplefilter("always")
        try:
            eng.record(5)
        except IndexError:
            print("ok")
    """)
    assert out.strip() == "ok"


# -- the livemap and the creation fast path -----------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3, 0xDEADBEEF, 2**63 + 5])
def test_livemap_agrees_with_a_reference(seed):
    from classtrack import _core
    # inserts, replacements, removals and look-ups over dense and sparse
    # pages, compared one by one with a plain array
    assert _core._livemap_selftest(seed, 200_000) == 0


def test_deaths_in_any_allocation_order(tracker):
    # freed blocks are handed out again in the allocator's order (last
    # freed, first reused), so later instances land in pages already
    # holding tracked objects, at units below theirs
    import random
    rng = random.Random(7)
    tracker.track_class(Node)
    objs = [Node(i) for i in range(6000)]
    for round_ in range(4):
        rng.shuffle(objs)
        del objs[: len(objs) // 2]
        objs.extend(Node(i) for i in range(3000))
        gc.collect()
        assert alive(tracker) == len(objs)
    ids = {id(o) for o in objs}
    for rec in tracker.objects.values():
        assert (rec.ref() is not None) == (rec.death is None)
        assert rec.ref() is None or rec.id in ids
    del objs
    assert alive(tracker) == 0
    assert all(rec.death is not None for rec in tracker.objects.values())


def test_subclass_instances_between_base_instances_keep_their_class(tracker):
    class Sub(Node):
        pass

    tracker.track_class(Node)
    made = []
    for i in range(300):
        made.append(Node(i))
        made.append(Sub(i))
        made.append(Sub(i) if i % 3 else Node(i))
    by_id = {id(o): type(o).__name__ for o in made}
    recs = [r for r in tracker.objects.values() if r.ref() is not None]
    assert len(recs) == len(made)
    for r in recs:
        assert r.classname == by_id[r.id]


def test_second_tracker_on_a_class_sees_every_instance(tracker):
    # two owners take the general path; a third tracker on the subclass
    # makes the subclass the most specialised class for its instances
    other = ClassTracker()
    try:
        tracker.track_class(Node)
        objs = [Node(i) for i in range(500)]
        other.track_class(Node)
        objs += [Node(i) for i in range(500)]
        assert alive(tracker) == 1000
        assert alive(other) == 500
        del objs[:700]
        assert alive(tracker) == 300
        assert alive(other) == 300
    finally:
        other.clear()


class _Text(str):
    """As docutils.nodes.Text: a str subclass with a __dict__ (and here a
    weakref slot, so that a weak reference could follow it too)."""


def test_str_subclasses_are_watched_not_weakly_referenced(tracker):
    """A str subclass's instances are followed by the death watch, with no
    weak reference each (docutils' Text nodes: 146 B more per instance
    when each carried one, against 54 for a watched class), and their
    deaths are seen, short and long strings (a separate data buffer) alike."""
    import weakref
    tracker.track_class(_Text)
    made = [_Text("x"), _Text("long " * 1000), _Text("\u20ac" * 50), _Text()]
    for o in made:
        assert id(o) in tracker.objects
        assert weakref.getweakrefcount(o) == 0, "tracked through a weak reference"
    tobjs = [tracker.objects[id(o)] for o in made]
    assert tracker._engine.alive == len(made)
    del made, o
    gc.collect()
    assert all(t.death is not None for t in tobjs)
    assert tracker._engine.alive == 0


class _Pair(collections.namedtuple("_Pair", "a b")):
    __slots__ = ()


def test_variable_sized_and_extension_bases_are_watched(tracker):
    """NamedTuple and int subclasses (variable-sized: no __weakref__ slot
    allowed), deque and C ElementTree Element subclasses (their C base
    resets the weak-reference list): the watch follows them, deaths
    included, whatever their size, in cycles too, and a snapshot after
    their memory went to other objects sizes only the living."""
    import weakref
    import xml.etree.ElementTree as ET

    class Big(int):
        pass

    class Queue(collections.deque):
        pass

    class Elem(ET.Element):
        pass

    for cls in (_Pair, Big, Queue, Elem):
        tracker.track_class(cls)
    assert tracker.untrackable_classes() == []
    made = [_Pair(i, [i]) for i in range(300)]
    made += [Big(7 ** (i % 400)) for i in range(300)]      # 1 to 38 digits
    made += [Queue(range(i % 70)) for i in range(100)]
    made += [Elem("e%d" % i) for i in range(100)]
    for q in made[600:700]:
        q.append(q)                                        # cycles: freed by the collector
    for e in made[700:]:
        e.append(Elem("child"))
    assert all(id(o) in tracker.objects for o in made)
    assert all(weakref.getweakrefcount(o) == 0 for o in made[600:])
    tobjs = [tracker.objects[id(o)] for o in made]
    tracker.create_snapshot()
    del made, q, e
    gc.collect()
    alive_now = [t.name for t in tobjs if t.death is None]
    assert alive_now == [], (len(alive_now), alive_now[:5])
    # their blocks are reused by other objects: a missed death would size them
    fillers = [tuple(range(i % 40)) for i in range(5000)] + [10 ** (i % 50) for i in range(5000)]
    tracker.create_snapshot()
    assert tracker._engine.alive == 0
    del fillers


def test_half_built_instance_is_off_the_collector_while_tracked():
    """deque_new fills its block pointers after tp_alloc, which gave the
    object to the collector; tracking with a trace allocates, and on
    3.9-3.11 a collection then traversed the half-built deque (a crash in
    deque_traverse).  A subprocess: a crash must fail one test, not all."""
    code = textwrap.dedent("""
        import collections, gc
        from classtrack.classtracker import ClassTracker

        class Queue(collections.deque):
            pass

        t = ClassTracker()
        t.track_class(Queue, trace=True)
        gc.set_threshold(1, 1, 1)
        made = [Queue(range(i % 5)) for i in range(3000)]
        gc.set_threshold(700, 10, 10)
        assert len(t.index[Queue.__module__ + ".Queue"]) == 3000
        assert all(t.objects[id(q)].trace for q in made[:5])
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])
