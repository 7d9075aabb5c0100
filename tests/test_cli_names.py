"""`classtrack run` takes the names a user writes: a script's classes by the
script's name, warnings for names that never matched, classes that cannot
be tracked named once with what to do.  Real subprocesses, real engine;
what was tracked is read back from the dump with `report --json`."""
import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

from helpers import classtrack_cli

PROG = textwrap.dedent("""
    import sys
    import collections

    class Widget:
        def __init__(self):
            self.parts = [0] * 20

        class Part:
            pass

    Made = type("Made", (), {})          # no class statement
    Point = collections.namedtuple("Point", "x y")
    class Blob(bytes):
        pass
    import lateimport                    # a new import: the moment to look again
    widgets = [Widget() for _ in range(40)]
    parts = [Widget.Part() for _ in range(5)]
    made = [Made() for _ in range(6)]
    points = [Point(1, 2)]
    blobs = [Blob(b"x")]
    counter = collections.Counter("abc")
    queues = [collections.deque([1])]
    if "decimal" in sys.argv:
        import decimal
    if "datetime" in sys.argv:
        import datetime
        stamps = [datetime.timedelta(seconds=i) for i in range(3)]
    if len(sys.argv) > 1 and sys.argv[1].isdigit():
        sys.exit(int(sys.argv[1]))
""")


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "prog.py").write_text(PROG)
    (tmp_path / "lateimport.py").write_text("X = 1\n")
    pkg = tmp_path / "tool"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("class Base:\n    pass\n")
    (pkg / "__main__.py").write_text(
        "from tool import Base\nclass Engine(Base):\n    pass\nengines = [Engine() for _ in range(4)]\n"
        "bases = [Base() for _ in range(2)]\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "cmd.py").write_text(
        "class Job:\n    pass\nif __name__ == '__main__':\n    jobs = [Job() for _ in range(9)]\n")
    return tmp_path


def classtrack(*args, cwd):
    """The program's folder is on its PYTHONPATH."""
    return classtrack_cli(*args, cwd=cwd, pythonpath=cwd)


def run(*args, cwd):
    r = classtrack("run", "--interval", "0", "-o", "out.ctdump", *args, cwd=cwd)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def tracked(cwd):
    """{class name: live count at the last snapshot} from the dump."""
    r = classtrack("report", "out.ctdump", "--json", cwd=cwd)
    assert r.returncode == 0, r.stderr
    return {c["name"]: c["last_count"] for c in json.loads(r.stdout)["classes"]}


def warnings(stderr):
    return [line for line in stderr.splitlines() if line.startswith("classtrack: warning: ")]


@pytest.mark.parametrize("spec", [["--track-class", "prog:Widget"],
                                  ["--track-class", "__main__:Widget"]])
def test_script_classes_by_file_name_or_main(spec, workdir):
    r = run(*spec, "prog.py", cwd=workdir)
    assert r.returncode == 0 and warnings(r.stderr) == [], r.stderr
    assert tracked(workdir) == {"__main__.Widget": 40}


def test_nested_class_by_qualname(workdir):
    r = run("--track-class", "prog:Widget.Part", "prog.py", cwd=workdir)
    assert r.returncode == 0 and warnings(r.stderr) == [], r.stderr
    assert tracked(workdir) == {"__main__.Part": 5}     # named as ClassTracker names it


def test_script_module_by_file_name(workdir):
    r = run("--track-module", "prog", "prog.py", cwd=workdir)
    assert r.returncode == 0, r.stderr
    got = tracked(workdir)
    assert got["__main__.Widget"] == 40 and got["__main__.Part"] == 5
    # made by type(), found in the module's globals at the next import
    assert got["__main__.Made"] == 6
    # a namedtuple is followed by the death watch; a bytes subclass is
    # variable-sized without a __weakref__ slot: said once, why
    assert got["__main__.Point"] == 1
    said = [line for line in r.stderr.splitlines() if "__main__.Blob" in line]
    assert len(said) == 1 and "variable-sized" in said[0] and "bytes" in said[0]


def test_dash_m_module_by_its_name(workdir):
    r = run("--track-class", "tool.sub.cmd:Job", "-m", "tool.sub.cmd", cwd=workdir)
    assert r.returncode == 0 and warnings(r.stderr) == [], r.stderr
    assert tracked(workdir) == {"__main__.Job": 9}


def test_dash_m_package_runs_its_main(workdir):
    r = run("--track-class", "tool:Engine", "--track-class", "tool:Base", "-m", "tool",
            cwd=workdir)
    assert r.returncode == 0 and warnings(r.stderr) == [], r.stderr
    # Engine derives from the tracked Base: counted under Base's name too is
    # the engine's business; both names are seen
    got = tracked(workdir)
    assert got.get("tool.Base", 0) + got.get("__main__.Engine", 0) == 6
    r = run("--track-class", "tool.__main__:Engine", "-m", "tool", cwd=workdir)
    assert warnings(r.stderr) == [] and tracked(workdir) == {"__main__.Engine": 4}


def test_names_that_never_matched(workdir):
    r = run("--track-class", "prog:Widgit", "--track-class", "nowhere:Thing",
            "--track-module", "progg", "--track-module", "lateimport", "prog.py", cwd=workdir)
    assert r.returncode == 0, r.stderr
    w = warnings(r.stderr)
    assert "classtrack: warning: prog:Widgit: no such class was ever defined "\
           "(did you mean prog:Widget?)" in w
    assert "classtrack: warning: nowhere:Thing: no such class was ever defined "\
           "(module nowhere was never imported)" in w
    assert any(line.startswith("classtrack: warning: progg: no such module was ever imported")
               for line in w), w
    assert "classtrack: warning: lateimport: the module defines no classes" in w
    assert len(w) == 4
    assert "dump written to out.ctdump" in r.stderr


