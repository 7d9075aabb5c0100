"""pytest plugin: catch instances that outlive their test.

Installed with the package (the ``pytest11`` entry point ``classtrack``);
inert until asked:

``@pytest.mark.limit_instances(Session, n=0, filter_fn=None)`` (a class, or
its dotted name ``"pkg.mod.Session"`` / ``"pkg.mod:Session"``; repeat the
marker for more classes)
    The test fails when more than n instances of the class (or a subclass)
    created while the test function ran are still alive once its fixtures
    are torn down and ``gc.collect()`` has run.

``@pytest.mark.limit_instances(package="app", n=0, filter_fn=None)``
    The same for every class of the package ``app`` and its subpackages,
    those imported already and those imported during the test: more than
    n survivors in all fail the test.

``filter_fn``: a callable given each survivor; when it returns False the
survivor is ignored (an expected one: a cache, a registry).

A leak fails the test itself, once: a run over a leaking test and a clean
one ends ``1 failed, 1 passed``.  The failure lists the survivors by class,
with their count, their bytes and, per class, why one of them is alive
(``classtrack.why_alive``).  A test that failed on its own is not judged
(its traceback keeps its locals alive); its own failure is what is
reported, with a note.  Under pytest-xdist the markers work in each
worker.

``pytest --classtrack=pkg.mod`` (repeatable)
    Tracks every class of those packages or modules (``track_package``) for
    every test and prints, at the end, a table of the tests that left
    instances alive: test, class, instances, their bytes and one reason.
    It fails nothing.  A name no module has is a warning at the start.
    Under pytest-xdist the workers send their rows to the controller,
    which prints one table.

Cost: nothing unless used.  With a marker, one tracker for that test; with
``--classtrack``, one tracker for the session.  After each test the engine
is asked in C which tracked objects are still alive; only when some are
does the collector run (young generations first, a full collection only
if some are still alive then) and are the survivors looked at in Python.
For the ``--classtrack`` table, a full collection runs at most once per
20 times its own cost; the tests that need one in between wait for it,
and an instance that a later test frees in the meantime is not listed
(the summary says how many tests waited).  Markers never wait.  Loading
the plugin (every pytest run where classtrack is installed) loads the
package and its extension but installs no hook, thread or callback until
a marker or the option asks.
"""
from __future__ import annotations

import bisect
import gc
import importlib
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from classtrack._modfind import importable
from classtrack.alive import _qualname

_MARKER = "limit_instances"
_ITEM_KEY = "_classtrack_limits"
_FAILED_KEY = "_classtrack_call_failed"
_PROBLEMS_KEY = "_classtrack_problems"
_PATHS_IN_TABLE = 20        # why_alive is a heap walk: only for this many rows
_FULL_SHARE = 20            # --classtrack: a full collection at most once per 20x its cost
_MAX_HELD_RECORDS = 1_000_000   # --classtrack: records kept for pending tests, at most


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("classtrack", "classtrack: instances that outlive their test")
    group.addoption(
        "--classtrack", action="append", default=[], metavar="MODULE",
        help="track every class of this package or module (repeatable) and "
             "print a table of the tests that left instances alive")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "limit_instances(cls, n=0, filter_fn=None) or limit_instances(package=NAME, "
        "n=0, filter_fn=None): fail when more than n instances of cls (a class or "
        "'pkg.mod.Class') or of the package's classes, created by the test, are alive "
        "after it; filter_fn(obj) returning False ignores a survivor")
    names = config.getoption("classtrack", default=[]) or []
    if names:
        found = []
        for name in dict.fromkeys(names):
            if all(p.isidentifier() for p in name.split(".")) and not importable(name):
                config.issue_config_time_warning(pytest.PytestConfigWarning(
                    "--classtrack=%s: no module of that name; nothing of it is tracked"
                    % name), stacklevel=2)
            else:
                found.append(name)
        config.pluginmanager.register(_SessionLeaks(config, found or names),
                                      "classtrack-session-leaks")


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


