"""why_alive: one path per direct holder, shortest first, roots named."""
import functools
import sys
import types

import pytest

import classtrack


class Obj:
    pass


class Registry:
    """An instance kept alive by the lru_cache of one of its methods."""

    @functools.lru_cache(maxsize=None)
    def get(self, key):
        return key


class Holder:
    inst = None


GLOBAL_HELD = None
MOD = __name__


@pytest.fixture
def modules():
    made = []

    def make(name):
        m = types.ModuleType(name)
        sys.modules[name] = m
        made.append(name)
        return m

    yield make
    for name in made:
        del sys.modules[name]


def _three_holders(make):
    o = Obj()
    make("ct_wap_m1").g = o
    app = make("ct_wap_app")
    app.lst = [1, 2, [o]]
    app._CACHE = {"k": {"deep": {"x": o}}}
    return o


def test_three_holders_give_three_paths_shortest_first(modules):
    o = _three_holders(modules)
    paths = classtrack.why_alive(o, limit=10)
    text = [str(p) for p in paths]
    assert text == [
        "module ct_wap_m1 -> dict['g'] -> %s.Obj" % MOD,
        "module ct_wap_app -> dict['lst'] -> list[2] -> list[0] -> %s.Obj" % MOD,
        "module ct_wap_app -> dict['_CACHE'] -> dict['k'] -> dict['deep'] -> dict['x'] -> %s.Obj"
        % MOD,
    ], text
    assert [len(p) for p in paths] == [2, 4, 5]
    # each path ends at a different direct holder
    assert len({p.steps[-2] for p in paths}) == 3


def test_limit_two_gives_the_two_shortest(modules):
    o = _three_holders(modules)
    two = [str(p) for p in classtrack.why_alive(o, limit=2)]
    assert two == [str(p) for p in classtrack.why_alive(o, limit=10)][:2]
    assert len(two) == 2


def test_one_path_per_holder_however_many_routes_lead_to_it(modules):
    m = modules("ct_wap_routes")
    o = Obj()
    shared = [o, o]                      # holds o twice: still one holder
    m.near = shared
    m.far = {"a": {"b": shared}}         # a longer route to the same holder
    del shared                           # (this function's local: a third route)
    text = [str(p) for p in classtrack.why_alive(o, limit=10)]
    assert text == ["module ct_wap_routes -> dict['near'] -> list[0] -> %s.Obj" % MOD], text


def _ask(x):
    return [str(p) for p in classtrack.why_alive(x, limit=5)]


def _outer():
    o = Obj()
    return _ask(o)


def test_a_local_of_a_running_function_is_named():
    # _outer's local holds it; _ask (the caller) holding its argument is the
    # question, not an answer
    text = _outer()
    assert text == ["thread MainThread frame _outer() local 'o' -> %s.Obj" % MOD], text


def test_a_global_of_the_callers_module_is_named():
    global GLOBAL_HELD
    GLOBAL_HELD = Obj()
    try:
        text = [str(p) for p in classtrack.why_alive(GLOBAL_HELD, limit=3)]
        assert text[0] == "module %s -> dict['GLOBAL_HELD'] -> %s.Obj" % (MOD, MOD), text
        assert not any(t.startswith("held from C") for t in text), text
    finally:
        GLOBAL_HELD = None


def test_an_lru_cache_holder_names_the_class_and_the_method():
    Registry.get.cache_clear()
    r = Registry()
    r.get(1)
    try:
        text = [str(p) for p in classtrack.why_alive(r, limit=3)]
        want = ("class {m}.Registry -> dict['get'] -> lru_cache {m}.Registry.get -> ".format(m=MOD))
        assert any(want in t for t in text), text
        assert not any(t.startswith("held from C") or " type -> " in t for t in text), text
    finally:
        Registry.get.cache_clear()


def test_a_class_attribute_names_the_class():
    Holder.inst = Obj()
    try:
        text = [str(p) for p in classtrack.why_alive(Holder.inst, limit=3)]
        assert text[0] == ("module {m} -> dict['Holder'] -> class {m}.Holder -> dict['inst'] -> "
                           "{m}.Obj".format(m=MOD)), text
    finally:
        Holder.inst = None


def test_same_heap_same_paths_and_limit_one_is_the_first(modules):
    o = _three_holders(modules)
    runs = [[str(p) for p in classtrack.why_alive(o, limit=3)] for _ in range(5)]
    assert all(r == runs[0] for r in runs), runs
    assert [str(p) for p in classtrack.why_alive(o, limit=1)] == runs[0][:1]
