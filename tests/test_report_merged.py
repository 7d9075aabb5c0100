"""Reports of several processes' dumps (``run --follow-fork``): the time
axes, the RSS lines and the per-process table.

The dumps are real: trackers in this process, each dumped under a
per-process name (``NAME.<run>.<pid>.ctdump``), then merged by the same
code as ``classtrack report`` and ``classtrack html``.  The engine's clock
is shared by the trackers of one process, as it is by the processes of one
run."""
import json
import math
import re
import subprocess
import sys
import time

import pytest

from classtrack import _core
from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import HtmlStats, Stats
from classtrack.report import merge, svg

RUN = "0123abcd"
CHAR_PX = 7.0       # a 12 px system-ui character is narrower than this
TICK = re.compile(r'<text x="([\d.]+)" y="([\d.]+)" text-anchor="middle">([^<]*)</text>')


class Made:
    def __init__(self, i=0):
        self.payload = [i] * 20


class Rare:
    pass


def charts(page):
    return re.findall(r'<svg class="chart".*?</svg>', page, re.S)


def x_labels(chart):
    """(x, text) of the x-axis tick labels of one chart, left to right."""
    ticks = [(float(x), float(y), text) for x, y, text in TICK.findall(chart)]
    return sorted((x, text) for x, _, text in ticks)


def assert_apart(labels, what):
    for (xa, ta), (xb, tb) in zip(labels, labels[1:]):
        room = xb - xa
        need = (len(ta) + len(tb)) / 2.0 * CHAR_PX
        assert room >= need, (what, ta, tb, room, need, labels)


def short_span_labels(texts):
    """Labels of an axis tens of ms long: in ms while it is under a second
    of the engine's clock ('0 ms, 5 ms'), else seconds with the ms digits
    ('4.850s, 4.855s') -- the clock started with the first test."""
    if all(t.endswith(" ms") for t in texts):
        return True
    return all(re.fullmatch(r"\d+\.\d{2,3}s", t) for t in texts)


@pytest.fixture
def two_processes(tmp_path):
    return make_dumps(tmp_path, 60)


def make_dumps(tmp_path, nsnaps, parents=True):
    """Two 'processes' of one run, `nsnaps` snapshots between them over
    tens of ms; the first tracks Made and Rare and makes both, the second
    tracks both and makes only Made."""
    first, second = ClassTracker(), ClassTracker()
    for t in (first, second):
        t.track_class(Made)
    first.track_class(Rare)
    rare = [Rare() for _ in range(7)]
    second.track_class(Rare)         # after the Rare instances: it never sees one
    keep = []
    for i in range(nsnaps):
        keep += [Made(i) for _ in range(20)]
        (first if i % 2 == 0 else second).create_snapshot("step %d" % i)
        time.sleep(0.0007)
    paths = [str(tmp_path / ("run.%s.%d.ctdump" % (RUN, pid))) for pid in (1001, 1002)]
    # as run --follow-fork writes them: 1001 started by a shell, 1002 by 1001
    for path, t, process in zip(paths, (first, second), ((1001, 1), (1002, 1001))):
        with open(path, "wb") as f:
            _core.dump_write(f, Stats(tracker=t)._dump_data(), process if parents else None)
    first.clear()
    second.clear()
    del keep, rare
    return paths


def html_of(paths, out):
    stats, procs = merge.load_any(paths, HtmlStats)
    stats.processes = procs
    stats.create_html(str(out))
    return out.read_text()


def test_merged_time_axis_labels_are_apart_and_distinct(two_processes, tmp_path):
    page = html_of(two_processes, tmp_path / "run.html")
    timeline, bars = charts(page)[:2]
    labels = x_labels(timeline)
    texts = [t for _, t in labels]
    assert len(labels) >= 3, labels
    assert len(set(texts)) == len(texts), texts
    assert_apart(labels, "time axis")
    assert short_span_labels(texts), texts
    # one bar per merged snapshot: their labels are thinned, not overlaid
    bar_labels = x_labels(bars)
    assert bar_labels and len(bar_labels) < 60
    assert_apart(bar_labels, "snapshot axis")


def test_merged_snapshot_labels_do_not_overlap(tmp_path):
    """20 bars, each labelled 'step N (pid P) (time)': a label per bar
    would overlap its neighbours."""
    page = html_of(make_dumps(tmp_path, 20), tmp_path / "run.html")
    bar_labels = x_labels(charts(page)[1])
    assert len(bar_labels) >= 2
    assert_apart(bar_labels, "snapshot axis")
    assert all("(pid 100" in t for _, t in bar_labels), bar_labels    # not cut short


def test_short_run_labels_in_ms_all_different(tmp_path, tracker):
    t = tracker
    t.track_class(Made)
    keep = []
    for i in range(12):
        keep.append(Made(i))
        t.create_snapshot()
        time.sleep(0.002)
    HtmlStats(tracker=t).create_html(str(tmp_path / "short.html"))
    page = (tmp_path / "short.html").read_text()
    cls = (tmp_path / "short_files" / (Made.__module__.replace(".", "_") + "_Made.html"))
    for chart in [charts(page)[0]] + charts(cls.read_text())[:1]:
        texts = [x for _, x in x_labels(chart)]
        assert len(texts) >= 3 and len(set(texts)) == len(texts), texts
        assert_apart(x_labels(chart), "short run")
        assert short_span_labels(texts), texts
    t.clear()


