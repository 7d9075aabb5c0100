"""`classtrack report`: the per-class table, --snapshots, --summary, --json.

Dumps are made by the real engine in this process (known numbers of
instances alive at each snapshot); the command runs in a subprocess."""
import io
import json
import re

import pytest

from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import ConsoleStats, Stats
from classtrack.report import table
from helpers import classtrack_cli


class Grows:
    def __init__(self):
        self.data = [0] * 30


class Steady:
    def __init__(self):
        self.name = "steady"


class AClassWhoseNameIsFarLongerThanThirtyCharacters:
    pass


LONG = __name__ + ".AClassWhoseNameIsFarLongerThanThirtyCharacters"
GROWS, STEADY = __name__ + ".Grows", __name__ + ".Steady"


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    """Grows: 0, 100, 40 alive; Steady: 10, 10, 10; the long one: 0, 1, 3."""
    path = tmp_path_factory.mktemp("report") / "app.ctdump"
    tracker = ClassTracker()
    for cls in (Grows, Steady, AClassWhoseNameIsFarLongerThanThirtyCharacters):
        tracker.track_class(cls)
    steady = [Steady() for _ in range(10)]
    tracker.create_snapshot("start")
    grows = [Grows() for _ in range(100)]
    longs = [AClassWhoseNameIsFarLongerThanThirtyCharacters()]
    tracker.create_snapshot("busy")
    del grows[40:]
    longs += [AClassWhoseNameIsFarLongerThanThirtyCharacters() for _ in range(2)]
    tracker.create_snapshot("end")
    tracker.detach_all_classes()
    Stats(tracker=tracker).dump_stats(str(path))
    del steady, grows, longs
    tracker.close()
    return path


def report(*args, cwd, columns=None):
    return classtrack_cli("report", *args, cwd=cwd, columns=columns)


def rows_of(stdout):
    """{class name: [the six number cells]} of a table printed unwrapped."""
    out = {}
    for line in stdout.splitlines()[3:]:
        if line.startswith("-") or line.startswith("("):
            continue
        name, *cells = line.split()
        out[name] = cells
    return out


def test_default_is_one_row_per_class_by_peak_size(dump):
    r = report("app.ctdump", cwd=dump.parent)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("3 classes, 113 instances tracked, 3 snapshots over ")
    assert lines[0].endswith("(start to end)")
    assert "peak" in lines[1] and "last" in lines[1] and "change" in lines[1]
    assert lines[2].split() == ["class", "size", "count", "size", "count", "size", "count"]
    rows = rows_of(r.stdout)
    assert list(rows) == [GROWS, STEADY, LONG]       # the peak sizes' order, checked below
    # peak size, peak count, last size, last count, size change, count change
    # (sizes print as "1.2 KB": two fields each)
    def counts(cells):
        joined = " ".join(cells).replace(" B", "B").replace(" KB", "KB").split()
        return joined[1], joined[3], joined[5]
    assert counts(rows[GROWS]) == ("100", "40", "+40")
    assert counts(rows[STEADY]) == ("10", "10", "0")
    assert counts(rows[LONG]) == ("3", "3", "+3")
    assert lines[-1].startswith("(3 classes)")
    # the printed sizes are those of the Stats API, snapshot by snapshot
    stats = Stats(filename=str(dump))
    peaks = {n: max(stats.annotate_snapshot(s)[n]["sum"] for s in stats.snapshots)
             for n in (GROWS, STEADY, LONG)}
    assert peaks[GROWS] > peaks[STEADY] > peaks[LONG] > 0


def test_json_matches_the_stats_api(dump):
    r = report("app.ctdump", "--json", cwd=dump.parent)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["format"] == "classtrack-report" and doc["version"] == 1
    assert doc["dump"] == "app.ctdump"
    assert [s["label"] for s in doc["snapshots"]] == ["start", "busy", "end"]
    times = [s["time"] for s in doc["snapshots"]]
    assert times == sorted(times)
    by_name = {c["name"]: c for c in doc["classes"]}
    assert [c["name"] for c in doc["classes"]] == [GROWS, STEADY, LONG]
    grows = by_name[GROWS]
    assert grows["counts"] == [0, 100, 40] and grows["instances"] == 100
    assert grows["peak_count"] == 100 and grows["peak_count_snapshot"] == 1
    assert grows["last_count"] == 40 and grows["count_change"] == 40
    assert by_name[STEADY]["counts"] == [10, 10, 10] and by_name[STEADY]["count_change"] == 0
    assert by_name[LONG]["counts"] == [0, 1, 3]
    stats = Stats(filename=str(dump))
    for name, c in by_name.items():
        sizes = [stats.annotate_snapshot(s)[name]["sum"] for s in stats.snapshots]
        assert c["sizes"] == sizes
        assert c["peak_size"] == max(sizes) and c["last_size"] == sizes[-1]
        assert c["size_change"] == sizes[-1] - sizes[0]
    assert grows["sizes"][1] > grows["sizes"][2] > 0


