"""Hostile objects never crash or hang the sizer; it falls back to the
layout size and goes on."""
import sys
import threading
import time
import weakref

import pytest

from classtrack.asizeof import Asizer, asized, asizeof, basicsize, flatsize


class RaisingSizeof:
    def __sizeof__(self):
        raise ValueError("no size for you")


class GarbageSizeof:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __sizeof__(self):
        return self.value


class Plain:
    pass


def test_sizeof_that_raises_falls_back_to_layout():
    o = RaisingSizeof()
    assert asizeof(o) == flatsize(o)
    assert flatsize(o) == flatsize(Plain())  # same layout


@pytest.mark.parametrize("value", [-1, -10**30, 10**30, 2**62, "123", 1.5, None, 3])
def test_sizeof_returning_garbage_falls_back(value):
    o = GarbageSizeof(value)
    # no attribute storage outside the layout: fallback == layout size
    assert flatsize(o) == basicsize(o)


def test_plausible_python_sizeof_is_used():
    class Bigger:
        __slots__ = ()

        def __sizeof__(self):
            return object.__sizeof__(self) + 1000
    assert flatsize(Bigger()) == basicsize(Bigger()) + 1000


def test_sizeof_raising_base_exception_propagates():
    class Interrupting:
        def __sizeof__(self):
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        asizeof([Interrupting()])


def test_getattr_and_class_tricks_are_not_consulted():
    class Trick:
        calls = 0

        def __getattribute__(self, name):
            type(self).calls += 1
            raise RuntimeError("attribute access: " + name)

        def __getattr__(self, name):
            raise RuntimeError("attribute access: " + name)

        @property
        def __class__(self):
            raise RuntimeError("__class__ read")

    t = Trick()
    object.__setattr__(t, "payload", ["p%d" % i * 10 for i in range(10)])
    size = asizeof(t)
    assert size > asizeof(object.__getattribute__(t, "payload"))
    asized(t, detail=2)
    assert Trick.calls == 0


def test_proxies_are_not_followed_through():
    target = ["t%d" % i * 100 for i in range(100)]
    p = Plain()
    p.data = target
    proxy = weakref.proxy(p)
    assert asizeof(proxy) == flatsize(proxy)
    assert asizeof([proxy]) == flatsize([proxy]) + flatsize(proxy)


def test_sizeof_that_mutates_the_graph():
    holder = {}

    class Mutator:
        def __sizeof__(self):
            holder.clear()  # drops the rest of the graph while it waits on the stack
            return object.__sizeof__(self)

    for i in range(100):
        holder["k%d" % i] = ["v%d" % i * 10]
    holder["m"] = Mutator()
    asizeof([holder, list(holder.values())])  # no crash
    asized(holder, detail=2)


def test_reentrant_use_of_the_same_asizer_is_refused_not_corrupting():
    sizer = Asizer()

    class Reenter:
        def __sizeof__(self):
            sizer.asizeof([1, 2, 3])  # RuntimeError, swallowed: falls back
            return object.__sizeof__(self)

    r = Reenter()
    assert sizer.asizeof([r]) == asizeof([r])


def test_repr_that_raises_in_detail_names():
    class BadRepr:
        def __repr__(self):
            raise ValueError("no repr")
    tree = asized({"k": BadRepr()}, detail=1)
    assert tree.refs[1].name.startswith("[V] k: <")


def test_other_threads_mutating_during_sizing():
    shared = [["x%d" % i * 5 for i in range(50)] for _ in range(200)]
    stop = threading.Event()

    class Yielding:
        def __sizeof__(self):
            time.sleep(0)  # let the mutator run in the middle of sizing
            return object.__sizeof__(self)

    def mutate():
        i = 0
        while not stop.is_set():
            shared[i % len(shared)] = ["y%d" % i * 5, Yielding()] * 20
            if i % 7 == 0:
                shared[i % len(shared)].clear()
            i += 1

    for i in range(0, len(shared), 3):
        shared[i].append(Yielding())
    t = threading.Thread(target=mutate)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    t.start()
    try:
        for _ in range(20):
            size = asizeof(shared)
            assert 0 < size < 1 << 31
            asized(shared, detail=2)
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old_interval)
