"""Streamed dumps (format 1.2): written a frame per snapshot as a program
runs, so that whatever a killed process leaves reads up to its last
complete snapshot.

* a streamed dump holds exactly what a dump written whole at the end
  holds (records, deaths, reprs, traces, trees, snapshots);
* cut at every byte, it reads to its last complete frame and says so,
  or (before its first frame is whole) raises DumpError;
* a bit flipped anywhere raises DumpError, or at worst (a flipped length
  that runs past the end) reads as an unfinished file up to a complete
  frame, said so: never a complete-looking dump with wrong numbers;
* a 1.1 reader's rules still hold for files written whole.
"""
import io
import os

import pytest

from classtrack import DumpError, _core
from classtrack._dumpstream import DumpStreamer
from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import Stats


class Item:
    def __init__(self, i):
        self.i = i
        self.payload = list(range(i % 7))

    def __repr__(self):
        return "Item(%d, %d)" % (self.i, len(self.payload))


class Other:
    pass


def _scenario(tmp_path, cut_each_frame=None):
    """A tracker whose life has everything a frame carries: records new in
    each frame, deaths of records of earlier frames, reprs that change,
    traces, size trees; streamed to stream.ctdump, and written whole to
    whole.ctdump at the end.  Returns (stream path, whole path, the
    file's length after each frame)."""
    t = ClassTracker()
    path = str(tmp_path / "stream.ctdump")
    streamer = DumpStreamer(t, path, named=True)
    t._snapshot_hooks.append(streamer.on_snapshot)
    lengths = []
    t._snapshot_hooks.append(lambda s: lengths.append((tmp_path / "stream.ctdump").stat().st_size))
    t.track_class(Item, trace=True, resolution_level=1)
    t.track_class(Other)
    items = [Item(i) for i in range(50)]
    others = [Other() for _ in range(5)]
    t.create_snapshot("one")
    del items[:20]                      # deaths of records of frame 1
    for it in items[:5]:
        it.payload.append(0)            # their reprs change
    items += [Item(100 + i) for i in range(30)]
    t.create_snapshot("two")
    del others[:]
    del items[10:40]
    t.create_snapshot("three")
    assert streamer.finish()
    whole = str(tmp_path / "whole.ctdump")
    Stats(tracker=t).dump_stats(whole)
    t.clear()
    return path, whole, lengths


def _content(stats):
    """Everything a dump holds, by record, in comparable form."""
    data = stats._data
    recs = []
    for i in range(data.nrec):
        cls = data.classes[data.rec_class[i] - 1] if data.rec_class[i] else None
        recs.append((data.ids[i], data.names[data.rec_name[i]], cls, data.births[i],
                     data.deaths[i], data.traces[data.rec_trace[i] - 1]
                     if data.rec_trace[i] else None, data.reprs.get(i)))
    snaps = []
    for row in data.snaps:
        snaps.append((row.time, row.desc, row.tracked_total, row.process,
                      row.entries.columns(), sorted(row.trees.items())))
    return recs, snaps


def test_a_streamed_dump_holds_what_a_whole_one_holds(tmp_path):
    path, whole, lengths = _scenario(tmp_path)
    streamed, written = Stats(filename=path), Stats(filename=whole)
    assert streamed.dump_info == {"streamed": True, "complete": True, "frames": 4,
                                  "pid": os.getpid(), "ppid": os.getppid()}
    assert written.dump_info["streamed"] is False
    recs, snaps = _content(streamed)
    assert (recs, snaps) == _content(written)
    assert len(snaps) == 3 and len(recs) == 85
    # deaths of records of the first frame came through DEATHS
    assert sum(1 for r in recs if r[4]) == 55
    # reprs changed after the first frame came through REPRS
    assert recs[20][6] == "Item(20, 7)" and recs[25][6] == "Item(25, 4)"   # was (20, 6)
    assert any(r[5] for r in recs)      # traces
    assert any(s[5] for s in snaps)     # size trees
    # each frame is appended: the file only grows
    assert lengths == sorted(lengths) and len(set(lengths)) == 3


