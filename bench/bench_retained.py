"""Retained sizes and why-alive over a big heap, beside gc.collect and guppy3.

    pip install -r bench/requirements.txt      # guppy3, for comparison only
    python bench/bench_retained.py [--objects 1000000] [--tracked 100000]

The heap: --tracked instances of a tracked class ``Node`` (each with a
children list, a str name and a small dict of tags: three GC objects and
a few leaves each), in a tree, plus filler (lists of small lists) until
gc.get_objects() holds --objects objects.  Every figure is the median of
--rounds, on the same heap, in the same process:

  gc.collect()                         one full collection (the yardstick)
  retained_sizes(all tracked)          one dominator tree, every Node's
                                       retained size; target <= 5x gc.collect
  create_snapshot(retained=True)       the tracker's path: sizes, retained
                                       and shared for every tracked Node
  retained_size(one object)            a single question
  why_alive(one object)                shortest root paths; target < 1 s
  guppy3 domisize                      hpy().iso(obj).domisize for one object,
                                       and for all tracked Nodes as one set
                                       (guppy has no per-object batch: its
                                       per-object cost times --tracked is
                                       what the same answer would take)
"""
import argparse
import gc
import platform
import statistics
import sys
import time


class Node:
    def __init__(self, i, parent):
        self.name = "node-%d" % i
        self.children = []
        self.tags = {"i": i}
        if parent is not None:
            parent.children.append(self)


def timed(fn, rounds):
    ts = []
    out = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--tracked", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-guppy", action="store_true")
    args = parser.parse_args()
    from classtrack import retained_size, retained_sizes, why_alive
    from classtrack.classtracker import ClassTracker

    tracker = ClassTracker()
    tracker.track_class(Node)
    root = Node(0, None)
    nodes = [root]
    for i in range(1, args.tracked):
        nodes.append(Node(i, nodes[(i - 1) // 8]))
    filler = []
    for _ in range(max(0, args.objects - len(gc.get_objects())) // 1001):
        filler.append([[j, str(j)] for j in range(1000)])
    gc.collect()
    nobj = len(gc.get_objects())
    probe = nodes[len(nodes) // 2]

    rows = []
    t_gc, _ = timed(gc.collect, args.rounds)
    rows.append(("gc.collect()", t_gc, ""))
    t_rs, sizes = timed(lambda: retained_sizes(nodes), args.rounds)
    rows.append(("retained_sizes(%d Nodes)" % len(nodes), t_rs, "<= 5x gc.collect"))
    t_snap, _ = timed(lambda: tracker.create_snapshot(retained=True), args.rounds)
    rows.append(("create_snapshot(retained=True)", t_snap, ""))
    t_one, one = timed(lambda: retained_size(probe), args.rounds)
    rows.append(("retained_size(one Node)", t_one, ""))
    t_why, paths = timed(lambda: why_alive(probe, limit=3), args.rounds)
    rows.append(("why_alive(one Node)", t_why, "< 1 s"))
    assert all(s > 0 for s in sizes), "every Node retains at least itself"
    assert paths, "the probe is reachable"

    guppy_rows = []
    if not args.no_guppy:
        try:
            import guppy
        except ImportError:
            sys.exit("bench_retained: guppy3 is needed for the comparison: "
                     "pip install -r bench/requirements.txt (or --no-guppy)")
        hp = guppy.hpy()
        t_g1, g1 = timed(lambda: hp.iso(probe).domisize, 1)
        guppy_rows.append(("guppy3 iso(one Node).domisize", t_g1, g1))
        t_gall, gall = timed(lambda: hp.iso(*nodes).domisize, 1)
        guppy_rows.append(("guppy3 iso(all Nodes).domisize (one set)", t_gall, gall))
        guppy_rows.append(("guppy3, one domisize per Node (extrapolated)", t_g1 * len(nodes), None))

    print("# retained sizes — Python %s on %s; heap of %d objects (gc.get_objects()), "
          "%d tracked Nodes, median of %d" % (platform.python_version(), platform.machine(),
                                              nobj, len(nodes), args.rounds))
    print()
    print("| measure                                        |   seconds | x gc.collect | target |")
    print("|------------------------------------------------|----------:|-------------:|--------|")
    for name, t, target in rows:
        print("| %-46s | %9.3f | %11.1fx | %s |" % (name, t, t / t_gc, target))
    for name, t, _ in guppy_rows:
        print("| %-46s | %9.3f | %11.1fx |  |" % (name, t, t / t_gc))
    print()
    print("retained_size(probe) = %d bytes (classtrack), path: %s" % (one, paths[0]))
    if guppy_rows:
        print("guppy3 domisize(probe) = %d bytes (guppy3 counts its own way: "
              "no dict keys, different roots)" % guppy_rows[0][2])
    print("retained_sizes(all Nodes) is %.1fx gc.collect (target <= 5x)" % (t_rs / t_gc))


if __name__ == "__main__":
    main()
