"""track_package, run --track-package and run --track-mine: whole packages
and "my classes" without naming them, also in modules imported later."""
import json
import os
import subprocess
import sys

import pytest

from classtrack import _untrackable
from classtrack.classtracker import ClassTracker
from helpers import write_files


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    name = "ctpkg_%d" % os.getpid()
    write_files(tmp_path, {
        name + "/__init__.py": """
            class Early:
                pass
        """,
        name + "/sub/__init__.py": """
            import collections
            class Later:
                pass
            Made = type("Made", (), {})
            Point = collections.namedtuple("Point", "x y")
            class Blob(bytes):
                pass
        """,
        name + "x/__init__.py": """
            class NotMine:
                pass
        """,
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for mod in [m for m in sys.modules if m == name or m.startswith(name)]:
        del sys.modules[mod]


def _counts(tracker):
    tracker.create_snapshot()
    return {k: len(v) for k, v in tracker.index.items()}


def test_track_package_follows_imported_and_later_modules(pkg):
    early = __import__(pkg)
    tracker = ClassTracker()
    try:
        tracker.track_package(pkg)
        sub = __import__(pkg + ".sub", fromlist=["x"])
        other = __import__(pkg + "x")
        objs = [early.Early() for _ in range(3)] + [sub.Later() for _ in range(4)] \
            + [sub.Made() for _ in range(2)] + [other.NotMine() for _ in range(5)]
        ns = {"__name__": pkg + ".sub.dynamic"}
        exec("class Dyn:\n    pass\n", ns)
        objs += [ns["Dyn"]() for _ in range(6)]
        counts = _counts(tracker)
        assert counts == {pkg + ".Early": 3, pkg + ".sub.Later": 4, pkg + ".sub.Made": 2,
                          pkg + ".sub.dynamic.Dyn": 6}
        # the bytes subclass cannot be followed: listed with the reason, not
        # raised; the namedtuple is followed by the death watch
        reasons = dict(tracker.untrackable_classes())
        assert pkg + ".sub.Blob" in reasons and pkg + ".sub.Point" not in reasons
        assert "variable-sized (it derives from bytes)" in reasons[pkg + ".sub.Blob"]
        assert "__weakref__" in reasons[pkg + ".sub.Blob"]
        points = [sub.Point(i, i) for i in range(5)]
        assert _counts(tracker)[pkg + ".sub.Point"] == 5
        del points
        del objs
    finally:
        tracker.close()


def test_detach_ends_the_package_watch(pkg):
    mod = __import__(pkg)
    tracker = ClassTracker()
    tracker.track_package(pkg)
    tracker.detach_all_classes()
    ns = {"__name__": pkg + ".after"}
    exec("class After:\n    pass\n", ns)
    objs = [ns["After"]() for _ in range(3)] + [mod.Early()]
    assert _counts(tracker) == {}
    del objs


def test_track_package_rejects_bad_names(tracker):
    for bad in ("", "a..b", "1abc", None, 3):
        with pytest.raises(ValueError, match="dotted module name"):
            tracker.track_package(bad)


def test_a_failing_watch_never_breaks_a_class_statement(pkg):
    tracker = ClassTracker()    # not the fixture's: this test breaks it
    tracker.track_package(pkg)
    tracker._engine = None      # any use of the tracker now fails
    try:
        ns = {"__name__": pkg + ".broken"}
        exec("class Fine:\n    pass\n", ns)
        assert ns["Fine"].__name__ == "Fine"
    finally:
        for w in tracker._watches:
            w.stop()


def _run(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), os.path.dirname(os.path.dirname(
            __import__("classtrack").__file__))]))
    proc = subprocess.run([sys.executable, "-m", "classtrack", "run", "--interval", "0",
                           "-o", str(tmp_path / "out.ctdump")] + list(args),
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    rep = subprocess.run([sys.executable, "-m", "classtrack", "report", "--json",
                          str(tmp_path / "out.ctdump")], env=env, capture_output=True,
                         text=True, timeout=60)
    assert rep.returncode == 0, rep.stderr
    data = json.loads(rep.stdout)
    return proc, {c["name"]: c["last_count"] for c in data["classes"]}


PROGRAM = """
    import json, argparse
    import helper_mod
    class Job:
        def __init__(self, i):
            self.i = i
    jobs = [Job(i) for i in range(100)]
    helpers = [helper_mod.Helper() for i in range(20)]
    import late_mod                     # imported while the program runs
    lates = [late_mod.Late() for _ in range(7)]
    decoders = [json.JSONDecoder() for _ in range(5)]   # stdlib: not mine
    parser = argparse.ArgumentParser()
"""


def test_run_track_mine_tracks_the_program_and_its_own_modules(tmp_path):
    write_files(tmp_path, {"prog.py": PROGRAM,
                      "helper_mod.py": "class Helper:\n    pass\n",
                      "late_mod.py": "class Late:\n    pass\n"})
    _, counts = _run(tmp_path, "--track-mine", "prog.py")
    assert counts == {"__main__.Job": 100, "helper_mod.Helper": 20, "late_mod.Late": 7}


def test_run_track_package(tmp_path, pkg):
    write_files(tmp_path, {"prog2.py": """
        import %s as p
        import %s.sub as s
        objs = [p.Early() for _ in range(3)] + [s.Later() for _ in range(2)]
    """ % (pkg, pkg)})
    proc, counts = _run(tmp_path, "--track-package", pkg, "--track-package", "nosuchpkg",
                        "prog2.py")
    assert counts == {pkg + ".Early": 3, pkg + ".sub.Later": 2}
    # one line counts them per reason; --verbose names each
    assert ("classtrack: 1 class counted at snapshots (cannot be followed one by one: "
            "1 variable-sized") in proc.stderr
    assert "--verbose lists them" in proc.stderr
    assert "counting %s.sub.Blob" % pkg not in proc.stderr
    # said at the start, once, with what it might have meant
    assert proc.stderr.count("nosuchpkg") == 1, proc.stderr
    assert "warning: --track-package nosuchpkg: no such module" in proc.stderr
    assert "--track-package %s:" % pkg not in proc.stderr
    proc, _ = _run(tmp_path, "--track-package", pkg, "--verbose", "prog2.py")
    assert ("counting %s.sub.Blob at snapshots, not one by one: its instances are "
            "variable-sized" % pkg) in proc.stderr


def test_run_track_package_misspelt_is_said_at_the_start(tmp_path, pkg):
    write_files(tmp_path, {"prog3.py": "import %s\n" % pkg})
    proc, _ = _run(tmp_path, "--track-package", pkg[:-1], "prog3.py")
    assert ("warning: --track-package %s: no such module (did you mean %s"
            % (pkg[:-1], pkg)) in proc.stderr, proc.stderr


def test_reasons_say_what_is_true_and_advise_what_is_possible():
    import collections
    import enum
    import types
    import typing

    class Mod(types.ModuleType):
        pass

    class NT(typing.NamedTuple):
        a: int

    class IE(enum.IntEnum):
        A = 1

    class Dq(collections.deque):
        pass

    class Blob(bytes):
        pass

    t = ClassTracker()
    got = dict(t._track_classes([Mod, NT, IE, Dq, Blob, dict], 0, False, False))
    assert got[Mod].kind == "cweakref" and "C base module" in got[Mod].text
    assert "cannot be weakly referenced" not in got[Mod].text
    # the death watch follows NamedTuple, IntEnum and deque subclasses
    assert got[NT] is None and got[IE] is None and got[Dq] is None
    assert got[Blob].kind == "varsize" and "derives from bytes" in got[Blob].text
    # without the watch (tracemalloc tracing), the reasons for them
    got.update((cls, _untrackable.reason(cls, lambda c: False)) for cls in (NT, IE, Dq))
    for cls, base in ((NT, tuple), (IE, int)):
        assert got[cls].kind == "varsize"
        assert "derives from %s" % base.__name__ in got[cls].text
        if sys.version_info < (3, 15):
            # no advice to add a __weakref__ slot, which Python refuses there
            assert "add '__weakref__'" not in got[cls].text
            with pytest.raises(TypeError):
                type("X", (base,), {"__slots__": ("__weakref__",)})
        else:
            # 3.15 allows it, and the advice says so
            type("X", (base,), {"__slots__": ("__weakref__",)})
            assert "add '__weakref__'" in got[cls].text
    assert got[Dq].kind == "cweakref" and "collections.deque" in got[Dq].text
    assert got[dict].kind == "c"
    t.close()


def _fake_module(name):
    import types
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    return mod


def _import_nothing():
    """An import that asks every sys.meta_path entry (none finds it)."""
    with pytest.raises(ImportError):
        __import__("ctwatch_no_such_module_%d" % os.getpid())


def test_imports_look_at_modules_a_later_watch_accepts(tracker):
    # the look at each import skips the modules no watch accepts; a watch
    # started later must still see them
    first = _fake_module("ctwatch_first_%d" % os.getpid())
    later = _fake_module("ctwatch_later_%d" % os.getpid())
    try:
        tracker.track_package(first.__name__)
        _import_nothing()       # an import: the watches look at sys.modules
        tracker.track_package(later.__name__)
        later.Made = type("Made", (), {"__module__": later.__name__})
        first.Also = type("Also", (), {"__module__": first.__name__})
        _import_nothing()
        objs = [later.Made(), first.Also()]
        names = {o.name for o in tracker.objects.values() if o.ref() is not None}
        assert names == {later.__name__ + ".Made", first.__name__ + ".Also"}
        del objs
    finally:
        del sys.modules[first.__name__], sys.modules[later.__name__]
