/* aggregate.c - per-class totals of one snapshot, over columnar data.
 *
 * Stats.annotate_snapshot needs, for each tracking name, the sum of the
 * sizes of its objects in the snapshot and how many of its objects were
 * alive then.  Over a million objects this is a pass over flat arrays,
 * done here instead of over Python objects.
 */
#include "state.h"
#include "columns.h"

#include <string.h>

static int
get_col(PyObject *obj, Py_buffer *b, size_t itemsize, size_t *n, const char *what)
{
    return ct_column_get(obj, itemsize, b, n, "aggregate", what);
}

typedef struct {
    double ts;
    int delta;
} ct_event;

static int
cmp_event(const void *a, const void *b)
{
    const ct_event *x = a, *y = b;
    if (x->ts != y->ts) {
        return x->ts < y->ts ? -1 : 1;
    }
    return y->delta - x->delta;     /* births before deaths at equal times */
}

PyObject *
ct_history(PyObject *names, const uint32_t *name, const double *birth,
           const double *death, size_t len)
{
    size_t nn = (size_t)PyList_GET_SIZE(names);
    size_t *counts = PyMem_Calloc(nn + 1, sizeof(size_t));
    size_t *start = PyMem_Calloc(nn + 1, sizeof(size_t));
    ct_event *events = PyMem_Malloc((2 * len + 1) * sizeof(ct_event));
    PyObject *out = PyDict_New();
    if (!counts || !events || !start || !out) {
        if (out != NULL) {
            PyErr_NoMemory();
        }
        goto error;
    }
    for (size_t i = 0; i < len; i++) {
        if (name[i] < nn) {
            counts[name[i]] += death[i] != 0.0 ? 2 : 1;
        }
    }
    for (size_t n = 1; n <= nn; n++) {
        start[n] = start[n - 1] + counts[n - 1];
    }
    memset(counts, 0, (nn + 1) * sizeof(size_t));
    for (size_t i = 0; i < len; i++) {
        uint32_t n = name[i];
        if (n >= nn) {
            continue;
        }
        events[start[n] + counts[n]++] = (ct_event){birth[i], +1};
        if (death[i] != 0.0) {
            events[start[n] + counts[n]++] = (ct_event){death[i], -1};
        }
    }
    for (size_t n = 0; n < nn; n++) {
        if (counts[n] == 0) {
            continue;
        }
        ct_event *ev = events + start[n];
        qsort(ev, counts[n], sizeof(ct_event), cmp_event);
        PyObject *series = PyList_New((Py_ssize_t)counts[n]);
        if (series == NULL) {
            goto error;
        }
        long live = 0;
        for (size_t j = 0; j < counts[n]; j++) {
            live += ev[j].delta;
            PyObject *pt = Py_BuildValue("(dl)", ev[j].ts, live);
            if (pt == NULL) {
                Py_DECREF(series);
                goto error;
            }
            PyList_SET_ITEM(series, (Py_ssize_t)j, pt);
        }
        int rc = PyDict_SetItem(out, PyList_GET_ITEM(names, (Py_ssize_t)n), series);
        Py_DECREF(series);
        if (rc < 0) {
            goto error;
        }
    }
    PyMem_Free(counts);
    PyMem_Free(events);
    PyMem_Free(start);
    return out;
error:
    PyMem_Free(counts);
    PyMem_Free(events);
    PyMem_Free(start);
    Py_XDECREF(out);
    return NULL;
}

/* history(names, rec_name, rec_birth, rec_death) -> {name: [(timestamp,
 * live count)]}: the same as Tracker.history, over a dataset's columns */
static PyObject *
core_history(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *names, *o[3];
    if (!PyArg_ParseTuple(args, "O!OOO", &PyList_Type, &names, &o[0], &o[1], &o[2])) {
        return NULL;
    }
    Py_buffer b[3];
    size_t n[3];
    static const size_t widths[3] = {4, 8, 8};
    static const char *what[3] = {"name", "birth", "death"};
    int got = 0;
    PyObject *result = NULL;
    for (; got < 3; got++) {
        if (get_col(o[got], &b[got], widths[got], &n[got], what[got]) < 0) {
            goto done;
        }
    }
    if (n[1] != n[0] || n[2] != n[0]) {
        PyErr_SetString(PyExc_ValueError, "history: columns differ in length");
        goto done;
    }
    result = ct_history(names, b[0].buf, b[1].buf, b[2].buf, n[0]);
done:
    for (int i = 0; i < got; i++) {
        PyBuffer_Release(&b[i]);
    }
    return result;
}

/* aggregate(rec_name, rec_birth, rec_death, idx, size, flat, timestamp, nnames)
 *   -> (sums, flats, active): lists indexed by name number */
