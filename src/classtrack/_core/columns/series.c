/* series.c - the live-instance count of a class over time, ready to draw.
 *
 * The HTML report draws each class's count of live instances as a step
 * line.  A class of a million instances has up to two million birth and
 * death events; a chart is 860 pixels wide.  live_series walks the
 * events in time order over the columns (no Python object per event) and
 * returns what the chart draws: every step when there are few events,
 * else per time bucket the range the count went through (its envelope:
 * highest, lowest, last), plus a bounded number of exact samples for
 * hover marks.  Births come first among events at the same time, as in
 * the history (aggregate.c).
 *
 * Event times are sorted by a radix sort of their bits (a double's bits,
 * sign-adjusted, order as the doubles do), which costs four passes over
 * them; births, registered in time order, are usually sorted already and
 * only checked.
 */
#include "base/modobjs.h"
#include "columns/columns.h"

#include <math.h>
#include <string.h>

/* The bits of d as an unsigned key that sorts as d does. */
static inline uint64_t
order_key(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return (u >> 63) ? ~u : u | ((uint64_t)1 << 63);
}

static inline double
key_value(uint64_t k)
{
    uint64_t u = (k >> 63) ? k & ~((uint64_t)1 << 63) : ~k;
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Sorts n keys ascending (LSD radix, 16-bit digits); tmp has room for n.
 * 0, or -1 with MemoryError. */
static int
radix_sort(uint64_t *keys, uint64_t *tmp, size_t n)
{
    size_t *count = PyMem_Malloc(65536 * sizeof(size_t));
    if (count == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    uint64_t *src = keys, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 16) {
        memset(count, 0, 65536 * sizeof(size_t));
        for (size_t i = 0; i < n; i++) {
            count[(src[i] >> shift) & 0xffff]++;
        }
        size_t sum = 0;
        for (size_t d = 0; d < 65536; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            dst[count[(src[i] >> shift) & 0xffff]++] = src[i];
        }
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    PyMem_Free(count);      /* four passes: the result is back in keys */
    return 0;
}

static int
sort_keys(uint64_t *keys, uint64_t *tmp, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (keys[i] < keys[i - 1]) {
            return radix_sort(keys, tmp, n);
        }
    }
    return 0;
}

static int
append_point(PyObject *list, double x, long long y)
{
    PyObject *pt = Py_BuildValue("(dL)", x, y);
    if (pt == NULL) {
        return -1;
    }
    int rc = PyList_Append(list, pt);
    Py_DECREF(pt);
    return rc;
}

/* live_series(rec_name, birth, death, wanted, x0, x1, max_points,
 *             max_marks) -> (x0, x1, nevents, points, marks)
 *
 * The events of the records whose name number n has wanted[n] set.  The
 * x range: x0 the earlier of the given x0 and the first event, x1 as
 * given, or the last event's time when x1 is NaN.  points: the step line
 * as (time, count) pairs, each step drawn as (t, count before), (t, count
 * after); with more than 2 * max_points events, per bucket of
 * (x1 - x0) / max_points seconds that had events: (start, highest),
 * (start, lowest), (start, last).  marks: every k-th event's (time,
 * count), at most about max_marks of them. */
static PyObject *
core_live_series(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *o[4];
    double x0, x1;
    Py_ssize_t max_points, max_marks;
    if (!PyArg_ParseTuple(args, "OOOOddnn:live_series", &o[0], &o[1], &o[2], &o[3], &x0, &x1,
                          &max_points, &max_marks)) {
        return NULL;
    }
    if (max_points < 1 || max_marks < 1) {
        PyErr_SetString(PyExc_ValueError, "live_series: max_points and max_marks must be >= 1");
        return NULL;
    }
    Py_buffer b[4];
    size_t n[4];
    static const size_t widths[4] = {4, 8, 8, 1};
    static const char *what[4] = {"name", "birth", "death", "wanted"};
    int got = 0;
    PyObject *result = NULL, *points = NULL, *marks = NULL;
    uint64_t *births = NULL, *deaths = NULL, *tmp = NULL;
    if (ct_columns_get(4, o, widths, what, b, n, "live_series", &got) < 0) {
        goto done;
    }
    if (n[1] != n[0] || n[2] != n[0]) {
        PyErr_SetString(PyExc_ValueError, "live_series: columns differ in length");
        goto done;
    }
    const uint32_t *name = b[0].buf;
    const double *birth = b[1].buf, *death = b[2].buf;
    const unsigned char *wanted = b[3].buf;
    /* made before the columns are read: allocating may run a collection,
     * and so Python code that could change a mutable column between the
     * counting pass and the filling pass (which is bounded all the same) */
    points = PyList_New(0);
    marks = PyList_New(0);
    if (points == NULL || marks == NULL) {
        goto done;
    }
    size_t nw = n[3], nb = 0, nd = 0;
    for (size_t i = 0; i < n[0]; i++) {
        if (name[i] < nw && wanted[name[i]]) {
            nb++;
            nd += death[i] != 0.0;
        }
    }
    births = PyMem_Malloc(nb * 8 + 8);
    deaths = PyMem_Malloc(nd * 8 + 8);
    tmp = PyMem_Malloc((nb > nd ? nb : nd) * 8 + 8);
    if (births == NULL || deaths == NULL || tmp == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    size_t ib = 0, id = 0;
    for (size_t i = 0; i < n[0] && ib < nb; i++) {
        if (name[i] < nw && wanted[name[i]]) {
            births[ib++] = order_key(birth[i]);
            if (death[i] != 0.0 && id < nd) {
                deaths[id++] = order_key(death[i]);
            }
        }
    }
    nb = ib;
    nd = id;
    if (sort_keys(births, tmp, nb) < 0 || sort_keys(deaths, tmp, nd) < 0) {
        goto done;
    }
    size_t nevents = nb + nd;
    if (nevents > 0) {
        double first = key_value(births[0]);    /* a record is born before it dies */
        x0 = first < x0 ? first : x0;
        if (isnan(x1)) {
            x1 = key_value(nd > 0 && deaths[nd - 1] > births[nb - 1] ? deaths[nd - 1]
                                                                     : births[nb - 1]);
        }
    }
    int envelope = nevents > 2 * (size_t)max_points;
    double span = (x1 - x0) / (double)max_points;
    size_t stride = nevents / (size_t)max_marks > 1 ? nevents / (size_t)max_marks : 1;
    long long count = 0, prev = 0, lo = 0, hi = 0;
    long long bucket = -1;
    ib = id = 0;
    for (size_t e = 0; e < nevents; e++) {
        /* births before deaths at the same time */
        int is_birth = id >= nd || (ib < nb && births[ib] <= deaths[id]);
        double t = key_value(is_birth ? births[ib++] : deaths[id++]);
        prev = count;
        count += is_birth ? 1 : -1;
        if (e % stride == 0 && append_point(marks, t, count) < 0) {
            goto done;
        }
        if (!envelope) {
            if ((e > 0 && append_point(points, t, prev) < 0) || append_point(points, t, count) < 0) {
                goto done;
            }
            continue;
        }
        /* the bucket (past max_points for events after x1, drawn beyond
         * the chart's edge as the Python drawing did); clamped so that
         * the conversion stays defined for any times */
        double q = span > 0 ? (t - x0) / span : 0.0;
        long long bk = q > 0 ? (q < 4e18 ? (long long)q : (long long)4e18) : 0;
        if (bk != bucket) {
            if (bucket >= 0) {
                double bx = x0 + (double)bucket * span;
                if (append_point(points, bx, hi) < 0 || append_point(points, bx, lo) < 0
                    || append_point(points, bx, prev) < 0) {
                    goto done;
                }
            }
            bucket = bk;
            lo = hi = count;
        }
        lo = count < lo ? count : lo;
        hi = count > hi ? count : hi;
    }
    if (envelope && bucket >= 0) {
        double bx = x0 + (double)bucket * span;
        if (append_point(points, bx, hi) < 0 || append_point(points, bx, lo) < 0
            || append_point(points, bx, count) < 0) {
            goto done;
        }
    }
    result = Py_BuildValue("(ddnOO)", x0, x1, (Py_ssize_t)nevents, points, marks);
done:
    ct_columns_release(b, got);
    PyMem_Free(births);
    PyMem_Free(deaths);
    PyMem_Free(tmp);
    Py_XDECREF(points);
    Py_XDECREF(marks);
    return result;
}

PyMethodDef ct_series_functions[] = {
    {"live_series", core_live_series, METH_VARARGS,
     "live_series(rec_name, birth, death, wanted, x0, x1, max_points, max_marks) -> "
     "(x0, x1, nevents, points, marks): a class's live count over time, ready to draw"},
    {NULL, NULL, 0, NULL},
};
