"""``classtrack demo``: the built-in demo, the classic ClassTracker example
given a timeline.

A Factory and its Employees over about 1.5 seconds, in three phases:
hiring (Employees are made), departures (a third of them leave: their
instances die) and a leak (a report cache that is never emptied keeps
growing).  The Factory is tracked as an object (its referents sized two
levels deep), Employee and Report as classes; snapshots are taken every
INTERVAL seconds and at each phase's end, so the HTML report's charts show
the growth, the release and the leak.  Prints the labelled snapshots'
summary and writes the HTML report.
"""
import argparse
import os
import sys
import time

from classtrack import _safefile
from classtrack._safefile import RefusedPath
from classtrack.classtracker import ClassTracker
from classtrack.commands.common import UserError

INTERVAL = 0.05     # seconds between periodic snapshots
# (phase, seconds, steps): each phase does its work in steps, evenly over its time
PHASES = (("hiring", 0.5, 10), ("departures", 0.3, 6), ("leak", 0.6, 12))
DEFAULT_OUTPUT = "classtrack-demo.html"


class Employee:
    def __init__(self, name, salary):
        self.name = name
        self.salary = salary
        self.skills = ["python", "c", "skill-%d" % salary]
        self.profile = ("%s joined at %d a year. " % (name, salary)) * 24    # about 1 KB


class Report:
    """A payslip, kept in the Factory's cache."""

    def __init__(self, employee, week):
        self.employee = employee.name
        self.week = week
        self.text = ("%s, week %d: %d\n" % (employee.name, week, employee.salary // 52)) * 40


class Factory:
    def __init__(self, name):
        self.name = name
        self.employees = []
        self.ledger = {}
        self.reports = {}       # the leak: filled, never emptied
        self.hired = 0

    def hire(self, count):
        for _ in range(count):
            i = self.hired
            employee = Employee("employee-%d" % i, 30000 + i)
            self.employees.append(employee)
            self.ledger[employee.name] = employee.salary
            self.hired += 1

    def leave(self, count):
        """The `count` most recently hired leave: nothing keeps them alive."""
        for _ in range(min(count, len(self.employees))):
            employee = self.employees.pop()
            del self.ledger[employee.name]

    def payslips(self, week):
        """A report per employee for `week`, cached (and never evicted)."""
        for employee in self.employees:
            key = (employee.name, week)
            if key not in self.reports:
                self.reports[key] = Report(employee, week)


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the built-in demo",
                       description="Track a Factory that hires 1,000 Employees, sees a "
                                   "third of them leave and leaks a report cache (about "
                                   "1.5 seconds), print the summary and write an HTML "
                                   "report.")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="the HTML report to write (default: classtrack-demo.html)")
    p.add_argument("--employees", type=int, default=1000, metavar="N",
                   help="how many employees to hire (default 1000)")
    p.set_defaults(run=run)


def _steps(total: int, steps: int):
    """`total` split into `steps` near-equal whole parts."""
    return [total * (k + 1) // steps - total * k // steps for k in range(steps)]


def simulate(tracker, factory, employees: int) -> None:
    """The three phases, with a labelled snapshot at the end of each."""
    (_, hire_s, hire_n), (_, leave_s, leave_n), (_, leak_s, leak_n) = PHASES
    tracker.create_snapshot("start")
    tracker.start_periodic_snapshots(interval=INTERVAL, _delay_first=True)  # "start" was taken
    try:
        for count in _steps(employees, hire_n):
            factory.hire(count)
            time.sleep(hire_s / hire_n)
        tracker.create_snapshot("hired")
        for count in _steps(employees // 3, leave_n):
            factory.leave(count)
            time.sleep(leave_s / leave_n)
        tracker.create_snapshot("after departures")
        for week in range(leak_n):
            factory.payslips(week)
            time.sleep(leak_s / leak_n)
    finally:
        tracker.stop_periodic_snapshots()
    tracker.create_snapshot("end (report cache leaking)")


def print_phases(stats, out) -> None:
    """The summary of the labelled snapshots (the periodic ones are in the
    HTML report's charts), as ConsoleStats.print_summary lays it out."""
    # lazy: start-up time: cli imports every subcommand to build its parser
    from classtrack.classtracker_stats import pp, trunc
    labelled = [s for s in stats.snapshots if s.desc]
    out.write("---- SUMMARY " + "-" * 66 + "\n")
    out.write("%d labelled snapshots shown; with the periodic ones (every %g s), %d over %.1f s\n"
              % (len(labelled), INTERVAL, len(stats.snapshots),
                 stats.snapshots[-1].timestamp - stats.snapshots[0].timestamp))
    for snapshot in labelled:
        classes = stats.annotate_snapshot(snapshot)
        rss = getattr(snapshot.system_total, "rss", 0) if snapshot.system_total else 0
        out.write("%-35s %11s %12s %12s %5s\n" % (
            trunc(snapshot.label, 35), "active", pp(snapshot.tracked_total), "average", "pct"))
        for classname in stats.tracked_classes:
            info = classes[classname]
            out.write("  %-33s %11d %12s %12s %4d%%\n" % (
                trunc(classname, 33), info["active"], pp(info["sum"]), pp(info["avg"]),
                info["pct"]))
        out.write("  %-33s %11s %12s %12s\n" % ("(process: vsz / rss)", "",
                                                pp(snapshot.total), pp(rss)))
    out.write("-" * 79 + "\n")


def run(args: argparse.Namespace, out=None) -> int:
    # lazy: start-up time: cli imports every subcommand to build its parser
    from classtrack.classtracker_stats import HtmlStats, Stats

    out = out or sys.stdout
    if args.employees < 0:
        raise SystemExit("classtrack demo: --employees must be >= 0")
    output = args.output or DEFAULT_OUTPUT
    try:    # a link at a name the user did not give is refused before the demo runs
        _safefile.target_of(output, args.output is not None)
    except RefusedPath as exc:
        raise UserError(str(exc)) from None
    tracker = ClassTracker()
    factory = Factory("Acme")
    tracker.track_object(factory, resolution_level=2)
    tracker.track_class(Employee)
    tracker.track_class(Report)
    simulate(tracker, factory, args.employees)
    tracker.close()
    stats = Stats(tracker=tracker)
    print_phases(stats, out)
    out.write("hired %d employees, %d left, %d reports cached and never freed\n"
              % (factory.hired, factory.hired - len(factory.employees), len(factory.reports)))
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
