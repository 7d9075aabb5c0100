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
 * type() directly are found by ct_hooks_rescan (the Python layer runs it
 * at each track call and snapshot).
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
} ct_hook_owner;

/* Hook `type` for `tracker` with these settings (replacing the tracker's
 * previous settings on it); 0 <= resolution <= CT_MAX_RESOLUTION (the
 * binding checked it).  TypeError for static types.  0 or -1. */
int ct_hook_install(PyTypeObject *type, ct_tracker *tracker, uint32_t name,
                    int resolution, int keep, int trace);

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
