"""``classtrack run --follow-fork``: track the program's child processes too.

Every process of the run writes its own dump, ``NAME.<run>.<pid>.ctdump``
(NAME is ``-o`` without ``.ctdump``, by default the program's name; <run>
is a random token of this run), holding the instances created in that
process.  ``classtrack report NAME.<run>.*.ctdump`` merges them
(``classtrack.report.merge``), and refuses dumps of different runs.

How a child is followed depends on how it was started:

* **fork** (``os.fork()``, ``multiprocessing``'s fork start method): the
  child is a copy of the parent, tracker and hooks included.  An
  ``os.register_at_fork(after_in_child=...)`` hook makes the copy the
  child's own: it forgets the parent's records and snapshots (keeping the
  tracked classes), takes a ``start`` snapshot and restarts the periodic
  snapshots.  Clocks agree: the engine's clock origin is inherited.
* **spawn** and **forkserver**: the child is a fresh interpreter (for
  forkserver, forked from one), which reads its *preparation data* from
  the parent before it imports the program's main module as
  ``__mp_main__``.  ``multiprocessing.spawn.get_preparation_data`` is
  wrapped in the parent to add one entry whose unpickling starts a tracker
  in the child with the parent's ``--track-*`` settings, ``__main__`` names
  standing for ``__mp_main__`` too.  No environment variable, ``.pth`` file
  or ``sitecustomize`` is involved, so other Python processes the program
  starts are not affected.  The child's dump is written on the parent's
  clock (its times shifted by the difference of the two clock origins,
  both measured against ``CLOCK_MONOTONIC``) and with ``__mp_main__``
  names written as ``__main__``, so that it merges with the parent's.

When a child's dump is written (its ``exit`` snapshot is taken then):

* at ``os._exit`` (how fork and forkserver workers end, and most forked
  children), through a wrapper of ``os._exit`` installed in children;
* at interpreter exit (``atexit``: spawn workers, children that return);
* on SIGTERM (``Pool.terminate()``, leaving a ``with Pool(...)`` block,
  ``Process.terminate()``), while the program has not taken the signal
  (its disposition is the default): a handler installed below Python's
  signal module (``_core.term_watch``, termwatch.c) wakes a thread that
  writes the dump (snapshot ``terminated``) and then dies of SIGTERM, as
  the process would have, so the parent still sees exit code -15.  The
  program sees none of it: ``signal.getsignal(SIGTERM)`` says SIG_DFL,
  its ``set_wakeup_fd`` is its own, and a handler it installs replaces
  classtrack's; its dump is then written at its real exit (the two
  paths above), and its exit status is its own.  Writing the dump needs
  the interpreter: a worker inside a long call in C that holds it writes
  its dump, and dies, when the call returns.  The dump's last snapshot is
  taken at the signal: the objects alive then are in it.  A worker
  terminated before its tracker started (before a spawn or forkserver
  child read its preparation data, i.e. before it ran any of the
  program's code) writes no dump and made no tracked object.

Not written: a child killed by SIGKILL (``Process.kill()``, the OOM
killer), one that replaces itself with ``exec``, one killed by SIGTERM
where the program installed its own SIGTERM handler that does not exit
through Python (a handler that restores SIG_DFL and re-raises).  A dump
is written under a temporary name and renamed (``classtrack._safefile``),
so an interrupted write never leaves a truncated dump, and a link planted
at a dump's name is refused, never written through.

A forked child that returns into ``classtrack run`` (an ``os.fork()``
child that does not call ``os._exit``) writes its dump there, as the
parent does, under its own pid.
"""
import array
import atexit
import glob
import io
import os
import secrets
import signal
import stat
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from classtrack import _core, _safefile
from classtrack._modfind import find_spec
from classtrack._monitor import DEFAULT_BUDGET, wait_thread_gone
from classtrack.classtracker import ClassTracker
from classtrack.running.watch import ImportWatch, Watcher, main_aliases, parse_names

USAGE = "[--follow-fork]"
_KEY = "classtrack_follow"
_MAIN_ALIAS = "__mp_main__"


