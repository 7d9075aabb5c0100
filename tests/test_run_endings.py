"""However the program under ``classtrack run`` ends, its dump is written
and its exit status is what plain Python gives.

Each case runs the same program under plain Python and under ``classtrack
run`` (in subprocesses) and compares the exit statuses; the dump must then
hold the program's instances, alive in its last snapshot, labelled by how
the program ended.  SIGKILL cannot be caught: the dump is streamed, a
frame per snapshot, and what the killed program leaves reads up to its
last snapshot.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from classtrack import DumpError, _core
from classtrack.classtracker_stats import Stats
from helpers import PROBE_SOURCE

PROG = r'''
import os, signal, sys, threading, time

class Job:
    pass

KEPT = [Job() for _ in range(100)]
how = sys.argv[1]
if how == "handler":
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))
print("ready", flush=True)
if how == "os_exit":
    os._exit(3)
if how == "os_exit_thread":
    threading.Thread(target=os._exit, args=(4,)).start()
    time.sleep(60)
if how == "raise":
    raise RuntimeError("the program's own error")
if how == "lock":
    threading.Event().wait(60)      # asleep in a lock the signal does not interrupt
# short sleeps: a signal that lands between the print and a long sleep is
# left pending by some builds (Debian's 3.14: 77 of 200 plain runs hung)
for _ in range(1200):
    time.sleep(0.05)
'''


def start(tmp_path, how, tracked):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    (tmp_path / "prog.py").write_text(PROG)
    cmd = [sys.executable]
    if tracked:
        cmd += ["-m", "classtrack", "run", "--track-class", "prog:Job", "--interval", "0.05",
                "-o", "prog.ctdump"]
    cmd += ["prog.py", how]
    return subprocess.Popen(cmd, cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(proc, send=None):
    assert proc.stdout.readline().strip() == "ready"
    return finish_running(proc, send)


def last_snapshot(tmp_path, name=None):
    """The dump's last snapshot's description, and how many tracked objects
    (of class `name` only, if given) were alive then."""
    stats = Stats(filename=str(tmp_path / "prog.ctdump"))
    snap = stats.snapshots[-1]
    alive = sum(1 for cls, objs in stats.index.items() for o in objs
                if (name is None or cls == name)
                and (o.death is None or o.death > snap.timestamp))
    return snap.desc, alive


@pytest.mark.parametrize("how, send, label", [
    ("sleep", signal.SIGTERM, "terminated"),
    ("lock", signal.SIGTERM, "terminated"),
    ("handler", signal.SIGTERM, "exit"),
    ("os_exit", None, "exit"),
    ("os_exit_thread", None, "exit"),
    ("raise", None, "exit"),
    ("sleep", signal.SIGINT, "exit"),
])
def test_every_ending_writes_the_dump(tmp_path, how, send, label):
    plain_dir = tmp_path / "plain"
    ours_dir = tmp_path / "ours"
    plain_dir.mkdir()
    ours_dir.mkdir()
    plain, _ = finish(start(plain_dir, how, False), send)
    ours, err = finish(start(ours_dir, how, True), send)
    assert ours == plain, err
    assert "dump written to prog.ctdump" in err, err
    desc, alive = last_snapshot(ours_dir)
    assert desc == label
    assert alive == 100


def test_sigkill_leaves_a_dump_that_reads_to_its_last_snapshot(tmp_path):
    """SIGKILL (the OOM killer's signal) after two periodic snapshots: the
    dump is there, holds the instances, and report says in one line that
    the program never finished it."""
    proc = start(tmp_path, "sleep", True)
    assert proc.stdout.readline().strip() == "ready"
    path = tmp_path / "prog.ctdump"
    deadline = time.monotonic() + 30
    snaps = 0
    while time.monotonic() < deadline and snaps < 3:    # start and two periodic ones
        time.sleep(0.05)
        try:
            snaps = len(_core.dump_read(path.read_bytes(), {}).snapshots)
        except (OSError, DumpError):
            pass
    assert snaps >= 3, proc.stderr.read() if proc.poll() is not None else "no snapshots"
    status, err = finish_running(proc, signal.SIGKILL)
    assert status == -signal.SIGKILL
    assert "dump written" not in err
    stats = Stats(filename=str(path))
    assert stats.dump_info["streamed"] and not stats.dump_info["complete"]
    assert len(stats.snapshots) >= 3
    desc, alive = last_snapshot(tmp_path)
    assert alive == 100 and desc in ("", "start")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    report = subprocess.run([sys.executable, "-m", "classtrack", "report", str(path)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert report.returncode == 0, report.stderr
    lines = [ln for ln in report.stderr.splitlines() if "was not finished" in ln]
    assert len(lines) == 1, report.stderr
    assert "__main__.Job" in report.stdout and "100" in report.stdout


FORKS = PROBE_SOURCE + r'''
import os, sys, time

class Job:
    pass

KEPT = [Job() for _ in range(100)]
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print("ready", flush=True)
if "classtrack" in sys.modules:     # run by classtrack: its monitor works again
    wait_for_snapshots(3)
print("monitored", flush=True)
for _ in range(1200):
    time.sleep(0.05)
'''


def test_a_program_that_forks_gets_no_thread_warning_and_is_still_watched(tmp_path):
    """classtrack's threads (the monitor, the SIGTERM watch) pause around
    os.fork(): a single-threaded program forks as one (3.12+ warns
    otherwise), and both work again after the fork."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    (tmp_path / "prog.py").write_text(FORKS)
    plain = subprocess.Popen([sys.executable, "-W", "default", "prog.py"], cwd=str(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ours = subprocess.Popen([sys.executable, "-W", "default", "-m", "classtrack", "run",
                             "--track-class", "prog:Job", "--track-class", "prog:Probe",
                             "--interval", "0.05", "-o", "prog.ctdump", "prog.py"],
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    for proc in (plain, ours):
        assert proc.stdout.readline().strip() == "ready"
        # ours: once its monitor took 3 snapshots after the forks
        line = proc.stdout.readline().strip()
        assert line == "monitored", (line, proc.stderr.read() if not line else "")
    plain_status, plain_err = finish_running(plain, signal.SIGTERM)
    ours_status, ours_err = finish_running(ours, signal.SIGTERM)
    assert plain_status == ours_status == -signal.SIGTERM
    assert "DeprecationWarning" not in plain_err
    assert "DeprecationWarning" not in ours_err, ours_err
    desc, alive = last_snapshot(tmp_path, "__main__.Job")
    assert desc == "terminated" and alive == 100
    stats = Stats(filename=str(tmp_path / "prog.ctdump"))
    assert len([s for s in stats.snapshots if s.desc == ""]) >= 3


def finish_running(proc, send):
    if send is not None:
        proc.send_signal(send)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


THREADED_FORK = r'''
import os, threading, time
t = threading.Thread(target=time.sleep, args=(1,))
t.start()
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
t.join()
'''


def test_a_program_with_its_own_thread_still_gets_the_fork_warning(tmp_path):
    """Where plain Python warns (the program has a thread of its own),
    the warning is not hidden."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    (tmp_path / "prog.py").write_text(THREADED_FORK)
    plain = subprocess.run([sys.executable, "-W", "default", "prog.py"], cwd=str(tmp_path),
                           capture_output=True, text=True, timeout=60, env=env)
    ours = subprocess.run([sys.executable, "-W", "default", "-m", "classtrack", "run",
                           "-o", "prog.ctdump", "prog.py"], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=60, env=env)
    assert plain.returncode == ours.returncode == 0, ours.stderr
    warned = "is multi-threaded, use of fork()"
    assert (warned in plain.stderr) == (warned in ours.stderr), (plain.stderr, ours.stderr)


CYCLES = r'''
import gc, sys, time

class Node:
    def __init__(self):
        self.me = self      # a cycle: only the collector frees it

gc.disable()                # the program's own choice: nothing collects by itself
KEPT = [Node() for _ in range(10)]
for _ in range(200):
    Node()                  # garbage, in cycles
print("ready", flush=True)
for _ in range(int(sys.argv[1])):
    time.sleep(0.05)
'''


@pytest.mark.parametrize("collect", [False, True])
def test_the_exit_snapshot_follows_a_full_collection(tmp_path, collect):
    """Cycles nothing holds are not counted at exit (gc.collect() runs
    first, and the snapshot says so); with --collect, neither are they in
    periodic snapshots."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    (tmp_path / "prog.py").write_text(CYCLES)
    cmd = [sys.executable, "-m", "classtrack", "run", "--track-class", "prog:Node",
           "--interval", "0.1", "-o", "prog.ctdump"] + (["--collect"] if collect else [])
    proc = subprocess.run(cmd + ["prog.py", "10"], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    stats = Stats(filename=str(tmp_path / "prog.ctdump"))
    exit_snap = stats.snapshots[-1]
    assert exit_snap.desc == "exit" and exit_snap.collected

    def alive_at(snap):
        return sum(1 for objs in stats.index.values() for o in objs
                   if o.birth <= snap.timestamp and (o.death is None or o.death > snap.timestamp))

    assert alive_at(exit_snap) == 10
    report = subprocess.run([sys.executable, "-m", "classtrack", "report", "--json",
                             "prog.ctdump"], cwd=str(tmp_path), capture_output=True,
                            text=True, timeout=60, env=env)
    snaps = json.loads(report.stdout)["snapshots"]
    assert snaps[-1]["collected"] and snaps[-1]["label"] == "exit"
    assert all(s["collected"] for s in snaps) == collect
    text = subprocess.run([sys.executable, "-m", "classtrack", "report", "prog.ctdump"],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=60,
                          env=env).stdout.splitlines()[0]
    assert ("every snapshot after gc.collect()" if collect else
            "the exit snapshot after gc.collect()") in text, text
    periodic = [s for s in stats.snapshots if s.desc == ""]
    assert periodic
    if collect:
        assert all(s.collected for s in periodic)
        assert all(alive_at(s) == 10 for s in periodic)
    else:
        assert not any(s.collected for s in periodic)
        assert alive_at(periodic[0]) == 210     # the garbage cycles, not yet collected
