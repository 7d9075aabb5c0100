"""Malformed dumps: every one raises DumpError, none crashes, hangs or
allocates out of proportion to the file."""
import io
import os
import pickle
import random
import struct
import tracemalloc
from typing import NamedTuple

import pytest

from classtrack import DumpError, _core
from classtrack._dumpstream import DumpStreamer
from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import Stats

import dumpcraft
from leakcheck import assert_no_leak

REGRESSIONS = os.path.join(os.path.dirname(__file__), "fuzz", "regressions")


class Node:
    def __init__(self, i=0):
        self.value = i * 1000 + 7
        self.name = "node-%d" % i
        self.children = []


class Pair(NamedTuple):      # counted at snapshots: a COUNTED section
    a: int
    b: int


@pytest.fixture(scope="module")
def dump():
    t = ClassTracker()
    t.track_class(Node, trace=True, resolution_level=1)
    t.count_class(Pair)
    objs = [Node(i) for i in range(4)]
    pairs = [Pair(i, i) for i in range(3)]
    t.create_snapshot("one")
    del pairs[1:]
    del objs[0]
    t.create_snapshot("two")
    buf = io.BytesIO()
    Stats(tracker=t).dump_stats(buf, close=False)
    t.clear()
    return buf.getvalue()


def load(data):
    return _core.dump_read(data)


def test_valid_dump_loads_from_bytes_and_files(dump):
    assert load(dump)[0]
    assert load(io.BytesIO(dump))[0]
    assert load(bytearray(dump))[0]


def test_truncated_at_every_offset(dump):
    for n in range(len(dump)):
        with pytest.raises(DumpError):
            load(dump[:n])
        with pytest.raises(DumpError):
            load(io.BytesIO(dump[:n]))


def test_every_single_bit_flip_is_caught(dump):
    for pos in range(len(dump)):
        for bit in (0, 3, 7):
            bad = bytearray(dump)
            bad[pos] ^= 1 << bit
            with pytest.raises(DumpError):
                load(bytes(bad))


def test_random_garbage_never_crashes(dump):
    rng = random.Random(1234)
    for _ in range(3000):
        bad = bytearray(dump)
        for _ in range(rng.randint(1, 8)):
            bad[rng.randrange(len(bad))] = rng.randrange(256)
        if rng.random() < 0.3:
            bad = bad[:rng.randrange(len(bad))] + bytes(rng.randrange(64))
        try:
            load(bytes(bad))
        except DumpError:
            pass


def test_messages_name_the_problem(dump):
    with pytest.raises(DumpError, match="empty"):
        load(b"")
    with pytest.raises(DumpError, match="not a classtrack dump"):
        load(b"GIF89a" + bytes(40))
    with pytest.raises(DumpError, match="not a classtrack dump"):
        load(b"\x1f\x8b\x08\x00" + bytes(40))  # gzip
    with pytest.raises(DumpError, match="truncated"):
        load(dump[:10])
    with pytest.raises(DumpError, match="checksum"):
        bad = bytearray(dump)
        bad[dump.index(b"Node")] ^= 0x20  # "node": still a valid string
        load(bytes(bad))
    with pytest.raises(DumpError, match="after the end"):
        load(dump + b"x")


def test_versions(dump):
    head, sections = dumpcraft.split(dump)
    future = dumpcraft.join(dumpcraft.header(major=2), sections)
    with pytest.raises(DumpError, match="version 2.0 .*upgrade classtrack"):
        load(future)
    # a newer minor may add sections an older reader skips
    newer = dumpcraft.join(dumpcraft.header(minor=7),
                           sections[:5] + [(0x80 | 0x11, b"future stuff")] + sections[5:])
    assert load(newer)[0] == load(dump)[0]
    # but a section it must understand is an error
    unknown = dumpcraft.join(head, sections[:5] + [(0x11, b"x")] + sections[5:])
    with pytest.raises(DumpError, match="unknown section type 0x11"):
        load(unknown)
    with pytest.raises(DumpError, match="sentinel"):
        load(dumpcraft.join(dumpcraft.header(sentinel=1.0), sections))


