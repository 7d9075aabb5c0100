/* compat.h - the one place for C-API differences between CPython versions.
 *
 * Each entry names what it replaces and from which version the public name
 * exists.  Object *layouts* (struct mirrors, offsets) are not here: they
 * live in layout.h/layout.c behind the CT_LAYOUT_VERSION gate.
 *
 *   ours                         3.13+ (public)                  older
 *   Py_NewRef                    Py_NewRef (3.10)                Py_INCREF + return
 *   ct_thread_state_unchecked    PyThreadState_GetUnchecked      _PyThreadState_UncheckedGet
 *                                (3.13; the old name is            (3.12; deprecated 3.13,
 *                                 deprecated in 3.14)               warns in 3.14+)
 *   ct_is_immortal               _Py_IsImmortal (inline, 3.12+;  no immortal objects
 *                                PyUnstable_IsImmortal, 3.14, is   before 3.12
 *                                the same test as a call, too
 *                                slow for the sizer's hot path)
 *   _PyDict_SizeOf               exported, declared only in an   declared in dictobject.h
 *                                internal header from 3.13         (3.9-3.12)
 *   ct_any_dict_check            PyAnyDict_Check (3.15: dict or  PyDict_Check (no
 *                                frozendict, which is not a        frozendict)
 *                                dict subclass)
 *
 * Not used, because they are gone or going: PyWeakref_GetObject and
 * PyWeakref_GET_OBJECT (deprecated 3.13, removed 3.15; classtrack reads no
 * weak reference's target), _PyObject_GetDictPtr on a managed dict (it
 * materialises the dict; layout.c reads the managed slot instead).
 *
 * Free-threaded builds (Py_GIL_DISABLED, 3.13t+) are refused at compile
 * time: the object header, reference counts and allocator differ, and the
 * death watch's allocator hook was not written for concurrent frees.
 */
#ifndef CLASSTRACK_COMPAT_H
#define CLASSTRACK_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifdef Py_GIL_DISABLED
#error "classtrack does not support free-threaded CPython (built with Py_GIL_DISABLED): its allocator hook and object layouts assume the GIL; use a default (GIL) build"
#endif

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *
Py_NewRef(PyObject *o)
{
    Py_INCREF(o);
    return o;
}
#endif

/* The current thread state or NULL, never failing (borrowed). */
static inline PyThreadState *
ct_thread_state_unchecked(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

/* 1 when o is immortal (its reference count is never changed). */
static inline int
ct_is_immortal(PyObject *o)
{
#if PY_VERSION_HEX >= 0x030C0000
    return _Py_IsImmortal(o);
#else
    (void)o;
    return 0;
#endif
}

#if PY_VERSION_HEX >= 0x030D0000
PyAPI_FUNC(Py_ssize_t) _PyDict_SizeOf(PyDictObject *);
#endif

/* 1 from 3.14, whose interpreter pushes borrowed references on the stack
 * (LOAD_FAST_BORROW): a frame's traverse can report an object its own
 * local holds twice, so a refcount of 1 no longer means one edge. */
#define CT_STACK_BORROWS (PY_VERSION_HEX >= 0x030E0000)

/* 1 for a dict, a dict subclass or (3.15+) a frozendict: the mappings
 * PyDict_Next walks. */
static inline int
ct_any_dict_check(PyObject *o)
{
#ifdef PyAnyDict_Check
    return PyAnyDict_Check(o);
#else
    return PyDict_Check(o);
#endif
}

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

/* Turns the collector's automatic collections off: their previous state
 * (1 on, 0 off), or -1 with an exception.  3.9 has no PyGC_Disable: the
 * gc module's own functions (built-in), the module taken from sys.modules
 * by the C import (no __import__ hook runs; classtrack imports gc). */
static inline int
ct_gc_disable(void)
{
#if PY_VERSION_HEX >= 0x030A0000
    return PyGC_Disable();
#else
    PyObject *gc = PyImport_ImportModuleLevel("gc", NULL, NULL, NULL, 0);
    PyObject *was = gc == NULL ? NULL : PyObject_CallMethod(gc, "isenabled", NULL);
    PyObject *r = was == NULL ? NULL : PyObject_CallMethod(gc, "disable", NULL);
    int on = r == NULL ? -1 : PyObject_IsTrue(was);
    Py_XDECREF(r);
    Py_XDECREF(was);
    Py_XDECREF(gc);
    return on;
#endif
}

/* Turns them back on: 0, or -1 with an exception. */
static inline int
ct_gc_enable(void)
{
#if PY_VERSION_HEX >= 0x030A0000
    PyGC_Enable();
    return 0;
#else
    PyObject *gc = PyImport_ImportModuleLevel("gc", NULL, NULL, NULL, 0);
    PyObject *r = gc == NULL ? NULL : PyObject_CallMethod(gc, "enable", NULL);
    Py_XDECREF(gc);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
#endif
}

/* module.attr when the module is imported already (nothing is imported
 * here): a new reference, or NULL.  Read from the module's dict, so that
 * no Python code runs (no module __getattr__, no lazy-module proxy: it
 * may be called while an object is being made).  Leaves any exception in
 * flight as it found it, and sets none. */
static inline PyObject *
ct_imported_attr(const char *module, const char *attr)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
#endif
    PyObject *v = NULL;
    PyObject *m = PyDict_GetItemString(PyImport_GetModuleDict(), module); /* borrowed */
    if (m != NULL && PyModule_CheckExact(m)) {
        PyObject *d = PyModule_GetDict(m);                                  /* borrowed */
        v = d != NULL ? PyDict_GetItemString(d, attr) : NULL;               /* borrowed */
        Py_XINCREF(v);
    }
    PyErr_Clear();
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(et, ev, tb);
#endif
    return v;
}

#endif
