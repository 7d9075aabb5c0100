"""Retained sizes in the tracker: snapshot entries' .retained, a snapshot's
shared bytes, Stats, dumps (format 1.1) and the reports."""
import gc
import io
import sys
import types

import pytest

import classtrack
import dumpcraft
from classtrack import DumpError, asizeof
from classtrack.classtracker_stats import ConsoleStats, HtmlStats, Stats


class Doc:
    def __init__(self, n=200):
        self.content = [str(i) * 8 for i in range(n)]


class Other:
    pass


def _last(view):
    return view.snapshots[-1][1]


def _views(tracker, name):
    return {id(v.ref()): v for v in tracker.index[name] if v.ref() is not None}


def test_seed_example_shared_then_retained_by_its_last_holder(tracker):
    tracker.track_class(Doc)
    a, b = Doc(10), Doc(500)
    a.notmine = b.content
    lst = asizeof.asizeof(b.content)
    tracker.create_snapshot("shared", retained=True)
    views = _views(tracker, "test_retained_tracker.Doc")
    ra, rb = _last(views[id(a)]).retained, _last(views[id(b)]).retained
    assert ra < lst / 5 and rb < lst / 5            # neither retains the list
    snap = tracker.snapshots[-1]
    assert snap.shared >= lst                        # it is shared, given to none
    assert ra + rb + snap.shared == classtrack.retained_size(a, b)
    del a.notmine
    tracker.create_snapshot("b alone", retained=True)
    assert _last(views[id(b)]).retained >= lst
    assert tracker.snapshots[-1].shared == 0
    # the first snapshot's figures are kept as they were
    assert views[id(b)].snapshots[-2][1].retained == rb


def test_data_held_by_a_module_global_is_retained_by_nobody(tracker):
    mod = types.ModuleType("ct_retained_app")
    sys.modules["ct_retained_app"] = mod
    try:
        tracker.track_class(Doc)
        a = Doc(1000)
        mod.cache = a.content
        tracker.create_snapshot(retained=True)
        entry = _last(_views(tracker, "test_retained_tracker.Doc")[id(a)])
        assert entry.retained < asizeof.asizeof(a.content) / 5
        assert tracker.snapshots[-1].shared == 0
    finally:
        del sys.modules["ct_retained_app"]


def test_cycle_between_tracked_objects(tracker):
    tracker.track_class(Doc)
    a, b = Doc(300), Doc(300)
    a.peer, b.peer = b, a
    holder = [a]                    # only a is held from outside the pair
    del b
    tracker.create_snapshot(retained=True)
    together = classtrack.retained_size(a)      # a keeps b alive: both
    views = _views(tracker, "test_retained_tracker.Doc")
    b = a.peer
    ra, rb = _last(views[id(a)]).retained, _last(views[id(b)]).retained
    # b keeps its own content; a does not take it over (retained sizes add up)
    assert rb >= asizeof.asizeof(b.content)
    assert ra >= asizeof.asizeof(a.content)
    assert ra < asizeof.asizeof(a.content) + asizeof.asizeof(b.content)
    assert ra + rb + tracker.snapshots[-1].shared == together
    del holder


def test_track_class_retained_is_measured_at_every_snapshot(tracker):
    tracker.track_class(Doc, retained=True)
    tracker.track_class(Other)
    d, o = Doc(), Other()
    tracker.create_snapshot()
    assert _last(_views(tracker, "test_retained_tracker.Doc")[id(d)]).retained > 0
    assert _last(_views(tracker, "test_retained_tracker.Other")[id(o)]).retained is None
    assert tracker.snapshots[-1].shared is not None


def test_track_object_retained(tracker):
    d, e = Doc(), Doc()
    tracker.track_object(d, retained=True)
    tracker.track_object(e)
    tracker.create_snapshot()
    views = {id(v.ref()): v for v in tracker.index["Doc"]}
    assert _last(views[id(d)]).retained >= asizeof.asizeof(d)
    assert _last(views[id(e)]).retained is None


