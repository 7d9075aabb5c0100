"""Regenerate tests/data/dump-1.0.ctdump, the dump format 1.0 fixture.

    PYTHONPATH=src python tests/data/make_dump_1_0.py

Not run by the tests: tests/test_dump_compat.py loads the committed file,
so that every later release proves it still reads what release 1.0 wrote.
Run this only with a classtrack whose writer writes format 1.0 (it refuses
otherwise): a later format version gets a fixture file of its own, and this
one stays as it is.

How the file is made: a real ClassTracker tracks three classes and takes
three snapshots, and Stats exports its data; the structure (records,
names, classes, which object is alive at which snapshot, which records
share a trace, the custom reprs, the tree's node names) is the tracker's.
What depends on the machine, the interpreter and the clock is then
replaced by the values below, so that the test can state them and the
file comes out byte for byte the same wherever it is made (checked on
CPython 3.9 to 3.13):

  records      record i has id ID_BASE + 0x40 * i and is born at 1.0 + 0.5 * i,
               except record 6 (created after the first snapshot), born at
               12.0; deaths: record 1 at 15.0, records 4 and 5 at 25.0
  snapshots    k = 0, 1, 2 at 10.0, 20.0, 30.0, described 'start', 'middle',
               'end'; entry of record i: size 1000 * (k + 1) + 10 * i, flat
               40 + i, except the tree's record (its root's sizes);
               tracked_total = the sum of the entries' sizes; asizeof_total
               = 50000 * (k + 1); overhead = 2000 + k
  monitor      snapshot 1 only: interval 0.5, effective 0.75, stretched
  process      snapshots 0 and 1: field j (vsz, rss, ...) = (k + 1) * 1000000
               + 4096 * j; snapshot 2 has no process numbers
  traces       trace t is (('app/main.py', 3, '<module>', 'main()'),
               ('app/build.py', 10 * (t + 1), 'build', None))
  tree         Fancy's record at resolution 2: the sizer's node names; a node
               without referents has size = flat = 8 * len(name), any other
               flat = 64 * (k + 1) and size = flat + its referents' sizes
"""
import gc
import io
import os
import sys

from classtrack import _core
from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import Stats

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "dump-1.0.ctdump")
ID_BASE = 0x7F0000001000
PROCESS_FIELDS = 11


class Node:
    __module__ = "fixture"

    def __init__(self, i):
        self.value = i
        self.name = "node-%d" % i
        self.children = []


class Fancy(Node):
    __module__ = "fixture"

    def __repr__(self):
        return "Fancy(%d)" % self.value


class Leaf:
    __module__ = "fixture"
    __slots__ = ("x", "__weakref__")

    def __init__(self, x):
        self.x = x

    def __repr__(self):
        return "Leaf(%d)" % self.x


def build():
    """The tracker's own data: a tuple in the layout of dumpfmt.h."""
    t = ClassTracker()
    t.track_class(Node, trace=True)
    t.track_class(Fancy, resolution_level=2)
    t.track_class(Leaf)
    objs = [Node(0), Node(1), Fancy(2)]
    objs[2].children = [{"k": "v"}, (1, 2)]
    objs += [Leaf(3), Leaf(4), Leaf(5)]
    t.create_snapshot("start")
    del objs[1]
    gc.collect()
    objs.append(Node(6))
    t.create_snapshot("middle")
    del objs[3:5]
    gc.collect()
    t.create_snapshot("end")
    data = Stats(tracker=t)._data.as_tuple()
    t.clear()
    return data


def normal_tree(node, k):
    name, _, _, refs = node
    refs = tuple(normal_tree(r, k) for r in refs)
    if not refs:
        return (name, 8 * len(name), 8 * len(name), ())
    flat = 64 * (k + 1)
    return (name, flat + sum(r[1] for r in refs), flat, refs)


def as_columns(data):
    """Snapshot entries as the idx, size and flat columns normalize
    takes (this release's Stats holds them as an Entries)."""
    rows = []
    for row in data[10]:
        idx, size, flat = row[9].columns()
        rows.append(tuple(row[:9]) + (idx, size, flat, row[12]))
    return data[:10] + (rows,)


def normalize(data):
    (names, classes, rec_id, rec_name, rec_class, rec_birth, rec_death, rec_trace,
     reprs, traces, snaps) = data
    n = len(memoryview(rec_id).cast("Q"))
    assert n == 7, "the tracker made %d records, not the 7 this script describes" % n
    deaths = memoryview(rec_death).cast("d")
    assert [i for i in range(n) if deaths[i]] == [1, 4, 5], list(deaths)
    ids = memoryview(bytearray(rec_id)).cast("Q")
    births = memoryview(bytearray(rec_birth)).cast("d")
    deaths = memoryview(bytearray(rec_death)).cast("d")
    for i in range(n):
        ids[i] = ID_BASE + 0x40 * i
        births[i] = 12.0 if i == 6 else 1.0 + 0.5 * i
        deaths[i] = {1: 15.0, 4: 25.0, 5: 25.0}.get(i, 0.0)
    traces = [(("app/main.py", 3, "<module>", "main()"),
               ("app/build.py", 10 * (t + 1), "build", None)) for t in range(len(traces))]
    rows = []
    assert len(snaps) == 3
    for k, row in enumerate(snaps):
        idx = memoryview(row[9]).cast("I")
        trees = {i: normal_tree(tree, k) for i, tree in row[12].items()}
        assert list(trees) == [2], "Fancy's record has the only tree"
        size = memoryview(bytearray(row[10])).cast("Q")
        flat = memoryview(bytearray(row[11])).cast("Q")
        for pos, i in enumerate(idx):
            tree = trees.get(i)
            size[pos] = tree[1] if tree else 1000 * (k + 1) + 10 * i
            flat[pos] = tree[2] if tree else 40 + i
        process = None
        if k < 2:
            process = tuple((k + 1) * 1000000 + 4096 * j for j in range(PROCESS_FIELDS))
        rows.append((10.0 * (k + 1), row[1], sum(size), 50000 * (k + 1), 2000 + k,
                     0.5 if k == 1 else 0.0, 0.75 if k == 1 else 0.0, k == 1, process,
                     row[9], size.tobytes(), flat.tobytes(), trees))
    return (names, classes, ids.tobytes(), rec_name, rec_class, births.tobytes(),
            deaths.tobytes(), rec_trace, reprs, traces, rows)


def write_fixture(data, version, out, script):
    """Write `data` (dump_write's columns) to the file `out` as the format
    `version` fixture; exit with a message from `script` instead when this
    classtrack's writer writes another format."""
    buf = io.BytesIO()
    _core.dump_write(buf, data)
    raw = buf.getvalue()
    written = (raw[8] | raw[9] << 8, raw[10] | raw[11] << 8)
    if written != version:
        sys.exit("%s: this classtrack writes format %d.%d; the %d.%d fixture "
                 "can only be made by a %d.%d writer (a later format needs a fixture and "
                 "a script of its own)" % ((script,) + written + version + version))
    with open(out, "wb") as f:
        f.write(raw)
    print("wrote %s (%d bytes)" % (out, len(raw)))


def main():
    write_fixture(normalize(as_columns(build())), (1, 0), OUT, "make_dump_1_0")


if __name__ == "__main__":
    main()
