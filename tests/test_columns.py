"""The engine's column functions (aggregate.c, entries.c) against the
same sums done plainly in Python, over entries of every layout: index
lists and bitmaps, size columns of 1, 2, 4 and 8 bytes."""
import array
import random

import pytest

from classtrack import _core


def _entries(rng, nrec, n, top):
    idx = sorted(rng.sample(range(nrec), n))
    size = [rng.randrange(top + 1) for _ in idx]
    flat = [rng.randrange(min(top, 5000) + 1) for _ in idx]
    ent = _core.Entries(array.array("I", idx).tobytes(), array.array("Q", size).tobytes(),
                        array.array("Q", flat).tobytes(), nrec)
    return ent, idx, size, flat


@pytest.mark.parametrize("top", [200, 60000, 2 ** 31, 2 ** 50])
@pytest.mark.parametrize("dense", [True, False])
def test_aggregate_matches_python(top, dense):
    rng = random.Random(top * 2 + dense)
    nrec, nnames = 5000, 4
    n = 4000 if dense else 60
    ent, idx, size, flat = _entries(rng, nrec, n, top)
    # names 0..3, and some records under a name number past the table
    names = [rng.randrange(nnames + 1) for _ in range(nrec)]
    births = [rng.random() for _ in range(nrec)]
    deaths = [0.0 if rng.random() < 0.5 else b + rng.random() for b in births]
    ts = 0.7
    cols = (array.array("I", names).tobytes(), array.array("d", births).tobytes(),
            array.array("d", deaths).tobytes())
    sums, flats, active = _core.aggregate(*cols, ent, ts, nnames)
    want_s, want_f, want_a = [0] * nnames, [0] * nnames, [0] * nnames
    for i, s, f in zip(idx, size, flat):
        if names[i] < nnames:
            want_s[names[i]] += s
            want_f[names[i]] += f
    for nm, b, d in zip(names, births, deaths):
        if nm < nnames and b < ts and (d == 0.0 or d > ts):
            want_a[nm] += 1
    assert (sums, flats, active) == (want_s, want_f, want_a)
    # with values given per entry, they are summed instead
    values = [rng.randrange(10 ** 6) for _ in idx]
    vs, vf, va = _core.aggregate(*cols, ent, ts, nnames, array.array("Q", values).tobytes())
    want_v = [0] * nnames
    for i, v in zip(idx, values):
        if names[i] < nnames:
            want_v[names[i]] += v
    assert vs == vf == want_v and va == want_a
    # entries read back as given, narrowed to the width the values need
    got = ent.columns()
    assert list(memoryview(got[1]).cast("Q")) == size
    assert ent.nbytes < n * 20 or top >= 2 ** 32


def test_aggregate_rejects_bad_name_counts():
    ent = _core.Entries(b"", b"", b"", 0)
    for bad in (-1, 2 ** 32):
        with pytest.raises(ValueError, match="name count"):
            _core.aggregate(b"", b"", b"", ent, 0.0, bad)


def _history_columns(rng, nrec, nnames, ties):
    names = [rng.randrange(nnames) for _ in range(nrec)]
    births = [round(rng.random() * 10, 1 if ties else 9) for _ in range(nrec)]
    if rng.random() < 0.5:
        births.sort()       # registration order: births usually sorted
    deaths = [0.0 if rng.random() < 0.3 else round(b + rng.random() * 5, 1 if ties else 9)
              for b in births]
    return names, births, deaths


