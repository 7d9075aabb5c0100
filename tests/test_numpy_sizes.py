"""numpy arrays: the sizer and the heap graph follow an ndarray's base and,
for an object array owning its buffer, its elements (an ndarray is no GC
object and has no tp_traverse that would report them).

Expectations come from facts the code under test does not compute: numpy's
own __sizeof__ of each array, tracemalloc's count of what building an
array allocates, and the objects a test enumerates itself (``a.flat``)."""
import gc
import sys
import tracemalloc
import types

import pytest

np = pytest.importorskip("numpy")

import classtrack  # noqa: E402
from classtrack import asizeof  # noqa: E402
from classtrack.asizeof import asized, flatsize  # noqa: E402
from classtrack.classtracker import ClassTracker  # noqa: E402


class SubArray(np.ndarray):
    pass


def _base_chain(arr):
    """arr and every base below it, as numpy reports them."""
    chain = [arr]
    while isinstance(chain[-1], np.ndarray) and chain[-1].base is not None:
        chain.append(chain[-1].base)
    return chain


def _allocated(build):
    """(the object build() returns, bytes tracemalloc saw it allocate)."""
    build()                                  # warm numpy's caches up
    gc.collect()
    gc.disable()
    try:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        obj = build()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    finally:
        gc.enable()
    return obj, after - before


def _view():
    return np.zeros(10 ** 6)[::2]


def _object_array():
    a = np.empty(100, dtype=object)
    for i in range(100):
        a[i] = list(range(1000))
    return a


