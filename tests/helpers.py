"""Helpers shared by the test modules (imported by plain name: conftest.py
puts this folder on sys.path).

- ``wait_until``: a bounded wait on a condition, instead of sleeping for a
  guessed time and then counting (which flakes on a loaded machine or under
  a sanitizer).
- ``wait_for_snapshots``: the same, for a tracker's snapshot count.
- ``close_tracker``: what every test's tracker gets at teardown.
- ``classtrack_cli``: ``python -m classtrack ...`` in a subprocess.
"""
import os
import subprocess
import sys
import textwrap
import time

import pytest

# A bound, not a duration: a condition that holds returns at once, one that
# never holds fails after this long.
WAIT_TIMEOUT = 30.0
POLL = 0.01


def wait_until(predicate, timeout=WAIT_TIMEOUT, what=None, poll=POLL):
    """Call `predicate` every `poll` seconds until it returns a true value,
    and return that value; fail the test after `timeout` seconds, naming
    `what` was waited for (a string, or a function giving one) and the
    predicate's last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            if callable(what):
                what = what()
            pytest.fail("waited %g s for %s; last value %r"
                        % (timeout, what or getattr(predicate, "__name__", "a condition"),
                           value), pytrace=False)
        time.sleep(poll)


def wait_for_snapshots(tracker, n, timeout=WAIT_TIMEOUT):
    """Wait until `tracker` has `n` snapshots or more (failing after
    `timeout` seconds); their count then."""
    wait_until(lambda: len(tracker.snapshots) >= n, timeout,
               what=lambda: "%d snapshots (had %d)" % (n, len(tracker.snapshots)))
    return len(tracker.snapshots)


def close_tracker(tracker):
    """Stop the monitor, detach from every class and forget every record
    and snapshot: nothing of a test's tracker outlives the test."""
    tracker.stop_periodic_snapshots()
    tracker.clear()


def write_files(root, files):
    """Writes {relative path: source text (dedented)} under root, making
    the folders: a package for a test to import or run."""
    for rel, text in files.items():
        path = os.path.join(str(root), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))


def classtrack_cli(*args, cwd, columns=None, pythonpath=None, extra_env=None, timeout=120,
                   **run_kwargs):
    """``python -m classtrack ARGS`` in `cwd`: the CompletedProcess, output
    as text.  COLUMNS is unset unless `columns` is given, so that tables
    have their default width whatever terminal runs the tests; PYTHONPATH
    is `pythonpath` (a folder, or a list of them) if given; `extra_env` is
    added to the environment; other keywords go to subprocess.run (input,
    preexec_fn...)."""
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    if pythonpath is not None:
        if isinstance(pythonpath, (list, tuple)):
            pythonpath = os.pathsep.join(str(p) for p in pythonpath)
        env["PYTHONPATH"] = str(pythonpath)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "classtrack"] + list(args), cwd=str(cwd),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, env=env, **run_kwargs)


# The start of a program run under `classtrack run --track-class MOD:Probe`
# that sees the monitor's snapshots: each one sizes its one Probe once.
# wait_for_snapshots(n) returns once n more snapshots were taken, and ends
# the program with a message (status 1) when they do not come in time.  It
# sleeps in short steps: some builds leave a signal pending across one long
# time.sleep (see test_run_endings).
PROBE_SOURCE = '''
class Probe:
    sized = 0

    def __sizeof__(self):
        Probe.sized += 1
        return object.__sizeof__(self)


PROBE = Probe()


def wait_for_snapshots(n, timeout=%r):
    import sys, time
    goal = Probe.sized + n
    deadline = time.monotonic() + timeout
    while Probe.sized < goal:
        if time.monotonic() > deadline:
            sys.exit("waited %%g s for %%d snapshots; %%d came" %% (timeout, n, Probe.sized - goal + n))
        time.sleep(0.01)
''' % WAIT_TIMEOUT
