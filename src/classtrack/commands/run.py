"""``classtrack run``: run a program under a ClassTracker, unchanged.

Like ``python -m cProfile``: the program gets its own ``sys.argv``, runs as
``__main__``, keeps stdin/stdout, and its exceptions are what it would have
had.  Everything classtrack says goes to stderr.

Classes are tracked by name (``--track-class MODULE:CLASS``) or by module
(``--track-module MODULE``), also in modules imported later; the program's
own module may be named ``__main__``, by its file name or by its ``-m``
module (see ``classtrack.running.watch``; the work is
``classtrack.running.program``'s).  Snapshots are taken at start,
every ``--interval`` seconds and at exit (also when the program raises or
calls ``sys.exit``), then the dump is written and a short summary printed.

Exit status: the program's own, when it is not 0.  When the program
succeeded: 1 if classtrack could not write the dump, or with ``--strict``
if a name given to ``--track-class``/``--track-module`` tracked no class;
else 0.
"""
import argparse
from typing import List, Optional

from classtrack._monitor import DEFAULT_BUDGET
from classtrack.running import follow, metrics_server
from classtrack.running.program import program_interrupted, program_started, run

__all__ = ["add_parser", "parse", "run", "program_started", "program_interrupted"]

USAGE = ("classtrack run [-h] [-o DUMP] [--track-class MODULE:CLASS ...] "
         "[--track-module MODULE ...] [--track-package PACKAGE ...] [--track-mine] "
         "[--strict] [--interval SECONDS] [--budget SHARE] [--resolution N] "
         "[--trace] [--retained] [--collect] [--no-repr] [-v] "
         + metrics_server.USAGE + " " + follow.USAGE + " (SCRIPT | -m MODULE) [ARGS...]")
_VALUED = {"-o", "--output", "--track-class", "--track-module", "--track-package",
           "--interval", "--budget", "--resolution"}
_VALUED.update(metrics_server.VALUED)


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run a program under the tracker", usage=USAGE,
                       description="Run a Python program (a script or -m module) under a "
                                   "ClassTracker without changing it, then write a dump.")
    p.add_argument("-o", "--output", metavar="DUMP",
                   help="dump file to write (default: the program's name + .ctdump)")
    p.add_argument("--track-class", action="append", default=[], metavar="MODULE:CLASS",
                   help="track this class (repeatable); the program's own module is "
                        "__main__, or the script's file name without .py, or the -m module")
    p.add_argument("--track-module", action="append", default=[], metavar="MODULE",
                   help="track every class this module defines (repeatable); the "
                        "program's own module is named as for --track-class")
    p.add_argument("--track-package", action="append", default=[], metavar="PACKAGE",
                   help="track every class of this package and its subpackages, also "
                        "those imported later (repeatable)")
    p.add_argument("--track-mine", action="store_true",
                   help="track every class the program defines: __main__ and modules "
                        "outside the stdlib and site-packages, also those imported later")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 (if the program itself succeeded) when a "
                        "--track-class or --track-module tracked no class")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between snapshots (default 1; 0: only at start and exit)")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET, metavar="SHARE",
                   help="share of the program's time the periodic snapshots may take "
                        "(default %(default)s): while a snapshot costs more than SHARE "
                        "times the interval, the interval stretches to its cost / SHARE")
    p.add_argument("--resolution", type=int, default=0, metavar="N",
                   help="size referents individually N levels deep (default 0)")
    p.add_argument("--trace", action="store_true", help="record where instances are created")
    p.add_argument("--no-repr", action="store_true",
                   help="call no __repr__ of tracked objects and keep no source lines in "
                        "traces: the dump holds classes, addresses, sizes and times, not "
                        "the objects' data (see 'What a dump contains' in "
                        "docs/dump-format.md)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="list each class that cannot be followed one by one (its instances "
                        "are counted at snapshots instead), with why (by default one line "
                        "counts them per reason)")
    p.add_argument("--collect", action="store_true",
                   help="run gc.collect() before each periodic snapshot too (the exit "
                        "snapshot always follows one), so that cycles nothing holds any "
                        "more are not counted; its cost counts in the monitor's budget")
    p.add_argument("--retained", action="store_true",
                   help="measure retained sizes (what freeing each instance would free) "
                        "at the exit snapshot; it walks the whole heap once")
    metrics_server.add_arguments(p)
    follow.add_arguments(p)
    p.set_defaults(run=run, program=None)
    _PARSERS.append(p)


_PARSERS: List[argparse.ArgumentParser] = []


def parse(parser: argparse.ArgumentParser, argv: List[str]) -> argparse.Namespace:
    """Split `run`'s own options from the program and its arguments."""
    rest = argv[1:]
    opts: List[str] = []
    program: Optional[List[str]] = None
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "-m":
            program = rest[i:]
            break
        if a == "--":
            program = rest[i + 1:]
            break
        if a.startswith("-") and a != "-":
            opts.append(a)
            if a in _VALUED and i + 1 < len(rest):
                opts.append(rest[i + 1])
                i += 2
                continue
            i += 1
            continue
        program = rest[i:]
        break
    args = parser.parse_args(["run"] + opts)
    sub = _PARSERS[-1]
    if not program or program == ["-m"]:
        sub.error("the program to run is missing: give SCRIPT or -m MODULE")
    if program[0] == "-m":
        args.module, args.script, args.argv = program[1], None, program[2:]
    else:
        args.module, args.script, args.argv = None, program[0], program[1:]
    for spec in args.track_class:
        mod, sep, cls = spec.partition(":")
        if not sep or not mod or not cls:
            sub.error("--track-class needs MODULE:CLASS, not %r" % spec)
    if args.interval < 0:
        sub.error("--interval must be >= 0")
    if not 0 < args.budget <= 1:    # also refuses nan
        sub.error("--budget must be a share of time in (0, 1], not %r" % args.budget)
    if args.resolution < 0:
        sub.error("--resolution must be >= 0")
    metrics_server.check(sub, args)
    return args


