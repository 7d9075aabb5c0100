"""Which classes ``classtrack run`` tracks: the names the user gave, the
classes they matched, and what to say about those that matched nothing.

Classes reach the watcher two ways:

* every ``class`` statement (the engine's ``watch_classes`` callback), which
  is how classes written in Python appear, also in modules imported later;
* a look through the named modules' globals before the program starts, at
  each new import while it runs (a ``sys.meta_path`` entry that finds
  nothing) and at exit.  That is how classes made without a ``class``
  statement appear: those of C extensions and mypyc-compiled modules, and
  those made by calling ``type()`` (``namedtuple``...).

The program runs as ``__main__``, but its user knows it by its file name
(``prog.py`` defines ``prog:Widget``) or by the module given to ``-m``:
those names stand for ``__main__`` too.
"""
import difflib
import os
import sys
import threading
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from classtrack import _untrackable

_HEAPTYPE = 1 << 9      # Py_TPFLAGS_HEAPTYPE: the class was created at run time


class Name:
    """One ``--track-class MODULE:CLASS`` or ``--track-module MODULE``."""

    def __init__(self, text: str, modules: Iterable[str], qualname: Optional[str]) -> None:
        self.text = text                    # as the user wrote it
        self.module = text.partition(":")[0]
        self.modules = frozenset(modules)   # the module names it stands for
        self.qualname = qualname            # None for a module
        self.matched: Set[type] = set()     # classes it named
        self.tracked: Set[type] = set()     # ... that are tracked

    @property
    def kind(self) -> str:
        return "module" if self.qualname is None else "class"


def main_aliases(module: Optional[str], script: Optional[str], is_package: bool) -> Set[str]:
    """The names the user may give the program's own module (``__main__``)."""
    if module is not None:
        names = {module}
        if is_package:          # -m pkg runs pkg.__main__
            names.add(module + ".__main__")
        return names
    stem = os.path.splitext(os.path.basename(os.path.normpath(script or "")))[0]
    return {stem} if stem.isidentifier() else set()


def parse_names(track_class: List[str], track_module: List[str],
                aliases: Set[str]) -> List[Name]:
    def modules(name: str) -> Set[str]:
        return {name, "__main__"} if name in aliases else {name}

    names = [Name(m, modules(m), None) for m in dict.fromkeys(track_module)]
    for spec in dict.fromkeys(track_class):
        mod, _, qualname = spec.partition(":")
        names.append(Name(spec, modules(mod), qualname))
    return names


# -- the watcher -----------------------------------------------------------------------