@pytest.mark.parametrize("lo,hi", [(0, 0.02), (0.137, 0.177), (0, 1.5), (12.3, 12.34),
                                   (0, 75), (59, 3700), (0, 100000), (5e-4, 9e-4),
                                   (3599.5, 3601), (0.99, 1.01)])
@pytest.mark.parametrize("px", [120, 300, 772])
def test_time_ticks(lo, hi, px):
    ticks = svg.time_ticks(lo, hi, px)
    values = [v for v, _ in ticks]
    texts = [t for _, t in ticks]
    assert ticks and len(set(texts)) == len(texts), ticks
    assert all(lo - 1e-9 <= v <= hi + 1e-9 for v in values), ticks
    if len(ticks) > 1:
        step = values[1] - values[0]
        for a, b in zip(values, values[1:]):
            assert b - a == pytest.approx(step)
        # the step is round: 1, 2 or 5 times a power of ten, or whole minutes
        if step < 60:
            mant = step / 10 ** math.floor(math.log10(step) + 1e-9)
            assert round(mant, 6) in (1, 2, 5), step
        else:
            assert step % 60 == 0, step
        widest = max(len(t) for t in texts) * CHAR_PX
        assert step / (hi - lo) * px >= widest, ticks


def test_one_rss_line_per_process(two_processes, tmp_path):
    page = html_of(two_processes, tmp_path / "run.html")
    timeline = charts(page)[0]
    titles = re.findall(r"<polyline[^>]*><title>([^<]*)</title>", timeline)
    assert "RSS pid 1001" in titles and "RSS pid 1002" in titles
    assert "process RSS" not in titles          # no sum jumping between processes
    # each process's line has a point per snapshot of that process (30 each)
    for pid in (1001, 1002):
        pts = re.search(r'<polyline points="([^"]*)"[^>]*><title>RSS pid %d<' % pid, timeline)
        assert len(pts.group(1).split()) == 30
    # the legend names them
    assert "RSS pid 1001" in page.split('id="timeline"')[1].split("</section>")[0]


def test_process_table_leaves_out_classes_without_instances(two_processes, tmp_path):
    r = subprocess.run([sys.executable, "-m", "classtrack", "report"] + two_processes,
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # 1,200 Made seen by each tracker, and the 7 Rare
    start = lines.index("2 processes, 2,407 instances tracked; per process:")
    section = lines[start:]
    made, rare = Made.__module__ + ".Made", Rare.__module__ + ".Rare"
    listed = {(ln.split()[1], name) for ln in section if ln.startswith("pid ")
              for name in (made, rare) if name in ln.split()}
    assert listed == {("1001", made), ("1001", rare), ("1002", made)}, section
    assert any("left out" in ln and "1 for pid 1002" in ln for ln in section), section
    assert not any("pid 1001" in ln for ln in section if "left out" in ln)
    # the HTML section too
    page = html_of(two_processes, tmp_path / "run.html")
    procs = page.split('id="processes"')[1].split("</section>")[0]
    assert procs.count("<tr>") == 1 + 3
    assert "1 for pid 1002" in procs
    # and report --json, the same classes per process
    r = subprocess.run([sys.executable, "-m", "classtrack", "report", "--json"] + two_processes,
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    doc = json.loads(r.stdout)
    per = {p["pid"]: ([c["name"] for c in p["classes"]], p["classes_without_instances"])
           for p in doc["processes"]}
    assert per == {1001: ([made, rare], 0), 1002: ([made], 1)}, per


def test_process_table_says_order_and_parent(two_processes, tmp_path):
    _, procs = merge.load(two_processes, Stats)
    lines = merge.process_lines(procs)
    head = lines[2].split()
    assert head[:3] == ["process", "parent", "started"]
    rows = {ln.split("  ")[0]: ln for ln in lines[3:] if ln.startswith("pid ")}
    assert "pid 1 (outside)" in rows["pid 1001"]
    assert "pid 1001" in rows["pid 1002"].split("pid 1002", 1)[1]
    assert [p.pid for p in procs] == [1001, 1002]       # by first snapshot
    assert [p.ppid for p in procs] == [1, 1001]
    assert [d["ppid"] for d in (p.as_dict() for p in procs)] == [1, 1001]


def test_process_table_of_dumps_without_parents(tmp_path):
    """Dumps from before the PROCESS section: no parent is claimed."""
    _, procs = merge.load(make_dumps(tmp_path, 4, parents=False), Stats)
    lines = merge.process_lines(procs)
    assert all(ln.split()[2] == "-" for ln in lines[3:5]), lines
    assert [p.ppid for p in procs] == [None, None]


@pytest.mark.parametrize("lo", [0.0, 77.89, 3725.0])
def test_time_labels_count_from_the_start_whatever_the_clock(lo):
    """The tracker's clock counts from classtrack's import: a tracker made
    late in a long process (a test suite) starts at 78 s, and its axis
    still reads "time since start" (it read 1m17.89s, 1m17.90s, ...)."""
    ticks = svg.time_ticks(lo, lo + 0.31, 600)
    labels = [t for _, t in ticks]
    assert labels[0] in ("0 ms", "0s", "0"), labels
    assert not any("m" in t.replace("ms", "") for t in labels), labels
    assert len(set(labels)) == len(labels) >= 3
    assert all(lo <= v <= lo + 0.31 + 1e-9 for v, _ in ticks)
