/* bindings/py_tracker.c - Python binding of the tracker engine:
 * classtrack._core.Tracker.  Argument conversion and read access to the
 * records; the work is in registry.c, tracker.c, hooks.c, snapshot.c. */
#include "bindings/py_state.h"
#include "bindings/py_tracker.h"
#include "tracker/entries.h"
#include "tracker/tracker.h"
#include "tracker/hooks.h"
#include "columns/columns.h"
#include "tracker/deathwatch.h"

static PyObject *
tracker_on_death(PyObject *self, PyObject *carrier)
{
    ct_tracker *t = (ct_tracker *)self;
    ct_registry_trackref_died(&t->reg, t->types, carrier);
    Py_RETURN_NONE;
}

static PyMethodDef on_death_def = {
    "_on_death", tracker_on_death, METH_O, "death callback of tracked objects"
};

static PyObject *
Tracker_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"skip_prefix", "reprs", NULL};
    PyObject *skip = NULL;
    int reprs = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Up", kwlist, &skip, &reprs)) {
        return NULL;
    }
    ct_state *st = (ct_state *)PyType_GetModuleState(type);
    if (st == NULL || ct_sizer_check_once(&st->sizer_refs) < 0) {
        return NULL;
    }
    ct_tracker *t = (ct_tracker *)type->tp_alloc(type, 0);
    if (t == NULL) {
        return NULL;
    }
    ct_registry_init(&t->reg);
    t->own_types = st->registry_types;
    Py_INCREF(t->own_types.trackref_type);
    ct_sizer_refs_copy(&t->own_refs, &st->sizer_refs);
    t->types = &t->own_types;
    t->sizer_refs = &t->own_refs;
    t->no_reprs = !reprs;
    t->slow_repr = CT_SLOW_REPR;
    Py_XINCREF(skip);
    t->skip_prefix = skip;
    t->names = PyList_New(0);
    t->name_numbers = PyDict_New();
    t->name_types = PyList_New(0);
    t->type_overrides = PyDict_New();
    t->traces = PyList_New(0);
    t->trace_numbers = PyDict_New();
    t->keep_ids = PyDict_New();
    t->reprs = PyDict_New();
    t->slow_repr_types = PySet_New(NULL);
    t->repr_strikes = PyDict_New();
    t->trees = PyDict_New();
    t->entries_type = (PyTypeObject *)Py_NewRef((PyObject *)st->objs.entries_type);
    t->callback = PyCFunction_New(&on_death_def, (PyObject *)t);
    if (!t->names || !t->name_numbers || !t->name_types || !t->type_overrides
        || !t->traces || !t->trace_numbers || !t->keep_ids || !t->reprs
        || !t->slow_repr_types || !t->repr_strikes || !t->trees || !t->callback) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

static int
Tracker_traverse(ct_tracker *t, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(t));
    Py_VISIT(t->callback);
    Py_VISIT(t->names);
    Py_VISIT(t->name_numbers);
    Py_VISIT(t->name_types);
    Py_VISIT(t->type_overrides);
    Py_VISIT(t->traces);
    Py_VISIT(t->trace_numbers);
    Py_VISIT(t->skip_prefix);
    Py_VISIT(t->keep_ids);
    Py_VISIT(t->reprs);
    Py_VISIT(t->reprs_changed);
    Py_VISIT(t->slow_repr_types);
    Py_VISIT(t->repr_strikes);
    Py_VISIT(t->trees);
    Py_VISIT(t->entries_type);
    Py_VISIT(t->own_types.trackref_type);
    return ct_registry_traverse(&t->reg, visit, arg);
}

static int
Tracker_clear(ct_tracker *t)
{
    ct_registry_clear(&t->reg);
    ct_idxmap_clear(&t->repr_digests);
    Py_CLEAR(t->callback);
    Py_CLEAR(t->names);
    Py_CLEAR(t->name_numbers);
    Py_CLEAR(t->name_types);
    Py_CLEAR(t->type_overrides);
    Py_CLEAR(t->traces);
    Py_CLEAR(t->trace_numbers);
    Py_CLEAR(t->skip_prefix);
    Py_CLEAR(t->keep_ids);
    Py_CLEAR(t->reprs);
    Py_CLEAR(t->reprs_changed);
    Py_CLEAR(t->slow_repr_types);
    Py_CLEAR(t->repr_strikes);
    Py_CLEAR(t->trees);
    return 0;
}

