/* dump_snapsecs.c - the sections that add to a snapshot already read
 * (dumpfmt.h): RETAINED (1.1), COUNTED and SNAPFLAGS (1.2).  Each names
 * its snapshot by number; in a streamed file it must be one of the
 * current frame, so that dropping an incomplete frame drops it too.
 */
#include "base/modobjs.h"
#include "base/rows.h"
#include "dump/dumpfmt.h"
#include "dump/dump_loaded.h"
#include "tracker/entries.h"

/* Snapshot k's row with fields [field, field + n) set to values (which
 * it steals, NULL-safe: an earlier failure passes through).  0 or -1. */
static int
set_row_fields(ct_loaded *L, Py_ssize_t k, Py_ssize_t field, Py_ssize_t n,
               PyObject **values)
{
    PyObject *row = PyList_GET_ITEM(L->snaps, k);
    PyObject *t = PyTuple_New(CT_SNAPSHOT_FIELDS);
    int ok = t != NULL;
    for (Py_ssize_t j = 0; j < n; j++) {
        ok = ok && values[j] != NULL;
    }
    if (!ok) {
        Py_XDECREF(t);
        for (Py_ssize_t j = 0; j < n; j++) {
            Py_XDECREF(values[j]);
        }
        return -1;
    }
    for (Py_ssize_t j = 0; j < CT_SNAPSHOT_FIELDS; j++) {
        PyObject *v = j >= field && j < field + n ? values[j - field]
                                                  : Py_NewRef(PyTuple_GET_ITEM(row, j));
        PyTuple_SET_ITEM(t, j, v);
    }
    PyObject *full = ct_row_from_tuple(ct_modobjs_of(L->module)->snapshot_row_type, t);
    return full == NULL ? -1 : PyList_SetItem(L->snaps, k, full);   /* steals full */
}

/* The snapshot a section of a snapshot names (RETAINED, COUNTED,
 * SNAPFLAGS): one already read, and in a streamed file one of the
 * current frame (so that dropping an incomplete frame drops it). */
static int
rd_snapshot_ref(ct_reader *r, ct_loaded *L, uint64_t *k, const char *what)
{
    if (ct_rd_index(r, (uint64_t)PyList_GET_SIZE(L->snaps), k, what) < 0) {
        return -1;
    }
    if (L->streamed && (Py_ssize_t)*k < L->frame_first_snap) {
        return ct_rd_fail(r, "%s of an earlier frame", what);
    }
    return 0;
}

/* SNAPFLAGS (1.2): flags of one snapshot already read; bit 0: a full
 * garbage collection ran right before it (field 16, collected). */
int
ct_rd_snapflags(ct_reader *r, ct_loaded *L)
{
    uint64_t k, flags;
    if (rd_snapshot_ref(r, L, &k, "snapshot flags' snapshot") < 0
        || ct_rd_varint(r, &flags) < 0) {
        return -1;
    }
    if (flags & ~(uint64_t)CT_SNAPFLAG_COLLECTED) {
        return ct_rd_fail(r, "unknown snapshot flags 0x%llx", (unsigned long long)flags);
    }
    PyObject *row = PyList_GET_ITEM(L->snaps, (Py_ssize_t)k);
    if (PyTuple_GET_ITEM(row, 16) != Py_False) {
        return ct_rd_fail(r, "second flags for snapshot %llu", (unsigned long long)k);
    }
    PyObject *v = PyBool_FromLong((long)(flags & CT_SNAPFLAG_COLLECTED));
    return set_row_fields(L, (Py_ssize_t)k, 16, 1, &v);
}

/* RETAINED (1.1): the retained sizes of one snapshot already read. */
int
ct_rd_retained(ct_reader *r, ct_loaded *L)
{
    uint64_t k, shared, n;
    if (rd_snapshot_ref(r, L, &k, "retained sizes' snapshot") < 0
        || ct_rd_varint(r, &shared) < 0 || ct_rd_count(r, &n, 1, "retained size") < 0) {
        return -1;
    }
    PyObject *row = PyList_GET_ITEM(L->snaps, (Py_ssize_t)k);
    if (PyTuple_GET_ITEM(row, 13) != Py_None) {
        return ct_rd_fail(r, "second retained sizes for snapshot %llu", (unsigned long long)k);
    }
    uint64_t entries = (uint64_t)((ct_entries *)PyTuple_GET_ITEM(row, 9))->n;
    if (n != entries) {
        return ct_rd_fail(r, "%llu retained sizes for a snapshot of %llu entries",
                    (unsigned long long)n, (unsigned long long)entries);
    }
    ct_col col = {0};
    int rc = 0;
    for (uint64_t e = 0; rc == 0 && e < n; e++) {
        uint64_t v;
        rc = ct_rd_varint(r, &v) < 0 || ct_col_put(&col, &v, 8) < 0 ? -1 : 0;
    }
    PyObject *bytes = rc == 0 ? ct_col_bytes(&col) : NULL;
    PyMem_Free(col.data);
    if (bytes == NULL) {
        return -1;
    }
    PyObject *values[2] = {bytes, shared ? PyLong_FromUnsignedLongLong(shared - 1)
                                         : Py_NewRef(Py_None)};
    return set_row_fields(L, (Py_ssize_t)k, 13, 2, values);
}

/* COUNTED (0x8B): the count-only classes of one snapshot already read,
 * as the tuple of (class, instances, size) of its row's field 15.
 * `start`: where the section begins, for the errors about its place. */
int
ct_rd_counted(ct_reader *r, ct_loaded *L, const unsigned char *start)
{
    uint64_t k, n;
    if (L->stage < CT_TAG_SNAPSHOT) {
        r->p = start;
        return ct_rd_fail(r, "section 0x%02x out of order", CT_TAG_COUNTED);
    }
    if (rd_snapshot_ref(r, L, &k, "counted classes' snapshot") < 0
        || ct_rd_count(r, &n, 3, "counted class") < 0) {
        return -1;
    }
    PyObject *row = PyList_GET_ITEM(L->snaps, (Py_ssize_t)k);
    if (PyTuple_GET_ITEM(row, 15) != Py_None) {
        return ct_rd_fail(r, "second counted classes for snapshot %llu", (unsigned long long)k);
    }
    /* grown one by one: n is bounded by the section's length only */
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return -1;
    }
    for (uint64_t j = 0; j < n; j++) {
        PyObject *cls = NULL, *item = NULL;
        uint64_t count = 0, size = 0;
        if (ct_rd_string_ref(r, L, 0, &cls) < 0 || ct_rd_varint(r, &count) < 0
            || ct_rd_varint(r, &size) < 0
            || (item = Py_BuildValue("(OKK)", cls, (unsigned long long)count,
                                     (unsigned long long)size)) == NULL
            || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return -1;
        }
        Py_DECREF(item);
    }
    PyObject *counted = PyList_AsTuple(list);
    Py_DECREF(list);
    return set_row_fields(L, (Py_ssize_t)k, 15, 1, &counted);
}
