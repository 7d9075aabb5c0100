"""Tracking whole modules: every class a package (or "the program") defines,
also in modules imported later.

A ``ModuleWatch`` offers its tracker each class whose ``__module__`` its
predicate accepts.  Classes reach it two ways:

* every ``class`` statement, through the engine's one class-statement
  callback (``_core.watch_classes``), which this module shares between all
  watches (and ``classtrack run``'s name watcher) with ``add_class_callback``;
* a look through the globals of each accepted module that is new or has
  changed, at every import (a ``sys.meta_path`` entry that finds nothing),
  for classes made without a class statement (``type()``, namedtuple,
  C extensions).

Classes that cannot be tracked (implemented in C, compiled without
``__weakref__``) are remembered in ``ModuleWatch.untrackable`` with the
reason, never raised: a class statement in the program must not fail
because a tracker watches its module.  The tracker counts their instances
at each snapshot instead (``ClassTracker.count_class``).
"""
from __future__ import annotations

import os
import site
import sys
import sysconfig
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from classtrack import _core

_callbacks: List[Callable[[type], None]] = []
_lock = threading.RLock()
_watches: "weakref.WeakSet[ModuleWatch]" = weakref.WeakSet()


def _dispatch(cls: type) -> None:
    for cb in list(_callbacks):
        try:
            cb(cls)
        except Exception:   # noqa: BLE001 - never break the program's class statement
            pass


def add_class_callback(cb: Callable[[type], None]) -> None:
    """Call cb with every class a class statement creates, until removed."""
    with _lock:
        if not _callbacks:
            _core.watch_classes(_dispatch)
        _callbacks.append(cb)


def remove_class_callback(cb: Callable[[type], None]) -> None:
    with _lock:
        if cb in _callbacks:
            _callbacks.remove(cb)
        if not _callbacks:
            _core.watch_classes(None)


