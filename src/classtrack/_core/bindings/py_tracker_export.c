/* bindings/py_tracker_export.c - Tracker.export(): a live tracker's
 * records and snapshots as the columnar dataset Stats and the dump writer
 * work on (see dump/dumpfmt.h).  No Python object per record: the record
 * columns are BigBuffers filled in place, the snapshots' Entries are shared.
 * Class lookups may run Python code (a __module__ descriptor), so the
 * tracker is re-checked after them and guarded (snapshotting) while the
 * snapshots are read. */
#include "bindings/py_tracker.h"
#include "tracker/deathwatch.h"
#include "tracker/entries.h"
#include "bindings/py_state.h"
#include "base/bigbuf.h"

static Py_ssize_t class_number_held(PyObject *cls, PyObject *class_index,
                                    PyObject *classes);

/* Class index (1-based) of a type in the export's class table. */
static Py_ssize_t
class_number(PyObject *cls, PyObject *class_index, PyObject *classes)
{
    if (cls == NULL || cls == Py_None || !PyType_Check(cls)) {
        return 0;
    }
    Py_INCREF(cls);     /* __module__ may be a descriptor running code */
    Py_ssize_t res = class_number_held(cls, class_index, classes);
    Py_DECREF(cls);
    return res;
}

static Py_ssize_t
class_number_held(PyObject *cls, PyObject *class_index, PyObject *classes)
{
    PyObject *num = PyDict_GetItemWithError(class_index, cls);
    if (num != NULL) {
        return PyLong_AsSsize_t(num);
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    PyObject *mod = ct_getattr(cls, "__module__");
    PyObject *qual = mod ? ct_getattr(cls, "__qualname__") : NULL;
    PyObject *full = NULL;
    if (qual != NULL) {
        full = PyUnicode_Check(mod) && PyUnicode_Check(qual)
                   ? PyUnicode_FromFormat("%U.%U", mod, qual)
                   : PyUnicode_FromString(((PyTypeObject *)cls)->tp_name);
    }
    Py_XDECREF(mod);
    Py_XDECREF(qual);
    if (full == NULL) {
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(classes) + 1;
    num = PyLong_FromSsize_t(n);
    int rc = (num == NULL || PyList_Append(classes, full) < 0
              || PyDict_SetItem(class_index, cls, num) < 0) ? -1 : 0;
    Py_XDECREF(num);
    Py_DECREF(full);
    return rc < 0 ? -1 : n;
}

/* The class number of records start..n into cls[0..n-start): its name's
 * first class, or its entry in type_overrides.  Class lookups may run Python
 * code (a __module__ descriptor), which may clear the tracker: checked
 * after each.  0 or -1. */
static int
export_classes(ct_tracker *t, size_t start, size_t n, const uint32_t *names, uint32_t *cls,
               PyObject *class_index, PyObject *classes)
{
    Py_ssize_t nn = PyList_GET_SIZE(t->names);
    Py_ssize_t *by_name = PyMem_Malloc(((size_t)nn + 1) * sizeof(Py_ssize_t));
    PyObject *overrides = NULL;
    int rc = -1;
    if (by_name == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < nn; k++) {
        by_name[k] = -1;
    }
    for (size_t i = 0; i < n - start; i++) {
        uint32_t name = names[i];
        if ((Py_ssize_t)name >= nn || name >= (size_t)PyList_GET_SIZE(t->name_types)) {
            cls[i] = 0;
            continue;
        }
        if (by_name[name] < 0) {
            PyObject *c = Py_NewRef(PyList_GET_ITEM(t->name_types, name));
            by_name[name] = class_number(c, class_index, classes);
            Py_DECREF(c);
            if (by_name[name] < 0) {
                goto done;
            }
            if (n > t->reg.len) {
                PyErr_SetString(PyExc_RuntimeError, "tracker cleared during export");
                goto done;
            }
        }
        cls[i] = (uint32_t)by_name[name];
    }
    overrides = PyDict_Copy(t->type_overrides);     /* class_number may change it */
    if (overrides == NULL) {
        goto done;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *c;
    while (PyDict_Next(overrides, &pos, &key, &c)) {
        size_t i = PyLong_AsSize_t(key);
        if (i == (size_t)-1 && PyErr_Occurred()) {
            goto done;
        }
        if (i >= n || i < start) {
            continue;
        }
        Py_ssize_t cn = class_number(c, class_index, classes);
        if (cn < 0) {
            goto done;
        }
        cls[i - start] = (uint32_t)cn;
    }
    rc = 0;
done:
    PyMem_Free(by_name);
    Py_XDECREF(overrides);
    return rc;
}

/* The reprs that changed since the last call, as a dict; forgets them.
 * Handed off, these are all the texts the engine holds: it lets them go. */
static PyObject *
changed_reprs_of(ct_tracker *t)
{
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    if (t->reprs_handed_off) {
        PyObject *pending = t->reprs;
        t->reprs = out;
        return pending;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *none;
    while (PyDict_Next(t->reprs_changed, &pos, &key, &none)) {
        PyObject *r = PyDict_GetItemWithError(t->reprs, key);
        if ((r == NULL && PyErr_Occurred()) || (r != NULL && PyDict_SetItem(out, key, r) < 0)) {
            Py_DECREF(out);
            return NULL;
        }
    }
    PyDict_Clear(t->reprs_changed);
    return out;
}

/* export() -> TrackerExport (names, classes, rec_id, rec_name, rec_class,
 *              rec_birth, rec_death, rec_trace, reprs, raw traces,
 *              [ExportedSnapshot (Entries, trees) per snapshot]): the columnar data Stats
 * and the dump writer work on (see dumpfmt.h).  Costs a pass over the
 * records, plus the `trees` and `type_overrides` dicts once each: no
 * Python object per record, and the snapshots' Entries are shared, not
 * copied (they are immutable). */
PyObject *
ct_py_tracker_export(ct_tracker *t, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"rec_start", "snap_start", "class_index", "classes",
                             "changed_reprs", NULL};
    Py_ssize_t rec_start = 0, snap_start = 0;
    PyObject *given_index = NULL, *given_classes = NULL;
    int changed_reprs = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|nnO!O!p:export", kwlist, &rec_start,
                                     &snap_start, &PyDict_Type, &given_index,
                                     &PyList_Type, &given_classes, &changed_reprs)) {
        return NULL;
    }
    if (changed_reprs && t->reprs_changed == NULL && !t->reprs_handed_off) {
        PyErr_SetString(PyExc_ValueError, "export: changed_reprs needs track_repr_changes()");
        return NULL;
    }
    if (!changed_reprs && t->reprs_handed_off) {
        PyErr_SetString(PyExc_RuntimeError, "export: the repr texts were handed off to the "
                        "tracker's dump stream (read the dump)");
        return NULL;
    }
    if ((given_index == NULL) != (given_classes == NULL)) {
        PyErr_SetString(PyExc_TypeError, "export: class_index and classes go together");
        return NULL;
    }
    if (ct_deathwatch_check() < 0) {
        return NULL;
    }
    size_t n = t->reg.len;
    if (rec_start < 0 || snap_start < 0 || (size_t)rec_start > n
        || (size_t)snap_start > t->nsnaps) {
        PyErr_SetString(PyExc_ValueError, "export: the tracker has fewer records or "
                        "snapshots than asked to start from (cleared?)");
        return NULL;
    }
    if (t->reg.forgotten != 0 && (size_t)rec_start < t->reg.forgot_below) {
        PyErr_Format(PyExc_RuntimeError, "export: records below %zu were written to the "
                     "tracker's dump stream and forgotten (read the dump)",
                     t->reg.forgot_below);
        return NULL;
    }
    size_t start = (size_t)rec_start, sstart = (size_t)snap_start;
    int guard = 0, guarded = 0;
    PyObject *result = NULL;
    PyObject *classes = given_classes ? Py_NewRef(given_classes) : PyList_New(0);
    PyObject *class_index = given_index ? Py_NewRef(given_index) : PyDict_New();
    PyObject *snaps = NULL, *trees = NULL, *empty = NULL;
    PyObject *reprs = changed_reprs ? changed_reprs_of(t) : PyDict_Copy(t->reprs);
    /* the record columns are made as the BigBuffers they are returned in
     * (mapped, not carved from the program's malloc heap: base/bigbuf.h),
     * filled in place */
    PyTypeObject *bigbuf = ((ct_state *)PyType_GetModuleState(Py_TYPE(t)))->objs.bigbuf_type;
    PyObject *col[6] = {NULL};
    void *data[6] = {NULL};
    static const size_t width[6] = {8, 4, 4, 8, 8, 4};
    if (!classes || !class_index || !reprs) {
        goto done;
    }
    for (int c = 0; c < 6; c++) {
        col[c] = ct_bigbuf_new(bigbuf, (n - start) * width[c], &data[c]);
        if (col[c] == NULL) {
            goto done;
        }
    }
    uint64_t *ids = data[0];
    uint32_t *names = data[1];
    uint32_t *cls = data[2];
    double *births = data[3];
    double *deaths = data[4];
    uint32_t *traces = data[5];
    for (size_t i = start; i < n; i++) {
        ct_record *rec = ct_registry_record(&t->reg, i);
        ids[i - start] = ct_rec_id(rec);
        names[i - start] = ct_rec_name(rec);
        births[i - start] = rec->birth;
        deaths[i - start] = ct_registry_death(&t->reg, i);
        traces[i - start] = rec->trace;
    }
    if (export_classes(t, start, n, names, cls, class_index, classes) < 0) {
        goto done;
    }
    /* class lookups ran Python code: what is read below is read as it is
     * now, and the record count must not have shrunk under the columns */
    if (n > t->reg.len) {
        PyErr_SetString(PyExc_RuntimeError, "tracker cleared during export");
        goto done;
    }
    /* From here on only a collection that allocations trigger could run
     * Python code (finalizers); snapshotting keeps such code from
     * clearing the records and snapshots being read. */
    guard = t->snapshotting;
    t->snapshotting = 1;
    guarded = 1;
    size_t nsnaps = t->nsnaps;
    if (sstart > nsnaps) {
        PyErr_SetString(PyExc_RuntimeError, "tracker cleared during export");
        goto done;
    }
    /* a snapshot taken meanwhile (by code a class lookup ran) names
     * records the columns above do not hold */
    for (size_t k = sstart; k < nsnaps; k++) {
        if (t->snaps[k].entries != NULL && t->snaps[k].entries->nrec > n) {
            PyErr_SetString(PyExc_RuntimeError, "tracker changed during export "
                            "(a class's __module__ took a snapshot); export again");
            goto done;
        }
    }
    snaps = PyList_New((Py_ssize_t)(nsnaps - sstart));
    trees = PyList_New((Py_ssize_t)(nsnaps - sstart));
    if (snaps == NULL || trees == NULL) {
        goto done;
    }
    for (size_t k = sstart; k < nsnaps; k++) {
        PyObject *d = PyDict_New();
        if (d == NULL) {
            goto done;
        }
        PyList_SET_ITEM(trees, (Py_ssize_t)(k - sstart), d);
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(t->trees, &pos, &key, &value)) {
        uint64_t kv = PyLong_AsUnsignedLongLong(key);
        if (kv == (uint64_t)-1 && PyErr_Occurred()) {
            goto done;
        }
        size_t k = (size_t)(kv >> 32);
        if (k >= nsnaps || k < sstart
            || ct_snapshot_position(&t->snaps[k], kv & 0xffffffffu) < 0) {
            continue;
        }
        PyObject *idx_key = PyLong_FromUnsignedLongLong(kv & 0xffffffffu);
        int rc = idx_key == NULL ? -1
                 : PyDict_SetItem(PyList_GET_ITEM(trees, (Py_ssize_t)(k - sstart)), idx_key,
                                  value);
        Py_XDECREF(idx_key);
        if (rc < 0) {
            goto done;
        }
    }
    for (size_t k = sstart; k < nsnaps; k++) {
        PyObject *entries = (PyObject *)t->snaps[k].entries;
        if (entries == NULL) {      /* cleared records: no entries */
            if (empty == NULL) {
                empty = ct_entries_new(t->entries_type, 0, 0, NULL, NULL, NULL);
                if (empty == NULL) {
                    goto done;
                }
            }
            entries = empty;
        }
        PyObject *item = ct_py_tracker_row(
            t, CT_ROW_EXPORTED_SNAPSHOT,
            PyTuple_Pack(2, entries, PyList_GET_ITEM(trees, (Py_ssize_t)(k - sstart))));
        if (item == NULL) {
            goto done;
        }
        PyList_SET_ITEM(snaps, (Py_ssize_t)(k - sstart), item);
    }
    result = ct_py_tracker_row(
        t, CT_ROW_EXPORT,
        Py_BuildValue("(NOOOOOOOOOO)", PyList_GetSlice(t->names, 0, PY_SSIZE_T_MAX),
                      classes, col[0], col[1], col[2], col[3], col[4], col[5], reprs,
                      t->traces, snaps));
done:
    if (guarded) {
        t->snapshotting = guard;
    }
    for (int c = 0; c < 6; c++) {
        Py_XDECREF(col[c]);
    }
    Py_XDECREF(classes);
    Py_XDECREF(class_index);
    Py_XDECREF(snaps);
    Py_XDECREF(reprs);
    Py_XDECREF(trees);
    Py_XDECREF(empty);
    return result;
}

/* new_deaths(written, upto) -> (index uint32 bytes, death double bytes):
 * the records below `upto` that have died and whose byte in `written`
 * (a bytearray, one byte per record, at least `upto` long) is 0; their
 * bytes are set to 1.  A dump stream's DEATHS (dumpfmt.h): one pass in
 * C over the records, no Python object per record. */
PyObject *
ct_py_tracker_new_deaths(ct_tracker *t, PyObject *args)
{
    PyObject *written;
    Py_ssize_t upto;
    if (!PyArg_ParseTuple(args, "O!n:new_deaths", &PyByteArray_Type, &written, &upto)) {
        return NULL;
    }
    if (ct_deathwatch_check() < 0) {
        return NULL;
    }
    if (upto < 0 || (size_t)upto > t->reg.len || PyByteArray_GET_SIZE(written) < upto) {
        PyErr_SetString(PyExc_ValueError, "new_deaths: upto out of range");
        return NULL;
    }
    char *mark = PyByteArray_AS_STRING(written);
    size_t count = 0;
    for (Py_ssize_t i = 0; i < upto; i++) {
        if (!mark[i] && ct_registry_death(&t->reg, (size_t)i) != 0.0) {
            count++;
        }
    }
    PyTypeObject *bigbuf = ((ct_state *)PyType_GetModuleState(Py_TYPE(t)))->objs.bigbuf_type;
    void *ip_data = NULL, *wp_data = NULL;
    PyObject *idx = ct_bigbuf_new(bigbuf, count * 4, &ip_data);
    PyObject *when = idx ? ct_bigbuf_new(bigbuf, count * 8, &wp_data) : NULL;
    if (idx == NULL || when == NULL) {
        Py_XDECREF(idx);
        Py_XDECREF(when);
        return NULL;
    }
    uint32_t *ip = ip_data;
    double *wp = wp_data;
    size_t k = 0;
    for (Py_ssize_t i = 0; i < upto && k < count; i++) {
        double d;
        if (!mark[i] && (d = ct_registry_death(&t->reg, (size_t)i)) != 0.0) {
            ip[k] = (uint32_t)i;
            wp[k] = d;
            mark[i] = 1;
            k++;
        }
    }
    return Py_BuildValue("(NN)", idx, when);
}

/* ct_idxmap_retain's test: the record's object lives. */
static int
is_alive(void *t, uint32_t idx)
{
    return ct_registry_object(&((ct_tracker *)t)->reg, idx) != NULL;
}

/* Deletes the keys (record numbers) of forgotten records from a table
 * keyed by record number (reprs, class overrides).  0 or -1. */
static int
drop_forgotten(ct_tracker *t, PyObject *table)
{
    PyObject *gone = PyList_New(0), *key, *value;
    Py_ssize_t pos = 0;
    int rc = gone != NULL ? 0 : -1;
    while (rc == 0 && PyDict_Next(table, &pos, &key, &value)) {
        Py_ssize_t i = PyLong_AsSsize_t(key);
        if (i == -1 && PyErr_Occurred()) {
            rc = -1;
        }
        else if (i >= 0 && (size_t)i < t->reg.len
                 && ct_rec_forgotten(ct_registry_record(&t->reg, (size_t)i))) {
            rc = PyList_Append(gone, key);
        }
    }
    for (Py_ssize_t k = 0; rc == 0 && gone != NULL && k < PyList_GET_SIZE(gone); k++) {
        rc = PyDict_DelItem(table, PyList_GET_ITEM(gone, k));
    }
    Py_XDECREF(gone);
    return rc;
}

/* forget(written, before) -> records forgotten now: ct_registry_forget
 * over the records `written` (new_deaths' bytearray) covers, then their
 * reprs and class overrides are dropped too. */
PyObject *
ct_py_tracker_forget(ct_tracker *t, PyObject *args)
{
    PyObject *written;
    double before;
    if (!PyArg_ParseTuple(args, "O!d:forget", &PyByteArray_Type, &written, &before)) {
        return NULL;
    }
    if (ct_deathwatch_check() < 0) {
        return NULL;
    }
    if (t->snapshotting) {
        PyErr_SetString(PyExc_RuntimeError, "forget() called during a snapshot");
        return NULL;
    }
    size_t upto = (size_t)PyByteArray_GET_SIZE(written);
    Py_ssize_t n = ct_registry_forget(&t->reg, (const unsigned char *)PyByteArray_AS_STRING(written),
                                      upto < t->reg.len ? upto : t->reg.len, before);
    if (n < 0) {
        return PyErr_NoMemory();
    }
    if (n > 0 && (drop_forgotten(t, t->reprs) < 0 || drop_forgotten(t, t->type_overrides) < 0)) {
        return NULL;
    }
    /* the dead are never asked for a repr again */
    if (ct_idxmap_retain(&t->repr_digests, is_alive, t) < 0) {
        return PyErr_NoMemory();
    }
    return PyLong_FromSsize_t(n);
}

/* track_repr_changes(hand_off=False): from now on, export(changed_reprs=True)
 * gives only the reprs that changed since its last call (a dump stream's
 * REPRS), not a copy of them all.  hand_off: the caller exported every
 * text already and its stream holds them for good; the engine keeps only
 * their hashes (tracker.h).  Handing off cannot be undone but by
 * clear_records(). */
PyObject *
ct_py_tracker_track_repr_changes(ct_tracker *t, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"hand_off", NULL};
    int hand_off = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|p:track_repr_changes", kwlist,
                                     &hand_off)) {
        return NULL;
    }
    if (t->reprs_handed_off) {
        if (!hand_off) {
            PyErr_SetString(PyExc_RuntimeError, "track_repr_changes: the reprs were "
                            "handed off already (clear_records() starts afresh)");
            return NULL;
        }
        Py_RETURN_NONE;
    }
    if (hand_off) {
        if (t->snapshotting) {
            PyErr_SetString(PyExc_RuntimeError, "track_repr_changes() called during a snapshot");
            return NULL;
        }
        PyObject *fresh = PyDict_New();
        if (fresh == NULL) {
            return NULL;
        }
        Py_ssize_t pos = 0;
        PyObject *key, *text;
        while (PyDict_Next(t->reprs, &pos, &key, &text)) {
            size_t i = PyLong_AsSize_t(key);
            Py_hash_t h = PyObject_Hash(text);
            if ((i == (size_t)-1 || h == -1) && PyErr_Occurred()) {
                ct_idxmap_clear(&t->repr_digests);
                Py_DECREF(fresh);
                return NULL;
            }
            if (i < t->reg.len && is_alive(t, (uint32_t)i)
                && ct_idxmap_put(&t->repr_digests, (uint32_t)i, ct_repr_digest(h)) < 0) {
                ct_idxmap_clear(&t->repr_digests);
                Py_DECREF(fresh);
                return PyErr_NoMemory();
            }
        }
        Py_SETREF(t->reprs, fresh);
        Py_CLEAR(t->reprs_changed);
        t->reprs_handed_off = 1;
        Py_RETURN_NONE;
    }
    PyObject *fresh = PyDict_New();
    if (fresh == NULL) {
        return NULL;
    }
    Py_XSETREF(t->reprs_changed, fresh);
    Py_RETURN_NONE;
}