class Watcher:
    """Offers the classes the names match to the tracker, once each."""

    def __init__(self, tracker: Any, names: List[Name], resolution: int, trace: bool,
                 say: Any) -> None:
        self.tracker = tracker
        self.names = names
        self.resolution = resolution
        self.trace = trace
        self.say = say                      # one line on stderr
        self.by_module: Dict[str, List[Name]] = {}
        self.by_class: Dict[Tuple[str, str], List[Name]] = {}
        for n in names:
            for m in n.modules:
                if n.qualname is None:
                    self.by_module.setdefault(m, []).append(n)
                else:
                    self.by_class.setdefault((m, n.qualname), []).append(n)
        self.spec_modules = sorted({m for n in names for m in n.modules})
        self.decided: Dict[type, bool] = {}
        self.defined: Dict[str, Set[str]] = {m: set() for m in self.spec_modules}
        self.imported: Set[str] = set()     # of spec_modules, seen in sys.modules
        self.foreign: Dict[str, Set[str]] = {}  # module -> modules of classes it holds
        self._scanned: Dict[str, Tuple[int, int]] = {}
        self._lock = threading.RLock()
        self._scanning = False
        self.own_main = sys.modules.get("__main__")   # classtrack's, not the program's

    # a class statement
    def __call__(self, cls: type) -> None:
        mod = getattr(cls, "__module__", None)
        if mod in self.defined:
            with self._lock:
                self._defined_in(cls, mod)

    def _defined_in(self, cls: type, mod: str) -> None:
        qualname = getattr(cls, "__qualname__", None)
        if not isinstance(qualname, str):
            return
        self.defined[mod].add(qualname)
        self.imported.add(mod)
        names = self.by_module.get(mod, []) + self.by_class.get((mod, qualname), [])
        if names:
            self._offer(cls, names)

    def _offer(self, cls: type, names: List[Name]) -> None:
        ok = self.decided.get(cls)
        if ok is None:
            try:
                self.tracker.track_class(cls, resolution_level=self.resolution,
                                         trace=self.trace)
                ok = True
            except TypeError as exc:
                # counted at snapshots instead (count-only): not followed one by one
                why = _untrackable.reason(cls, self.tracker._engine.follows)
                self.tracker._count_instead(cls, why)
                ok = True
                # the advice to track the classes that hold them is moot here
                text = (why.text if why is not None else str(exc)).replace(
                    "; " + _untrackable.INSTEAD, "")
                self.say("counting %s at snapshots, not one by one: %s"
                         % (_untrackable._qualified(cls), text))
            self.decided[cls] = ok
        for n in names:
            n.matched.add(cls)
            if ok:
                n.tracked.add(cls)

    # the named modules' globals
    def rescan(self) -> None:
        """Look through each named module that is new or changed since the last look."""
        if self._scanning:
            return
        with self._lock:
            if self._scanning:
                return
            self._scanning = True
            try:
                for modname in self.spec_modules:
                    module = sys.modules.get(modname)
                    if module is None or module is self.own_main:
                        continue
                    namespace = getattr(module, "__dict__", None)
                    if not isinstance(namespace, dict):
                        continue
                    self.imported.add(modname)
                    stamp = (id(module), len(namespace))
                    if self._scanned.get(modname) == stamp:
                        continue
                    self._scanned[modname] = stamp
                    self._scan(modname, namespace)
            finally:
                self._scanning = False

    def _scan(self, modname: str, namespace: Dict[str, Any]) -> None:
        for value in list(namespace.values()):
            if not isinstance(value, type):
                continue
            owner = getattr(value, "__module__", None)
            if owner == modname:
                self._defined_in(value, modname)
            elif isinstance(owner, str):
                self.foreign.setdefault(modname, set()).add(owner)
        # MODULE:CLASS may name a class the module imported from elsewhere
        for (mod, qualname), names in self.by_class.items():
            if mod != modname:
                continue
            value: Any = namespace.get(qualname.partition(".")[0])
            for part in qualname.split(".")[1:]:
                value = getattr(value, part, None) if isinstance(value, type) else None
            if isinstance(value, type):
                self._offer(value, names)

    # at exit
    def unmatched(self) -> List[str]:
        """Warnings for the names that never matched a class."""
        out = []
        for n in self.names:
            if n.matched:
                continue
            seen = sorted(n.modules & self.imported)
            if n.kind == "class":
                msg = "%s: no such class was ever defined" % n.text
                if not seen:
                    msg += " (module %s was never imported)" % n.module
                else:
                    defined = set().union(*(self.defined.get(m, set()) for m in seen))
                    close = difflib.get_close_matches(n.qualname, sorted(defined), n=3)
                    if close:
                        msg += " (did you mean %s?)" % " or ".join(
                            "%s:%s" % (n.module, c) for c in close)
            elif not seen:
                msg = "%s: no such module was ever imported" % n.text
                close = difflib.get_close_matches(n.text, sorted(sys.modules), n=3)
                if close:
                    msg += " (did you mean %s?)" % " or ".join(close)
            else:
                msg = "%s: the module defines no classes" % n.text
                owners = sorted(set().union(*(self.foreign.get(m, set()) for m in seen))
                                - {"builtins", "typing", "abc"})
                if owners:
                    msg += " (the classes it holds come from %s%s)" % (
                        ", ".join(owners[:3]), ", ..." if len(owners) > 3 else "")
            out.append(msg)
        return out

    def untracked(self) -> List[Name]:
        """Names that led to no tracked class (never matched, or matched only
        classes that cannot be tracked)."""
        return [n for n in self.names if not n.tracked]


class ImportWatch:
    """A ``sys.meta_path`` entry that finds nothing: each new import is the
    moment to look at the modules imported so far."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        self.watcher.rescan()
        return None

    def invalidate_caches(self) -> None:
        pass
