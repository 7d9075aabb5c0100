"""Repeat-until-flat leak checks (in the spirit of greenlet's leakcheck).

Runs an action in rounds and fails when the interpreter's allocated block
count (and, on a debug build, its total reference count) grows by more
than a quarter block per call in three consecutive rounds.
"""
import gc
import sys


def _counts():
    gc.collect()
    blocks = sys.getallocatedblocks()
    refs = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else 0
    return blocks, refs


def assert_no_leak(action, rounds=8, per_round=100):
    """A leak of one block or reference per call grows each round by
    per_round; interpreter caches settling (3.10's per-code opcaches are
    allocated after a function's 1024th call) add a few, hence the slack
    of a quarter block per call."""
    slack = per_round // 4
    for _ in range(3 * per_round):  # warm caches, free lists, lazily built state
        action()
    growth_streak = 0
    prev = _counts()
    history = [prev]
    for _ in range(rounds):
        for _ in range(per_round):
            action()
        cur = _counts()
        history.append(cur)
        grew = cur[0] > prev[0] + slack or cur[1] > prev[1] + slack
        growth_streak = growth_streak + 1 if grew else 0
        assert growth_streak < 3, "leak: (blocks, refs) per round %r" % (history,)
        prev = cur
