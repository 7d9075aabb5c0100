"""ClassTracker side by side with Pympler's.

    pip install -r bench/requirements.txt     # Pympler, for comparison only
    python bench/bench_classtracker.py [--instances 200000] [--snapshot-only]
                                       [--classes-only]

Workload: class Node whose __init__ sets an int, a 'node-%d' str and an
empty list.  Each measurement runs in a fresh interpreter (subprocess) so
that one tracker's memory does not disturb the next measurement.

  creation   time to create N instances of a tracked class / untracked:
             the median ratio over 15 rounds, tracked and untracked runs
             alternating (heap warmed up, gc disabled during the timing;
             a second row with the collector enabled, as programs run,
             a third on a warm heap whose arenas are reused, as in a
             long-running program; two more with 100 and 5,000 classes
             tracked beside Node), and the best time per instance of each
  snapshot   create_snapshot() at resolution 0, per tracked instance, of
             two populations: flat (every Node's children list empty) and
             a tree (each Node after the first a child of an earlier one
             drawn at random, so the children lists refer to tracked nodes
             spread over the heap, as links made over a program's life do;
             every one is an excluded referent of the snapshot's sizer)
  memory     the tracker's memory per tracked instance (tracemalloc: the
             growth from creating N tracked instances minus the growth from
             creating N instances of an identical untracked class), and per
             instance per snapshot; the tracker is started before tracemalloc
             (started the other way round, classtrack uses weak references)
  classes    2,000 classes defined one after another (a class statement
             each, 50 short-lived instances each, a snapshot every 200
             classes), tracked / untracked: under track_class of their
             common base, and under a package watch (track_package; Pympler
             has none: there, track_class of each class once defined, as a
             user would).  The per-class cost must not grow with the
             classes tracked already (it did: every new class re-walked
             every tracked class)
Targets: creation <= 1.15x, snapshot <= 0.25 us (flat and tree), memory <= 128 B per
instance and <= 16 B per instance per snapshot.
"""
import argparse
import json
import os
import platform
import subprocess
import sys