def add_arguments(p: Any) -> None:
    p.add_argument("--follow-fork", action="store_true",
                   help="also track the program's child processes (os.fork, and "
                        "multiprocessing with the fork, spawn and forkserver start "
                        "methods); each process writes DUMP.<run>.<pid>.ctdump (DUMP without "
                        ".ctdump, <run> a token of this run): merge them with "
                        "'classtrack report DUMP.<run>.*.ctdump'")


def dump_base(dump: str) -> str:
    """NAME of ``NAME.<run>.<pid>.ctdump``: the dump's name without ``.ctdump``."""
    return dump[:-len(".ctdump")] if dump.endswith(".ctdump") and dump != ".ctdump" else dump


def dump_path(base: str, token: str, pid: int) -> str:
    """``NAME.<run>.<pid>.ctdump``: <run> is this run's token, 8 random hex
    digits that nobody can plant files for in advance and that tell this
    run's dumps from another's (``report`` merges one run at a time)."""
    return "%s.%s.%d.ctdump" % (base, token, pid)


def new_token() -> str:
    return secrets.token_hex(4)


def _clock_origin() -> float:
    """CLOCK_MONOTONIC when this process's engine clock read 0."""
    return time.monotonic() - _core.now()


class _Process:
    """What this process follows and where its dump goes."""

    def __init__(self, tracker: Any, watcher: Any, config: Dict[str, Any], child: bool,
                 rebase: bool, display_base: str) -> None:
        self.tracker = tracker
        self.watcher = watcher
        self.config = config            # what a spawned child needs, literals only
        self.child = child              # False in the process `classtrack run` started
        self.rebase = rebase            # a fresh interpreter: shift to the parent's clock
        self.display_base = display_base    # NAME as the user gave it (the parent's dumps)
        self.pid = os.getpid()
        self.done = False               # this process's dump is written (or being)
        self.finishing = False          # being written, by the thread that set done
        self.pending_term = False       # SIGTERM came while it was: die after
        self.written = threading.Event()
        self.streamer: Any = None       # a child's dump, written as it runs

    def stream(self) -> None:
        """In a child: write its dump as it runs, a frame per snapshot
        (``_dumpstream``), so that a worker killed by SIGKILL or the OOM
        killer leaves its dump too; before the child's first snapshot."""
        from classtrack._dumpstream import DumpStreamer  # lazy: start-up of run
        transform, death_offset = None, 0.0
        if self.rebase:
            death_offset = _clock_origin() - self.config["origin"]
            transform = lambda ds: _as_parent(ds, death_offset)  # noqa: E731
        self.streamer = DumpStreamer(self.tracker, self.own_dump(), named=False,
                                     transform=transform, death_offset=death_offset)
        # the hooks of the process it was forked from are not this child's
        self.tracker._snapshot_hooks[:] = [self.streamer.on_snapshot]

    def own_dump(self) -> str:
        base = self.config["base"] if self.child else self.display_base
        return dump_path(base, self.config["token"], self.pid)


_state: Optional[_Process] = None
_hooks_installed = False
_exit_installed = False
_real_exit: Callable[[int], Any] = os._exit


def _say(line: str) -> None:
    try:
        sys.stderr.write("classtrack: %s\n" % line)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


# -- in the parent ----------------------------------------------------------------------

def start(tracker: Any, watcher: Any, args: Any, dump: str, say: Callable[[str], None]) -> str:
    """Called by ``run`` once tracking is set up: without ``--follow-fork``
    nothing happens and `dump` is returned; with it, children are followed
    from now on and this process's dump name (``NAME.<run>.<pid>.ctdump``) is
    returned."""
    global _state
    if not getattr(args, "follow_fork", False):
        return dump
    base = dump_base(dump)
    config = {
        "track_class": list(args.track_class),
        "track_module": list(args.track_module),
        "track_package": list(getattr(args, "track_package", None) or []),
        "track_mine": bool(getattr(args, "track_mine", False)),
        "aliases": _aliases_of(args),
        "resolution": int(args.resolution),
        "trace": bool(args.trace),
        "reprs": not getattr(args, "no_repr", False),
        "interval": float(args.interval),
        "collect": bool(getattr(args, "collect", False)),
        "budget": float(getattr(args, "budget", DEFAULT_BUDGET)),
        "base": os.path.abspath(base),
        "token": new_token(),
        "origin": _clock_origin(),
        "parent": os.getpid(),
        "started": time.time(),
    }
    _state = _Process(tracker, watcher, config, child=False, rebase=False,
                      display_base=base)
    _install_hooks()
    return _state.own_dump()


