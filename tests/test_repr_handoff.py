"""A dump stream that holds repr texts for good takes them off the engine
(Tracker.track_repr_changes(hand_off=True), what ``classtrack run`` does
when it forgets): the engine keeps a hash of each live record's last
text, and a text only until the next export takes it.

Checked on the engine itself: an unchanged text is not exported again, a
changed one is (also back to an earlier text), the texts stop costing
memory, what can no longer be answered is refused, and clear_records()
starts afresh (a followed fork's child)."""
import gc
import time

import pytest

from classtrack._core import Tracker
from classtrack.classtracker import ClassTracker


class Item:
    def __init__(self, i, tag="a"):
        self.i = i
        self.tag = tag

    def __repr__(self):
        return "Item(%d, %s) %s" % (self.i, self.tag, "x" * 60)


def _engine_with(items, slow_repr=float("inf")):
    t = Tracker()
    # every repr asked, however long one takes (a loaded machine, a
    # sanitizer): these tests count texts
    t.slow_repr = slow_repr
    for it in items:
        t.track(it, "Item", 0, False, False)
    return t


def _changed(t):
    t.snapshot()
    return dict(t.export(changed_reprs=True)[8])


def test_only_changed_texts_are_exported_after_hand_off():
    items = [Item(i) for i in range(50)]
    t = _engine_with(items)
    t.snapshot()
    first = t.export()[8]
    assert len(first) == 50
    t.track_repr_changes(hand_off=True)
    assert t.reprs_handed_off
    assert t.record(3)[8] is None           # the text is the stream's now
    assert _changed(t) == {}                # nothing changed: nothing again
    items[3].tag = "b"
    items[7].tag = "b"
    assert _changed(t) == {3: repr(items[3]), 7: repr(items[7])}
    assert _changed(t) == {}
    items[3].tag = "a"                      # back to a text exported before
    assert _changed(t) == {3: repr(items[3])}
    late = Item(99)
    items.append(late)
    t.track(late, "Item", 0, False, False)
    t.snapshot()
    assert t.record(50)[8] == repr(late)    # noted, not yet exported
    assert t.export(changed_reprs=True)[8] == {50: repr(late)}
    assert t.record(50)[8] is None


def test_texts_waiting_for_a_frame_are_bounded_and_every_record_gets_its_turn():
    from classtrack._core import PENDING_REPRS_MAX as cap
    n = 2 * cap + 7000
    items = [Item(i) for i in range(n)]
    t = _engine_with(items[:1])
    t.snapshot()
    t.export()
    t.track_repr_changes(hand_off=True)
    for it in items[1:]:
        t.track(it, "Item", 0, False, False)
    seen = {}
    for _ in range(3):
        got = _changed(t)
        assert len(got) <= cap
        assert not seen.keys() & got.keys()     # each text once: none lost on the way
        seen.update(got)
    # the first snapshot stopped at the cap, the second went on from there,
    # the third finished and went around (record 0's text was exported whole)
    assert seen == {i: repr(items[i]) for i in range(1, n)}
    items[5].tag = "b"
    items[n - 1].tag = "b"
    assert _changed(t) == {5: repr(items[5]), n - 1: repr(items[n - 1])}
    # every text changes at every snapshot: the first records do not take
    # the cap every time, each snapshot goes on where the last one stopped
    asked = set()
    for r in range(3):
        for it in items:
            it.tag = "r%d" % r
        got = _changed(t)
        assert len(got) == cap and all(got[i] == repr(items[i]) for i in got)
        asked |= got.keys()
    assert asked == set(range(n))


def test_handed_off_texts_cost_no_memory():
    def overhead(hand_off):
        items = [Item(i) for i in range(20000)]
        t = _engine_with(items)
        t.snapshot()
        t.export()
        if hand_off:
            t.track_repr_changes(hand_off=True)
        else:
            t.track_repr_changes()
        t.export(changed_reprs=True)
        return t.snapshot()[2]
    kept, handed = overhead(False), overhead(True)
    # each kept text is a str of about 80 characters and an int key in a
    # dict; a handed-off one a 16-byte slot of a table at most 70% full
    assert kept - handed > 20000 * 100, (kept, handed)


def test_what_handed_off_texts_cannot_answer_is_refused():
    tracker = ClassTracker()
    tracker._engine.slow_repr = float("inf")
    try:
        tracker.track_class(Item)
        items = [Item(i) for i in range(5)]
        tracker.create_snapshot()
        engine = tracker._engine
        engine.export()
        engine.track_repr_changes(hand_off=True)
        with pytest.raises(RuntimeError, match="handed off"):
            engine.export()
        with pytest.raises(RuntimeError, match="handed off already"):
            engine.track_repr_changes()
        engine.track_repr_changes(hand_off=True)    # again: nothing to do
        obj = tracker.index["%s.Item" % __name__][0]
        with pytest.raises(RuntimeError, match="dump stream"):
            obj.repr
        del items
    finally:
        tracker.close()


def test_clear_records_starts_afresh():
    items = [Item(i) for i in range(5)]
    t = _engine_with(items)
    t.snapshot()
    t.export()
    t.track_repr_changes(hand_off=True)
    t.clear_snapshots()
    t.clear_records()
    assert not t.reprs_handed_off
    for it in items:
        t.track(it, "Item", 0, False, False)
    t.snapshot()
    assert t.export()[8] == {i: repr(it) for i, it in enumerate(items)}
    with pytest.raises(ValueError, match="track_repr_changes"):
        t.export(changed_reprs=True)


