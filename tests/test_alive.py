"""Retained sizes and why an object is alive, over the real heap graph."""
import gc
import sys
import time
import tracemalloc
import types
import weakref

import pytest

import classtrack
from classtrack import asizeof


class Obj:
    pass


def _module(name):
    m = types.ModuleType(name)
    sys.modules[name] = m
    return m


@pytest.fixture
def cache_module():
    m = _module("ct_test_app.cache")
    yield m
    del sys.modules["ct_test_app.cache"]


def test_shared_list_is_retained_by_neither_then_by_its_last_holder():
    # the seed's example: b.content shared into a.notmine
    a, b = Obj(), Obj()
    b.content = [object() for _ in range(1000)]
    a.notmine = b.content
    lst = asizeof.asizeof(b.content)
    ra, rb = classtrack.retained_size(a), classtrack.retained_size(b)
    assert ra < lst / 10 and rb < lst / 10          # neither retains it
    assert classtrack.retained_sizes([a, b]) == [ra, rb]
    assert classtrack.retained_size(a, b) >= lst    # together they do
    del a.notmine
    rb = classtrack.retained_size(b)
    assert rb >= lst
    assert classtrack.retained_sizes([b]) == [rb]


def test_data_also_held_by_a_module_global_is_retained_by_nobody(cache_module):
    holder = Obj()
    holder.data = {i: str(i) for i in range(500)}
    cache_module.data = holder.data
    assert classtrack.retained_size(holder) < asizeof.asizeof(holder.data) / 10
    del cache_module.data
    assert classtrack.retained_size(holder) >= asizeof.asizeof(holder.data)


def test_cycles_between_objects():
    a, b = Obj(), Obj()
    a.other, b.other = b, a
    b.payload = [object() for _ in range(300)]
    owner = Obj()
    owner.a = a                       # reaches b only through a
    payload = asizeof.asizeof(b.payload)
    del a, b                          # locals would be roots of their own
    ra = classtrack.retained_size(owner.a)
    assert ra >= payload              # a dominates b and its payload
    assert classtrack.retained_size(owner) >= ra
    keep = owner.a.other              # now b is held from here too
    assert classtrack.retained_size(owner.a) < payload
    del keep


def test_retained_size_matches_what_freeing_releases():
    gc.collect()
    holder = Obj()
    holder.rows = [{"id": i, "name": "row-%d" % i, "tags": [i, str(i)]} for i in range(3000)]
    retained = classtrack.retained_size(holder)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        del holder
        gc.collect()
        freed = before - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # tracemalloc only sees blocks allocated after it started: measure the
    # other way round too (build under tracemalloc)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        holder = Obj()
        holder.rows = [{"id": i, "name": "row-%d" % i, "tags": [i, str(i)]} for i in range(3000)]
        built = tracemalloc.get_traced_memory()[0] - before
        retained = classtrack.retained_size(holder)
    finally:
        tracemalloc.stop()
    assert abs(retained - built) <= 0.03 * built, (retained, built, freed)


def test_why_alive_through_a_module_and_containers(cache_module):
    class Session:
        pass

    cache_module.sessions = [None] * 17 + [Session()]
    paths = classtrack.why_alive(cache_module.sessions[17])
    text = [str(p) for p in paths]
    assert "module ct_test_app.cache -> dict['sessions'] -> list[17] -> %s.Session" % (
        Session.__module__) in text[0] or any("module ct_test_app.cache -> dict['sessions'] -> list[17]" in t for t in text), text
    # shortest first, each a Path with a root and steps
    assert all(isinstance(p, classtrack.alive.Path) for p in paths)
    assert [len(p) for p in paths] == sorted(len(p) for p in paths)


def test_why_alive_through_attributes_and_a_suspended_generator(cache_module):
    target = Obj()

    def holder_gen(x):
        yield
        return x

    g = holder_gen(target)
    next(g)
    box = Obj()
    box.slot = target
    cache_module.box = box
    cache_module.gen = g
    del g, box                # this function's locals would be shorter paths
    text = [str(p) for p in classtrack.why_alive(target, limit=5)]
    assert any("dict['box'] -> %s.Obj.slot -> " % __name__ in t for t in text), text
    assert any("dict['gen'] -> generator" in t for t in text), text
    cache_module.gen.close()


