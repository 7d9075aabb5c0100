"""Sizes agree with tracemalloc, the interpreter's own record of what was
allocated, within 1% on every structure kind."""
import sys

import pytest

import structures
from classtrack import asizeof


@pytest.fixture(scope="module", autouse=True)
def warm():
    structures.warm_up()


@pytest.mark.parametrize("kind", sorted(structures.BUILDERS))
def test_matches_tracemalloc(kind):
    obj, traced = structures.traced_build(kind)
    ours = asizeof(obj)
    assert traced > 100_000, "the structure must be big enough to measure"
    assert abs(ours - traced) <= 0.01 * traced, (
        "%s: asizeof %d, tracemalloc %d (%+.2f%%)"
        % (kind, ours, traced, 100.0 * (ours - traced) / traced))


def test_at_least_twenty_kinds():
    assert len(structures.BUILDERS) >= 20


def test_list_counts_capacity_not_length():
    grown = []
    for i in range(1000):
        grown.append(i * 1000 + 7)
    exact = list(grown)
    assert len(grown) == len(exact)
    # same items, so the difference is the spare capacity of `grown`
    spare = (sys.getsizeof(grown) - sys.getsizeof(exact))
    assert spare > 0
    assert asizeof(grown) - asizeof(exact) == spare


def test_shared_data_counted_once():
    s = "x%d" % 12345 * 100
    twice = asizeof([s, s])
    copy = "x%d" % 12345 * 100
    assert copy is not s
    assert asizeof([s, copy]) - twice == asizeof(copy)


def test_numpy_owned_buffer_only():
    np = pytest.importorskip("numpy")
    a = np.zeros(100_000)
    view = a[::2]
    assert a.nbytes <= asizeof(a) <= a.nbytes + 1024
    # a view owns no data, but it keeps its base alive: its size counts it
    from classtrack.asizeof import flatsize
    assert flatsize(view) < 1024, "a view owns no data"
    assert a.nbytes <= asizeof(view) <= a.nbytes + 2048
    both = asizeof([a, view])
    assert a.nbytes < both < a.nbytes + 2048


def test_instance_attribute_storage_counted():
    """Wherever CPython keeps the attributes (dict, values array, inline
    values), their storage is part of the instance's size."""
    class P:
        def __init__(self, i):
            self.a = i * 1000 + 7
            self.b = i * 1000 + 8
    warm = [P(i) for i in range(100)]
    p = P(5)
    attrs = asizeof(p.a) + asizeof(p.b)
    # at least two pointer slots for the two values, beyond getsizeof's
    # view of the object, whatever the layout
    assert asizeof(p) >= sys.getsizeof(p) + attrs + 16
    del warm
