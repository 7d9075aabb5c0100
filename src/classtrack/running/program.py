"""Running a program under a ClassTracker: the work of ``classtrack run``
(its command line is ``classtrack.commands.run``).

The program gets its own ``sys.argv``, runs as ``__main__``, keeps
stdin/stdout, and its exceptions are what it would have had.  Everything
classtrack says goes to stderr (``say``).
"""
import argparse
import difflib
import importlib
import os
import runpy
import sys
import threading
import traceback
from typing import Any, Dict, List, Optional, Tuple

from classtrack import _untrackable, snapshot
from classtrack._dumps import UserError
from classtrack._dumpstream import DumpStreamer
from classtrack._modfind import find_spec, importable
from classtrack._safefile import RefusedPath
from classtrack.classtracker import ClassTracker
from classtrack.running import follow, metrics_server
from classtrack.running.output import silence
from classtrack.running.watch import ImportWatch, Watcher, main_aliases, parse_names

_started = False


def program_started() -> bool:
    """Whether this process ran a program: its stdout is then the program's."""
    return _started


_interrupted = False


def program_interrupted() -> bool:
    """Whether the program ended in KeyboardInterrupt: Python would then
    die of SIGINT after its exit handlers (status -2), and so must we."""
    return _interrupted


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        print(code, file=sys.stderr)
    except (BrokenPipeError, ValueError):
        pass
    return 1


def _print_program_exception(exc: BaseException) -> None:
    """The traceback Python would print, without runpy's and classtrack's frames."""
    tb = exc.__traceback__
    ours = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), runpy.__file__,
            "<frozen runpy>")
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(ours):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def _say(line: str) -> None:
    """One line on stderr.  If stderr is a closed pipe, classtrack goes quiet
    (stderr onto /dev/null) instead of failing: the program's exit status
    still counts."""
    try:
        sys.stderr.write("classtrack: %s\n" % line)
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        silence(sys.stderr)


def _summary(stats: Any, dump: str) -> None:
    """Summary on stderr from the Stats the dump was written from (one pass
    over the records, not one per use)."""
    snaps = stats.snapshots
    data = stats._data          # counted from the records, no view per object
    n = data.nrec if data is not None else 0
    nclasses = len(set(data.rec_name)) if n else 0
    live = []
    if snaps and n:
        last = stats.annotate_snapshot(stats.snapshots[-1])
        live = [(name, info["sum"], info["active"]) for name, info in last.items()
                if info["active"]]
    _say_summary(snaps, n, nclasses, live, dump)


def _summary_of_tracker(tracker: Any, dump: str, streamer: Any) -> None:
    """The same summary read from the engine (after a streamed dump): no
    export of the records, whose copy was the largest allocation at exit,
    nor a list of their names (8 bytes a record): the stream kept the
    names it wrote (every record's; the engine may have forgotten some)."""
    engine = tracker._engine
    names = engine.names
    n = len(engine)
    nclasses = len({names[k] for k in streamer.names_written}) if n else 0
    sums, counts = engine.last_by_name()
    by_class: Dict[str, List[int]] = {}
    for k, name in enumerate(names):
        if counts[k]:
            acc = by_class.setdefault(name, [0, 0])
            acc[0] += sums[k]
            acc[1] += counts[k]
    live = [(name, s, c) for name, (s, c) in by_class.items()]
    _say_summary(tracker.snapshots, n, nclasses, live, dump)


def _say_summary(snaps: Any, n: int, nclasses: int, live: List[Tuple[str, int, int]],
                 dump: str) -> None:
    # lazy: start-up time (report.svg imports html's entity table)
    from classtrack.report.svg import fmt_bytes
    counted = (snaps[-1].counted or {}) if snaps else {}
    _say("%s, %s, %s%s" % (_count(len(snaps), "snapshot"), _count(nclasses, "tracked class"),
                            _count(n, "tracked instance"),
                            ", %s counted at snapshots (%s instances at the last)" % (
                                _count(len(counted), "class"),
                                format(sum(c for c, _ in counted.values()), ","))
                            if counted else ""))
    top = sorted(live, key=lambda r: (-r[1], r[0]))[:5]
    width = max([len(name) for name, _, _ in top] + [0])
    for name, size, active in top:
        _say("  %-*s %8s in %d live" % (width, name, fmt_bytes(size), active))
    _say("dump written to %s (see: classtrack report %s)" % (dump, dump))


def _count(n: int, noun: str) -> str:
    """'1 tracked class', '9,600 tracked instances': as `report` writes them."""
    if n == 1:
        return "1 " + noun
    return "%s %s%s" % (format(n, ","), noun, "es" if noun.endswith("ss") else "s")


class _PackageName:
    def __init__(self, text: str) -> None:
        self.text = text


