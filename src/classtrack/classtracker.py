"""Track objects and classes over their lifetime -- a drop-in for
``pympler.classtracker``.

``ClassTracker`` has Pympler's names, arguments and behaviour; the records
live in C (``classtrack._core.Tracker``) and the Python objects you see --
``TrackedObject``, ``tracker.objects``, ``tracker.index``,
``tracker.history`` -- are views built from them when you ask.

Better than Pympler, on purpose:

* ``track_class`` sees *every* new instance of the class and its
  subclasses, whatever creates it: a call, ``cls.__new__(cls)``, ``copy``,
  ``deepcopy``, ``pickle``, subclasses whose ``__init__`` never calls the
  base's, subclasses defined later.  The class is not modified in any way a
  program can see (no ``__init__`` wrapper): the engine hooks the class's
  allocation slot in C.  While classes are tracked, ``builtins.__build_class__``
  is wrapped (in C, adding no frame) so that subclasses defined with a
  ``class`` statement are tracked from their first instance; a subclass made
  by calling ``type()`` directly is picked up at the next ``track_class`` call or
  snapshot.
* Classes implemented in C (``dict``, ``int``...) raise ``TypeError``: their
  instances are created in too many ways to hook safely.
* Instances of Python classes are followed without a weak reference: their
  deaths are learnt from the object allocator (see ``docs/design.md``), so
  ``__slots__`` classes without a ``__weakref__`` slot are tracked like any
  other, and tracking adds no object for the garbage collector to walk.
  Other objects need a weak reference; those that cannot have one (ints,
  lists...) raise ``TypeError`` naming the fix, unless ``keep=True``, which
  holds them alive (Pympler raises even then).  While ``tracemalloc`` is
  tracing when the tracker starts, the allocator cannot be watched safely
  and every object needs a weak reference.
* Sizes are exact (see ``classtrack.asizeof``); snapshots size only alive
  objects (Pympler also sizes dead ones, as ``None``).
* ``TrackedObject.snapshots`` has Pympler's shape: a birth entry
  ``(birth, Asized(basic, basic))`` first, then one entry per snapshot the
  object was alive in.  Pympler stores the birth entry for every object;
  classtrack derives it when you read ``snapshots``, from the birth time and
  the class's basic size, so it costs no memory.  The basic size is what
  ``classtrack.asizeof.basicsize`` says of an instance (pre-header + the
  type's ``__basicsize__``), see ``docs/pympler-differences.md``.
* ``repr`` texts are taken at each snapshot (default reprs cost nothing; a
  ``__repr__`` that raises is replaced by the default text; a class whose
  ``__repr__`` takes more than 5 ms in 3 calls in a row is not asked
  again: one slow call is often the GIL handed to a busy program in the
  middle of a cheap one).  A dump stream (``classtrack run``) holds at most
  8,192 new texts at a time between two of its frames: past that, a
  snapshot asks no more, and the next one goes on from the first object
  not asked.  They go into dumps
  and reports, and so does whatever secret a ``__repr__`` shows:
  ``ClassTracker(reprs=False)`` takes none (no ``__repr__`` is ever called,
  every object shows the default ``<module.Class object at 0x...>``, size
  trees name referents without their values' reprs) and its traces carry
  no source lines.  See "What a dump contains" in ``docs/dump-format.md``.
"""

from __future__ import annotations

import gc
import linecache
import os
import struct
import sys
import threading
import time
from collections import defaultdict
from typing import Any, Dict, IO, List, Optional, Tuple

from classtrack import _core, _untrackable
from classtrack._untrackable import with_subclasses as _with_subclasses
from classtrack.alive import release, tracked_retained
from classtrack.asizeof import Asized, asizeof, check_level
# the background monitor (re-exported: Pympler's classtracker.PeriodicThread)
from classtrack import _monitor
from classtrack._monitor import PeriodicThread, _monitors, _thread_cpu_clock
from classtrack.snapshot import Snapshot, _birth_entry, _SizeQueries, program_frames

_HAVE_GC = 1 << 14                              # Py_TPFLAGS_HAVE_GC