class _Limit:
    """One limit_instances marker: the classes it covers (a class and its
    subclasses, or a package's classes), how many survivors it allows and
    which it ignores."""

    def __init__(self, cls: Optional[type], package: Optional[str], n: int,
                 filter_fn: Optional[Callable[[Any], Any]]) -> None:
        self.cls = cls
        self.package = package
        self.n = n
        self.filter_fn = filter_fn

    @property
    def label(self) -> str:
        return _qualname(self.cls) if self.cls is not None else "package " + str(self.package)

    def covers(self, cls: type) -> bool:
        if self.cls is not None:
            return isinstance(cls, type) and issubclass(cls, self.cls)
        module = getattr(cls, "__module__", None) or ""
        return module == self.package or module.startswith(self.package + ".")


def _limits(item: Any) -> List[_Limit]:
    out = []
    for mark in item.iter_markers(name=_MARKER):
        args = list(mark.args)
        kwargs = dict(mark.kwargs)
        package = kwargs.pop("package", None)
        filter_fn = kwargs.pop("filter_fn", None)
        if package is None and not args and "cls" in kwargs:
            args.append(kwargs.pop("cls"))
        want = 1 if package is None else 0
        if len(args) < want + 1 and "n" in kwargs:
            args.append(kwargs.pop("n"))
        if kwargs or not want <= len(args) <= want + 1:
            raise ValueError("limit_instances takes (cls, n=0, filter_fn=None) or "
                             "(package=NAME, n=0, filter_fn=None), not args %r kwargs %r"
                             % (tuple(mark.args), mark.kwargs))
        if filter_fn is not None and not callable(filter_fn):
            raise ValueError("limit_instances: filter_fn must be callable, not %r"
                             % (filter_fn,))
        cls = None
        if package is None:
            cls = resolve_class(args[0])
        else:
            _check_package(package)
        n = args[want] if len(args) > want else 0
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError("limit_instances: n must be an int >= 0, not %r" % (n,))
        out.append(_Limit(cls, package, n, filter_fn))
    return out


def _check_package(package: Any) -> None:
    if not isinstance(package, str) or not package or not all(
            p.isidentifier() for p in package.split(".")):
        raise ValueError("limit_instances: package must be a dotted module name like "
                         "'app' or 'app.models', not %r" % (package,))
    if not importable(package):
        raise ValueError("limit_instances: no module named %r" % (package,))


# -- survivors ----------------------------------------------------------------------

def _survivor_groups(tracker: Any, keep: Callable[[Any, Any], bool],
                     full: bool = True) -> List["_Group"]:
    """The tracked objects still alive after a test that `keep(obj, cls)`
    accepts, by class, in order of first record.  The engine is asked in C
    (no Python object per record); the collector runs only when there are
    candidates (the young generations, then, when `full`, a full
    collection if some are still alive), so that an object kept only by a
    cycle does not count.  The groups hold record numbers, not the
    objects: a why_alive path must not find the plugin's own lists."""
    engine = tracker._engine
    if not engine.alive:
        return []
    # the young generations first: a test's cyclic garbage is mostly there,
    # and a young collection costs a fraction of a full one (over attrs'
    # suite: 832 of 864 tests with candidates needed no more, 0.12 s in all
    # against 3.5 s for the 32 full ones); what is still alive then is
    # judged after a full collection, so the verdict is the same
    gc.collect(1)
    if not engine.alive:
        return []
    if full:
        gc.collect()
        if not engine.alive:
            return []
    return _groups(engine, engine.survivors(), keep)


