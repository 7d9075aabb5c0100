/* dump_frames.c - the frames of a streamed dump (dumpfmt.h, 1.2): the
 * DEATHS and REPRS sections, the order of sections in a frame, and the
 * checkpoint a file that ends inside a frame (its writer was killed) is
 * read back to.  What a frame changes in records of earlier frames (a
 * death, a repr) is held pending until its CHECK, so dropping an
 * incomplete frame is cutting every list back to the checkpoint.
 */
#include "base/modobjs.h"
#include "dump/dumpfmt.h"
#include "dump/dump_loaded.h"

int
ct_rd_deaths(ct_reader *r, ct_loaded *L)
{
    uint64_t n;
    if (ct_rd_count(r, &n, 9, "death") < 0
        || ct_col_reserve(&L->pend_deaths, n * 16) < 0) {
        return -1;
    }
    const double *births = (const double *)L->birth.data;
    const double *deaths = (const double *)L->death.data;
    int64_t prev = -1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t delta;
        double when;
        if (ct_rd_varint(r, &delta) < 0 || ct_rd_f64(r, &when, "death") < 0) {
            return -1;
        }
        if (delta == 0 || delta > L->nrec || (uint64_t)(prev + (int64_t)delta) >= L->nrec) {
            return ct_rd_fail(r, "death of a record that does not exist");
        }
        uint64_t rec = (uint64_t)(prev + (int64_t)delta);
        if (deaths[rec] != 0.0) {
            return ct_rd_fail(r, "record %llu dies twice", (unsigned long long)rec);
        }
        if (when == 0.0 || when < births[rec]) {
            return ct_rd_fail(r, "record %llu dies before it is born", (unsigned long long)rec);
        }
        if (ct_col_put(&L->pend_deaths, &rec, 8) < 0
            || ct_col_put(&L->pend_deaths, &when, 8) < 0) {
            return -1;
        }
        prev = (int64_t)rec;
    }
    return 0;
}

int
ct_rd_reprs(ct_reader *r, ct_loaded *L)
{
    uint64_t n;
    if (ct_rd_count(r, &n, 2, "repr") < 0) {
        return -1;
    }
    int64_t prev = -1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t delta;
        PyObject *text;
        if (ct_rd_varint(r, &delta) < 0) {
            return -1;
        }
        if (delta == 0 || delta > L->nrec || (uint64_t)(prev + (int64_t)delta) >= L->nrec) {
            return ct_rd_fail(r, "repr of a record that does not exist");
        }
        prev += (int64_t)delta;
        if (ct_rd_string_ref(r, L, 0, &text) < 0) {
            return -1;
        }
        PyObject *pair = Py_BuildValue("(KO)", (unsigned long long)prev, text);
        int rc = pair == NULL ? -1 : PyList_Append(L->pend_reprs, pair);
        Py_XDECREF(pair);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

int
ct_rd_frame_done(ct_reader *r, ct_loaded *L)
{
    double *deaths = (double *)L->death.data;
    const unsigned char *p = (const unsigned char *)L->pend_deaths.data;
    for (size_t off = 0; off < L->pend_deaths.len; off += 16) {
        uint64_t rec;
        double when;
        memcpy(&rec, p + off, 8);
        memcpy(&when, p + off + 8, 8);
        deaths[rec] = when;
    }
    L->pend_deaths.len = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(L->pend_reprs); i++) {
        PyObject *pair = PyList_GET_ITEM(L->pend_reprs, i);
        if (PyDict_SetItem(L->reprs, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0) {
            return -1;
        }
    }
    if (PyList_SetSlice(L->pend_reprs, 0, PY_SSIZE_T_MAX, NULL) < 0) {
        return -1;
    }
    L->last = (ct_checkpoint){
        PyList_GET_SIZE(L->strings), PyList_GET_SIZE(L->names), PyList_GET_SIZE(L->classes),
        PyList_GET_SIZE(L->traces), PyList_GET_SIZE(L->snaps), L->nrec, ct_rd_offset(r),
        L->last.frames + 1};
    L->stage = 0;
    L->frame_first_snap = PyList_GET_SIZE(L->snaps);
    return 0;
}

int
ct_rd_rollback(ct_loaded *L)
{
    const ct_checkpoint *c = &L->last;
    if (PyList_SetSlice(L->strings, c->strings, PY_SSIZE_T_MAX, NULL) < 0
        || PyList_SetSlice(L->names, c->names, PY_SSIZE_T_MAX, NULL) < 0
        || PyList_SetSlice(L->classes, c->classes, PY_SSIZE_T_MAX, NULL) < 0
        || PyList_SetSlice(L->traces, c->traces, PY_SSIZE_T_MAX, NULL) < 0
        || PyList_SetSlice(L->snaps, c->snaps, PY_SSIZE_T_MAX, NULL) < 0
        || PyList_SetSlice(L->pend_reprs, 0, PY_SSIZE_T_MAX, NULL) < 0) {
        return -1;
    }
    L->pend_deaths.len = 0;
    /* the reprs the dropped records brought */
    PyObject *keys = PyDict_Keys(L->reprs);
    if (keys == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        unsigned long long rec = PyLong_AsUnsignedLongLong(k);
        if ((rec == (unsigned long long)-1 && PyErr_Occurred())
            || (rec >= c->nrec && PyDict_DelItem(L->reprs, k) < 0)) {
            Py_DECREF(keys);
            return -1;
        }
    }
    Py_DECREF(keys);
    L->nrec = c->nrec;
    L->id.len = L->birth.len = L->death.len = (size_t)c->nrec * 8;
    L->name.len = L->cls.len = L->trace.len = (size_t)c->nrec * 4;
    return 0;
}

/* The place of a section in a frame; 0 for sections that may come
 * anywhere (a newer minor's skippable ones). */
static int
rank(unsigned tag)
{
    switch (tag) {
    case CT_TAG_STRINGS: return 1;
    case CT_TAG_NAMES: return 2;
    case CT_TAG_CLASSES: return 3;
    case CT_TAG_TRACES: return 4;
    case CT_TAG_RECORDS: return 5;
    case CT_TAG_DEATHS: return 6;
    case CT_TAG_REPRS: return 7;
    case CT_TAG_SNAPSHOT: case CT_TAG_TREE: case CT_TAG_RETAINED:
    case CT_TAG_COUNTED: case CT_TAG_SNAPFLAGS: return 8;
    default: return 0;
    }
}

int
ct_rd_frame_order(ct_reader *r, ct_loaded *L, unsigned tag)
{
    int k = rank(tag);
    if (k == 0) {
        return 0;
    }
    /* RECORDS and the snapshots' sections repeat; the others once a frame */
    int repeats = k == 5 || k == 8;
    if (k < L->stage || (k == L->stage && !repeats)) {
        return ct_rd_fail(r, "section 0x%02x out of order in its frame", tag);
    }
    if (k == 8 && tag != CT_TAG_SNAPSHOT && L->stage < 8) {
        return ct_rd_fail(r, "section 0x%02x before its snapshot", tag);
    }
    L->stage = k;
    return 0;
}