def _drawn_from_history(xs, ys, x0, x1, max_points):
    """The step line's points and hover marks, worked out in Python from
    the full history (as the HTML report drew it before the engine did):
    every step for few events, else per bucket (highest, lowest, last)."""
    if x1 <= x0:
        x1 = x0 + 1
    pts = []
    if len(xs) > 2 * max_points:
        span = (x1 - x0) / max_points
        bucket, lo, hi, last = None, None, None, None
        for x, y in zip(xs, ys):
            b = int((x - x0) / span) if span > 0 else 0
            if b != bucket:
                if bucket is not None:
                    bx = x0 + bucket * span
                    pts += [(bx, hi), (bx, lo), (bx, last)]
                bucket, lo, hi = b, y, y
            lo, hi, last = min(lo, y), max(hi, y), y
        if bucket is not None:
            bx = x0 + bucket * span
            pts += [(bx, hi), (bx, lo), (bx, last)]
    else:
        prev = None
        for x, y in zip(xs, ys):
            if prev is not None:
                pts.append((x, prev))
            pts.append((x, y))
            prev = y
    stride = max(1, len(xs) // 400)
    return pts, [(xs[i], ys[i]) for i in range(0, len(xs), stride)]


@pytest.mark.parametrize("nrec", [1, 40, 900, 6000])
@pytest.mark.parametrize("ties", [False, True])
def test_live_series_draws_what_the_history_draws(nrec, ties):
    """The HTML chart of a class's live count, made in C from the columns,
    is the chart the Python drawing of its full history makes: every step
    for few events, the per-bucket envelope for many."""
    from classtrack.report import svg
    rng = random.Random(nrec * 3 + ties)
    nnames = 3
    names, births, deaths = _history_columns(rng, nrec, nnames, ties)
    cols = (array.array("I", names).tobytes(), array.array("d", births).tobytes(),
            array.array("d", deaths).tobytes())
    hist = _core.history(["a", "b", "c"], *cols)
    for n, nm in enumerate(["a", "b", "c"]):
        series = hist.get(nm, [])
        wanted = bytes(1 if k == n else 0 for k in range(nnames))
        for hint0, hint1 in ((3.0, 12.0), (float("inf"), float("nan"))):
            x0, x1, nevents, points, marks = _core.live_series(
                *cols, wanted, hint0, hint1, svg.MAX_LINE_POINTS, 400)
            assert nevents == len(series)
            if not series:
                continue
            xs, ys = [t for t, _ in series], [c for _, c in series]
            want_range = (min(hint0, xs[0]), hint1 if hint1 == hint1 else max(xs))
            assert (x0, x1) == want_range
            want_points, want_marks = _drawn_from_history(xs, ys, *want_range,
                                                          svg.MAX_LINE_POINTS)
            assert (points, marks) == (want_points, want_marks)
            assert svg.step_chart(points, marks, nm, (x0, x1)) == \
                svg.step_chart(want_points, want_marks, nm, want_range)


def test_live_series_rejects_bad_columns():
    with pytest.raises(ValueError, match="differ in length"):
        _core.live_series(b"\0" * 4, b"", b"", b"\1", 0.0, 1.0, 10, 10)
    with pytest.raises(ValueError, match="max_points"):
        _core.live_series(b"", b"", b"", b"", 0.0, 1.0, 0, 10)


def test_merge_column_operations():
    col = array.array("I", [0, 2, 1, 2]).tobytes()
    table = array.array("I", [7, 8, 9]).tobytes()
    assert list(memoryview(_core.remap_u32(col, table)).cast("I")) == [7, 9, 8, 9]
    with pytest.raises(ValueError, match="past the table"):
        _core.remap_u32(array.array("I", [3]).tobytes(), table)
    births = array.array("d", [1.0, 5.0, 2.0]).tobytes()
    deaths = array.array("d", [3.0, 0.0, 0.0]).tobytes()
    got = list(memoryview(_core.close_deaths(births, deaths, 4.0)).cast("d"))
    import math
    assert got == [3.0, math.nextafter(5.0, math.inf), math.nextafter(4.0, math.inf)]
    rng = random.Random(5)
    a, ia, sa, fa = _entries(rng, 100, 60, 300)     # a bitmap
    b, ib, sb, fb = _entries(rng, 50, 5, 2 ** 40)   # indices, wide sizes
    both = _core.entries_concat([(a, 0), (b, 100)], 150)
    cols = both.columns()
    assert list(memoryview(cols[0]).cast("I")) == ia + [i + 100 for i in ib]
    assert list(memoryview(cols[1]).cast("Q")) == sa + sb
    assert list(memoryview(cols[2]).cast("Q")) == fa + fb
    with pytest.raises(ValueError, match="increase"):
        _core.entries_concat([(b, 100), (a, 0)], 150)
    with pytest.raises(ValueError):
        _core.entries_concat([(a, 0), (b, 100)], 120)
    with pytest.raises(TypeError):
        _core.entries_concat([(a,)], 100)


def test_live_series_survives_a_column_changed_by_a_collection():
    """Allocating runs collections, whose callbacks run Python code: a
    mutable column changed meanwhile must not make the engine write past
    what it counted (a heap overflow before)."""
    import gc
    n = 1000
    name = array.array("I", [0] * n).tobytes()
    birth = array.array("d", [float(i + 1) for i in range(n)]).tobytes()
    death = bytearray(array.array("d", [0.0] * n).tobytes())    # all alive
    fired = []

    def cb(phase, info):
        if phase == "start" and not fired:
            fired.append(1)     # now all dead, at the same length
            death[:] = array.array("d", [float(i + 2) for i in range(n)]).tobytes()

    old = gc.get_threshold()
    gc.callbacks.append(cb)
    gc.set_threshold(1)
    try:
        junk = [[] for _ in range(5)]
        got = _core.live_series(name, birth, death, b"\x01", 0.0, 10.0, 800, 400)
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(cb)
    del junk
    assert fired and got[2] <= 2 * n


def test_live_series_takes_any_range():
    one = array.array("d", [1e300]).tobytes()
    for x0 in (float("-inf"), -1e308, 0.0):
        x0_got, _, nevents, points, _ = _core.live_series(
            b"\0" * 4, one, b"\0" * 8, b"\1", x0, 10.0, 800, 400)
        assert nevents == 1 and len(points) == 1


def test_export_refuses_a_snapshot_taken_by_a_class_lookup():
    """A class's __module__ (read while exporting) that tracks objects and
    takes a snapshot: export says so instead of returning entries that
    name records its columns do not hold."""
    t = _core.Tracker()
    keep, fired = [], []

    class Plain:
        pass

    class Meta(type):
        @property
        def __module__(cls):
            if not fired:
                fired.append(1)
                for _ in range(3):
                    o = Plain()
                    keep.append(o)
                    t.track(o, "Plain", 0, True, False)
                t.snapshot()
            return "m"

    class Odd(metaclass=Meta):
        pass

    odd = Odd()
    t.track(odd, "Odd", 0, True, False)
    with pytest.raises(RuntimeError, match="changed during export"):
        t.export()
    ex = t.export()     # asked again, it is consistent
    assert all(row[0].nrec <= len(ex[2]) // 8 for row in ex[10])
    t.clear_records()


def test_empty_columns_need_no_alignment():
    empty = bytearray()
    assert _core.remap_u32(empty, array.array("I", [1]).tobytes()) == b""


class _Small:
    def __init__(self, n):
        self.n = n


class _Huge(_Small):
    def __sizeof__(self):
        return (5 << 30) + self.n


def test_snapshot_sizes_past_4_gib_keep_the_sizes_before_them():
    """A snapshot writes its sizes in place 4 bytes wide and widens a
    column to 8 when a size needs it: the sizes written before stay."""
    def sizes(objs):
        t = _core.Tracker()
        for o in objs:
            t.track(o, type(o).__name__, 0, False, False)
        t.snapshot()
        return [(e.size, e.flat) for e in t.snapshot_entries(0)]

    small = [_Small(i) for i in range(1000, 1400)]
    mixed = small[:300] + [_Huge(7)] + small[300:] + [_Huge(9)]
    alone, both = sizes(small), sizes(mixed)
    assert both[:300] == alone[:300]
    assert both[300][0] >= (5 << 30) + 7 and both[300][1] >= (5 << 30) + 7
    assert both[-1][0] >= (5 << 30) + 9
    assert all(0 < s < 4096 for s, _ in both[301:-1])