def _close(measured, allocated):
    # numpy's small allocations (its shape/strides cache) may differ by a
    # few dozen bytes from what building allocated this time
    return abs(measured - allocated) <= max(1024, allocated // 1000)


# ---- the user's two cases ----

def test_view_counts_the_base_it_keeps_alive():
    v, allocated = _allocated(_view)
    base = v.base
    assert v.__sizeof__() < 1024             # numpy: a view owns no data
    assert base.__sizeof__() >= 8 * 10 ** 6  # the owner counts its buffer
    assert flatsize(v) == v.__sizeof__()
    assert asizeof(v) == v.__sizeof__() + base.__sizeof__()
    assert _close(asizeof(v), allocated)


def test_object_array_counts_its_elements():
    a, allocated = _allocated(_object_array)
    items = list(a.flat)
    assert all(type(x) is list for x in items) and len({id(x) for x in items}) == 100
    # the elements sized on their own, enumerated here, not by the sizer
    assert asizeof(a) == a.__sizeof__() + asizeof(*items)
    assert asizeof(a) > sum(sys.getsizeof(x) for x in items)
    assert _close(asizeof(a), allocated)


# ---- shapes of arrays ----

def test_view_of_a_view_follows_the_chain_to_the_owner():
    owner = np.zeros(10 ** 5)
    mid = owner.view(SubArray)
    v = mid[::2]
    chain = _base_chain(v)
    assert chain[1] is mid and chain[2] is owner   # a real chain of two
    # a subclass instance is a GC object: its flat size adds the pre-header
    # (GC head, managed dict, 3.14's inline values) to numpy's __sizeof__
    assert all(flatsize(x) >= x.__sizeof__() for x in chain)
    assert asizeof(v) == sum(flatsize(x) for x in chain)
    assert asizeof(v) > owner.nbytes


def test_shared_element_is_counted_once():
    lst = list(range(1000))
    a = np.empty(100, dtype=object)
    for i in range(100):
        a[i] = lst
    assert asizeof(a) == a.__sizeof__() + asizeof(lst)


def test_multidimensional_and_fortran_order_object_arrays():
    for order in ("C", "F"):
        a = np.empty((7, 5), dtype=object, order=order)
        for i in range(7):
            for j in range(5):
                a[i, j] = [i, j, "%d-%d" % (i, j)]
        items = list(a.flat)
        assert asizeof(a) == a.__sizeof__() + asizeof(*items)


def test_object_view_counts_its_owner_and_the_owners_elements():
    a = _object_array()
    v = a[::3]
    assert v.base is a
    assert asizeof(v) == v.__sizeof__() + asizeof(a)


def test_numeric_and_zero_size_arrays_have_no_element_referents():
    f = np.arange(1000.0)
    assert asizeof(f) == f.__sizeof__()
    e = np.empty(0, dtype=object)
    assert asizeof(e) == e.__sizeof__()
    z = np.empty((), dtype=object)
    z[()] = [1, 2, 3]
    assert asizeof(z) == z.__sizeof__() + asizeof(z[()])


def test_buffer_base_is_sized_as_that_object():
    ba = bytearray(10 ** 5)
    f = np.frombuffer(ba, dtype=np.uint8)
    assert f.__sizeof__() < 1024
    # the base (a memoryview here) leads to the bytearray
    assert asizeof(f) >= f.__sizeof__() + sys.getsizeof(ba)
    assert asizeof(f) == f.__sizeof__() + asizeof(f.base)


def test_subclass_instance_counts_dict_base_and_elements():
    a = _object_array()
    s = a.view(SubArray)
    s.note = "".join(["x"] * 100)     # built at run time: not an interned constant
    alone = asizeof.Asizer()
    alone.exclude_refs(a)
    own = alone.asizeof(s)          # s and its attributes, not its base
    assert own >= s.__sizeof__() + sys.getsizeof(s.note)
    assert asizeof(s) == own + asizeof(a)


def test_sizer_shares_across_calls_and_respects_exclusions():
    a = _object_array()
    sizer = asizeof.Asizer()
    first = sizer.asizeof(a)
    assert first == asizeof(a)
    assert sizer.asizeof(a[0]) == 0                      # seen through a
    ex = asizeof.Asizer()
    ex.exclude_refs(*list(a.flat))
    assert ex.asizeof(a) == a.__sizeof__()


# ---- measuring changes nothing ----

def test_measuring_leaves_refcounts_and_attributes_alone():
    a = _object_array()
    v = a[::2]
    s = np.zeros(10 ** 4).view(SubArray)[::2]
    s.tag = 1
    items = list(a.flat)
    watched = [a, v, s, s.base] + items
    before = [sys.getrefcount(x) for x in watched]
    dict_before = dict(s.__dict__)
    flags_before = (a.flags.owndata, v.flags.owndata, a.flags.writeable)
    for _ in range(3):
        asizeof(a, v, s)
        asized(a, detail=2)
        classtrack.retained_sizes([a, v, s])
        classtrack.why_alive(items[0])
    gc.collect()
    assert [sys.getrefcount(x) for x in watched] == before
    assert s.__dict__ == dict_before
    assert (a.flags.owndata, v.flags.owndata, a.flags.writeable) == flags_before
    assert not hasattr(a, "__dict__")


# ---- the heap graph ----

def test_retained_size_of_a_view_is_its_base():
    keep = [_view()]                 # a node of the graph (see docs/sizes.md)
    v = keep[0]
    expected = v.__sizeof__() + v.base.__sizeof__()
    assert classtrack.retained_size(v) == expected
    assert classtrack.retained_sizes([v]) == [expected]


def test_retained_size_of_an_object_array_is_its_elements():
    keep = [_object_array()]
    a = keep[0]
    assert classtrack.retained_size(a) == asizeof(a)


def test_tracker_reports_the_retained_size_of_a_view():
    keep = [_view()]
    tracker = ClassTracker()
    try:
        tracker.track_object(keep[0], retained=True)
        tracker.create_snapshot("views", retained=True)
        (views,) = tracker.index.values()
        entry = views[0].snapshots[-1][1]
        expected = keep[0].__sizeof__() + keep[0].base.__sizeof__()
        assert entry.size == expected
        assert entry.retained == expected
    finally:
        tracker.clear()


def test_why_alive_names_the_object_array():
    mod = types.ModuleType("ct_np_app")
    sys.modules["ct_np_app"] = mod
    try:
        a = np.empty(10, dtype=object)
        for i in range(10):
            a[i] = [i] * 50
        mod.arr = a
        target = a[4]
        del a
        paths = [str(p) for p in classtrack.why_alive(target)]
        assert paths, paths
        assert any(p.startswith("module ct_np_app") and "ndarray" in p for p in paths), paths
        assert not any("held from C" in p for p in paths), paths
    finally:
        del sys.modules["ct_np_app"]


# ---- pandas ----

def test_dataframe_object_column_counts_its_python_objects():
    pd = pytest.importorskip("pandas")
    values = ["value %d %s" % (i, "x" * (i % 40)) for i in range(2000)]
    df = pd.DataFrame({"s": pd.Series(values, dtype=object), "n": range(2000)})
    col = df["s"].to_numpy()
    assert col.dtype == object
    elements = {id(x): x for x in col}
    assert len(elements) == 2000
    elem_bytes = sum(sys.getsizeof(x) for x in elements.values())
    total = asizeof(df)
    # the elements plus the column's pointer array, at the least
    assert total >= elem_bytes + 8 * len(values)
    # pandas' own deep count: each element (by getsizeof) and each buffer
    assert total >= df.memory_usage(deep=True, index=True).sum()


def test_asized_detail_names_base_and_elements():
    v = _view()
    tree = asized(v, detail=1)
    assert tree.size == asizeof(v)
    assert [r.name for r in tree.refs] == ["base"]