def _groups(engine: Any, rows: List[Tuple[int, Any, Any]],
            keep: Callable[[Any, Any], bool]) -> List["_Group"]:
    """Survivor rows (index, obj, cls) that `keep` accepts, by class, with
    their bytes.  Empties `rows`, so that no object outlives the call."""
    # lazy: asizeof loads the sizer's Python side, which only a test
    # with survivors needs
    from classtrack.asizeof import asizeof
    found: Dict[Any, List[Tuple[int, Any]]] = {}
    obj = None
    for index, obj, cls in rows:
        if keep(obj, cls):
            found.setdefault(cls, []).append((index, obj))
    del rows[:], obj
    groups = [_Group(engine, cls, [i for i, _ in members],
                     asizeof(*[obj for _, obj in members]))
              for cls, members in found.items()]
    found.clear()
    return groups


class _Group:
    """The survivors of one class: their records, count and bytes."""

    def __init__(self, engine: Any, cls: Any, records: List[int], size: int) -> None:
        self.engine = engine
        self.cls = cls
        self.records = records
        self.size = size

    @property
    def label(self) -> str:
        return _qualname(self.cls) if isinstance(self.cls, type) else str(self.cls)

    def why(self, limit: int = 1) -> List[str]:
        """why_alive of its first survivor still alive, as text."""
        # lazy: why_alive's helpers load only when a survivor needs a path
        from classtrack.alive import why_alive
        for i in self.records:
            obj = self.engine.record(i)[6]
            if obj is not None:
                return [str(p) for p in why_alive(obj, limit=limit)]
        return []


def _failed(item: Any) -> bool:
    return getattr(item, _FAILED_KEY, False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: Any, call: Any) -> None:
    # a test that raised keeps its locals alive through the traceback pytest
    # holds: its survivors say nothing about leaks, so they are not judged
    if call.when == "call" and call.excinfo is not None:
        setattr(item, _FAILED_KEY, True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Optional[bool]:
    """For a test with a marker: pytest's own protocol, with the reports
    held back until teardown has judged the survivors, so that a leak
    fails the test itself (counted once, as failed) instead of adding an
    error at teardown to a test already counted as passed."""
    if item.get_closest_marker(_MARKER) is None:
        return None
    # lazy: pytest's internals, only for marked tests
    from _pytest.runner import runtestprotocol
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    reports = runtestprotocol(item, nextitem=nextitem, log=False)
    _fold_verdict(item, reports)
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _fold_verdict(item: Any, reports: List[Any]) -> None:
    """The leak found at teardown becomes the outcome of the test's call."""
    problems = getattr(item, _PROBLEMS_KEY, None)
    if problems is None:
        return
    delattr(item, _PROBLEMS_KEY)
    call = next((r for r in reports if r.when == "call"), None)
    if call is None:
        return
    if call.passed:
        call.outcome = "failed"
        call.longrepr = "\n".join(problems)
    elif call.failed:
        call.sections.append(("classtrack", "\n".join(problems)))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: Any) -> None:
    if item.get_closest_marker(_MARKER) is None:
        return
    problem = None
    try:
        limits = _limits(item)
        # lazy: the plugin stays inert until a marker or --classtrack asks
        from classtrack.classtracker import ClassTracker
        tracker = ClassTracker()
        try:
            for limit in limits:
                if limit.cls is not None:
                    tracker.track_class(limit.cls)
                else:
                    tracker.track_package(limit.package)
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
    try:
        tracker.detach_all_classes()
        if _failed(item):
            setattr(item, _PROBLEMS_KEY, [
                "classtrack: the survivors of this test were not judged (a failed "
                "test's traceback keeps its locals alive)"])
            return
        problems = [p for p in (_judge(limit, tracker) for limit in limits) if p]
    finally:
        tracker.clear()
    if problems:
        setattr(item, _PROBLEMS_KEY, problems)


