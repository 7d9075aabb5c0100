"""Exact sizes of Python object graphs -- a drop-in for ``pympler.asizeof``.

``asizeof(*objs)`` returns the bytes the objects occupy together with
everything they own, each object counted once.  The numbers are the
allocations CPython really made in this interpreter version (what
``tracemalloc`` sees): object bodies, GC headers, pre-header words, instance
attribute storage (including 3.11+'s values arrays and 3.13's inline
values) and separately allocated buffers (list item arrays by capacity, dict
and set tables, str and bytes bodies, bytearray/array/deque buffers...).

What is *not* followed by default, and the option that turns it on:

=====================================================  ==================
classes and other type objects                         ``types=True``
module objects                                         ``modules=True``
functions, methods, classmethod/staticmethod,          ``functions=True``
builtin functions and method/member descriptors
code objects                                           ``code=True`` [#]_
frame objects                                          ``frames=True``
objects shared interpreter-wide: None, True, False,    ``shared=True``
Ellipsis, NotImplemented, small ints, interned
strings, cached empty/one-character str and bytes,
the empty tuple, every immortal object (3.12+)
the class's shared attribute-key table                 never (the class
                                                       owns it)
objects reached only through weak references          never
=====================================================  ==================

.. [#] As in Pympler, ``code=True`` also turns on ``types`` and ``functions``.

Objects passed in directly are always sized, also when shared (``asizeof(1)``
is the size of the int 1); classes, modules, functions, code and frames
passed in directly still need their option, as in Pympler.

How a size is found, and the fallback for hostile objects: built-in types are
measured from their fields or through their C ``__sizeof__`` (no Python code
runs); a ``__sizeof__`` written in Python is called and trusted only if it
returns an int at least as large as the object's layout size
(``tp_basicsize`` + items + pre-header) and below 2**48; if it raises an
``Exception`` or returns anything else, the layout size is used.  Attributes
are never read with ``getattr``: ``__getattr__``, ``__getattribute__``,
``__class__`` properties and proxies are not consulted, and no ``__dict__``
is ever materialised.  Traversal is iterative: any depth works.

Where a size cannot be known from the object, the bound (see
``docs/sizes.md``, checked by the allocator oracle in ``tests/oracle``):
an int made by arithmetic may hold digits its value no longer needs (an
under-count of whole 4-byte digits: at most one after ``+`` or ``*``, after
``-`` of near-equal numbers up to the larger operand's digits minus the
result's); a one-digit int on 3.11+ may be 4 bytes smaller than counted;
a 3.11/3.12 instance's values array may hold up to 7 slots more (56 bytes)
than counted, for a class's first instances; on 3.13 one instance per
class may have 8 or 16 bytes more inline-values room.  On a CPython newer
than the layouts classtrack knows (``classtrack._core.layout_info()``),
sizes are estimates: each object's own ``__sizeof__`` plus its pre-header,
with one ``RuntimeWarning``.

``asizeof(all=True)`` sizes everything ``gc.get_objects()`` holds, shared
objects such as interned strings included (``shared=True`` is implied).

Differences from Pympler, all deliberate: true bytes instead of
``sys.getsizeof`` rounded to 8; no default depth limit (Pympler stops at
100 and silently drops deeper data; ``limit=N`` still works); weakly
referenced objects are not counted; ``align``, ``cutoff``, ``derive``,
``frames`` statistics, ``ignored``, ``infer``, ``stats`` and ``stream`` are
accepted for compatibility and have no effect.
"""

from __future__ import annotations

import gc
import sys
import types
from typing import Any, Iterable, Optional, Tuple

from classtrack import _core

__all__ = [
    "Asized",
    "Asizer",
    "asized",
    "asizeof",
    "asizesof",
    "basicsize",
    "flatsize",
]

_FLAG_OPTIONS = {
    "types": _core.FOLLOW_TYPES,
    "modules": _core.FOLLOW_MODULES,
    "functions": _core.FOLLOW_FUNCTIONS,
    "frames": _core.FOLLOW_FRAMES,
    "shared": _core.FOLLOW_SHARED,
}
_CODE_FLAGS = _core.FOLLOW_CODE | _core.FOLLOW_TYPES | _core.FOLLOW_FUNCTIONS

