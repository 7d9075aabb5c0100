/* bindings/py_tracker_rows.c - the named rows the Tracker returns
 * (base/rows.h): Record, TrackerExport, ExportedSnapshot, RecordSize,
 * SnapshotEntry, Survivor.  Struct sequence types, made per module and
 * kept in the module state by ct_py_row_kind; their fields are described
 * here, in the order the Tracker's methods fill them. */
#include "bindings/py_tracker.h"
#include "base/rows.h"

static PyStructSequence_Field record_fields[] = {
    {"id", "int: id(obj), kept after its death"},
    {"name", "str: the tracking name"},
    {"birth", "float: when it was tracked (seconds since classtrack was imported)"},
    {"death", "float, or None while alive"},
    {"trace_no", "int: creation trace number (0 none, else 1 + index in traces)"},
    {"resolution", "int: resolution level, 0 .. MAX_RESOLUTION_LEVEL"},
    {"obj", "the object while alive and reachable, else None"},
    {"cls", "its class"},
    {"repr", "str: its latest custom repr, or None"},
    {NULL, NULL},
};

static PyStructSequence_Desc record_desc = {
    "classtrack._core.Record", "One tracked object's record (Tracker.record).",
    record_fields, 9,
};

static PyStructSequence_Field export_fields[] = {
    {"names", "list of str: tracking names, by name number"},
    {"classes", "list of str: \"module.qualname\", by class number - 1"},
    {"rec_id", "bytes, native uint64 per record"},
    {"rec_name", "bytes, native uint32 per record"},
    {"rec_class", "bytes, native uint32 per record (0 unknown)"},
    {"rec_birth", "bytes, native double per record"},
    {"rec_death", "bytes, native double per record (0 alive)"},
    {"rec_trace", "bytes, native uint32 per record (0 none)"},
    {"reprs", "dict record index -> str"},
    {"traces", "list of raw traces: tuples of (code, line)"},
    {"snapshots", "list of ExportedSnapshot"},
    {NULL, NULL},
};

static PyStructSequence_Desc export_desc = {
    "classtrack._core.TrackerExport",
    "A live tracker's records and snapshots as columns (Tracker.export).",
    export_fields, 11,
};

static PyStructSequence_Field exported_snapshot_fields[] = {
    {"entries", "Entries: the snapshot's records and sizes"},
    {"trees", "dict record index -> size tree"},
    {NULL, NULL},
};

static PyStructSequence_Desc exported_snapshot_desc = {
    "classtrack._core.ExportedSnapshot", "One snapshot of a TrackerExport.",
    exported_snapshot_fields, 2,
};

static PyStructSequence_Field record_size_fields[] = {
    {"timestamp", "float: the snapshot's time"},
    {"size", "int: the object's size then, referents included"},
    {"flat", "int: its flat size then"},
    {"tree", "its size tree then, or None"},
    {NULL, NULL},
};

static PyStructSequence_Desc record_size_desc = {
    "classtrack._core.RecordSize", "One object's sizes at one snapshot (Tracker.record_sizes).",
    record_size_fields, 4,
};

static PyStructSequence_Field snapshot_entry_fields[] = {
    {"index", "int: the record"},
    {"size", "int: its size, referents included"},
    {"flat", "int: its flat size"},
    {"tree", "its size tree, or None"},
    {NULL, NULL},
};

static PyStructSequence_Desc snapshot_entry_desc = {
    "classtrack._core.SnapshotEntry", "One object of a snapshot (Tracker.snapshot_entries).",
    snapshot_entry_fields, 4,
};

static PyStructSequence_Field survivor_fields[] = {
    {"index", "int: the record"},
    {"obj", "the object, alive"},
    {"cls", "its class"},
    {NULL, NULL},
};

static PyStructSequence_Desc survivor_desc = {
    "classtrack._core.Survivor", "A tracked object still alive (Tracker.survivors).",
    survivor_fields, 3,
};

int
ct_tracker_rows_register(PyObject *module, ct_state *st)
{
    static PyStructSequence_Desc *const descs[CT_PY_ROW_KINDS] = {
        [CT_ROW_RECORD] = &record_desc,
        [CT_ROW_EXPORT] = &export_desc,
        [CT_ROW_EXPORTED_SNAPSHOT] = &exported_snapshot_desc,
        [CT_ROW_RECORD_SIZE] = &record_size_desc,
        [CT_ROW_SNAPSHOT_ENTRY] = &snapshot_entry_desc,
        [CT_ROW_SURVIVOR] = &survivor_desc,
    };
    Py_BUILD_ASSERT(sizeof(st->tracker_rows) / sizeof(st->tracker_rows[0]) == CT_PY_ROW_KINDS);
    for (int k = 0; k < CT_PY_ROW_KINDS; k++) {
        if (ct_row_type_add(module, descs[k], &st->tracker_rows[k]) < 0) {
            return -1;
        }
    }
    return 0;
}

PyTypeObject *
ct_py_tracker_row_type(ct_tracker *t, ct_py_row_kind kind)
{
    /* Tracker is no base type: its type is the module's */
    ct_state *st = (ct_state *)PyType_GetModuleState(Py_TYPE(t));
    PyTypeObject *type = st != NULL ? st->tracker_rows[kind] : NULL;
    if (type == NULL && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_RuntimeError, "classtrack._core was cleared");
    }
    return type;
}

PyObject *
ct_py_tracker_row(ct_tracker *t, ct_py_row_kind kind, PyObject *tuple)
{
    if (tuple == NULL) {
        return NULL;
    }
    PyTypeObject *type = ct_py_tracker_row_type(t, kind);
    if (type == NULL) {
        Py_DECREF(tuple);
        return NULL;
    }
    return ct_row_from_tuple(type, tuple);
}
