"""pytest plugin: catch instances that outlive their test.

Installed with the package (the ``pytest11`` entry point ``classtrack``);
inert until asked:

``@pytest.mark.limit_instances(Session, 0)`` (a class, or its dotted name
``"pkg.mod.Session"`` / ``"pkg.mod:Session"``; repeat the marker for more
classes)
    The test fails when more than N instances of the class (or a subclass)
    created while the test function ran are still alive once its fixtures
    are torn down and ``gc.collect()`` has run.  The failure names how many
    survived and, for one of them, why it is alive
    (``classtrack.why_alive``).  It is reported at teardown, after the
    fixtures that may legitimately hold instances until then.

``pytest --classtrack=pkg.mod`` (repeatable)
    Tracks every class of those packages or modules (``track_package``) for
    every test and prints, at the end, a table of the tests that left
    instances alive: test, class, instances, their bytes and one reason.

Cost: nothing unless used.  With the marker, one tracker for that test;
with ``--classtrack``, one tracker for the session plus a ``gc.collect()``
after every test.  Loading the plugin (every pytest run where classtrack is
installed) loads the package and its extension but installs no hook,
thread or callback until a marker or the option asks.
"""
from __future__ import annotations

import gc
import importlib
from typing import Any, Dict, List, Optional, Tuple

import pytest

from classtrack.alive import _qualname

_MARKER = "limit_instances"
_ITEM_KEY = "_classtrack_limits"
_FAILED_KEY = "_classtrack_call_failed"
_PATHS_IN_TABLE = 20        # why_alive is a heap walk: only for this many rows


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("classtrack", "classtrack: instances that outlive their test")
    group.addoption(
        "--classtrack", action="append", default=[], metavar="MODULE",
        help="track every class of this package or module (repeatable) and "
             "print a table of the tests that left instances alive")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "limit_instances(cls, n=0): fail when more than n instances of cls "
        "(a class or 'pkg.mod.Class') created by the test are alive after it")
    names = config.getoption("classtrack", default=[]) or []
    if names:
        config.pluginmanager.register(_SessionLeaks(names), "classtrack-session-leaks")


# -- naming classes -------------------------------------------------------------

def resolve_class(spec: Any) -> type:
    """The class named by spec: a class, ``"pkg.mod.Class"`` (the longest
    importable module prefix, then attributes) or ``"pkg.mod:Class"``.
    Raises ValueError naming the problem."""
    if isinstance(spec, type):
        return spec
    if not isinstance(spec, str) or not spec:
        raise ValueError("limit_instances needs a class or its dotted name, not %r" % (spec,))
    if ":" in spec:
        modname, _, attrs = spec.partition(":")
        splits = [(modname, attrs.split("."))]
    else:
        parts = spec.split(".")
        splits = [(".".join(parts[:i]), parts[i:]) for i in range(len(parts) - 1, 0, -1)]
    if not splits or not all(p.isidentifier() for p in spec.replace(":", ".").split(".")):
        raise ValueError("limit_instances: %r is not a dotted class name like 'pkg.mod.Class'"
                         % (spec,))
    for modname, attrs in splits:
        try:
            obj: Any = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name is not None and (modname == e.name or modname.startswith(e.name + ".")):
                continue        # no such module: try a shorter prefix
            raise
        for attr in attrs:
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                raise ValueError("limit_instances: module %r has no class %r"
                                 % (modname, ".".join(attrs))) from None
        if not isinstance(obj, type):
            raise ValueError("limit_instances: %r is %s, not a class"
                             % (spec, type(obj).__name__))
        return obj
    raise ValueError("limit_instances: cannot import a module for %r" % (spec,))


def _limits(item: Any) -> List[Tuple[type, int]]:
    out = []
    for mark in item.iter_markers(name=_MARKER):
        args = list(mark.args)
        kwargs = dict(mark.kwargs)
        if not args and "cls" in kwargs:
            args.append(kwargs.pop("cls"))
        if len(args) < 2 and "n" in kwargs:
            args.append(kwargs.pop("n"))
        if kwargs or not 1 <= len(args) <= 2:
            raise ValueError("limit_instances takes (cls, n=0), not args %r kwargs %r"
                             % (tuple(mark.args), mark.kwargs))
        cls = resolve_class(args[0])
        n = args[1] if len(args) == 2 else 0
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError("limit_instances: n must be an int >= 0, not %r" % (n,))
        out.append((cls, n))
    return out


# -- survivors ----------------------------------------------------------------------

class _Survivors:
    """What a tracker's records left alive, per class (a class object, or
    the record's name where the class is unknown)."""

    def __init__(self, tracker: Any) -> None:
        gc.collect()
        engine = tracker._engine
        counts: Dict[Any, int] = {}
        first: Dict[Any, int] = {}
        objs: Dict[Any, list] = {}
        for i in range(len(engine)):
            rec = engine.record(i)
            if rec[3] is None and rec[6] is not None:      # alive
                key = rec[7] if rec[7] is not None else rec[1]
                counts[key] = counts.get(key, 0) + 1
                first.setdefault(key, i)
                objs.setdefault(key, []).append(rec[6])
            del rec
        from classtrack.asizeof import asizeof
        self.sizes = {key: asizeof(*group) for key, group in objs.items()}
        del objs
        self.counts = counts
        self._engine = engine
        self._first = first

    def matching(self, cls: type) -> List[Any]:
        """The keys that are cls or a subclass of it."""
        return [k for k in self.counts if isinstance(k, type) and issubclass(k, cls)]

    def why(self, key: Any, limit: int = 1) -> List[str]:
        """why_alive of the first survivor under key, as text."""
        from classtrack.alive import why_alive
        obj = self._engine.record(self._first[key])[6]
        if obj is None:
            return []
        return [str(p) for p in why_alive(obj, limit=limit)]


