"""Leak hunting: what an object keeps alive, and what keeps it alive.

``retained_size(*objs)``
    The bytes that would be freed if these objects became unreachable: the
    objects and everything only they lead to, over the real object graph of
    the whole heap (data shared with anything else is not counted).  Pympler
    gives shared data to whichever tracked object reaches it first; a
    retained size does not depend on order.
``retained_sizes(objs)``
    The retained size of each object alone, from one dominator tree (the
    cheap way to ask for many).
``why_alive(obj, limit=3)``
    Up to ``limit`` shortest reference paths from a root to ``obj``.  Roots
    are found the way CPython's collector finds them: an object whose
    refcount exceeds the references other objects hold is held from outside
    (a stack, a C global, a non-GC container); modules are roots too, so
    that paths read ``module app.cache -> dict['sessions'] -> list[17] ->
    Session``.  Paths hold descriptions, never the objects, so asking keeps
    nothing alive.

The graph is built in C (``classtrack._core``) from ``gc.get_objects()`` and
every referent (the same referents the sizer follows); the caller's own
references to the objects asked about are not roots.  On 3.11+ the local
variables of running functions live outside the graph (CPython keeps them on
the thread's stack), and the calling thread's frames are left out of it on
every version; a path starting at a running function's local names it
(``thread MainThread frame handle() local 'req' -> dict['session'] ->
Session``), read in place.  3.11 has no way to read it without materialising
the frame's locals, so there it shows as ``held from C``.
"""
from __future__ import annotations

import gc
import sys
import types
from typing import Any, Dict, Iterable, List, Optional, Tuple

from classtrack import _core

__all__ = ["Path", "retained_size", "retained_sizes", "why_alive"]


def _heap(exclude: Iterable[Any]) -> Tuple[list, tuple]:
    """gc.get_objects(), and what the graph leaves out of it: our own
    containers and the frames of the calling thread's stack (the caller
    holding what it asks about is not a reason for it to be alive; 3.11+
    keeps those locals out of reach anyway).  The C core skips them.

    The tuple holds the caller's frame while the caller holds the tuple: a
    cycle, which the caller breaks with ``del`` once the core has run."""
    left_out: List[Any] = list(exclude)
    f: Optional[types.FrameType] = sys._getframe(1)
    while f is not None:
        left_out.append(f)
        f = f.f_back
    left_out.append(exclude)    # the caller's list of them holds them too
    left_out.append(left_out)
    out = tuple(left_out)
    left_out.clear()
    return gc.get_objects(), out


def retained_size(*objs: Any) -> int:
    """Bytes freed if all of objs became unreachable together."""
    targets = list(objs)
    heap, left_out = _heap([targets, objs])
    size, missing = _core.retained(heap, left_out, targets, True)
    del heap, left_out
    # objects nothing else refers to (a str only a local names) are not in
    # the graph: they free their own bytes and what only they hold
    from classtrack.asizeof import flatsize
    return size + sum(flatsize(o) for o in missing if not gc.is_tracked(o))


def retained_sizes(objs: Iterable[Any]) -> List[int]:
    """Retained size of each object on its own (one dominator tree)."""
    targets = list(objs)
    heap, left_out = _heap([targets])
    sizes = _core.retained(heap, left_out, targets, False)
    del heap, left_out
    from classtrack.asizeof import flatsize
    return [s if s >= 0 else flatsize(o) for s, o in zip(sizes, targets)]


class Path:
    """One reference path from a root to an object, as text.

    ``root`` describes the root (``module NAME``, ``thread NAME frame f()``
    or ``held from C (refcount N, M from the graph)``); ``steps`` the
    objects after it, each with the key, index or attribute leading on."""

    __slots__ = ("root", "steps", "length")

    def __init__(self, root: str, steps: List[str]) -> None:
        self.root = root
        self.steps = steps
        self.length = len(steps)

    def __str__(self) -> str:
        return " -> ".join([self.root] + self.steps)

    def __repr__(self) -> str:
        return "<Path %s>" % self

    def __len__(self) -> int:
        return self.length


def _qualname(tp: type) -> str:
    mod = getattr(tp, "__module__", None)
    q = getattr(tp, "__qualname__", tp.__name__)
    return q if mod in (None, "builtins") else "%s.%s" % (mod, q)


def _short(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, (int, float, bool, type(None))):
        return repr(value)
    return "<%s>" % _qualname(type(value))


def _edge(parent: Any, child: Any) -> str:
    """How parent leads to child: [key], [index], .attr, or ''."""
    if isinstance(parent, dict):
        for k, v in list(parent.items()):
            if v is child:
                return "[%s]" % _short(k)
            if k is child:
                return "[key %s]" % _short(k)
        return ""
    if isinstance(parent, (list, tuple)):
        for i, v in enumerate(parent):
            if v is child:
                return "[%d]" % i
        return ""
    if isinstance(parent, (set, frozenset)):
        return "{...}"
    if isinstance(parent, types.FrameType):
        return ""
    for name, value in _core.attr_items(parent):
        if value is child:
            return ".%s" % name
    for klass in type(parent).__mro__:
        for name, desc in vars(klass).items():
            if isinstance(desc, types.MemberDescriptorType):
                try:
                    if desc.__get__(parent) is child:
                        return ".%s" % name
                except AttributeError:
                    continue
    try:
        if parent.__dict__ is child:     # only reached when the dict exists
            return ".__dict__"
    except Exception:   # noqa: BLE001 - any object may refuse
        pass
    return ""


