"""Stopping the background monitor while its snapshot waits for the stopping
thread: a tracked object's __repr__ takes a lock that thread holds.  The
stop gives up after STOP_TIMEOUT, says so on stderr, and the late snapshot
is dropped; interpreter exit does not hang."""
import subprocess
import sys
import textwrap
import threading
import time

from classtrack import _monitor
from classtrack.classtracker_stats import Stats
from helpers import classtrack_cli

LINE = "classtrack: the background monitor is still inside a snapshot after 0.5 s"


class Holder:
    def __init__(self):
        self.items = [str(i) * 10 for i in range(20)]


class Blocker:
    """Its __repr__ signals that it runs, then waits for `lock`."""

    def __init__(self, lock, entered):
        self.lock = lock
        self.entered = entered

    def __repr__(self):
        self.entered.set()
        with self.lock:
            return "Blocker()"


def test_stop_gives_up_on_a_snapshot_waiting_for_a_held_lock(monkeypatch, capfd, tmp_path,
                                                              tracker):
    monkeypatch.setattr(_monitor, "STOP_TIMEOUT", 0.5)
    lock = threading.Lock()
    entered = threading.Event()
    blocker = Blocker(lock, entered)
    holder = Holder()
    tracker.track_object(holder, resolution_level=2)   # sized first, with a tree
    tracker.track_object(blocker)
    lock.acquire()
    released = False
    try:
        tracker.start_periodic_snapshots(interval=0.01)
        monitor = tracker._periodic_thread
        assert entered.wait(30), "the monitor never called __repr__"
        kept, kept_engine = len(tracker.snapshots), tracker._engine.nsnapshots
        # stopped from a helper thread so that a stop that waits for ever
        # fails this test instead of hanging it; the lock stays held here
        returned = threading.Event()
        stopper = threading.Thread(
            target=lambda: (tracker.stop_periodic_snapshots(), returned.set()))
        started = time.monotonic()
        stopper.start()
        assert returned.wait(10), "stop_periodic_snapshots waited for the stuck snapshot"
        elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 5, elapsed
        assert tracker._periodic_thread is None
        assert monitor.is_alive()            # still inside __repr__
        err = capfd.readouterr().err
        assert err.count(LINE) == 1, err
        assert "not waiting for it" in err
    finally:
        lock.release()
        released = True
    stopper.join(30)
    monitor.join(30)
    assert released and not monitor.is_alive()
    # the snapshot that ended after the stop returned was dropped, in the
    # engine too, and the tracker goes on as before
    assert len(tracker.snapshots) == kept and tracker._engine.nsnapshots == kept_engine
    tracker.create_snapshot("after")
    assert len(tracker.snapshots) == kept + 1 == tracker._engine.nsnapshots
    (held,) = tracker.index["Holder"]
    sizes = held.snapshots[1:]
    assert [ts for ts, _ in sizes] == [s.timestamp for s in tracker.snapshots]
    assert sizes[-1][1].get("__dict__") is not None
    Stats(tracker=tracker).dump_stats(str(tmp_path / "after.ctdump"))
    loaded = Stats(filename=str(tmp_path / "after.ctdump"))
    assert [s.desc for s in loaded.snapshots][-1] == "after"
    tracker.stop_periodic_snapshots()         # nothing left to stop, no second line
    assert LINE not in capfd.readouterr().err


def test_stop_keeps_a_snapshot_that_ends_in_time(monkeypatch, tracker):
    # the snapshot ends 0.2 s into the stop (later on a loaded machine):
    # well within the time the stop waits
    monkeypatch.setattr(_monitor, "STOP_TIMEOUT", 30.0)
    lock = threading.Lock()
    entered = threading.Event()
    blocker = Blocker(lock, entered)
    tracker.track_object(blocker)
    lock.acquire()
    tracker.start_periodic_snapshots(interval=0.05)
    monitor = tracker._periodic_thread
    assert entered.wait(30)
    threading.Timer(0.2, lock.release).start()
    tracker.stop_periodic_snapshots()         # waits for the snapshot: it ends in 0.2 s
    assert not monitor.is_alive() and not monitor.abandoned
    assert len(tracker.snapshots) == 1 == tracker._engine.nsnapshots


# The start of both child programs: a Blocker whose __repr__ (called by the
# monitor's snapshot) waits for `lock`, which the program holds.
BLOCKING = textwrap.dedent("""
    import sys
    import threading
    from classtrack import _monitor

    _monitor.STOP_TIMEOUT = 0.5
    lock = threading.Lock()
    entered = threading.Event()

    class Blocker:
        def __repr__(self):
            entered.set()
            with lock:
                return "Blocker()"

    blocker = Blocker()
""")

EXITING = BLOCKING + textwrap.dedent("""
    from classtrack.classtracker import ClassTracker
    tracker = ClassTracker()
    tracker.track_object(blocker)
    lock.acquire()
    tracker.start_periodic_snapshots(interval=0.01)
    if not entered.wait(30):
        sys.exit("the monitor never called __repr__")
    print("exiting with the lock held", flush=True)
""")


def test_interpreter_exit_does_not_hang(tmp_path):
    prog = tmp_path / "exiting.py"
    prog.write_text(EXITING)
    r = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "exiting with the lock held\n"
    assert r.stderr.count(LINE) == 1, r.stderr


RUN_PROGRAM = BLOCKING + textwrap.dedent("""
    lock.acquire()
    assert entered.wait(30), "the monitor never called __repr__"
""")


def test_run_with_a_stuck_monitor_writes_its_dump(tmp_path):
    (tmp_path / "prog.py").write_text(RUN_PROGRAM)
    r = classtrack_cli("run", "--track-class", "__main__:Blocker", "--interval", "0.01",
                       "prog.py", cwd=tmp_path, pythonpath=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count(LINE) == 1, r.stderr
    assert "no exit snapshot" in r.stderr
    stats = Stats(filename=str(tmp_path / "prog.ctdump"))
    assert [s.desc for s in stats.snapshots][0] == "start"
    assert "__main__.Blocker" in stats.index
