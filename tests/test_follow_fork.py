"""`classtrack run --follow-fork`: every process of a run writes its own dump,
and `report`/`html` merge them.

Real programs run under `python -m classtrack run` in a subprocess: a
`multiprocessing.Pool` under each start method, bare `os.fork()` children,
and pools terminated while their workers are busy.  Every count checked
comes from the dumps the processes wrote, read back by `classtrack report
--json`; the programs report what they did (pids, instances made) on stdout.
"""
import glob
import json
import os
import re
import time

import pytest

from helpers import classtrack_cli as classtrack

JOB = "__main__.Job"

POOL = """
import json, multiprocessing, os, sys

class Job:
    __slots__ = ("n",)
    def __init__(self, n):
        self.n = n

KEPT = []                       # a worker's Jobs stay alive until it exits

def work(k):
    KEPT.extend(Job(i) for i in range(k))
    return os.getpid(), k

if __name__ == "__main__":
    # "default": the module's own default context, as most programs use it
    # (forkserver on Linux from 3.14, fork before)
    ctx = multiprocessing if sys.argv[1] == "default" else multiprocessing.get_context(sys.argv[1])
    mine = [Job(i) for i in range(1000)]
    with ctx.Pool(4) as pool:   # leaving the block terminates the workers
        done = pool.map(work, [2000] * 40, chunksize=5)
    made = {}
    for pid, k in done:
        made[str(pid)] = made.get(str(pid), 0) + k
    print(json.dumps({"parent": os.getpid(), "workers": made}))
"""

FORKS = """
import json, os, sys

class Job:
    pass

mine = [Job() for _ in range(1000)]
r, w = os.pipe()
first = os.fork()
if first == 0:                  # ends through os._exit
    jobs = [Job() for _ in range(500)]
    os._exit(0)
second = os.fork()
if second == 0:                 # returns into classtrack run, as the parent does
    jobs = [Job() for _ in range(300)]
    sys.exit(0)
os.waitpid(first, 0)
os.waitpid(second, 0)
print(json.dumps({"parent": os.getpid(), "exit": first, "returned": second}))
"""

TERMINATE = """
import json, multiprocessing, os, sys, time

class Job:
    __slots__ = ("n",)
    def __init__(self, n):
        self.n = n

KEPT = []

def work(args):
    k, marks = args
    KEPT.extend(Job(i) for i in range(k))
    open(os.path.join(marks, str(os.getpid())), "w").close()
    time.sleep(60)              # busy when the pool is terminated

if __name__ == "__main__":
    # "default": the module's own default context, as most programs use it
    # (forkserver on Linux from 3.14, fork before)
    ctx = multiprocessing if sys.argv[1] == "default" else multiprocessing.get_context(sys.argv[1])
    marks = sys.argv[2]
    pool = ctx.Pool(2)
    pool.map_async(work, [(3000, marks), (5000, marks)], chunksize=1)
    deadline = time.time() + 20
    while len(os.listdir(marks)) < 2 and time.time() < deadline:
        time.sleep(0.02)
    workers = list(pool._pool)
    start = time.time()
    pool.terminate()
    print(json.dumps({"parent": os.getpid(), "busy": sorted(os.listdir(marks)),
                      "exitcodes": {str(p.pid): p.exitcode for p in workers},
                      "terminate_seconds": time.time() - start}))
"""


def run_program(tmp_path, source, *prog_args, name="prog.py"):
    (tmp_path / name).write_text(source)
    stem = name[:-3]
    start = time.time()
    proc = classtrack("run", "--follow-fork", "--track-class", "%s:Job" % stem,
                      "--interval", "0.2", "-o", str(tmp_path / "run"), name, *prog_args,
                      cwd=tmp_path)
    elapsed = time.time() - start
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    dumps = sorted(glob.glob(str(tmp_path / "run.*.ctdump")))
    return out, dumps, proc, elapsed


