/* entries.c - classtrack._core.Entries: one snapshot's entries, compact
 * and immutable (see entries.h for the layout and its invariants).
 *
 * Made by Tracker.export and dump_read, or from Python out of columns
 * (Entries(idx, size, flat, nrec), as report/merge.py does).  It holds no
 * Python objects, so it takes no part in garbage collection; its arrays
 * are owned and freed with it.
 */
#include "base/modobjs.h"
#include "tracker/entries.h"
#include "base/colbuf.h"
#include "base/bigmem.h"

#include <string.h>

/* The narrowest width that holds every value whose OR is `top`. */
static unsigned
width_of(uint64_t top)
{
    return top <= 0xff ? 1 : top <= 0xffff ? 2 : top <= 0xffffffffu ? 4 : 8;
}

static unsigned char *
narrow(const uint64_t *v, size_t n, unsigned w)
{
    unsigned char *out = ct_big_alloc(n * w + 1, 0);
    if (out == NULL) {
        return NULL;
    }
    switch (w) {
    case 1:
        for (size_t i = 0; i < n; i++) out[i] = (unsigned char)v[i];
        break;
    case 2:
        for (size_t i = 0; i < n; i++) ((uint16_t *)out)[i] = (uint16_t)v[i];
        break;
    case 4:
        for (size_t i = 0; i < n; i++) ((uint32_t *)out)[i] = (uint32_t)v[i];
        break;
    default:
        if (n > 0) {    /* v may be NULL for no values */
            memcpy(out, v, n * 8);
        }
    }
    return out;
}

/* With a bitmap: the rank table from the bits. */
static void
set_rank(ct_entries *self)
{
    if (self->bits != NULL) {
        size_t nwords = self->nrec / 64 + 1;
        uint32_t count = 0;
        for (size_t w = 0; w < nwords; w++) {
            self->rank[w] = count;
            count += (uint32_t)__builtin_popcountll(self->bits[w]);
        }
        self->rank[nwords] = count;
    }
}

PyObject *
ct_entries_alloc(PyTypeObject *type, size_t nrec, size_t n)
{
    if (n > nrec || n >= UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "Entries: more entries than records");
        return NULL;
    }
    if (nrec > (size_t)UINT32_MAX + 1) {
        PyErr_SetString(PyExc_ValueError, "Entries: more records than 32-bit indices reach");
        return NULL;
    }
    ct_entries *self = (ct_entries *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->nrec = nrec;
    self->n = n;
    self->size_w = self->flat_w = 8;    /* until finished */
    /* a bitmap costs 12 bytes per 64 records, indices 4 per entry */
    size_t nwords = nrec / 64 + 1;
    if (nwords * 12 < n * 4) {
        self->bits = ct_big_alloc(nwords * 8, 1);
        self->rank = ct_big_alloc((nwords + 1) * 4, 0);
        if (self->bits == NULL || self->rank == NULL) {
            goto nomem;
        }
    }
    else {
        self->idx = ct_big_alloc(n * 4 + 1, 0);
        if (self->idx == NULL) {
            goto nomem;
        }
    }
    return (PyObject *)self;
nomem:
    Py_DECREF(self);
    return PyErr_NoMemory();
}