def test_no_retained_by_default(tracker):
    tracker.track_class(Doc)
    d = Doc()
    tracker.create_snapshot()
    assert _last(_views(tracker, "test_retained_tracker.Doc")[id(d)]).retained is None
    assert tracker.snapshots[-1].shared is None
    assert "retained" not in tracker.stats.annotate_snapshot(tracker.snapshots[-1])[
        "test_retained_tracker.Doc"]
    del d


def test_retained_does_not_keep_objects_alive(tracker):
    import weakref
    tracker.track_class(Doc, retained=True)
    d = Doc()
    ref = weakref.ref(d)
    tracker.create_snapshot()
    del d
    gc.collect()
    assert ref() is None


def _dumped(tracker):
    f = io.BytesIO()
    Stats(tracker=tracker).dump_stats(f, close=False)
    return f.getvalue()


def test_dump_keeps_retained_and_shared(tracker):
    tracker.track_class(Doc)
    a, b = Doc(10), Doc(400)
    a.notmine = b.content
    tracker.create_snapshot("plain")
    tracker.create_snapshot("measured", retained=True)
    live = ConsoleStats(tracker=tracker)
    loaded = Stats()
    loaded.load_stats(io.BytesIO(_dumped(tracker)))
    assert [s.shared for s in loaded.snapshots] == [None, tracker.snapshots[1].shared]
    for stats in (live, loaded):
        got = sorted(tuple(e.retained for _, e in o.snapshots)
                     for o in stats.index["test_retained_tracker.Doc"])
        want = sorted(tuple(e.retained for _, e in o.snapshots)
                      for o in tracker.index["test_retained_tracker.Doc"])
        assert got == want
        classes = stats.annotate_snapshot(stats.snapshots[1])
        doc = classes["test_retained_tracker.Doc"]
        assert doc["retained"] == sum(w[-1] for w in want)
        assert "retained" not in stats.annotate_snapshot(stats.snapshots[0])[
            "test_retained_tracker.Doc"]


def test_dump_is_version_1_1_and_its_retained_section_is_skippable(tracker):
    tracker.track_class(Doc)
    d = Doc()
    tracker.create_snapshot(retained=True)
    raw = _dumped(tracker)
    head, sections = dumpcraft.split(raw)
    assert head[10:12] == b"\x01\x00"               # minor 1
    tags = [t for t, _ in sections]
    assert 0x88 in tags and tags.index(0x88) > tags.index(0x06)
    # a 1.0 file (no RETAINED section) still loads, without retained sizes
    old = dumpcraft.join(dumpcraft.header(minor=0), [s for s in sections if s[0] != 0x88])
    stats = Stats()
    stats.load_stats(io.BytesIO(old))
    assert stats.snapshots[0].shared is None
    assert all(e.retained is None for o in stats.index["test_retained_tracker.Doc"]
               for _, e in o.snapshots)
    del d


def _with_retained(tracker, payload):
    raw = _dumped(tracker)
    head, sections = dumpcraft.split(raw)
    sections = [s for s in sections if s[0] != 0x88]
    return dumpcraft.join(head, sections + payload)


@pytest.mark.parametrize("payload, message", [
    ([(0x88, dumpcraft.varint(5) + dumpcraft.varint(0) + dumpcraft.varint(0))],
     "snapshot 5 out of range"),
    ([(0x88, dumpcraft.varint(0) + dumpcraft.varint(0) + dumpcraft.varint(3)
       + dumpcraft.varint(1) * 3)], "3 retained sizes for a snapshot of 2 entries"),
    ([(0x88, dumpcraft.varint(0) + dumpcraft.varint(0) + dumpcraft.varint(2)
       + dumpcraft.varint(1) * 2)] * 2, "second retained sizes"),
    ([(0x88, dumpcraft.varint(0) + dumpcraft.varint(0) + dumpcraft.varint(2)
       + dumpcraft.varint(1))], "does not fit in its section"),
])
def test_malformed_retained_sections_are_refused(tracker, payload, message):
    tracker.track_class(Doc)
    keep = [Doc(), Doc()]
    tracker.create_snapshot(retained=True)
    bad = _with_retained(tracker, payload)
    with pytest.raises(DumpError) as err:
        Stats().load_stats(io.BytesIO(bad))
    assert message in str(err.value)
    del keep