def _judge(limit: _Limit, tracker: Any) -> Optional[str]:
    """The failure message of one marker, or None."""
    def keep(obj: Any, cls: Any) -> bool:
        if not limit.covers(cls):
            return False
        return limit.filter_fn is None or bool(limit.filter_fn(obj))
    groups = _survivor_groups(tracker, keep)
    alive = sum(len(g.records) for g in groups)
    if alive <= limit.n:
        return None
    msg = ("limit_instances: %d instance%s of %s created during the test %s still "
           "alive after it (limit %d; %s bytes)"
           % (alive, "" if alive == 1 else "s", limit.label,
              "is" if alive == 1 else "are", limit.n,
              format(sum(g.size for g in groups), ",")))
    for g in sorted(groups, key=lambda g: -g.size):
        if limit.cls is None or len(groups) > 1:
            msg += "\n  %s: %d, %s bytes" % (g.label, len(g.records), format(g.size, ","))
        paths = g.why(limit=3 if len(groups) == 1 else 1)
        if paths:
            msg += "\n  why one of them is alive:\n" + "\n".join("    " + p for p in paths)
        else:
            msg += "\n  (no reference path from a root found)"
    return msg


# -- --classtrack: a leak table for the session ----------------------------------------

class _SessionLeaks:
    """The ``--classtrack`` mode: one tracker, records cleared per test.
    Under pytest-xdist each worker runs one and sends its rows to the
    controller (``workeroutput``), which runs none and prints them all."""

    def __init__(self, config: Any, names: List[str]) -> None:
        self.config = config
        self.names = names
        self.rows: List[Tuple[str, str, int, int, Optional[str]]] = []
        self.tests = 0
        self.failed = 0
        self.classes = 0
        self._running = False
        self.tracker: Any = None
        self.worker = hasattr(config, "workerinput")
        self.controller = False         # known at session start
        self.workers = 0
        self._start = 0                 # the running test's first record
        # tests whose candidates outlived a young collection, waiting for
        # a full one: (nodeid, first record, end record); their records
        # are kept (not cleared) until then
        self._pending: List[Tuple[str, int, int]] = []
        self._next_full = 0.0           # perf_counter() before which none runs
        self.deferred = 0               # tests judged after a later test ran

    def pytest_sessionstart(self, session: Any) -> None:
        # xdist's controller: it runs no test, its workers send their rows
        self.controller = not self.worker and self.config.pluginmanager.hasplugin("dsession")
        if self.controller:
            return
        # lazy: the plugin stays inert until a marker or --classtrack asks
        from classtrack.classtracker import ClassTracker
        self.tracker = ClassTracker()
        for name in self.names:
            try:
                self.tracker.track_package(name)
            except ValueError as e:
                raise pytest.UsageError("--classtrack: %s" % e) from None

    def _clear(self) -> None:
        with self.tracker.snapshot_lock:
            self.tracker._engine.clear_records()
            self.tracker._views.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: Any) -> None:
        if self.tracker is None:
            return
        if not self._pending and len(self.tracker._engine):
            self._clear()
        self._start = len(self.tracker._engine)
        self._running = True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: Any, nextitem: Any) -> Any:
        # a wrapper: it runs after the fixtures' teardown, and after the
        # markers' check (a plain hook would be stopped by a failure there)
        yield
        if not self._running:
            return
        self._running = False
        self.tests += 1
        engine = self.tracker._engine
        if _failed(item):
            self.failed += 1
        elif engine.alive:
            gc.collect(1)
            if self._has_candidates(engine):
                self._pending.append((item.nodeid, self._start, len(engine)))
        if self._pending and (time.perf_counter() >= self._next_full
                              or len(engine) > _MAX_HELD_RECORDS):
            self._judge_pending()
        if not self._pending and len(engine):
            self._clear()

    def _has_candidates(self, engine: Any) -> bool:
        """Whether a record of the test that just ran is still alive."""
        if not engine.alive:
            return False
        if not self._pending:
            return True                 # every record is this test's
        rows = engine.survivors()
        found = any(index >= self._start for index, _, _ in rows)
        del rows[:]
        return found

    def _judge_pending(self) -> None:
        """One full collection, then the verdict of every pending test.
        A full collection costs a walk of the whole heap (about 0.1 s in
        attrs' suite), and a test whose objects are held by a cache needs
        one to be told from a test whose objects wait in an old cycle: so
        a full collection runs at most once per _FULL_SHARE times its own
        cost, and the tests in between wait for it, their records kept.
        What a later test frees in the meantime is not listed."""
        engine = self.tracker._engine
        start = time.perf_counter()
        gc.collect()
        now = time.perf_counter()
        self._next_full = now + (now - start) * _FULL_SHARE
        pending, self._pending = self._pending, []
        self.deferred += len(pending) - 1
        rows = engine.survivors() if engine.alive else []
        firsts = [first for _, first, _ in pending]
        by_test: Dict[int, List[Tuple[int, Any, Any]]] = {}
        row = None
        for row in rows:
            k = bisect.bisect_right(firsts, row[0]) - 1
            if k >= 0 and row[0] < pending[k][2]:
                by_test.setdefault(k, []).append(row)
        del rows[:], row                # no survivor may be held from here
        judged = [(pending[k][0], _groups(engine, members, lambda obj, cls: True))
                  for k, members in sorted(by_test.items())]
        by_test.clear()
        for nodeid, groups in judged:
            for g in sorted(groups, key=lambda g: -g.size):
                why = None
                if len(self.rows) < _PATHS_IN_TABLE:
                    paths = g.why(limit=1)
                    why = paths[0] if paths else None
                self.rows.append((nodeid, g.label, len(g.records), g.size, why))

    def pytest_sessionfinish(self, session: Any) -> None:
        if self._pending:
            self._judge_pending()
        if self.tracker is not None:
            self.classes = len(self.tracker._classes)
        if self.worker:
            self.config.workeroutput["classtrack"] = {
                "rows": [list(r) for r in self.rows], "tests": self.tests,
                "failed": self.failed, "classes": self.classes,
                "deferred": self.deferred}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist, in the controller: a worker ended; its rows join ours."""
        out = getattr(node, "workeroutput", {}).get("classtrack")
        if not out:
            return
        self.workers += 1
        self.rows.extend(tuple(r) for r in out["rows"])
        self.tests += out["tests"]
        self.failed += out["failed"]
        self.deferred += out.get("deferred", 0)
        self.classes = max(self.classes, out["classes"])

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.worker:
            return
        tr = terminalreporter
        tr.write_sep("=", "classtrack: instances alive after their test")
        classes = self.classes
        if self.tracker is not None:
            classes = len(self.tracker._classes)
        if self.workers:
            tr.write_line("%d workers' tests, merged" % self.workers)
        if self.failed:
            tr.write_line("%d test%s that raised (failed or xfailed) not judged (a traceback "
                          "keeps their locals alive)" % (self.failed, "" if self.failed == 1
                                                         else "s"))
        if self.deferred:
            tr.write_line("%d test%s judged after later tests ran (a full collection runs at "
                          "most once per %dx its cost): an instance freed in between is not "
                          "listed" % (self.deferred, "" if self.deferred == 1 else "s",
                                      _FULL_SHARE))
        if not self.rows:
            tr.write_line("no instance of the %d tracked classes (%s) outlived its test "
                          "(%d tests)" % (classes, ", ".join(self.names), self.tests))
            return
        rows = sorted(self.rows, key=lambda r: (r[0], -r[3]))
        width = max(len(r[0]) for r in rows)
        cwidth = max(len(r[1]) for r in rows)
        tr.write_line("%-*s  %-*s  %9s  %12s" % (width, "test", cwidth, "class",
                                                 "instances", "bytes"))
        for test, name, count, size, why in rows:
            tr.write_line("%-*s  %-*s  %9d  %12s" % (width, test, cwidth, name, count,
                                                     format(size, ",")))
            if why:
                tr.write_line("    why alive: %s" % why)
        tests = len({r[0] for r in rows})
        tr.write_line("%d of %d tests left instances of %d tracked classes alive"
                      % (tests, self.tests, classes))

    def pytest_unconfigure(self, config: Any) -> None:
        if self.tracker is not None:
            self.tracker.clear()
            self.tracker = None
