"""``classtrack run``: run a program under a ClassTracker, unchanged.

Like ``python -m cProfile``: the program gets its own ``sys.argv``, runs as
``__main__``, keeps stdin/stdout, and its exit code and exceptions are
what it would have had.  Everything classtrack says goes to stderr.

Classes are tracked by name as they are defined (``--track-class
MODULE:CLASS``) or by module (``--track-module MODULE``), also in modules
imported later: classtrack is told of each class a ``class`` statement
creates.  Snapshots are taken at start, every ``--interval`` seconds and at
exit (also when the program raises or calls ``sys.exit``), then the dump is
written and a short summary printed.
"""
import argparse
import os
import runpy
import sys
import traceback
from typing import Any, Dict, List, Optional, Set, Tuple

from classtrack.commands.common import UserError

USAGE = ("classtrack run [-h] [-o DUMP] [--track-class MODULE:CLASS ...] "
         "[--track-module MODULE ...] [--interval SECONDS] [--resolution N] [--trace] "
         "(SCRIPT | -m MODULE) [ARGS...]")
_VALUED = {"-o", "--output", "--track-class", "--track-module", "--interval", "--resolution"}


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run a program under the tracker", usage=USAGE,
                       description="Run a Python program (a script or -m module) under a "
                                   "ClassTracker without changing it, then write a dump.")
    p.add_argument("-o", "--output", metavar="DUMP",
                   help="dump file to write (default: the program's name + .ctdump)")
    p.add_argument("--track-class", action="append", default=[], metavar="MODULE:CLASS",
                   help="track this class (repeatable)")
    p.add_argument("--track-module", action="append", default=[], metavar="MODULE",
                   help="track every class this module defines (repeatable); "
                        "the program itself is __main__")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between snapshots (default 1; 0: only at start and exit)")
    p.add_argument("--resolution", type=int, default=0, metavar="N",
                   help="size referents individually N levels deep (default 0)")
    p.add_argument("--trace", action="store_true", help="record where instances are created")
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
    if args.resolution < 0:
        sub.error("--resolution must be >= 0")
    return args


class _Watcher:
    """Decides which new classes to track and tracks them."""

    def __init__(self, tracker: Any, args: argparse.Namespace) -> None:
        self.tracker = tracker
        self.args = args
        self.modules: Set[str] = set(args.track_module)
        self.classes: Set[Tuple[str, str]] = set()
        for spec in args.track_class:
            mod, _, cls = spec.partition(":")
            self.classes.add((mod, cls))
        if args.module:  # the -m module runs as __main__
            if args.module in self.modules:
                self.modules.add("__main__")
            self.classes |= {("__main__", c) for m, c in list(self.classes) if m == args.module}
        self.tracked: Set[type] = set()

    def wanted(self, cls: type) -> bool:
        mod = getattr(cls, "__module__", None)
        return mod in self.modules or (mod, getattr(cls, "__qualname__", None)) in self.classes

    def __call__(self, cls: type) -> None:
        if cls in self.tracked or not self.wanted(cls):
            return
        self.tracked.add(cls)
        try:
            self.tracker.track_class(cls, resolution_level=self.args.resolution,
                                     trace=self.args.trace)
        except TypeError as exc:
            print("classtrack: not tracking %s.%s: %s"
                  % (cls.__module__, cls.__qualname__, exc), file=sys.stderr)

    def scan_loaded(self) -> None:
        """Classes of modules imported before the program started."""
        for modname in list(self.modules) + [m for m, _ in self.classes]:
            mod = sys.modules.get(modname)
            if mod is None or modname == "__main__":
                continue
            for value in list(vars(mod).values()):
                if isinstance(value, type) and value.__module__ == modname:
                    self(value)


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_program_exception(exc: BaseException) -> None:
    """The traceback Python would print, without runpy's and classtrack's frames."""
    tb = exc.__traceback__
    ours = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), runpy.__file__,
            "<frozen runpy>")
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(ours):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def _summary(tracker: Any, dump: str) -> None:
    from classtrack.report.svg import fmt_bytes
    snaps = tracker.snapshots
    index = tracker.index
    n = sum(len(v) for v in index.values())
    print("classtrack: %d snapshots, %d tracked classes, %d tracked instances"
          % (len(snaps), len(index), n), file=sys.stderr)
    if snaps and index:
        from classtrack.classtracker_stats import Stats
        stats = Stats(tracker=tracker)
        last = stats.annotate_snapshot(stats.snapshots[-1])
        top = sorted(last.items(), key=lambda kv: kv[1]["sum"], reverse=True)[:5]
        for name, info in top:
            print("classtrack:   %-40s %10s in %d live" % (name, fmt_bytes(info["sum"]),
                                                            info["active"]), file=sys.stderr)
    print("classtrack: dump written to %s (see: classtrack report %s)" % (dump, dump),
          file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from classtrack import _core
    from classtrack.classtracker import ClassTracker
    from classtrack.classtracker_stats import Stats

    name = args.module or os.path.splitext(os.path.basename(args.script))[0]
    dump = args.output or name + ".ctdump"
    if args.script is not None and not os.path.exists(args.script):
        raise UserError("no such script: %s" % args.script)
    if args.module is not None:
        import importlib.util
        try:
            found = importlib.util.find_spec(args.module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise UserError("no module named %s" % args.module)
    tracker = ClassTracker()
    watcher = _Watcher(tracker, args)
    watcher.scan_loaded()
    _core.watch_classes(watcher)
    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    code = 0
    try:
        tracker.create_snapshot("start")
        if args.interval > 0:
            tracker.start_periodic_snapshots(interval=args.interval)
        try:
            if args.module:
                sys.argv = [args.module] + args.argv
                runpy.run_module(args.module, run_name="__main__", alter_sys=True)
            else:
                sys.argv = [args.script] + args.argv
                if sys.path:
                    sys.path[0] = os.path.dirname(os.path.abspath(args.script))
                runpy.run_path(args.script, run_name="__main__")
        except SystemExit as exc:
            code = _exit_code(exc)
        except KeyboardInterrupt as exc:
            _print_program_exception(exc)
            code = 130
        except BaseException as exc:  # the program's own error: report it as Python would
            _print_program_exception(exc)
            code = 1
    finally:
        _core.watch_classes(None)
        tracker.stop_periodic_snapshots()
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0
    tracker.create_snapshot("exit")
    tracker.detach_all_classes()
    try:
        Stats(tracker=tracker).dump_stats(dump)
    except OSError as exc:
        raise UserError("cannot write %s: %s" % (dump, exc.strerror or exc)) from None
    _summary(tracker, dump)
    return code