static PyObject *
core_aggregate(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *o[6];
    double ts;
    Py_ssize_t nnames;
    if (!PyArg_ParseTuple(args, "OOOOOOdn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &ts,
                          &nnames)) {
        return NULL;
    }
    if (nnames < 0) {
        PyErr_SetString(PyExc_ValueError, "aggregate: negative name count");
        return NULL;
    }
    Py_buffer b[6];
    size_t n[6];
    static const size_t widths[6] = {4, 8, 8, 4, 8, 8};
    static const char *what[6] = {"name", "birth", "death", "idx", "size", "flat"};
    int got = 0;
    PyObject *result = NULL;
    unsigned long long *sums = PyMem_Calloc((size_t)nnames + 1, sizeof(unsigned long long));
    unsigned long long *flats = PyMem_Calloc((size_t)nnames + 1, sizeof(unsigned long long));
    unsigned long long *active = PyMem_Calloc((size_t)nnames + 1, sizeof(unsigned long long));
    if (sums == NULL || flats == NULL || active == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < 6; got++) {
        if (get_col(o[got], &b[got], widths[got], &n[got], what[got]) < 0) {
            goto done;
        }
    }
    if (n[1] != n[0] || n[2] != n[0] || n[4] != n[3] || n[5] != n[3]) {
        PyErr_SetString(PyExc_ValueError, "aggregate: columns differ in length");
        goto done;
    }
    const uint32_t *name = b[0].buf;
    const double *birth = b[1].buf, *death = b[2].buf;
    const uint32_t *idx = b[3].buf;
    const uint64_t *size = b[4].buf, *flat = b[5].buf;
    for (size_t i = 0; i < n[0]; i++) {
        if (name[i] < (size_t)nnames && birth[i] < ts && (death[i] == 0.0 || death[i] > ts)) {
            active[name[i]]++;
        }
    }
    for (size_t e = 0; e < n[3]; e++) {
        if (idx[e] < n[0] && name[idx[e]] < (size_t)nnames) {
            sums[name[idx[e]]] += size[e];
            flats[name[idx[e]]] += flat[e];
        }
    }
    PyObject *s = PyList_New(nnames), *f = PyList_New(nnames), *a = PyList_New(nnames);
    for (Py_ssize_t k = 0; s && f && a && k < nnames; k++) {
        PyObject *x = PyLong_FromUnsignedLongLong(sums[k]);
        PyObject *y = PyLong_FromUnsignedLongLong(flats[k]);
        PyObject *z = PyLong_FromUnsignedLongLong(active[k]);
        if (x == NULL || y == NULL || z == NULL) {
            Py_XDECREF(x);
            Py_XDECREF(y);
            Py_XDECREF(z);
            Py_CLEAR(s);
            break;
        }
        PyList_SET_ITEM(s, k, x);
        PyList_SET_ITEM(f, k, y);
        PyList_SET_ITEM(a, k, z);
    }
    if (s != NULL && f != NULL && a != NULL) {
        result = PyTuple_Pack(3, s, f, a);
    }
    Py_XDECREF(s);
    Py_XDECREF(f);
    Py_XDECREF(a);
done:
    for (int i = 0; i < got; i++) {
        PyBuffer_Release(&b[i]);
    }
    PyMem_Free(sums);
    PyMem_Free(flats);
    PyMem_Free(active);
    return result;
}

/* record_max(nrec, [(idx, size), ...]) -> bytes of uint64: the largest
 * size each record had over the given snapshots (0 if never sized). */
static PyObject *
core_record_max(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_ssize_t nrec;
    PyObject *pairs;
    if (!PyArg_ParseTuple(args, "nO!", &nrec, &PyList_Type, &pairs)) {
        return NULL;
    }
    if (nrec < 0) {
        PyErr_SetString(PyExc_ValueError, "record_max: negative record count");
        return NULL;
    }
    if (nrec > PY_SSIZE_T_MAX / 8) {
        return PyErr_NoMemory();
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, nrec * 8);
    if (out == NULL) {
        return NULL;
    }
    uint64_t *best = (uint64_t *)PyBytes_AS_STRING(out);
    memset(best, 0, (size_t)nrec * 8);
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(pairs); k++) {
        PyObject *pair = PyList_GET_ITEM(pairs, k);
        Py_buffer bi, bs;
        size_t ni, ns;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_TypeError, "record_max: expected (idx, size) pairs");
            return NULL;
        }
        if (get_col(PyTuple_GET_ITEM(pair, 0), &bi, 4, &ni, "idx") < 0) {
            Py_DECREF(out);
            return NULL;
        }
        if (get_col(PyTuple_GET_ITEM(pair, 1), &bs, 8, &ns, "size") < 0) {
            PyBuffer_Release(&bi);
            Py_DECREF(out);
            return NULL;
        }
        const uint32_t *idx = bi.buf;
        const uint64_t *size = bs.buf;
        for (size_t e = 0; e < ni && e < ns; e++) {
            if (idx[e] < (size_t)nrec && size[e] > best[idx[e]]) {
                best[idx[e]] = size[e];
            }
        }
        PyBuffer_Release(&bi);
        PyBuffer_Release(&bs);
    }
    return out;
}

PyMethodDef ct_aggregate_functions[] = {
    {"aggregate", core_aggregate, METH_VARARGS,
     "aggregate(rec_name, rec_birth, rec_death, idx, size, timestamp, nnames) -> "
     "(sums, flats, active) per name"},
    {"history", core_history, METH_VARARGS,
     "history(names, rec_name, rec_birth, rec_death) -> {name: [(timestamp, live count)]}"},
    {"record_max", core_record_max, METH_VARARGS,
     "record_max(nrec, [(idx, size)]) -> bytes of uint64, each record's largest size"},
    {NULL, NULL, 0, NULL},
};
