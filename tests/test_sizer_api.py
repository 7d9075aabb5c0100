"""The asizeof API: names, detail levels, Asizer state, exclusions, options."""
import sys
import types

import pytest

import classtrack
from classtrack import asizeof as asizeof_module
from classtrack.asizeof import Asized, Asizer, asized, asizeof, asizesof, basicsize, flatsize


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


class Slotted:
    __slots__ = ("alpha", "beta", "__weakref__")

    def __init__(self):
        self.alpha = "a%d" % 1234 * 10
        self.beta = [1000, 2000]


def _big(i):
    return i * 1000 + 7


def test_top_level_names_exported():
    for name in ("asized", "Asizer", "Asized", "basicsize", "flatsize"):
        assert getattr(classtrack, name) is getattr(asizeof_module, name)
    # Pympler style: the module, with the function inside ...
    from classtrack import asizeof as mod
    assert mod.asizeof([1, 2]) == asizeof([1, 2])
    # ... and callable itself, for classtrack.asizeof(obj)
    assert classtrack.asizeof([1, 2]) == asizeof([1, 2])


def test_asizeof_of_nothing_is_zero():
    assert asizeof() == 0


def test_several_objects_are_summed_and_shared_once():
    a = [_big(1), _big(2)]
    b = [a, "b%d" % 5 * 20]
    assert asizeof(a, b) == asizeof(b)  # a is inside b
    assert asizeof(a, [_big(3)]) == asizeof(a) + asizeof([_big(3)])


def test_asizesof_gives_shared_data_to_the_first():
    s = "shared%d" % 99 * 50
    first, second = asizesof([s], [s])
    assert first == asizeof([s])
    assert second == asizeof([None]) or second == flatsize([s])


def test_asized_plain_and_tuple():
    one = asized([1])
    assert isinstance(one, Asized)
    two = asized([1], [2])
    assert isinstance(two, tuple) and len(two) == 2
    assert one.size == asizeof([1])
    assert one.refs == ()


def test_asized_str_and_repr_are_readable():
    a = asized({"key": "v%d" % 3 * 40}, detail=1)
    assert str(a).startswith("size %d, flat %d, refs[" % (a.size, a.flat))
    assert "Asized(size=" in repr(a)
    text = a.format()
    assert "[K] key" in text and "[V] key:" in text


def test_dict_entry_names_and_sizes():
    value = "v%d" % 3 * 40
    d = {"key": value, "num": _big(9)}
    a = asized(d, detail=1)
    names = [r.name for r in a.refs]
    assert names[0] == "[K] key"
    assert names[1].startswith("[V] key: 'v3v3")
    assert "[K] num" in names and "[V] num: 9007" in names
    assert a.get("[V] num: 9007").size == asizeof(_big(9))
    assert a.size == asizeof(d)
    assert a.size == a.flat + sum(r.size for r in a.refs)


def test_value_repr_is_clipped():
    d = {"k": "z" * 500}
    name = asized(d, detail=1).refs[1].name
    assert len(name) < 120 and "...." in name
    name = asized(d, detail=1, clip=20).refs[1].name
    assert len(name) < 40


def test_sequence_items_named_by_index():
    seq = ["a%d" % i * 5 for i in range(3)]
    a = asized(seq, detail=1)
    assert [r.name for r in a.refs] == ["[0]", "[1]", "[2]"]
    assert a.size == asizeof(seq)
    t = asized(tuple(seq), detail=1)
    assert [r.name for r in t.refs] == ["[0]", "[1]", "[2]"]


def test_instance_attributes_under___dict__():
    p = Point("x%d" % 1 * 30, [_big(1)])
    a = asized(p, detail=2)
    assert [r.name for r in a.refs] == ["__dict__"]
    d = a.refs[0]
    names = [r.name for r in d.refs]
    assert "[K] x" in names and "[K] y" in names
    assert any(n.startswith("[V] x: 'x1x1") for n in names)
    assert a.size == asizeof(p)
    assert a.size == a.flat + d.size
    assert d.size == d.flat + sum(r.size for r in d.refs)


def test_slots_named_by_slot_name():
    o = Slotted()
    a = asized(o, detail=1)
    names = [r.name for r in a.refs]
    assert names == ["alpha", "beta"]
    assert a.get("alpha").size == asizeof(o.alpha)
    assert a.size == asizeof(o)


def test_detail_levels_limit_tree_depth():
    data = {"outer": [["deep%d" % 1 * 9]]}
    assert asized(data, detail=0).refs == ()
    one = asized(data, detail=1)
    assert all(r.refs == () for r in one.refs)
    three = asized(data, detail=3)
    v = three.get("[V] outer: [['deep1deep1deep1deep1deep1deep1deep1deep1deep1']]")
    assert v is not None and v.refs[0].name == "[0]"
    assert one.size == three.size == asizeof(data)


