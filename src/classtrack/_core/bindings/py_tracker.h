/* bindings/py_tracker.h - what the files of the Tracker binding
 * (py_tracker.c, py_tracker_export.c) share. */
#ifndef CLASSTRACK_PY_TRACKER_H
#define CLASSTRACK_PY_TRACKER_H

#include "bindings/py_state.h"
#include "tracker/tracker.h"

/* Tracker.export() (py_tracker_export.c): new reference, or NULL with
 * an exception. */
PyObject *ct_py_tracker_export(ct_tracker *t, PyObject *args, PyObject *kwds);
/* Tracker.new_deaths(written, upto) (py_tracker_export.c). */
PyObject *ct_py_tracker_new_deaths(ct_tracker *t, PyObject *args);
PyObject *ct_py_tracker_forget(ct_tracker *t, PyObject *args);
/* Tracker.last_by_name() (py_tracker_export.c). */
PyObject *ct_py_tracker_last_by_name(ct_tracker *t, PyObject *ignored);
/* Tracker.track_repr_changes(hand_off=False) (py_tracker_export.c). */
PyObject *ct_py_tracker_track_repr_changes(ct_tracker *t, PyObject *args, PyObject *kwds);

/* The row types of the Tracker's results (py_tracker.c). */
typedef enum {
    CT_ROW_RECORD,          /* classtrack._core.Record: Tracker.record(i) */
    CT_ROW_EXPORT,          /* classtrack._core.TrackerExport: Tracker.export() */
    CT_ROW_EXPORTED_SNAPSHOT,   /* classtrack._core.ExportedSnapshot */
    CT_ROW_RECORD_SIZE,     /* classtrack._core.RecordSize: Tracker.record_sizes(i) */
    CT_ROW_SNAPSHOT_ENTRY,  /* classtrack._core.SnapshotEntry: Tracker.snapshot_entries(k) */
    CT_ROW_SURVIVOR,        /* classtrack._core.Survivor: Tracker.survivors() */
    CT_PY_ROW_KINDS
} ct_py_row_kind;

/* The row type of that kind, borrowed, or NULL with RuntimeError once the
 * module state was cleared. */
PyTypeObject *ct_py_tracker_row_type(ct_tracker *t, ct_py_row_kind kind);

/* A row of that kind with the items of `tuple` (consumed, may be NULL;
 * see base/rows.h).  New reference, or NULL with an exception
 * (RuntimeError once the module state was cleared). */
PyObject *ct_py_tracker_row(ct_tracker *t, ct_py_row_kind kind, PyObject *tuple);

#endif
