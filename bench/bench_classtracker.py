"""ClassTracker side by side with Pympler's.

    pip install -r bench/requirements.txt     # Pympler, for comparison only
    python bench/bench_classtracker.py [--instances 200000]

Workload: class Node whose __init__ sets an int, a 'node-%d' str and an
empty list.  Each measurement runs in a fresh interpreter (subprocess) so
that one tracker's memory does not disturb the next measurement.

  creation   time to create N instances of a tracked class / untracked
             (best of 5, heap warmed up, gc disabled during the timing;
             a second row with the collector enabled, as programs run)
  snapshot   create_snapshot() at resolution 0, per tracked instance
  memory     the tracker's memory per tracked instance (tracemalloc: the
             growth from creating N tracked instances minus the growth from
             creating N instances of an identical untracked class), and per
             instance per snapshot; the tracker is started before tracemalloc
             (started the other way round, classtrack uses weak references)
Targets: creation <= 1.15x, snapshot <= 0.25 us, memory <= 128 B per
instance and <= 16 B per instance per snapshot.
"""
import argparse
import json
import os
import platform
import subprocess
import sys

CHILD = r'''
import gc, json, sys, time, tracemalloc
impl, what, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
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

out = {}
if what in ("creation", "creation_gc"):
    warm = make(); del warm
    gc.collect()
    if what == "creation":
        gc.disable()
    def best(setup_tracker):
        times = []
        for _ in range(5):
            t = setup_tracker()
            t0 = time.perf_counter(); objs = make(); t1 = time.perf_counter()
            times.append(t1 - t0)
            del objs
            if t is not None:
                t.clear()
        return min(times)
    def tracked():
        t = ClassTracker(); t.track_class(Node); return t
    out["untracked"] = best(lambda: None)
    out["tracked"] = best(tracked)
elif what == "snapshot":
    t = ClassTracker(); t.track_class(Node)
    objs = make()
    gc.collect()
    times = []
    for _ in range(3 if impl == "classtrack" else 1):
        t0 = time.perf_counter(); t.create_snapshot(); times.append(time.perf_counter() - t0)
    out["snapshot"] = min(times)
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


def run(impl, what, n):
    res = subprocess.run([sys.executable, "-c", CHILD, impl, what, str(n)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=200_000)
    parser.add_argument("--pympler-instances", type=int, default=None,
                        help="instances for Pympler's runs (default: same)")
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
    for impl, count in (("classtrack", n), ("pympler", pn)):
        c = run(impl, "creation", count)
        cg = run(impl, "creation_gc", count)
        s = run(impl, "snapshot", count)
        m = run(impl, "memory", count)
        rows[impl] = {
            "creation": c["tracked"] / c["untracked"],
            "creation_gc": cg["tracked"] / cg["untracked"],
            "snapshot_us": s["snapshot"] * 1e6 / count,
            "per_instance": m["per_instance"],
            "per_snapshot": m["per_snapshot"],
        }
    print("| measure                                  | target  | classtrack | pympler |")
    print("|------------------------------------------|---------|-----------:|--------:|")
    c, p = rows["classtrack"], rows["pympler"]
    print("| creation, tracked / untracked            | <=1.15x | %9.2fx | %6.1fx |"
          % (c["creation"], p["creation"]))
    print("| same, garbage collector enabled          |         | %9.2fx | %6.1fx |"
          % (c["creation_gc"], p["creation_gc"]))
    print("| create_snapshot(), us per instance       | <=0.25  | %10.3f | %7.2f |"
          % (c["snapshot_us"], p["snapshot_us"]))
    print("| tracker memory, bytes per instance       | <=128   | %10.1f | %7.1f |"
          % (c["per_instance"], p["per_instance"]))
    print("| memory per instance per snapshot, bytes  | <=16    | %10.1f | %7.1f |"
          % (c["per_snapshot"], p["per_snapshot"]))
    print()
    print("snapshot speed-up over Pympler: %.0fx" % (p["snapshot_us"] / c["snapshot_us"]))


if __name__ == "__main__":
    main()