def _attr_name(d: dict, child: Any) -> Optional[str]:
    """The str key under which dict d holds child, or None."""
    for k, v in list(d.items()):
        if v is child and isinstance(k, str):
            return k
    return None


def _node(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return "module %s" % getattr(obj, "__name__", "?")
    if isinstance(obj, types.FrameType):
        return "frame %s()" % obj.f_code.co_name
    return type(obj).__name__ if type(obj).__module__ == "builtins" else _qualname(type(obj))


def _thread_frames(want_locals: bool
                   ) -> Tuple[Dict[int, str], Dict[int, str], Dict[int, str]]:
    """One walk over every thread's running frames: the thread name of each
    frame (by id), and with want_locals the label ``thread T frame f()
    local 'name'`` of each value a running function (not ours) holds in a
    local (by id, innermost frame first), and the same for the values of
    its cell and free variables (a path from such a local starts at the
    cell, which the frame holds).  The locals are read in place
    (frame.f_locals would materialise them before 3.13); 3.11 has no way
    to, so there the maps of locals are empty."""
    import threading
    names = {t.ident: t.name for t in threading.enumerate()}
    frames: Dict[int, str] = {}
    locals_: Dict[int, str] = {}
    cells: Dict[int, str] = {}
    want_locals = want_locals and sys.version_info[:2] != (3, 11)
    current = sys._current_frames()
    for ident, frame in current.items():
        thread = names.get(ident, str(ident))
        f: Optional[types.FrameType] = frame
        while f is not None:
            frames[id(f)] = thread
            if want_locals and f.f_globals is not globals():
                code = f.f_code
                celled = set(code.co_cellvars + code.co_freevars)
                for name in code.co_varnames + code.co_cellvars + code.co_freevars:
                    got = _core.frame_var(f, name)
                    if got is not None:
                        label = "thread %s frame %s() local %r" % (thread, code.co_name, name)
                        locals_.setdefault(id(got[0]), label)
                        if name in celled:
                            cells.setdefault(id(got[0]), label)
                    del got
            f = f.f_back
    # this frame is among them: holding it from a local is a cycle that
    # would keep the caller's frame (and its locals) alive until a collection
    del current, frame, f
    return frames, locals_, cells


def why_alive(obj: Any, limit: int = 3) -> List[Path]:
    """Up to ``limit`` shortest reference paths from a root to ``obj``
    (an empty list: nothing but the caller holds it, or it is garbage)."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError("limit must be a positive int, not %r" % (limit,))
    modules = [m for m in list(sys.modules.values()) if isinstance(m, types.ModuleType)]
    heap, left_out = _heap([modules])
    raw = _core.root_paths(heap, left_out, obj, limit, modules)
    del heap, left_out
    # ids stay valid: every root is alive in raw while the maps are used
    threads, local_of, cell_of = (_thread_frames(any(ext > 0 for ext, _, _ in raw))
                                  if raw else ({}, {}, {}))
    paths = []
    for ext, refcnt, chain in raw:
        root = chain[0]
        if isinstance(root, types.ModuleType):
            label = "module %s" % getattr(root, "__name__", "?")
        elif isinstance(root, types.FrameType) and id(root) in threads:
            label = "thread %s frame %s()" % (threads[id(root)], root.f_code.co_name)
        else:
            local = local_of.get(id(root)) if ext > 0 else None
            cell = None
            if ext > 0 and isinstance(root, types.CellType) and len(chain) > 1:
                # a running function's cell variable: its frame holds the cell
                cell = cell_of.get(id(chain[1]))
            if cell is not None:
                label = "%s (cell)" % cell
            elif local is not None:
                label = "%s -> %s" % (local, _node(root))
            else:
                label = "held from C (refcount %d, %d from the graph) %s" % (
                    refcnt, refcnt - ext, _node(root))
        if len(chain) > 1 and not isinstance(root, types.ModuleType):
            label += _edge(root, chain[1])      # a module leads to its dict
        steps = []
        k = 1
        while k < len(chain):
            step = _node(chain[k])
            if k + 1 < len(chain):
                edge = _edge(chain[k], chain[k + 1])
                if edge == ".__dict__" and k + 2 < len(chain):
                    # an instance dict (3.9/3.10, or materialized): read it
                    # as the attribute it holds, as on 3.11+
                    name = _attr_name(chain[k + 1], chain[k + 2])
                    if name is not None:
                        edge = "." + name
                        k += 1
                step += edge
            steps.append(step)
            k += 1
        paths.append(Path(label, steps))
        del chain
    del raw
    return paths


def tracked_retained(objs: List[Any]) -> Tuple[List[int], int]:
    """Retained sizes of tracked objects, exclusive of each other, and what
    they keep alive only jointly: a tracked object that another keeps alive
    reports its own bytes and the keeper does not count them again, so the
    sizes and ``shared`` add up to ``retained_size(*objs)``."""
    targets = list(objs)
    heap, left_out = _heap([targets, objs])
    sizes, together = _core.retained_exclusive(heap, left_out, targets)
    del heap, left_out
    from classtrack.asizeof import flatsize
    alone = 0
    out = []
    for s, o in zip(sizes, targets):
        if s < 0:       # not reached in the graph: its own bytes, freed alone
            s = flatsize(o)
            alone += s
        out.append(s)
    return out, max(0, together + alone - sum(out))