def test_cut_at_every_byte_reads_to_the_last_whole_frame(tmp_path):
    path, _, lengths = _scenario(tmp_path)
    data = open(path, "rb").read()
    complete_at = {n: k + 1 for k, n in enumerate(lengths)}    # frame k+1 ends at n
    frames_before = 0
    for n in range(len(data)):
        if n in complete_at:
            frames_before = complete_at[n]
        info = {}
        if frames_before == 0:
            with pytest.raises(DumpError):
                _core.dump_read(data[:n], info)
            continue
        ds = _core.dump_read(data[:n] if n % 2 else io.BytesIO(data[:n]), info)
        assert len(ds.snapshots) == frames_before, n
        assert info["complete"] is False and info["frames"] == frames_before
        assert info.get("dropped", 0) == n - lengths[frames_before - 1]
        # what is kept is what that frame had: no record of a later one
        assert max(r.entries.nrec for r in ds.snapshots) <= len(memoryview(ds.rec_id).cast("Q"))
    full = _core.dump_read(data, {})
    assert len(full.snapshots) == 3


def test_every_bit_flip_is_caught_or_read_as_unfinished(tmp_path):
    path, _, lengths = _scenario(tmp_path)
    data = bytearray(open(path, "rb").read())
    whole = _content_of(bytes(data))
    for pos in range(len(data)):
        for bit in (0, 3, 7):
            data[pos] ^= 1 << bit
            info = {}
            try:
                ds = _core.dump_read(bytes(data), info)
            except DumpError:
                pass
            else:
                # only a length run past the end can look like a cut file
                assert info["complete"] is False, (pos, bit)
                assert len(ds.snapshots) <= 3
                assert _snap_times(ds) == whole[:len(ds.snapshots)]
            data[pos] ^= 1 << bit


def _snap_times(ds):
    return [(r.timestamp, r.desc, r.tracked_total) for r in ds.snapshots]


def _content_of(data):
    return _snap_times(_core.dump_read(data))


def test_a_stream_refuses_what_would_make_a_bad_file(tmp_path):
    stream = _core.DumpStream(io.BytesIO())
    with pytest.raises(TypeError):
        stream.frame(("not", "a", "dataset"))
    assert stream.broken
    with pytest.raises(ValueError, match="broken"):
        stream.frame(None)
    ended = _core.DumpStream(io.BytesIO())
    empty = ([], [], b"", b"", b"", b"", b"", b"", {}, [], [])
    ended.frame(empty, final=True)
    assert ended.ended
    with pytest.raises(ValueError, match="ended"):
        ended.frame(empty)
    # deaths must name records of earlier frames, in order
    s = _core.DumpStream(io.BytesIO())
    s.frame(empty)
    with pytest.raises(ValueError, match="deaths"):
        s.frame(empty, deaths=(b"\0\0\0\0", b"\0" * 7 + b"\x3f"))


def test_a_file_written_whole_is_still_version_1_1(tmp_path):
    _, whole, _ = _scenario(tmp_path)
    head = open(whole, "rb").read(16)
    assert head[8:12] == b"\x01\x00\x01\x00" and head[12:16] == b"\0\0\0\0"
    stream = open(str(tmp_path / "stream.ctdump"), "rb").read(16)
    assert stream[8:12] == b"\x01\x00\x02\x00" and stream[12:16] == b"\x01\0\0\0"
    # a 1.1 file with the streamed flag but minor 1 is refused
    bad = bytearray(open(whole, "rb").read())
    bad[12] = 1
    with pytest.raises(DumpError, match="flags"):
        _core.dump_read(bytes(bad))


def test_a_streamed_dump_dumped_again_is_written_whole_and_equal(tmp_path):
    path, _, _ = _scenario(tmp_path)
    again = str(tmp_path / "again.ctdump")
    Stats(filename=path).dump_stats(again)
    assert _content(Stats(filename=again)) == _content(Stats(filename=path))
    assert Stats(filename=again).dump_info["streamed"] is False
