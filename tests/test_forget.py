"""A streamed tracker forgets what its dump holds for good (Tracker.forget).

After each frame, ``DumpStreamer(forget=True)`` (what ``classtrack run``
uses) has the engine give back the memory of the records the stream holds
for good: written, and dead before the latest snapshot, whole pages of
them (128 records of 32 bytes).  Checked here:

* the dump is the same with and without forgetting: every record, death,
  repr and snapshot entry;
* the engine forgot whole pages of the mapped chunks and nothing a later
  snapshot, a survivor or an unwritten record needs; its footprint says so;
* what the engine can no longer answer is refused with a clear error,
  never answered wrong (record(i) of a forgotten record, whole-history
  questions, an export from the start);
* ``classtrack run`` on a program that makes and drops 80,000 instances:
  its summary and report count every one.
"""
import sys

import pytest

from classtrack._dumpstream import DumpStreamer
from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import Stats
from helpers import classtrack_cli, write_files

FIRST_CHUNK = 1 << 14       # records of chunk 0 (registry.h): never forgotten
PAGE = 128                  # records per 4 KiB page


class Node:
    def __init__(self, i):
        self.i = i
        self.tag = "n"

    def __repr__(self):
        return "Node(%d, %s)" % (self.i, self.tag)


def _life(tmp_path, forget, reprs=True):
    """The same life, streamed with or without forgetting: returns the
    dump's path and what was seen of the engine on the way."""
    t = ClassTracker(reprs=reprs)
    # every repr asked, however long one takes (a loaded machine, a
    # sanitizer): both lives note every text
    t._engine.slow_repr = float("inf")
    path = str(tmp_path / ("forget.ctdump" if forget else "keep.ctdump"))
    streamer = DumpStreamer(t, path, named=True, forget=forget)
    t._snapshot_hooks.append(streamer.on_snapshot)
    seen = {}
    try:
        t.track_class(Node)
        nodes = [Node(i) for i in range(FIRST_CHUNK + 6000)]
        t.create_snapshot("one")
        # dead after "one": records of chunk 0 and 40 whole pages of chunk 1
        for i in list(range(100, 3000)) + list(range(FIRST_CHUNK, FIRST_CHUNK + 40 * PAGE)):
            nodes[i] = None
        t.create_snapshot("two")
        seen["forgotten_two"] = t._engine.forgotten
        for i in range(FIRST_CHUNK + 40 * PAGE, FIRST_CHUNK + 41 * PAGE - 1):
            nodes[i] = None             # a page with one survivor: kept
        for n in nodes[-50:]:
            n.tag = "changed"           # reprs that change after being written
        nodes += [Node(-i) for i in range(1000)]
        t.create_snapshot("three")
        seen["forgotten"] = t._engine.forgotten
        seen["overhead"] = t.snapshots[-1].overhead
        seen["alive"] = t._engine.alive
        seen["handed_off"] = t._engine.reprs_handed_off
        if forget:
            with pytest.raises(IndexError, match="forgotten"):
                t._engine.record(FIRST_CHUNK + 5)
            with pytest.raises(RuntimeError, match="forgotten"):
                t._engine.history()
            with pytest.raises(RuntimeError, match="forgotten"):
                t._engine.record_names()
            with pytest.raises(RuntimeError, match="handed off"):
                t._engine.export()
            with pytest.raises(RuntimeError, match="forgotten"):
                t._engine.export(changed_reprs=True)
        # what is kept answers as before: survivors, the page with one
        # survivor, chunk 0's dead, the newest records
        survivor = FIRST_CHUNK + 41 * PAGE - 1
        assert t._engine.record(survivor)[6] is nodes[survivor]
        assert t._engine.record(FIRST_CHUNK + 40 * PAGE)[6] is None
        assert t._engine.record(200)[6] is None
        assert t._engine.record(len(t._engine) - 1)[6] is nodes[-1]
        assert sorted(i for i, _, _ in t._engine.survivors()) == sorted(
            i for i, n in enumerate(nodes[:FIRST_CHUNK + 6000]) if n is not None) + list(
            range(FIRST_CHUNK + 6000, FIRST_CHUNK + 7000))
        assert streamer.finish()
        del nodes
    finally:
        t.close()
    return path, seen


def _content(path):
    data = Stats(filename=path)._data
    recs = [(data.names[data.rec_name[i]], data.deaths[i] != 0.0) for i in range(data.nrec)]
    snaps = [(row.desc, row.tracked_total, row.entries.columns()) for row in data.snaps]
    return recs, snaps, dict(data.reprs)


