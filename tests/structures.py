"""Structure kinds used to check sizes against tracemalloc.

Each builder makes about N objects from fresh runtime values (no constants
that the compiler or the interpreter would share), so that everything the
sizer counts was really allocated while tracemalloc watched.  Shared by the
accuracy tests and bench/bench_accuracy.py.
"""
import array
import collections
import dataclasses
import gc
import tracemalloc

N = 10000


class Plain:
    def __init__(self, i):
        self.num = i * 1000 + 7
        self.label = "p%d" % i


class WithDict(Plain):
    pass


class Slotted:
    __slots__ = ("num", "label", "__weakref__")

    def __init__(self, i):
        self.num = i * 1000 + 7
        self.label = "s%d" % i


class Wide:
    def __init__(self, i):
        for k in range(30):
            setattr(self, "attr%d" % k, i * 31 + k + 1000)


class Link:
    def __init__(self, nxt, i):
        self.next = nxt
        self.value = i * 1000 + 7


@dataclasses.dataclass
class TreeNode:
    value: int
    name: str
    children: list


def _tree(n):
    root = TreeNode(1000, "root", [])
    nodes = [root]
    for i in range(1, n):
        node = TreeNode(i * 1000 + 7, "n%d" % i, [])
        nodes[(i - 1) // 4].children.append(node)
        nodes.append(node)
    return root


def _chain(n):
    head = None
    for i in range(n):
        head = Link(head, i)
    return head


def _with_dicts(n):
    out = []
    for i in range(n):
        o = WithDict(i)
        vars(o)  # materialise the instance dict (3.11+)
        out.append(o)
    return out


BUILDERS = {
    "ints": lambda n: [i * 1000 + 7 for i in range(n)],
    "big_ints": lambda n: [(i + 3) << 200 for i in range(n)],
    "floats": lambda n: [i * 0.5 + 0.25 for i in range(n)],
    "str_ascii": lambda n: ["s%d" % i * 3 for i in range(n)],
    "str_latin1": lambda n: ["\xe9%d" % i * 2 for i in range(n)],
    "str_ucs2": lambda n: ["\u20ac%d" % i * 2 for i in range(n)],
    "str_ucs4": lambda n: ["\U0001F600%d" % i for i in range(n)],
    "bytes": lambda n: [b"%d" % i * 3 for i in range(n)],
    "bytearrays": lambda n: [bytearray(b"x" * (i % 50 + 2)) for i in range(n)],
    "tuples": lambda n: [(i * 1000 + 7, -i * 1000 - 7) for i in range(n)],
    "lists_of_lists": lambda n: [[i * 1000 + 7, [i + 1000]] for i in range(n)],
    "dicts": lambda n: [{"a": i * 1000 + 7, "b": "v%d" % i} for i in range(n)],
    "big_dict": lambda n: {"k%d" % i: i * 1000 + 7 for i in range(n)},
    "sets": lambda n: [{i * 3 + 1000, i * 3 + 1001, i * 3 + 1002} for i in range(n)],
    "frozensets": lambda n: [frozenset((i * 3 + 1000, i * 3 + 1001)) for i in range(n)],
    "deques": lambda n: [collections.deque([i * 1000 + k for k in range(1000, 1020)])
                         for i in range(n // 10)],
    "arrays": lambda n: [array.array("d", [float(i)] * (i % 40 + 1)) for i in range(n)],
    "instances": lambda n: [Plain(i) for i in range(n)],
    "instances_with_dict": _with_dicts,
    "slots": lambda n: [Slotted(i) for i in range(n)],
    "wide_instances": lambda n: [Wide(i) for i in range(n // 10)],
    "dataclass_tree": _tree,
    "defaultdicts": lambda n: [collections.defaultdict(list, {"x%d" % i: [i * 1000 + 7]})
                               for i in range(n)],
    "ordereddicts": lambda n: [collections.OrderedDict([("o%d" % i, i * 1000 + 7)])
                               for i in range(n // 2)],
    "linked_chain": _chain,
}


def warm_up():
    """Create instances of each class first: the first instances of a class
    are bigger while CPython sizes the class's shared keys."""
    keep = []
    for build in BUILDERS.values():
        keep.append(build(200))
    del keep
    gc.collect()


def traced_build(name, n=N):
    """Build the structure under tracemalloc; returns (obj, traced bytes)."""
    build = BUILDERS[name]
    gc.collect()
    gc.disable()
    try:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            obj = build(n)
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    finally:
        gc.enable()
    return obj, after - before
