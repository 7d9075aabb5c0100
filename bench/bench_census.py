"""A census of the whole heap, beside gc.collect, guppy3 and objgraph.

    pip install -r bench/requirements.txt      # guppy3 and objgraph, for comparison only
    python bench/bench_census.py [--objects 1000000] [--rounds 3]

The heap: instances of a class ``Order`` (each with a list of lines, a str
and a dict: a few GC objects and leaves each) until gc.get_objects() holds
--objects objects.  Every figure is the median of --rounds, on the same
heap, in the same process:

  gc.collect()                  one full collection (the yardstick)
  census()                      every object by class: count and exact
                                bytes; target <= 3x gc.collect
  census(retained=True)         and the bytes each class retains
  census(paths=5)               and a why_alive path for the 5 largest
  guppy3 hpy().heap()           guppy's census by type (count and size),
                                its .size and .bytype forced
  objgraph.typestats()          counts by type of the GC objects only
                                (no sizes, no str/int/bytes)

On CPython 3.14+ also ``classtrack attach`` end to end (a fresh target
process holding the same heap; --rounds attaches, each timed from start
to exit of the attaching command; the target's pause as it reports it,
beside the target's own gc.collect()): targets <= 2 s end to end and a
pause <= 3x gc.collect.
"""
import argparse
import gc
import json
import os
import subprocess
import platform
import statistics
import sys
import time

from bench_retained import timed  # the same medians as the retained-size bench

TARGET = r'''
import gc, sys, time
class Order:
    def __init__(self, i):
        self.ref = "order-%d" % i
        self.lines = [i, i + 1]
        self.meta = {"n": i}
orders = []
while len(gc.get_objects()) < int(sys.argv[1]):
    orders.extend(Order(len(orders) + k) for k in range(10000))
gc.collect()
t = []
for _ in range(3):
    t0 = time.perf_counter(); gc.collect(); t.append(time.perf_counter() - t0)
print("ready %d %f" % (len(gc.get_objects()), sorted(t)[1]), flush=True)
for _ in range(6000):
    time.sleep(0.05)
'''


def bench_attach(objects, rounds):
    """attach end to end against a target holding `objects` objects."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.path.join(here, "src"))
    proc = subprocess.Popen([sys.executable, "-c", TARGET, str(objects)], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        _, nobj, tgc = proc.stdout.readline().split()
        walls, pauses = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "classtrack", "attach", str(proc.pid),
                                "--json"], capture_output=True, text=True, env=env)
            walls.append(time.perf_counter() - t0)
            if r.returncode != 0:
                sys.exit("bench_census: attach failed: %s" % r.stderr)
            pauses.append(json.loads(r.stdout)["pause_s"])
        return int(nobj), float(tgc), statistics.median(walls), statistics.median(pauses)
    finally:
        proc.kill()
        proc.wait()


class Order:
    def __init__(self, i):
        self.ref = "order-%d" % i
        self.lines = [i, i + 1]
        self.meta = {"n": i}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true", help="no guppy3 nor objgraph")
    parser.add_argument("--no-attach", action="store_true", help="no attach (3.14+)")
    args = parser.parse_args()
    from classtrack import census

    orders = []
    while len(gc.get_objects()) < args.objects:
        orders.extend(Order(len(orders) + k) for k in range(10000))
    gc.collect()
    nobj = len(gc.get_objects())

    rows = []
    t_gc, _ = timed(gc.collect, args.rounds)
    rows.append(("gc.collect()", t_gc, ""))
    t_c, c = timed(census, args.rounds)
    rows.append(("census()", t_c, "<= 3x gc.collect"))
    t_r, cr = timed(lambda: census(retained=True), args.rounds)
    rows.append(("census(retained=True)", t_r, ""))
    t_p, cp = timed(lambda: census(paths=5), args.rounds)
    rows.append(("census(paths=5)", t_p, ""))
    order = [r for r in c.classes if r.name.endswith(".Order")][0]
    assert order.count == len(orders), (order.count, len(orders))

    peers = []
    if not args.no_peers:
        try:
            import guppy
            import objgraph
        except ImportError:
            sys.exit("bench_census: guppy3 and objgraph are needed for the comparison: "
                     "pip install -r bench/requirements.txt (or --no-peers)")
        # objgraph first: guppy's heap() materializes the __dict__ of every
        # instance whose attributes live inline (3.11+), which adds objects
        t_o, o = timed(objgraph.typestats, args.rounds)
        peers.append(("objgraph.typestats()", t_o, "%s GC objects, no sizes" % format(
            sum(o.values()), ",")))
        hp = guppy.hpy()

        def guppy_heap():
            h = hp.heap()
            return h.size, h.count, len(h.bytype)
        t_g, g = timed(guppy_heap, args.rounds)
        peers.append(("guppy3 hpy().heap()", t_g, "%s objects, %s bytes; gc objects after: %s"
                      % (format(g[1], ","), format(g[0], ","), format(len(gc.get_objects()),
                                                                       ","))))

    print("# census — Python %s on %s; heap of %s objects (gc.get_objects()), "
          "median of %d" % (platform.python_version(), platform.machine(),
                            format(nobj, ","), args.rounds))
    print()
    print("| measure                        |   seconds | x gc.collect | note |")
    print("|--------------------------------|----------:|-------------:|------|")
    for name, t, note in rows:
        print("| %-30s | %9.3f | %11.1fx | %s |" % (name, t, t / t_gc, note))
    for name, t, note in peers:
        print("| %-30s | %9.3f | %11.1fx | %s |" % (name, t, t / t_gc, note))
    print()
    print("classtrack census: %s objects, %s bytes, %d classes; Order: %s instances, "
          "%s bytes, retaining %s" % (format(c.objects, ","), format(c.bytes, ","),
                                      len(c.classes), format(order.count, ","),
                                      format(order.size, ","), format(
                                          [r for r in cr.classes if r.name == order.name][0]
                                          .retained, ",")))
    print("census() is %.1fx gc.collect (target <= 3x)" % (t_c / t_gc))
    print("largest class path: %s: %s" % (cp.classes[0].name, cp.classes[0].path))
    if sys.version_info >= (3, 14) and not args.no_attach:
        del orders, c, cr
        gc.collect()
        nobj_t, tgc_t, wall, pause = bench_attach(args.objects, args.rounds)
        print()
        print("| attach (target of %s objects)   |   seconds | x target's gc.collect | target |"
              % format(nobj_t, ","))
        print("|--------------------------------|----------:|-------------:|------|")
        print("| target's gc.collect()          | %9.3f | %11.1fx |  |" % (tgc_t, 1.0))
        print("| attach --json, end to end      | %9.3f | %11.1fx | <= 2 s |"
              % (wall, wall / tgc_t))
        print("| the target's pause (pause_s)   | %9.3f | %11.1fx | <= 3x gc.collect |"
              % (pause, pause / tgc_t))


if __name__ == "__main__":
    main()