class _ImportHook:
    """A ``sys.meta_path`` entry that finds nothing: each import is the
    moment to look at modules that appeared since the last one."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        _rescan(list(_watches), shared=True)
        return None

    def invalidate_caches(self) -> None:
        pass


_import_hook = _ImportHook()

# Names of modules that no active watch accepts, decided for good (each
# watch caches its decision once the module is in sys.modules): the look
# at every import skips them with one set difference.  Emptied when a
# watch starts (it may accept them), under _lock; added to under the GIL
# by the look, unless a watch started since the look began.
_irrelevant: Set[str] = set()
_starts = 0     # watches started so far: a look that began before a start adds nothing


class ModuleWatch:
    def __init__(self, tracker: Any, predicate: Callable[[str], bool], resolution_level: int,
                 keep: bool, trace: bool, description: str, retained: bool = False) -> None:
        self.tracker = weakref.ref(tracker)
        self.predicate = predicate
        self.settings = (resolution_level, keep, trace, retained)
        self.description = description
        self.tracked: "weakref.WeakSet[type]" = weakref.WeakSet()
        self.untrackable: List[Tuple[str, Any]] = []    # (class name, _untrackable.Reason)
        self._decided: "weakref.WeakKeyDictionary[type, bool]" = weakref.WeakKeyDictionary()
        self._scanned: Dict[str, Tuple[int, int]] = {}
        self._accepts: Dict[str, bool] = {}
        self._scanning = False
        self.active = False

    # -- lifetime
    def start(self) -> None:
        global _starts
        with _lock:
            _starts += 1
            _irrelevant.clear()
            self.active = True
            _watches.add(self)
            add_class_callback(self)
            if _import_hook not in sys.meta_path:
                sys.meta_path.insert(0, _import_hook)
        self.rescan()

    def stop(self) -> None:
        with _lock:
            self.active = False
            _watches.discard(self)
            remove_class_callback(self)
            if not _watches and _import_hook in sys.meta_path:
                sys.meta_path.remove(_import_hook)

    # -- which modules
    def accepts(self, modname: Any) -> bool:
        if not isinstance(modname, str):
            return False
        ok = self._accepts.get(modname)
        if ok is None:
            ok = bool(self.predicate(modname))
            if modname in sys.modules:      # decided for good once it exists
                self._accepts[modname] = ok
        return ok

    # -- classes
    def __call__(self, cls: type) -> None:
        if self.active and self.accepts(getattr(cls, "__module__", None)):
            self.offer([cls])

    def offer(self, classes: List[type]) -> None:
        tracker = self.tracker()
        if tracker is None:
            return
        fresh = [c for c in classes if c not in self._decided]
        if not fresh:
            return
        level, keep, trace, retained = self.settings
        for cls, why in tracker._track_classes(fresh, level, keep, trace, retained):
            self._decided[cls] = why is None
            if why is None:
                self.tracked.add(cls)
            else:
                self.untrackable.append((_qualified(cls), why))

    def rescan(self) -> None:
        """Offer the classes found in accepted modules that are new or changed."""
        _rescan([self])


def _rescan(watches: List[ModuleWatch], shared: bool = False) -> None:
    """Offer each watch the classes found in the modules it accepts that
    are new or changed: one pass over sys.modules for all of them (it runs
    at every import, and a program has thousands of modules).  `shared`:
    `watches` are all the active ones, so the modules none of them accepts
    can be remembered in _irrelevant and skipped from then on."""
    watches = [w for w in watches if w.active and not w._scanning]
    if not watches:
        return
    for w in watches:
        w._scanning = True
    try:
        found: List[List[type]] = [[] for _ in watches]
        starts = _starts
        modules = sys.modules
        names = modules.keys() - _irrelevant if shared else list(modules)
        for modname in names:
            module = modules.get(modname)
            namespace: Any = None
            stamp = None
            wanted = False
            for k, w in enumerate(watches):
                ok = w._accepts.get(modname)
                if ok is None:
                    ok = w.accepts(modname)
                if not ok:
                    continue
                wanted = True
                if stamp is None:
                    namespace = getattr(module, "__dict__", None)
                    if not isinstance(namespace, dict):
                        break
                    stamp = (id(module), len(namespace))
                if w._scanned.get(modname) == stamp:
                    continue
                w._scanned[modname] = stamp
                for value in list(namespace.values()):
                    if isinstance(value, type) and w.accepts(getattr(value, "__module__", None)):
                        found[k].append(value)
            if shared and not wanted and starts == _starts and isinstance(modname, str) \
                    and all(modname in w._accepts for w in watches):
                _irrelevant.add(modname)
        for w, classes in zip(watches, found):
            if classes:
                w.offer(list(dict.fromkeys(classes)))
    finally:
        for w in watches:
            w._scanning = False


def _qualified(cls: type) -> str:
    return "%s.%s" % (getattr(cls, "__module__", "?"), getattr(cls, "__qualname__", "?"))


def package_predicate(name: str) -> Callable[[str], bool]:
    prefix = name + "."
    return lambda mod: mod == name or mod.startswith(prefix)


def _excluded_dirs() -> List[str]:
    dirs = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            dirs.add(paths[key])
    for getter in ("getsitepackages", "getusersitepackages"):
        try:
            got = getattr(site, getter)()
        except Exception:   # noqa: BLE001 - some environments lack these
            continue
        dirs.update([got] if isinstance(got, str) else got)
    for p in sys.path:
        if os.path.basename(p) in ("site-packages", "dist-packages"):
            dirs.add(p)
    return sorted({os.path.realpath(d) for d in dirs if d})


def mine_predicate(extra_excluded: Optional[List[str]] = None) -> Callable[[str], bool]:
    """Modules of the program itself: ``__main__`` (also as ``__mp_main__``
    in spawned workers), and modules whose file lies outside the stdlib and
    outside every site-packages directory; never classtrack's own."""
    excluded = _excluded_dirs() + [os.path.realpath(d) for d in (extra_excluded or [])]
    own = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))

    def is_mine(mod: str) -> bool:
        if mod in ("__main__", "__mp_main__"):
            return True
        if mod == "classtrack" or mod.startswith("classtrack."):
            return False
        module = sys.modules.get(mod)
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            return False
        path = os.path.realpath(path)
        if path.startswith(own + os.sep):
            return False
        return not any(path.startswith(d + os.sep) for d in excluded)

    return is_mine
