/* gcwalk.h - the objects the garbage collector lists, visited in place,
 * on every supported version, with no list of the whole heap (a list of
 * a million objects is 8 MB, made and dropped at every snapshot that
 * counts classes).
 *
 * 3.12+: PyUnstable_GC_VisitObjects.  3.9-3.11 have no such call; the
 * walk follows the collector's generation lists as gc.get_objects() does
 * (Modules/gcmodule.c, gc_get_objects_impl), with the layouts of
 * Include/internal/pycore_gc.h, identical in 3.9, 3.10 and 3.11:
 *   - a GC object is preceded by its PyGC_Head {uintptr_t _gc_next,
 *     _gc_prev}; _gc_prev carries two flag bits;
 *   - the interpreter's `struct gc_generation {PyGC_Head head; int
 *     threshold; int count;}` generations[3] are consecutive (24 bytes
 *     each), generation 0 first;
 *   - _PyObject_GC_TRACK links a new object last in generation 0, so a
 *     fresh list's _gc_next is generation 0's head.
 * The heads are found that way from a probe list, then checked (each
 * head's neighbours point back at it) before anything is followed; a
 * mismatch is a RuntimeError, never a wild read.  Permanent (frozen)
 * objects are not visited, as gc.get_objects() does not list them.
 *
 * The visitor must not create, destroy or run Python objects: that could
 * start a collection, which relinks the lists being followed.  It returns
 * 1 to go on, 0 to stop.  Called from a finalizer during a collection the
 * walk is what gc.get_objects() would list then. */
#ifndef CLASSTRACK_GCWALK_H
#define CLASSTRACK_GCWALK_H

#include "base/compat.h"

typedef int (*ct_gc_visitor)(PyObject *obj, void *arg);

/* 0, or -1 with an exception (MemoryError; RuntimeError when the lists
 * are not laid out as this build expects). */
int ct_gc_visit_objects(ct_gc_visitor visit, void *arg);

#endif