def test_names_are_never_cut(dump):
    # into a pipe: no width limit, one line per class
    r = report("app.ctdump", cwd=dump.parent)
    assert any(line.startswith(LONG + " ") for line in r.stdout.splitlines())
    # a narrow terminal: the long name on a line of its own, its numbers below
    r = report("app.ctdump", cwd=dump.parent, columns=70)
    lines = r.stdout.splitlines()
    k = lines.index(LONG)
    assert lines[k + 1].startswith(" ") and lines[k + 1].split()[-1] == "+3"
    for line in lines[1:]:
        assert len(line) <= 70 or line == LONG, line
    assert any(line.startswith(GROWS + " ") for line in lines)     # short names stay inline
    # a wide one: everything inline
    r = report("app.ctdump", cwd=dump.parent, columns=200)
    assert LONG not in r.stdout.splitlines()
    assert all(len(line) <= 200 for line in r.stdout.splitlines())


def test_class_and_limit(dump):
    r = report("app.ctdump", "--class", "Grows", cwd=dump.parent)
    assert list(rows_of(r.stdout)) == [GROWS]
    # the heading counts what the filter chose: classes and their instances
    everything = report("app.ctdump", cwd=dump.parent).stdout.splitlines()[0]
    total = int(re.search(r"([\d,]+) instances? tracked", everything).group(1)
                .replace(",", ""))
    head = r.stdout.splitlines()[0]
    assert head.startswith("1 class matching 'Grows',")
    grows = int(re.search(r"([\d,]+) instances? tracked", head).group(1).replace(",", ""))
    assert 0 < grows < total
    r = report("app.ctdump", "--limit", "2", cwd=dump.parent)
    assert list(rows_of(r.stdout)) == [GROWS, STEADY]
    assert "(1 more class not shown: --limit)" in r.stdout
    assert "(3 classes)" in r.stdout                 # the total is of every class
    r = report("app.ctdump", "--limit", "0.5", "--json", cwd=dump.parent)
    assert [c["name"] for c in json.loads(r.stdout)["classes"]] == [GROWS]
    r = report("app.ctdump", "--class", "NoSuchThing", cwd=dump.parent)
    assert r.returncode == 0 and "no class matches 'NoSuchThing'" in r.stdout
    assert r.stdout.startswith("0 classes matching 'NoSuchThing', 0 instances tracked")


def expected(dump, *calls):
    out = io.StringIO()
    stats = ConsoleStats(filename=str(dump), stream=out)
    for name, args, kwargs in calls:
        getattr(stats, name)(*args, **kwargs)
    return out.getvalue()


def test_snapshots_and_summary_are_the_pympler_listing(dump):
    r = report("app.ctdump", "--summary", cwd=dump.parent)
    assert r.stdout == expected(dump, ("print_summary", (), {}))
    r = report("app.ctdump", "--snapshots", cwd=dump.parent)
    assert r.stdout == expected(dump, ("print_summary", (), {}), ("sort_stats", ("size",), {}),
                                ("print_stats", (), {"limit": 20}))
    # --sort orders objects, so it prints the listing as before
    r = report("app.ctdump", "--sort", "classname", "--limit", "3", "--class", "Steady",
               cwd=dump.parent)
    assert r.stdout == expected(dump, ("print_summary", (), {}),
                                ("sort_stats", ("classname",), {}),
                                ("print_stats", (), {"clsname": "Steady", "limit": 3}))
    assert r.stdout.count(STEADY) >= 3


@pytest.mark.parametrize("args", [["--limit", "0"], ["--limit", "-1"], ["--json", "--sort", "size"],
                                  ["--summary", "--sort", "size"]])
def test_bad_combinations_are_one_line(args, dump):
    r = report("app.ctdump", *args, cwd=dump.parent)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("classtrack: ")


def test_modes_exclude_each_other(dump):
    r = report("app.ctdump", "--json", "--snapshots", cwd=dump.parent)
    assert r.returncode == 2 and "not allowed with" in r.stderr


def test_empty_dump(tmp_path):
    Stats(tracker=ClassTracker()).dump_stats(str(tmp_path / "empty.ctdump"))
    r = report("empty.ctdump", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "nothing to show: no snapshots" in r.stdout
    r = report("empty.ctdump", "--json", cwd=tmp_path)
    assert json.loads(r.stdout)["classes"] == []


def test_format_table_fits_the_width():
    rows = [table.ClassRow("m." + "X" * n, 1, [0, n * 7], [0, n * 1000]) for n in (5, 40, 90)]
    for width in (40, 80, 120, None):
        lines = table.format_table(rows, width=width)
        for r in rows:      # every name whole, on its row or a line of its own
            assert any(line == r.name or line.startswith(r.name + " ") for line in lines)
        if width is not None and width >= 60:     # the numbers alone need about 55
            assert all(len(line) <= width for line in lines if line not in
                       {r.name for r in rows}), (width, lines)
