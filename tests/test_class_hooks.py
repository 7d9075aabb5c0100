"""Hooking tracked classes and their subclasses: which classes each step
touches (the work per new class must not grow with the number of classes
tracked already), and that subclasses made by any path are tracked with
the settings of their most specialised tracked base."""
import gc

import pytest

import classtrack
from classtrack import classtracker as ct_module
from classtrack.classtracker import ClassTracker

from helpers import close_tracker


class CountingEngine:
    """Stands in for a tracker's engine and counts the calls that hook,
    unhook or list classes; everything else goes to the real engine."""

    def __init__(self, engine):
        self._real = engine
        self.hooks = 0
        self.unhooks = 0
        self.listings = 0

    def hook(self, *args):
        self.hooks += 1
        return self._real.hook(*args)

    def unhook(self, cls):
        self.unhooks += 1
        return self._real.unhook(cls)

    def hooked(self):
        self.listings += 1
        return self._real.hooked()

    def __len__(self):
        return len(self._real)

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.fixture
def counted(monkeypatch):
    """A tracker whose engine calls are counted, and a count of the
    classes walked for subclasses (classtracker._with_subclasses)."""
    t = ClassTracker()
    engine = CountingEngine(t._engine)
    t._engine = engine
    walked = [0]
    real_walk = ct_module._with_subclasses

    def walk(cls):
        out = real_walk(cls)
        walked[0] += len(out)
        return out

    monkeypatch.setattr(ct_module, "_with_subclasses", walk)
    try:
        yield t, engine, walked
    finally:
        t._engine = engine._real
        close_tracker(t)


def tracked_names(tracker):
    return {o.id: o.name for o in tracker.objects.values() if o.ref() is not None}


def _many_tracked(tracker, n):
    """n unrelated tracked classes, each with a subclass (the roots a
    full re-walk would visit)."""
    classes = []
    for i in range(n):
        base = type("Base%d" % i, (), {})
        type("Sub%d" % i, (base,), {})
        tracker.track_class(base)
        classes.append(base)
    return classes


def test_tracking_one_more_class_touches_only_its_tree(counted):
    tracker, engine, walked = counted
    _many_tracked(tracker, 200)
    engine.hooks = walked[0] = 0
    Extra = type("Extra", (), {})
    type("ExtraSub", (Extra,), {})
    tracker.track_class(Extra)
    # Extra and its one subclass (walked twice: once to check that their
    # deaths can be followed, once to hook); before, every tracked class
    # and subclass was re-hooked
    assert engine.hooks == 2
    assert walked[0] == 4
    assert engine.listings == 0


def test_a_snapshot_hooks_nothing_when_no_class_appeared(counted):
    tracker, engine, walked = counted
    _many_tracked(tracker, 200)
    engine.hooks = walked[0] = 0
    for _ in range(3):
        tracker.create_snapshot()
    assert (engine.hooks, engine.unhooks, engine.listings, walked[0]) == (0, 0, 0, 0)


def test_class_statements_are_hooked_without_the_python_layer(counted):
    tracker, engine, walked = counted
    bases = _many_tracked(tracker, 100)
    engine.hooks = walked[0] = 0
    made = []
    for i, base in enumerate(bases):
        class Child(base):
            pass
        made.append(Child())
    tracker.create_snapshot()
    # hooked by the engine's __build_class__ wrapper; the snapshot sees the
    # subclass counts in step and walks nothing
    assert (engine.hooks, walked[0]) == (0, 0)
    names = tracked_names(tracker)
    assert all(id(m) in names for m in made)


def test_a_package_watch_hooks_each_new_class_once(counted):
    tracker, engine, walked = counted
    tracker.track_package("ctfakepkg_hooks")
    engine.hooks = walked[0] = 0
    ns = {"__name__": "ctfakepkg_hooks.mod"}
    n = 300
    exec("classes = []\nfor i in range(%d):\n    class C:\n        pass\n"
         "    classes.append(C)\n" % n, ns)
    # one hook and one class walked per class statement, however many are
    # tracked already (the whole-table re-walk made this quadratic)
    assert engine.hooks == n
    assert walked[0] == n
    objs = [c() for c in ns["classes"]]
    names = tracked_names(tracker)
    assert all(names.get(id(o)) == "ctfakepkg_hooks.mod.C" for o in objs)


def test_type_made_subclasses_are_picked_up_at_the_next_snapshot(tracker):
    class Root:
        pass

    tracker.track_class(Root, name="root")
    Child = type("Child", (Root,), {})
    Grandchild = type("Grandchild", (Child,), {})
    tracker.create_snapshot()
    c, g = Child(), Grandchild()
    names = tracked_names(tracker)
    assert names[id(c)] == "root" and names[id(g)] == "root"
    # and a class statement under a type()-made class, after the snapshot
    class Great(Grandchild):
        pass

    great = Great()
    assert tracked_names(tracker)[id(great)] == "root"


def test_type_made_subclass_is_picked_up_by_track_class(tracker):
    class Root:
        pass

    class Other:
        pass

    tracker.track_class(Root)
    Dyn = type("Dyn", (Root,), {})
    tracker.track_class(Other)
    d = Dyn()
    assert id(d) in tracked_names(tracker)


