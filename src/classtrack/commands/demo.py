"""``classtrack demo``: the built-in demo, the classic ClassTracker example.

A Factory with 1,000 Employees: the Factory tracked as an object (its
referents sized two levels deep), Employee tracked as a class, snapshots
before and after hiring.  Prints the summary and writes the HTML report.
"""
import argparse
import os
import sys

from classtrack._safefile import RefusedPath
from classtrack.commands.common import UserError



class Employee:
    def __init__(self, name, salary):
        self.name = name
        self.salary = salary
        self.skills = ["python", "c", "skill-%d" % salary]


class Factory:
    def __init__(self, name):
        self.name = name
        self.employees = []
        self.ledger = {}

    def hire(self, count):
        for i in range(count):
            employee = Employee("employee-%d" % i, 30000 + i)
            self.employees.append(employee)
            self.ledger[employee.name] = employee.salary


DEFAULT_OUTPUT = "classtrack-demo.html"


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the built-in demo",
                       description="Track a Factory with 1,000 Employees, print the "
                                   "summary and write an HTML report.")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="the HTML report to write (default: classtrack-demo.html)")
    p.add_argument("--employees", type=int, default=1000, metavar="N",
                   help="how many employees to hire (default 1000)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out=None) -> int:
    # imported here: every command line (run's above all) pays for what cli imports
    from classtrack.classtracker import ClassTracker
    from classtrack.classtracker_stats import ConsoleStats, HtmlStats

    out = out or sys.stdout
    if args.employees < 0:
        raise SystemExit("classtrack demo: --employees must be >= 0")
    tracker = ClassTracker()
    factory = Factory("Acme")
    tracker.track_object(factory, resolution_level=2)
    tracker.track_class(Employee)
    tracker.create_snapshot("before hiring")
    factory.hire(args.employees)
    tracker.create_snapshot("after hiring")
    tracker.close()
    ConsoleStats(tracker=tracker, stream=out).print_summary()
    output = args.output or DEFAULT_OUTPUT
    try:
        # a name the user did not give: a link there is refused
        HtmlStats(tracker=tracker).create_html(output, title="classtrack demo: a Factory",
                                               _named=args.output is not None)
    except RefusedPath as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError("cannot write %s: %s" % (output, exc.strerror or exc)) from None
    path = os.path.abspath(output)
    print("\nHTML report written to %s (and %s_files/)"
          % (path, os.path.splitext(path)[0]), file=out)
    return 0