def _aliases_of(args: Any) -> List[str]:
    """The names run gave the program's module (computed once, by run)."""
    if not args.module:
        return sorted(main_aliases(None, args.script, False))
    spec = find_spec(args.module)
    is_package = spec is not None and spec.submodule_search_locations is not None
    return sorted(main_aliases(args.module, None, is_package))


def this_process_dump(dump: str) -> str:
    """Called by ``run`` right before it writes its dump: the name for this
    process (a forked child that returned into ``run`` has its own pid);
    the exit hooks then leave the dump to ``run``."""
    st = _state
    if st is None:
        return dump
    st.done = True
    return st.own_dump()


def _install_hooks() -> None:
    """Once per process family: the fork hook, the spawn preparation data,
    the exit handler (inherited by forked children)."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    os.register_at_fork(after_in_child=_after_fork)
    # imported first so that its exit function (which ends and joins the
    # pool workers still alive) runs before ours, which counts their dumps
    # (lazy, both: multiprocessing costs start-up and only --follow-fork needs it)
    import multiprocessing.util  # noqa: F401
    import multiprocessing.spawn as spawn  # lazy: see above
    original = spawn.get_preparation_data
    if not getattr(original, "_classtrack_follow", False):
        def get_preparation_data(name: str) -> Dict[str, Any]:
            data = original(name)
            st = _state
            if st is not None and not st.done:
                data[_KEY] = _Bootstrap(st.config)
            return data
        get_preparation_data._classtrack_follow = True     # type: ignore[attr-defined]
        spawn.get_preparation_data = get_preparation_data
    atexit.register(_at_exit)


def _at_exit() -> None:
    st = _state
    if st is None:
        return
    if st.child:
        _finish("exit")
    elif st.pid == os.getpid():
        _parent_summary(st)


def _parent_summary(st: _Process) -> None:
    """One line: the dumps of this run (its token in their names; only
    regular files of this user count, a planted link or another user's
    file does not)."""
    pattern = "%s.%s.*.ctdump" % (st.display_base, st.config["token"])
    mine = []
    for path in glob.glob(glob.escape(st.display_base) + ".%s.*.ctdump" % st.config["token"]):
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
            mine.append(path)
    if len(mine) > 1:
        _say("%d dumps, one per process: %s (see: classtrack report %s)"
             % (len(mine), pattern, pattern))


class _Bootstrap:
    """An entry of the preparation data: unpickled in a spawn or forkserver
    child before the program's main module is imported, it starts the
    child's tracker.  It unpickles as a call of ``exec`` on a few lines that
    import classtrack and never raise: a child that cannot be followed is
    still started, with one line on stderr."""

    def __init__(self, config: Dict[str, Any]) -> None:
        self.config = config

    def __reduce__(self) -> Any:
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        source = (
            "try:\n"
            "    try:\n"
            "        from classtrack.running import follow\n"
            "    except ImportError:\n"
            "        import sys\n"
            "        sys.path.append(%(here)r)\n"
            "        try:\n"
            "            from classtrack.running import follow\n"
            "        finally:\n"
            "            sys.path.remove(%(here)r)\n"
            "    follow.child_start(%(config)r)\n"
            "except Exception as exc:\n"
            "    import sys\n"
            "    sys.stderr.write('classtrack: not following this process: %%s\\n' %% (exc,))\n"
            % {"here": here, "config": self.config})
        return (exec, (source, {}))


# -- in a child -------------------------------------------------------------------------

def _after_fork() -> None:
    """os.register_at_fork(after_in_child): the inherited tracker becomes
    this child's."""
    st = _state
    if st is None or st.done:
        return
    try:
        _become_fork_child(st)
    except Exception as exc:
        st.done = True          # nothing written for this child
        _say("not following process %d: %s" % (os.getpid(), exc))


