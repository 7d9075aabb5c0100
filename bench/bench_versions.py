"""The engine's main figures on several CPython versions side by side.

    python bench/bench_versions.py [--python PY ...] [--nodes 100000] [--rounds 9]

Without --python: pyenv's 3.11, and Debian's 3.14 and 3.15 put on this
machine by ../shared/tools/debian-python.  For each interpreter a venv is
made (cached under $TMPDIR/classtrack-bench-venvs, keyed by the source
tree's state) with this checkout and Pympler (for comparison only), and
every figure is measured in a fresh child process of that venv:

  sizer        asizeof of a tree of N Node instances (int, str, list of
               children) against one gc.collect() of the same heap (the
               median of per-round ratios, the two alternating), and
               Pympler's asizeof of the same tree
  creation     creating N instances of a tracked class against an
               untracked one (median ratio of alternating rounds, gc off,
               warm heap); target <= 1.15x, goal 1.05x
  snapshot     create_snapshot() per tracked instance (the tree), and
               Pympler's per instance on N/20
  retained     retained_sizes() of every Node against gc.collect(), as
               the sizer (bench_retained.py has the 1,000,000-object heap
               and the <= 5x target)

Figures are printed as one table, a column per version.
"""
import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r'''
import gc, json, statistics, sys, time
n, rounds = int(sys.argv[1]), int(sys.argv[2])
from classtrack import asizeof as ct
from classtrack.alive import retained_sizes
from classtrack.classtracker import ClassTracker
import pympler.asizeof as pa
from pympler.classtracker import ClassTracker as PClassTracker

class Node:
    def __init__(self, i, parent=None):
        self.value = i
        self.name = "node-%d" % i
        self.children = []
        if parent is not None:
            parent.children.append(self)

# Node's untracked twin: the same __init__, another class
Plain = type("Plain", (), {"__init__": Node.__init__})

def tree(cls, k):
    nodes = [cls(0)]
    for i in range(1, k):
        nodes.append(cls(i, nodes[(i - 1) // 8]))
    return nodes

def best(fn, r):
    ts = []
    for _ in range(r):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return min(ts)

def against_gc(fn, r):
    """fn's time over one gc.collect(), the two alternating: the median of
    the per-round ratios (this VM's speed drifts by 2x between runs, a
    ratio taken within a round does not), and the best time of each."""
    ratios, g, f = [], [], []
    for i in range(r):
        a = best(gc.collect, 1)
        b = best(fn, 1)
        g.append(a); f.append(b); ratios.append(b / a)
    return statistics.median(ratios), min(g), min(f)

out = {"version": "%d.%d.%d" % sys.version_info[:3]}
nodes = tree(Plain, n)
gc.collect()
out["sizer_x"], out["gc"], out["sizer"] = against_gc(lambda: ct.asizeof(nodes[0]), 9)
out["pympler_sizer"] = best(lambda: pa.asizeof(nodes[0]), 1)
out["retained_x"], _, out["retained"] = against_gc(lambda: retained_sizes(nodes), 5)
del nodes
gc.collect()

# creation: alternating tracked / untracked rounds, median ratio
warm = tree(Node, n); del warm
gc.collect(); gc.disable()
def timed(track):
    t = None
    if track:
        t = ClassTracker(); t.track_class(Node)
    t0 = time.perf_counter(); objs = [Node(i) for i in range(n)]; t1 = time.perf_counter()
    del objs
    if t is not None:
        t.clear()
    return t1 - t0
ratios = []
for r in range(rounds):
    if r % 2:
        a = timed(False); b = timed(True)
    else:
        b = timed(True); a = timed(False)
    ratios.append(b / a)
gc.enable()
out["creation"] = statistics.median(ratios)

t = ClassTracker(); t.track_class(Node)
nodes = tree(Node, n)
gc.collect()
out["snapshot"] = best(t.create_snapshot, 5) / n
t.clear(); del nodes

m = max(n // 20, 1)
pt = PClassTracker(); pt.track_class(Node)
nodes = tree(Node, m)
out["pympler_snapshot"] = best(pt.create_snapshot, 1) / m
pt.detach_all()
print(json.dumps(out))
'''