def test_forget_drops_the_hashes_of_the_dead():
    items = [Item(i) for i in range(3000)]
    t = _engine_with(items)
    t.snapshot()
    t.export()
    t.track_repr_changes(hand_off=True)
    before = t.snapshot()[2]
    del items[:2900]
    gc.collect()
    t.snapshot()
    t.export(changed_reprs=True)
    t.forget(bytearray(3000), 0.0)     # nothing written: no record forgotten
    after = t.snapshot()[2]
    # 3000 hashes in a table of 8192 slots, then 100 in one of 1024
    assert before - after >= (8192 - 1024) * 16, (before, after)
    items[0].tag = "z"
    assert _changed(t) == {2900: repr(items[0])}


def test_slow_repr_threshold():
    items = [Item(i) for i in range(3)]
    assert Tracker().slow_repr == 0.005
    t = _engine_with(items)
    assert t.slow_repr_classes == []
    for bad, exc in (("1", TypeError), (-1.0, ValueError), (float("nan"), ValueError)):
        with pytest.raises(exc):
            t.slow_repr = bad
    with pytest.raises(TypeError):
        del t.slow_repr
    t.slow_repr = 0.0               # every call is too slow: given up after 3
    t.snapshot()
    assert t.slow_repr_classes == [Item]
    assert t.export()[8] == {i: repr(items[i]) for i in range(3)}


class Hiccup:
    """A cheap __repr__ whose calls are slow where the test says: what a
    GIL hand-off or a collection in the middle of one call looks like."""
    slow_calls = set()
    calls = 0

    def __init__(self, i):
        self.i = i

    def __repr__(self):
        Hiccup.calls += 1
        if Hiccup.calls in Hiccup.slow_calls:
            time.sleep(0.02)
        return "Hiccup(%d)" % self.i


class Stuck(Hiccup):
    def __repr__(self):
        Hiccup.calls += 1
        time.sleep(0.02)
        return "Stuck(%d)" % self.i


def test_a_class_is_given_up_only_after_three_slow_calls_in_a_row():
    Hiccup.calls = 0
    Hiccup.slow_calls = {1, 2, 4, 5, 7}    # never 3 in a row
    items = [Hiccup(i) for i in range(4)]
    t = _engine_with(items, slow_repr=0.01)
    t.snapshot()
    t.snapshot()
    assert t.slow_repr_classes == []
    assert Hiccup.calls == 8
    assert t.export()[8] == {i: "Hiccup(%d)" % i for i in range(4)}
    Hiccup.slow_calls = {9, 10, 11}        # 3 in a row: the 4th is not asked
    t.snapshot()
    assert t.slow_repr_classes == [Hiccup] and Hiccup.calls == 11
    t.snapshot()
    assert Hiccup.calls == 11


def test_slow_calls_count_per_class():
    # two slow classes made alternately: each has its own calls in a row,
    # and a quick class between them does not reset theirs
    Hiccup.calls = 0
    Hiccup.slow_calls = set()
    items = []
    for i in range(4):
        items += [Stuck(i), Hiccup(i)]
    t = _engine_with(items, slow_repr=0.01)
    t.snapshot()
    assert t.slow_repr_classes == [Stuck]
    assert Hiccup.calls == 4 + 3        # Hiccup 4 times, Stuck 3
    t.snapshot()
    assert Hiccup.calls == 7 + 4


def test_a_busy_program_does_not_cost_a_cheap_repr_its_texts(tmp_path):
    # the monitor's snapshot hands the GIL to the program every switch
    # interval, in the middle of whichever __repr__ runs then: one call
    # "takes" 5 ms; with one strike the class lost its texts for good
    import subprocess
    import sys
    import textwrap
    prog = tmp_path / "busy.py"
    prog.write_text(textwrap.dedent("""
        import time
        from classtrack.classtracker import ClassTracker

        class Node:
            def __init__(self, i):
                self.i = i
            def __repr__(self):
                return "Node(%d)" % self.i

        t = ClassTracker()
        t.track_class(Node)
        keep = [Node(i) for i in range(20000)]
        t.start_periodic_snapshots(interval=0.1)
        # until 4 snapshots, not a fixed time: the monitor keeps its share
        # of the wall time, so a slow build (ASan) takes fewer per second
        end = time.monotonic() + 60
        x = 0
        while len(t.snapshots) < 4 and time.monotonic() < end:
            x += sum(range(1000))          # never lets the GIL go by itself
        t.stop_periodic_snapshots()
        engine = t._engine
        print(len(t.snapshots), engine.slow_repr_classes, engine.export()[8][19999])
    """))
    r = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    n, slow, last = r.stdout.split(" ", 2)
    assert int(n) >= 3 and slow == "[]" and last.strip() == "Node(19999)", r.stdout


def test_export_columns_are_read_only_bytes_like_buffers():
    """Tracker.export's record columns are BigBuffers (mapped outside the
    malloc heap): bytes-like, read-only, pickled as bytes, and made only
    by the engine."""
    import array
    import pickle

    from classtrack._core import BigBuffer

    items = [Item(i) for i in range(20000)]
    t = _engine_with(items)
    t.snapshot()
    exp = t.export()
    ids, births = exp[2], exp[5]
    assert type(ids) is BigBuffer and len(ids) == 20000 * 8
    assert list(memoryview(ids).cast("Q")[:3]) == [id(it) for it in items[:3]]
    assert array.array("d", bytes(births))[0] > 0
    with pytest.raises(TypeError):
        memoryview(ids)[0] = 1          # read-only
    again = pickle.loads(pickle.dumps(ids))
    assert type(again) is bytes and again == bytes(ids)
    with pytest.raises(TypeError, match="cannot create"):
        BigBuffer()
    empty = t.export(rec_start=20000, snap_start=1)
    assert len(empty[2]) == 0 and bytes(empty[2]) == b""