def test_strict_and_the_programs_own_status(workdir):
    r = run("--strict", "--track-class", "prog:Widget", "prog.py", cwd=workdir)
    assert r.returncode == 0, r.stderr
    r = run("--strict", "--track-class", "prog:Widgit", "prog.py", cwd=workdir)
    assert r.returncode == 1
    assert "--strict: prog:Widgit tracked no class; exit status 1" in r.stderr
    assert (workdir / "out.ctdump").exists()
    # the program's own failure wins over --strict
    r = run("--strict", "--track-class", "prog:Widgit", "prog.py", "3", cwd=workdir)
    assert r.returncode == 3 and "--strict: prog:Widgit tracked no class" in r.stderr
    # without --strict a name that matched nothing is a warning only
    r = run("--track-class", "prog:Widgit", "prog.py", "3", cwd=workdir)
    assert r.returncode == 3
    # a name that matched only a class that cannot be followed one by one
    # counts it at snapshots: that is not nothing
    r = run("--strict", "--track-class", "collections:OrderedDict", "prog.py", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert "counting collections.OrderedDict at snapshots" in r.stderr


def untrackable(stderr):
    """The lines saying a class named by --track-class/--track-module is
    counted at snapshots, as it cannot be followed one by one."""
    return [line for line in stderr.splitlines() if line.startswith("classtrack: counting ")]


def test_c_classes_said_once_each_with_what_to_do(workdir):
    """OrderedDict is a static type on every version; deque and defaultdict
    are since 3.12 heap types, which the engine tracks when it can follow
    their instances (deque: by weak reference) and refuses otherwise."""
    r = run("--track-module", "collections", "--track-class", "collections:deque",
            "--track-class", "collections:OrderedDict", "prog.py", cwd=workdir)
    assert r.returncode == 0, r.stderr
    said = untrackable(r.stderr)
    got = tracked(workdir)
    for name in ("collections.deque", "collections.defaultdict", "collections.OrderedDict"):
        mine = [line for line in said
                if line.startswith("classtrack: counting %s at snapshots, not one by one:" % name)]
        if name == "collections.OrderedDict" or sys.version_info < (3, 12):
            assert len(mine) == 1, (name, said)
            assert "implemented in C" in mine[0] and "track the Python classes" not in mine[0]
        else:       # said once, or tracked, never both
            assert len(mine) + (name in got) == 1, (name, said, got)
    # the module's Python classes are tracked all the same
    assert not any("collections.Counter" in line for line in said)
    assert got["collections.Counter"] == 1
    assert warnings(r.stderr) == []


def test_c_class_of_a_module_imported_while_the_program_runs(workdir):
    r = run("--track-class", "datetime:timedelta", "prog.py", "datetime", cwd=workdir)
    said = untrackable(r.stderr)
    assert len(said) == 1 and said[0].startswith(
        "classtrack: counting datetime.timedelta at snapshots, not one by one:")
    assert warnings(r.stderr) == []         # it matched: no "never defined"


def test_c_extension_module(workdir):
    """decimal's classes come from _decimal (a static type before 3.13, a heap
    type of a C extension since)."""
    r = run("--track-class", "decimal:Decimal", "--track-module", "_decimal",
            "--track-module", "decimal", "prog.py", "decimal", cwd=workdir)
    if importlib.util.find_spec("_decimal") is None:
        pytest.skip("this Python has no _decimal")
    said = [line for line in untrackable(r.stderr) if "decimal.Decimal at" in line]
    assert len(said) == 1, r.stderr
    assert "implemented in C" in said[0] or "compiled" in said[0]
    # _decimal's classes call themselves decimal.*: the warning says where to look
    assert any("_decimal: the module defines no classes" in w and "decimal" in w
               for w in warnings(r.stderr)), r.stderr


def _mypyc_black():
    spec = importlib.util.find_spec("black")
    origin = spec.origin if spec else ""
    return origin if origin and not origin.endswith(".py") else None


@pytest.mark.skipif(_mypyc_black() is None, reason="needs black installed as a mypyc wheel")
def test_mypyc_compiled_package(tmp_path):
    (tmp_path / "in.py").write_text("def f(a,):\n  return [1,2,\n3]\n")
    r = subprocess.run([sys.executable, "-m", "classtrack", "run", "--interval", "0", "-o",
                        "out.ctdump", "--track-module", "black.mode", "--track-module",
                        "black.linegen", "-m", "black", "-q", "-", ],
                       stdin=open(tmp_path / "in.py"), cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("def f(\n")
    # compiled classes reach the tracker without a class statement ...
    got = tracked(tmp_path)
    # LineGenerator can be weakly referenced, but its weak-reference list is
    # managed by compiled code (which may reset it after allocation, as
    # deque's does): said once, or tracked, never both
    gen_said = [line for line in untrackable(r.stderr) if line.startswith(
        "classtrack: cannot track black.linegen.LineGenerator:")]
    assert len(gen_said) + (got.get("black.linegen.LineGenerator", 0) >= 1) == 1
    # ... and those it cannot follow are named once, with what to do
    said = [line for line in untrackable(r.stderr) if line.startswith(
        "classtrack: cannot track black.mode.Mode:")]
    assert len(said) == 1 and "compiled" in said[0] and "--no-binary" in said[0]
