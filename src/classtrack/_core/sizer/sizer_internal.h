/* sizer_internal.h - declarations shared by the sizer's files (sizer*.c)
 * only; not part of the engine's interface (what the heap graph needs,
 * ct_flat_size and the ndarray referents, is in sizer.h). */
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

/* Drops the stack entries above `base` and any pending leaf bytes: the
 * cleanup after a failed push or drain. */
void ct_unwind(ct_sizer *s, size_t base);

/* Pops and sizes everything on the stack above `base`.  Returns the bytes
 * counted, or -1 with an exception set (the stack is then unwound to base). */
Py_ssize_t ct_drain(ct_sizer *s, size_t base);

#endif