static void
Tracker_dealloc(ct_tracker *t)
{
    PyTypeObject *tp = Py_TYPE(t);
    PyObject_GC_UnTrack(t);
    /* the hook table holds the tracker strongly: nothing is hooked here */
    ct_tracker_clear_snapshots(t);  /* frees only memory: runs no code */
    (void)Tracker_clear(t);
    Py_CLEAR(t->entries_type);      /* after the entries, which hold it too */
    /* the carriers are gone (Tracker_clear): their types may go too */
    Py_CLEAR(t->own_types.trackref_type);
    ct_sizer_refs_clear(&t->own_refs);
    if (t->watch_requested) {
        t->watch_requested = 0;
        ct_deathwatch_release();
    }
    tp->tp_free((PyObject *)t);
    Py_DECREF(tp);
}

static int
check_index(ct_tracker *t, Py_ssize_t i)
{
    if (i < 0 || (size_t)i >= t->reg.len) {
        PyErr_Format(PyExc_IndexError, "no tracked record %zd", i);
        return -1;
    }
    if (ct_rec_forgotten(ct_registry_record(&t->reg, (size_t)i))) {
        PyErr_Format(PyExc_IndexError, "record %zd was written to the tracker's dump "
                     "stream and forgotten (read the dump)", i);
        return -1;
    }
    return 0;
}

/* Whole-history questions cannot be answered once records were forgotten
 * (their object died, and their whole life is in the dump stream). */
static int
check_nothing_forgotten(ct_tracker *t, const char *what)
{
    if (t->reg.forgotten != 0) {
        PyErr_Format(PyExc_RuntimeError, "%s: %zu records were written to the tracker's "
                     "dump stream and forgotten (read the dump)", what, t->reg.forgotten);
        return -1;
    }
    return 0;
}