def _own(i, text):
    """The text of record i, as Node's repr gave it."""
    k = i if i < FIRST_CHUNK + 6000 else -(i - FIRST_CHUNK - 6000)
    return text in ("Node(%d, n)" % k, "Node(%d, changed)" % k)


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="records are given back with madvise on Linux's mapped chunks")
def test_forgetting_keeps_the_dump_and_gives_back_whole_pages(tmp_path):
    # a first life warms what the process keeps of a class's first
    # instances (sizes then differ by a few KB, forgetting or not)
    (tmp_path / "warm").mkdir()
    _life(tmp_path / "warm", forget=False)
    kept_path, kept = _life(tmp_path, forget=False)
    path, seen = _life(tmp_path, forget=True)
    assert kept["forgotten"] == 0
    # frame "two" forgot the 40 dead pages of chunk 1 (chunk 0's dead and
    # the page with a survivor stay); frame "three" had nothing more
    assert seen["forgotten_two"] == 40 * PAGE
    assert seen["forgotten"] == 40 * PAGE
    assert seen["alive"] == kept["alive"]
    recs, snaps, reprs = _content(path)
    recs_kept, snaps_kept, reprs_kept = _content(kept_path)
    assert (recs, snaps) == (recs_kept, snaps_kept)
    # every text, the changed ones as changed, with the engine keeping
    # none once written (handed off: only their hashes)
    assert reprs == reprs_kept and len(reprs) == len(recs)
    assert all(_own(i, text) for i, text in reprs.items())
    assert sum(text.endswith("changed)") for text in reprs.values()) == 50
    assert seen["handed_off"] and not kept["handed_off"]
    assert len(recs) == FIRST_CHUNK + 7000 and len(snaps) == 3
    assert sum(1 for r in recs if r[1]) == 2900 + 40 * PAGE + PAGE - 1     # the dead


def test_forget_refuses_bad_calls():
    t = ClassTracker()
    try:
        with pytest.raises(TypeError):
            t._engine.forget(b"\x01", 1.0)          # a bytearray, not bytes
        assert t._engine.forget(bytearray(10), 1e9) == 0    # nothing tracked
    finally:
        t.close()


def test_run_counts_every_instance_of_a_forgetting_stream(tmp_path):
    write_files(tmp_path, {"prog.py": """
        import time

        class Node:
            pass

        keep = []
        for phase in range(4):
            batch = [Node() for _ in range(20000)]
            keep.extend(batch[:100])
            del batch
            time.sleep(0.3)
    """})
    proc = classtrack_cli("run", "--track-class", "prog:Node", "--interval", "0.05",
                          "-o", "out.ctdump", "prog.py", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "1 tracked class, 80,000 tracked instances" in proc.stderr
    stats = Stats(filename=str(tmp_path / "out.ctdump"))
    data = stats._data
    assert data.nrec == 80000
    assert sum(1 for d in data.deaths if d == 0.0 or d > data.snaps[-1].time) == 400
    report = classtrack_cli("report", "out.ctdump", cwd=tmp_path)
    assert report.returncode == 0 and "__main__.Node" in report.stdout
    assert "80,000 instances tracked" in report.stdout


def test_a_process_forked_after_forgetting_says_why_it_writes_no_dump(tmp_path):
    """Without --follow-fork, a forked child that runs the program to its
    end used to write its dump whole from its copy of the tracker; once
    its parent forgot records, that copy cannot: it says so (pointing to
    --follow-fork) and keeps its exit status; the parent's dump is whole."""
    write_files(tmp_path, {"prog.py": """
        import os, sys, time

        class Node:
            pass

        keep = [Node() for _ in range(100)]
        batch = [Node() for _ in range(40000)]
        del batch
        time.sleep(0.5)                 # snapshots and frames: records forgotten
        pid = os.fork()
        if pid:
            _, status = os.waitpid(pid, 0)
            print("child status", os.waitstatus_to_exitcode(status))
        else:
            print("child runs on")
    """})
    proc = classtrack_cli("run", "--track-class", "prog:Node", "--interval", "0.05",
                          "-o", "out.ctdump", "prog.py", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "child runs on" in proc.stdout and "child status 0" in proc.stdout
    assert proc.stderr.count("no dump for forked process") == 1
    assert "--follow-fork" in proc.stderr
    data = Stats(filename=str(tmp_path / "out.ctdump"))._data
    assert data.nrec == 40100