def _did_you_mean(name: str) -> str:
    """' (did you mean pyflakes?)' from the importable modules beside
    `name` (top-level ones, or a package's submodules), or ''."""
    import pkgutil  # lazy: only a misspelt --track-package needs it
    parent, _, last = name.rpartition(".")
    try:
        if parent:
            where = getattr(importlib.import_module(parent), "__path__", None)
            if where is None:
                return ""
            names = [m.name for m in pkgutil.iter_modules(where)]
        else:
            names = [m.name for m in pkgutil.iter_modules()] + list(sys.builtin_module_names)
    except Exception:       # a parent that fails to import: no suggestion
        return ""
    close = difflib.get_close_matches(last, sorted(set(names)), n=3)
    if not close:
        return ""
    return " (did you mean %s?)" % " or ".join((parent + "." if parent else "") + c
                                               for c in close)


def _package_report(tracker: Any, packages: List[str], verbose: bool = False) -> List[str]:
    """What --track-package and --track-mine could not follow one by one:
    one line that counts the classes counted at snapshots instead, per
    reason (with --verbose, a line per class), and the packages never
    imported."""
    found = tracker._untrackable_reasons()
    lines = []
    if found and verbose:
        lines = ["counting %s at snapshots, not one by one: %s" % (cls, why.text)
                 for cls, why in found]
    elif found:
        line = _untrackable.summary([why.kind for _, why in found])
        hints = sorted({why.text.rpartition("; a pure-Python build can be tracked: ")[2]
                        for _, why in found if "a pure-Python build" in why.text})
        if hints:
            line += " (for the compiled ones, a pure-Python build can be tracked: %s)" \
                % "; ".join(hints)
        lines = [line + "; --verbose lists them"]
    for package in dict.fromkeys(packages):
        if not any(m == package or m.startswith(package + ".") for m in sys.modules):
            lines.append("warning: %s: no such package was ever imported" % package)
    return lines


def run(args: argparse.Namespace) -> int:
    # lazy: start-up time of the other subcommands (site/sysconfig imports)
    from classtrack import _modwatch

    name = args.module or os.path.splitext(os.path.basename(args.script))[0]
    dump = args.output or name + ".ctdump"
    if args.script is not None and not os.path.exists(args.script):
        raise UserError("no such script: %s" % args.script)
    is_package = False
    if args.module is not None:
        spec = find_spec(args.module)
        if spec is None:
            raise UserError("no module named %s" % args.module)
        is_package = spec.submodule_search_locations is not None
    tracker = ClassTracker(reprs=not args.no_repr)
    snapshot._cut_launcher = True   # --trace stacks start at the program
    metrics = metrics_server.start(tracker, args, _say)   # None without --metrics-port
    names = parse_names(args.track_class, args.track_module,
                        main_aliases(args.module, args.script, is_package))
    watcher = Watcher(tracker, names, args.resolution, args.trace, _say)
    watcher.rescan()                    # modules imported before the program
    importwatch = ImportWatch(watcher)
    sys.meta_path.insert(0, importwatch)
    _modwatch.add_class_callback(watcher)
    for package in dict.fromkeys(args.track_package):
        tracker.track_package(package, resolution_level=args.resolution, trace=args.trace)
    # looked for as the program will see them: its folder first on sys.path
    home = os.path.dirname(os.path.abspath(args.script)) if args.script else os.getcwd()
    missing = [p for p in dict.fromkeys(args.track_package) if not importable(p, home)]
    for package in missing:
        _say("warning: --track-package %s: no such module%s" % (package, _did_you_mean(package)))
    if args.track_mine:
        tracker._watch(_modwatch.mine_predicate(), args.resolution, False, args.trace,
                       "the program's classes")
    # with --follow-fork, NAME.<run>.<pid>.ctdump
    dump = follow.start(tracker, watcher, args, dump, _say)
    # written as the program runs, a frame per snapshot: a killed program leaves its dump
    # the records the stream holds for good are forgotten as it goes, unless
    # the metrics server asks the tracker about whole histories
    streamer = DumpStreamer(tracker, dump, named=dump == args.output, forget=metrics is None)
    tracker._snapshot_hooks.append(streamer.on_snapshot)
    end = _End(tracker, watcher, importwatch, metrics, args, dump, streamer)
    end.warned = set(missing)           # said at the start: not again at the end
    # os._exit and SIGTERM (while the program has not taken it) end here too
    follow.guard_main(end)
    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    code = 0
    global _started
    _started = True
    try:
        tracker.create_snapshot("start", collect=args.collect)
        follow.start_periodic(tracker, args.interval, block_term=False, collect=args.collect,
                              budget=args.budget)
        # `held` keeps the program's globals alive until the exit snapshot (runpy
        # drops its module on return; an exception's traceback holds its frames)
        held: Any = None
        try:
            if args.module:
                sys.argv = [args.module] + args.argv
                held = runpy.run_module(args.module, run_name="__main__", alter_sys=True)
            else:
                sys.argv = [args.script] + args.argv
                if sys.path:
                    sys.path[0] = os.path.dirname(os.path.abspath(args.script))
                held = runpy.run_path(args.script, run_name="__main__")
        except SystemExit as exc:
            held = exc
            code = _exit_code(exc)
        except KeyboardInterrupt as exc:
            held = exc
            _print_program_exception(exc)
            code = 130
            global _interrupted
            _interrupted = True
        except BaseException as exc:  # the program's own error: report it as Python would
            held = exc
            _print_program_exception(exc)
            code = 1
    finally:
        end.stop_watching()
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0
    failed = end("exit")
    del held
    if args.strict:
        missed = watcher.untracked() + [
            _PackageName(p) for p in args.track_package
            if not any(c.__module__ == p or c.__module__.startswith(p + ".")
                       for w in end.watches for c in w.tracked)]
        if missed:
            _say("--strict: %s tracked no class%s" % (
                ", ".join(n.text for n in missed),
                "" if code else "; exit status 1"))
            failed = 1
    return code or failed