int
ct_entries_finish(ct_entries *self, const uint64_t *size, const uint64_t *flat,
                  uint64_t size_or, uint64_t flat_or)
{
    size_t n = self->n;
    self->size_w = width_of(size_or);
    self->flat_w = width_of(flat_or);
    self->size = narrow(size, n, self->size_w);
    self->flat = narrow(flat, n, self->flat_w);
    if (self->size == NULL || self->flat == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    set_rank(self);
    return 0;
}

int
ct_entries_columns(ct_entries *self, unsigned size_w, unsigned flat_w)
{
    self->size_w = size_w;
    self->flat_w = flat_w;
    self->size = ct_big_alloc(self->n * size_w + 1, 0);
    self->flat = ct_big_alloc(self->n * flat_w + 1, 0);
    if (self->size == NULL || self->flat == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* A column of n values of width w narrowed in place to width to (< w):
 * value i is read before anything at or past its new place is written. */
static void
narrow_in_place(unsigned char *col, size_t n, unsigned w, unsigned to)
{
    for (size_t i = 0; i < n; i++) {
        ct_entries_store(col, to, i, ct_entries_value(col, w, i));
    }
}

int
ct_entries_widen(ct_entries *self, int flat)
{
    unsigned char **col = flat ? &self->flat : &self->size;
    unsigned *w = flat ? &self->flat_w : &self->size_w;
    if (*w == 8) {
        return 0;
    }
    unsigned char *c = ct_big_realloc(*col, self->n * 8 + 1);
    if (c == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    /* from the last value down: value i moves to 8 * i >= w * i, over
     * values already moved */
    for (size_t i = self->n; i-- > 0;) {
        ((uint64_t *)c)[i] = ct_entries_value(c, *w, i);
    }
    *col = c;
    *w = 8;
    return 0;
}

/* A narrowed column of `bytes` given back its tail (kept as it is if
 * that fails: it stays valid). */
static unsigned char *
shrunk(unsigned char *col, size_t bytes)
{
    unsigned char *r = ct_big_realloc(col, bytes + 1);
    return r != NULL ? r : col;
}

void
ct_entries_finish_columns(ct_entries *self, uint64_t size_or, uint64_t flat_or)
{
    unsigned sw = width_of(size_or), fw = width_of(flat_or);
    if (sw < self->size_w) {
        narrow_in_place(self->size, self->n, self->size_w, sw);
        self->size_w = sw;
        self->size = shrunk(self->size, self->n * sw);
    }
    if (fw < self->flat_w) {
        narrow_in_place(self->flat, self->n, self->flat_w, fw);
        self->flat_w = fw;
        self->flat = shrunk(self->flat, self->n * fw);
    }
    set_rank(self);
}

PyObject *
ct_entries_new(PyTypeObject *type, size_t nrec, size_t n, const uint32_t *idx,
               const uint64_t *size, const uint64_t *flat)
{
    for (size_t e = 0; e < n; e++) {
        if (idx[e] >= nrec || (e > 0 && idx[e] <= idx[e - 1])) {
            PyErr_SetString(PyExc_ValueError, "Entries: record indices must increase "
                            "and stay below the record count");
            return NULL;
        }
    }
    ct_entries *self = (ct_entries *)ct_entries_alloc(type, nrec, n);
    if (self == NULL) {
        return NULL;
    }
    uint64_t size_or = 0, flat_or = 0;
    for (size_t e = 0; e < n; e++) {
        ct_entries_put(self, e, idx[e]);
        size_or |= size[e];
        flat_or |= flat[e];
    }
    if (ct_entries_finish(self, size, flat, size_or, flat_or) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

Py_ssize_t
ct_entries_find(const ct_entries *e, size_t rec)
{
    if (rec >= e->nrec) {
        return -1;
    }
    if (e->bits != NULL) {
        uint64_t word = e->bits[rec / 64], bit = (uint64_t)1 << (rec % 64);
        if (!(word & bit)) {
            return -1;
        }
        return (Py_ssize_t)e->rank[rec / 64] + __builtin_popcountll(word & (bit - 1));
    }
    return ct_sorted_find(e->idx, e->n, rec);
}

size_t
ct_entries_nbytes(const ct_entries *e)
{
    size_t b = e->n * (e->size_w + e->flat_w);
    if (e->bits != NULL) {
        b += (e->nrec / 64 + 1) * 12 + 4;
    }
    else {
        b += e->n * 4;
    }
    return b;
}

ct_entries *
ct_entries_check(PyObject *module, PyObject *obj, const char *who)
{
    ct_modobjs *st = ct_modobjs_of(module);
    if (!PyObject_TypeCheck(obj, st->entries_type)) {
        PyErr_Format(PyExc_TypeError, "%s: expected Entries, not %.50s", who,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return (ct_entries *)obj;
}

/* -- the Python type ---------------------------------------------------- */

/* Entries(idx, size, flat, nrec): idx bytes of uint32, size and flat of
 * uint64, one per entry */
static PyObject *
Entries_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"idx", "size", "flat", "nrec", NULL};
    PyObject *o[3];
    Py_ssize_t nrec;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOn:Entries", kwlist, &o[0], &o[1], &o[2],
                                     &nrec)) {
        return NULL;
    }
    if (nrec < 0) {
        PyErr_SetString(PyExc_ValueError, "Entries: negative record count");
        return NULL;
    }
    Py_buffer b[3];
    size_t n[3];
    static const size_t widths[3] = {4, 8, 8};
    static const char *what[3] = {"idx", "size", "flat"};
    int got = 0;
    PyObject *result = NULL;
    if (ct_columns_get(3, o, widths, what, b, n, "Entries", &got) < 0) {
        goto done;
    }
    if (n[1] != n[0] || n[2] != n[0]) {
        PyErr_SetString(PyExc_ValueError, "Entries: columns differ in length");
        goto done;
    }
    result = ct_entries_new(type, (size_t)nrec, n[0], b[0].buf, b[1].buf, b[2].buf);
done:
    ct_columns_release(b, got);
    return result;
}

static void
Entries_dealloc(ct_entries *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    ct_big_free(self->bits);
    ct_big_free(self->rank);
    ct_big_free(self->idx);
    ct_big_free(self->size);
    ct_big_free(self->flat);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static Py_ssize_t
Entries_len(ct_entries *self)
{
    return (Py_ssize_t)self->n;
}

/* columns() -> (idx, size, flat): bytes of uint32, uint64, uint64 */
static PyObject *
Entries_columns(ct_entries *self, PyObject *Py_UNUSED(ignored))
{
    size_t n = self->n;
    PyObject *ib = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 4));
    PyObject *sb = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 8));
    PyObject *fb = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 8));
    if (ib == NULL || sb == NULL || fb == NULL) {
        Py_XDECREF(ib);
        Py_XDECREF(sb);
        Py_XDECREF(fb);
        return NULL;
    }
    uint32_t *idx = (uint32_t *)PyBytes_AS_STRING(ib);
    uint64_t *size = (uint64_t *)PyBytes_AS_STRING(sb);
    uint64_t *flat = (uint64_t *)PyBytes_AS_STRING(fb);
    ct_entries_iter it;
    size_t rec;
    ct_entries_iter_init(&it, self);
    while (ct_entries_next(&it, &rec)) {
        size_t e = it.pos - 1;
        idx[e] = (uint32_t)rec;
        size[e] = ct_entries_value(self->size, self->size_w, e);
        flat[e] = ct_entries_value(self->flat, self->flat_w, e);
    }
    return Py_BuildValue("(NNN)", ib, sb, fb);
}