def test_a_dead_type_made_sibling_does_not_hide_a_new_one(tracker):
    # the engine notices new subclasses by their count: one that came and
    # went must not cancel one that came and stayed
    class Root:
        pass

    tracker.track_class(Root, name="root")
    tracker.create_snapshot()
    gone = type("Gone", (Root,), {})
    del gone
    kept = type("Kept", (Root,), {})
    gc.collect()
    tracker.create_snapshot()
    k = kept()
    assert tracked_names(tracker)[id(k)] == "root"
    gone = type("Gone", (Root,), {})
    kept2 = type("Kept2", (Root,), {})
    del gone
    gc.collect()
    tracker.create_snapshot()
    k2 = kept2()
    assert tracked_names(tracker)[id(k2)] == "root"


def test_each_tracker_picks_up_a_type_made_subclass(tracker):
    class Root:
        pass

    other = ClassTracker()
    try:
        tracker.track_class(Root, name="one")
        other.track_class(Root, name="two")
        Dyn = type("Dyn", (Root,), {})
        tracker.create_snapshot()
        other.create_snapshot()
        d = Dyn()
        assert tracked_names(tracker)[id(d)] == "one"
        assert tracked_names(other)[id(d)] == "two"
    finally:
        close_tracker(other)


def test_a_class_statement_takes_the_first_tracked_class_in_its_mro(tracker):
    class A:
        pass

    class AChild(A):        # hooked, but with A's settings: not tracked itself
        pass

    class B:
        pass

    tracker.track_class(A, name="a")
    tracker.track_class(B, name="b")

    class Both(AChild, B):  # MRO: Both, AChild, A, B -> A is the first tracked
        pass

    class Other(B, AChild):  # MRO: Other, B, AChild, A -> B
        pass

    objs = {"both": Both(), "other": Other()}
    tracker.track_class(AChild, name="achild")

    class Late(AChild, B):  # now AChild is tracked itself
        pass

    objs.update(late=Late(), both_after=Both())
    names = tracked_names(tracker)
    got = {k: names[id(o)] for k, o in objs.items()}
    assert got == {"both": "a", "other": "b", "late": "achild", "both_after": "achild"}


def test_a_class_statement_under_an_untracked_hooked_class_with_two_roots(tracker):
    # the engine picks the first tracked class of the MRO, not the first
    # hooked one: here the first hooked one (Mid) has R's settings
    class R:
        pass

    class Mid(R):
        pass

    class S(R):
        pass

    tracker.track_class(R, name="r")
    tracker.track_class(S, name="s")

    class Diamond(Mid, S):  # MRO: Diamond, Mid, S, R -> S is tracked, Mid not
        pass

    d = Diamond()
    assert tracked_names(tracker)[id(d)] == "s"


def test_detach_rehooks_the_subtree_with_what_governs_it(tracker):
    class Base:
        pass

    class Mid(Base):
        pass

    tracker.track_class(Base, name="base")
    tracker.track_class(Mid, name="mid")

    class Leaf(Mid):
        pass

    Dyn = type("Dyn", (Mid,), {})
    tracker.create_snapshot()
    early = Leaf()
    assert tracked_names(tracker)[id(early)] == "mid"
    tracker.detach_class(Mid)
    leaf, dyn = Leaf(), Dyn()
    names = tracked_names(tracker)
    assert names[id(leaf)] == "base" and names[id(dyn)] == "base"
    tracker.detach_class(Base)
    hooked = classtrack._core.hooked_types()
    assert not {Base, Mid, Leaf, Dyn} & set(hooked)
    late = Leaf()
    assert id(late) not in tracked_names(tracker)

    # and a class statement after the detach is not hooked either
    class After(Mid):
        pass

    assert After not in classtrack._core.hooked_types()


def test_detach_of_one_root_leaves_the_others_untouched(counted):
    tracker, engine, walked = counted
    classes = _many_tracked(tracker, 100)
    engine.hooks = engine.unhooks = walked[0] = 0
    tracker.detach_class(classes[0])
    assert (engine.hooks, engine.unhooks) == (0, 2)
    assert walked[0] == 2


def test_snapshots_in_another_thread_while_a_package_watch_adds_classes(tracker):
    # the monitor's snapshots read the tracked classes while the program's
    # thread adds them (a package watch, at each class statement): the
    # snapshot thread once died of "dictionary changed size during iteration"
    import sys
    import threading

    tracker.track_package("ctfakepkg_threads")
    tracker.track_class(type("Retained", (), {}), retained=True)
    errors, stop = [], threading.Event()

    def snapshots():
        try:
            while not stop.is_set():
                tracker.create_snapshot()
        except Exception as exc:    # noqa: BLE001 - reported below
            errors.append(exc)

    ns = {"__name__": "ctfakepkg_threads.mod"}
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread = threading.Thread(target=snapshots)
    thread.start()
    try:
        for i in range(400):
            exec("class C%d:\n    pass\n" % i, ns)
            type("D%d" % i, (ns["C%d" % i],), {})
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(old)
    assert not errors, errors
    assert len(tracker._classes) == 401
