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

/* Bytes allocated in front of the object's address: the GC header for GC
 * objects and, from 3.11, the managed dict / weakref words. */
size_t ct_preheader_size(PyObject *o);

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
int ct_is_shared(PyObject *o);

#endif
