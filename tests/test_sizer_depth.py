"""Any depth: iterative traversal, no recursion limit."""
import os
import sys

from classtrack.asizeof import asized, asizeof

# CI's sanitizer pass lowers this to keep its run time bounded.
DEEP_N = int(os.environ.get("CLASSTRACK_DEEP_N", "10000000"))


class Link:
    __slots__ = ("next",)

    def __init__(self, nxt):
        self.next = nxt


def test_long_linked_chain_sizes_exactly():
    head = None
    for _ in range(DEEP_N):
        head = Link(head)
    one = asizeof(Link(None))
    assert asizeof(head) == DEEP_N * one
    # dismantle iteratively: a 10-million-deep chain must not be freed recursively
    while head is not None:
        head = head.next


def test_deep_nested_lists():
    n = 200_000
    nested = []
    for _ in range(n):
        nested = [nested]
    assert asizeof(nested) == (n + 1) * sys.getsizeof([0]) - 8 * 1
    tree = asized(nested, detail=5)
    assert tree.size == asizeof(nested)
    while nested:
        nested = nested[0]
