"""Dumps written in formats 1.0 and 1.1 load, and load right, in this
release.

tests/data/dump-1.0.ctdump was written by the 1.0 writer through
tests/data/make_dump_1_0.py, whose docstring says how each value below was
made (the tracker's structure; ids, times, sizes and process numbers
replaced by simple rules); tests/data/dump-1.1.ctdump holds the same
through the 1.1 writer (make_dump_1_1.py), plus retained sizes at the last
snapshot.  The files are committed and never rewritten: when the format
gains a minor version, they must still load, with every value below.  The
values are stated here, not read from the scripts, so that a reader that
misreads an older layout fails this test.
"""
import io
import os

import pytest

from classtrack.classtracker_stats import ConsoleStats, Stats

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
FIXTURES = {(1, 0): os.path.join(DATA, "dump-1.0.ctdump"),
            (1, 1): os.path.join(DATA, "dump-1.1.ctdump")}

NODE, FANCY, LEAF = "fixture.Node", "fixture.Fancy", "fixture.Leaf"
ID_BASE = 0x7F0000001000

# record i: (tracking name, birth, death or None, custom repr or None,
# line of its trace's last frame in app/build.py or None)
RECORDS = [
    (NODE, 1.0, None, None, 10),
    (NODE, 1.5, 15.0, None, 10),
    (FANCY, 2.0, None, "Fancy(2)", None),
    (LEAF, 2.5, None, "Leaf(3)", None),
    (LEAF, 3.0, 25.0, "Leaf(4)", None),
    (LEAF, 3.5, 25.0, "Leaf(5)", None),
    (NODE, 12.0, None, None, 20),
]

# snapshot k: (timestamp, description, records alive)
SNAPSHOTS = [
    (10.0, "start", [0, 1, 2, 3, 4, 5]),
    (20.0, "middle", [0, 2, 3, 4, 5, 6]),
    (30.0, "end", [0, 2, 3, 6]),
]

PROCESS_FIELDS = ("vsz", "rss", "rss_peak", "vsz_peak", "data_segment", "code_segment",
                  "shared_segment", "stack_segment", "locked", "page_tables", "pagefaults")

# Fancy's record (2) at resolution 2, snapshot 0: leaves size = flat =
# 8 * len(name), inner nodes flat 64 (64 * (k + 1) at snapshot k)
LEAVES = [("[K] value", 72), ("[V] value: 2", 96), ("[K] name", 64),
          ("[V] name: 'node-2'", 144), ("[K] children", 96),
          ("[V] children: [{'k': 'v'}, (1, 2)]", 272)]
TREE_ROOT = [(872, 64), (1000, 128), (1128, 192)]     # (size, flat) per snapshot


def entry(i, k):
    """(size, flat) of record i at snapshot k."""
    if i == 2:
        return TREE_ROOT[k]
    return 1000 * (k + 1) + 10 * i, 40 + i


# 1.1: measured at the last snapshot only
RETAINED_AT = 2
SHARED = 4321


def retained(i):
    return 3000 + 100 * i


@pytest.fixture(scope="module", params=sorted(FIXTURES), ids=lambda v: "%d.%d" % v)
def version(request):
    return request.param


@pytest.fixture(scope="module")
def stats(version):
    return Stats(filename=FIXTURES[version])


def measured(version, k):
    return version >= (1, 1) and k == RETAINED_AT


def by_record(stats):
    objs = [o for objs in stats.index.values() for o in objs]
    return sorted(objs, key=lambda o: o.id)