CHILD = r'''
import gc, json, random, sys, time, tracemalloc
impl, what, n, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
nclasses = int(sys.argv[5]) if len(sys.argv) > 5 else 1
if impl == "pympler":
    from pympler.classtracker import ClassTracker
else:
    from classtrack.classtracker import ClassTracker

class Node:
    def __init__(self, i):
        self.value = i
        self.name = "node-%d" % i
        self.children = []

def make():
    return [Node(i) for i in range(n)]

# other classes tracked beside Node (the "1, 100, 5,000 classes" rows):
# finding Node's hook must not cost more with more of them
others = [type("Other%d" % i, (), {}) for i in range(nclasses - 1)]

out = {}
if what in ("creation", "creation_gc", "creation_warm", "creation_many"):
    # Tracked and untracked runs alternate (their order swapping each
    # round), and the figure is the median of the per-round ratios: page
    # faults make single runs on a VM vary by +-20%, drifts cancel.
    warm = make(); del warm
    gc.collect()
    if what != "creation_gc":
        gc.disable()
    if what == "creation_warm":
        # a long-running program's heap: arenas stay (one object in 512
        # of earlier rounds pins them), so rounds reuse memory instead of
        # paying fresh page faults, the largest source of noise here
        pins = []
        for _ in range(3):
            warm = make(); pins.extend(warm[::512]); del warm
    def timed(track):
        t = None
        if track:
            t = ClassTracker()
            for c in others:
                t.track_class(c)
            t.track_class(Node)
        t0 = time.perf_counter(); objs = make(); t1 = time.perf_counter()
        del objs
        if t is not None:
            t.clear()
        return t1 - t0
    ratios, tracked, untracked = [], [], []
    for r in range(rounds):
        if r % 2:
            a = timed(False); b = timed(True)
        else:
            b = timed(True); a = timed(False)
        untracked.append(a); tracked.append(b); ratios.append(b / a)
    ratios.sort()
    out["ratio"] = ratios[len(ratios) // 2]
    out["untracked"] = min(untracked)
    out["tracked"] = min(tracked)
elif what in ("snapshot", "snapshot_tree"):
    t = ClassTracker(); t.track_class(Node)
    objs = make()
    if what == "snapshot_tree":
        rng = random.Random(14)
        for i in range(1, n):
            objs[rng.randrange(i)].children.append(objs[i])
    gc.collect()
    times = []
    for _ in range(5 if impl == "classtrack" else 1):
        t0 = time.perf_counter(); t.create_snapshot(); times.append(time.perf_counter() - t0)
    out["snapshot"] = min(times)
elif what in ("classes_base", "classes_watch"):
    nclass, per_class, every = 2000, 50, 200
    src = ("class C%d(Base):\n"
           "    pass\n")
    def timed(track):
        t = None
        ns = {"__name__": "ctbenchpkg_%d.mod" % r}
        class Base:     # its __init__ inherited: Pympler's wrapper sees subclasses
            def __init__(self, i):
                self.value = i
        ns["Base"] = Base
        if track:
            t = ClassTracker()
            if what == "classes_base":
                t.track_class(Base)
            elif impl == "classtrack":
                t.track_package("ctbenchpkg_%d" % r)
        t0 = time.perf_counter()
        for k in range(nclass):
            exec(src % k, ns)
            cls = ns["C%d" % k]
            if track and what == "classes_watch" and impl == "pympler":
                t.track_class(cls)
            for i in range(per_class):
                cls(i)
            if t is not None and (k + 1) % every == 0:
                t.create_snapshot()
        t1 = time.perf_counter()
        if t is not None:
            if impl == "pympler":
                t.detach_all()
            else:
                t.clear()
        return t1 - t0
    ratios = []
    for r in range(rounds):
        a = timed(False); b = timed(True)
        ratios.append(b / a)
    ratios.sort()
    out["ratio"] = ratios[len(ratios) // 2]
elif what == "memory":
    class Plain:        # Node's twin, never tracked: the baseline
        def __init__(self, i):
            self.value = i
            self.name = "node-%d" % i
            self.children = []
    # The tracker starts before tracemalloc, as a program would start it
    # before looking: classtrack does not watch the allocator while
    # tracemalloc traces (tracemalloc.stop() would unhook the watch) and
    # falls back to weak references then (144 bytes per instance on 3.11).
    t = ClassTracker(); t.track_class(Node)
    warm = make(); del warm
    warm = [Plain(i) for i in range(n)]; del warm
    t.clear(); t.track_class(Node)
    gc.collect()
    tracemalloc.start()
    m0 = tracemalloc.get_traced_memory()[0]
    plain = [Plain(i) for i in range(n)]
    m1 = tracemalloc.get_traced_memory()[0]
    tracked = make()
    m2 = tracemalloc.get_traced_memory()[0]
    t.create_snapshot()
    m3 = tracemalloc.get_traced_memory()[0]
    t.create_snapshot()
    m4 = tracemalloc.get_traced_memory()[0]
    out["per_instance"] = ((m2 - m1) - (m1 - m0)) / n
    out["per_snapshot"] = (m4 - m3) / n
print(json.dumps(out))
'''


