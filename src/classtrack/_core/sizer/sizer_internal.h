/* sizer_internal.h - declarations shared by the sizer's files (sizer*.c)
 * and graph.c (which follows the same referents as the sizer); not part
 * of the engine's interface. */
#ifndef CLASSTRACK_SIZER_INTERNAL_H
#define CLASSTRACK_SIZER_INTERNAL_H

#include "sizer/sizer.h"
#include "base/layout.h"

/* 1 when policy says obj is neither counted nor followed.  `top` is true
 * for objects passed in by the caller: those are counted even when shared
 * interpreter-wide (asizeof(None) is the size of None), but classes,
 * modules, functions, code and frames still need their option. */
int ct_policy_skip_any(const ct_sizer *s, PyObject *obj, int top);

/* The same, with the common data types decided inline (the sizer asks
 * for every referent). */
static inline int
ct_policy_skip(const ct_sizer *s, PyObject *o, int top)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyList_Type || tp == &PyDict_Type || tp == &PyFloat_Type) {
        return 0;
    }
    if (tp == &PyUnicode_Type || tp == &PyLong_Type || tp == &PyTuple_Type
        || tp == &PyBytes_Type) {
        return !top && !(s->flags & CT_FOLLOW_SHARED) && ct_is_shared(o);
    }
    return ct_policy_skip_any(s, o, top);
}

/* Flat size of an exact str, int, float or bytes, computed without any
 * call; -1 for every other object (no exception set). */
Py_ssize_t ct_leaf_size(PyObject *obj);

/* Pushes the referents of obj that are not yet seen, excluded or skipped
 * by policy onto the work stack, marking them seen.  0 or -1. */
int ct_push_referents(ct_sizer *s, PyObject *obj, Py_ssize_t depth);

/* Decides whether a referent is sized: 1 if it was marked seen and pushed,
 * 0 if it is skipped, -1 on error. */
int ct_consider(ct_sizer *s, PyObject *ref, Py_ssize_t depth);

/* ---- numpy arrays (sizer_types.c) ----
 * A numpy.ndarray is no GC object and has no tp_traverse, yet it holds
 * strong references: to its `base` (what a view's memory belongs to) and,
 * when its dtype is object and it owns its buffer, to every element.  The
 * sizer and the heap graph follow them through these two functions, with
 * no numpy header and without ever importing numpy. */

/* 1 when o is an instance of numpy.ndarray or of a subclass, else 0
 * (always 0 until numpy has been imported by someone else).  Never fails,
 * never runs Python code; the first ndarray seen confirms numpy's type
 * against sys.modules (one short-lived str, nothing else). */
int ct_ndarray_check(PyObject *o);

/* Called for each object an ndarray holds: `index` is -1 for its base,
 * else the element's flat index in C order.  `ref` is borrowed from the
 * array: visit must run no Python code.  0 to go on, non-zero to stop
 * (-1 with an exception set for an error). */
typedef int (*ct_ndarray_visitproc)(PyObject *ref, Py_ssize_t index, void *arg);

/* Visits what the ndarray o (ct_ndarray_check(o) == 1) holds: its base
 * (unless None), then, only for an array of dtype object that owns its
 * buffer, each element that is not NULL (a view's elements are its
 * owner's: the owner holds the references).  Elements along a zero
 * stride are visited once.  Returns 0 or the first non-zero value visit
 * returned.  Runs no Python code and creates no object: numpy's own C
 * getters of `base` and `dtype` are called directly. */
int ct_ndarray_visit(PyObject *o, ct_ndarray_visitproc visit, void *arg);

/* Drops the stack entries above `base` and any pending leaf bytes: the
 * cleanup after a failed push or drain. */
void ct_unwind(ct_sizer *s, size_t base);

/* Pops and sizes everything on the stack above `base`.  Returns the bytes
 * counted, or -1 with an exception set (the stack is then unwound to base). */
Py_ssize_t ct_drain(ct_sizer *s, size_t base);

#endif
