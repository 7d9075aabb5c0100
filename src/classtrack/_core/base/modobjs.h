/* modobjs.h - the module-state objects that engines below the bindings
 * may read: the Entries and BigBuffer types, the dataset's row types, DumpError,
 * io.FileIO.
 *
 * They are the first member of the module state (bindings/py_state.h,
 * ct_state.objs), so a module's state pointer is also a pointer to its
 * ct_modobjs (C guarantees a struct's address is its first member's).
 * The module owns them: each is a strong reference set by module exec
 * and cleared by module clear; readers get them borrowed. */
#ifndef CLASSTRACK_MODOBJS_H
#define CLASSTRACK_MODOBJS_H

#include "base/compat.h"

typedef struct {
    PyTypeObject *entries_type; /* strong: classtrack._core.Entries */
    PyTypeObject *bigbuf_type;  /* strong: classtrack._core.BigBuffer */
    PyTypeObject *dataset_type; /* strong: classtrack._core.Dataset */
    PyTypeObject *snapshot_row_type;    /* strong: classtrack._core.SnapshotRow */
    PyObject *dump_error;       /* strong: classtrack._core.DumpError */
    PyObject *fileio_type;      /* strong: io.FileIO (dump_io.c) */
} ct_modobjs;

/* Makes a heap type from `spec` (bases NULL or a tuple) and adds it to
 * `module` as `name`: a new reference for the caller (the module holds
 * another), or NULL with an exception. */
static inline PyTypeObject *
ct_add_type(PyObject *module, PyType_Spec *spec, PyObject *bases, const char *name)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, bases);
    if (type == NULL) {
        return NULL;
    }
    Py_INCREF(type);
    if (PyModule_AddObject(module, name, type) < 0) {
        Py_DECREF(type);
        Py_DECREF(type);
        return NULL;
    }
    return (PyTypeObject *)type;
}

/* The shared objects of `module` (classtrack._core), borrowed. */
static inline ct_modobjs *
ct_modobjs_of(PyObject *module)
{
    return (ct_modobjs *)PyModule_GetState(module);
}

#endif
