"""Per-class diffs (Stats.diff, tracker.diff, `classtrack diff`) and
`classtrack report --growth`, over real trackers and real dumps."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import DumpError, Stats
from classtrack.report.diff import ClassDiff, DiffRow
from helpers import classtrack_cli as classtrack


class Grows:
    def __init__(self):
        self.data = [0] * 40


class Shrinks:
    def __init__(self):
        self.name = "shrinks"


class Steady:
    pass


GROWS, SHRINKS, STEADY = (__name__ + "." + c for c in ("Grows", "Shrinks", "Steady"))


@pytest.fixture
def diff_tracker(tracker):
    """A tracker of the three classes diffed here."""
    for cls in (Grows, Shrinks, Steady):
        tracker.track_class(cls)
    return tracker


def _live(stats, snapshot, name):
    info = stats.annotate_snapshot(snapshot)[name]
    return info["active"], info["sum"]


# -- Stats.diff and tracker.diff ---------------------------------------------------

def test_tracker_diff_between_two_snapshots(diff_tracker):
    steady = [Steady() for _ in range(4)]
    shrinks = [Shrinks() for _ in range(30)]
    diff_tracker.create_snapshot("before")
    grows = [Grows() for _ in range(50)]
    del shrinks[10:]
    diff_tracker.create_snapshot("after")

    d = diff_tracker.diff(0, 1)
    assert isinstance(d, ClassDiff)
    assert [r.name for r in d] == [GROWS, STEADY, SHRINKS]     # by size growth
    stats = Stats(tracker=diff_tracker)
    before, after = stats.snapshots
    for r in d:
        c0, s0 = _live(stats, before, r.name)
        c1, s1 = _live(stats, after, r.name)
        assert (r.old_count, r.new_count, r.old_size, r.new_size) == (c0, c1, s0, s1)
        assert r.count_delta == c1 - c0 and r.size_delta == s1 - s0
    g, s = d.row(GROWS), d.row(SHRINKS)
    assert (g.count_delta, s.count_delta, d.row(STEADY).count_delta) == (50, -20, 0)
    assert g.size_delta > 50 * 40 * 8 and s.size_delta < 0
    assert g.retained_delta is None           # this engine measured no retained sizes
    # Snapshot objects, negative indices and the reverse direction
    same = diff_tracker.diff(diff_tracker.snapshots[0], -1)
    assert [(r.name, r.count_delta, r.size_delta) for r in same] == \
        [(r.name, r.count_delta, r.size_delta) for r in d]
    back = diff_tracker.diff(1, 0)
    assert back.row(GROWS).count_delta == -50 and back[0].name == SHRINKS
    text = str(d)
    assert GROWS in text and "+50" in text and "1 unchanged" in text
    assert STEADY not in text                  # unchanged classes are counted, not listed
    del steady, grows, shrinks


def test_tracker_diff_bad_snapshots(diff_tracker):
    diff_tracker.create_snapshot()
    other = ClassTracker()
    other.create_snapshot()
    try:
        with pytest.raises(IndexError, match="out of range: there is 1 snapshot"):
            diff_tracker.diff(0, 1)
        with pytest.raises(ValueError, match="not one of"):
            diff_tracker.diff(0, other.snapshots[0])
        with pytest.raises(TypeError, match="Snapshot or an index"):
            diff_tracker.diff(0, "last")
    finally:
        other.close()


def test_stats_diff_of_two_dumps_of_a_growing_program(diff_tracker, tmp_path):
    keep = [Shrinks() for _ in range(5)]
    diff_tracker.create_snapshot("first")
    Stats(tracker=diff_tracker).dump_stats(str(tmp_path / "old.ctdump"))
    keep += [Grows() for _ in range(25)]
    diff_tracker.create_snapshot("second")
    keep += [Grows() for _ in range(25)]
    diff_tracker.create_snapshot("third")
    Stats(tracker=diff_tracker).dump_stats(str(tmp_path / "new.ctdump"))

    old = Stats(filename=str(tmp_path / "old.ctdump"))
    new = Stats(filename=str(tmp_path / "new.ctdump"))
    d = old.diff(new)                            # new minus old, at each one's last snapshot
    assert d.old.desc == "first" and d.new.desc == "third"
    assert d[0].name == GROWS and d[0].old_count == 0 and d[0].new_count == 50
    assert d.row(SHRINKS).count_delta == 0 and d.row(SHRINKS).size_delta == 0
    # the same as the live tracker's diff between those snapshots
    live = diff_tracker.diff(0, 2)
    assert [(r.name, r.count_delta, r.size_delta) for r in d] == \
        [(r.name, r.count_delta, r.size_delta) for r in live]
    # a class only one side knows counts 0 on the other
    lonely = ClassTracker()
    lonely.track_class(Steady)
    s = [Steady() for _ in range(3)]
    lonely.create_snapshot()
    try:
        one_side = Stats(tracker=lonely).diff(new)
        assert one_side.row(STEADY).count_delta == -3 and one_side.row(STEADY).new_count == 0
        assert one_side.row(GROWS).old_count == 0 and one_side.row(GROWS).count_delta == 50
    finally:
        lonely.close()
    with pytest.raises(TypeError):
        old.diff(str(tmp_path / "new.ctdump"))
    with pytest.raises(ValueError, match="no snapshot"):
        old.diff(Stats())
    del keep, s


def test_retained_delta_appears_with_the_data():
    """Retained figures (issue 15, when a snapshot measures them) flow into
    the rows; a class with none on a measured side retained 0."""
    class FakeSnap:
        desc, timestamp, label = "s", 0.0, "s"
    with_retained = (3, 300, 1000)
    d = ClassDiff([DiffRow("a", (1, 100, 400), with_retained),
                   DiffRow("b", (1, 100, None), (1, 100, None))], FakeSnap(), FakeSnap())
    assert d.row("a").retained_delta == 600 and d.row("b").retained_delta is None
    assert d.has_retained and "retained" in d.format()


# -- classtrack diff -----------------------------------------------------------------

PROGRAM = textwrap.dedent("""
    import sys

    class Session:
        def __init__(self):
            self.buf = bytearray(100)

    class Cache:
        pass

    sessions = [Session() for _ in range(int(sys.argv[1]))]
    caches = [Cache() for _ in range(int(sys.argv[2]))]
