"""Background monitoring: periodic snapshots with deadlines and a budget."""
import gc
import json
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from helpers import wait_for_snapshots, wait_until



class Node:
    def __init__(self, i=0):
        self.value = i * 1000 + 7
        self.children = []


def busy_until(predicate, at_least, timeout=30.0):
    """Keep this (main) thread busy running Python, never letting the GIL
    go of its own accord, for `at_least` seconds and until `predicate()`
    holds; fail after `timeout` seconds.  The seconds it took."""
    x = 0
    start = time.monotonic()
    while True:
        x += 1
        elapsed = time.monotonic() - start
        if elapsed >= at_least and predicate():
            return elapsed
        assert elapsed < timeout, "busy for %g s and %r never held" % (timeout, predicate)


def test_thread_identity_and_interval_change(tracker):
    tracker.start_periodic_snapshots(interval=5.0)
    thread = tracker._periodic_thread
    assert thread.name == "BackgroundMonitor" and thread.daemon
    assert thread.interval == 5.0
    changed = time.monotonic()
    tracker.start_periodic_snapshots(interval=0.05)
    assert tracker._periodic_thread is thread and thread.interval == 0.05
    # the new interval took effect at once: at the old one, five snapshots
    # would take 20 s, and not even the second would come within 5 s
    wait_for_snapshots(tracker, 5, timeout=4.5)
    assert time.monotonic() - changed < 5.0


def test_stop_is_prompt_and_clears_thread(tracker):
    tracker.start_periodic_snapshots(interval=30.0)
    thread = tracker._periodic_thread
    # the first snapshot is taken at once; then the thread waits 30 s
    wait_for_snapshots(tracker, 1)
    t0 = time.monotonic()
    tracker.stop_periodic_snapshots()
    # the thread ended (stop gives up after STOP_TIMEOUT, 5 s, leaving it
    # alive), well before its next snapshot was due
    assert not thread.is_alive()
    assert time.monotonic() - t0 < 2.0
    assert tracker._periodic_thread is None
    tracker.stop_periodic_snapshots()  # stopping twice is fine


def test_bad_arguments(tracker):
    for bad in (0, -1, "1", None):
        with pytest.raises(ValueError, match="interval"):
            tracker.start_periodic_snapshots(interval=bad)
    with pytest.raises(ValueError, match="budget"):
        tracker.start_periodic_snapshots(interval=1, budget=0)


def spin_cpu(seconds):
    """Burn this thread's CPU time (not wall time) for `seconds`."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1
    return x


class Costly:
    """Sizing it (once per snapshot) burns `cost` seconds of the sizing
    thread's CPU time."""

    def __init__(self, cost):
        self.cost = cost

    def __sizeof__(self):
        if self.cost:
            spin_cpu(self.cost)
        return object.__sizeof__(self)


def test_deadline_scheduling_does_not_drift(tracker):
    c = Costly(0.008)               # every snapshot costs 8 ms or more
    tracker.track_object(c)
    # the whole time may go to snapshots: this is about cadence, not budget
    started = time.monotonic()
    tracker.start_periodic_snapshots(interval=0.05, budget=1.0)
    wait_for_snapshots(tracker, 40)
    tracker.stop_periodic_snapshots()
    elapsed = time.monotonic() - started
    count = len(tracker.snapshots)
    # the first at once, then one per 50 ms at most
    assert count <= elapsed / 0.05 + 2, (count, elapsed)
    stamps = [s.timestamp for s in tracker.snapshots]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    # Each snapshot is due at start + k * interval: a late one (the machine
    # busy) is followed by a shorter gap, so the typical gap is the
    # interval.  Waiting an interval after each snapshot instead would make
    # every gap the interval plus the snapshot's 8 ms or more.  (The median,
    # not the mean: a wake-up that is late by more than an interval resyncs,
    # leaving one long gap that says nothing about drift.)
    assert abs(statistics.median(gaps) - 0.05) < 0.004, gaps


def test_budget_stretches_and_recovers(tracker):
    c = Costly(0.02)                # 20 ms of CPU per snapshot
    tracker.track_object(c)
    started = time.monotonic()
    tracker.start_periodic_snapshots(interval=0.05, budget=0.1)
    wait_for_snapshots(tracker, 5)
    count = len(tracker.snapshots)          # taken before the time: a bound
    elapsed = time.monotonic() - started
    stretched = [s for s in tracker.snapshots if s.stretched]
    assert stretched, "a 20 ms snapshot every 50 ms is over a 10% budget"
    for s in stretched:
        assert s.interval == 0.05 and s.effective_interval >= 0.19
    # at most a 10% share: one snapshot per 0.19 s or more after the first
    # (at 50 ms, five take 0.2 s: 3 would be the bound then)
    assert count <= elapsed / 0.19 + 2, (count, elapsed)
    c.cost = 0
    cheap_from = len(tracker.snapshots) + 1     # the one in progress may be costly
    wait_until(lambda: len(tracker.snapshots) > cheap_from
               and not tracker.snapshots[-1].stretched,
               what="an unstretched snapshot once they are cheap again")
    tracker.stop_periodic_snapshots()
    assert not tracker.snapshots[-1].stretched
    assert tracker.snapshots[-1].effective_interval == 0.05


