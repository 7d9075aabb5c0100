"""Repeat-until-flat leak checks (in the spirit of greenlet's leakcheck).

Runs an action in rounds, after warm-up rounds, and fails when the
interpreter's allocated block count (and, on a debug build, its total
reference count) grew by a quarter block or reference per call or more
over the measured rounds.  A real leak of one block per call grows by
`per_round` every round; interpreter caches settling (type caches, 3.10's
per-code opcaches after a function's 1024th call, free lists) and the
collector's timing add a few dozen blocks of noise either way, which the
average over several rounds absorbs.
"""
import gc
import sys
import tracemalloc


def _blocks():
    """Live memory blocks: pymalloc's count, or tracemalloc's when Python
    uses the system allocator (PYTHONMALLOC=malloc, as the sanitizer pass
    runs), where sys.getallocatedblocks() is always 0."""
    if tracemalloc.is_tracing():
        return len(tracemalloc.take_snapshot().traces)
    return sys.getallocatedblocks()


# CPython 3.14's debug build counts one reference more for every instance
# of an extension's heap type that is created and destroyed: a 10-line
# extension type with tp_alloc/tp_free and Py_DECREF(type) in its dealloc
# shows +1 per instance in sys.gettotalrefcount() while its type's refcount
# and the block count stay flat (the stdlib's own heap types, built as core
# modules, do not).  There the total says nothing about us, and only the
# block count is checked; the 3.11 debug pass still checks both.
REFS_RELIABLE = sys.version_info < (3, 14)


def _counts():
    gc.collect()
    refs = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") and REFS_RELIABLE else 0
    return _blocks(), refs


def assert_no_leak(action, rounds=8, per_round=100, warmup=1000):
    trace = sys.getallocatedblocks() == 0 and not tracemalloc.is_tracing()
    if trace:
        tracemalloc.start()
    try:
        # warm caches, free lists, lazily built state; CPython's type method
        # cache (4096 entries, some holding name strings) needs a while
        for _ in range(max(3 * per_round, warmup)):
            action()
        history = [_counts()]
        for _ in range(rounds):
            for _ in range(per_round):
                action()
            history.append(_counts())
    finally:
        if trace:
            tracemalloc.stop()
    calls = rounds * per_round
    grown_blocks = history[-1][0] - history[0][0]
    grown_refs = history[-1][1] - history[0][1]
    assert grown_blocks < calls / 4 and grown_refs < calls / 4, (
        "leak: (blocks, refs) per round %r" % (history,))
