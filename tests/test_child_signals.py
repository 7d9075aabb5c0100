"""Signals in the children of ``classtrack run --follow-fork``: the program's
handlers are the program's.

Each case runs the same program twice, under plain Python and under
``classtrack run --follow-fork``, and compares what the child saw and how
it ended: how often its handler ran, what ``signal.getsignal`` and
``signal.set_wakeup_fd`` returned to it, its exit status, how long it
took.  Under classtrack the child's dump must also hold its instances.
"""
import glob
import json
import os
import re
import subprocess
import sys

import pytest

PROG = r'''
import asyncio, json, multiprocessing, os, signal, sys, time

class Job:
    pass

def child(case, ready, out):
    jobs = [Job() for _ in range(100)]
    seen = {"getsignal_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
            "calls": 0}
    if case == "wakeup":
        r, w = os.pipe()
        os.set_blocking(w, False)
        seen["old_wakeup"] = signal.set_wakeup_fd(w)
    def save():
        with open(out, "w") as f:
            json.dump(seen, f)
    if case == "graceful":
        stop = []
        def on_term(signum, frame):
            seen["calls"] += 1
            stop.append(time.monotonic())
        seen["previous_default"] = signal.signal(signal.SIGTERM, on_term) == signal.SIG_DFL
        save()
        ready.set()
        while not stop:
            time.sleep(0.01)
        while time.monotonic() < stop[0] + DRAIN:     # drains, then returns
            time.sleep(0.05)
        save()
        return
    if case == "exit42":
        def on_term(signum, frame):
            seen["calls"] += 1
            save()
            os._exit(42)
        signal.signal(signal.SIGTERM, on_term)
        save()
        ready.set()
        while True:
            time.sleep(0.05)
    if case == "asyncio":
        async def main():
            loop = asyncio.get_running_loop()
            done = asyncio.Event()
            def on_term():
                seen["calls"] += 1
                done.set()
            loop.add_signal_handler(signal.SIGTERM, on_term)
            save()
            ready.set()
            await done.wait()
            save()
        asyncio.run(main())
        return
    save()
    ready.set()                 # "default", "sigint", "wakeup": wait to be signalled
    while True:
        time.sleep(0.05)

DRAIN = 1.5

if __name__ == "__main__":
    case, method, out = sys.argv[1], sys.argv[2], sys.argv[3]
    ctx = multiprocessing.get_context(method)
    ready = ctx.Event()
    p = ctx.Process(target=child, args=(case, ready, out))
    p.start()
    assert ready.wait(60), "the child never got ready"
    start = time.monotonic()
    os.kill(p.pid, signal.SIGINT if case == "sigint" else signal.SIGTERM)
    p.join(60)
    print(json.dumps({"exitcode": p.exitcode, "elapsed": time.monotonic() - start,
                      "child": p.pid}))
'''


def launch(tmp_path, case, method, tracked):
    work = tmp_path / ("tracked" if tracked else "plain")
    work.mkdir(exist_ok=True)
    (work / "prog.py").write_text(PROG)
    out = str(work / "seen.json")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable]
    if tracked:
        cmd += ["-m", "classtrack", "run", "--follow-fork", "--track-class", "prog:Job",
                "--interval", "0.1", "-o", str(work / "run")]
    cmd += ["prog.py", case, method, out]
    proc = subprocess.run(cmd, cwd=str(work), capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    with open(out) as f:
        result["seen"] = json.load(f)
    result["stderr"] = proc.stderr
    result["dumps"] = glob.glob(str(work / "run.*.ctdump"))
    result["work"] = work
    return result


def plain_and_tracked(tmp_path, case, method):
    """The program's results run by plain Python, then under `classtrack
    run --follow-fork`."""
    return (launch(tmp_path, case, method, tracked=False),
            launch(tmp_path, case, method, tracked=True))


def child_instances(result):
    """The child's instances in its dump (read back by `report --json`)."""
    pid = result["child"]
    mine = [d for d in result["dumps"] if re.search(r"\.%d\.ctdump$" % pid, d)]
    assert len(mine) == 1, (result["dumps"], result["stderr"])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-m", "classtrack", "report", "--json", mine[0]],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    return sum(c["instances"] for c in doc["classes"])


METHODS = ["fork", "spawn"]


@pytest.mark.parametrize("method", METHODS)
def test_graceful_handler_runs_once_and_the_child_drains(tmp_path, method):
    plain, ours = plain_and_tracked(tmp_path, "graceful", method)
    for r in (plain, ours):
        assert r["exitcode"] == 0, r["stderr"]
        assert r["seen"]["calls"] == 1
        assert r["elapsed"] >= 1.5
        assert r["seen"]["previous_default"] is True
    assert ours["elapsed"] < plain["elapsed"] + 3.0
    assert child_instances(ours) == 100


@pytest.mark.parametrize("method", METHODS)
def test_handler_that_exits_keeps_its_status(tmp_path, method):
    plain, ours = plain_and_tracked(tmp_path, "exit42", method)
    assert plain["exitcode"] == ours["exitcode"] == 42
    assert plain["seen"]["calls"] == ours["seen"]["calls"] == 1
    assert child_instances(ours) == 100


@pytest.mark.parametrize("method", METHODS)
def test_default_disposition_dies_of_sigterm_with_its_dump(tmp_path, method):
    plain, ours = plain_and_tracked(tmp_path, "default", method)
    assert plain["exitcode"] == ours["exitcode"] == -15
    # the program sees the disposition it would see without classtrack
    assert plain["seen"]["getsignal_default"] is ours["seen"]["getsignal_default"] is True
    assert child_instances(ours) == 100


@pytest.mark.parametrize("method", METHODS)
def test_sigint_ends_the_child_as_without_classtrack(tmp_path, method):
    plain, ours = plain_and_tracked(tmp_path, "sigint", method)
    assert ours["exitcode"] == plain["exitcode"] == 1
    assert child_instances(ours) == 100


@pytest.mark.parametrize("method", METHODS)
def test_the_programs_wakeup_fd_is_its_own(tmp_path, method):
    plain, ours = plain_and_tracked(tmp_path, "wakeup", method)
    assert plain["seen"]["old_wakeup"] == ours["seen"]["old_wakeup"] == -1
    assert plain["exitcode"] == ours["exitcode"] == -15
    assert child_instances(ours) == 100


@pytest.mark.parametrize("method", METHODS)
def test_asyncio_signal_handler(tmp_path, method):
    plain, ours = plain_and_tracked(tmp_path, "asyncio", method)
    assert plain["exitcode"] == ours["exitcode"] == 0
    assert plain["seen"]["calls"] == ours["seen"]["calls"] == 1
    assert child_instances(ours) == 100


def test_keyboard_interrupt_in_the_program_ends_as_in_python(tmp_path):
    """Python dies of SIGINT (status -2) after an unhandled
    KeyboardInterrupt, once its exit handlers ran; `run` must too."""
    (tmp_path / "prog.py").write_text(
        "import atexit\n"
        "atexit.register(lambda: print('exit handler ran', flush=True))\n"
        "raise KeyboardInterrupt\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    plain = subprocess.run([sys.executable, "prog.py"], cwd=str(tmp_path),
                           capture_output=True, text=True, timeout=60, env=env)
    ours = subprocess.run([sys.executable, "-m", "classtrack", "run", "prog.py"],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=60,
                          env=env)
    assert plain.returncode == ours.returncode == -2, ours.stderr
    assert "exit handler ran" in plain.stdout and "exit handler ran" in ours.stdout
    assert ours.stderr.count("Traceback") == 1
    assert os.path.exists(str(tmp_path / "prog.ctdump"))