def _become_fork_child(st: _Process) -> None:
    tracker, watcher = st.tracker, st.watcher
    st.pid = os.getpid()
    st.child = True
    st.finishing = st.pending_term = False
    st.written = threading.Event()
    global _finish_lock
    _finish_lock = threading.Lock()     # a copy may be held by a thread of the parent
    # a lock held by a thread of the parent stays held here: new ones
    tracker.snapshot_lock = threading.RLock()
    if hasattr(watcher, "_lock"):
        watcher._lock = threading.RLock()
        watcher._scanning = False
    # the parent's objects are the parent's: forget its records and
    # snapshots, keep the tracked classes (their hooks are copied)
    tracker._engine.clear_records()
    tracker._engine.clear_snapshots()
    tracker._views.clear()
    tracker.snapshots[:] = []
    tracker._periodic_thread = None     # threads do not survive a fork
    st.stream()
    tracker.create_snapshot("start")
    start_periodic(tracker, st.config["interval"], collect=st.config.get("collect", False),
                   budget=st.config.get("budget", DEFAULT_BUDGET))
    _install_exit_hooks()


def start_periodic(tracker: Any, interval: float, block_term: bool = True,
                   collect: bool = False, budget: float = DEFAULT_BUDGET) -> None:
    """The monitor thread of ``run --interval`` (checked by ``run``'s
    parser: >= 0, and 0 means no monitor, only the start and exit
    snapshots).  In a followed child (`block_term`), started with SIGTERM
    blocked so that it never receives the signal meant for the main thread:
    a Python handler runs in the main thread only, and a main thread waiting
    for work (a pool worker in its queue's lock) wakes only when the signal
    interrupts its own wait."""
    if interval <= 0:
        return
    if not block_term:
        tracker.start_periodic_snapshots(interval=interval, _delay_first=True,
                                         collect=collect, budget=budget)
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        tracker.start_periodic_snapshots(interval=interval, _delay_first=True,
                                         collect=collect, budget=budget)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def child_start(config: Dict[str, Any]) -> None:
    """Start tracking in a spawn or forkserver child (called by the
    preparation data's bootstrap), as ``run`` did in the parent."""
    global _state
    if _state is not None:
        return
    tracker = ClassTracker(reprs=config.get("reprs", True))
    names = parse_names(config["track_class"], config["track_module"], set(config["aliases"]))
    for n in names:
        if "__main__" in n.modules:
            n.modules = n.modules | {_MAIN_ALIAS}
    watcher = Watcher(tracker, names, config["resolution"], config["trace"], _say)
    # the program's main module may be here already (a forkserver imported it)
    watcher.own_main = None
    watcher.rescan()
    sys.meta_path.insert(0, ImportWatch(watcher))
    _add_class_callback(watcher)
    for package in config["track_package"]:
        if hasattr(tracker, "track_package"):
            tracker.track_package(package, resolution_level=config["resolution"],
                                  trace=config["trace"])
    if config["track_mine"] and hasattr(tracker, "_watch"):
        from classtrack import _modwatch  # lazy: start-up; only --track-mine needs it
        tracker._watch(_modwatch.mine_predicate(), config["resolution"], False,
                       config["trace"], "the program's classes")
    _state = _Process(tracker, watcher, config, child=True, rebase=True,
                      display_base=config["base"])
    _state.stream()
    tracker.create_snapshot("start")
    start_periodic(tracker, config["interval"], collect=config.get("collect", False),
                   budget=config.get("budget", DEFAULT_BUDGET))
    import classtrack.classtracker_stats  # noqa: F401  (no import at exit: see _on_sigterm)
    _install_hooks()            # for its own children
    _install_exit_hooks()


def _add_class_callback(watcher: Any) -> None:
    _class_callback(watcher, True)


