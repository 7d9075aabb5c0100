"""The command line, run for real in subprocesses."""
import os
import subprocess
import sys
import textwrap

import pytest

from helpers import PROBE_SOURCE, classtrack_cli

PROGRAM = textwrap.dedent("""
    import sys
    import helper

    class Thing:
        def __init__(self, i):
            self.data = [i] * 50

    things = [Thing(i) for i in range(300)]
    others = [helper.Other() for _ in range(7)]
    print("argv=%r name=%s" % (sys.argv, __name__))
    if "--stdin" in sys.argv:
        print("stdin=%r" % sys.stdin.read())
    if "--raise" in sys.argv:
        def inner():
            raise ValueError("boom from the program")
        inner()
    if "--exit" in sys.argv:
        sys.exit(3)
    if "--exit-msg" in sys.argv:
        sys.exit("bye")
""")

HELPER = textwrap.dedent("""
    class Other:
        def __init__(self):
            self.payload = "p" * 1000
""")


def classtrack(*args, cwd, stdin=None, env=None):
    """The program's folder is on its PYTHONPATH; `env` is added."""
    return classtrack_cli(*args, cwd=cwd, pythonpath=cwd, extra_env=env, input=stdin)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "prog.py").write_text(PROGRAM)
    (tmp_path / "helper.py").write_text(HELPER)
    return tmp_path


def test_run_script_sees_what_it_would_see(workdir):
    r = classtrack("run", "--track-module", "__main__", "--track-class", "helper:Other",
                   "prog.py", "a", "--stdin", "-x", cwd=workdir, stdin="some input\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("argv=['prog.py', 'a', '--stdin', '-x'] name=__main__\n"
                        "stdin='some input\\n'\n")
    assert "classtrack: dump written to prog.ctdump" in r.stderr
    assert "__main__.Thing" in r.stderr and "300 live" in r.stderr
    assert (workdir / "prog.ctdump").exists()
    rep = classtrack("report", "prog.ctdump", "--summary", cwd=workdir)
    assert rep.returncode == 0, rep.stderr
    assert "__main__.Thing" in rep.stdout and "helper.Other" in rep.stdout
    assert "exit (" in rep.stdout and "start (" in rep.stdout


def test_run_exit_codes_and_exceptions(workdir):
    r = classtrack("run", "prog.py", "--exit", cwd=workdir)
    assert r.returncode == 3 and (workdir / "prog.ctdump").exists()
    r = classtrack("run", "prog.py", "--exit-msg", cwd=workdir)
    assert r.returncode == 1 and "bye" in r.stderr
    r = classtrack("run", "-o", "crash.ctdump", "prog.py", "--raise", cwd=workdir)
    assert r.returncode == 1
    assert "ValueError: boom from the program" in r.stderr
    assert 'prog.py", line' in r.stderr and "in inner" in r.stderr
    assert "runpy" not in r.stderr and "classtrack/commands" not in r.stderr
    assert r.stderr.count("Traceback") == 1
    assert (workdir / "crash.ctdump").exists()  # written also when the program raises


