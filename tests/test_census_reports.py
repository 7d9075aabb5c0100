"""report, diff and html read census files (classtrack attach -o,
Census.dump): one census, a series, growth, a diff, an HTML page."""
import json
import os

import pytest
from helpers import classtrack_cli

from classtrack import Census, CensusRow

DATA = os.path.join(os.path.dirname(__file__), "data")


def cli(*args):
    return classtrack_cli(*[str(a) for a in args], cwd=os.getcwd())


def write(tmp_path, name, counts, pid=4711, t=1000.0, extra=()):
    rows = [CensusRow("app.Leak", counts, counts * 72, None, None),
            CensusRow("app.Steady", 10, 720, None, None),
            CensusRow("<b>odd</b>", 1, 64, None, "module app -> dict['x'] -> <b>odd</b>")]
    rows += list(extra)
    c = Census(rows, 5000 + counts, 400000 + counts * 72, 0.25, None, pid, "3.14.10", t)
    path = tmp_path / name
    c.dump(path)
    return path


@pytest.fixture
def series(tmp_path):
    return [write(tmp_path, "s.%d.json" % k, 100 * k, t=1000.0 + k) for k in (1, 2, 3, 4)]


def test_report_of_one_census(tmp_path):
    path = write(tmp_path, "one.json", 300)
    r = cli("report", path)
    assert r.returncode == 0, r.stderr
    assert "census of process 4711 (Python 3.14.10): 5,300 objects" in r.stdout
    assert "app.Leak" in r.stdout and "21,600" in r.stdout
    r = cli("report", path, "--class", "Leak", "--json")
    doc = json.loads(r.stdout)
    assert [c["name"] for c in doc["classes"]] == ["app.Leak"]


def test_report_of_a_series_and_its_growth(series):
    r = cli("report", *reversed(series))        # in time order, whatever the order given
    assert r.returncode == 0, r.stderr
    assert "4 censuses of process 4711 over 3.0 s" in r.stdout
    leak = [line for line in r.stdout.splitlines() if line.startswith("app.Leak")][0]
    assert leak.split()[1:5] == ["100", "400", "+300", "28,800"], leak
    r = cli("report", "--growth=3", *series)
    assert r.returncode == 0, r.stderr
    assert "1 class grew at each of the last 3 censuses of process 4711" in r.stdout
    assert "app.Leak: 100 -> 200 -> 300 -> 400" in r.stdout
    assert "Steady" not in r.stdout
    r = cli("report", "--growth=3", "--json", *series)
    doc = json.loads(r.stdout)
    assert doc["format"] == "classtrack-census-growth"
    assert doc["classes"][0]["counts"] == [100, 200, 300, 400]
    r = cli("report", "--growth=5", *series)
    assert "nothing to show: --growth 5 needs 6 censuses, there are 4" in r.stdout


def test_diff_of_two_censuses(series):
    r = cli("diff", series[0], series[-1])
    assert r.returncode == 0, r.stderr
    assert "census of process 4711 at +3.0 s against process 4711" in r.stdout
    leak = [line for line in r.stdout.splitlines() if line.startswith("app.Leak")][0]
    assert leak.split()[1:] == ["400", "+300", "28,800", "+21,600"], leak
    assert "Steady" not in r.stdout            # unchanged
    doc = json.loads(cli("diff", "--json", series[0], series[-1]).stdout)
    assert doc["format"] == "classtrack-census-diff"
    assert doc["classes"][0] == {"name": "app.Leak", "count": 400, "size": 28800,
                                 "count_change": 300, "size_change": 21600}


def test_html_of_a_census(tmp_path, series):
    out = tmp_path / "c.html"
    r = cli("html", series[-1], "-o", out)
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "<td>app.Leak</td><td>400</td><td>28,800</td>" in page
    assert "<b>odd</b>" not in page and "&lt;b&gt;odd&lt;/b&gt;" in page


def test_refusals(tmp_path, series):
    dump = os.path.join(DATA, sorted(os.listdir(DATA))[0])
    r = cli("report", series[0], dump)
    assert r.returncode == 1
    assert "census files and dumps cannot be read together" in r.stderr
    other = write(tmp_path, "other.json", 100, pid=99)
    r = cli("report", series[0], other)
    assert r.returncode == 1 and "these censuses are of 2 processes (PIDs 99, 4711)" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "classtrack-census", "version": 7}')
    r = cli("report", bad)
    assert r.returncode == 1 and "census version 7; this classtrack reads version 1" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("report", "--snapshots", series[0])
    assert r.returncode == 1 and "a census has no snapshots" in r.stderr
    r = cli("html", series[0], series[1])
    assert r.returncode == 1 and "html takes one census file, not 2" in r.stderr