def test_snapshot_that_waits_without_the_gil_is_not_charged(tracker):
    # The budget is the program's time: a snapshot that sleeps has let the
    # GIL go and cost the program nothing, so the cadence is kept.
    class Waits:
        def __sizeof__(self):
            time.sleep(0.01)
            return object.__sizeof__(self)

    w = Waits()
    tracker.track_object(w)
    # a collection of the test process's heap landing in a snapshot is CPU
    # the snapshot really spends (tens of ms here): not what this measures
    gc.disable()
    try:
        tracker.start_periodic_snapshots(interval=0.05, budget=0.05)
        wait_for_snapshots(tracker, 15)
        tracker.stop_periodic_snapshots()
    finally:
        gc.enable()
    # charged by wall time, each 10 ms snapshot would stretch the interval
    # to 0.2 s: every snapshot after the first would say so
    assert not any(s.stretched for s in tracker.snapshots)
    assert all(s.effective_interval == 0.05 for s in tracker.snapshots)


CADENCE_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from classtrack.classtracker import ClassTracker
    t = ClassTracker()
    t.start_periodic_snapshots(%(interval)r)
    end = time.monotonic() + %(seconds)r
    x = 0
    while True:                      # a busy pure-Python main thread
        for i in range(10000):
            x += i * i
        if time.monotonic() >= end:
            break
    t.stop_periodic_snapshots()
    stamps = [s.timestamp for s in t.snapshots]
    late = sum(round((b - a) / %(interval)r) - 1 for a, b in zip(stamps, stamps[1:]))
    print(json.dumps([len(t.snapshots), sum(s.stretched for s in t.snapshots), late]))
""")


def test_cadence_holds_under_a_busy_main_thread():
    # Issue 13: charged by wall time (which includes waiting for the GIL
    # the main thread holds) this took 50-58 snapshots instead of 60.  A
    # fresh interpreter, as a user's program starts.
    script = CADENCE_SCRIPT % {"interval": 0.05, "seconds": 3.0}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    count, stretched, missed = json.loads(proc.stdout)
    assert stretched == 0, (count, stretched, missed)
    # 60 due in 3 s.  Those the monitor missed because it did not run for
    # over an interval (the machine loaded: the gap before the next one
    # spans several intervals) are not the budget's doing; stretching
    # (what wall-time charging did) is ruled out above.
    assert count <= 63, (count, stretched, missed)
    assert count + missed >= 57, (count, stretched, missed)


STARVED_SCRIPT = textwrap.dedent("""
    import json, os, subprocess, sys, time
    from classtrack.classtracker import ClassTracker
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    # a CPU hog on the same CPU: this program gets about half of it
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    os.sched_setaffinity(hog.pid, {cpu})
    class Costly:
        def __sizeof__(self):
            end = time.thread_time() + 0.01     # 10 ms of CPU per snapshot
            while time.thread_time() < end:
                pass
            return object.__sizeof__(self)
    try:
        t = ClassTracker()
        c = Costly()
        t.track_object(c)
        main_cpu = time.thread_time()
        t.start_periodic_snapshots(0.05, budget=0.05)
        end = time.monotonic() + 4.0
        x = 0
        while time.monotonic() < end:       # a busy main thread
            for i in range(1000):
                x += i
        t.stop_periodic_snapshots()
        main_cpu = time.thread_time() - main_cpu
    finally:
        hog.kill()
        hog.wait()
    costs = [s.cost for s in t.snapshots]
    print(json.dumps([main_cpu, costs]))
