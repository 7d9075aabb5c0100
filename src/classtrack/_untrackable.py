"""Why a class cannot be tracked, in one place: the kind of reason (for a
one-line count per kind) and the sentence (for the list), with what the
user can do instead.

A class can be tracked when classtrack can learn of each instance's death:
from the allocator (the death watch, for instances of classes defined in
Python whose C base is known to free them plainly: object, the built-in
containers, str, tuple, int, exceptions, deque, ElementTree's Element) or
from a weak reference.  The kinds that fail:

``c``         a static type (implemented in C): its instances are made in
              too many ways to hook;
``compiled``  defined by compiled code (mypyc, Cython, C extension types):
              a pure-Python build of its package can be tracked;
``varsize``   variable-sized (a subclass of bytes, whose blocks may be
              reallocated; of tuple or int -- NamedTuple, IntEnum -- while
              tracemalloc keeps the death watch out): Python forbids a
              ``__weakref__`` slot there, so nothing can be done to the
              class itself;
``cweakref``  a C base class keeps the weak references of its instances
              itself and may reset them (types.ModuleType, whose instances
              are also made without tp_alloc; collections.deque while
              tracemalloc keeps the death watch out);
``noweakref`` ``__slots__`` without ``'__weakref__'``: add it, or track
              with ``keep=True`` (which holds the instances alive).
"""
import importlib.machinery
import sys
import types
from typing import Callable, Dict, List, NamedTuple, Optional

_HEAPTYPE = 1 << 9

KINDS = {
    "c": "implemented in C",
    "compiled": "compiled (mypyc, Cython or an extension)",
    "varsize": "variable-sized (bytes subclasses; NamedTuple and IntEnum while tracemalloc "
               "traces; Python allows them no __weakref__ slot)",
    "cweakref": "weak references kept by a C base class (module; deque while tracemalloc traces)",
    "noweakref": "__slots__ without '__weakref__'",
}

INSTEAD = "track the Python classes that hold them instead (their sizes include what they hold)"


class Reason(NamedTuple):
    kind: str           # a key of KINDS
    text: str           # the sentence, without the class's name


def reason(cls: type, follows: Callable[[type], bool]) -> Optional[Reason]:
    """Why instances of cls (or of one of its subclasses) cannot be
    tracked without keep=True, or None when they can.  `follows(sub)`:
    the engine can learn of the deaths of sub's instances."""
    if not cls.__flags__ & _HEAPTYPE:
        return Reason("c", "it is implemented in C (a static type: its instances are made "
                           "in too many ways to hook); " + INSTEAD)
    for sub in with_subclasses(cls):
        if follows(sub):
            continue
        who = "" if sub is cls else " (its subclass %s)" % _qualified(sub)
        if _compiled(sub):
            dist = _distribution(sub)
            pure = ("; a pure-Python build can be tracked: pip install --no-binary %s %s"
                    % (dist, dist)) if dist else ""
            return Reason("compiled", "it%s is compiled (mypyc, Cython or an extension) and "
                                      "its instances can neither be weakly referenced nor be "
                                      "seen freed; %s%s" % (who, INSTEAD, pure))
        if sub.__itemsize__:
            if sys.version_info >= (3, 15):     # 3.15 gives them managed weak references
                return Reason("varsize", "its instances%s are variable-sized (it derives from "
                                         "%s) and have no __weakref__ slot, so their deaths "
                                         "cannot be seen; add '__weakref__' to its __slots__ "
                                         "(Python 3.15 allows it there), or %s"
                                         % (who, _layout_base(sub, "__itemsize__"), INSTEAD))
            return Reason("varsize", "its instances%s are variable-sized (it derives from %s), "
                                     "and Python allows such classes no __weakref__ slot, so "
                                     "their deaths cannot be seen; %s"
                                     % (who, _layout_base(sub, "__itemsize__"), INSTEAD))
        if sub.__weakrefoffset__:
            return Reason("cweakref", "its instances%s are weakly referenced through their C "
                                      "base %s, which keeps (and may reset) those references "
                                      "itself; %s"
                          % (who, _layout_base(sub, "__weakrefoffset__"), INSTEAD))
        return Reason("noweakref", "its instances%s have no __weakref__ slot (its __slots__ "
                                   "leave it out): add '__weakref__' to __slots__, or track "
                                   "with keep=True to hold them alive" % who)
    return None


def summary(kinds: List[str]) -> str:
    """'3 classes counted at snapshots (cannot be followed one by one:
    2 compiled (...), 1 implemented in C)'."""
    counts: Dict[str, int] = {}
    for k in kinds:
        counts[k] = counts.get(k, 0) + 1
    parts = ["%d %s" % (n, KINDS.get(k, k))
             for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    total = len(kinds)
    return "%d class%s counted at snapshots (cannot be followed one by one: %s)" % (
        total, "" if total == 1 else "es", ", ".join(parts))


def with_subclasses(cls: type) -> List[type]:
    """cls and every class deriving from it, breadth first."""
    out, seen, i = [cls], {cls}, 0
    while i < len(out):
        try:
            subs = type.__subclasses__(out[i])
        except TypeError:
            subs = []
        for sub in subs:
            if sub not in seen:
                seen.add(sub)
                out.append(sub)
        i += 1
    return out


def _qualified(cls: type) -> str:
    return "%s.%s" % (getattr(cls, "__module__", "?"),
                      getattr(cls, "__qualname__", cls.__name__))


def _layout_base(cls: type, slot: str) -> str:
    """The base class that gave the instances their `slot` (``__itemsize__``
    or ``__weakrefoffset__``): the first one from ``object`` up that has it
    (tuple, int, module, collections.deque), whether it is a static type or
    a heap type made in C (3.14's deque)."""
    for base in reversed(cls.__mro__[1:]):
        if getattr(base, slot, 0):
            return base.__name__ if base.__module__ == "builtins" else _qualified(base)
    return "object"


def _compiled(cls: type) -> bool:
    """Defined by compiled code (a C extension, mypyc, Cython)?"""
    mod = sys.modules.get(getattr(cls, "__module__", None) or "")
    origin = getattr(mod, "__file__", None) or ""
    if origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return True
    return any(isinstance(v, (types.MethodDescriptorType, types.WrapperDescriptorType))
               and getattr(v, "__objclass__", None) is cls for v in vars(cls).values())


_dists_cache: Optional[Dict[str, List[str]]] = None


def _distribution(cls: type) -> Optional[str]:
    """The installed distribution that provides the class's package, if known."""
    global _dists_cache
    try:
        if _dists_cache is None:
            # lazy: importlib.metadata costs start-up, and only a report of
            # compiled classes needs it
            import importlib.metadata as md
            _dists_cache = dict(md.packages_distributions())
    except Exception:       # 3.9 has no packages_distributions; broken metadata
        _dists_cache = {}
    top = (getattr(cls, "__module__", None) or "").partition(".")[0]
    dists = _dists_cache.get(top) or []
    return dists[0] if dists else None
