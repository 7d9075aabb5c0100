"""Regenerate the seed corpus: small valid dumps exercising every section
kind (run from the repository root: python tests/fuzz/make_corpus.py)."""
import io
import os
import sys

from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import Stats

HERE = os.path.dirname(os.path.abspath(__file__))


class Node:
    def __init__(self, i):
        self.value = i * 1000 + 7
        self.name = "node-%d" % i
        self.children = []


class Fancy(Node):
    def __repr__(self):
        return "Fancy(%d)" % self.value


def dump_of(setup):
    t = ClassTracker()
    setup(t)
    buf = io.BytesIO()
    Stats(tracker=t).dump_stats(buf, close=False)
    t.clear()
    return buf.getvalue()


def empty(t):
    t.create_snapshot()


def plain(t):
    t.track_class(Node)
    t.objs = [Node(i) for i in range(3)]
    t.create_snapshot("a")
    del t.objs[0]
    t.create_snapshot("b")


def detailed(t):
    t.track_class(Node, trace=True)
    t.track_class(Fancy, resolution_level=3)
    t.objs = [Node(1), Fancy(2), Fancy(3)]
    t.objs[1].children = [{"k": "v" * 20}, (1, 2)]
    t.create_snapshot("x")


def streamed(path):
    """A streamed dump (1.2): frames with new records, DEATHS, REPRS, and
    an unfinished tail."""
    from classtrack._dumpstream import DumpStreamer
    t = ClassTracker()
    s = DumpStreamer(t, path, named=True)
    t._snapshot_hooks.append(s.on_snapshot)
    t.track_class(Node, trace=True)
    t.track_class(Fancy, resolution_level=2)
    t.objs = [Node(1), Fancy(2), Fancy(3), Node(4)]
    t.create_snapshot("a")
    del t.objs[0]
    t.objs[1].value = 99            # its repr changes
    t.objs.append(Node(5))
    t.create_snapshot("b")
    s.finish()
    t.clear()


def main():
    os.makedirs(os.path.join(HERE, "corpus"), exist_ok=True)
    for name, setup in (("empty", empty), ("plain", plain), ("detailed", detailed)):
        with open(os.path.join(HERE, "corpus", name + ".ctdump"), "wb") as f:
            f.write(dump_of(setup))
    streamed(os.path.join(HERE, "corpus", "streamed.ctdump"))


if __name__ == "__main__":
    sys.exit(main())
