"""``classtrack demo``: the built-in demo.

Until the tracker lands this demonstrates the exact sizer on a sample
structure: sizes against tracemalloc's record, and the referent tree.
"""
import argparse
import gc
import sys
import tracemalloc

from classtrack.asizeof import asized, asizeof


class Employee:
    def __init__(self, name, salary):
        self.name = name
        self.salary = salary
        self.skills = ["python", "c"] + ["skill-%d" % salary]


class Factory:
    def __init__(self, name):
        self.name = name
        self.employees = []
        self.ledger = {}

    def hire(self, n):
        for i in range(n):
            e = Employee("employee-%d" % i, 30000 + i)
            self.employees.append(e)
            self.ledger[e.name] = e.salary


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the built-in demo",
                       description="Size a sample Factory with 1,000 Employees and "
                                   "print what its memory is made of.")
    p.set_defaults(run=run)


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return str(n)


def run(args: argparse.Namespace, out=sys.stdout) -> int:
    warm = Factory("warm-up")
    warm.hire(50)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    factory = Factory("Acme")
    factory.hire(1000)
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()

    size = asizeof(factory)
    print("classtrack demo: a Factory with %d Employees" % len(factory.employees), file=out)
    print("  asizeof(factory)        %12s  (%d bytes)" % (_human(size), size), file=out)
    print("  tracemalloc while built %12s  (%d bytes, %+.2f%%)"
          % (_human(traced), traced, 100.0 * (size - traced) / traced), file=out)
    print("", file=out)
    print("What it is made of (asized, detail=2):", file=out)
    tree = asized(factory, detail=2)
    print(tree.format("%(name)s  size=%(size)d flat=%(flat)d", depth=2), file=out)
    return 0
