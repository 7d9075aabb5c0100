/* compat.h - the few C-API names missing from the oldest supported
 * CPython (3.9). */
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

#endif
