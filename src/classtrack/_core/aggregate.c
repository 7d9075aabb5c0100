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
    {"record_max", core_record_max, METH_VARARGS,
     "record_max(nrec, [(idx, size)]) -> bytes of uint64, each record's largest size"},
    {NULL, NULL, 0, NULL},
};