def _remove_class_callback(watcher: Any) -> None:
    _class_callback(watcher, False)


def _class_callback(watcher: Any, on: bool) -> None:
    """The watcher's call at every class statement, on or off."""
    try:
        # lazy: start-up time; a child may import an older classtrack without it
        from classtrack import _modwatch
    except ImportError:
        _core.watch_classes(watcher if on else None)
    else:
        if on:
            _modwatch.add_class_callback(watcher)
        else:
            _modwatch.remove_class_callback(watcher)


_main_end: Optional[Callable[[str], Any]] = None
_main_pid = 0


def guard_main(end: Callable[[str], Any]) -> None:
    """Called by ``run`` in its own process, followed or not: when the
    program ends by ``os._exit`` or dies of SIGTERM (while it has not taken
    the signal), ``end(label)`` writes the run's dump first, as it does
    when the program returns.  `end` must be safe to call more than once
    and from another thread (``run``'s is)."""
    global _main_end, _main_pid
    _main_end, _main_pid = end, os.getpid()
    _install_exit_hooks()


def _end_here(label: str) -> None:
    """Write this process's dump: run's own, or a followed child's."""
    if _main_end is not None and os.getpid() == _main_pid:
        try:
            _main_end(label)
        except BaseException as exc:    # never fail the program's exit
            _say("cannot write the dump: %s" % (exc,))
        return
    _finish(label)


def _install_exit_hooks() -> None:
    """In a child, or run's own process: os._exit, and SIGTERM while the
    program has not taken it."""
    global _exit_installed
    if not _exit_installed:
        _exit_installed = True
        os._exit = _exit_wrapper
    _watch_sigterm()


_term_fds: Optional[tuple] = None
# guards _Process.done / finishing / pending_term between the exit paths
# (the main thread) and the SIGTERM thread
_finish_lock = threading.Lock()


def _watch_sigterm() -> None:
    """SIGTERM at its default disposition becomes classtrack's, below
    Python's signal module (``_core.term_watch``, see termwatch.c): the
    program still sees SIG_DFL from ``signal.getsignal``, keeps its own
    ``set_wakeup_fd``, and replaces classtrack's handler by installing its
    own.  The signal wakes a thread (``_on_sigterm``) that writes the dump
    and then dies of SIGTERM, as the process would have."""
    global _term_fds
    r, w = os.pipe()
    os.set_blocking(w, False)
    if not _core.term_watch(w):         # the program handles or ignores SIGTERM
        os.close(r)
        os.close(w)
        return
    inherited, _term_fds = _term_fds, (r, w)
    if inherited is not None:           # the parent process's, copied by fork
        for fd in inherited:
            try:
                os.close(fd)
            except OSError:
                pass
    _start_term_thread()
    global _fork_pause_installed
    if not _fork_pause_installed:
        _fork_pause_installed = True
        os.register_at_fork(before=_pause_term_thread, after_in_parent=_start_term_thread)


_term_thread: Optional[threading.Thread] = None
_fork_pause_installed = False
_PAUSE = b"P"           # what the handler writes is b"T"


def _start_term_thread() -> None:
    """The thread that waits for SIGTERM; started with SIGTERM blocked, so
    that the signal goes to the program's threads."""
    global _term_thread
    if _term_fds is None or (_term_thread is not None and _term_thread.is_alive()):
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        _term_thread = threading.Thread(target=_on_sigterm, args=(_term_fds[0],),
                                        name="classtrack-sigterm", daemon=True)
        _term_thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _pause_term_thread() -> None:
    """Before os.fork(): the thread ends, so that the program forks as a
    single-threaded process if it is one (3.12+ warns otherwise); it starts
    again after the fork in the parent.  A SIGTERM meanwhile waits in the
    pipe for it."""
    thread = _term_thread
    if thread is None or not thread.is_alive() or thread is threading.current_thread() \
            or _term_fds is None:
        return
    try:
        os.write(_term_fds[1], _PAUSE)
    except OSError:
        return
    thread.join(1.0)
    wait_thread_gone(thread)


