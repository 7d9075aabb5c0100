/* order.c - the order of records for Stats.sort_stats, over columns.
 *
 * Pympler sorts its list of tracked objects with a Python key per object;
 * over a million records that is most of a second, and print_stats(limit=10)
 * then prints ten of them.  Here the keys come from the dataset's columns
 * and the order is computed in C: all of it (a stable merge sort), or only
 * its first `limit` records (a bounded heap, one pass, then a sort of those).
 *
 * Every key is mapped to an unsigned 64-bit value that sorts ascending:
 *   classname, name  the rank of the record's name among the sorted names
 *   birth            the bits of the (non-negative) double
 *   death            the same; alive (0.0) sorts after every death
 *   size, tsize      the complement of the size: largest first
 * Ties go to the initial order, which is Pympler's: by the first
 * appearance of the record's name, then by record index.  So the result
 * is what a stable sort of that initial order by the same keys gives.
 */
#include "base/modobjs.h"
#include "columns/columns.h"

#include <string.h>

#define CT_MAX_KEYS 8

enum { K_NAME, K_BIRTH, K_DEATH, K_SIZE, K_TSIZE };

typedef struct {
    int nkeys;
    int kind[CT_MAX_KEYS];
    const uint32_t *rec_name;   /* per record, each < nnames (checked) */
    const uint32_t *name_rank;  /* per name */
    const uint32_t *name_first; /* per name */
    const double *birth, *death;
    const uint64_t *size, *tsize;
} ct_order;

static uint64_t
time_key(double d)
{
    uint64_t bits;
    if (d == 0.0) {
        return 0;
    }
    memcpy(&bits, &d, 8);
    return bits;
}

static uint64_t
key_of(const ct_order *o, int kind, uint32_t rec)
{
    switch (kind) {
    case K_NAME: return o->name_rank[o->rec_name[rec]];
    case K_BIRTH: return time_key(o->birth[rec]);
    case K_DEATH: return o->death[rec] == 0.0 ? UINT64_MAX : time_key(o->death[rec]);
    case K_SIZE: return ~o->size[rec];
    default: return ~o->tsize[rec];
    }
}

/* <0, 0 (the same record only) or >0 */
static int
compare(const ct_order *o, uint32_t a, uint32_t b)
{
    for (int k = 0; k < o->nkeys; k++) {
        uint64_t x = key_of(o, o->kind[k], a), y = key_of(o, o->kind[k], b);
        if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    uint32_t fa = o->name_first[o->rec_name[a]], fb = o->name_first[o->rec_name[b]];
    if (fa != fb) {
        return fa < fb ? -1 : 1;
    }
    return a < b ? -1 : a > b;
}

/* Sorts v[0..n) with tmp[0..n) as scratch (bottom-up merge sort). */
static void
merge_sort(const ct_order *o, uint32_t *v, uint32_t *tmp, size_t n)
{
    uint32_t *src = v, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                dst[k++] = compare(o, src[j], src[i]) < 0 ? src[j++] : src[i++];
            }
            while (i < mid) {
                dst[k++] = src[i++];
            }
            while (j < hi) {
                dst[k++] = src[j++];
            }
        }
        uint32_t *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != v) {
        memcpy(v, src, n * sizeof(uint32_t));
    }
}

/* Max-heap (by compare) of the `limit` first records seen so far. */
static void
sift_down(const ct_order *o, uint32_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < n && compare(o, h[l], h[top]) > 0) {
            top = l;
        }
        if (r < n && compare(o, h[r], h[top]) > 0) {
            top = r;
        }
        if (top == i) {
            return;
        }
        uint32_t t = h[i];
        h[i] = h[top];
        h[top] = t;
        i = top;
    }
}

static void
sift_up(const ct_order *o, uint32_t *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (compare(o, h[i], h[parent]) <= 0) {
            return;
        }
        uint32_t t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

static int
kind_of(PyObject *name)
{
    static const char *names[] = {"classname", "name", "birth", "death", "size", "tsize"};
    static const int kinds[] = {K_NAME, K_NAME, K_BIRTH, K_DEATH, K_SIZE, K_TSIZE};
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    for (int i = 0; s != NULL && i < 6; i++) {
        if (strcmp(s, names[i]) == 0) {
            return kinds[i];
        }
    }
    if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "record_order: unknown sort key");
    }
    return -1;
}

