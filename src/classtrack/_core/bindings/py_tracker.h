/* bindings/py_tracker.h - what the files of the Tracker binding
 * (py_tracker.c, py_tracker_export.c) share. */
#ifndef CLASSTRACK_PY_TRACKER_H
#define CLASSTRACK_PY_TRACKER_H

#include "bindings/py_state.h"
#include "tracker/tracker.h"

/* Tracker.export() (py_tracker_export.c): new reference, or NULL with
 * an exception. */
PyObject *ct_py_tracker_export(ct_tracker *t, PyObject *ignored);

#endif
