/* colbuf.h - the numeric columns of a dataset (see dump/dumpfmt.h) are
 * buffers of fixed-width native items; this is the one place that
 * accepts such a buffer, and the binary search over an ascending one. */
#ifndef CLASSTRACK_COLBUF_H
#define CLASSTRACK_COLBUF_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Gets a buffer of whole, aligned items of `itemsize` bytes into *b and
 * their count into *n.  On failure: ValueError naming `who` and the
 * column `what`, nothing held, -1.  The caller releases *b. */
static inline int
ct_column_get(PyObject *obj, size_t itemsize, Py_buffer *b, size_t *n,
              const char *who, const char *what)
{
    if (PyObject_GetBuffer(obj, b, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    const char *problem = NULL;
    if (b->len % (Py_ssize_t)itemsize != 0) {
        problem = "has a partial item";
    }
    else if (b->len > 0 && (uintptr_t)b->buf % itemsize != 0) {     /* empty: nothing read */
        problem = "is not aligned";
    }
    if (problem != NULL) {
        PyBuffer_Release(b);
        PyErr_Format(PyExc_ValueError, "%s: column %s %s", who, what, problem);
        return -1;
    }
    *n = (size_t)b->len / itemsize;
    return 0;
}

/* ct_column_get for count columns objs[i] into b[i], n[i]; *got counts
 * the buffers held (release them with ct_columns_release, also on
 * failure).  0, or -1 with ValueError/TypeError. */
static inline int
ct_columns_get(int count, PyObject *const *objs, const size_t *widths,
               const char *const *what, Py_buffer *b, size_t *n, const char *who, int *got)
{
    for (; *got < count; (*got)++) {
        if (ct_column_get(objs[*got], widths[*got], &b[*got], &n[*got], who, what[*got]) < 0) {
            return -1;
        }
    }
    return 0;
}

static inline void
ct_columns_release(Py_buffer *b, int got)
{
    for (int i = 0; i < got; i++) {
        PyBuffer_Release(&b[i]);
    }
}

/* The position of `key` in the n ascending values a[0..n), or -1. */
static inline Py_ssize_t
ct_sorted_find(const uint32_t *a, size_t n, uint64_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < key) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo < n && a[lo] == key ? (Py_ssize_t)lo : -1;
}

#endif
