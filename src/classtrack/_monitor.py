"""The background monitor of a ClassTracker (``start_periodic_snapshots``):
``PeriodicThread``, its budget, and what every monitor of the process
does around ``os.fork()`` and at exit.

``classtrack.classtracker`` re-exports ``PeriodicThread`` (Pympler's name
for it); this module knows the tracker only through the methods the
thread calls on it (``_monitor_snapshot``, ``start_periodic_snapshots``,
``stop_periodic_snapshots``).
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import warnings
import weakref
from typing import Any, List, Optional, Tuple

# The share of the program's time a monitor's snapshots may take, unless
# told otherwise (start_periodic_snapshots, run --budget).  3%: a whole
# program under `run` should cost little more than it does untracked
# (target 1.15x, goal 1.05x on the Sphinx build of bench_program.py);
# only snapshots that cost more than 3% of the interval are spaced out
# (Sphinx: one every 3-4 s of 100,000 live instances instead of 2-3 s).
DEFAULT_BUDGET = 0.03


def _thread_cpu_clock() -> Any:
    """time.thread_time where the platform has a per-thread CPU clock,
    else time.monotonic (then a snapshot's cost is its wall time)."""
    try:
        time.thread_time()
    except (AttributeError, OSError):  # pragma: no cover - not on Linux
        return time.monotonic
    return time.thread_time


def _runqueue_wait() -> Optional[float]:
    """Seconds the program's main thread has spent runnable but waiting
    for a CPU (Linux: the second field of /proc/self/schedstat, which is
    the main thread's), or None where that is not known."""
    try:
        with open("/proc/self/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class PeriodicThread(threading.Thread):
    """The background monitor: a daemon thread named ``BackgroundMonitor``
    taking a snapshot every ``interval`` seconds.

    Deadline scheduling: the k-th snapshot is due at start + k * interval,
    so the cadence does not drift with the cost of each snapshot.  A cost
    budget bounds the monitor's share of the program's time (``budget``,
    default 3%): when a snapshot costs more than ``budget * interval``,
    the effective interval stretches to ``cost / budget`` (the snapshot
    records it in ``effective_interval`` and ``stretched``), and returns to
    the requested interval when snapshots get cheaper again.

    The program's time, against which the budget is counted, is wall time
    less the time the program's main thread waited for a CPU (Linux's
    run-queue delay, /proc/self/schedstat; elsewhere plain wall time): on
    a loaded machine a CPU-bound program gets less than a second of CPU
    per second, and a snapshot per wall-clock interval would take a larger
    share of its work than the budget says.  Time the program sleeps or
    blocks by itself counts as its time (an idle program is not starved of
    snapshots).  A stop
    request wakes the thread at once; only a snapshot in progress delays it,
    and not for long: ``stop_periodic_snapshots`` waits ``STOP_TIMEOUT``
    seconds at most (see there).

    A snapshot's cost is the CPU time of this thread while taking it
    (``time.thread_time()`` around the snapshot), not its wall time.  The
    program loses only the time this thread holds the GIL, and the thread
    holds the GIL whenever it runs Python or sizes objects, so its CPU time
    is what the program pays.  Wall time also counts the waits for the GIL
    while the program runs (the snapshot lets the GIL go to read /proc and
    then waits up to ``sys.getswitchinterval()`` to get it back): with a
    busy main thread that made a 0.1 ms snapshot cost several ms and
    stretched the interval although the program lost nothing.  What CPU
    time leaves out costs the program nothing either: a snapshot that
    sleeps or blocks (a ``__sizeof__`` that waits, say) has let the GIL go,
    so the program runs meanwhile.  The only over-count is CPU time spent
    without the GIL in parallel with the program (the /proc read), which
    errs on the side of the budget.
    """

    def __init__(self, tracker: Any, interval: float, *args: Any,
                 budget: float = DEFAULT_BUDGET, **kwargs: Any) -> None:
        self.interval = interval
        self.budget = budget
        self.effective_interval = interval
        self.tracker = tracker
        self.stop = False
        # set when a stop gave up waiting for the snapshot in progress: that
        # snapshot is then dropped when it ends.  Guarded by _outcome, which
        # the thread holds while it keeps or drops a snapshot, so that no
        # snapshot is added after the stop returned.
        self.abandoned = False
        self._outcome = threading.Lock()
        # the first snapshot one interval after the start, not at once (as
        # Pympler's monitor takes it): for `classtrack run`, whose "start"
        # snapshot was just taken
        self.delay_first = False
        self.collect = False            # gc.collect() before each snapshot
        self._wake = threading.Event()
        self._replan = False
        super().__init__(*args, **kwargs)

    def run(self) -> None:
        cpu_clock = _thread_cpu_clock()
        due = started = time.monotonic()
        if self.delay_first:            # not at once: one interval after the start
            due += self.interval
        needed = 0.0        # program time the last snapshot's cost asks for
        queued_at = None    # _runqueue_wait() when it started
        while not self.stop:
            if self._replan:  # the interval changed: due one new interval after the last
                self._replan = False
                due = started + self.interval
            now = time.monotonic()
            if now < due:
                self._wake.wait(due - now)
                self._wake.clear()
                continue
            # the budget's due time: `needed` seconds of the program's time
            # after the last start, i.e. later by what it waited for a CPU
            # (one read of /proc per snapshot: it lets the GIL go, and a
            # busy main thread may keep it for a switch interval)
            queued = _runqueue_wait()
            span = needed
            if queued is not None and queued_at is not None:
                span += max(0.0, queued - queued_at)
            if span > self.interval and now < started + span:
                due = started + span
                continue
            self.effective_interval = span if span > self.interval else self.interval
            started = time.monotonic()
            queued_at = queued
            cpu_started = cpu_clock()
            self.tracker._monitor_snapshot(self)
            cost = cpu_clock() - cpu_started
            interval = self.interval
            needed = cost / self.budget if self.budget > 0 else 0.0
            # the plan (read by the metrics while the thread waits); the
            # program's waits for a CPU may stretch it further
            if needed > interval:
                self.effective_interval = needed
                due = started + needed
            else:
                self.effective_interval = interval
                due += interval
                if due <= started:  # fell behind (e.g. after a stretch): resync
                    due = started + interval

    def request_stop(self) -> None:
        self.stop = True
        self._wake.set()

    def stop_and_wait(self, deadline: float) -> bool:
        """Request a stop and wait until ``time.monotonic()`` reaches
        `deadline` at most for the thread to end.  False if it is still
        inside a snapshot then: the snapshot will be dropped when it ends,
        and one line on stderr says so (once).  Called from the thread
        itself (by a snapshot's code) it only requests the stop."""
        self.request_stop()
        if self is threading.current_thread():
            return True
        if self.abandoned:
            return False
        self.join(max(0.0, deadline - time.monotonic()))
        with self._outcome:
            if not self.is_alive():
                return True
            self.abandoned = True
        try:
            sys.stderr.write(
                "classtrack: the background monitor is still inside a snapshot after "
                "%g s (a __repr__ or __sizeof__ of a tracked object may be waiting for "
                "this thread); not waiting for it\n" % STOP_TIMEOUT)
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        return False

    def change_interval(self, interval: float) -> None:
        self.interval = interval
        self._replan = True
        self._wake.set()


_monitors: "weakref.WeakSet[PeriodicThread]" = weakref.WeakSet()

# Monitors paused around an os.fork() of the program: a process with a
# thread of ours in it would be "multi-threaded" to fork() (3.12+ warns,
# and a lock held by the thread would stay held in the child).  They stop
# before the fork and start again after it in the parent; in the child,
# following it is `run --follow-fork`'s business.
_paused: List[Tuple[Any, float, float]] = []


def wait_thread_gone(thread: threading.Thread, timeout: float = 0.2) -> None:
    """After a join: wait (at most `timeout` seconds) until the OS no
    longer lists the thread.  join() returns once Python is done with the
    thread, while its OS thread may still be exiting; a fork right then
    counts it (3.12+ warns of a multi-threaded fork, and
    _quiet_fork_warning sees two threads).  Linux: /proc/self/task."""
    tid = getattr(thread, "native_id", None)
    if tid is None or thread.is_alive():
        return
    task = "/proc/self/task/%d" % tid
    deadline = time.monotonic() + timeout
    while os.path.exists(task) and time.monotonic() < deadline:
        time.sleep(0.0002)


def _pause_monitors() -> None:
    for thread in list(_monitors):
        tracker = thread.tracker
        if thread.is_alive() and not thread.abandoned \
                and thread is not threading.current_thread() \
                and tracker._periodic_thread is thread:
            _paused.append((tracker, thread.interval, thread.budget))
            tracker.stop_periodic_snapshots()
            wait_thread_gone(thread)


def _resume_monitors() -> None:
    paused = list(_paused)
    _paused[:] = []
    for tracker, interval, budget in paused:
        if tracker._periodic_thread is None:
            tracker.start_periodic_snapshots(interval=interval, budget=budget,
                                             _delay_first=True)


def _forget_paused() -> None:
    _paused[:] = []


# 3.13 counts a process's threads for its fork() warning after the
# after-fork hooks ran, when the paused threads run again: there, a filter
# for this one warning is set while the program itself has no other thread
# (it would get no warning without classtrack), and taken away at the next
# fork when it has.  Registered first, so that it runs after the pauses.
_fork_filter: Optional[tuple] = None


def _os_threads() -> int:
    """Threads of this process (Linux /proc), else those threading knows."""
    try:
        with open("/proc/self/stat", "rb") as f:
            return int(f.read().rpartition(b")")[2].split()[17])
    except (OSError, ValueError, IndexError):
        return threading.active_count()


def _quiet_fork_warning() -> None:
    global _fork_filter
    if _fork_filter is not None:
        try:
            warnings.filters.remove(_fork_filter)
        except ValueError:
            pass
        _fork_filter = None
    if _os_threads() == 1:
        warnings.filterwarnings(
            "ignore", message=r"This process \(pid=%d\) is multi-threaded" % os.getpid(),
            category=DeprecationWarning)
        _fork_filter = warnings.filters[0]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_quiet_fork_warning)
    os.register_at_fork(before=_pause_monitors, after_in_parent=_resume_monitors,
                        after_in_child=_forget_paused)


# Seconds a stop waits for the snapshot in progress.  A snapshot runs the
# tracked objects' __repr__ and __sizeof__, which may wait for the very
# thread that stops the monitor (a lock it holds): waiting for ever would
# hang it, at interpreter exit too.
STOP_TIMEOUT = 5.0


@atexit.register
def _stop_monitors() -> None:
    """Stop running monitors before the interpreter tears down (a daemon
    thread in the middle of a snapshot would otherwise be frozen there),
    waiting ``STOP_TIMEOUT`` seconds at most in all."""
    threads = list(_monitors)
    for thread in threads:
        thread.request_stop()
    deadline = time.monotonic() + STOP_TIMEOUT
    for thread in threads:
        if thread.is_alive():
            thread.stop_and_wait(deadline)
