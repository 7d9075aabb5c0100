"""asizeof side by side with Pympler: speed, accuracy and observer effect.

    pip install -r bench/requirements.txt     # Pympler, for comparison only
    python bench/bench_asizeof.py [--nodes 100000] [--repeat 5]

Speed: a tree of N nodes (each an instance with an int, a formatted str and
a list of children).  The reference is one gc.collect() on the same heap:
the interpreter's own full traversal.  Targets: classtrack <= 1.0x gc.collect
and >= 20x faster than Pympler.

Accuracy: every structure kind of tests/structures.py built under
tracemalloc; error of each sizer against tracemalloc's record.

Observer effect: traced memory growth of a program of 10,000 plain
instances caused by sizing them once.
"""
import argparse
import gc
import os
import platform
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import structures  # noqa: E402

from classtrack import asizeof as ct  # noqa: E402

try:
    from pympler import asizeof as pympler_asizeof
except ImportError:  # pragma: no cover - the benchmark needs it
    sys.exit("bench_asizeof: Pympler is needed for the comparison: "
             "pip install -r bench/requirements.txt")


class Node:
    def __init__(self, i):
        self.value = i
        self.name = "node-%d" % i
        self.children = []


def build_tree(n):
    root = Node(0)
    nodes = [root]
    for i in range(1, n):
        node = Node(i)
        nodes[(i - 1) // 4].children.append(node)
        nodes.append(node)
    return root


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def speed(nodes, repeat):
    root = build_tree(nodes)
    gc.collect()
    t_gc = best_of(gc.collect, repeat)
    t_ct = best_of(lambda: ct.asizeof(root), repeat)
    t_py = best_of(lambda: pympler_asizeof.asizeof(root), max(1, repeat // 3))
    print("## Speed: asizeof of a %d-node tree (best of %d)" % (nodes, repeat))
    print()
    print("| measure                | time (ms) | per node (us) | vs gc.collect |")
    print("|------------------------|----------:|--------------:|--------------:|")
    for label, t in (("gc.collect()", t_gc), ("classtrack.asizeof", t_ct),
                     ("pympler.asizeof", t_py)):
        print("| %-22s | %9.2f | %13.3f | %12.2fx |"
              % (label, t * 1e3, t * 1e6 / nodes, t / t_gc))
    print()
    print("classtrack is %.1fx faster than Pympler; %.2fx the time of gc.collect()"
          % (t_py / t_ct, t_ct / t_gc))
    print("sizes: classtrack %d bytes, pympler %d bytes"
          % (ct.asizeof(root), pympler_asizeof.asizeof(root)))
    print()
    return t_ct / t_gc, t_py / t_ct


def accuracy():
    structures.warm_up()
    print("## Accuracy against tracemalloc (%d objects per structure)" % structures.N)
    print()
    print("| structure              | tracemalloc | classtrack |  error | pympler |   error |")
    print("|------------------------|------------:|-----------:|-------:|--------:|--------:|")
    worst = 0.0
    for kind in sorted(structures.BUILDERS):
        obj, traced = structures.traced_build(kind)
        ours = ct.asizeof(obj)
        theirs = pympler_asizeof.asizeof(obj)
        e_ours = 100.0 * (ours - traced) / traced
        e_theirs = 100.0 * (theirs - traced) / traced
        worst = max(worst, abs(e_ours))
        print("| %-22s | %11d | %10d | %+5.2f%% | %7d | %+6.1f%% |"
              % (kind, traced, ours, e_ours, theirs, e_theirs))
        del obj
    print()
    print("worst classtrack error: %.2f%%" % worst)
    print()
    return worst


def observer_effect():
    class Plain:
        def __init__(self, i):
            self.num = i * 1000 + 7
            self.label = "p%d" % i

    print("## Observer effect: memory a program gains from being measured once")
    print()
    print("| sizer              | traced growth |")
    print("|--------------------|--------------:|")
    for label, fn in (("classtrack.asizeof", ct.asizeof),
                      ("pympler.asizeof", pympler_asizeof.asizeof)):
        objs = [Plain(i) for i in range(10_000)]
        fn(objs[:10])
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        fn(objs)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        print("| %-18s | %10d B |" % (label, grown))
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("# classtrack asizeof benchmark — Python %s on %s"
          % (platform.python_version(), platform.machine()))
    print()
    speed(args.nodes, args.repeat)
    accuracy()
    observer_effect()


if __name__ == "__main__":
    main()