def default_pythons():
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.11.*/bin/python")))
    pys = found[:1]
    tool = os.path.join(ROOT, "..", "shared", "tools", "debian-python")
    for ver in ("3.14", "3.15"):
        res = subprocess.run([tool, ver], capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit("bench_versions: debian-python %s failed:\n%s" % (ver, res.stderr[-2000:]))
        pys.append(res.stdout.strip().splitlines()[-1])
    return pys


def tree_state():
    """A key for the source tree: the installed venv is reused while the
    tracked files have not changed."""
    h = hashlib.sha256()
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for f in sorted(files):
        path = os.path.join(ROOT, f)
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                h.update(f.encode() + fh.read())
    return h.hexdigest()[:12]


def venv_for(py, state):
    ver = subprocess.run([py, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    base = os.path.join(tempfile.gettempdir(), "classtrack-bench-venvs")
    venv = os.path.join(base, "%s-%s" % (ver, state))
    vpy = os.path.join(venv, "bin", "python")
    if not os.path.exists(os.path.join(venv, "ready")):
        os.makedirs(base, exist_ok=True)
        subprocess.run([py, "-m", "venv", "--clear", venv], check=True)
        subprocess.run([vpy, "-m", "pip", "install", "-q", "pympler==1.1", ROOT], check=True)
        open(os.path.join(venv, "ready"), "w").close()
    return vpy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", action="append",
                        help="an interpreter to measure (repeatable)")
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    pys = args.python or default_pythons()
    state = tree_state()
    results = []
    for py in pys:
        vpy = venv_for(py, state)
        res = subprocess.run([vpy, "-c", CHILD, str(args.nodes), str(args.rounds)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit("bench_versions: %s failed:\n%s" % (py, res.stderr[-3000:]))
        results.append(json.loads(res.stdout))

    cols = [r["version"] for r in results]
    print("# classtrack across CPython versions: %d Node instances (a tree), best of runs, "
          "creation the median of %d alternating rounds" % (args.nodes, args.rounds))
    print()
    print("| figure | target | " + " | ".join(cols) + " |")
    print("|---|---|" + "---:|" * len(cols))
    rows = [
        ("gc.collect()", "", lambda r: "%.1f ms" % (r["gc"] * 1e3)),
        ("asizeof(tree), classtrack", "", lambda r: "%.1f ms" % (r["sizer"] * 1e3)),
        ("  x gc.collect() (median of rounds)", "<= 1.0x", lambda r: "%.2fx" % r["sizer_x"]),
        ("asizeof(tree), Pympler", "", lambda r: "%.0f ms" % (r["pympler_sizer"] * 1e3)),
        ("  Pympler / classtrack", "", lambda r: "%.0fx" % (r["pympler_sizer"] / r["sizer"])),
        ("creation, tracked / untracked", "<= 1.15x (goal 1.05x)",
         lambda r: "%.3fx" % r["creation"]),
        ("create_snapshot per instance, classtrack", "",
         lambda r: "%.3f us" % (r["snapshot"] * 1e6)),
        ("create_snapshot per instance, Pympler (n/20)", "",
         lambda r: "%.1f us" % (r["pympler_snapshot"] * 1e6)),
        ("retained_sizes(all Nodes)", "", lambda r: "%.1f ms" % (r["retained"] * 1e3)),
        ("  x gc.collect() (median of rounds)", "", lambda r: "%.2fx" % r["retained_x"]),
    ]
    for name, target, fmt in rows:
        print("| %s | %s | %s |" % (name, target, " | ".join(fmt(r) for r in results)))


if __name__ == "__main__":
    main()
