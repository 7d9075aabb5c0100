"""Background monitoring: periodic snapshots with deadlines and a budget."""
import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest



class Node:
    def __init__(self, i=0):
        self.value = i * 1000 + 7
        self.children = []


def busy(seconds):
    x = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        x += 1
    return x


def test_thread_identity_and_interval_change(tracker):
    tracker.start_periodic_snapshots(interval=5.0)
    thread = tracker._periodic_thread
    assert thread.name == "BackgroundMonitor" and thread.daemon
    assert thread.interval == 5.0
    tracker.start_periodic_snapshots(interval=0.05)
    assert tracker._periodic_thread is thread and thread.interval == 0.05
    busy(0.5)
    assert len(tracker.snapshots) >= 5  # the new interval took effect at once


def test_stop_is_prompt_and_clears_thread(tracker):
    tracker.start_periodic_snapshots(interval=30.0)
    time.sleep(0.05)
    t0 = time.monotonic()
    tracker.stop_periodic_snapshots()
    assert time.monotonic() - t0 < 0.1
    assert tracker._periodic_thread is None
    tracker.stop_periodic_snapshots()  # stopping twice is fine


def test_bad_arguments(tracker):
    for bad in (0, -1, "1", None):
        with pytest.raises(ValueError, match="interval"):
            tracker.start_periodic_snapshots(interval=bad)
    with pytest.raises(ValueError, match="budget"):
        tracker.start_periodic_snapshots(interval=1, budget=0)


def test_deadline_scheduling_does_not_drift(tracker):
    tracker.track_class(Node)
    keep = [Node(i) for i in range(2000)]
    # the whole time may go to snapshots: this is about cadence, not budget
    tracker.start_periodic_snapshots(interval=0.05, budget=1.0)
    busy(2.0)
    tracker.stop_periodic_snapshots()
    assert 38 <= len(tracker.snapshots) <= 42, len(tracker.snapshots)
    stamps = [s.timestamp for s in tracker.snapshots]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert abs(sum(gaps) / len(gaps) - 0.05) < 0.005
    del keep


def spin_cpu(seconds):
    """Burn this thread's CPU time (not wall time) for `seconds`."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1
    return x


def test_budget_stretches_and_recovers(tracker):
    class Costly:
        expensive = True

        def __sizeof__(self):
            if Costly.expensive:
                spin_cpu(0.02)  # 20 ms of CPU per snapshot
            return object.__sizeof__(self)

    c = Costly()
    tracker.track_object(c)
    tracker.start_periodic_snapshots(interval=0.05, budget=0.1)
    time.sleep(1.0)
    stretched = [s for s in tracker.snapshots if s.stretched]
    assert stretched, "a 20 ms snapshot every 50 ms is over a 10% budget"
    for s in stretched:
        assert s.interval == 0.05 and s.effective_interval >= 0.19
    # at most a 10% share: about 1.0 s / 0.2 s snapshots, not 20
    assert len(tracker.snapshots) <= 8
    Costly.expensive = False
    time.sleep(0.6)
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
        time.sleep(1.0)
        tracker.stop_periodic_snapshots()
    finally:
        gc.enable()
    # charged by wall time, each 10 ms snapshot would stretch to 0.2 s (<= 6)
    assert len(tracker.snapshots) >= 15, len(tracker.snapshots)
    assert not any(s.stretched for s in tracker.snapshots)


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
    print(json.dumps([len(t.snapshots), sum(s.stretched for s in t.snapshots)]))
""")


def test_cadence_holds_under_a_busy_main_thread():
    # Issue 13: charged by wall time (which includes waiting for the GIL
    # the main thread holds) this took 50-58 snapshots instead of 60.  A
    # fresh interpreter, as a user's program starts.
    script = CADENCE_SCRIPT % {"interval": 0.05, "seconds": 3.0}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    count, stretched = json.loads(proc.stdout)
    assert 57 <= count <= 63, (count, stretched)
    assert stretched == 0


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
    busy(2.0)
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
    # unstretched it would have taken 40
    assert len(monitored) <= 8, len(monitored)
    del keep


def test_monitor_with_nothing_tracked(tracker):
    tracker.start_periodic_snapshots(interval=0.02)
    time.sleep(0.3)
    tracker.stop_periodic_snapshots()
    assert len(tracker.snapshots) >= 10
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