def test_each_fixture_is_of_its_format(version):
    with open(FIXTURES[version], "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89CTRK\r\n\x1a"
    assert (int.from_bytes(head[8:10], "little"),
            int.from_bytes(head[10:12], "little")) == version


def test_records(stats):
    assert sorted(stats.index) == [FANCY, LEAF, NODE]
    assert stats.tracked_classes == [FANCY, LEAF, NODE]
    objs = by_record(stats)
    assert len(objs) == len(RECORDS)
    for i, (obj, (name, birth, death, custom, line)) in enumerate(zip(objs, RECORDS)):
        assert obj.name == name
        assert obj.id == ID_BASE + 0x40 * i
        assert obj.birth == birth
        assert obj.death == death
        assert obj.repr == (custom or "<%s object at 0x%x>" % (name, ID_BASE + 0x40 * i))
        if line is None:
            assert obj.trace is None
        else:
            assert obj.trace == [("app/main.py", 3, "<module>", ["main()"], 0),
                                 ("app/build.py", line, "build", None, None)]
        assert obj.ref() is None            # a dump holds no objects


def test_snapshots(stats, version):
    assert [(s.timestamp, s.desc) for s in stats.snapshots] == [
        (ts, desc) for ts, desc, _ in SNAPSHOTS]
    for k, snap in enumerate(stats.snapshots):
        alive = SNAPSHOTS[k][2]
        assert snap.tracked_total == sum(entry(i, k)[0] for i in alive)
        assert snap.asizeof_total == 50000 * (k + 1)
        assert snap.overhead == 2000 + k
        assert getattr(snap, "shared", None) == (SHARED if measured(version, k) else None)
    s0, s1, s2 = stats.snapshots
    assert (s0.interval, s0.effective_interval, s0.stretched) == (None, None, False)
    assert (s1.interval, s1.effective_interval, s1.stretched) == (0.5, 0.75, True)
    assert (s2.interval, s2.effective_interval, s2.stretched) == (None, None, False)


def test_process_fields(stats):
    for k, snap in enumerate(stats.snapshots[:2]):
        proc = snap.system_total
        assert proc.available
        assert [getattr(proc, f) for f in PROCESS_FIELDS] == [
            (k + 1) * 1000000 + 4096 * j for j in range(len(PROCESS_FIELDS))]
        assert snap.total == (k + 1) * 1000000          # vsz
    last = stats.snapshots[2]
    assert not last.system_total.available
    assert last.total == 150000                          # then asizeof_total


def test_sizes_per_object(stats, version):
    for i, obj in enumerate(by_record(stats)):
        entries = obj.snapshots
        assert entries[0][0] == RECORDS[i][1]            # the birth entry
        expected = [(ts, entry(i, k)) for k, (ts, _, alive) in enumerate(SNAPSHOTS)
                    if i in alive]
        assert [(ts, (a.size, a.flat)) for ts, a in entries[1:]] == expected
        alive_at = [k for k, (_, _, alive) in enumerate(SNAPSHOTS) if i in alive]
        for k, (_, a) in zip(alive_at, entries[1:]):
            assert getattr(a, "retained", None) == (retained(i) if measured(version, k) else None)
        assert obj.get_max_size() == max(size for _, (size, _) in expected)


def test_resolution_tree(stats):
    fancy = by_record(stats)[2]
    for k, (ts, sized) in enumerate(fancy.snapshots[1:]):
        assert sized.name == FANCY
        assert (sized.size, sized.flat) == TREE_ROOT[k]
        (d,) = sized.refs
        assert d.name == "__dict__"
        assert (d.size, d.flat) == (744 + 64 * (k + 1), 64 * (k + 1))
        assert [(r.name, r.size, r.flat, r.refs) for r in d.refs] == [
            (name, size, size, ()) for name, size in LEAVES]


def test_per_class_totals(stats, version):
    for k, snap in enumerate(stats.snapshots):
        classes = stats.annotate_snapshot(snap)
        assert sorted(classes) == [FANCY, LEAF, NODE]
        alive = SNAPSHOTS[k][2]
        for name, info in classes.items():
            mine = [i for i in alive if RECORDS[i][0] == name]
            total = sum(entry(i, k)[0] for i in mine)
            assert info["active"] == len(mine)
            assert info["sum"] == total
            assert info["pct"] == pytest.approx(total * 100.0 / snap.total)
            assert info["merged"].size == total
            if measured(version, k):
                assert info["retained"] == sum(retained(i) for i in mine)
            else:
                assert "retained" not in info
    merged = stats.annotate_snapshot(stats.snapshots[0])[FANCY]["merged"]
    assert [r.name for r in merged.refs] == ["__dict__"]


def test_history(stats):
    assert stats.history == {
        NODE: [(1.0, 1), (1.5, 2), (12.0, 3), (15.0, 2)],
        FANCY: [(2.0, 1)],
        LEAF: [(2.5, 1), (3.0, 2), (3.5, 3), (25.0, 2), (25.0, 1)],
    }


def test_reports_read_it(stats, version):
    out = io.StringIO()
    console = ConsoleStats(filename=FIXTURES[version], stream=out)
    console.print_stats(limit=len(RECORDS))
    console.print_summary()
    text = out.getvalue()
    for word in ("Fancy(2)", "Leaf(4)", "( free )", "app/build.py", "start", "middle", "end"):
        assert word in text


def test_written_again_it_reads_the_same(stats):
    # this release's writer (whatever its minor version) keeps every value
    buf = io.BytesIO()
    stats.dump_stats(buf, close=False)
    buf.seek(0)
    again = Stats()
    again.load_stats(buf)
    assert [(o.name, o.id, o.birth, o.death, o.repr, o.trace) for o in by_record(again)] == [
        (o.name, o.id, o.birth, o.death, o.repr, o.trace) for o in by_record(stats)]
    assert [(s.timestamp, s.desc, s.tracked_total, s.total) for s in again.snapshots] == [
        (s.timestamp, s.desc, s.tracked_total, s.total) for s in stats.snapshots]
    fancy, fancy_again = by_record(stats)[2], by_record(again)[2]
    assert [a.size for _, a in fancy_again.snapshots] == [a.size for _, a in fancy.snapshots]
    assert [[getattr(a, "retained", None) for _, a in o.snapshots[1:]] for o in by_record(again)] \
        == [[getattr(a, "retained", None) for _, a in o.snapshots[1:]] for o in by_record(stats)]
    assert [s.shared for s in again.snapshots] == [s.shared for s in stats.snapshots]