class _End:
    """The end of the run, once, however the program ends: it returns or
    raises (``run``), calls ``os._exit`` or dies of SIGTERM (``follow``'s
    exit hooks, from another thread for SIGTERM).  The exit snapshot is
    labelled by how (``exit``, ``terminated``), the dump written and the
    summary printed.  A second call waits for the first (30 s at most) and
    returns its status: 1 if the dump could not be written, else 0."""

    def __init__(self, tracker: Any, watcher: Any, importwatch: Any, metrics: Any,
                 args: argparse.Namespace, dump: str, streamer: Any = None) -> None:
        self.tracker, self.watcher, self.importwatch = tracker, watcher, importwatch
        self.metrics, self.args, self.dump = metrics, args, dump
        self.streamer = streamer
        self.watches: List[Any] = []
        self.warned: set = set()
        self.failed = 0
        self._lock = threading.Lock()
        self._owner: Optional[int] = None
        self._done = threading.Event()

    def stop_watching(self) -> None:
        """Stop everything that watches the program (idempotent)."""
        from classtrack import _modwatch  # lazy: start-up time (imported by run() already)
        _modwatch.remove_class_callback(self.watcher)
        if self.importwatch in sys.meta_path:
            sys.meta_path.remove(self.importwatch)
        self.monitor = self.tracker._periodic_thread or getattr(self, "monitor", None)
        self.tracker.stop_periodic_snapshots()
        metrics_server.stop(self.metrics)
        self.metrics = None

    def __call__(self, label: str) -> int:
        with self._lock:
            first = self._owner is None
            if first:
                self._owner = threading.get_ident()
        if not first:
            if self._owner != threading.get_ident():
                self._done.wait(30.0)
            return self.failed
        try:
            self.failed = self._end(label)
        finally:
            self._done.set()
        return self.failed

    def _end(self, label: str) -> int:
        # lazy: start-up time of the other subcommands
        from classtrack.classtracker_stats import Stats
        tracker, watcher, args = self.tracker, self.watcher, self.args
        self.stop_watching()
        watcher.rescan()                    # modules whose import was the last
        for watch in tracker._watches:
            watch.rescan()
        monitor = getattr(self, "monitor", None)
        if monitor is not None and monitor.abandoned:
            # its snapshot holds the tracker until it ends: an exit snapshot would wait too
            _say("no %s snapshot: the background monitor's last snapshot has not ended"
                 % label)
        else:
            # after a full collection: cycles nothing holds any more are not counted
            tracker.create_snapshot(label, retained=args.retained, collect=True)
        package_lines = _package_report(
            tracker, [p for p in args.track_package if p not in self.warned], args.verbose)
        self.watches = list(tracker._watches)
        tracker.detach_all_classes()
        for line in package_lines:
            _say(line)
        for line in watcher.unmatched():
            _say("warning: " + line)
        dump = follow.this_process_dump(self.dump)  # a forked child returning here has its own
        streamer = self.streamer
        if streamer is not None and dump == self.dump and streamer.active:
            if streamer.finish():
                _summary_of_tracker(tracker, dump, streamer)
                return 0
        # records forgotten or repr texts handed off: the stream holds them,
        # the engine cannot write the dump whole any more
        forgotten = tracker._engine.forgotten or tracker._engine.reprs_handed_off
        if streamer is not None and os.getpid() == streamer.pid and forgotten:
            # cannot happen short of a failed write: the stream holds the run
            # to its last complete frame, and the engine no longer all of it
            _say("the dump could not be written to its end (%s); %s holds the run up to "
                 "its last complete snapshot" % (streamer.failed, streamer.path))
            return 1
        if forgotten:
            # a process forked without --follow-fork, its tracker its parent's
            _say("no dump for forked process %d: its parent streamed its own dump and "
                 "forgot what it had written (run with --follow-fork to follow forked "
                 "processes)" % os.getpid())
            return 0
        if streamer is not None and streamer.failed and os.getpid() == streamer.pid:
            _say("the dump could not be written as the program ran (%s); writing it whole"
                 % streamer.failed)
        stats = Stats(tracker=tracker)
        try:
            # named by -o, or else (the default, or one per process) by classtrack
            stats._dump_to(dump, named=dump == args.output)
        except RefusedPath as exc:
            _say(str(exc))
            return 1
        except OSError as exc:
            _say("cannot write %s: %s" % (dump, exc.strerror or exc))
            return 1
        _summary(stats, dump)
        return 0