""")


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    """Two runs of one program: Sessions 10 -> 200, Caches 8 -> 2."""
    d = tmp_path_factory.mktemp("diff")
    (d / "prog.py").write_text(PROGRAM)
    for out, args in (("old.ctdump", ["10", "8"]), ("new.ctdump", ["200", "2"])):
        r = classtrack("run", "-o", out, "--track-mine", "prog.py", *args, cwd=d)
        assert r.returncode == 0, r.stderr
    return d


def test_cli_diff_table_and_json(dumps):
    r = classtrack("diff", "old.ctdump", "new.ctdump", cwd=dumps)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "old.ctdump -> new.ctdump"
    names = [ln.split()[0] for ln in lines[4:]]
    assert names == ["__main__.Session", "__main__.Cache"]
    session = lines[4].split()
    assert session[1:4] == ["10", "200", "+190"]

    j = classtrack("diff", "old.ctdump", "new.ctdump", "--json", cwd=dumps)
    assert j.returncode == 0, j.stderr
    doc = json.loads(j.stdout)
    assert doc["format"] == "classtrack-diff" and doc["old"]["dump"] == "old.ctdump"
    rows = {c["name"]: c for c in doc["classes"]}
    assert (rows["__main__.Session"]["count_change"], rows["__main__.Cache"]["count_change"]) \
        == (190, -6)
    # the sizes are what the dumps themselves say at their last snapshots
    old, new = Stats(filename=str(dumps / "old.ctdump")), Stats(filename=str(dumps / "new.ctdump"))
    want = (new.annotate_snapshot(new.snapshots[-1])["__main__.Session"]["sum"]
            - old.annotate_snapshot(old.snapshots[-1])["__main__.Session"]["sum"])
    assert rows["__main__.Session"]["size_change"] == want > 190 * 100
    assert doc["classes"][0]["name"] == "__main__.Session"

    one = json.loads(classtrack("diff", "old.ctdump", "new.ctdump", "--json", "--limit", "1",
                                cwd=dumps).stdout)
    assert [c["name"] for c in one["classes"]] == ["__main__.Session"]
    limited = classtrack("diff", "old.ctdump", "new.ctdump", "--limit", "1", cwd=dumps)
    assert "__main__.Cache" not in limited.stdout and "1 more class not shown" in limited.stdout


def test_cli_diff_fits_the_width(dumps):
    r = classtrack("diff", "old.ctdump", "new.ctdump", cwd=dumps, columns=50)
    assert r.returncode == 0
    table = r.stdout.splitlines()[2:]               # after the two description lines
    assert max(len(ln) for ln in table) <= 50
    assert "__main__.Session" in r.stdout.splitlines()   # a long name on a line of its own


@pytest.mark.parametrize("args", [["missing.ctdump", "new.ctdump"], ["old.ctdump", "bad.ctdump"],
                                  ["old.ctdump", "."], ["old.ctdump", "empty.ctdump"]])
def test_cli_diff_bad_files_one_line_exit_1(dumps, args, tmp_path):
    (dumps / "bad.ctdump").write_bytes(b"\x89CTRK\r\n\x1a" + b"\0" * 5)
    Stats().dump_stats(str(dumps / "empty.ctdump"))
    r = classtrack("diff", *args, cwd=dumps)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.startswith("classtrack: ")
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    with pytest.raises((DumpError, OSError)):
        if args[1] == "bad.ctdump":
            Stats(filename=str(dumps / "bad.ctdump"))
        else:
            raise OSError


@pytest.mark.parametrize("args", [["old.ctdump"], ["a", "b", "--limit", "0"],
                                  ["a", "b", "--limit", "x"]])
def test_cli_diff_bad_arguments_exit_2(dumps, args):
    r = classtrack("diff", *args, cwd=dumps)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr


def test_cli_diff_closed_pipe_is_quiet(tmp_path, tracker):
    t = tracker
    keep = []
    for i in range(4000):          # ~170 KB of table: far more than a pipe holds
        obj = Grows()
        keep.append(obj)
        t.track_object(obj, name="some.rather.long.module.path.Class%04d" % i)
    t.create_snapshot()
    Stats(tracker=t).dump_stats(str(tmp_path / "a.ctdump"))
    del keep[::2]
    t.create_snapshot()
    Stats(tracker=t).dump_stats(str(tmp_path / "b.ctdump"))
    t.close()
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)   # which hides a closed pipe (see test_cli_pipes)
    proc = subprocess.Popen([sys.executable, "-m", "classtrack", "diff", "a.ctdump", "b.ctdump"],
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    assert proc.stdout.read(100)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == "", err


# -- classtrack report --growth -------------------------------------------------------

class Leak:
    pass


class Wobble:
    pass


LEAK, WOBBLE = __name__ + ".Leak", __name__ + ".Wobble"
WOBBLE_COUNTS = [5, 2, 6, 3, 7]


@pytest.fixture(scope="module")
def growth_dump(tmp_path_factory):
    """Five snapshots: Leak 1, 3, 6, 10, 15 alive (always growing); Wobble
    5, 2, 6, 3, 7 (up and down); Steady 3 throughout."""
    path = tmp_path_factory.mktemp("growth") / "g.ctdump"
    t = ClassTracker()
    for cls in (Leak, Wobble, Steady):
        t.track_class(cls)
    leak, wobble, steady = [], [], [Steady() for _ in range(3)]
    for k, w in enumerate(WOBBLE_COUNTS):
        leak += [Leak() for _ in range(k + 1)]
        wobble[:] = [Wobble() for _ in range(w)]
        t.create_snapshot("s%d" % k)
    t.detach_all_classes()
    Stats(tracker=t).dump_stats(str(path))
    t.close()
    del leak, wobble, steady
    return path


def growth(dump, *args, json_out=False):
    r = classtrack("report", dump.name, *args, *(["--json"] if json_out else []), cwd=dump.parent)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return json.loads(r.stdout)["growth"] if json_out else r.stdout.splitlines()


def test_growth_names_the_class_that_always_grew(growth_dump):
    lines = growth(growth_dump, "--growth")                  # default: the last 3 snapshots
    assert lines[1] == "1 class grew at each of the last 3 snapshots:"
    assert lines[2].split() == ["class", "s2", "s3", "s4", "change"]
    assert lines[3].split() == [LEAK, "6", "10", "15", "+9"]
    assert len(lines) == 4                                  # Wobble and Steady are not named
    lines = growth(growth_dump, "--growth", "5")
    assert lines[3].split() == [LEAK, "1", "3", "6", "10", "15", "+14"]
    # over the last 2 snapshots Wobble grew too (3 -> 7); Leak grew more
    assert [ln.split()[0] for ln in growth(growth_dump, "--growth=2")[3:]] == [LEAK, WOBBLE]
    assert [ln.split()[0] for ln in growth(growth_dump, "--growth=2", "--class", "Wob")[3:]] \
        == [WOBBLE]


def test_growth_json(growth_dump):
    g = growth(growth_dump, "--growth", json_out=True)
    assert g == {"last": 3, "first_snapshot": 2, "snapshots": [2, 3, 4],
                 "classes": [{"name": LEAK, "counts": [6, 10, 15]}]}
    # the counts are the report's own: the same "counts" the classes carry
    r = classtrack("report", growth_dump.name, "--json", "--growth", "2", cwd=growth_dump.parent)
    doc = json.loads(r.stdout)
    counts = {c["name"]: c["counts"] for c in doc["classes"]}
    assert counts[WOBBLE] == WOBBLE_COUNTS
    assert {c["name"]: c["counts"] for c in doc["growth"]["classes"]} == \
        {LEAK: counts[LEAK][-2:], WOBBLE: counts[WOBBLE][-2:]}


def test_growth_over_more_snapshots_than_there_are(growth_dump):
    lines = growth(growth_dump, "--growth", "6")
    assert lines[1] == "nothing to show: --growth 6 needs 6 snapshots, there are 5"
    assert growth(growth_dump, "--growth", "60", json_out=True) == \
        {"last": 60, "first_snapshot": None, "classes": []}


@pytest.mark.parametrize("args", [["--growth", "1"], ["--growth", "-3"],
                                  ["--growth", "--summary"], ["--growth", "3", "--snapshots"],
                                  ["--growth", "--sort", "size"]])
def test_growth_bad_requests_one_line_exit_1(growth_dump, args):
    r = classtrack("report", growth_dump.name, *args, cwd=growth_dump.parent)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("classtrack: --growth") and len(r.stderr.splitlines()) == 1


def test_growing_over_the_report_rows(growth_dump):
    from classtrack.report import diff, table
    rows = table.class_rows(Stats(filename=str(growth_dump)))
    assert [(r.name, c) for r, c in diff.growing(rows, 4)] == [(LEAK, [3, 6, 10, 15])]
    assert diff.growing(rows, 6) == []
    with pytest.raises(ValueError):
        diff.growing(rows, 1)


def test_growth_is_not_hidden_by_an_exit_snapshot_right_after_the_last(tmp_path):
    """A leak that grows every interval (11200 ... 12400), then an exit
    snapshot a moment after the last one (12400 again): the
    near-duplicate is left out, and the leak is found for N = 2, 3, 4."""
    import time
    t = ClassTracker()
    t.track_class(Leak)
    leak = [Leak() for _ in range(10800)]
    for _ in range(4):
        time.sleep(0.2)                 # the monitor's interval
        leak += [Leak() for _ in range(400)]
        t.create_snapshot()
    t.create_snapshot("exit")           # right after the last one: nothing new
    t.detach_all_classes()
    path = tmp_path / "steady.ctdump"
    Stats(tracker=t).dump_stats(str(path))
    t.close()
    del leak
    for n in (2, 3, 4):
        lines = growth(path, "--growth", str(n))
        assert "1 snapshot taken right before the next one left out" in lines[1], lines
        assert lines[2] == "1 class grew at each of the last %d snapshots:" % n, lines
        assert lines[4].split()[0] == LEAK
        assert lines[4].split()[-2] == "12,400" and lines[3].split()[-2] == "exit"
    g = growth(path, "--growth", "3", json_out=True)
    assert g["snapshots"] == [1, 2, 4], g
    assert g["classes"] == [{"name": LEAK, "counts": [11600, 12000, 12400]}]


def test_diff_and_report_count_the_same_classes(tmp_path):
    """A watched class that was never instantiated is counted by neither."""
    (tmp_path / "prog.py").write_text(
        "import sys\nclass A: pass\nclass B: pass\nclass Never: pass\n"
        "a = [A() for _ in range(int(sys.argv[1]))]\nb = [B()] * 0 + [B() for _ in range(2)]\n")
    for name, n in (("one", "3"), ("two", "5")):
        r = classtrack("run", "--track-module", "prog", "-o", name + ".ctdump", "prog.py", n,
                       cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    report = classtrack("report", "one.ctdump", cwd=tmp_path).stdout.splitlines()[0]
    assert report.startswith("2 classes,"), report
    head = classtrack("diff", "one.ctdump", "two.ctdump", cwd=tmp_path).stdout.splitlines()[1]
    assert head.endswith("1 class changed, 1 unchanged"), head