""")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity")
                    or not os.path.exists("/proc/self/schedstat"),
                    reason="needs CPU affinity and /proc/self/schedstat")
def test_budget_is_a_share_of_the_cpu_a_starved_program_gets():
    # Sharing its CPU with a hog, a busy program gets about half a second of
    # CPU per second.  Counted against wall time, the 5% budget let the
    # monitor take 10% of what the program got; counted against the
    # program's time (wall time less its waits for a CPU), 5% or a little
    # more (its waits for the GIL during the snapshots count as its time).
    proc = subprocess.run([sys.executable, "-c", STARVED_SCRIPT], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    main_cpu, costs = json.loads(proc.stdout)
    assert len(costs) >= 3, costs
    # all but the last (which may have started just before the end)
    share = sum(costs[:-1]) / main_cpu
    assert share <= 0.07, (share, main_cpu, costs)


def _thread_cpu(thread):
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


@pytest.mark.skipif(not hasattr(time, "pthread_getcpuclockid"),
                    reason="needs a per-thread CPU clock")
def test_expensive_snapshots_keep_to_the_budget_under_a_busy_main_thread(tracker):
    # many objects sized three levels deep: tens of ms of CPU per snapshot
    tracker.track_class(Node, resolution_level=3)
    keep = [Node(i) for i in range(5000)]
    for n in keep:
        n.children = [str(n.value)] * 3
    t0 = time.thread_time()
    tracker.create_snapshot()
    one = time.thread_time() - t0
    assert one > 0.0025, "a snapshot must cost over budget * interval here: %r" % one
    tracker.start_periodic_snapshots(interval=0.05, budget=0.05)
    thread = tracker._periodic_thread
    started = time.monotonic()
    # busy for 2 s, and until the monitor took 3 snapshots (the checks
    # below need a few)
    busy_until(lambda: len(tracker.snapshots) >= 4, at_least=2.0)
    cpu = _thread_cpu(thread)
    elapsed = time.monotonic() - started
    tracker.stop_periodic_snapshots()
    monitored = tracker.snapshots[1:]
    assert all(s.stretched for s in monitored[1:])
    assert all(s.effective_interval > 0.2 for s in monitored[1:])
    # The budget, in the costs the monitor itself measured (this thread's
    # CPU seconds, snapshot.cost): each snapshot starts at least cost/budget
    # after the one before, so all but the last cost at most budget * span
    # (slack: the few ms between a snapshot's planned start and its
    # timestamp, the GIL being held by the busy main thread).
    costs = [s.cost for s in monitored]
    span = monitored[-1].timestamp - monitored[0].timestamp
    assert sum(costs[:-1]) <= 0.05 * span + 0.0005 * len(costs) + 0.002, (costs, span)
    # what the thread spent outside its snapshots (waits, start) is small,
    # so its whole CPU time keeps to the budget plus the first and last
    # snapshot.  (Costs, not the main thread's measure of one snapshot: a
    # snapshot costs more CPU while another thread competes for the cores.)
    assert cpu <= sum(costs) + 0.03, (cpu, costs)
    assert cpu <= 0.05 * elapsed + 2 * max(costs) + 0.03, (cpu, elapsed, costs)
    # unstretched it would have taken one per 50 ms (40 in 2 s); stretched,
    # one per effective interval after the first (the count before the stop:
    # the snapshot in progress then is added when it ends)
    least = min(s.effective_interval for s in monitored[1:])
    assert len(monitored) <= elapsed / least + 2, (len(monitored), elapsed, least)
    del keep


def test_monitor_with_nothing_tracked(tracker):
    tracker.start_periodic_snapshots(interval=0.02)
    wait_for_snapshots(tracker, 10)
    tracker.stop_periodic_snapshots()
    s = tracker.snapshots[-1]
    assert s.tracked_total == 0 and s.system_total.rss > 0


def test_concurrent_manual_snapshots_not_lost(tracker):
    tracker.track_class(Node)
    keep = [Node(i) for i in range(500)]
    tracker.start_periodic_snapshots(interval=0.01)

    def manual(k):
        for j in range(10):
            tracker.create_snapshot("manual-%d-%d" % (k, j))
            keep.append(Node())

    threads = [threading.Thread(target=manual, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tracker.stop_periodic_snapshots()
    descs = [s.desc for s in tracker.snapshots]
    assert sum(d.startswith("manual-") for d in descs) == 30
    stamps = [s.timestamp for s in tracker.snapshots]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("ending", ["normal", "raise", "exit3"])
def test_interpreter_exit_with_monitor_running(ending):
    script = textwrap.dedent("""
        import sys
        from classtrack.classtracker import ClassTracker
        class Node:
            def __init__(self):
                self.payload = [0] * 10
        t = ClassTracker()
        t.track_class(Node)
        keep = [Node() for _ in range(20000)]
        t.start_periodic_snapshots(interval=0.001)
        x = 0
        for i in range(200000):
            x += i
        ending = %r
        if ending == "raise":
            raise RuntimeError("boom")
        if ending == "exit3":
            sys.exit(3)
    """ % ending)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=60)
    expected = {"normal": 0, "raise": 1, "exit3": 3}[ending]
    assert proc.returncode == expected, proc.stderr
    if ending == "raise":
        assert proc.stderr.count("Traceback") == 1 and "boom" in proc.stderr
    else:
        assert proc.stderr == ""


def test_tracking_during_interpreter_teardown():
    # a finalizer that runs while modules are being torn down still creates
    # tracked instances and takes a snapshot: the tracker owns what it needs
    script = textwrap.dedent("""
        from classtrack.classtracker import ClassTracker
        from classtrack import asizeof
        class Node:
            def __init__(self):
                self.x = [1, 2]
        class Late:
            def __del__(self):
                objs = [Node() for _ in range(100)]
                t.create_snapshot("late")
                asizeof.asizeof(objs)
        t = ClassTracker()
        t.track_class(Node)
        keep = [Node() for _ in range(10)]
        late = Late()
        t.start_periodic_snapshots(0.001)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