def test_why_alive_of_what_only_the_caller_holds_is_empty():
    lonely = Obj()
    assert classtrack.why_alive(lonely) == [] or all(
        "held from C" in str(p) or "frame" in str(p) for p in classtrack.why_alive(lonely))


def test_asking_keeps_nothing_alive(cache_module):
    victim = Obj()
    cache_module.victim = [victim]
    ref = weakref.ref(victim)
    paths = classtrack.why_alive(victim)
    assert paths
    classtrack.retained_size(victim)
    classtrack.retained_sizes([victim, cache_module])
    del victim
    cache_module.victim.clear()
    gc.collect()
    assert ref() is None
    assert "victim" in str(paths[0])


def _handle(req):
    return classtrack.why_alive(req["session"], limit=3)


def test_path_starts_at_the_local_of_a_running_function():
    victim = Obj()
    paths = [str(p) for p in _handle({"session": victim})]
    # 3.11 too: its interpreter frame's locals are read in place
    assert any(p.startswith("thread MainThread frame _handle() local 'req' -> dict['session']")
               for p in paths), paths


def _handle_with_a_closure(req):
    box = [req]

    def later():
        return box          # box is a cell variable of this frame

    return classtrack.why_alive(req, limit=3), later


def test_path_starts_at_the_cell_variable_of_a_running_function():
    paths, _ = _handle_with_a_closure(Obj())
    paths = [str(p) for p in paths]
    assert any(p.startswith("thread MainThread frame _handle_with_a_closure() local 'box' "
                            "(cell) -> list[0] -> ") for p in paths), paths


def test_bad_limit():
    with pytest.raises(ValueError, match="limit"):
        classtrack.why_alive(object(), limit=0)


def test_two_million_objects(cache_module):
    # 680,000 lists of [int, str]: two million objects and more, with the
    # ints and strs each held by one list only
    cache_module.big = [[i, str(i)] for i in range(680_000)]
    target = cache_module.big[-1]
    t0 = time.perf_counter()
    paths = classtrack.why_alive(target)
    took = time.perf_counter() - t0
    assert paths and "list[679999]" in str(paths[0])
    assert str(paths[0]).startswith("module ct_test_app.cache")
    assert classtrack.retained_size(target) == (
        asizeof.flatsize(target) + asizeof.flatsize(target[0]) + asizeof.flatsize(target[1]))
    assert took < 60          # bench/bench_retained.py measures it; here: it ends
    del cache_module.big


def _path_refcounts(m):
    holders = m.holders
    return (sys.getrefcount(holders[0]["victim"]), sys.getrefcount(holders[0]),
            sys.getrefcount(holders), sys.getrefcount(m.__dict__))


def test_asking_adds_no_reference_to_anything_on_the_path(cache_module):
    victim = Obj()
    cache_module.holders = [{"victim": victim}]
    before = _path_refcounts(cache_module)
    referrers_before = len(gc.get_referrers(victim))
    paths = classtrack.why_alive(victim, limit=3)
    classtrack.retained_size(victim)
    classtrack.retained_sizes([victim, cache_module.holders[0]])
    assert "dict['holders'] -> list[0] -> dict['victim']" in str(paths[0])
    assert _path_refcounts(cache_module) == before
    assert len(gc.get_referrers(victim)) == referrers_before
    # the paths are text: nothing of the heap is held by them
    assert all(isinstance(step, str) for p in paths for step in p.steps)


def test_a_value_only_one_object_holds_is_retained_by_it(cache_module):
    own, shared = Obj(), Obj()
    own.text = "o" * 5000 + str(id(own))          # held by own alone
    cache_module.text = "s" * 5000 + str(id(shared))
    shared.text = cache_module.text               # also held by the module
    own.number = 10 ** 40 + id(own)               # an int held by own alone
    text_size = sys.getsizeof(own.text)
    number_size = sys.getsizeof(own.number)
    ro, rs = classtrack.retained_sizes([own, shared])
    assert ro >= text_size + number_size
    assert rs < text_size
    assert classtrack.retained_size(own) == ro
    del cache_module.text
    assert classtrack.retained_size(shared) >= text_size   # its last holder