def _on_sigterm(r: int) -> None:
    while True:
        try:
            data = os.read(r, 1)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data or data == _PAUSE:
            return
        break
    st = _state
    if not (_main_end is not None and os.getpid() == _main_pid):
        with _finish_lock:
            if st is not None and st.finishing:
                st.pending_term = True  # the exit path is writing it: it dies after
                return
    _end_here("terminated")
    _core.term_die()
    _real_exit(128 + signal.SIGTERM)    # not reached: SIGTERM kills first


def _exit_wrapper(code: int) -> None:
    _end_here("exit")
    _real_exit(code)


def _finish(label: str) -> None:
    """Write this child's dump, once; a second caller waits (bounded) for
    the first to be done, so that an exit does not cut a dump short."""
    st = _state
    if st is None or not st.child or st.pid != os.getpid():
        return
    with _finish_lock:
        if st.done:
            writer = None if not st.finishing else st.written
        else:
            st.done = st.finishing = True
            writer = False
    if writer is not False:
        if writer is not None:
            writer.wait(30.0)
        return
    try:
        _write_child_dump(st, label)
    except BaseException as exc:    # never fail the program's exit
        _say("process %d: cannot write its dump %s: %s"
             % (os.getpid(), st.own_dump(), getattr(exc, "strerror", None) or exc))
    finally:
        with _finish_lock:
            st.finishing = False
            die = st.pending_term
        st.written.set()
    if die:
        _core.term_die()
        _real_exit(128 + signal.SIGTERM)


def _write_child_dump(st: _Process, label: str) -> None:
    # lazy: start-up time of classtrack run (child_start and run import it ahead)
    from classtrack.classtracker_stats import Stats
    tracker = st.tracker
    try:
        _remove_class_callback(st.watcher)
    except Exception:
        pass
    tracker.stop_periodic_snapshots()
    try:
        st.watcher.rescan()
        tracker.create_snapshot(label, collect=True)
    except Exception as exc:    # e.g. SIGTERM inside a snapshot: dump what there is
        _say("process %d: no %s snapshot: %s" % (os.getpid(), label, exc))
    tracker.detach_all_classes()
    streamer = st.streamer
    if streamer is not None and streamer.active and streamer.finish():
        return
    buf = io.BytesIO()
    Stats(tracker=tracker).dump_stats(buf, close=False)
    data = buf.getvalue()
    if st.rebase:
        offset = _clock_origin() - st.config["origin"]
        info: Dict[str, Any] = {}
        raw = _core.dump_read(io.BytesIO(data), info)
        out = io.BytesIO()
        _core.dump_write(out, _as_parent(raw, offset), (info["pid"], info["ppid"]))
        data = out.getvalue()
    # a new file renamed over the name; a link found there is refused
    with _safefile.replacing(st.own_dump(), named=False) as f:
        f.write(data)


def _main_name(name: str) -> str:
    if name.startswith(_MAIN_ALIAS + "."):
        return "__main__." + name[len(_MAIN_ALIAS) + 1:]
    return name


def _as_parent(raw: tuple, offset: float) -> tuple:
    """A dataset on the parent's clock, with ``__mp_main__`` names written
    as the parent's ``__main__``."""
    (names, classes, rec_id, rec_name, rec_class, rec_birth, rec_death, rec_trace,
     reprs, traces, snaps) = raw
    births = array.array("d")
    births.frombytes(rec_birth)
    deaths = array.array("d")
    deaths.frombytes(rec_death)
    births = array.array("d", [t + offset for t in births])
    deaths = array.array("d", [t + offset if t else 0.0 for t in deaths])
    # lazy: start-up time of classtrack run; a followed child has it already
    # (child_start imports classtracker_stats, which imports it)
    from classtrack._rows import snap_row
    snaps = [row._replace(time=row.time + offset) for row in map(snap_row, snaps)]
    return ([_main_name(n) for n in names], [_main_name(c) for c in classes], rec_id,
            rec_name, rec_class, births.tobytes(), deaths.tobytes(), rec_trace, reprs, traces,
            snaps)
