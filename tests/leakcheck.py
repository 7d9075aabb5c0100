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


def _counts():
    gc.collect()
    blocks = sys.getallocatedblocks()
    refs = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else 0
    return blocks, refs


def assert_no_leak(action, rounds=8, per_round=100):
    for _ in range(3 * per_round):  # warm caches, free lists, lazily built state
        action()
    history = [_counts()]
    for _ in range(rounds):
        for _ in range(per_round):
            action()
        history.append(_counts())
    calls = rounds * per_round
    grown_blocks = history[-1][0] - history[0][0]
    grown_refs = history[-1][1] - history[0][1]
    assert grown_blocks < calls / 4 and grown_refs < calls / 4, (
        "leak: (blocks, refs) per round %r" % (history,))