def test_run_module(workdir):
    r = classtrack("run", "--track-module", "prog", "-m", "prog", "arg1", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert "name=__main__" in r.stdout
    assert "prog.py" in r.stdout and "'arg1'" in r.stdout
    assert "__main__.Thing" in r.stderr
    r = classtrack("run", "-m", "no_such_module_here", cwd=workdir)
    assert r.returncode == 1 and "no module named no_such_module_here" in r.stderr
    assert "Traceback" not in r.stderr


def test_periodic_snapshots(workdir):
    # the program runs until the monitor sized its probe 4 times
    (workdir / "slow.py").write_text(PROBE_SOURCE + "x = [object() for _ in range(10)]\n"
                                     "wait_for_snapshots(4)\n")
    r = classtrack("run", "--interval", "0.1", "--track-class", "slow:Probe", "slow.py",
                   cwd=workdir)
    assert r.returncode == 0, r.stderr
    n = int(r.stderr.split("classtrack: ")[1].split(" snapshots")[0])
    assert n >= 6       # the start, 4 by the monitor, the exit


def test_budget_bounds_the_periodic_snapshots(workdir):
    # 20,000 tracked instances: a snapshot costs a few ms, so a share of
    # 1/2000 stretches a 0.05 s interval beyond the program's 1.5 s, and a
    # share of 1 leaves it as it is
    (workdir / "costly.py").write_text(textwrap.dedent("""
        import time

        class Item:
            pass

        items = [Item() for _ in range(20000)]
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            time.sleep(0.01)
    """))

    def snapshots(budget):
        r = classtrack("run", "--interval", "0.05", "--budget", budget,
                       "--track-class", "costly:Item", "costly.py", cwd=workdir)
        assert r.returncode == 0, r.stderr
        return int(r.stderr.split("classtrack: ")[1].split(" snapshots")[0])

    assert snapshots("1") >= 8
    assert snapshots("0.0005") <= 3        # the start, the exit, at most one between


@pytest.mark.parametrize("value", ["0", "-0.1", "1.5", "nan", "x"])
def test_budget_must_be_a_share(value, tmp_path):
    r = classtrack("run", "--budget", value, "p.py", cwd=tmp_path)
    assert r.returncode == 2 and "--budget" in r.stderr and "Traceback" not in r.stderr


def test_report_and_html(workdir):
    assert classtrack("run", "--track-module", "__main__", "--trace", "--resolution", "1",
                      "prog.py", cwd=workdir).returncode == 0
    r = classtrack("report", "prog.ctdump", "--sort", "size", "--limit", "3", "--class", "Thing",
                   cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("__main__.Thing") >= 3 and "prog.py" in r.stdout
    r = classtrack("html", "prog.ctdump", "-o", "out.html", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert (workdir / "out.html").exists() and (workdir / "out_files").is_dir()
    assert "report written to" in r.stderr


def test_demo(tmp_path):
    import re
    import time
    start = time.monotonic()
    r = classtrack("demo", cwd=tmp_path)
    elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert "---- SUMMARY" in r.stdout and "Employee" in r.stdout and "1000" in r.stdout
    # the phases: hiring, departures, a leak; each ends in a labelled snapshot
    for label in ("start (", "hired (", "after departures (", "end (report cache leaking) ("):
        assert label in r.stdout, r.stdout
    assert "hired 1000 employees, 333 left" in r.stdout
    assert "HTML report written to" in r.stdout
    assert elapsed < 4.0      # about 1.5 s of program, and the report
    page = (tmp_path / "classtrack-demo.html").read_text()
    assert (tmp_path / "classtrack-demo_files").is_dir()
    # periodic snapshots over about 1.5 s: the timeline has something to show
    n = int(re.search(r"<b>(\d+)</b><span>snapshots over", page).group(1))
    assert n >= 15, n
    timeline = re.search(r'id="timeline".*?</svg>', page, re.S).group(0)
    ticks = re.findall(r'text-anchor="middle">([^<]*)</text>', timeline)
    assert len(ticks) >= 4 and len(set(ticks)) == len(ticks), ticks
    # --employees still sets the size
    r = classtrack("demo", "--employees", "30", "-o", "small.html", cwd=tmp_path)
    assert r.returncode == 0 and "hired 30 employees, 10 left" in r.stdout, r.stderr


@pytest.mark.parametrize("command", [[], ["run"], ["report"], ["html"], ["demo"]])
def test_help(command, tmp_path):
    r = classtrack(*(command + ["--help"]), cwd=tmp_path)
    assert r.returncode == 0 and "usage:" in r.stdout


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["run"], ["run", "--interval", "x", "p.py"],
                                  ["run", "--track-class", "nocolon", "p.py"],
                                  ["report"], ["report", "d", "--sort", "colour"]])
def test_bad_arguments_exit_2_with_usage(args, tmp_path):
    r = classtrack(*args, cwd=tmp_path)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr


def test_user_errors_one_line_exit_1(tmp_path):
    (tmp_path / "bad.ctdump").write_bytes(b"\x89CTRK\r\n\x1a" + b"\0" * 5)
    (tmp_path / "pickle.dat").write_bytes(b"\x80\x04\x95" + b"\0" * 20)
    for args in (["report", "missing.ctdump"], ["html", "missing.ctdump"],
                 ["report", "bad.ctdump"], ["report", "pickle.dat"], ["report", "."],
                 ["run", "no_such_script.py"]):
        r = classtrack(*args, cwd=tmp_path)
        assert r.returncode == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith("classtrack: ")


def test_console_script_installed():
    script = os.path.join(os.path.dirname(sys.executable), "classtrack")
    assert os.path.exists(script)
    r = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "report" in r.stdout


@pytest.mark.parametrize("how", ["script", "module", "console"])
def test_trace_starts_at_the_program(tmp_path, how):
    """--trace stacks hold the program's frames only: not runpy's, not
    classtrack's, not the console script's."""
    (tmp_path / "tr.py").write_text("class Job:\n    pass\n\ndef make():\n    return Job()\n\n"
                                    "j = make()\n")
    if how == "console":
        exe = os.path.join(os.path.dirname(sys.executable), "classtrack")
        if not os.path.exists(exe):
            pytest.skip("no classtrack console script beside this interpreter")
        cmd = [exe]
    else:
        cmd = [sys.executable, "-m", "classtrack"]
    target = ["-m", "tr"] if how == "module" else ["tr.py"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path)] + sys.path))
    r = subprocess.run(cmd + ["run", "--trace", "--track-class", "tr:Job", "-o", "tr.ctdump"]
                       + target, cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    from classtrack.classtracker_stats import Stats
    stats = Stats(filename=str(tmp_path / "tr.ctdump"))
    (job,) = [o for objs in stats.index.values() for o in objs]
    frames = [(os.path.basename(f), line, fn) for f, line, fn, _, _ in job.trace]
    assert frames == [("tr.py", 7, "<module>"), ("tr.py", 5, "make")], job.trace
