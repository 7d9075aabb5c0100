/* aggregate.c - per-class totals of one snapshot, over columnar data.
 *
 * Stats.annotate_snapshot needs, for each tracking name, the sum of the
 * sizes of its objects in the snapshot and how many of its objects were
 * alive then.  Over a million objects this is a pass over flat arrays,
 * done here instead of over Python objects.
 */
#include "base/modobjs.h"
#include "columns/columns.h"
#include "tracker/entries.h"

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
    if (ct_columns_get(3, o, widths, what, b, n, "aggregate", &got) < 0) {
        goto done;
    }
    if (n[1] != n[0] || n[2] != n[0]) {
        PyErr_SetString(PyExc_ValueError, "history: columns differ in length");
        goto done;
    }
    result = ct_history(names, b[0].buf, b[1].buf, b[2].buf, n[0]);
done:
    ct_columns_release(b, got);
    return result;
}

/* A list of n ints from v.  New reference or NULL. */
static PyObject *
int_list(const unsigned long long *v, Py_ssize_t n)
{
    PyObject *out = PyList_New(n);
    for (Py_ssize_t k = 0; out != NULL && k < n; k++) {
        PyObject *x = PyLong_FromUnsignedLongLong(v[k]);
        if (x == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, k, x);
    }
    return out;
}

/* sums[name] and flats[name] of the entries of e; a name past nnames
 * counts in slot nnames.  Inlined with constant widths (sum_entries). */
static inline __attribute__((always_inline)) void
sum_entries_w(const ct_entries *e, const uint32_t *name, uint32_t nnames,
              unsigned long long *sums, unsigned long long *flats, unsigned sw, unsigned fw)
{
    if (e->bits == NULL) {
        for (size_t pos = 0; pos < e->n; pos++) {
            uint32_t nm = name[e->idx[pos]];
            nm = nm < nnames ? nm : nnames;
            sums[nm] += ct_entries_value(e->size, sw, pos);
            flats[nm] += ct_entries_value(e->flat, fw, pos);
        }
        return;
    }
    size_t pos = 0, nwords = e->nrec / 64 + 1;
    for (size_t w = 0; w < nwords && pos < e->n; w++) {
        uint64_t bits = e->bits[w];
        while (bits != 0) {
            uint32_t nm = name[w * 64 + (size_t)__builtin_ctzll(bits)];
            bits &= bits - 1;
            nm = nm < nnames ? nm : nnames;
            sums[nm] += ct_entries_value(e->size, sw, pos);
            flats[nm] += ct_entries_value(e->flat, fw, pos);
            pos++;
        }
    }
}

static void
sum_entries(const ct_entries *e, const uint32_t *name, uint32_t nnames,
            unsigned long long *sums, unsigned long long *flats)
{
#define CT_SUM(sw, fw) sum_entries_w(e, name, nnames, sums, flats, sw, fw); return
    CT_ENTRIES_BY_WIDTH(e->size_w, e->flat_w, CT_SUM)
#undef CT_SUM
}

/* aggregate(rec_name, rec_birth, rec_death, entries, timestamp, nnames,
 *           values=None) -> (sums, flats, active): lists indexed by name
 * number.  With values (bytes of uint64, one per entry) they are summed
 * instead of the entries' sizes, into both sums and flats. */
