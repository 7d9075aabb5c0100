"""resolution_level is checked once, by the engine's binding: a level
outside 0 .. _core.MAX_RESOLUTION_LEVEL raises ValueError naming the
parameter and its range (it used to be clamped to 255 silently)."""
import pytest

from classtrack import ClassTracker, _core


class Thing:
    pass


def test_the_maximum_is_exposed():
    assert _core.MAX_RESOLUTION_LEVEL == 255


@pytest.mark.parametrize("level", [256, 300, 10**6])
def test_track_class_over_the_maximum_raises(level):
    t = ClassTracker()
    with pytest.raises(ValueError, match=r"resolution_level must be between 0 and 255, not %d" % level):
        t.track_class(Thing, resolution_level=level)
    assert t._engine.hooked() == []


def test_track_object_and_change_over_the_maximum_raise():
    t = ClassTracker()
    obj = Thing()
    with pytest.raises(ValueError, match="between 0 and 255, not 256"):
        t.track_object(obj, resolution_level=256)
    t.track_object(obj, resolution_level=255)
    with pytest.raises(ValueError, match="between 0 and 255, not 999"):
        t.track_change(obj, 999)
    t.track_change(obj, 0)


def test_the_maximum_itself_is_kept():
    t = ClassTracker()
    obj = Thing()
    t.track_object(obj, resolution_level=255)
    record = t._engine.record(t._engine.find(obj))
    assert record[5] == 255     # (id, name, birth, death, trace_no, resolution, ...)
    t.track_change(obj, 7)
    assert t._engine.record(t._engine.find(obj))[5] == 7


def test_track_package_over_the_maximum_raises_at_the_call(tmp_path, monkeypatch):
    # a package not imported yet: nothing is hooked at the call
    (tmp_path / "ct_reslevel_pkg").mkdir()
    (tmp_path / "ct_reslevel_pkg" / "__init__.py").write_text("class K:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    t = ClassTracker()
    try:
        with pytest.raises(ValueError, match="between 0 and 255"):
            t.track_package("ct_reslevel_pkg", resolution_level=300)
    finally:
        t.detach_all_classes()