def merged(dumps, cwd, *extra):
    proc = classtrack("report", "--json", *(list(extra) + dumps), cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def pid_of(path):
    return int(re.search(r"\.[0-9a-f]{8}\.(\d+)\.ctdump$", path).group(1))


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver", "default"])
def test_pool_workers_are_followed(tmp_path, method):
    out, dumps, proc, elapsed = run_program(tmp_path, POOL, method)
    assert elapsed < 30
    workers = {int(pid): k for pid, k in out["workers"].items()}
    assert sum(workers.values()) == 80000
    pids = {pid_of(d) for d in dumps}
    # the parent's dump and one per worker that ran a task (a worker the
    # pool ended before it ever started may have made nothing, and no dump)
    assert out["parent"] in pids
    assert set(workers) <= pids
    assert "dumps, one per process" in proc.stderr

    doc = merged(dumps, tmp_path)
    [job] = doc["classes"]          # __mp_main__.Job is written as __main__.Job
    assert job["name"] == JOB
    assert job["instances"] == 81000        # every Job ever made, in every process
    assert doc["dump"] is None and sorted(doc["dumps"]) == dumps
    procs = {p["pid"]: p for p in doc["processes"]}
    assert set(procs) == pids
    assert procs[out["parent"]]["instances"] == 1000    # no worker counted in it
    parent = procs[out["parent"]]
    for pid, k in workers.items():
        p = procs[pid]
        assert p["instances"] == k
        [row] = p["classes"]
        # alive at the worker's last snapshot, taken as it ended
        assert row["last_count"] == k, p
        assert p["end_label"] in ("exit", "terminated")
        # one timeline: the worker lived within the parent's run
        assert parent["start"] <= p["start"] <= p["end"] <= parent["end"], (parent, p)
    # all the workers' Jobs were alive together at some snapshot
    assert job["peak_count"] >= 80000


def test_forked_children_write_their_own_dumps(tmp_path):
    out, dumps, proc, _ = run_program(tmp_path, FORKS)
    by_pid = {pid_of(d): d for d in dumps}
    assert set(by_pid) == {out["parent"], out["exit"], out["returned"]}
    doc = merged(dumps, tmp_path)
    procs = {p["pid"]: p["instances"] for p in doc["processes"]}
    # a child holds only what it made: the parent's 1,000 are not copied in
    assert procs == {out["parent"]: 1000, out["exit"]: 500, out["returned"]: 300}
    assert doc["classes"][0]["instances"] == 1800
    # each dump alone reads as before
    one = merged([by_pid[out["returned"]]], tmp_path)
    assert one["classes"][0]["instances"] == 300 and "processes" not in one


@pytest.mark.parametrize("method", ["fork", "spawn", "default"])
def test_terminated_busy_workers_write_their_dumps(tmp_path, method):
    marks = tmp_path / "marks"
    marks.mkdir()
    out, dumps, proc, elapsed = run_program(tmp_path, TERMINATE, method, str(marks))
    assert elapsed < 30
    busy = [int(p) for p in out["busy"]]
    assert len(busy) == 2
    # killed by SIGTERM, as without classtrack, and without waiting for the task
    assert all(out["exitcodes"][str(p)] == -15 for p in busy), out
    assert out["terminate_seconds"] < 10
    doc = merged(dumps, tmp_path)
    procs = {p["pid"]: p for p in doc["processes"]}
    made = sorted(procs[p]["instances"] for p in busy)
    assert made == [3000, 5000]
    for p in busy:
        assert procs[p]["end_label"] == "terminated"
        # the snapshot taken at the signal sees the Jobs alive
        assert procs[p]["classes"][0]["last_count"] == procs[p]["instances"]


def test_report_and_html_of_several_dumps(tmp_path):
    out, dumps, _, _ = run_program(tmp_path, FORKS)
    text = classtrack("report", *dumps, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "1,800 instances tracked" in text.stdout
    assert "3 processes, 1,800 instances tracked; per process:" in text.stdout
    lines = text.stdout.splitlines()
    for pid, n in ((out["parent"], "1,000"), (out["exit"], "500"), (out["returned"], "300")):
        [line] = [ln for ln in lines if ln.startswith("pid %d " % pid)]
        assert JOB in line and n in line.split()
    html = classtrack("html", *dumps, cwd=tmp_path)
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "run.html").read_text()     # NAME.html for NAME.<pid>.ctdump
    assert 'id="processes"' in page and "pid %d" % out["exit"] in page
    assert "1800" in page


def test_bad_dump_lists_are_one_line_errors(tmp_path):
    out, dumps, _, _ = run_program(tmp_path, FORKS)
    for args, message in (
            (dumps + [str(tmp_path / "missing.ctdump")], "no such dump file"),
            (dumps + [dumps[0]], "is given twice"),
            (dumps + [str(tmp_path / "prog.py")], "cannot read")):
        for command in ("report", "html"):
            proc = classtrack(command, *args, cwd=tmp_path)
            assert proc.returncode == 1, (command, proc.stderr)
            assert message in proc.stderr
            assert "Traceback" not in proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1


def test_dumps_of_two_runs_are_told_apart(tmp_path):
    _, first, _, _ = run_program(tmp_path, FORKS)
    _, both, proc, _ = run_program(tmp_path, FORKS)
    assert len(first) == 3 and len(both) == 6
    # the run names its own dumps by its token, and counts only those
    m = re.search(r"3 dumps, one per process: (\S+)", proc.stderr)
    assert m, proc.stderr
    pattern = m.group(1)
    token = re.search(r"run\.([0-9a-f]{8})\.\*\.ctdump$", pattern).group(1)
    second = sorted(glob.glob(pattern))
    assert len(second) == 3 and not set(second) & set(first)
    assert all(".%s." % token in d for d in second)
    assert len(merged(second, tmp_path)["processes"]) == 3
    # the dumps of both runs together are refused: they did not run at once
    for command in ("report", "html"):
        proc = classtrack(command, *both, cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert "2 different runs" in proc.stderr and "classtrack diff" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr


def test_without_follow_fork_nothing_changes(tmp_path):
    (tmp_path / "prog.py").write_text(FORKS)
    proc = classtrack("run", "--track-class", "prog:Job", "-o", str(tmp_path / "one.ctdump"),
                      "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(str(tmp_path / "one.ctdump"))
    assert not glob.glob(str(tmp_path / "one.*.ctdump"))


def test_dumps_of_unrelated_runs_are_refused(tmp_path):
    """Two plain runs did not run at the same time: `report A B` would
    sum them (a peak of 6 + 3); it points to `diff` instead."""
    (tmp_path / "prog.py").write_text(FORKS)
    for name in ("a.ctdump", "b.ctdump"):
        proc = classtrack("run", "--track-class", "prog:Job", "-o", name, "prog.py",
                          cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    for command in ("report", "html"):
        proc = classtrack(command, "a.ctdump", "b.ctdump", cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert "classtrack diff" in proc.stderr and "a.ctdump" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    proc = classtrack("diff", "a.ctdump", "b.ctdump", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


TWO_CLASSES = """
import json, os, sys, time

class Job:
    pass

class Other:
    pass

mine = [Job() for _ in range(100)] + [Other() for _ in range(10)]
child = os.fork()
if child == 0:                  # makes Jobs only
    jobs = [Job() for _ in range(50)]
    time.sleep(0.3)
    os._exit(0)
time.sleep(0.3)
os.waitpid(child, 0)
print(json.dumps({"parent": os.getpid(), "child": child}))
"""


def test_per_process_table_and_rss_lines(tmp_path):
    (tmp_path / "prog.py").write_text(TWO_CLASSES)
    proc = classtrack("run", "--follow-fork", "--track-class", "prog:Job", "--track-class",
                      "prog:Other", "--interval", "0.05", "-o", str(tmp_path / "run"),
                      "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    dumps = sorted(glob.glob(str(tmp_path / "run.*.ctdump")))
    assert {pid_of(d) for d in dumps} == {out["parent"], out["child"]}
    text = classtrack("report", *dumps, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    section = text.stdout.split("per process:")[1].splitlines()
    rows = [ln.split() for ln in section if ln.startswith("pid ")]
    # the child made no Other: it is left out of its rows, and counted
    listed = [(int(r[1]), name) for r in rows for name in (JOB, "__main__.Other") if name in r]
    assert sorted(listed) == sorted(
        [(out["parent"], JOB), (out["parent"], "__main__.Other"), (out["child"], JOB)]), section
    assert "1 for pid %d)" % out["child"] in text.stdout
    # the parent started first: listed first, no parent claimed
    assert rows[0][1] == str(out["parent"])
    html = classtrack("html", *dumps, cwd=tmp_path)
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "run.html").read_text()
    titles = re.findall(r"<polyline[^>]*><title>([^<]*)</title>", page.split("</svg>")[0])
    assert "RSS pid %d" % out["parent"] in titles and "RSS pid %d" % out["child"] in titles
    assert "process RSS" not in titles


KILLED = """
import json, multiprocessing, os, signal, sys, time

class Job:
    pass

def work(dump_glob):
    jobs = [Job() for _ in range(700)]
    # wait (bounded) until this worker's dump has its start snapshot and two
    # periodic ones, as a worker busy for a while would
    import glob
    from classtrack import DumpError, _core
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        paths = [p for p in glob.glob(dump_glob) if p.endswith(".%d.ctdump" % os.getpid())]
        try:
            if paths and len(_core.dump_read(open(paths[0], "rb").read(), {}).snapshots) >= 3:
                break
        except (OSError, DumpError):
            pass
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)     # as the OOM killer would
    time.sleep(60)

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    mine = [Job() for _ in range(100)]
    p = ctx.Process(target=work, args=(sys.argv[2],))
    p.start()
    p.join()
    print(json.dumps({"parent": os.getpid(), "worker": p.pid, "exitcode": p.exitcode}))
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_worker_killed_by_sigkill_leaves_its_dump(tmp_path, method):
    """A worker's dump is written as it runs: SIGKILL (the OOM killer's
    signal) leaves it readable up to its last snapshot, on the parent's
    clock, and report says in one line that it was not finished."""
    out, dumps, proc, _ = run_program(tmp_path, KILLED, method, str(tmp_path / "run.*.ctdump"))
    assert out["exitcode"] == -9
    by_pid = {pid_of(d): d for d in dumps}
    assert set(by_pid) == {out["parent"], out["worker"]}
    report = classtrack("report", "--json", *dumps, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    procs = {p["pid"]: p for p in doc["processes"]}
    worker, parent = procs[out["worker"]], procs[out["parent"]]
    assert worker["instances"] == 700 and worker["classes"][0]["last_count"] == 700
    assert worker["ppid"] == out["parent"]
    assert parent["start"] <= worker["start"] <= worker["end"] <= parent["end"]
    lines = [ln for ln in report.stderr.splitlines() if "was not finished" in ln]
    assert len(lines) == 1 and str(out["worker"]) in lines[0], report.stderr