static PyObject *
core_aggregate(PyObject *module, PyObject *args)
{
    PyObject *o[3], *eobj, *values_obj = Py_None;
    double ts;
    Py_ssize_t nnames;
    if (!PyArg_ParseTuple(args, "OOOOdn|O:aggregate", &o[0], &o[1], &o[2], &eobj, &ts,
                          &nnames, &values_obj)) {
        return NULL;
    }
    const ct_entries *e = ct_entries_check(module, eobj, "aggregate");
    if (e == NULL) {
        return NULL;
    }
    if (nnames < 0 || (size_t)nnames >= UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "aggregate: name count out of range");
        return NULL;
    }
    Py_buffer b[4];
    size_t n[4];
    static const size_t widths[3] = {4, 8, 8};
    static const char *what[3] = {"name", "birth", "death"};
    int got = 0;
    PyObject *result = NULL;
    const uint64_t *values = NULL;
    unsigned long long *sums = PyMem_Calloc((size_t)nnames + 1, sizeof(unsigned long long));
    unsigned long long *flats = PyMem_Calloc((size_t)nnames + 1, sizeof(unsigned long long));
    unsigned long long *active = PyMem_Calloc((size_t)nnames + 1, sizeof(unsigned long long));
    if (sums == NULL || flats == NULL || active == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (ct_columns_get(3, o, widths, what, b, n, "aggregate", &got) < 0) {
        goto done;
    }
    if (values_obj != Py_None) {
        if (get_col(values_obj, &b[got], 8, &n[got], "values") < 0) {
            goto done;
        }
        got++;
        values = b[3].buf;
        if (n[3] != e->n) {
            PyErr_SetString(PyExc_ValueError, "aggregate: one value per entry");
            goto done;
        }
    }
    if (n[1] != n[0] || n[2] != n[0] || e->nrec > n[0]) {
        PyErr_SetString(PyExc_ValueError, "aggregate: columns differ in length");
        goto done;
    }
    const uint32_t *name = b[0].buf;
    const double *birth = b[1].buf, *death = b[2].buf;
    /* alive at ts: born before it and not dead by then; without a branch
     * per record (half of them may die in between) */
    for (size_t i = 0; i < n[0]; i++) {
        uint32_t nm = name[i] < (size_t)nnames ? name[i] : (uint32_t)nnames;
        active[nm] += (unsigned long long)((birth[i] < ts) & ((death[i] == 0.0) | (death[i] > ts)));
    }
    if (values != NULL) {
        ct_entries_iter it;
        size_t rec;
        ct_entries_iter_init(&it, e);
        while (ct_entries_next(&it, &rec)) {
            uint32_t nm = name[rec] < (size_t)nnames ? name[rec] : (uint32_t)nnames;
            sums[nm] += values[it.pos - 1];
            flats[nm] += values[it.pos - 1];
        }
    }
    else {
        sum_entries(e, name, (uint32_t)nnames, sums, flats);
    }
    PyObject *sl = int_list(sums, nnames), *fl = int_list(flats, nnames);
    PyObject *al = int_list(active, nnames);
    if (sl != NULL && fl != NULL && al != NULL) {
        result = PyTuple_Pack(3, sl, fl, al);
    }
    Py_XDECREF(sl);
    Py_XDECREF(fl);
    Py_XDECREF(al);
done:
    ct_columns_release(b, got);
    PyMem_Free(sums);
    PyMem_Free(flats);
    PyMem_Free(active);
    return result;
}

/* Raises best[i] to each entry's size over one Entries or (idx, size)
 * columns.  0 or -1. */
static int
max_into(PyObject *module, PyObject *item, uint64_t *best, size_t nrec)
{
    if (PyTuple_Check(item)) {
        Py_buffer bi, bs;
        size_t ni, ns;
        if (PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError, "record_max: expected (idx, size) pairs");
            return -1;
        }
        if (get_col(PyTuple_GET_ITEM(item, 0), &bi, 4, &ni, "idx") < 0) {
            return -1;
        }
        if (get_col(PyTuple_GET_ITEM(item, 1), &bs, 8, &ns, "size") < 0) {
            PyBuffer_Release(&bi);
            return -1;
        }
        const uint32_t *idx = bi.buf;
        const uint64_t *size = bs.buf;
        for (size_t e = 0; e < ni && e < ns; e++) {
            if (idx[e] < nrec && size[e] > best[idx[e]]) {
                best[idx[e]] = size[e];
            }
        }
        PyBuffer_Release(&bi);
        PyBuffer_Release(&bs);
        return 0;
    }
    const ct_entries *e = ct_entries_check(module, item, "record_max");
    if (e == NULL) {
        return -1;
    }
    ct_entries_iter it;
    size_t rec;
    ct_entries_iter_init(&it, e);
    while (ct_entries_next(&it, &rec)) {
        uint64_t v = ct_entries_value(e->size, e->size_w, it.pos - 1);
        if (rec < nrec && v > best[rec]) {
            best[rec] = v;
        }
    }
    return 0;
}