/* get(rec) -> (position, size, flat), or None when rec has no entry */
static PyObject *
Entries_get(ct_entries *self, PyObject *arg)
{
    Py_ssize_t rec = PyLong_AsSsize_t(arg);
    if (rec == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t pos = rec < 0 ? -1 : ct_entries_find(self, (size_t)rec);
    if (pos < 0) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(nKK)", pos,
                         (unsigned long long)ct_entries_value(self->size, self->size_w, (size_t)pos),
                         (unsigned long long)ct_entries_value(self->flat, self->flat_w, (size_t)pos));
}

static PyObject *
Entries_get_nrec(ct_entries *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(self->nrec);
}

static PyObject *
Entries_get_nbytes(ct_entries *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(ct_entries_nbytes(self));
}

static PyObject *
Entries_repr(ct_entries *self)
{
    return PyUnicode_FromFormat("<Entries: %zu of %zu records>", self->n, self->nrec);
}

static PyMethodDef Entries_methods[] = {
    {"columns", (PyCFunction)Entries_columns, METH_NOARGS,
     "columns() -> (idx, size, flat) as bytes of uint32, uint64, uint64"},
    {"get", (PyCFunction)Entries_get, METH_O,
     "get(record) -> (position, size, flat), or None when the record has no entry"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Entries_getset[] = {
    {"nrec", (getter)Entries_get_nrec, NULL, "records the entries index into", NULL},
    {"nbytes", (getter)Entries_get_nbytes, NULL, "bytes the entries hold", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Entries_slots[] = {
    {Py_tp_new, Entries_new},
    {Py_tp_dealloc, Entries_dealloc},
    {Py_tp_methods, Entries_methods},
    {Py_tp_getset, Entries_getset},
    {Py_tp_repr, Entries_repr},
    {Py_sq_length, Entries_len},
    {Py_tp_doc, "Entries(idx, size, flat, nrec): one snapshot's entries, compact and "
                "immutable (idx bytes of uint32, size and flat of uint64)."},
    {0, NULL},
};

static PyType_Spec Entries_spec = {
    "classtrack._core.Entries",
    sizeof(ct_entries),
    0,
    Py_TPFLAGS_DEFAULT,
    Entries_slots,
};

int
ct_entries_type_register(PyObject *module, PyTypeObject **type)
{
    *type = ct_add_type(module, &Entries_spec, NULL, "Entries");
    return *type == NULL ? -1 : 0;
}
