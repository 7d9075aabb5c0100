/* compat.h - the few C-API names missing from the oldest supported
 * CPython (3.9), and small C-API helpers every file may use. */
#ifndef CLASSTRACK_COMPAT_H
#define CLASSTRACK_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *
Py_NewRef(PyObject *o)
{
    Py_INCREF(o);
    return o;
}
#endif

/* getattr with an interned name.  PyObject_GetAttrString makes a new str
 * each call, which CPython's type method cache then keeps alive: a slow
 * growth the leak checks see.  The interned name is the one str.
 * New reference, or NULL with an exception set. */
static inline PyObject *
ct_getattr(PyObject *obj, const char *name)
{
    PyObject *key = PyUnicode_InternFromString(name);
    if (key == NULL) {
        return NULL;
    }
    PyObject *v = PyObject_GetAttr(obj, key);
    Py_DECREF(key);
    return v;
}

#endif
