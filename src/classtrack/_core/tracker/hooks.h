/* hooks.h - instance-creation hooks on tracked classes.
 *
 * Tracking a class swaps its tp_alloc slot (and that of its subclasses)
 * for ct_hook_alloc, which calls the original and registers the new
 * object with every tracker that owns the class.  tp_alloc is what every
 * creation path goes through: a call, cls.__new__(cls), copy, deepcopy,
 * pickle (object_new and the unpicklers call type->tp_alloc), subclasses
 * whose __init__ never calls the base's.  Nothing visible from Python
 * changes: no attribute of the class, no __init__ wrapper.
 *
 * Except for subclasses of a few built-ins whose constructors allocate
 * with _PyType_AllocNoTrack directly (3.14+: set, frozenset; 3.15+: dict,
 * frozendict): their instances are registered from a reference tracer
 * (PyRefTracer_CREATE), installed only while such a class is hooked (see
 * hooks.c, "creation that bypasses tp_alloc").
 *
 * Subclasses created later get tp_alloc = PyType_GenericAlloc from
 * type_new, so builtins.__build_class__ is wrapped (in C, no extra
 * frame) while any class is hooked: a class statement that creates a
 * subclass of a hooked class hooks it at once.  Classes made by calling
 * type() directly are found by ct_hook_unhooked_subclasses (the Python
 * layer asks at track_class and at each snapshot), which looks only at
 * the hooked types whose subclass count changed.
 *
 * The hook table is process-wide, as type slots are: one entry per hooked
 * type with the original tp_alloc and the owners (tracker + settings).
 * Guarded by the GIL.  An entry whose slot was replaced by someone else
 * after us is kept (and chained) forever, because our function may still
 * be called through theirs.
 */
#ifndef CLASSTRACK_HOOKS_H
#define CLASSTRACK_HOOKS_H

#include "tracker/tracker.h"

typedef struct {
    ct_tracker *tracker;    /* strong */
    uint32_t name;
    uint8_t resolution;
    uint8_t keep;
    uint8_t trace;
    uint8_t root;           /* the tracker tracks this very class (track_class,
                               a package watch), not only a base of it */
    Py_ssize_t nsubs;       /* the type's direct subclasses when this tracker
                               last looked (ct_hook_unhooked_subclasses) */
} ct_hook_owner;

/* Hook `type` for `tracker` with these settings (replacing the tracker's
 * previous settings on it); 0 <= resolution <= CT_MAX_RESOLUTION (the
 * binding checked it).  `root`: the tracker tracks `type` itself (its
 * settings are the ones a new subclass inherits), not only as a subclass
 * of a tracked class.  The caller hooks type's existing subclasses too
 * (the invariant below).  TypeError for static types.  0 or -1. */
int ct_hook_install(PyTypeObject *type, ct_tracker *tracker, uint32_t name,
                    int resolution, int keep, int trace, int root);

/* Invariant kept by the callers: every subclass of a type `tracker` hooks
 * is hooked by `tracker` too.  A hooked type is held alive by the table,
 * so a type's subclass count (tp_subclasses) only moves, for a hooked
 * type, when a subclass appears that is not hooked yet (class statements
 * are hooked at once, by the __build_class__ wrapper, which keeps the
 * counts in step): one made by calling type() directly.
 *
 * ct_hook_unhooked_subclasses(tracker): the direct subclasses, not hooked
 * by `tracker`, of the types it hooks whose subclass count changed since
 * it last asked (a new list; their own subclasses are the caller's to
 * walk).  Costs one comparison per hooked type, plus a look at the
 * subclasses of the types that changed.  NULL with an exception. */
PyObject *ct_hook_unhooked_subclasses(ct_tracker *tracker);

/* Remove `tracker` from `type`'s owners; restore tp_alloc when no owner
 * is left and the slot is still ours.  0 if it was hooked, -1 if not. */
int ct_hook_remove(PyTypeObject *type, ct_tracker *tracker);

/* Remove `tracker` from every hooked type. */
void ct_hook_remove_all(ct_tracker *tracker);

/* The types `tracker` owns, as a new list. */
PyObject *ct_hook_types_of(ct_tracker *tracker);

/* What allocator a hooked type's instances really come from: ask
 * ct_alloc_of (base/layout.h), whose lookup these hooks install. */

/* Re-installs the reference tracer that catches the creations of classes
 * whose constructors bypass tp_alloc (3.14+ set/frozenset, 3.15 dict
 * subclasses) if something (tracemalloc) replaced or removed it. */
void ct_hook_reftracer_check(void);

/* Module functions: builtins.__build_class__ wrapper management. */
extern PyMethodDef ct_hook_functions[];

#endif