/* record_order(keys, rec_name, name_rank, name_first, birth, death, size,
 *              tsize, names_wanted, limit) -> bytes of uint32 record indices:
 * the records whose name is wanted (names_wanted: bytes, nonzero per name
 * wanted, or None for all), in the order of the keys, at most `limit` of
 * them (-1: all).  See the file comment for the keys. */
static PyObject *
core_record_order(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *keys, *o[7], *wanted_obj;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "O!OOOOOOOOn:record_order", &PyTuple_Type, &keys, &o[0],
                          &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &wanted_obj, &limit)) {
        return NULL;
    }
    ct_order ord = {0};
    if (PyTuple_GET_SIZE(keys) > CT_MAX_KEYS) {
        PyErr_SetString(PyExc_ValueError, "record_order: too many keys");
        return NULL;
    }
    ord.nkeys = (int)PyTuple_GET_SIZE(keys);
    for (int k = 0; k < ord.nkeys; k++) {
        if ((ord.kind[k] = kind_of(PyTuple_GET_ITEM(keys, k))) < 0) {
            return NULL;
        }
    }
    Py_buffer b[8];
    size_t n[8];
    static const size_t widths[7] = {4, 4, 4, 8, 8, 8, 8};
    static const char *what[7] = {"name", "name_rank", "name_first", "birth", "death",
                                  "size", "tsize"};
    int got = 0;
    PyObject *result = NULL;
    uint32_t *v = NULL, *tmp = NULL;
    const unsigned char *wanted = NULL;
    if (ct_columns_get(7, o, widths, what, b, n, "record_order", &got) < 0) {
        goto done;
    }
    if (wanted_obj != Py_None) {
        if (ct_column_get(wanted_obj, 1, &b[got], &n[got], "record_order", "wanted") < 0) {
            goto done;
        }
        got++;
        wanted = b[7].buf;
        if (n[7] != n[1]) {
            PyErr_SetString(PyExc_ValueError, "record_order: one wanted flag per name");
            goto done;
        }
    }
    size_t nrec = n[0], nnames = n[1];
    if (n[2] != nnames || n[3] != nrec || n[4] != nrec || n[5] != nrec || n[6] != nrec
        || nrec > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "record_order: columns differ in length");
        goto done;
    }
    ord.rec_name = b[0].buf;
    ord.name_rank = b[1].buf;
    ord.name_first = b[2].buf;
    ord.birth = b[3].buf;
    ord.death = b[4].buf;
    ord.size = b[5].buf;
    ord.tsize = b[6].buf;
    size_t cap = limit < 0 || (size_t)limit > nrec ? nrec : (size_t)limit;
    v = PyMem_Malloc(cap * sizeof(uint32_t) + 1);
    tmp = PyMem_Malloc(cap * sizeof(uint32_t) + 1);
    if (v == NULL || tmp == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    size_t len = 0;
    int heap = cap < nrec;
    for (size_t i = 0; cap > 0 && i < nrec; i++) {
        uint32_t name = ord.rec_name[i];
        if (name >= nnames || (wanted != NULL && !wanted[name])) {
            continue;
        }
        if (len < cap) {
            v[len++] = (uint32_t)i;
            if (heap) {
                sift_up(&ord, v, len - 1);
            }
        }
        else if (compare(&ord, (uint32_t)i, v[0]) < 0) {
            v[0] = (uint32_t)i;
            sift_down(&ord, v, len, 0);
        }
    }
    merge_sort(&ord, v, tmp, len);
    result = PyBytes_FromStringAndSize((const char *)v, (Py_ssize_t)(len * sizeof(uint32_t)));
done:
    ct_columns_release(b, got);
    PyMem_Free(v);
    PyMem_Free(tmp);
    return result;
}

PyMethodDef ct_order_functions[] = {
    {"record_order", core_record_order, METH_VARARGS,
     "record_order(keys, rec_name, name_rank, name_first, birth, death, size, tsize, "
     "names_wanted, limit) -> bytes of uint32: record indices in sort_stats order"},
    {NULL, NULL, 0, NULL},
};