def test_asizer_counts_each_object_once_across_calls():
    shared = ["s%d" % i * 10 for i in range(10)]
    a, b = [shared, _big(1)], [shared, _big(2)]
    sizer = Asizer()
    first = sizer.asizeof(a)
    second = sizer.asizeof(b)
    assert first == asizeof(a)
    assert second == asizeof(b) - asizeof(shared)
    assert sizer.total == first + second
    assert sizer.asizeof(a) == 0
    sizer.reset()
    assert sizer.total == 0
    assert sizer.asizeof(a) == first


def test_asizer_asized_shares_with_asizeof():
    shared = ["s%d" % i * 10 for i in range(10)]
    sizer = Asizer()
    sizer.asizeof(shared)
    tree = sizer.asized({"k": shared}, detail=1)
    assert sum(r.size for r in tree.refs if r.name.startswith("[V] k")) == 0


def test_exclude_refs_and_objs():
    inner = ["i%d" % i * 10 for i in range(5)]
    outer = [inner, _big(4)]
    sizer = Asizer()
    sizer.exclude_refs(inner)
    assert sizer.asizeof(outer) == asizeof(outer) - asizeof(inner)
    # an excluded referent is still sized when passed in directly
    assert sizer.asizeof(inner) == asizeof(inner)
    sizer = Asizer()
    sizer.exclude_objs(inner)
    assert sizer.asizeof(inner) == 0
    assert sizer.asizeof(outer) == asizeof(outer) - asizeof(inner)


def test_not_followed_by_default_and_switchable():
    def func():
        return 1

    mod = types.ModuleType("m")
    holder = [Point, func, mod, func.__code__, len, [].append]
    base = asizeof([None] * len(holder))
    assert asizeof(holder) == base
    assert asizeof(holder, types=True) > base
    assert asizeof(holder, modules=True) > base
    assert asizeof(holder, functions=True) > base
    assert asizeof(holder, code=True) > asizeof(holder, functions=True)
    assert asizeof(Point) == 0 and asizeof(func) == 0
    assert asizeof(Point, types=True) > 0


class _Plain:
    pass


class _ModuleKind(_Plain, types.ModuleType):
    """A module by its layout, though its first base is a plain class."""


class _ClassMethodKind(classmethod):
    pass


class _Meta(type):
    pass


def test_subclasses_of_the_governed_kinds_are_governed_too():
    """The policy decides plain instances quickly (nearest built-in base
    object); subclasses of modules, classmethods and types keep their
    kind's option, whatever their bases look like."""
    mod = _ModuleKind("m")
    mod.payload = "x" * 1000
    cm = _ClassMethodKind(lambda cls: None)
    made = _Meta("Made", (), {"payload": "y" * 1000})
    plain = _Plain()
    plain.payload = "z " * 500     # not identifier-like: not interned
    base = asizeof([None] * 4)
    assert asizeof([mod, cm, made, None]) == base
    plain_module = types.ModuleType("m")
    plain_module.payload = mod.payload
    assert asizeof([mod], modules=True) > asizeof([None])
    assert asizeof([mod], modules=True) - asizeof(mod, modules=True) \
        == asizeof([plain_module], modules=True) - asizeof(plain_module, modules=True)
    assert asizeof([cm], functions=True) > asizeof([None])
    assert asizeof([made], types=True) > asizeof([None])
    assert asizeof([plain]) > asizeof([None]) + 1000


def test_shared_objects_not_counted_as_referents():
    interned = sys.intern("some_interned_name")
    holder = [None, True, 5, interned, ""]
    assert asizeof(holder) == flatsize(holder)
    assert asizeof(holder, shared=True) > flatsize(holder)
    # passed in directly they are sized
    assert asizeof(None) > 0 and asizeof(5) > 0


def test_weakly_referenced_objects_not_counted():
    import weakref
    p = Point(1, 2)
    r = weakref.ref(p)
    assert asizeof(r) == flatsize(r)


def test_limit_option():
    chain = None
    for i in range(10):
        chain = [chain, _big(i)]
    assert asizeof(chain, limit=0) == flatsize(chain)
    assert asizeof(chain, limit=2) < asizeof(chain)
    assert asizeof(chain, limit=None) == asizeof(chain)


def test_bad_options_raise():
    with pytest.raises(TypeError, match="unknown asizeof option 'colour'"):
        asizeof([], colour=True)
    with pytest.raises(ValueError, match="limit"):
        asizeof([], limit=-1)
    with pytest.raises(ValueError, match="detail"):
        asized([], detail=-1)
    with pytest.raises(TypeError, match="detail"):
        asized([], detail="2")


def test_pympler_options_accepted():
    assert asizeof([1], align=8, cutoff=10, derive=False, infer=False, stats=0, above=1024) \
        == asizeof([1])


def test_basicsize_and_flatsize():
    p = Point(1, 2)
    assert basicsize(p) >= type(p).__basicsize__
    assert basicsize([]) == type([]).__basicsize__ + 16  # GC header
    assert flatsize([1, 2, 3]) == sys.getsizeof([1, 2, 3])
    assert flatsize("abc") == sys.getsizeof("abc")


def test_all_option_sizes_the_heap():
    total = asizeof(all=True)
    assert total > 1_000_000
    with pytest.raises(TypeError):
        asizeof([1], all=True)
