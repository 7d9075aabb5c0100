"""Stats and dumps, side by side with Pympler.

    pip install -r bench/requirements.txt     # Pympler, for comparison only
    python bench/bench_stats.py [--instances 1000000] [--snapshots 10]

  dump size     bytes per instance per snapshot at resolution 0 (the
                growth of the dump from one more snapshot); target <= 24
  dump / load   time per instance (one snapshot's worth), classtrack vs
                Pympler's pickle; target >= 20x faster
  summary       print_summary() and annotate() over --instances x
                --snapshots (Pympler is timed on a smaller workload and
                scaled per instance-snapshot)
Each implementation runs in a fresh interpreter.
"""
import argparse
import json
import platform
import subprocess
import sys

CHILD = r'''
import gc, io, json, os, sys, tempfile, time
impl, n, nsnap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if impl == "pympler":
    from pympler.classtracker import ClassTracker
    from pympler.classtracker_stats import ConsoleStats, Stats
else:
    from classtrack.classtracker import ClassTracker
    from classtrack.classtracker_stats import ConsoleStats, Stats

class Node:
    def __init__(self, i):
        self.value = i
        self.name = "node-%d" % i
        self.children = []

t = ClassTracker()
t.track_class(Node)
objs = [Node(i) for i in range(n)]
out = {}
d = tempfile.mkdtemp()
t.create_snapshot("s0")
p1 = os.path.join(d, "one")
t0 = time.perf_counter(); Stats(tracker=t).dump_stats(p1); out["dump_one"] = time.perf_counter() - t0
for k in range(1, nsnap):
    t.create_snapshot("s%d" % k)
p2 = os.path.join(d, "all")
t0 = time.perf_counter(); Stats(tracker=t).dump_stats(p2); out["dump_all"] = time.perf_counter() - t0
out["size_one"] = os.path.getsize(p1)
out["size_all"] = os.path.getsize(p2)
t0 = time.perf_counter(); s = ConsoleStats(filename=p2, stream=io.StringIO()); out["load_all"] = time.perf_counter() - t0
t0 = time.perf_counter(); s.annotate(); out["annotate"] = time.perf_counter() - t0
for snap in s.snapshots:
    snap.classes = None
t0 = time.perf_counter(); s.print_summary(); out["summary"] = time.perf_counter() - t0
print(json.dumps(out))
'''


def run(impl, n, nsnap):
    res = subprocess.run([sys.executable, "-c", CHILD, impl, str(n), str(nsnap)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--snapshots", type=int, default=10)
    parser.add_argument("--pympler-instances", type=int, default=20_000)
    parser.add_argument("--pympler-snapshots", type=int, default=3)
    args = parser.parse_args()
    try:
        import pympler  # noqa: F401
    except ImportError:
        sys.exit("bench_stats: Pympler is needed for the comparison: "
                 "pip install -r bench/requirements.txt")
    n, k = args.instances, args.snapshots
    pn, pk = args.pympler_instances, args.pympler_snapshots
    c = run("classtrack", n, k)
    p = run("pympler", pn, pk)

    def per_inst_snap(r, n, k):
        return (r["size_all"] - r["size_one"]) / (n * (k - 1))

    print("# Stats and dump benchmark — Python %s on %s" % (platform.python_version(),
                                                         platform.machine()))
    print("classtrack: %d instances x %d snapshots; Pympler: %d x %d" % (n, k, pn, pk))
    print()
    print("| measure                                    | target   | classtrack |    pympler |")
    print("|--------------------------------------------|----------|-----------:|-----------:|")
    print("| dump bytes per instance per snapshot       | <= 24    | %10.1f | %10.1f |"
          % (per_inst_snap(c, n, k), per_inst_snap(p, pn, pk)))
    dc, dp = c["dump_all"] / (n * k), p["dump_all"] / (pn * pk)
    lc, lp = c["load_all"] / (n * k), p["load_all"] / (pn * pk)
    print("| dump, us per instance-snapshot             | 20x      | %10.3f | %10.3f |" % (dc * 1e6, dp * 1e6))
    print("| load, us per instance-snapshot             | 20x      | %10.3f | %10.3f |" % (lc * 1e6, lp * 1e6))
    print("| annotate(), s (classtrack: all; us/inst-snap) |       | %10.2f | %10.3f |"
          % (c["annotate"], p["annotate"] / (pn * pk) * 1e6))
    print("| print_summary(), s                         | few s    | %10.2f | %10.2f |"
          % (c["summary"], p["summary"]))
    print()
    print("dump %.0fx and load %.0fx faster than Pympler per instance-snapshot"
          % (dp / dc, lp / lc))
    print("annotate + summary over %d x %d: %.2f s + %.2f s" % (n, k, c["annotate"], c["summary"]))


if __name__ == "__main__":
    main()
