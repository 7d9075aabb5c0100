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
    Up to ``limit`` reference paths to ``obj``, one per direct holder (the
    object, or running function's variable, that refers to ``obj``
    itself), each the shortest from a root to that holder; shortest first.
    Roots are found the way CPython's collector finds them: an object whose
    refcount exceeds the references other objects hold is held from outside
    (a stack, a C global, a non-GC container); modules, classes and the
    local variables of running functions are named roots, so that paths
    read ``module app.cache -> dict['sessions'] -> list[17] -> Session``.
    Paths hold descriptions, never the objects, so asking keeps nothing
    alive.

The graph is built in C (``classtrack._core``) from ``gc.get_objects()`` and
every referent (the same referents the sizer follows); the caller's own
references to the objects asked about are not roots.  On 3.11+ the local
variables of running functions live outside the graph (CPython keeps them on
the thread's stack), and the calling thread's frames are left out of it on
every version; a path starting at a running function's local names it
(``thread MainThread frame handle() local 'req' -> dict['session'] ->
Session``), read in place on every version (3.11 through a mirror of its
interpreter frame's layout).
"""
from __future__ import annotations

import functools
import gc
import sys
import threading
import types
from typing import Any, Dict, Iterable, List, Optional, Tuple

from classtrack import _core
from classtrack.asizeof import flatsize

__all__ = ["Path", "retained_size", "retained_sizes", "why_alive"]


def release(heap: list) -> None:
    """Empty a list of the whole heap (gc.get_objects()) without leaving
    a trace in the program's malloc: its array is shrunk before it is
    freed, so glibc's dynamic mmap threshold does not move (see
    ``release_list`` in ``_core/bindings/py_census.c``)."""
    _core.release_list(heap)


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
    release(heap)
    del heap, left_out
    # objects nothing else refers to (a str only a local names) are not in
    # the graph: they free their own bytes and what only they hold
    return size + sum(flatsize(o) for o in missing if not gc.is_tracked(o))


def retained_sizes(objs: Iterable[Any]) -> List[int]:
    """Retained size of each object on its own (one dominator tree)."""
    targets = list(objs)
    heap, left_out = _heap([targets])
    sizes = _core.retained(heap, left_out, targets, False)
    release(heap)
    del heap, left_out
    return [s if s >= 0 else flatsize(o) for s, o in zip(sizes, targets)]


class Path:
    """One reference path from a root to an object, as text.

    ``root`` describes the root (``module NAME``, ``class NAME``, ``thread
    NAME frame f() local 'x'``, ``thread NAME frame f()`` or ``held from C
    (refcount N, M from the graph) ...``); ``steps`` the objects after it,
    each with the key, index or attribute leading on.  ``len(path)`` counts
    the references from the root to the object, a C holder's one included."""

    __slots__ = ("root", "steps", "length")

    def __init__(self, root: str, steps: List[str], length: Optional[int] = None) -> None:
        self.root = root
        self.steps = steps
        self.length = len(steps) if length is None else length

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
    if isinstance(obj, type):
        return "class %s" % _qualname(obj)
    if isinstance(obj, types.FunctionType):
        return "function %s" % _qualname(obj)
    if type(obj) is _LRU_WRAPPER:
        # update_wrapper copied the function's names into its __dict__
        names = _core.attr_items(obj)
        d = {k: v for k, v in names if k in ("__module__", "__qualname__")}
        q, mod = d.get("__qualname__"), d.get("__module__")
        if isinstance(q, str):
            return "lru_cache %s" % (q if not isinstance(mod, str) else mod + "." + q)
    return type(obj).__name__ if type(obj).__module__ == "builtins" else _qualname(type(obj))


def _lru_wrapper_type() -> Optional[type]:
    return getattr(functools, "_lru_cache_wrapper", None)


_LRU_WRAPPER = _lru_wrapper_type()


def _own_frame(f: types.FrameType) -> bool:
    """A frame of classtrack itself (its holding an object is the asking)."""
    name = f.f_globals.get("__name__")
    return isinstance(name, str) and (name == "classtrack" or name.startswith("classtrack."))


def _thread_frames(asker: Optional[types.FrameType], target: Any
                   ) -> Tuple[Dict[int, str], List[Any], List[Tuple[str, bool, bool]]]:
    """One walk over every thread's running frames: the thread name of
    each frame (by id), and the values running functions (not
    classtrack's) hold in local, cell or free variables, innermost frame
    first, each with (its label ``thread T frame f() local 'name'`` --
    `` (cell)`` for a cell or free variable --, whether it is held in a
    cell, whether it is the asker's frame holding the target: the
    question, not an answer).  The locals are read in place
    (frame.f_locals would materialise them before 3.13).

    The list of values holds them: the caller passes it to the graph as
    left out, and the values become named roots."""
    names = {t.ident: t.name for t in threading.enumerate()}
    frames: Dict[int, str] = {}
    values: List[Any] = []
    about: List[Tuple[str, bool, bool]] = []
    current = sys._current_frames()
    for ident in sorted(current):
        thread = names.get(ident, str(ident))
        f: Optional[types.FrameType] = current[ident]
        while f is not None:
            frames[id(f)] = thread
            if not _own_frame(f):
                code = f.f_code
                celled = set(code.co_cellvars + code.co_freevars)
                seen = set()
                for name in code.co_varnames + code.co_cellvars + code.co_freevars:
                    if name in seen:
                        continue
                    seen.add(name)
                    got = _core.frame_var(f, name)
                    if got is not None:
                        values.append(got[0])
                        about.append(("thread %s frame %s() local %r%s" % (
                            thread, code.co_name, name, " (cell)" if name in celled else ""),
                            name in celled, f is asker and got[0] is target))
                    del got
            f = f.f_back
    # this frame is among them: holding it from a local is a cycle that
    # would keep the caller's frame (and its locals) alive until a collection
    del current, f
    return frames, values, about


def _steps(chain: List[Any], k: int) -> List[str]:
    """The steps chain[k:], each with the edge to the next."""
    steps = []
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
    return steps


def why_alive(obj: Any, limit: int = 3, *, _left_out: Iterable[Any] = ()) -> List[Path]:
    """Up to ``limit`` reference paths to ``obj``, one per holder: the
    paths differ in the object that refers to ``obj`` directly (a
    container, an instance, a class's dict, a running function's local
    variable); for each holder, only a shortest path from a root to it
    (never passing through ``obj``) is kept.  Shortest first; at equal
    length a named root (a module, a class, a running function's local)
    before an object held from C, then by text, so the same heap gives
    the same paths and ``limit=1`` gives the first of ``limit=3``.

    Roots: modules, running functions' local variables (the caller's own
    locals included, but not the caller holding ``obj`` itself), classes,
    and objects held from outside the graph.  An empty list: nothing but
    the caller holds it, or it is garbage.  (``_left_out``: containers of
    the caller's, such as a census's samples, that are no reason either.)"""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError("limit must be a positive int, not %r" % (limit,))
    modules = [m for m in list(sys.modules.values()) if isinstance(m, types.ModuleType)]
    threads, local_vals, about = _thread_frames(sys._getframe(1), obj)
    local_of: Dict[int, str] = {}      # a local's value: the local
    cell_of: Dict[int, Optional[str]] = {}     # a cell's value: the variable
    for i, (lab, celled, asked) in enumerate(about):
        if celled:
            cell_of.setdefault(id(local_vals[i]), None if asked else lab)
        if not asked:
            local_of.setdefault(id(local_vals[i]), lab)
    module_of_dict = {id(vars(m)): "module %s" % getattr(m, "__name__", "?")
                      for m in reversed(modules)}
    # the modules' dicts are the roots (a path's length then counts what
    # it reads, module m -> dict['g'] as local 'g'), first: at equal
    # distance a module global is the reason named.  The asker's own cell
    # holding obj is a holder dropped below: one more asked for each.
    globals_ = [vars(m) for m in modules]
    extra = sum(1 for _, celled, asked in about if celled and asked)
    heap, left_out = _heap([modules, local_vals, globals_, _left_out, *_left_out])
    raw = _core.root_paths(heap, left_out, obj, limit + extra, globals_ + local_vals)
    release(heap)
    del heap, left_out, globals_
    # ids stay valid: every root is alive in raw (and locals in local_vals)
    ranked: List[Tuple[int, int, str, Path]] = []
    for i, (lab, celled, asked) in enumerate(about):
        if local_vals[i] is obj and not celled and not asked:
            # a running function's local holds it directly (a cell variable's
            # cell is the holder: the graph has it)
            ranked.append((1, 0, lab, Path(lab, [_node(obj)], 1)))
    for ext, refcnt, chain in raw:
        root = chain[0]
        rank = 0
        # length: len(chain), the reference holding the root included
        length = len(chain)
        if isinstance(root, types.ModuleType):
            label, steps = "module %s" % getattr(root, "__name__", "?"), _steps(chain, 1)
        elif id(root) in local_of:
            label, steps = local_of[id(root)], _steps(chain, 0)
        elif (isinstance(root, types.CellType) and len(chain) > 1
              and id(chain[1]) in cell_of):
            # a running function's cell variable: its frame holds the cell
            label = cell_of[id(chain[1])]
            if label is None:       # the asker's own variable holding obj
                del chain, root
                continue
            steps = _steps(chain, 1)
        elif id(root) in module_of_dict and isinstance(root, dict):
            # a module's globals, held from the stack of running code too
            label, steps = module_of_dict[id(root)], _steps(chain, 0)
        elif isinstance(root, type):
            label = "class %s" % _qualname(root) + (_edge(root, chain[1]) if len(chain) > 1 else "")
            steps = _steps(chain, 1)
        elif isinstance(root, types.FrameType) and id(root) in threads:
            label = "thread %s frame %s()" % (threads[id(root)], root.f_code.co_name)
            label += _edge(root, chain[1]) if len(chain) > 1 else ""
            steps = _steps(chain, 1)
        else:
            rank = 1
            label = "held from C (refcount %d, %d from the graph) %s" % (
                refcnt, refcnt - ext, _node(root))
            label += _edge(root, chain[1]) if len(chain) > 1 else ""
            steps = _steps(chain, 1)
        # the order key leaves out refcounts: they change from call to call
        key = label if rank == 0 else label.split(") ", 1)[-1]
        ranked.append((length, rank, " -> ".join([key] + steps), Path(label, steps, length)))
        del chain, root
    del raw
    local_vals.clear()
    ranked.sort(key=lambda r: r[:3])
    return [r[3] for r in ranked[:limit]]


def tracked_retained(objs: List[Any]) -> Tuple[List[int], int]:
    """Retained sizes of tracked objects, exclusive of each other, and what
    they keep alive only jointly: a tracked object that another keeps alive
    reports its own bytes and the keeper does not count them again, so the
    sizes and ``shared`` add up to ``retained_size(*objs)``."""
    targets = list(objs)
    heap, left_out = _heap([targets, objs])
    sizes, together = _core.retained_exclusive(heap, left_out, targets)
    release(heap)
    del heap, left_out
    alone = 0
    out = []
    for s, o in zip(sizes, targets):
        if s < 0:       # not reached in the graph: its own bytes, freed alone
            s = flatsize(o)
            alone += s
        out.append(s)
    return out, max(0, together + alone - sum(out))
