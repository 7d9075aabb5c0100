"""classtrack attach PID: a census of a running process (CPython 3.14+),
its refusals, what it leaves in the target, and a live service under load."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from helpers import classtrack_cli, wait_until

import classtrack
from classtrack import load_census

SRC = os.path.dirname(os.path.dirname(os.path.abspath(classtrack.__file__)))
NEW = sys.version_info >= (3, 14)
needs_remote_exec = pytest.mark.skipif(
    not NEW, reason="sys.remote_exec is CPython 3.14+ (the refusal is tested below it)")

TARGET = r'''
import gc, json, os, sys, threading, time

class Session:
    def __init__(self, i):
        self.i = i
        self.name = "session-%d" % i

SESSIONS = [Session(i) for i in range(1234)]

def state():
    return {
        "threads": threading.active_count(),
        "profile": repr(sys.getprofile()), "trace": repr(sys.gettrace()),
        "threading_profile": repr(threading.getprofile()),
        "threading_trace": repr(threading.gettrace()),
        "gc_callbacks": len(gc.callbacks), "gc_enabled": gc.isenabled(),
        "meta_path": [repr(f) for f in sys.meta_path],
        "path_hooks": len(sys.path_hooks), "path": list(sys.path),
        "audit_hooks": "n/a",
        "monitoring": [sys.monitoring.get_tool(i) for i in range(6)]
        if hasattr(sys, "monitoring") else [],
        "tracemalloc": __import__("tracemalloc").is_tracing(),
        "signals": {n: repr(__import__("signal").getsignal(n)) for n in (2, 15)},
        "switchinterval": sys.getswitchinterval(),
    }

folder = sys.argv[1]
print("ready %d" % os.getpid(), flush=True)
deadline = time.monotonic() + 120
while time.monotonic() < deadline and not os.path.exists(os.path.join(folder, "stop")):
    ask = os.path.join(folder, "ask")
    if os.path.exists(ask):
        with open(ask) as f:
            name = f.read().strip()
        with open(os.path.join(folder, name + ".tmp"), "w") as f:
            json.dump(state(), f)
        os.replace(os.path.join(folder, name + ".tmp"), os.path.join(folder, name))
        os.remove(ask)
    time.sleep(0.02)
'''


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    env.update(extra)
    return env


class Target:
    """A Python program of the test's, waiting to be looked into."""

    def __init__(self, tmp_path, code=TARGET, args=(), env=None, python=sys.executable):
        self.folder = str(tmp_path)
        script = tmp_path / "target.py"
        script.write_text(code)
        # stderr to a file: a pipe nobody reads could fill and block the target
        self.err_path = tmp_path / "target.err"
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen([python] + list(args) + [str(script), self.folder],
                                         stdout=subprocess.PIPE, stderr=err, text=True,
                                         env=env or _env())
        line = self.proc.stdout.readline()
        assert line.startswith("ready"), line + self.err()
        self.pid = self.proc.pid

    def state(self, name):
        path = os.path.join(self.folder, name)
        # the question appears whole (renamed into place): the target must
        # never read a half-written name
        with open(os.path.join(self.folder, "ask.tmp"), "w") as f:
            f.write(name)
        os.replace(os.path.join(self.folder, "ask.tmp"), os.path.join(self.folder, "ask"))
        def answered():
            if self.proc.poll() is not None:
                pytest.fail("the target ended (status %s) instead of answering %s: %s"
                            % (self.proc.returncode, name, self.err()))
            return os.path.exists(path)
        wait_until(answered, what="the target's answer %s" % name)
        with open(path) as f:
            return json.load(f)

    def err(self):
        return self.err_path.read_text()

    def stop(self):
        open(os.path.join(self.folder, "stop"), "w").close()
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        return self.proc.returncode, self.err()


@pytest.fixture
def target(tmp_path):
    t = Target(tmp_path)
    yield t
    if t.proc.poll() is None:
        t.stop()