def test_pickles_are_refused_without_being_loaded(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch %s" % (tmp_path / "pwned"),))
    for proto in (2, 3, 4, 5):
        with pytest.raises(DumpError, match="pickle"):
            load(pickle.dumps(Boom(), protocol=proto))
    assert not (tmp_path / "pwned").exists()


def test_absurd_counts_and_lengths_allocate_nothing_big(dump):
    head, sections = dumpcraft.split(dump)
    cases = {
        # 10 GB of strings claimed by a tiny file
        "strings": dumpcraft.seal(head + bytes([1]) + dumpcraft.varint(10 << 30)
                                  + dumpcraft.varint(1 << 40) + b"x" * 900),
        # a string claiming 10 GB inside a section claiming as much
        "string": dumpcraft.seal(head + bytes([1]) + dumpcraft.varint(10 << 30)
                                 + dumpcraft.varint(1) + dumpcraft.varint(10 << 30)
                                 + b"x" * 900),
        # a billion records in a small section
        "records": dumpcraft.join(head, sections[:4] + [(5, dumpcraft.varint(10**9) + b"\0" * 100)]),
    }
    for name, data in cases.items():
        assert len(data) < 4096
        tracemalloc.start()
        try:
            with pytest.raises(DumpError):
                load(data)
            with pytest.raises(DumpError):
                load(io.BytesIO(data))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20, "%s: %d bytes allocated" % (name, peak)


def test_deep_tree_is_refused(dump):
    head, sections = dumpcraft.split(dump)
    node = b""
    for _ in range(200):  # each node: name 0, size 1, flat 1, one child
        node += b"\x00\x01\x01\x01"
    node += b"\x00\x01\x01\x00"
    tree = (0x07, dumpcraft.varint(0) + dumpcraft.varint(0) + node)
    with pytest.raises(DumpError, match="deeper"):
        load(dumpcraft.join(head, sections + [tree]))


def test_out_of_range_references(dump):
    head, sections = dumpcraft.split(dump)
    tags = [t for t, _ in sections]
    rec = tags.index(5)
    # a tree naming a record that does not exist
    bad_tree = (0x07, dumpcraft.varint(0) + dumpcraft.varint(999) + b"\x00\x01\x01\x00")
    with pytest.raises(DumpError, match="out of range"):
        load(dumpcraft.join(head, sections + [bad_tree]))
    # sections out of order
    swapped = sections[:]
    swapped[0], swapped[rec] = swapped[rec], swapped[0]
    with pytest.raises(DumpError, match="out of order"):
        load(dumpcraft.join(head, swapped))


def test_counted_sections_are_checked(dump):
    head, sections = dumpcraft.split(dump)
    tags = [t for t, _ in sections]
    assert tags.count(0x8B) == 2            # one per snapshot
    (name, n0, b0), = load(dump).snapshots[0].counted
    assert name.endswith(".Pair") and n0 == 3
    assert load(dump).snapshots[1].counted == ((name, 1, b0 // 3),)
    k = tags.index(0x8B)
    counted = sections[k]
    # the same snapshot twice
    with pytest.raises(DumpError, match="second counted classes for snapshot 0"):
        load(dumpcraft.join(head, sections[:k + 1] + [counted] + sections[k + 1:]))
    # a snapshot that does not exist
    bad = (0x8B, dumpcraft.varint(7) + counted[1][1:])
    with pytest.raises(DumpError, match="out of range"):
        load(dumpcraft.join(head, sections[:k] + [bad] + sections[k + 1:]))
    # before any snapshot
    first_snap = tags.index(6)
    with pytest.raises(DumpError, match="out of order"):
        load(dumpcraft.join(head, sections[:first_snap] + [counted] + sections[first_snap:k]
                            + sections[k + 1:]))
    # a class name that is no string
    bad = (0x8B, dumpcraft.varint(0) + dumpcraft.varint(1) + dumpcraft.varint(99999) + b"\x01\x01")
    with pytest.raises(DumpError, match="string reference"):
        load(dumpcraft.join(head, sections[:k] + [bad] + sections[k + 1:]))
    # a count the section cannot hold
    bad = (0x8B, dumpcraft.varint(0) + dumpcraft.varint(10 ** 9))
    with pytest.raises(DumpError):
        load(dumpcraft.join(head, sections[:k] + [bad] + sections[k + 1:]))


def test_regressions_from_the_fuzzer():
    if not os.path.isdir(REGRESSIONS):
        return
    for name in sorted(os.listdir(REGRESSIONS)):
        with open(os.path.join(REGRESSIONS, name), "rb") as f:
            data = f.read()
        tracemalloc.start()
        try:
            load(data)
        except DumpError:
            pass
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        # found as crashes or out-of-memory: memory stays in proportion
        assert peak < 64 * len(data) + (1 << 20), (name, peak)


def test_bad_file_objects():
    class TextFile:
        def read(self, n):
            return "text"
    with pytest.raises(TypeError, match="binary mode"):
        load(TextFile())
    with pytest.raises(AttributeError):
        load(12345)


def test_writer_and_reader_agree_on_the_smallest_record():
    import array
    data = (["n"], [], array.array("Q", [5]).tobytes(), array.array("I", [0]).tobytes(),
            array.array("I", [0]).tobytes(), array.array("d", [1.0]).tobytes(),
            array.array("d", [0.0]).tobytes(), array.array("I", [0]).tobytes(), {}, [], [])
    buf = io.BytesIO()
    _core.dump_write(buf, data)
    back = load(buf.getvalue())
    assert back[0] == ["n"] and back[2] == data[2]


def test_helpers_reject_bad_columns():
    import array
    with pytest.raises(MemoryError):
        _core.record_max(2 ** 61 + 1, [(array.array("I", [1]).tobytes(),
                                        array.array("Q", [7]).tobytes())])
    raw = bytearray(array.array("Q", [1, 2, 3]).tobytes())
    with pytest.raises(ValueError, match="aligned|partial"):
        _core.record_max(3, [(memoryview(bytearray(b"\0" * 13))[1:], memoryview(raw)[1:17])])


def _dataset(nrec, snapshots):
    """A dataset (dumpfmt.h) of nrec records and snapshots given as
    (idx, size, flat) lists."""
    import array
    rows = []
    for k, (idx, size, flat) in enumerate(snapshots):
        ent = _core.Entries(array.array("I", idx).tobytes(), array.array("Q", size).tobytes(),
                            array.array("Q", flat).tobytes(), nrec)
        rows.append((float(k), "s%d" % k, 0, 0, 0, 0.0, 0.0, False, None, ent,
                     None, None, {}, None, None))
    ids = array.array("Q", range(1, nrec + 1)).tobytes()
    zeros4, times = bytes(4 * nrec), array.array("d", [0.5] * nrec).tobytes()
    return (["n"], [], ids, zeros4, zeros4, times, bytes(8 * nrec), zeros4, {}, [], rows)


def test_entries_of_every_width_in_every_order_round_trip():
    """The reader decodes a snapshot into columns as wide as the one
    before and starts over when a value does not fit: sizes that grow,
    shrink and jump between 1, 2, 4 and 8 bytes, in bitmaps and index
    lists, with long varints up to the section's last bytes."""
    rng = random.Random(7)
    tops = [0x7f, 0xff, 0x3fff, 0xffff, 0xffffffff, 2 ** 48, 2 ** 63 - 1, 2 ** 64 - 1]
    nrec = 3000
    snaps = []
    for k in range(24):
        dense = k % 3 != 0
        idx = sorted(rng.sample(range(nrec), 2800 if dense else 40))
        top = tops[rng.randrange(len(tops))]
        size = [rng.randrange(top + 1) for _ in idx]
        flat = [rng.randrange(min(top, 300) + 1) for _ in idx]
        if k % 5 == 0:      # the largest value last, in the section's last bytes
            size[-1] = top
        snaps.append((idx, size, flat))
    buf = io.BytesIO()
    _core.dump_write(buf, _dataset(nrec, snaps))
    for source in (buf.getvalue(), io.BytesIO(buf.getvalue())):
        got = _core.dump_read(source)[10]
        assert len(got) == len(snaps)
        for row, (idx, size, flat) in zip(got, snaps):
            cols = row[9].columns()
            assert list(memoryview(cols[0]).cast("I")) == idx
            assert list(memoryview(cols[1]).cast("Q")) == size
            assert list(memoryview(cols[2]).cast("Q")) == flat
            # stored no wider than its largest value needs
            assert row[9].nbytes <= len(idx) * (4 + 8 + 8)


def test_bad_entries_are_reported_after_a_quick_start():
    """An index past the records in a later snapshot, after snapshots the
    quick path read: the careful path names it."""
    nrec = 500
    snaps = [(list(range(0, 500, 2)), [10] * 250, [10] * 250) for _ in range(3)]
    buf = io.BytesIO()
    _core.dump_write(buf, _dataset(nrec, snaps))
    data = bytearray(buf.getvalue())
    head, sections = dumpcraft.split(bytes(data))
    tag, payload = sections[-1] if sections[-1][0] == 6 else [s for s in sections if s[0] == 6][-1]
    assert tag == 6
    # the last entry's index delta: 2 -> 127 runs past the 500 records
    pos = len(payload) - 3
    assert payload[pos:] == bytes([2, 10, 10])
    bad = payload[:pos] + bytes([127, 10, 10])
    out = [s if s[1] is not payload else (6, bad) for s in sections]
    with pytest.raises(DumpError, match="names no record"):
        load(dumpcraft.join(head, out))


def test_streamed_dumps_write_and_read_without_leaks(tmp_path):
    """A stream's frames (new records, DEATHS, REPRS, PROCESS), and reading
    it back whole, cut inside a frame and with info: nothing leaks (the
    refcount passes on debug interpreters run this file)."""

    t = ClassTracker()
    path = str(tmp_path / "s.ctdump")
    streamer = DumpStreamer(t, path, named=True)
    t._snapshot_hooks.append(streamer.on_snapshot)
    t.track_class(Node, trace=True, resolution_level=1)
    objs = [Node(i) for i in range(6)]
    t.create_snapshot("one")
    del objs[:3]
    objs += [Node(9)]
    t.create_snapshot("two", collect=True)
    assert streamer.finish()
    t.clear()
    data = open(path, "rb").read()
    cut = data[:len(data) - 3]

    t2 = ClassTracker()
    t2.track_class(Node)
    keep = [Node(i) for i in range(3)]
    t2.create_snapshot("x")
    ds = Stats(tracker=t2)._dump_data()
    del keep
    t2.clear()

    def write():
        out = io.BytesIO()
        s = _core.DumpStream(out, process=(1, 2))
        s.frame(ds, final=False)
        # a second frame: no new record, the first record dead, a new repr
        later = (ds[0], ds[1], b"", b"", b"", b"", b"", b"", {0: "again"}, ds[9], [])
        s.frame(later, deaths=(b"\0\0\0\0", struct.pack("d", 1e9)), final=True)
        return out.getvalue()

    written = write()
    again = {}
    assert _core.dump_read(written, again).reprs == {0: "again"}
    assert again["pid"] == 1 and again["ppid"] == 2

    def read():
        info = {}
        for d in (data, cut, written, written[:-2]):
            _core.dump_read(d, info)
        try:
            _core.dump_read(data[:30], info)
        except DumpError:
            pass

    assert_no_leak(read, per_round=20, warmup=60)
    assert_no_leak(write, per_round=20, warmup=60)
