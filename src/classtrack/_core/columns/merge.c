/* merge.c - the column operations that merge several datasets (dumps of
 * several processes or runs, report/merge.py) into one, without a Python
 * object per record or entry:
 *
 *   remap_u32(col, table)      each value v of a uint32 column replaced by
 *                              table[v] (name and class numbers, trace
 *                              numbers moved past another dump's);
 *   close_deaths(birth, death, end)
 *                              a death column where an object alive when
 *                              its process ended dies then: the first
 *                              double after max(end, its birth);
 *   entries_concat(parts, nrec)
 *                              one Entries from several, each part's
 *                              records moved on by its base.
 *
 * Every value is checked against what it indexes; a bad one raises
 * ValueError naming it, never a wrong number.
 */
#include "base/modobjs.h"
#include "columns/columns.h"
#include "tracker/entries.h"

#include <math.h>
#include <string.h>

/* remap_u32(col, table) -> bytes */
static PyObject *
core_remap_u32(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *o[2];
    if (!PyArg_ParseTuple(args, "OO:remap_u32", &o[0], &o[1])) {
        return NULL;
    }
    Py_buffer b[2];
    size_t n[2];
    static const size_t widths[2] = {4, 4};
    static const char *what[2] = {"col", "table"};
    int got = 0;
    PyObject *out = NULL;
    if (ct_columns_get(2, o, widths, what, b, n, "remap_u32", &got) < 0) {
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n[0] * 4));
    if (out == NULL) {
        goto done;
    }
    const uint32_t *col = b[0].buf, *table = b[1].buf;
    uint32_t *dst = (uint32_t *)PyBytes_AS_STRING(out);
    for (size_t i = 0; i < n[0]; i++) {
        if (col[i] >= n[1]) {
            PyErr_Format(PyExc_ValueError, "remap_u32: value %lu at %zu is past the "
                         "table of %zu", (unsigned long)col[i], i, n[1]);
            Py_CLEAR(out);
            goto done;
        }
        dst[i] = table[col[i]];
    }
done:
    ct_columns_release(b, got);
    return out;
}

/* close_deaths(birth, death, end) -> bytes of doubles */
static PyObject *
core_close_deaths(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *o[2];
    double end;
    if (!PyArg_ParseTuple(args, "OOd:close_deaths", &o[0], &o[1], &end)) {
        return NULL;
    }
    Py_buffer b[2];
    size_t n[2];
    static const size_t widths[2] = {8, 8};
    static const char *what[2] = {"birth", "death"};
    int got = 0;
    PyObject *out = NULL;
    if (ct_columns_get(2, o, widths, what, b, n, "close_deaths", &got) < 0) {
        goto done;
    }
    if (n[0] != n[1]) {
        PyErr_SetString(PyExc_ValueError, "close_deaths: columns differ in length");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n[0] * 8));
    if (out == NULL) {
        goto done;
    }
    const double *birth = b[0].buf, *death = b[1].buf;
    double *dst = (double *)PyBytes_AS_STRING(out);
    for (size_t i = 0; i < n[0]; i++) {
        dst[i] = death[i] != 0.0 ? death[i] : nextafter(fmax(end, birth[i]), INFINITY);
    }
done:
    ct_columns_release(b, got);
    return out;
}

/* entries_concat([(Entries, base), ...], nrec) -> Entries */
static PyObject *
core_entries_concat(PyObject *module, PyObject *args)
{
    PyObject *parts;
    Py_ssize_t nrec;
    if (!PyArg_ParseTuple(args, "O!n:entries_concat", &PyList_Type, &parts, &nrec)) {
        return NULL;
    }
    if (nrec < 0) {
        PyErr_SetString(PyExc_ValueError, "entries_concat: negative record count");
        return NULL;
    }
    Py_ssize_t np = PyList_GET_SIZE(parts);
    size_t total = 0;
    for (Py_ssize_t k = 0; k < np; k++) {
        PyObject *part = PyList_GET_ITEM(parts, k);
        if (!PyTuple_Check(part) || PyTuple_GET_SIZE(part) != 2) {
            PyErr_SetString(PyExc_TypeError, "entries_concat: parts are (Entries, base)");
            return NULL;
        }
        ct_entries *e = ct_entries_check(module, PyTuple_GET_ITEM(part, 0), "entries_concat");
        if (e == NULL) {
            return NULL;
        }
        total += e->n;
    }
    /* the parts are held by the list (a tuple each): they cannot go away
     * while read, and nothing below runs Python code */
    uint64_t *size = PyMem_Malloc(total * 8 + 1), *flat = PyMem_Malloc(total * 8 + 1);
    ct_entries *out = NULL;
    if (size == NULL || flat == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    out = (ct_entries *)ct_entries_alloc(ct_modobjs_of(module)->entries_type, (size_t)nrec,
                                         total);
    if (out == NULL) {
        goto error;
    }
    size_t pos = 0, next = 0;       /* next: the lowest record the next entry may have */
    uint64_t size_or = 0, flat_or = 0;
    for (Py_ssize_t k = 0; k < np; k++) {
        PyObject *part = PyList_GET_ITEM(parts, k);
        const ct_entries *e = (const ct_entries *)PyTuple_GET_ITEM(part, 0);
        size_t base = PyLong_AsSize_t(PyTuple_GET_ITEM(part, 1));
        if (base == (size_t)-1 && PyErr_Occurred()) {
            goto error;
        }
        ct_entries_iter it;
        size_t rec;
        ct_entries_iter_init(&it, e);
        while (ct_entries_next(&it, &rec)) {
            size_t r = rec + base;
            if (r < rec || r < next || r >= (size_t)nrec) {
                PyErr_SetString(PyExc_ValueError, "entries_concat: records must increase "
                                "and stay below the record count");
                goto error;
            }
            ct_entries_put(out, pos, r);
            size[pos] = ct_entries_value(e->size, e->size_w, it.pos - 1);
            flat[pos] = ct_entries_value(e->flat, e->flat_w, it.pos - 1);
            size_or |= size[pos];
            flat_or |= flat[pos];
            pos++;
            next = r + 1;
        }
    }
    if (ct_entries_finish(out, size, flat, size_or, flat_or) < 0) {
        goto error;
    }
    PyMem_Free(size);
    PyMem_Free(flat);
    return (PyObject *)out;
error:
    PyMem_Free(size);
    PyMem_Free(flat);
    Py_XDECREF(out);
    return NULL;
}

PyMethodDef ct_merge_functions[] = {
    {"remap_u32", core_remap_u32, METH_VARARGS,
     "remap_u32(col, table) -> bytes: each uint32 v of col replaced by table[v]"},
    {"close_deaths", core_close_deaths, METH_VARARGS,
     "close_deaths(birth, death, end) -> bytes: 0 deaths set just after max(end, birth)"},
    {"entries_concat", core_entries_concat, METH_VARARGS,
     "entries_concat([(Entries, base), ...], nrec) -> one Entries, records moved by base"},
    {NULL, NULL, 0, NULL},
};
