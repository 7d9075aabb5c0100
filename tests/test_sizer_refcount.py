"""Repeated sizing keeps the interpreter's block and reference counts flat."""
import collections

import pytest

from leakcheck import assert_no_leak
from classtrack.asizeof import Asizer, asized, asizeof, asizesof, flatsize


class Plain:
    def __init__(self, i):
        self.num = i * 1000 + 7
        self.label = "p%d" % i


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = [1, 2]
        self.b = "b%d" % 7


class RaisingSizeof:
    def __sizeof__(self):
        raise ValueError("nope")


class BadRepr:
    def __repr__(self):
        raise ValueError("nope")


DATA = {
    "plain": [Plain(i) for i in range(50)],
    "slots": [Slotted() for _ in range(10)],
    "deque": collections.deque(range(1000, 1100)),
    "nested": {"k%d" % i: [i * 1000, ("t", i * 1000 + 1)] for i in range(30)},
    "hostile": [RaisingSizeof(), BadRepr()],
}


@pytest.mark.parametrize("detail", [0, 1, 3])
def test_asized_no_leak(detail):
    assert_no_leak(lambda: asized(DATA, detail=detail))


def test_asizeof_no_leak():
    assert_no_leak(lambda: asizeof(DATA))
    assert_no_leak(lambda: asizesof(*DATA.values()))
    assert_no_leak(lambda: flatsize(DATA["plain"][0]))


def test_asizer_with_exclusions_no_leak():
    def action():
        sizer = Asizer()
        sizer.exclude_refs(DATA["plain"][0])
        sizer.exclude_objs(DATA["slots"][0])
        sizer.asizeof(DATA)
        sizer.asized(DATA, detail=2)
        sizer.reset()
    assert_no_leak(action)


def test_errors_do_not_leak():
    def action():
        try:
            asizeof([], colour=1)
        except TypeError:
            pass

        class Interrupt:
            def __sizeof__(self):
                raise KeyboardInterrupt

        try:
            asizeof([Interrupt(), DATA])
        except KeyboardInterrupt:
            pass
    assert_no_leak(action)