def attach(*args, timeout=120, user=None):
    cmd = [sys.executable, "-m", "classtrack", "attach"] + [str(a) for a in args]
    env, cwd = _env(), None
    if user is not None:
        # another user may not read this venv or tree (CI makes them 0700):
        # the base interpreter, and a copy of classtrack anyone can read
        import pwd
        u = pwd.getpwnam(user)
        cwd = _readable_copy()
        env["PYTHONPATH"] = cwd
        cmd = ["setpriv", "--reuid=%d" % u.pw_uid, "--regid=%d" % u.pw_gid,
               "--clear-groups", os.path.realpath(getattr(sys, "_base_executable", None)
                                                  or sys.executable), "-s", "-m",
               "classtrack", "attach"] + [str(a) for a in args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=cwd)
    finally:
        if cwd is not None:
            shutil.rmtree(cwd, ignore_errors=True)


def _readable_copy():
    """classtrack's package copied where any user can read it."""
    import tempfile
    folder = tempfile.mkdtemp(prefix="ct-attach-copy-")
    shutil.copytree(os.path.dirname(classtrack.__file__), os.path.join(folder, "classtrack"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    return folder


@pytest.mark.skipif(NEW, reason="below 3.14 only: the refusal of an interpreter without "
                                "sys.remote_exec")
def test_refuses_without_remote_exec():
    r = attach(os.getpid())
    assert r.returncode == 1
    assert "classtrack attach needs CPython 3.14 or newer (sys.remote_exec)" in r.stderr
    assert "Traceback" not in r.stderr


@needs_remote_exec
def test_census_of_a_running_process(target, tmp_path):
    r = attach(target.pid, "--json", "--package", "__main__")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["format"] == "classtrack-census" and data["version"] == 1
    assert data["pid"] == target.pid
    assert data["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert data["objects"] > 1234 and data["bytes"] > 0 and data["pause_s"] > 0
    rows = {c["name"]: c for c in data["classes"]}
    assert rows["__main__.Session"]["count"] == 1234
    assert set(rows["__main__.Session"]) >= {"name", "count", "size", "retained", "path"}
    # the table, with retained sizes and a path
    r = attach(target.pid, "--limit", "5", "--retained", "--paths", "1")
    assert r.returncode == 0, r.stderr
    assert re.search(r"census of process %d \(Python 3\.\d+\.\d+\): [\d,]+ objects"
                     % target.pid, r.stdout), r.stdout
    assert "why alive:" in r.stdout
    # a file, and a series
    out = tmp_path / "c.json"
    assert attach(target.pid, "-o", out).returncode == 0
    assert load_census(out).pid == target.pid
    r = attach(target.pid, "--every", "0.2", "--count", "3", "-o", tmp_path / "series")
    assert r.returncode == 0, r.stderr
    series = [load_census(tmp_path / ("series.%d.json" % k)) for k in (1, 2, 3)]
    assert [s.time for s in series] == sorted(s.time for s in series)
    code, err = target.stop()
    assert code == 0 and err == "", err


@needs_remote_exec
def test_target_is_as_before(target):
    before = target.state("before.json")
    for _ in range(2):
        assert attach(target.pid, "--retained", "3", "--paths", "1").returncode == 0
    after = target.state("after.json")
    assert after == before
    code, err = target.stop()
    assert code == 0 and err == "", err
    # and no folder of ours is left behind
    assert not glob.glob(os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                      "classtrack-attach-*", "census.py"))


@needs_remote_exec
def test_a_target_blocked_in_c_times_out_and_nothing_fires_later(tmp_path):
    code = TARGET.replace("deadline = time.monotonic() + 120",
                          "time.sleep(2.5)\ndeadline = time.monotonic() + 120")
    code = code.replace('print("ready %d" % os.getpid(), flush=True)\n', "")
    code = code.replace("folder = sys.argv[1]\n",
                        "folder = sys.argv[1]\nprint('ready %d' % os.getpid(), flush=True)\n")
    t = Target(tmp_path, code=code)
    r = attach(t.pid, "--timeout", "0.5")
    assert r.returncode == 1
    assert "did not reach a safe point in 0.5 s" in r.stderr, r.stderr
    folder = re.search(r"removal of (\S+)", r.stderr).group(1)
    # the target wakes up, runs nothing but the removal, and goes on
    wait_until(lambda: not os.path.exists(folder), what="the removal of %s" % folder)
    assert "Session" not in t.state("late.json")["path"]
    rc, err = t.stop()
    assert rc == 0 and err == "", err


@needs_remote_exec
@pytest.mark.parametrize("how", ["env", "xoption"])
def test_refuses_a_target_with_remote_debugging_disabled(tmp_path, how):
    if how == "env":
        t = Target(tmp_path, env=_env(PYTHON_DISABLE_REMOTE_DEBUG="1"))
    else:
        t = Target(tmp_path, args=["-X", "disable-remote-debug"])
    r = attach(t.pid)
    assert r.returncode == 1
    assert "has remote debugging disabled" in r.stderr, r.stderr
    t.stop()


@needs_remote_exec
def test_refuses_what_is_not_a_python_process():
    p = subprocess.Popen(["sleep", "30"])
    try:
        r = attach(p.pid)
        assert r.returncode == 1
        assert "PID %d is not a Python process (its program is" % p.pid in r.stderr, r.stderr
    finally:
        p.kill()
        p.wait()
    r = attach(p.pid)       # reaped: no such process
    assert r.returncode == 1 and "no process with PID %d" % p.pid in r.stderr


@needs_remote_exec
def test_refuses_an_older_python(tmp_path):
    old = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-3]*/bin/python")))
    if not old:
        pytest.skip("no CPython 3.10-3.13 under ~/.pyenv to play the older target")
    t = Target(tmp_path, python=old[-1], env=dict(os.environ))
    r = attach(t.pid)
    assert r.returncode == 1
    assert re.search(r"PID %d runs Python 3\.1[0-3]: attach needs 3\.14 or newer" % t.pid,
                     r.stderr), r.stderr
    assert "classtrack run" in r.stderr
    t.stop()


@needs_remote_exec
def test_refuses_another_version(tmp_path):
    # this interpreter under another version's name: what the attacher sees
    # of a target is its program's name (or its libpython's)
    fake = tmp_path / "bin" / "python3.99"
    fake.parent.mkdir()
    shutil.copy(os.path.realpath(sys.executable), fake)
    env = _env(PYTHONHOME=sys.base_prefix)
    t = Target(tmp_path, python=str(fake), env=env)
    r = attach(t.pid)
    assert r.returncode == 1
    assert ("PID %d runs Python 3.99 and classtrack runs on %d.%d"
            % ((t.pid,) + sys.version_info[:2])) in r.stderr, r.stderr
    t.stop()


@needs_remote_exec
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to attach as another user")
def test_refuses_without_permission(target):
    r = attach(target.pid, user="nobody")
    assert r.returncode == 1
    assert "no permission to attach to PID %d (owned by root; you are nobody)" % target.pid \
        in r.stderr, r.stderr


SERVICE = r'''
import http.server, os, sys

class Leak:
    def __init__(self, n):
        self.n = n
        self.payload = "request-%d" % n

KEPT = []

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        KEPT.append(Leak(len(KEPT)))
        body = str(len(KEPT)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print("ready %d %d" % (os.getpid(), server.server_address[1]), flush=True)
server.serve_forever(poll_interval=0.05)
'''


@needs_remote_exec
def test_a_leaking_service_under_load(tmp_path):
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        _, pid, port = proc.stdout.readline().split()
        pid = int(pid)
        served = [0]
        errors = []
        stop = threading.Event()

        def client():
            while not stop.is_set():
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%s/" % port, timeout=10) as r:
                        served[0] = int(r.read())
                except Exception as e:          # every failure is reported below
                    errors.append(repr(e))
                    return
        worker = threading.Thread(target=client)
        worker.start()
        counts = []
        try:
            for _ in range(5):
                low = served[0]
                r = attach(pid, "--json", "--package", "__main__", timeout=60)
                high = served[0]
                assert r.returncode == 0, r.stderr
                rows = {c["name"]: c for c in json.loads(r.stdout)["classes"]}
                n = rows["__main__.Leak"]["count"]
                # the census counts the requests served when it ran
                assert low <= n <= high + 1, (low, n, high)
                counts.append(n)
                time.sleep(0.2)
        finally:
            stop.set()
            worker.join(30)
        assert not errors, errors
        assert counts == sorted(counts) and counts[-1] > counts[0], counts
    finally:
        proc.kill()
        proc.communicate()


@needs_remote_exec
def test_tracking_inside_a_running_process(tmp_path):
    code = TARGET.replace("    time.sleep(0.02)\n",
                          "    SESSIONS.append(Session(len(SESSIONS)))\n    time.sleep(0.02)\n")
    t = Target(tmp_path, code=code)
    before = t.state("before.json")
    out = tmp_path / "tracked.ctdump"
    r = attach(t.pid, "--track-class", "__main__:Session", "--duration", "1",
               "--interval", "0.2", "-o", out)
    assert r.returncode == 0, r.stderr
    assert re.search(r"tracked __main__:Session in PID %d for 1 s: \d+ snapshots -> " % t.pid,
                     r.stdout), r.stdout
    rep = classtrack_cli("report", str(out), "--json", cwd=str(tmp_path), pythonpath=SRC)
    assert rep.returncode == 0, rep.stderr
    doc = json.loads(rep.stdout)
    rows = {c["name"]: c for c in doc["classes"]}
    assert rows["__main__.Session"]["last_count"] > 5, rows
    assert len(doc["snapshots"]) >= 3
    # the tracker is gone: the target is as it was (its timer thread ends
    # right after its answer)
    states = []
    wait_until(lambda: states.append(t.state("after-%d.json" % len(states))) or
               states[-1] == before, timeout=10, what="the target as before attach")
    rc, err = t.stop()
    assert rc == 0 and err == "", err


@needs_remote_exec
def test_tracking_refusals(target, tmp_path):
    r = attach(target.pid, "--track-class", "__main__:Session")
    assert r.returncode == 1 and "--track-class needs --duration SECONDS" in r.stderr
    r = attach(target.pid, "--track-class", "Session", "--duration", "1")
    assert r.returncode == 1 and "--track-class needs MODULE:CLASS, not 'Session'" in r.stderr
    r = attach(target.pid, "--track-class", "__main__:Nope", "--duration", "1",
               "-o", tmp_path / "x.ctdump")
    assert r.returncode == 1
    assert "tracking failed in PID %d: ValueError: __main__:Nope names no class in the target" \
        % target.pid in r.stderr, r.stderr
    assert not (tmp_path / "x.ctdump").exists()


@needs_remote_exec
def test_a_target_without_classtrack_borrows_this_installation(tmp_path):
    # -S: no site-packages, so the target cannot import classtrack itself;
    # the request puts this installation on sys.path for the import only
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    t = Target(tmp_path, args=["-S"], env=env)
    before = t.state("before.json")
    assert not any("classtrack" in p for p in before["path"])
    r = attach(t.pid, "--json", "--package", "__main__")
    assert r.returncode == 0, r.stderr
    rows = {c["name"]: c for c in json.loads(r.stdout)["classes"]}
    assert rows["__main__.Session"]["count"] == 1234
    assert t.state("after.json")["path"] == before["path"]
    rc, err = t.stop()
    assert rc == 0 and err == "", err