/* last_by_name() -> (sizes, counts): per name number, the bytes and the
 * number of the records in the last snapshot (lists; empty without a
 * snapshot).  run's summary, read straight from the engine: no export. */
PyObject *
ct_py_tracker_last_by_name(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t nn = PyList_GET_SIZE(t->names);
    uint64_t *sums = PyMem_Calloc((size_t)nn + 1, sizeof(uint64_t));
    uint64_t *counts = PyMem_Calloc((size_t)nn + 1, sizeof(uint64_t));
    PyObject *out = NULL, *a = NULL, *b = NULL;
    if (sums == NULL || counts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const ct_entries *e = t->nsnaps ? t->snaps[t->nsnaps - 1].entries : NULL;
    if (e != NULL) {
        ct_entries_iter it;
        size_t rec;
        ct_entries_iter_init(&it, e);
        for (size_t pos = 0; ct_entries_next(&it, &rec); pos++) {
            if (rec >= t->reg.len) {
                continue;
            }
            uint32_t name = ct_rec_name(ct_registry_record(&t->reg, rec));
            if ((Py_ssize_t)name < nn) {
                sums[name] += ct_entries_value(e->size, e->size_w, pos);
                counts[name]++;
            }
        }
    }
    a = PyList_New(nn);
    b = PyList_New(nn);
    for (Py_ssize_t k = 0; a != NULL && b != NULL && k < nn; k++) {
        PyObject *x = PyLong_FromUnsignedLongLong(sums[k]);
        PyObject *y = PyLong_FromUnsignedLongLong(counts[k]);
        if (x == NULL || y == NULL) {
            Py_XDECREF(x);
            Py_XDECREF(y);
            goto done;
        }
        PyList_SET_ITEM(a, k, x);
        PyList_SET_ITEM(b, k, y);
    }
    if (a != NULL && b != NULL) {
        out = PyTuple_Pack(2, a, b);
    }
done:
    PyMem_Free(sums);
    PyMem_Free(counts);
    Py_XDECREF(a);
    Py_XDECREF(b);
    return out;
}