static int
check_name(ct_tracker *t, PyObject *name, uint32_t *out)
{
    Py_ssize_t n = ct_tracker_name_number(t, name);
    if (n < 0) {
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

/* Ask for the death watch once per tracker (see deathwatch.h). */
static int
request_watch(ct_tracker *t)
{
    if (t->watch_requested) {
        return 0;
    }
    int r = ct_deathwatch_request();
    if (r > 0) {
        t->watch_requested = 1;
    }
    return r < 0 ? -1 : 0;
}

/* The one check of a user's resolution_level: 0 .. CT_MAX_RESOLUTION,
 * else ValueError naming the parameter and its range.  0 or -1. */
static int
check_resolution(Py_ssize_t level)
{
    if (level < 0 || level > CT_MAX_RESOLUTION) {
        PyErr_Format(PyExc_ValueError,
                     "resolution_level must be between 0 and %d, not %zd",
                     CT_MAX_RESOLUTION, level);
        return -1;
    }
    return 0;
}

/* track(obj, name, resolution, keep, trace) -> (index, is_new) */
static PyObject *
Tracker_track(ct_tracker *t, PyObject *args)
{
    PyObject *obj, *name;
    Py_ssize_t resolution;
    int keep, trace, is_new;
    uint32_t num;
    if (!PyArg_ParseTuple(args, "OUnpp", &obj, &name, &resolution, &keep, &trace)
        || check_resolution(resolution) < 0 || check_name(t, name, &num) < 0) {
        return NULL;
    }
    if (request_watch(t) < 0 || ct_deathwatch_check() < 0) {
        return NULL;
    }
    const ct_track_opts opts = {
        .name = num, .resolution = (int)resolution, .keep = keep, .trace = trace,
        .fresh = 0, .presize = CT_PRESIZE_UNKNOWN,
    };
    Py_ssize_t i = ct_tracker_track(t, obj, &opts, &is_new);
    if (i < 0) {
        return NULL;
    }
    return Py_BuildValue("(nO)", i, is_new ? Py_True : Py_False);
}

/* find(obj) -> index of obj's live record, or -1 */
static PyObject *
Tracker_find(ct_tracker *t, PyObject *obj)
{
    ct_hook_reftracer_check();
    if (ct_deathwatch_check() < 0) {
        return NULL;
    }
    Py_ssize_t i = ct_registry_find(&t->reg, t->types, obj, t->callback);
    if (i < 0) {
        PyObject *id = PyLong_FromVoidPtr(obj);
        if (id == NULL) {
            return NULL;
        }
        PyObject *kept = PyDict_GetItemWithError(t->keep_ids, id);
        Py_DECREF(id);
        if (kept != NULL) {
            Py_INCREF(kept);
            return kept;
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    return PyLong_FromSsize_t(i);
}

static PyObject *
Tracker_hook(ct_tracker *t, PyObject *args)
{
    PyObject *cls, *name;
    Py_ssize_t resolution;
    int keep, trace, root = 1;
    uint32_t num;
    if (!PyArg_ParseTuple(args, "O!Unpp|p", &PyType_Type, &cls, &name, &resolution,
                          &keep, &trace, &root)
        || check_resolution(resolution) < 0 || check_name(t, name, &num) < 0) {
        return NULL;
    }
    if (request_watch(t) < 0
        || ct_hook_install((PyTypeObject *)cls, t, num, (int)resolution, keep, trace,
                           root) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* unhooked_subclasses() -> the direct subclasses, not hooked here, of
 * hooked classes whose subclass count changed since the last call */
static PyObject *
Tracker_unhooked_subclasses(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    return ct_hook_unhooked_subclasses(t);
}

/* follows(cls) -> whether instances of cls can be tracked without keep=True
 * (the death watch covers them, or they can be weakly referenced) */
static PyObject *
Tracker_follows(ct_tracker *t, PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "follows() needs a class");
        return NULL;
    }
    if (request_watch(t) < 0) {
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    return PyBool_FromLong(ct_deathwatch_covers_type(tp) || ct_weakref_follows_type(tp));
}

/* watched() -> whether the death watch follows this tracker's objects */
static PyObject *
Tracker_watched(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(t->watch_requested && ct_deathwatch_ready());
}

static PyObject *
Tracker_unhook(ct_tracker *t, PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "unhook() needs a class");
        return NULL;
    }
    return PyBool_FromLong(ct_hook_remove((PyTypeObject *)cls, t) == 0);
}

static PyObject *
Tracker_unhook_all(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    ct_hook_remove_all(t);
    Py_RETURN_NONE;
}

static PyObject *
Tracker_hooked(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    return ct_hook_types_of(t);
}

static PyObject *
Tracker_snapshot(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    ct_hook_reftracer_check();
    double ts;
    Py_ssize_t total, overhead;
    if (ct_tracker_snapshot(t, &ts, &total, &overhead) < 0) {
        return NULL;
    }
    return Py_BuildValue("(dnn)", ts, total, overhead);
}

static int
not_snapshotting(ct_tracker *t)
{
    if (t->snapshotting) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot clear the tracker while a snapshot is being taken");
        return -1;
    }
    return 0;
}

/* Forgets every tracked object.  The snapshots stay (their totals), but
 * their per-object entries go with the records they indexed. */
static PyObject *
Tracker_clear_records(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    if (not_snapshotting(t) < 0) {
        return NULL;
    }
    for (size_t k = 0; k < t->nsnaps; k++) {
        Py_CLEAR(t->snaps[k].entries);
    }
    PyDict_Clear(t->trees);
    ct_registry_clear(&t->reg);
    PyDict_Clear(t->type_overrides);
    PyDict_Clear(t->keep_ids);
    PyDict_Clear(t->reprs);
    /* the texts handed off or changed were the cleared records': a new
     * stream starts afresh (track_repr_changes) */
    ct_idxmap_clear(&t->repr_digests);
    t->reprs_handed_off = 0;
    t->repr_cursor = 0;
    Py_CLEAR(t->reprs_changed);
    Py_RETURN_NONE;
}

static PyObject *
Tracker_clear_snapshots(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    if (not_snapshotting(t) < 0) {
        return NULL;
    }
    ct_tracker_clear_snapshots(t);
    Py_RETURN_NONE;
}

static PyObject *
Tracker_discard_last_snapshot(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    if (not_snapshotting(t) < 0 || ct_tracker_discard_last_snapshot(t) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* record(i) -> Record (id, name, birth, death|None, trace_no, resolution,
 *                     obj|None, cls, repr|None) */
static PyObject *
Tracker_record(ct_tracker *t, PyObject *arg)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    /* the check may warn, and a warning runs code that may clear us */
    if ((i == -1 && PyErr_Occurred()) || ct_deathwatch_check() < 0
        || check_index(t, i) < 0) {
        return NULL;
    }
    /* copies and strong references before anything allocates (the GC
     * may run, and the records array may move) */
    ct_record rec = *ct_registry_record(&t->reg, (size_t)i);
    PyObject *obj = ct_registry_object(&t->reg, (size_t)i);
    obj = Py_NewRef(obj ? obj : Py_None);
    PyObject *name = Py_NewRef(PyList_GET_ITEM(t->names, ct_rec_name(&rec)));
    PyObject *cls = NULL, *repr = NULL, *result = NULL;
    double died = ct_registry_death(&t->reg, (size_t)i);
    uintptr_t id = ct_rec_id(&rec);
    double birth = rec.birth;
    unsigned int trace = rec.trace;
    int resolution = ct_rec_resolution(&rec);
    PyObject *key = PyLong_FromSsize_t(i);
    if (key == NULL) {
        goto done;
    }
    cls = PyDict_GetItemWithError(t->type_overrides, key);
    if (cls == NULL && PyErr_Occurred()) {
        goto done;
    }
    if (cls == NULL) {
        cls = PyList_GET_ITEM(t->name_types, ct_rec_name(&rec));
    }
    Py_INCREF(cls);
    repr = PyDict_GetItemWithError(t->reprs, key);
    if (repr == NULL && PyErr_Occurred()) {
        goto done;
    }
    repr = Py_NewRef(repr ? repr : Py_None);
    PyObject *death = died == 0.0 ? Py_NewRef(Py_None) : PyFloat_FromDouble(died);
    if (death == NULL) {
        goto done;
    }
    result = ct_py_tracker_row(
        t, CT_ROW_RECORD,
        Py_BuildValue("(NOdNIiOOO)", PyLong_FromVoidPtr((void *)id), name, birth,
                      death, trace, resolution, obj, cls, repr));
done:
    Py_XDECREF(key);
    Py_DECREF(name);
    Py_DECREF(obj);
    Py_XDECREF(cls);
    Py_XDECREF(repr);
    return result;
}

/* survivors() -> [Survivor (index, obj, cls)]: the records whose object is alive,
 * in record order.  The pytest plugin's per-test question ("what did this
 * test leave alive?"), answered without a Python object per record. */
static PyObject *
Tracker_survivors(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    if (ct_deathwatch_check() < 0) {
        return NULL;
    }
    /* strong references first, in C memory: nothing here runs the GC,
     * which could clear the records while they are listed */
    size_t len = t->reg.len, n = 0;
    size_t *idx = PyMem_Malloc((t->reg.alive ? t->reg.alive : 1) * sizeof(size_t));
    PyObject **objs = PyMem_Malloc((t->reg.alive ? t->reg.alive : 1) * sizeof(PyObject *));
    if (idx == NULL || objs == NULL) {
        PyMem_Free(idx);
        PyMem_Free(objs);
        return PyErr_NoMemory();
    }
    for (size_t i = 0; i < len && n < t->reg.alive; i++) {
        PyObject *obj = ct_registry_object(&t->reg, i);
        if (obj != NULL) {
            idx[n] = i;
            objs[n++] = Py_NewRef(obj);
        }
    }
    PyTypeObject *row_type = ct_py_tracker_row_type(t, CT_ROW_SURVIVOR);
    Py_XINCREF(row_type);   /* held: allocations below may run any code */
    PyObject *out = row_type != NULL ? PyList_New((Py_ssize_t)n) : NULL;
    for (size_t k = 0; out != NULL && k < n; k++) {
        PyObject *cls = NULL;
        if (idx[k] < t->reg.len) {
            PyObject *key = PyLong_FromSize_t(idx[k]);
            if (key == NULL) {
                Py_CLEAR(out);
                break;
            }
            cls = PyDict_GetItemWithError(t->type_overrides, key);
            Py_DECREF(key);
            if (cls == NULL && PyErr_Occurred()) {
                Py_CLEAR(out);
                break;
            }
            if (cls == NULL) {
                cls = PyList_GET_ITEM(t->name_types,
                                      ct_rec_name(ct_registry_record(&t->reg, idx[k])));
            }
        }
        else {      /* cleared meanwhile: its class is its own */
            cls = (PyObject *)Py_TYPE(objs[k]);
        }
        Py_INCREF(cls);
        PyObject *num = PyLong_FromSize_t(idx[k]);
        PyObject *row = num != NULL ? PyStructSequence_New(row_type) : NULL;
        if (row == NULL) {
            Py_XDECREF(num);
            Py_DECREF(cls);
            Py_CLEAR(out);
            break;
        }
        PyStructSequence_SetItem(row, 0, num);
        PyStructSequence_SetItem(row, 1, Py_NewRef(objs[k]));
        PyStructSequence_SetItem(row, 2, cls);
        PyList_SET_ITEM(out, (Py_ssize_t)k, row);
    }
    Py_XDECREF(row_type);
    for (size_t k = 0; k < n; k++) {
        Py_DECREF(objs[k]);
    }
    PyMem_Free(idx);
    PyMem_Free(objs);
    return out;
}

/* record_names() -> list of name numbers, one per record */
static PyObject *
Tracker_record_names(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    if (check_nothing_forgotten(t, "record_names") < 0) {
        return NULL;
    }
    size_t len = t->reg.len;
    PyObject *out = PyList_New((Py_ssize_t)len);
    if (out != NULL && t->reg.len < len) {
        /* PyList_New ran code (the GC) that cleared the records */
        Py_DECREF(out);
        PyErr_SetString(PyExc_RuntimeError, "tracker cleared while listing its records");
        return NULL;
    }
    for (size_t i = 0; out != NULL && i < len; i++) {
        PyObject *v = PyLong_FromUnsignedLong(ct_rec_name(ct_registry_record(&t->reg, i)));
        if (v == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, v);
    }
    return out;
}

static PyObject *
Tracker_set_resolution(ct_tracker *t, PyObject *args)
{
    Py_ssize_t i, res;
    if (!PyArg_ParseTuple(args, "nn", &i, &res) || check_index(t, i) < 0
        || check_resolution(res) < 0) {
        return NULL;
    }
    ct_rec_set_resolution(ct_registry_record(&t->reg, (size_t)i), (int)res);
    Py_RETURN_NONE;
}

/* trace(no) -> tuple (code, line, code, line, ...) pairs, or None */
static PyObject *
Tracker_trace(ct_tracker *t, PyObject *arg)
{
    Py_ssize_t no = PyLong_AsSsize_t(arg);
    if (no == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (no <= 0 || no > PyList_GET_SIZE(t->traces)) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(PyList_GET_ITEM(t->traces, no - 1));
}

/* RecordSize (timestamp, size, flat, tree or None) of entry `pos` of
 * snapshot `snap`, which is record `rec`'s. */
static PyObject *
entry_value(ct_tracker *t, size_t snap, Py_ssize_t pos, size_t rec)
{
    const ct_snapshot *s = &t->snaps[snap];
    const ct_entries *e = s->entries;
    PyObject *tree = NULL;
    if (PyDict_GET_SIZE(t->trees) != 0) {
        PyObject *key = PyLong_FromUnsignedLongLong(((uint64_t)snap << 32) | rec);
        if (key == NULL) {
            return NULL;
        }
        tree = PyDict_GetItemWithError(t->trees, key);
        Py_DECREF(key);
        if (tree == NULL && PyErr_Occurred()) {
            return NULL;
        }
    }
    PyTypeObject *row_type = ct_py_tracker_row_type(t, CT_ROW_RECORD_SIZE);
    if (row_type == NULL) {
        return NULL;
    }
    Py_INCREF(row_type);    /* held: allocations below may run any code */
    /* the fields first (tree borrowed from t->trees: held before anything
     * else allocates), then the row */
    PyObject *f[4] = {
        Py_NewRef(tree ? tree : Py_None),
        PyFloat_FromDouble(s->timestamp),
        PyLong_FromUnsignedLongLong(ct_entries_value(e->size, e->size_w, (size_t)pos)),
        PyLong_FromUnsignedLongLong(ct_entries_value(e->flat, e->flat_w, (size_t)pos)),
    };
    PyObject *row = f[1] && f[2] && f[3] ? PyStructSequence_New(row_type) : NULL;
    Py_DECREF(row_type);
    if (row == NULL) {
        for (int i = 0; i < 4; i++) {
            Py_XDECREF(f[i]);
        }
        return NULL;
    }
    PyStructSequence_SetItem(row, 0, f[1]);
    PyStructSequence_SetItem(row, 1, f[2]);
    PyStructSequence_SetItem(row, 2, f[3]);
    PyStructSequence_SetItem(row, 3, f[0]);
    return row;
}

/* record_sizes(i) -> [RecordSize (timestamp, size, flat, tree|None)] */
static PyObject *
Tracker_record_sizes(ct_tracker *t, PyObject *arg)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if ((i == -1 && PyErr_Occurred()) || check_index(t, i) < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    for (size_t k = 0; out != NULL && k < t->nsnaps; k++) {
        Py_ssize_t pos = ct_snapshot_position(&t->snaps[k], i);
        if (pos < 0) {
            continue;
        }
        PyObject *v = entry_value(t, k, pos, (size_t)i);
        if (v == NULL || PyList_Append(out, v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(out);
            break;
        }
        Py_DECREF(v);
    }
    return out;
}

/* snapshot_entries(k) -> [SnapshotEntry (index, size, flat, tree|None)]
 * of snapshot k */
static PyObject *
Tracker_snapshot_entries(ct_tracker *t, PyObject *arg)
{
    Py_ssize_t k = PyLong_AsSsize_t(arg);
    if (k == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (k < 0 || (size_t)k >= t->nsnaps) {
        PyErr_Format(PyExc_IndexError, "no snapshot %zd", k);
        return NULL;
    }
    PyTypeObject *row_type = ct_py_tracker_row_type(t, CT_ROW_SNAPSHOT_ENTRY);
    if (row_type == NULL) {
        return NULL;
    }
    Py_INCREF(row_type);    /* held: allocations below may run any code */
    const ct_snapshot *s = &t->snaps[k];
    PyObject *out = PyList_New((Py_ssize_t)ct_snapshot_len(s));
    if (out == NULL || s->entries == NULL) {
        Py_DECREF(row_type);
        return out;
    }
    ct_entries_iter it;
    size_t rec;
    ct_entries_iter_init(&it, s->entries);
    while (ct_entries_next(&it, &rec)) {
        Py_ssize_t pos = (Py_ssize_t)it.pos - 1;
        PyObject *v = entry_value(t, (size_t)k, pos, rec);     /* a RecordSize */
        PyObject *num = v != NULL ? PyLong_FromUnsignedLong((unsigned long)rec) : NULL;
        PyObject *item = num != NULL ? PyStructSequence_New(row_type) : NULL;
        if (item == NULL) {
            Py_XDECREF(num);
            Py_XDECREF(v);
            Py_DECREF(out);
            Py_DECREF(row_type);
            return NULL;
        }
        PyStructSequence_SetItem(item, 0, num);
        for (Py_ssize_t f = 1; f < 4; f++) {
            PyStructSequence_SetItem(item, f, Py_NewRef(PyStructSequence_GetItem(v, f)));
        }
        Py_DECREF(v);
        PyList_SET_ITEM(out, pos, item);
    }
    Py_DECREF(row_type);
    return out;
}

/* history() -> {name: [(timestamp, live count), ...]} */
static PyObject *
Tracker_history(ct_tracker *t, PyObject *Py_UNUSED(ignored))
{
    if (ct_deathwatch_check() < 0 || check_nothing_forgotten(t, "history") < 0) {
        return NULL;
    }
    size_t len = t->reg.len;
    uint32_t *names = PyMem_Malloc((len + 1) * sizeof(uint32_t));
    double *births = PyMem_Malloc((len + 1) * sizeof(double));
    double *deaths = PyMem_Malloc((len + 1) * sizeof(double));
    PyObject *out = NULL;
    if (names == NULL || births == NULL || deaths == NULL) {
        PyErr_NoMemory();
    }
    else {
        for (size_t i = 0; i < len; i++) {
            ct_record *r = ct_registry_record(&t->reg, i);
            names[i] = ct_rec_name(r);
            births[i] = r->birth;
            deaths[i] = ct_registry_death(&t->reg, i);
        }
        out = ct_history(t->names, names, births, deaths, len);
    }
    PyMem_Free(names);
    PyMem_Free(births);
    PyMem_Free(deaths);
    return out;
}


static Py_ssize_t
Tracker_len(ct_tracker *t)
{
    return (Py_ssize_t)t->reg.len;
}

static PyObject *
Tracker_get_alive(ct_tracker *t, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(t->reg.alive);
}

static PyObject *
Tracker_get_forgotten(ct_tracker *t, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(t->reg.forgotten);
}

static PyObject *
Tracker_get_reprs(ct_tracker *t, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(!t->no_reprs);
}

static PyObject *
Tracker_get_reprs_handed_off(ct_tracker *t, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(t->reprs_handed_off);
}

static PyObject *
Tracker_get_nsnapshots(ct_tracker *t, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(t->nsnaps);
}

static PyObject *
Tracker_get_names(ct_tracker *t, void *Py_UNUSED(closure))
{
    return PyList_GetSlice(t->names, 0, PyList_GET_SIZE(t->names));
}

static PyObject *
core_now(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(ct_now());
}

static PyMethodDef Tracker_methods[] = {
    {"track", (PyCFunction)Tracker_track, METH_VARARGS,
     "track(obj, name, resolution, keep, trace) -> (index, is_new)"},
    {"find", (PyCFunction)Tracker_find, METH_O, "find(obj) -> index or -1"},
    {"hook", (PyCFunction)Tracker_hook, METH_VARARGS,
     "hook(cls, name, resolution, keep, trace, root=True): track instances created "
     "from now on; root: cls is tracked itself (its settings pass to new subclasses), "
     "not only as a subclass of a tracked class"},
    {"unhooked_subclasses", (PyCFunction)Tracker_unhooked_subclasses, METH_NOARGS,
     "unhooked_subclasses() -> direct subclasses, not hooked yet, of hooked classes "
     "whose subclass count changed since the last call"},
    {"unhook", (PyCFunction)Tracker_unhook, METH_O, "unhook(cls) -> was it hooked"},
    {"follows", (PyCFunction)Tracker_follows, METH_O,
     "follows(cls) -> can instances of cls be tracked without keep=True"},
    {"watched", (PyCFunction)Tracker_watched, METH_NOARGS,
     "watched() -> are deaths learnt from the allocator (else weak references)"},
    {"unhook_all", (PyCFunction)Tracker_unhook_all, METH_NOARGS, "unhook every class"},
    {"hooked", (PyCFunction)Tracker_hooked, METH_NOARGS, "classes hooked by this tracker"},
    {"snapshot", (PyCFunction)Tracker_snapshot, METH_NOARGS,
     "snapshot() -> (timestamp, tracked_total, overhead)"},
    {"clear_records", (PyCFunction)Tracker_clear_records, METH_NOARGS,
     "forget every tracked object"},
    {"clear_snapshots", (PyCFunction)Tracker_clear_snapshots, METH_NOARGS,
     "forget every snapshot"},
    {"discard_last_snapshot", (PyCFunction)Tracker_discard_last_snapshot, METH_NOARGS,
     "forget the latest snapshot (a monitor's the wait for which was given up)"},
    {"record", (PyCFunction)Tracker_record, METH_O,
     "record(i) -> (id, name, birth, death, trace_no, resolution, obj, cls, repr)"},
    {"survivors", (PyCFunction)Tracker_survivors, METH_NOARGS,
     "survivors() -> [(index, obj, cls)] of the records whose object is alive"},
    {"record_names", (PyCFunction)Tracker_record_names, METH_NOARGS,
     "name number of every record"},
    {"set_resolution", (PyCFunction)Tracker_set_resolution, METH_VARARGS,
     "set_resolution(i, level)"},
    {"trace", (PyCFunction)Tracker_trace, METH_O, "trace(no) -> ((code, line), ...)"},
    {"record_sizes", (PyCFunction)Tracker_record_sizes, METH_O,
     "record_sizes(i) -> [(timestamp, size, flat, tree)]"},
    {"snapshot_entries", (PyCFunction)Tracker_snapshot_entries, METH_O,
     "snapshot_entries(k) -> [(index, size, flat, tree)]"},
    {"export", (PyCFunction)(void (*)(void))ct_py_tracker_export, METH_VARARGS | METH_KEYWORDS,
     "export(rec_start=0, snap_start=0, class_index=None, classes=None) -> columnar "
     "records (from rec_start) and snapshots (from snap_start), see dumpfmt.h; classes "
     "are numbered in the given class_index/classes when given (a dump stream's)"},
    {"last_by_name", (PyCFunction)ct_py_tracker_last_by_name, METH_NOARGS,
     "last_by_name() -> (sizes, counts) per name number in the last snapshot"},
    {"track_repr_changes", (PyCFunction)(void (*)(void))ct_py_tracker_track_repr_changes,
     METH_VARARGS | METH_KEYWORDS,
     "track_repr_changes(hand_off=False): export(changed_reprs=True) gives the reprs "
     "changed since its last call from now on (starts afresh); hand_off=True: the "
     "engine keeps no text once exported, only its hash (a dump stream that holds "
     "the texts for good; a whole export() is refused from then on)"},
    {"forget", (PyCFunction)ct_py_tracker_forget, METH_VARARGS,
     "forget(written, before) -> records whose memory was given back: whole pages of "
     "records written to a dump stream (written: a bytearray, one byte per record, "
     "as new_deaths keeps it), dead before `before` (the last snapshot's time)"},
    {"new_deaths", (PyCFunction)ct_py_tracker_new_deaths, METH_VARARGS,
     "new_deaths(written, upto) -> (indices, deaths) of records that died and are not "
     "yet marked in written (a bytearray); marks them"},
    {"history", (PyCFunction)Tracker_history, METH_NOARGS,
     "history() -> {name: [(timestamp, live count)]}"},
    {NULL, NULL, 0, NULL},
};

static PyObject *
Tracker_get_slow_repr(ct_tracker *t, void *Py_UNUSED(closure))
{
    return PyFloat_FromDouble(t->slow_repr);
}

static int
Tracker_set_slow_repr(ct_tracker *t, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "slow_repr cannot be deleted");
        return -1;
    }
    double v = PyFloat_AsDouble(value);
    if (v == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(v >= 0.0)) {      /* NaN too */
        PyErr_SetString(PyExc_ValueError, "slow_repr: seconds, 0 or more (inf: never)");
        return -1;
    }
    t->slow_repr = v;
    return 0;
}

static PyObject *
Tracker_get_slow_repr_classes(ct_tracker *t, void *Py_UNUSED(closure))
{
    return PySequence_List(t->slow_repr_types);
}

static PyGetSetDef Tracker_getset[] = {
    {"slow_repr", (getter)Tracker_get_slow_repr, (setter)Tracker_set_slow_repr,
     "seconds: a class whose __repr__ took longer in 3 calls in a row is not asked "
     "again", NULL},
    {"slow_repr_classes", (getter)Tracker_get_slow_repr_classes, NULL,
     "the classes whose __repr__ is no longer asked (slow_repr)", NULL},
    {"alive", (getter)Tracker_get_alive, NULL, "tracked objects alive", NULL},
    {"forgotten", (getter)Tracker_get_forgotten, NULL,
     "records written to a dump stream and forgotten (forget())", NULL},
    {"nsnapshots", (getter)Tracker_get_nsnapshots, NULL, "snapshots taken", NULL},
    {"names", (getter)Tracker_get_names, NULL, "tracking names by number", NULL},
    {"reprs", (getter)Tracker_get_reprs, NULL,
     "whether snapshots take reprs (False: no __repr__ is ever called)", NULL},
    {"reprs_handed_off", (getter)Tracker_get_reprs_handed_off, NULL,
     "whether repr texts were handed off to a dump stream (track_repr_changes)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Tracker_slots[] = {
    {Py_tp_new, Tracker_new},
    {Py_tp_dealloc, Tracker_dealloc},
    {Py_tp_traverse, Tracker_traverse},
    {Py_tp_clear, Tracker_clear},
    {Py_tp_methods, Tracker_methods},
    {Py_tp_getset, Tracker_getset},
    {Py_sq_length, Tracker_len},
    {Py_tp_doc, "Tracker(skip_prefix=None, reprs=True): the engine of a ClassTracker."},
    {0, NULL},
};

static PyType_Spec Tracker_spec = {
    "classtrack._core.Tracker",
    sizeof(ct_tracker),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    Tracker_slots,
};

/* _core._livemap_selftest(seed, n) -> disagreements with a reference */
static PyObject *
core_livemap_selftest(PyObject *Py_UNUSED(module), PyObject *args)
{
    unsigned long long seed;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "Kn:_livemap_selftest", &seed, &n)) {
        return NULL;
    }
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "_livemap_selftest: n must be >= 0");
        return NULL;
    }
    long bad = ct_livemap_selftest((uint64_t)seed, (size_t)n);
    if (bad < 0) {
        return PyErr_NoMemory();
    }
    return PyLong_FromLong(bad);
}

PyMethodDef ct_tracker_functions[] = {
    {"now", core_now, METH_NOARGS,
     "now() -> seconds since classtrack was imported (monotonic)"},
    {"_livemap_selftest", core_livemap_selftest, METH_VARARGS,
     "_livemap_selftest(seed, n) -> disagreements of the livemap with a reference "
     "over n random operations (tests)"},
    {NULL, NULL, 0, NULL},
};

int
ct_tracker_type_register(PyObject *module, PyTypeObject **type)
{
    *type = ct_add_type(module, &Tracker_spec, NULL, "Tracker");
    if (*type == NULL) {
        return -1;
    }
    /* the range Tracker.track/hook/set_resolution accept */
    if (PyModule_AddIntConstant(module, "MAX_RESOLUTION_LEVEL", CT_MAX_RESOLUTION) < 0) {
        return -1;
    }
    /* texts handed off that may wait for the next export (note_reprs) */
    return PyModule_AddIntConstant(module, "PENDING_REPRS_MAX", CT_PENDING_REPRS_MAX);
}