/* record_max(nrec, [Entries or (idx, size), ...]) -> bytes of uint64: the
 * largest size each record had over the given snapshots (0 if never sized). */
static PyObject *
core_record_max(PyObject *module, PyObject *args)
{
    Py_ssize_t nrec;
    PyObject *items;
    if (!PyArg_ParseTuple(args, "nO!", &nrec, &PyList_Type, &items)) {
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
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(items); k++) {
        if (max_into(module, PyList_GET_ITEM(items, k), best, (size_t)nrec) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

/* count_by_name(rec_name, nnames, values=None) -> list: per name number,
 * how many records have it, or with values (bytes of uint64 per record)
 * the sum of theirs. */
static PyObject *
core_count_by_name(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *name_obj, *values_obj = Py_None;
    Py_ssize_t nnames;
    if (!PyArg_ParseTuple(args, "On|O:count_by_name", &name_obj, &nnames, &values_obj)) {
        return NULL;
    }
    if (nnames < 0) {
        PyErr_SetString(PyExc_ValueError, "count_by_name: negative name count");
        return NULL;
    }
    Py_buffer bn, bv = {0};
    size_t nn, nv = 0;
    if (get_col(name_obj, &bn, 4, &nn, "name") < 0) {
        return NULL;
    }
    if (values_obj != Py_None && get_col(values_obj, &bv, 8, &nv, "values") < 0) {
        PyBuffer_Release(&bn);
        return NULL;
    }
    PyObject *result = NULL;
    unsigned long long *counts = PyMem_Calloc((size_t)nnames + 1, sizeof(unsigned long long));
    if (counts == NULL) {
        PyErr_NoMemory();
    }
    else if (bv.obj != NULL && nv != nn) {
        PyErr_SetString(PyExc_ValueError, "count_by_name: one value per record");
    }
    else {
        const uint32_t *name = bn.buf;
        const uint64_t *values = bv.obj != NULL ? bv.buf : NULL;
        for (size_t i = 0; i < nn; i++) {
            if (name[i] < (size_t)nnames) {
                counts[name[i]] += values != NULL ? values[i] : 1;
            }
        }
        result = int_list(counts, nnames);
    }
    PyMem_Free(counts);
    PyBuffer_Release(&bn);
    if (bv.obj != NULL) {
        PyBuffer_Release(&bv);
    }
    return result;
}

/* first_by_name(rec_name, nnames) -> list: per name number, the index of
 * its first record, or -1 when it has none. */
static PyObject *
core_first_by_name(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *name_obj;
    Py_ssize_t nnames;
    if (!PyArg_ParseTuple(args, "On:first_by_name", &name_obj, &nnames)) {
        return NULL;
    }
    if (nnames < 0) {
        PyErr_SetString(PyExc_ValueError, "first_by_name: negative name count");
        return NULL;
    }
    Py_buffer bn;
    size_t nn;
    if (get_col(name_obj, &bn, 4, &nn, "name") < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(nnames);
    Py_ssize_t found = 0;
    for (Py_ssize_t k = 0; out != NULL && k < nnames; k++) {
        PyList_SET_ITEM(out, k, PyLong_FromLong(-1));   /* small int: cannot fail */
    }
    const uint32_t *name = bn.buf;
    for (size_t i = 0; out != NULL && found < nnames && i < nn; i++) {
        if (name[i] < (size_t)nnames) {
            PyObject *old = PyList_GET_ITEM(out, name[i]);
            if (PyLong_AsLong(old) >= 0) {
                continue;
            }
            PyObject *v = PyLong_FromSize_t(i);
            if (v == NULL) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(out, name[i], v);
            Py_DECREF(old);
            found++;
        }
    }
    PyBuffer_Release(&bn);
    return out;
}

/* sizes_of_name(entries, rec_name, name) -> bytes of uint64: the sizes of
 * the entries whose record has that name number, in entry order. */
static PyObject *
core_sizes_of_name(PyObject *module, PyObject *args)
{
    PyObject *eobj, *name_obj;
    unsigned long wanted;
    if (!PyArg_ParseTuple(args, "OOk:sizes_of_name", &eobj, &name_obj, &wanted)) {
        return NULL;
    }
    const ct_entries *e = ct_entries_check(module, eobj, "sizes_of_name");
    Py_buffer bn;
    size_t nn;
    if (e == NULL || get_col(name_obj, &bn, 4, &nn, "name") < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    uint64_t *out = PyMem_Malloc(e->n * 8 + 1);
    if (out == NULL) {
        PyErr_NoMemory();
    }
    else if (e->nrec > nn) {
        PyErr_SetString(PyExc_ValueError, "sizes_of_name: entries name unknown records");
    }
    else {
        const uint32_t *name = bn.buf;
        size_t len = 0, rec;
        ct_entries_iter it;
        ct_entries_iter_init(&it, e);
        while (ct_entries_next(&it, &rec)) {
            if (name[rec] == wanted) {
                out[len++] = ct_entries_value(e->size, e->size_w, it.pos - 1);
            }
        }
        result = PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)(len * 8));
    }
    PyMem_Free(out);
    PyBuffer_Release(&bn);
    return result;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* value_counts(values) -> [(value, count)], ascending, over bytes of
 * uint64: what a histogram needs, in distinct values rather than one per
 * instance. */
static PyObject *
core_value_counts(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer b;
    size_t n;
    if (get_col(arg, &b, 8, &n, "values") < 0) {
        return NULL;
    }
    uint64_t *v = PyMem_Malloc(n * 8 + 1);
    PyObject *out = v != NULL ? PyList_New(0) : NULL;
    if (v == NULL) {
        PyErr_NoMemory();
    }
    if (out != NULL) {
        if (n > 0) {
            memcpy(v, b.buf, n * 8);
        }
        qsort(v, n, 8, cmp_u64);
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && v[j] == v[i]) {
                j++;
            }
            PyObject *pair = Py_BuildValue("(Kn)", (unsigned long long)v[i], (Py_ssize_t)(j - i));
            if (pair == NULL || PyList_Append(out, pair) < 0) {
                Py_XDECREF(pair);
                Py_CLEAR(out);
                break;
            }
            Py_DECREF(pair);
            i = j;
        }
    }
    PyMem_Free(v);
    PyBuffer_Release(&b);
    return out;
}

PyMethodDef ct_aggregate_functions[] = {
    {"value_counts", core_value_counts, METH_O,
     "value_counts(values) -> [(value, count)] ascending, over bytes of uint64"},
    {"aggregate", core_aggregate, METH_VARARGS,
     "aggregate(rec_name, rec_birth, rec_death, entries, timestamp, nnames, values=None) -> "
     "(sums, flats, active) per name"},
    {"history", core_history, METH_VARARGS,
     "history(names, rec_name, rec_birth, rec_death) -> {name: [(timestamp, live count)]}"},
    {"record_max", core_record_max, METH_VARARGS,
     "record_max(nrec, [Entries or (idx, size)]) -> bytes of uint64, each record's largest size"},
    {"count_by_name", core_count_by_name, METH_VARARGS,
     "count_by_name(rec_name, nnames, values=None) -> per name, records (or their values' sum)"},
    {"first_by_name", core_first_by_name, METH_VARARGS,
     "first_by_name(rec_name, nnames) -> per name, its first record's index or -1"},
    {"sizes_of_name", core_sizes_of_name, METH_VARARGS,
     "sizes_of_name(entries, rec_name, name) -> bytes of uint64, sizes of that name's entries"},
    {NULL, NULL, 0, NULL},
};