def test_retained_section_before_any_snapshot_is_refused(tracker):
    tracker.track_class(Doc)
    keep = [Doc()]
    tracker.create_snapshot(retained=True)
    head, sections = dumpcraft.split(_dumped(tracker))
    ret = [s for s in sections if s[0] == 0x88]
    rest = [s for s in sections if s[0] != 0x88]
    k = [t for t, _ in rest].index(0x06)
    with pytest.raises(DumpError, match="out of order"):
        Stats().load_stats(io.BytesIO(dumpcraft.join(head, rest[:k] + ret + rest[k:])))
    del keep


def test_reports_show_retained(tracker, tmp_path):
    tracker.track_class(Doc, retained=True)
    keep = [Doc(50), Doc(60)]
    tracker.create_snapshot("measured")
    out = io.StringIO()
    stats = ConsoleStats(tracker=tracker, stream=out)
    stats.print_summary()
    stats.print_stats()
    text = out.getvalue()
    assert "retained" in text and "(kept alive only together)" in text
    from classtrack.report.table import class_rows, format_table
    table = "\n".join(format_table(class_rows(stats)))
    assert "retained" in table.splitlines()[1]
    HtmlStats(tracker=tracker).create_html(str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text()
    assert "retained" in page and "dominator tree" in page
    assert "shared (retained)" in page
    del keep


def test_merged_dumps_keep_retained(tracker, tmp_path):
    from classtrack.report.merge import load
    tracker.track_class(Doc)
    keep = [Doc()]
    tracker.create_snapshot(retained=True)
    p1 = tmp_path / "a.ctdump"
    p1.write_bytes(_dumped(tracker))
    tracker.clear()
    tracker.track_class(Doc)
    keep.append(Doc())
    tracker.create_snapshot()           # not measured in this "process"
    p2 = tmp_path / "b.ctdump"
    p2.write_bytes(_dumped(tracker))
    merged, _ = load([str(p1), str(p2)], Stats)
    assert any(s.shared is not None for s in merged.snapshots)
    del keep


def test_run_retained_measures_the_exit_snapshot(tmp_path):
    import json
    import os
    import subprocess
    prog = tmp_path / "prog.py"
    prog.write_text("class Doc:\n"
                    "    def __init__(self):\n"
                    "        self.data = [str(i) * 10 for i in range(1000)]\n"
                    "docs = [Doc() for _ in range(3)]\n"
                    "shared = docs[0].data\n"
                    "docs[1].alias = docs[2].data\n")
    out = tmp_path / "out.ctdump"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    run = subprocess.run([sys.executable, "-m", "classtrack", "run", "--retained",
                          "--interval", "0", "--track-class", "prog:Doc", "-o", str(out),
                          str(prog)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    rep = subprocess.run([sys.executable, "-m", "classtrack", "report", "--json", str(out)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert rep.returncode == 0, rep.stderr
    doc = json.loads(rep.stdout)
    (row,) = [c for c in doc["classes"] if c["name"].endswith("Doc")]
    assert row["retained"][0] is None               # "start" was not measured
    # docs[0]'s list is also a global, docs[2]'s is shared with docs[1]:
    # only docs[1]'s own list (and the three small objects) are retained
    one_list = asizeof.asizeof([str(i) * 10 for i in range(1000)])
    assert one_list < row["last_retained"] < 2 * one_list