__all__ = ["ClassTracker", "TrackedObject", "Snapshot", "PeriodicThread"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _get_time() -> float:
    """Seconds since classtrack was imported."""
    return _core.now()


def _asized(node: Any) -> Asized:
    return Asized._from_tuple(node)


_TPFLAGS_HAVE_GC = 1 << 14
_TPFLAGS_MANAGED_WEAKREF = 1 << 3  # 3.12+
_TPFLAGS_MANAGED_DICT = 1 << 4  # 3.11+
if sys.version_info >= (3, 12):
    _PREHEADER_FLAGS = _TPFLAGS_MANAGED_DICT | _TPFLAGS_MANAGED_WEAKREF
elif sys.version_info >= (3, 11):
    _PREHEADER_FLAGS = _TPFLAGS_MANAGED_DICT
else:
    _PREHEADER_FLAGS = 0
_PTR_SIZE = struct.calcsize("P")
_GC_HEAD_SIZE = 2 * _PTR_SIZE
_type_flags = type.__dict__["__flags__"].__get__
_type_basicsize = type.__dict__["__basicsize__"].__get__


def _class_basicsize(cls: Optional[type]) -> int:
    """The basic size of an instance of cls, from the class alone: what
    ``classtrack.asizeof.basicsize(instance)`` returns (the pre-header --
    GC head, 3.11+'s managed dict and weakref words -- plus the type's
    ``__basicsize__``; the pre-header rule is layout.c's
    ct_type_preheader_size).  0 when the class is unknown.  Read through
    ``type``'s own descriptors: no metaclass code runs."""
    if not isinstance(cls, type):
        return 0
    flags = _type_flags(cls)
    size = _type_basicsize(cls)
    if flags & _TPFLAGS_HAVE_GC:
        size += _GC_HEAD_SIZE
    if flags & _PREHEADER_FLAGS:
        size += 2 * _PTR_SIZE
    return size


def _default_repr(cls: Optional[type], ident: int) -> str:
    if cls is None:
        return "<object at 0x%x>" % ident
    return "<%s.%s object at 0x%x>" % (cls.__module__, cls.__qualname__, ident)


class TrackedObject(_SizeQueries):
    """Size and lifetime of one tracked object (a view over its C record).

    ``ref()`` returns the object or None; ``id``, ``name``, ``repr``,
    ``birth``, ``death``, ``trace``, ``snapshots`` [(timestamp, Asized)] as
    in Pympler.
    """

    __slots__ = ("_tracker", "_index", "id", "name", "birth", "_trace_no")

    def __init__(self, tracker: "ClassTracker", index: int, record: tuple) -> None:
        self._tracker = tracker
        self._index = index
        self.id, self.name, self.birth, _death, self._trace_no = record[:5]

    def _record(self) -> tuple:
        return self._tracker._engine.record(self._index)

    def ref(self) -> Any:
        """The tracked object, or None once it died."""
        return self._record()[6]

    @property
    def death(self) -> Optional[float]:
        """Seconds since import at which the object died, or None."""
        return self._record()[3]

    @property
    def repr(self) -> str:
        rec = self._record()
        if rec[8] is not None:
            return rec[8]
        cls = rec[7]
        if (self._tracker._engine.reprs_handed_off and cls is not None
                and cls.__repr__ is not object.__repr__):
            raise RuntimeError("the repr of %s was written to the tracker's dump stream, "
                               "which keeps it (classtrack run hands repr texts off to "
                               "save memory): read it from the dump" % self.name)
        return _default_repr(cls, self.id)

    @property
    def classname(self) -> str:
        cls = self._record()[7]
        return cls.__name__ if cls is not None else self.name

    @property
    def trace(self) -> Optional[List[Tuple[str, int, str, Optional[List[str]], Optional[int]]]]:
        """The creation stack, outermost first, as inspect.stack() gives it:
        (filename, lineno, function, code_context, index); None if not traced.
        A tracker made with reprs=False gives no code_context (None)."""
        engine = self._tracker._engine
        pairs = engine.trace(self._trace_no)
        if pairs is None:
            return None
        pairs = program_frames(pairs)
        source = engine.reprs
        out = []
        for code, lineno in pairs:
            filename = code.co_filename
            line = ""
            if source and lineno and lineno > 0:
                line = linecache.getline(filename, lineno)
            if line:
                out.append((filename, lineno, code.co_name, [line], 0))
            else:
                out.append((filename, lineno, code.co_name, None, None))
        return out

    @property
    def snapshots(self) -> List[Tuple[float, Asized]]:
        """[(timestamp, Asized)]: the birth entry (birth time, the class's
        basic size, derived now, never stored), then one entry for each
        snapshot the object was alive in -- Pympler's shape."""
        out = [_birth_entry(self.birth, _class_basicsize(self._record()[7]))]
        retained_at = self._tracker._retained_at
        for ts, size, flat, tree in self._tracker._engine.record_sizes(self._index):
            a = _asized(tree) if tree is not None else Asized(size, flat, (), self.name)
            measured = retained_at.get(ts)
            if measured is not None:
                a.retained = measured.get(self._index)
            out.append((ts, a))
        return out

    def set_resolution_level(self, resolution_level: int) -> None:
        """Size referents individually to this depth from the next snapshot."""
        self._tracker._engine.set_resolution(self._index, _check_level(resolution_level))

    def __repr__(self) -> str:
        return "<TrackedObject %s %s>" % (self.name, self.repr)


def _check_level(level: Any) -> int:
    """The user's resolution_level, checked where the user gives it (a
    package watch hooks its classes later, inside imports): an int from 0
    to the engine's maximum, else TypeError/ValueError naming it."""
    level = check_level(level, "resolution_level")
    if level > _core.MAX_RESOLUTION_LEVEL:
        raise ValueError("resolution_level must be between 0 and %d, not %d"
                         % (_core.MAX_RESOLUTION_LEVEL, level))
    return level


class _Settings:
    __slots__ = ("name", "resolution_level", "keep", "trace", "retained")

    def __init__(self, name: str, resolution_level: int, keep: bool, trace: bool,
                 retained: bool = False) -> None:
        self.name = name
        self.resolution_level = resolution_level
        self.keep = keep
        self.trace = trace
        self.retained = retained


class ClassTracker:
    """Track objects and classes: lifetimes, sizes over time, traces.

    ``reprs=False`` keeps the tracked objects' data out of everything the
    tracker records, dumps and reports: no ``__repr__`` is called (each
    object shows ``<module.Class object at 0x...>``), size trees name
    referents by attribute or key without their values' reprs, and traces
    carry file, line and function but no source line."""

    def __init__(self, stream: Optional[IO] = None, reprs: bool = True) -> None:
        if not isinstance(reprs, bool):
            raise TypeError("reprs must be a bool, not %r" % (reprs,))
        self._engine = _core.Tracker(_PACKAGE_DIR, reprs=reprs)
        self._classes: Dict[type, _Settings] = {}
        # count-only classes: class -> (name, why it cannot be tracked: an
        # _untrackable.Reason, or None when counting was asked for); their
        # instances are counted and sized at each snapshot (count_class)
        self._counted: Dict[type, Tuple[str, Any]] = {}
        # classes _hook_trees walked, in all (tests count it: the work per
        # new class must not grow with the number of tracked classes)
        self._hooks_walked = 0
        self._watches: List[Any] = []   # package / program watches (_modwatch)
        self.snapshots: List[Snapshot] = []
        self._periodic_thread: Optional[PeriodicThread] = None
        self._stream = stream
        self._views: Dict[int, TrackedObject] = {}
        # retained sizes: records asked for one by track_object(retained=True),
        # and each snapshot's figures by timestamp ({record index: bytes})
        self._retained_records: set = set()
        self._retained_at: Dict[float, Dict[int, int]] = {}
        # reentrant: code run by a snapshot (a __repr__) may call back in
        self.snapshot_lock = threading.RLock()
        # called with each snapshot kept, under snapshot_lock (a dump stream)
        self._snapshot_hooks: List[Any] = []

    @property
    def reprs(self) -> bool:
        """False when made with reprs=False: no repr and no source line of
        a trace is ever taken."""
        return self._engine.reprs

    # -- views ---------------------------------------------------------------

    def _view(self, index: int) -> TrackedObject:
        view = self._views.get(index)
        if view is None:
            view = TrackedObject(self, index, self._engine.record(index))
            self._views[index] = view
        return view

    @property
    def objects(self) -> Dict[int, TrackedObject]:
        """id -> TrackedObject (the latest object with that id)."""
        out: Dict[int, TrackedObject] = {}
        for i in range(len(self._engine)):
            view = self._view(i)
            out[view.id] = view
        return out

    @property
    def index(self) -> Dict[str, List[TrackedObject]]:
        """name -> [TrackedObject], dead ones included, in creation order."""
        names = self._engine.names
        out: Dict[str, List[TrackedObject]] = defaultdict(list)
        for i, n in enumerate(self._engine.record_names()):
            out[names[n]].append(self._view(i))
        return out

    @property
    def history(self) -> Dict[str, List[Tuple[float, int]]]:
        """name -> [(timestamp, live count)] at each creation and death."""
        out: Dict[str, List[Tuple[float, int]]] = defaultdict(list)
        out.update(self._engine.history())
        return out

    @property
    def stats(self) -> Any:
        """A ConsoleStats over this tracker's data."""
        # lazy: the stats layer reads trackers (it sits above this module)
        from classtrack.classtracker_stats import ConsoleStats
        return ConsoleStats(tracker=self, stream=self._stream)

    def diff(self, snapshot_a: Any, snapshot_b: Any) -> Any:
        """Per class, what changed from snapshot_a to snapshot_b (each a
        Snapshot of ``self.snapshots`` or its index, e.g. -2 and -1): a
        ``ClassDiff`` of count, size and retained deltas, largest size
        growth first (see ``Stats.diff``)."""
        # lazy: the stats layer reads trackers (it sits above this module)
        from classtrack.classtracker_stats import Stats
        return Stats(tracker=self).diff_snapshots(snapshot_a, snapshot_b)

    # -- tracking objects ------------------------------------------------------

    def track_object(self, instance: Any, name: Optional[str] = None,
                     resolution_level: int = 0, keep: bool = False,
                     trace: bool = False, retained: bool = False) -> None:
        """Track one object.  TypeError if it cannot be weakly referenced,
        unless keep=True (held alive then).  No-op if tracked already.
        retained=True: every snapshot also measures its retained size (see
        ``create_snapshot``)."""
        level = _check_level(resolution_level)
        if name is None:
            name = type(instance).__name__
        elif not isinstance(name, str):
            raise TypeError("name must be a str, not %r" % (name,))
        self._engine.track(instance, name, level, bool(keep), bool(trace))
        if retained:
            index = self._engine.find(instance)
            if index >= 0:
                self._retained_records.add(index)

    def track_change(self, instance: Any, resolution_level: int = 0) -> None:
        """Change the resolution level of a tracked object (from the next
        snapshot).  KeyError if it is not tracked."""
        level = _check_level(resolution_level)
        index = self._engine.find(instance)
        if index < 0:
            raise KeyError(id(instance))
        self._engine.set_resolution(index, level)

    # -- tracking classes --------------------------------------------------------

    def track_class(self, cls: type, name: Optional[str] = None,
                    resolution_level: int = 0, keep: bool = False,
                    trace: bool = False, retained: bool = False) -> None:
        """Track every instance of cls or a subclass created from now on.
        retained=True: every snapshot also measures the retained size of
        each (see ``create_snapshot``)."""
        if not isinstance(cls, type):
            raise TypeError("only class objects can be tracked, not %r" % (cls,))
        level = _check_level(resolution_level)
        if name is None:
            name = cls.__module__ + "." + cls.__name__
        elif not isinstance(name, str):
            raise TypeError("name must be a str, not %r" % (name,))
        if not (cls.__flags__ & (1 << 9)):  # Py_TPFLAGS_HEAPTYPE
            raise TypeError(
                "cannot track class %r: it is implemented in C; track its instances "
                "with track_object, subclass it in Python and track the subclass, or "
                "count its instances at each snapshot with count_class"
                % cls.__qualname__)
        if not keep:
            for sub in _with_subclasses(cls):
                if not self._engine.follows(sub):
                    raise TypeError(
                        "cannot track class %r: the deaths of its instances cannot be "
                        "followed (the allocator watch covers instances of classes "
                        "defined in Python while tracemalloc is not tracing; otherwise a "
                        "weak reference is needed, which C code such as deque's resets, "
                        "or which the class lacks: give it a '__weakref__' slot); track "
                        "with keep=True to hold them alive, or count them at each "
                        "snapshot with count_class" % sub.__qualname__)
        self._classes[cls] = _Settings(name, level, bool(keep), bool(trace), bool(retained))
        self._hook_new_subclasses()
        self._hook_trees([cls])

    def count_class(self, cls: type, name: Optional[str] = None) -> None:
        """Count the instances of cls (and of its subclasses that no other
        tracked or counted class claims) at every snapshot, and size them,
        without following any of them one by one: ``Snapshot.counted``
        gets ``{name: (instances, bytes)}``.  The way to watch classes that
        ``track_class`` refuses (implemented in C, compiled, NamedTuple,
        IntEnum, ``__slots__`` without ``__weakref__``, module subclasses);
        package watches count those by themselves.  Each snapshot then
        walks the collector's objects once (less than a ``gc.collect()``;
        the objects they refer to as well when a counted class's
        instances are not GC objects).  name: "module.qualname" by default."""
        if not isinstance(cls, type):
            raise TypeError("only class objects can be counted, not %r" % (cls,))
        if name is None:
            name = _untrackable._qualified(cls)
        elif not isinstance(name, str):
            raise TypeError("name must be a str, not %r" % (name,))
        self._counted[cls] = (name, None)

    def _count_instead(self, cls: type, why: Any) -> None:
        """Count cls at snapshots because it cannot be followed one by one
        (`why`, an ``_untrackable.Reason``), unless it is counted already."""
        if cls not in self._counted:
            self._counted[cls] = (_untrackable._qualified(cls), why)

    def counted_classes(self) -> List[Tuple[str, Optional[str]]]:
        """(name, why it cannot be tracked, or None when asked for with
        ``count_class``) of each class counted at snapshots."""
        return [(name, why.text if why is not None else None)
                for name, why in self._counted.values()]

    def _count_rows(self) -> Tuple[List[str], List[Tuple[type, ...]]]:
        """Each counted class's name and the types whose instances count
        for it: itself and the subclasses whose nearest tracked or counted
        class it is (as ``track_class`` gives a subclass to its nearest
        tracked class)."""
        names: List[str] = []
        rows: List[Tuple[type, ...]] = []
        for cls, (name, _) in list(self._counted.items()):
            types = []
            for sub in _with_subclasses(cls):
                for base in sub.__mro__:
                    if base in self._counted or base in self._classes:
                        if base is cls:
                            types.append(sub)
                        break
            names.append(name)
            rows.append(tuple(types))
        return names, rows

    def _count(self) -> Optional[Dict[str, Tuple[int, int]]]:
        """The count-only classes now: {name: (instances, bytes)}, or None
        when there are none (then nothing is walked)."""
        if not self._counted:
            return None
        names, rows = self._count_rows()
        if gc.get_freeze_count() == 0 and all(
                t.__flags__ & _HAVE_GC for row in rows for t in row):
            # the collector's objects visited in place, no list of the
            # whole heap (megabytes, at every snapshot); not after
            # gc.freeze(), whose objects 3.12+ visit and gc.get_objects()
            # does not list
            figures = _core.count_instances(None, rows, (), -1)
        else:
            objs = gc.get_objects()
            try:
                figures = _core.count_instances(objs, rows, (), -1)
            finally:
                release(objs)
                del objs
        out: Dict[str, Tuple[int, int]] = {}
        for name, (n, size) in zip(names, figures):
            was = out.get(name, (0, 0))
            out[name] = (was[0] + n, was[1] + size)
        return out

    def _track_classes(self, classes: List[type], resolution_level: int, keep: bool,
                       trace: bool, retained: bool = False) -> List[Tuple[type, Any]]:
        """track_class for many classes at once (one walk of their trees); returns each
        class with None, or the reason it cannot be tracked (an
        ``_untrackable.Reason``: kind and sentence)."""
        level = _check_level(resolution_level)
        out: List[Tuple[type, Any]] = []
        added: List[type] = []
        for cls in classes:
            why = None
            if not (cls.__flags__ & (1 << 9)) or not keep:    # Py_TPFLAGS_HEAPTYPE
                why = _untrackable.reason(cls, self._engine.follows)
            if why is None and cls not in self._classes:
                self._classes[cls] = _Settings(cls.__module__ + "." + cls.__name__, level,
                                               bool(keep), bool(trace), bool(retained))
                added.append(cls)
            elif why is not None:
                self._count_instead(cls, why)
            out.append((cls, why))
        if added:
            self._hook_trees(added)
        return out

    def track_package(self, name: str, resolution_level: int = 0, keep: bool = False,
                      trace: bool = False, retained: bool = False) -> None:
        """Track every class defined by the package or module ``name`` and
        its subpackages, those imported already and those imported later
        (``track_class`` on each, with these settings).  Classes that cannot
        be tracked one by one (implemented in C, compiled, NamedTuple,
        IntEnum...) are counted at each snapshot instead (``count_class``);
        ``untrackable_classes()`` lists them with the reason."""
        if not isinstance(name, str) or not name or not all(
                part.isidentifier() for part in name.split(".")):
            raise ValueError("track_package needs a dotted module name, not %r" % (name,))
        # lazy: only package watches need it, and its site/sysconfig imports cost start-up
        from classtrack import _modwatch
        self._watch(_modwatch.package_predicate(name), resolution_level, keep, trace,
                    "package " + name, retained)

    def _watch(self, predicate: Any, resolution_level: int, keep: bool, trace: bool,
               description: str, retained: bool = False) -> Any:
        # lazy: only package watches need it, and its site/sysconfig imports cost start-up
        from classtrack import _modwatch
        _check_level(resolution_level)
        watch = _modwatch.ModuleWatch(self, predicate, resolution_level, keep, trace,
                                      description, retained)
        self._watches.append(watch)
        watch.start()
        return watch

    def untrackable_classes(self) -> List[Tuple[str, str]]:
        """(class, reason) for each class a package watch could not track."""
        return [(name, why.text) for w in self._watches for name, why in w.untrackable]

    def _untrackable_reasons(self) -> List[Tuple[str, Any]]:
        """(class, ``_untrackable.Reason``) for the same classes."""
        return [u for w in self._watches for u in w.untrackable]

    def _governing(self, cls: type) -> Optional[_Settings]:
        """The settings cls is hooked with: those of the first tracked
        class in its MRO (the most specialised), or None."""
        for base in cls.__mro__:
            s = self._classes.get(base)
            if s is not None:
                return s
        return None

    def _adopt_enum_members(self, cls: type, s: _Settings) -> None:
        """An enum's members are made while its class is built, before the
        class can be tracked: cls's are tracked now, with cls's settings s,
        as track_object would (born now; they live as long as their
        class).  Members made later (a Flag's combinations) pass through
        the class's hook like any instance."""
        members = cls.__dict__.get("_member_map_")
        if not isinstance(members, dict):
            return
        for member in list(members.values()):
            if type(member) is not cls or self._engine.find(member) >= 0:
                continue        # an alias, another class's, or tracked already
            try:
                self._engine.track(member, s.name, s.resolution_level, s.keep, False)
            except TypeError:
                pass            # cannot be followed (then counted, or refused)

    def _hook_trees(self, classes: List[type]) -> None:
        """Hook each of `classes` and each of their subclasses with its
        governing settings, unhook those no tracked class governs.  Only
        these trees can change when a class is tracked, tracked again or
        detached (the settings of a class come from its MRO); every other
        hooked class stays as it is.  Costs O(MRO) per class walked.
        Keeps the engine's invariant: every subclass of a hooked class is
        hooked (ct_hook_unhooked_subclasses relies on it)."""
        seen: set = set()
        engine = self._engine
        for top in classes:
            for sub in _with_subclasses(top):
                if sub in seen:
                    continue
                seen.add(sub)
                s = self._governing(sub)
                if s is None:
                    engine.unhook(sub)
                else:
                    engine.hook(sub, s.name, s.resolution_level, s.keep, s.trace,
                                sub in self._classes)
                    self._adopt_enum_members(sub, s)
        self._hooks_walked += len(seen)

    def _hook_new_subclasses(self) -> None:
        """Hook the subclasses of hooked classes that appeared without a
        class statement (type() called directly): the engine names those
        under the hooked classes whose subclass count changed, so this
        walks nothing when no class was made."""
        new = self._engine.unhooked_subclasses()
        if new:
            self._hook_trees(new)

    def detach_class(self, cls: type) -> None:
        """Stop tracking new instances of cls (or counting its instances).
        KeyError if neither.  Objects already tracked stay tracked."""
        if cls not in self._classes:
            if cls not in self._counted:
                raise KeyError(cls)
            del self._counted[cls]
            return
        del self._classes[cls]
        self._counted.pop(cls, None)
        self._hook_trees([cls])

    def detach_all_classes(self) -> None:
        """Stop tracking new instances of every class; classes are restored
        and package watches end."""
        for watch in self._watches:
            watch.stop()
        self._watches[:] = []
        self._classes.clear()
        self._counted.clear()
        self._engine.unhook_all()

    def detach_all(self) -> None:
        """Detach from all classes and forget every tracked object (waits
        for a snapshot in progress in another thread; RuntimeError when
        called from code a snapshot runs, e.g. a tracked object's __repr__)."""
        self.detach_all_classes()
        with self.snapshot_lock:
            self._engine.clear_records()
            self._views.clear()
            self._retained_records.clear()

    def clear(self) -> None:
        """Detach from everything and forget all data, snapshots included."""
        self.detach_all()
        with self.snapshot_lock:
            self.snapshots[:] = []
            self._retained_at.clear()
            self._engine.clear_snapshots()

    def close(self) -> None:
        """Detach from tracked classes (for contextlib.closing)."""
        self.detach_all_classes()

    # -- snapshots ---------------------------------------------------------------

    def create_snapshot(self, description: str = "", compute_total: bool = False,
                        retained: bool = False, collect: bool = False) -> None:
        """Size every alive tracked object and record the process's memory.
        Snapshots from several threads are serialised; none is lost.

        retained=True also measures each alive tracked object's *retained
        size* (``.retained`` of its snapshot entry, next to ``.size``): the
        bytes that would be freed if it became unreachable, from the
        dominator tree of the whole heap -- except other tracked objects it
        keeps alive, which report their own, so that retained sizes add up.
        What several of them keep alive together, and none of them alone,
        is the snapshot's ``shared``, never given to one of them.  Objects
        of classes tracked with retained=True are measured at every
        snapshot.  It walks the whole heap: about a gc.collect() or a few.

        collect=True runs a full garbage collection (``gc.collect()``) first,
        so that unreachable cycles not yet collected are not counted; the
        snapshot's ``collected`` says so, and dumps and reports keep it."""
        self._take_snapshot(str(description), compute_total, bool(retained),
                            collect=bool(collect))

    def _retained_wanted(self, all_: bool) -> Optional[List[int]]:
        """Record indices whose retained size this snapshot measures, or
        None when none is asked for."""
        # a copy first (one C call): a package watch may add classes from
        # the program's thread while the monitor's snapshot runs this
        names = {s.name for s in list(self._classes.values()) if s.retained}
        if not (all_ or names or self._retained_records):
            return None
        k = self._engine.nsnapshots - 1
        idx = [e[0] for e in self._engine.snapshot_entries(k)]
        if all_:
            return idx
        numbers = {n for n, name in enumerate(self._engine.names) if name in names}
        rec_names = self._engine.record_names()
        return [i for i in idx if rec_names[i] in numbers or i in self._retained_records]

    def _measure_retained(self, snapshot: Snapshot, all_: bool) -> None:
        wanted = self._retained_wanted(all_)
        if wanted is None:
            return
        pairs = [(i, self._engine.record(i)[6]) for i in wanted]
        indices = [i for i, o in pairs if o is not None]
        objs = [o for _, o in pairs if o is not None]
        del pairs
        sizes, shared = tracked_retained(objs)
        del objs
        self._retained_at[snapshot.timestamp] = dict(zip(indices, sizes))
        snapshot.shared = shared

    def _take_snapshot(self, description: str, compute_total: bool,
                       retained: bool = False,
                       monitor: Optional[PeriodicThread] = None,
                       collect: bool = False) -> Optional[Snapshot]:
        """Take and keep a snapshot.  For the background monitor, None when
        its stop gave up waiting meanwhile: the snapshot is dropped."""
        with self.snapshot_lock:
            cpu_clock = _thread_cpu_clock()
            cpu_started = cpu_clock()
            if self._classes:
                self._hook_new_subclasses()
            if collect:
                gc.collect()
            timestamp, tracked_total, overhead = self._engine.snapshot()
            snapshot = Snapshot(timestamp, description)
            snapshot.collected = collect
            snapshot.tracked_total = tracked_total
            snapshot.overhead = overhead
            snapshot.counted = self._count()
            if compute_total:
                snapshot.asizeof_total = asizeof(all=True, code=True) - overhead
            self._measure_retained(snapshot, retained)
            # what the snapshot cost the program: this thread's CPU seconds
            # (not wall time, which counts waiting for the GIL)
            snapshot.cost = max(0.0, cpu_clock() - cpu_started)
            if monitor is None:
                self.snapshots.append(snapshot)
                self._after_snapshot(snapshot, cpu_clock)
                return snapshot
            snapshot.interval = monitor.interval
            snapshot.effective_interval = monitor.effective_interval
            snapshot.stretched = monitor.effective_interval > monitor.interval
            with monitor._outcome:
                if monitor.abandoned:
                    self._engine.discard_last_snapshot()
                    self._retained_at.pop(snapshot.timestamp, None)
                    return None
                self.snapshots.append(snapshot)
            self._after_snapshot(snapshot, cpu_clock)
            return snapshot

    def _after_snapshot(self, snapshot: Snapshot, cpu_clock: Any) -> None:
        """Run the snapshot hooks; their CPU time counts in the snapshot's cost."""
        if not self._snapshot_hooks:
            return
        started = cpu_clock()
        for hook in list(self._snapshot_hooks):
            hook(snapshot)
        snapshot.cost += max(0.0, cpu_clock() - started)

    def _monitor_snapshot(self, thread: PeriodicThread) -> None:
        self._take_snapshot("", False, monitor=thread, collect=thread.collect)

    # -- background monitoring ----------------------------------------------------

    def start_periodic_snapshots(self, interval: float = 1.0,
                                 budget: float = _monitor.DEFAULT_BUDGET,
                                 _delay_first: bool = False, collect: bool = False) -> None:
        """Take snapshots every ``interval`` seconds in a daemon thread
        (``BackgroundMonitor``), never spending more than ``budget`` (a share
        of the program's time, default 3%) on them.  If the monitor runs
        already, only the interval (and budget, collect) change.  collect=True
        runs ``gc.collect()`` before each (its cost counts in the budget)."""
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
                or not interval > 0:
            raise ValueError("interval must be a positive number of seconds, not %r"
                             % (interval,))
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) \
                or not 0 < budget <= 1:
            raise ValueError("budget must be a share of time in (0, 1], not %r" % (budget,))
        thread = self._periodic_thread
        if thread is not None and thread.is_alive():
            thread.budget = float(budget)
            thread.collect = bool(collect)
            thread.change_interval(float(interval))
            return
        # imported here, not by the monitor's first snapshot: the import is a
        # one-off cost (about 2 ms) that would count against the budget
        import classtrack.process  # noqa: F401
        thread = PeriodicThread(self, float(interval), budget=float(budget),
                                name="BackgroundMonitor")
        thread.delay_first = _delay_first
        thread.collect = bool(collect)
        thread.daemon = True
        self._periodic_thread = thread
        _monitors.add(thread)
        thread.start()

    def stop_periodic_snapshots(self) -> None:
        """Stop the background monitor; returns as soon as a snapshot in
        progress (if any) is done, or after ``_monitor.STOP_TIMEOUT`` seconds (5)
        with one line on stderr: the snapshot may be waiting for this
        thread (a tracked object's ``__repr__`` or ``__sizeof__`` taking a
        lock held here).  That snapshot is dropped when it ends; a snapshot
        taken meanwhile waits for it."""
        thread = self._periodic_thread
        if thread is not None and thread.is_alive():
            thread.stop_and_wait(time.monotonic() + _monitor.STOP_TIMEOUT)
        elif thread is not None:
            thread.request_stop()
        self._periodic_thread = None