# Pympler options accepted for compatibility that change nothing here.
_IGNORED_OPTIONS = frozenset(
    ["align", "cutoff", "derive", "ignored", "infer", "stats", "stream", "above"]
)


class Asized:
    """The size of one object and, to the requested detail, of its referents.

    ``size`` is the total in bytes, ``flat`` the object's own allocations,
    ``refs`` a tuple of :class:`Asized` for the referents sized one by one,
    ``name`` how the object was reached (``'[V] key: value'``, ``'[0]'``...).
    """

    __slots__ = ("size", "flat", "refs", "name", "retained")

    def __init__(self, size: int, flat: int, refs: Iterable["Asized"] = (),
                 name: Optional[str] = None) -> None:
        self.size = size
        self.flat = flat
        self.refs = tuple(refs)
        self.name = name
        # a tracker's snapshot entry taken with retained sizes: the bytes
        # freed if the object became unreachable (else None)
        self.retained: Optional[int] = None

    def __str__(self) -> str:
        return "size %r, flat %r, refs[%d], name %r" % (
            self.size, self.flat, len(self.refs), self.name)

    def __repr__(self) -> str:
        return "Asized(size=%r, flat=%r, refs=<%d>, name=%r)" % (
            self.size, self.flat, len(self.refs), self.name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Asized):
            return NotImplemented
        return (self.size, self.flat, self.name, self.refs) == (
            other.size, other.flat, other.name, other.refs)

    __hash__ = None  # type: ignore[assignment]

    def format(self, format: str = "%(name)s size=%(size)d flat=%(flat)d",
               depth: int = -1, order_by: str = "size", indent: str = "") -> str:
        """This node and its referents as indented lines (as Pympler)."""
        lines = [indent + format % {"name": self.name, "size": self.size,
                                    "flat": self.flat}]
        if depth != 0:
            refs = self.refs
            if order_by in ("size", "flat"):
                refs = sorted(refs, key=lambda r: getattr(r, order_by), reverse=True)
            elif order_by == "name":
                refs = sorted(refs, key=lambda r: str(r.name))
            for ref in refs:
                lines.append(ref.format(format, depth - 1, order_by, indent + "    "))
        return "\n".join(lines)

    def get(self, name: str, dflt: Any = None) -> Any:
        """The referent named ``name``, or ``dflt``."""
        for ref in self.refs:
            if ref.name == name:
                return ref
        return dflt

    @classmethod
    def _from_tuple(cls, node: tuple) -> "Asized":
        name, size, flat, refs = node
        return cls(size, flat, [cls._from_tuple(r) for r in refs], name)


def _typename(obj: object) -> str:
    return type(obj).__name__