def run(impl, what, n, rounds=15, nclasses=1):
    res = subprocess.run([sys.executable, "-c", CHILD, impl, what, str(n), str(rounds),
                          str(nclasses)], capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=200_000)
    parser.add_argument("--pympler-instances", type=int, default=None,
                        help="instances for Pympler's runs (default: same)")
    parser.add_argument("--snapshot-only", action="store_true",
                        help="measure create_snapshot() alone (the two snapshot rows)")
    parser.add_argument("--classes-only", action="store_true",
                        help="measure the classes-defined-over-time rows alone")
    args = parser.parse_args()
    n = args.instances
    pn = args.pympler_instances or n
    try:
        import pympler  # noqa: F401
    except ImportError:
        sys.exit("bench_classtracker: Pympler is needed for the comparison: "
                 "pip install -r bench/requirements.txt")
    print("# ClassTracker benchmark — Python %s on %s, %d instances"
          % (platform.python_version(), platform.machine(), n))
    print()
    rows = {}
    if args.classes_only:
        print("| measure                                    | classtrack | pympler |")
        print("|--------------------------------------------|-----------:|--------:|")
        for what, label in (("classes_base", "2,000 classes over time, track_class(base)"),
                            ("classes_watch", "same, package watch (Pympler: each class) ")):
            c, p = (run(impl, what, n, rounds=3)["ratio"] for impl in ("classtrack", "pympler"))
            print("| %s | %9.2fx | %6.1fx |" % (label, c, p))
        return
    for impl, count in (("classtrack", n), ("pympler", pn)):
        s = run(impl, "snapshot", count)
        st = run(impl, "snapshot_tree", count)
        rows[impl] = {
            "snapshot_us": s["snapshot"] * 1e6 / count,
            "snapshot_tree_us": st["snapshot"] * 1e6 / count,
        }
        if args.snapshot_only:
            continue
        c = run(impl, "creation", count)
        cg = run(impl, "creation_gc", count)
        cw = run(impl, "creation_warm", count)
        many = {k: run(impl, "creation_many", count, nclasses=k)["ratio"] for k in (100, 5000)}
        m = run(impl, "memory", count)
        cb = run(impl, "classes_base", count, rounds=3)
        cwt = run(impl, "classes_watch", count, rounds=3)
        rows[impl].update({
            "creation": c["ratio"],
            "creation_gc": cg["ratio"],
            "creation_warm": cw["ratio"],
            "creation_many": many,
            "creation_ns": (c["untracked"] * 1e9 / count, c["tracked"] * 1e9 / count),
            "per_instance": m["per_instance"],
            "per_snapshot": m["per_snapshot"],
            "classes_base": cb["ratio"],
            "classes_watch": cwt["ratio"],
        })
    print("| measure                                  | target  | classtrack | pympler |")
    print("|------------------------------------------|---------|-----------:|--------:|")
    c, p = rows["classtrack"], rows["pympler"]
    if not args.snapshot_only:
        print("| creation, tracked / untracked            | <=1.15x | %9.2fx | %6.1fx |"
              % (c["creation"], p["creation"]))
        print("| same, garbage collector enabled          |         | %9.2fx | %6.1fx |"
              % (c["creation_gc"], p["creation_gc"]))
        print("| same, gc disabled, warm heap             |         | %9.2fx | %6.1fx |"
              % (c["creation_warm"], p["creation_warm"]))
        for k in (100, 5000):
            print("| same, gc disabled, %5d classes tracked |         | %9.2fx | %6.1fx |"
                  % (k, c["creation_many"][k], p["creation_many"][k]))
        print("| creation, ns per instance (untr. / tr.)  |         | %4.0f / %4.0f | %3.0f / %5.0f |"
              % (c["creation_ns"] + p["creation_ns"]))
        print("| 2,000 classes over time, track_class(base) |         | %9.2fx | %6.1fx |"
              % (c["classes_base"], p["classes_base"]))
        print("| same, package watch (Pympler: each class)  |         | %9.2fx | %6.1fx |"
              % (c["classes_watch"], p["classes_watch"]))
    print("| create_snapshot(), us per instance, flat | <=0.25  | %10.3f | %7.2f |"
          % (c["snapshot_us"], p["snapshot_us"]))
    print("| same, tree of tracked nodes              | <=0.25  | %10.3f | %7.2f |"
          % (c["snapshot_tree_us"], p["snapshot_tree_us"]))
    if not args.snapshot_only:
        print("| tracker memory, bytes per instance       | <=128   | %10.1f | %7.1f |"
              % (c["per_instance"], p["per_instance"]))
        print("| memory per instance per snapshot, bytes  | <=16    | %10.1f | %7.1f |"
              % (c["per_snapshot"], p["per_snapshot"]))
    print()
    print("snapshot speed-up over Pympler: %.0fx flat, %.0fx tree"
          % (p["snapshot_us"] / c["snapshot_us"], p["snapshot_tree_us"] / c["snapshot_tree_us"]))


if __name__ == "__main__":
    main()
