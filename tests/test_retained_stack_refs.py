"""Retained sizes when the interpreter's stack borrows references.

From 3.14 the interpreter pushes borrowed references (LOAD_FAST_BORROW):
a suspended generator's stack may point at an object whose refcount is 1,
held by one of the generator's own locals.  The heap graph folds a non-GC
object of refcount 1 into its holder (graph.c); here the holder reaches it
twice, once through the local and once through the borrowed stack slot,
and it must still be counted once, and only there.
"""
import dis
import gc
import sys

from classtrack import retained_size, retained_sizes
from classtrack.asizeof import flatsize

N = 200_000


def _suspended_with_a_borrowed_local():
    s = "x" * N + str(id(object()))      # only the local holds it
    pair = (s, (yield))                  # s stays on the stack across the yield
    yield pair


def _own_frames(gen):
    """3.9/3.10: the generator's frame is an object of its own."""
    return [r for r in gc.get_referents(gen) if type(r).__name__ == "frame"
            and sys.version_info < (3, 11)]


def _big_str_referents(gen):
    holders = [gen] + _own_frames(gen)
    return [r for h in holders for r in gc.get_referents(h) if isinstance(r, str) and len(r) > N]


def _own_size(gen):
    return flatsize(gen) + sum(flatsize(f) for f in _own_frames(gen))


def test_the_stack_borrows_the_local_on_this_version():
    ops = {i.opname for i in dis.get_instructions(_suspended_with_a_borrowed_local)}
    gen = _suspended_with_a_borrowed_local()
    next(gen)
    refs = _big_str_referents(gen)
    if sys.version_info >= (3, 14):
        assert "LOAD_FAST_BORROW" in ops
        # two edges (the local and the stack slot), one reference
        assert len(refs) == 2 and refs[0] is refs[1]
        # less the list's two and the argument's
        assert sys.getrefcount(refs[0]) - 3 == 1
    gen.close()


def _make():
    gen = _suspended_with_a_borrowed_local()
    next(gen)
    return gen


def test_a_leaf_reached_twice_through_one_holder_is_counted_once():
    holder = [_make()]
    s_size = flatsize(_big_str_referents(holder[0])[0])
    assert s_size > N
    expected = _own_size(holder[0]) + s_size
    assert retained_size(holder[0]) == expected
    # the list is the generator's only holder: it retains it, and the
    # string once
    assert retained_size(holder) == flatsize(holder) + expected
    holder[0].close()


def test_many_suspended_generators_each_retain_their_own_local():
    gens = [_make() for _ in range(50)]
    each = retained_sizes(gens)
    strs = [flatsize(_big_str_referents(g)[0]) for g in gens]
    assert each == [_own_size(g) + s for g, s in zip(gens, strs)]
    # the list retains them all, each string once
    assert retained_size(gens) == flatsize(gens) + sum(each)
    for g in gens:
        g.close()