class Asizer:
    """A sizer with state: objects sized once count 0 in later calls.

    That is how data shared between several objects is counted once, and
    what the ClassTracker relies on for its snapshots.
    """

    def __init__(self, **opts: Any) -> None:
        self._sizer = _core.Sizer()
        self._detail = 0
        self._excluded_refs = 0
        self.set(**opts)

    # -- options -----------------------------------------------------------

    def set(self, align: Any = None, code: Optional[bool] = None,
            detail: Optional[int] = None, limit: Any = ...,
            stats: Any = None, clip: Optional[int] = None, **opts: Any) -> None:
        """Change options; those not given keep their value."""
        flags = self._sizer.flags
        if code is not None:
            flags = flags | _CODE_FLAGS if code else flags & ~_core.FOLLOW_CODE
        for key, value in opts.items():
            if key in _FLAG_OPTIONS:
                bit = _FLAG_OPTIONS[key]
                flags = flags | bit if value else flags & ~bit
            elif key not in _IGNORED_OPTIONS and key != "all":
                raise TypeError("unknown asizeof option %r" % (key,))
        kwargs = {"flags": flags}
        if limit is not ...:
            if limit is None:
                kwargs["limit"] = -1
            elif isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ValueError("limit must be None or an int >= 0, not %r" % (limit,))
            else:
                kwargs["limit"] = limit
        if clip is not None:
            if isinstance(clip, bool) or not isinstance(clip, int):
                raise TypeError("clip must be an int, not %r" % (clip,))
            kwargs["clip"] = clip
        if detail is not None:
            self._detail = check_level(detail)
        self._sizer.configure(**kwargs)

    # -- sizing ------------------------------------------------------------

    def asizeof(self, *objs: Any, **opts: Any) -> int:
        """Total bytes of ``objs`` not sized before by this Asizer."""
        if opts:
            self.set(**opts)
        return self._sizer.size(*objs)

    def asizesof(self, *objs: Any, **opts: Any) -> Tuple[int, ...]:
        """Bytes of each object, in order; later ones share with earlier."""
        if opts:
            self.set(**opts)
        return self._sizer.sizes(*objs)

    def asized(self, *objs: Any, **opts: Any) -> Any:
        """An :class:`Asized` per object (a tuple for several)."""
        if opts:
            self.set(**opts)
        out = tuple(
            Asized._from_tuple(self._sizer.tree(o, self._detail, _name_of(o)))
            for o in objs)
        return out[0] if len(out) == 1 else out

    def exclude_refs(self, *objs: Any) -> None:
        """Do not follow these objects when reached as referents (they are
        still sized when passed in directly)."""
        self._sizer.exclude_refs(*objs)

    def exclude_objs(self, *objs: Any) -> None:
        """Never size these objects."""
        self._sizer.exclude_objs(*objs)

    def reset(self, **opts: Any) -> None:
        """Forget everything sized so far; options may change too."""
        self._sizer.reset()
        if opts:
            self.set(**opts)

    @property
    def total(self) -> int:
        """Bytes counted by this Asizer since it was created or reset."""
        return self._sizer.total

    @property
    def sized(self) -> int:
        """How many objects this Asizer has sized."""
        return self._sizer.seen


def check_level(value: Any, what: str = "detail") -> int:
    """A depth (detail, resolution level): an int >= 0, else TypeError or
    ValueError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %r" % (what, value))
    if value < 0:
        raise ValueError("%s must be >= 0, not %d" % (what, value))
    return value


def _name_of(obj: object) -> str:
    # Only the real type is used (never obj.__class__, which isinstance
    # would consult), so no user code runs for the top-level name.
    if issubclass(type(obj), type):
        return type.__repr__(obj)  # type: ignore[arg-type]
    return "<%s object>" % _typename(obj)


def _objects(objs: tuple, opts: dict) -> tuple:
    if opts.pop("all", False):
        if objs:
            raise TypeError("asizeof(all=True) takes no objects")
        # the whole heap includes the interned strings and other objects
        # shared interpreter-wide (Pympler counts them too)
        opts.setdefault("shared", True)
        return tuple(gc.get_objects())
    return objs


def asizeof(*objs: Any, **opts: Any) -> int:
    """Total bytes of the objects and everything they own, each counted once."""
    objs = _objects(objs, opts)
    return Asizer(**opts).asizeof(*objs) if objs else 0


def asizesof(*objs: Any, **opts: Any) -> Tuple[int, ...]:
    """Bytes of each object; data shared with an earlier one counts there."""
    objs = _objects(objs, opts)
    return Asizer(**opts).asizesof(*objs)


def asized(*objs: Any, **opts: Any) -> Any:
    """:class:`Asized` of one object, or a tuple of them for several.

    ``detail=N`` sizes referents one by one N levels deep."""
    objs = _objects(objs, opts)
    return Asizer(**opts).asized(*objs)


def basicsize(obj: Any, **opts: Any) -> int:
    """Bytes of the object's fixed part: pre-header plus the type's basic size."""
    return _core.basicsize(obj)


def flatsize(obj: Any, **opts: Any) -> int:
    """Bytes of the object's own allocations, without its referents."""
    return Asizer(**opts)._sizer.flatsize(obj)


class _CallableModule(types.ModuleType):
    """``classtrack.asizeof`` is this module (so ``from classtrack import
    asizeof; asizeof.asizeof(x)`` works as with Pympler) and can also be
    called directly (``classtrack.asizeof(x)``)."""

    def __call__(self, *objs: Any, **opts: Any) -> int:
        return asizeof(*objs, **opts)


sys.modules[__name__].__class__ = _CallableModule
