/* layout.h - what classtrack knows about CPython's object memory layout.
 *
 * Everything that differs between CPython 3.9 and 3.13 in how an object's
 * memory is laid out lives behind these functions: the pre-header (GC head,
 * managed dict and weakref words), where instance attributes are stored
 * (a separate dict; a values array; values inline in the object), and which
 * objects are shared interpreter-wide.
 *
 * Contract for every function here: it only READS memory.  It never calls
 * Python code, never allocates Python objects, never sets an exception and
 * never creates a __dict__ (reading obj.__dict__ through the C API would
 * materialise one on 3.11+, which is exactly the observer effect classtrack
 * must not have).  See ../../../../shared/CPYTHON-NOTES.md for sources.
 */
#ifndef CLASSTRACK_LAYOUT_H
#define CLASSTRACK_LAYOUT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* sizeof(PyGC_Head): two words in every supported version (3.9-3.13,
 * default and debug builds); the struct itself is internal from 3.9. */
#define CT_GC_HEAD_SIZE (2 * sizeof(void *))

/* PyObject_IS_GC without the function call. */
static inline int
ct_is_gc(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    return PyType_IS_GC(tp) && (tp->tp_is_gc == NULL || tp->tp_is_gc(o));
}

/* Hints the CPU to fetch the instance's separately allocated attribute
 * storage (3.11/3.12 values array), which sizing reads next. */
static inline void
ct_prefetch_attr_storage(PyObject *o)
{
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
    if (Py_TYPE(o)->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
#if PY_VERSION_HEX >= 0x030C0000
        __builtin_prefetch((char *)((uintptr_t *)o)[-3] - 8);
#else
        __builtin_prefetch((char *)((uintptr_t *)o)[-4] - 8);
#endif
    }
#else
    (void)o;
#endif
}

/* Bytes allocated in front of the object's address: the GC header for GC
 * objects and, from 3.11, the managed dict / weakref words. */
size_t ct_preheader_size(PyObject *o);
/* The same for instances of tp, when tp has no tp_is_gc (heap classes). */
size_t ct_type_preheader_size(PyTypeObject *tp);

/* Bytes of the object's body as laid out by its type: tp_basicsize plus
 * tp_itemsize times the item count, and the pre-header.  This is the
 * fallback size when a type's __sizeof__ cannot be trusted. */
size_t ct_layout_size(PyObject *o);

/* Bytes of instance-attribute storage that is neither part of
 * tp_basicsize nor of a dict object: the values array of 3.11/3.12
 * (a separate allocation) or the inline values of 3.13 (inside the object
 * allocation, after tp_basicsize).  0 where attributes live in a dict. */
size_t ct_attr_storage_size(PyObject *o);

/* What dict.__sizeof__ misses for a split-table dict (an instance
 * __dict__ materialised on 3.11/3.12): the prefix bytes of its values
 * array, and the difference between the slots it counts (from the class's
 * current keys) and those allocated.  May be negative; 0 elsewhere. */
Py_ssize_t ct_split_values_correction(PyObject *dict);

/* The instance's existing __dict__, borrowed, or NULL.  Never creates one. */
PyObject *ct_existing_dict(PyObject *o);

/* 1 when the object's type keeps a managed dict whose materialised dict
 * is NOT reported by tp_traverse (3.13 with valid inline values), so the
 * caller has to visit ct_existing_dict() itself. */
int ct_dict_hidden_from_traverse(PyObject *o);

/* Calls cb(name, value, arg) for each attribute kept in values storage
 * (3.11+, no dict materialised), in insertion order; both borrowed.
 * Returns 1 when it iterated values, 0 when the object has no values
 * storage (look at ct_existing_dict instead), or the callback's
 * negative result. */
typedef int (*ct_attr_cb)(PyObject *name, PyObject *value, void *arg);
int ct_visit_attr_values(PyObject *o, ct_attr_cb cb, void *arg);

/* 1 when o is shared interpreter-wide rather than owned by whoever refers
 * to it: None/True/False/Ellipsis/NotImplemented, small ints, interned
 * strings, the cached empty and one-character str/bytes, the empty
 * tuple, and (3.12+) every immortal object. */
static inline int ct_is_shared(PyObject *o);

static inline int
ct_is_shared(PyObject *o)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (_Py_IsImmortal(o)) {
        return 1;
    }
    if (PyUnicode_CheckExact(o)) {
        return PyUnicode_CHECK_INTERNED(o) != 0;
    }
    return 0;
#else
    if (o == Py_None || o == Py_True || o == Py_False || o == Py_Ellipsis
        || o == Py_NotImplemented) {
        return 1;
    }
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyUnicode_Type) {
        if (PyUnicode_CHECK_INTERNED(o)) {
            return 1;
        }
        if (PyUnicode_IS_READY(o)) {
            Py_ssize_t n = PyUnicode_GET_LENGTH(o);
            return n == 0 || (n == 1 && PyUnicode_READ_CHAR(o, 0) < 256);
        }
        return 0;
    }
    if (tp == &PyLong_Type) {
        Py_ssize_t n = Py_SIZE(o);
        if (n == 0) {
            return 1;
        }
        if (n == 1 || n == -1) {
            long v = (long)((PyLongObject *)o)->ob_digit[0] * (long)n;
            return v >= -5 && v <= 256;
        }
        return 0;
    }
    if (tp == &PyBytes_Type) {
        return Py_SIZE(o) <= 1;
    }
    if (tp == &PyTuple_Type) {
        return Py_SIZE(o) == 0;
    }
    return 0;
#endif
}

#endif
