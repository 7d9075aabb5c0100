/* bindings/py_state.h - the module state: every Python-level object the extension
 * keeps lives here, never in file-level globals, so the module can be
 * loaded in several interpreters and torn down cleanly. */
#ifndef CLASSTRACK_STATE_H
#define CLASSTRACK_STATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "base/compat.h"
#include "base/modobjs.h"
#include "sizer/sizer.h"
#include "tracker/registry.h"

typedef struct {
    ct_modobjs objs;            /* first: see base/modobjs.h */
    PyTypeObject *sizer_type;   /* strong: classtrack._core.Sizer */
    PyTypeObject *tracker_type; /* strong: classtrack._core.Tracker */
    PyTypeObject *tracker_rows[6];  /* strong: the Tracker's row types, by
                                       ct_py_row_kind (bindings/py_tracker.h) */
    ct_sizer_refs sizer_refs;   /* strong references, see sizer.h */
    ct_registry_types registry_types;   /* strong: TrackRef */
} ct_state;

static inline ct_state *
ct_get_state(PyObject *module)
{
    return (ct_state *)PyModule_GetState(module);
}

/* Registration functions, one per binding file; each adds its types or
 * functions to the module and fills its part of the state.  0 or -1. */
int ct_sizer_type_register(PyObject *module, ct_state *st);
int ct_tracker_type_register(PyObject *module, PyTypeObject **type);
int ct_tracker_rows_register(PyObject *module, ct_state *st);

extern PyMethodDef ct_sizer_functions[];
extern PyMethodDef ct_tracker_functions[];
extern PyMethodDef ct_hook_functions[];
extern PyMethodDef ct_process_functions[];
extern PyMethodDef ct_dump_writer_functions[];
extern PyMethodDef ct_dump_reader_functions[];
extern PyMethodDef ct_aggregate_functions[];
extern PyMethodDef ct_order_functions[];
extern PyMethodDef ct_merge_functions[];
extern PyMethodDef ct_series_functions[];
extern PyMethodDef ct_termwatch_functions[];
extern PyMethodDef ct_census_functions[];   /* py_census.c */

#endif
