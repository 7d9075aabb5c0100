"""Off-line analysis at scale, side by side with Pympler.

    pip install -r bench/requirements.txt     # Pympler, for comparison only
    python bench/bench_stats.py               # 1M x 20 and 20k x 20 (+ Pympler), then 10M x 10
    python bench/bench_stats.py --big 0       # without the 10M x 10 run

A tree of small tracked Node objects (each with a list of children, eight
per node) is snapshotted N times, with half of the nodes dropped half-way.
Then, each step timed in a fresh interpreter where it matters:

  dump          Stats(tracker=t).dump_stats(path)
  load          ConsoleStats(filename=path), in a fresh interpreter
  summary       print_summary() of the loaded dump
  top 10        sort_stats('size').print_stats(limit=10)
  html          HtmlStats(filename=path).create_html(...)
  memory        what the loaded analysis adds to the process (RSS after
                load minus before), against the dump's size; and the peak
                while loading

Pympler cannot run at 1M (its pickle of 20M Asized objects would not fit
the time or memory of a bench): its figures are at --pympler-instances,
printed beside ours at the same size, and the per-instance ratio compares
dump + load time per instance-snapshot.  Each figure is the best of
--rounds runs (the machine's noise is one-sided).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# Builds and dumps; prints JSON.  argv: impl n nsnap path
MAKE = r'''
import gc, json, os, sys, time
impl, n, nsnap, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if impl == "pympler":
    from pympler.classtracker import ClassTracker
    from pympler.classtracker_stats import Stats
else:
    from classtrack.classtracker import ClassTracker
    from classtrack.classtracker_stats import Stats

class Node:
    __slots__ = ("value", "children", "__weakref__")
    def __init__(self, i):
        self.value = i
        self.children = []

out = {}
t = ClassTracker()
t.track_class(Node)
t0 = time.perf_counter()
nodes = [Node(0)]
for i in range(1, n):
    node = Node(i)
    nodes[(i - 1) // 8].children.append(node)
    nodes.append(node)
out["track"] = time.perf_counter() - t0
t0 = time.perf_counter()
for k in range(nsnap):
    if k == nsnap // 2:
        for node in nodes[: n // 2]:
            node.children = []
        del nodes[n // 2:]      # the second half dies
        gc.collect()
    t.create_snapshot("s%d" % k)
out["snapshots"] = time.perf_counter() - t0
gc.collect()
t0 = time.perf_counter()
Stats(tracker=t).dump_stats(path)
out["dump"] = time.perf_counter() - t0
out["dump_bytes"] = os.path.getsize(path)
print(json.dumps(out))
'''

# Loads and reports; prints JSON.  argv: impl path html
REPORT = r'''
import gc, io, json, os, sys, time
impl, path, html = sys.argv[1], sys.argv[2], sys.argv[3]
if impl == "pympler":
    from pympler.classtracker_stats import ConsoleStats, HtmlStats
else:
    from classtrack.classtracker_stats import ConsoleStats, HtmlStats

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

out = {}
gc.collect()
rss0 = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:   # resets the peak (VmHWM) to now
    f.write("5")
t0 = time.perf_counter()
s = ConsoleStats(filename=path, stream=io.StringIO())
out["load"] = time.perf_counter() - t0
out["load_rss"] = status("VmRSS") - rss0
out["load_peak"] = status("VmHWM") - rss0
t0 = time.perf_counter()
s.print_summary()
out["summary"] = time.perf_counter() - t0
t0 = time.perf_counter()
s.sort_stats("size").print_stats(limit=10)
out["top10"] = time.perf_counter() - t0
del s
gc.collect()
if html != "-":
    try:
        h = HtmlStats(filename=path)
        t0 = time.perf_counter()
        h.create_html(html)
        out["html"] = time.perf_counter() - t0
    except Exception as exc:    # Pympler's charts need matplotlib
        out["html_error"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(out))
'''


def child(code, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", code] + [str(a) for a in args],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError("child failed:\n" + res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def best(runs):
    """Per key, the smallest value over the runs (times and memory)."""
    out = dict(runs[0])
    for r in runs[1:]:
        for k, v in r.items():
            if isinstance(v, (int, float)) and isinstance(out.get(k), (int, float)):
                out[k] = min(out[k], v)
    return out


def measure(impl, n, nsnap, rounds, tmp, html=True):
    path = os.path.join(tmp, "%s-%d-%d.dump" % (impl, n, nsnap))
    made = best([child(MAKE, impl, n, nsnap, path) for _ in range(rounds)])
    page = os.path.join(tmp, "%s-%d.html" % (impl, n)) if html else "-"
    rep = best([child(REPORT, impl, path, page) for _ in range(rounds)])
    made.update(rep)
    os.unlink(path)
    return made


def fmt_s(v):
    return "%8.3f s" % v if isinstance(v, (int, float)) else "%10s" % "n/a"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--pympler-instances", type=int, default=20_000)
    parser.add_argument("--big", type=int, default=10_000_000,
                        help="instances of the end-to-end run (0: skip it)")
    parser.add_argument("--big-snapshots", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pympler", action="store_true")
    args = parser.parse_args()
    if not args.no_pympler:
        try:
            import pympler  # noqa: F401
        except ImportError:
            sys.exit("bench_stats: Pympler is needed for the comparison: "
                     "pip install -r bench/requirements.txt (or --no-pympler)")
    n, k, pn = args.instances, args.snapshots, args.pympler_instances
    tmp = tempfile.mkdtemp(prefix="bench-stats-")
    big = measure("classtrack", n, k, args.rounds, tmp)
    small = measure("classtrack", pn, k, args.rounds, tmp)
    pym = None if args.no_pympler else measure("pympler", pn, k, 1, tmp)

    print("# Stats at scale, Python %s on %s" % (platform.python_version(), platform.machine()))
    print()
    print("%d and %d instances x %d snapshots (a tree of Node objects, half of them dying "
          "half-way); best of %d runs, Pympler one run" % (n, pn, k, args.rounds))
    print()
    print("| step | target at %s | classtrack %s | classtrack %s | Pympler %s |"
          % (_k(n), _k(n), _k(pn), _k(pn)))
    print("|---|---|---:|---:|---:|")
    rows = [("dump", "dump", "<= 0.5 s"), ("load", "load", "<= 0.2 s"),
            ("print_summary", "summary", "<= 0.1 s"),
            ("sort_stats('size').print_stats(limit=10)", "top10", "<= 0.1 s"),
            ("HTML report", "html", "<= 1.5 s")]
    for label, key, target in rows:
        print("| %s | %s | %s | %s | %s |" % (label, target, fmt_s(big.get(key)),
                                             fmt_s(small.get(key)),
                                             fmt_s(pym.get(key)) if pym else "-"))
    print("| dump size | | %.1f MB (%.2f B/inst-snap) | %.2f MB | %s |" % (
        big["dump_bytes"] / 1e6, big["dump_bytes"] / (n * k), small["dump_bytes"] / 1e6,
        "%.2f MB (%.1f B/inst-snap)" % (pym["dump_bytes"] / 1e6, pym["dump_bytes"] / (pn * k))
        if pym else "-"))
    for key, label in (("load_rss", "loaded analysis, memory"),
                       ("load_peak", "peak while loading")):
        print("| %s | <= 1.5x dump | %.1f MB (%.2fx dump) | %.2f MB (%.2fx) | %s |" % (
            label, big[key] / 1e6, big[key] / big["dump_bytes"], small[key] / 1e6,
            small[key] / small["dump_bytes"],
            "%.1f MB (%.1fx)" % (pym[key] / 1e6, pym[key] / pym["dump_bytes"]) if pym else "-"))
    print("| create_snapshot, per instance | | %.3f us | %.3f us | %s |" % (
        big["snapshots"] / (n * k) * 1e6, small["snapshots"] / (pn * k) * 1e6,
        "%.2f us" % (pym["snapshots"] / (pn * k) * 1e6) if pym else "-"))
    if pym and "html_error" in pym:
        print()
        print("Pympler's HTML report failed: %s" % pym["html_error"])
    if pym:
        ours = (big["dump"] + big["load"]) / (n * k)
        ours_small = (small["dump"] + small["load"]) / (pn * k)
        theirs = (pym["dump"] + pym["load"]) / (pn * k)
        print()
        print("dump + load per instance-snapshot: classtrack %.3f us at %s (%.2f us at %s), "
              "Pympler %.2f us at %s: %.0fx faster (target >= 50x)"
              % (ours * 1e6, _k(n), ours_small * 1e6, _k(pn), theirs * 1e6, _k(pn),
                 theirs / ours))

    if args.big:
        bn, bk = args.big, args.big_snapshots
        e2e = measure("classtrack", bn, bk, 1, tmp)
        print()
        print("End to end, %s instances x %d snapshots (one run):" % (_k(bn), bk))
        print()
        print("| step | time |")
        print("|---|---:|")
        for label, key in (("track (create the instances)", "track"),
                           ("%d snapshots" % bk, "snapshots"), ("dump", "dump"),
                           ("load", "load"), ("print_summary", "summary"),
                           ("sort_stats('size').print_stats(limit=10)", "top10"),
                           ("HTML report", "html")):
            print("| %s | %s |" % (label, fmt_s(e2e.get(key))))
        print("| dump size | %.0f MB |" % (e2e["dump_bytes"] / 1e6))
        print("| loaded analysis, memory | %.0f MB (%.2fx dump); peak while loading %.0f MB |"
              % (e2e["load_rss"] / 1e6, e2e["load_rss"] / e2e["dump_bytes"],
                 e2e["load_peak"] / 1e6))


def _k(n):
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return "%dM" % (n // 1_000_000)
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


if __name__ == "__main__":
    main()