def _label(key: Any) -> str:
    return _qualname(key) if isinstance(key, type) else str(key)


def _failed(item: Any) -> bool:
    return getattr(item, _FAILED_KEY, False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: Any, call: Any) -> None:
    # a test that raised keeps its locals alive through the traceback pytest
    # holds: its survivors say nothing about leaks, so they are not judged
    if call.when == "call" and call.excinfo is not None:
        setattr(item, _FAILED_KEY, True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: Any) -> None:
    if item.get_closest_marker(_MARKER) is None:
        return
    problem = None
    try:
        limits = _limits(item)
        from classtrack.classtracker import ClassTracker
        tracker = ClassTracker()
        try:
            for cls, _ in limits:
                tracker.track_class(cls)
        except BaseException:
            tracker.clear()
            raise
    except (ValueError, TypeError, ImportError) as e:
        problem = str(e)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    setattr(item, _ITEM_KEY, (tracker, limits))


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: Any, nextitem: Any) -> None:
    state = getattr(item, _ITEM_KEY, None)
    if state is None:
        return
    delattr(item, _ITEM_KEY)
    tracker, limits = state
    problems = []
    try:
        tracker.detach_all_classes()
        if _failed(item):
            return
        found = _Survivors(tracker)
        for cls, n in limits:
            keys = found.matching(cls)
            alive = sum(found.counts[k] for k in keys)
            if alive <= n:
                continue
            msg = ("limit_instances: %d instance%s of %s created during the test "
                   "%s still alive after it (limit %d; %s bytes)"
                   % (alive, "" if alive == 1 else "s", _qualname(cls),
                      "is" if alive == 1 else "are", n,
                      format(sum(found.sizes[k] for k in keys), ",")))
            paths = found.why(keys[0], limit=3)
            if paths:
                msg += "\n  why one of them is alive:\n" + "\n".join("    " + p for p in paths)
            else:
                msg += "\n  (no reference path from a root found)"
            problems.append(msg)
        del found
    finally:
        tracker.clear()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# -- --classtrack: a leak table for the session ----------------------------------------

class _SessionLeaks:
    """The ``--classtrack`` mode: one tracker, records cleared per test."""

    def __init__(self, names: List[str]) -> None:
        self.names = names
        self.rows: List[Tuple[str, str, int, int, Optional[str]]] = []
        self.tests = 0
        self.failed = 0
        self._running = False
        self.tracker: Any = None

    def pytest_sessionstart(self, session: Any) -> None:
        from classtrack.classtracker import ClassTracker
        self.tracker = ClassTracker()
        for name in self.names:
            try:
                self.tracker.track_package(name)
            except ValueError as e:
                raise pytest.UsageError("--classtrack: %s" % e) from None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: Any) -> None:
        with self.tracker.snapshot_lock:
            self.tracker._engine.clear_records()
            self.tracker._views.clear()
        self._running = True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: Any, nextitem: Any) -> Any:
        # a wrapper: it runs after the fixtures' teardown and after a
        # limit_instances failure, which would stop a plain hook
        yield
        if not self._running:
            return
        self._running = False
        self.tests += 1
        if _failed(item):
            self.failed += 1
        else:
            found = _Survivors(self.tracker)
            for key in sorted(found.counts, key=lambda k: -found.sizes[k]):
                why = None
                if len(self.rows) < _PATHS_IN_TABLE:
                    paths = found.why(key, limit=1)
                    why = paths[0] if paths else None
                self.rows.append((item.nodeid, _label(key), found.counts[key],
                                  found.sizes[key], why))
            del found
        with self.tracker.snapshot_lock:
            self.tracker._engine.clear_records()
            self.tracker._views.clear()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tr = terminalreporter
        tr.write_sep("=", "classtrack: instances alive after their test")
        classes = len(self.tracker._classes) if self.tracker is not None else 0
        if self.failed:
            tr.write_line("%d failed tests not judged (a traceback keeps their locals alive)"
                          % self.failed)
        if not self.rows:
            tr.write_line("no instance of the %d tracked classes (%s) outlived its test "
                          "(%d tests)" % (classes, ", ".join(self.names), self.tests))
            return
        width = max(len(r[0]) for r in self.rows)
        cwidth = max(len(r[1]) for r in self.rows)
        tr.write_line("%-*s  %-*s  %9s  %12s" % (width, "test", cwidth, "class",
                                                 "instances", "bytes"))
        for test, name, count, size, why in self.rows:
            tr.write_line("%-*s  %-*s  %9d  %12s" % (width, test, cwidth, name, count,
                                                     format(size, ",")))
            if why:
                tr.write_line("    why alive: %s" % why)
        tests = len({r[0] for r in self.rows})
        tr.write_line("%d of %d tests left instances of %d tracked classes alive"
                      % (tests, self.tests, classes))

    def pytest_unconfigure(self, config: Any) -> None:
        if self.tracker is not None:
            self.tracker.clear()
            self.tracker = None
