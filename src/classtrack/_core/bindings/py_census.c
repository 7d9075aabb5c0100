/* bindings/py_census.c - Python binding of the census (census.c): _core.census.
 * Argument conversion only. */
#include "bindings/py_state.h"
#include "graph/census.h"
#include "base/gcwalk.h"

#include <string.h>

/* census(objs, exclude, retained) -> (rows, objects, bytes): every object
 * of the heap graph of objs (gc.get_objects()) less the objects of the
 * tuple exclude, by type.  rows: [(type, count, size, retained, sample)]
 * in the order each type was first met; retained is None but for the
 * `retained` largest types by size (-1: all of them); sample is one
 * instance (a new reference, for a why_alive path). */
static PyObject *
core_census(PyObject *module, PyObject *args)
{
    PyObject *objs, *exclude;
    Py_ssize_t want_retained;
    if (!PyArg_ParseTuple(args, "O!O!n:census", &PyList_Type, &objs, &PyTuple_Type,
                          &exclude, &want_retained)) {
        return NULL;
    }
    if (want_retained < -1) {
        PyErr_SetString(PyExc_ValueError, "census: retained must be -1, 0 or a count");
        return NULL;
    }
    ct_state *st = ct_get_state(module);
    if (ct_sizer_ready(&st->sizer_refs) < 0) {
        return NULL;
    }
    /* without retained bytes no graph is needed: the walk finds the same
     * objects at a fraction of the cost (no edges, no node numbers) */
    ct_graph g;
    memset(&g, 0, sizeof(g));
    PyObject *result = NULL, *rows = NULL;
    ct_census c = {0};
    ct_sizer s;
    ct_sizer_init(&s, &st->sizer_refs);
    int rc;
    if (want_retained == 0) {
        rc = ct_census_walk(&c, objs, exclude, &s);
    }
    else {
        rc = ct_graph_build(&g, objs, exclude);
        if (rc == 0) {
            rc = ct_graph_sizes(&g, &s);
        }
        if (rc == 0) {
            rc = ct_census_take(&c, &g, &s);
        }
    }
    ct_sizer_fini(&s);
    if (rc < 0 || (want_retained != 0
                   && ct_census_retained(&c, &g, want_retained < 0 ? c.n : (size_t)want_retained)
                      < 0)) {
        goto done;
    }
    rows = PyList_New((Py_ssize_t)c.n);
    for (size_t k = 0; rows != NULL && k < c.n; k++) {
        ct_census_row *r = &c.rows[k];
        PyObject *row;
        if (r->retained >= 0) {
            row = Py_BuildValue("(OnnnO)", (PyObject *)r->type, r->count, r->size,
                                r->retained, r->sample);
        }
        else {
            row = Py_BuildValue("(OnnOO)", (PyObject *)r->type, r->count, r->size,
                                Py_None, r->sample);
        }
        if (row == NULL) {
            Py_CLEAR(rows);
            break;
        }
        PyList_SET_ITEM(rows, (Py_ssize_t)k, row);
    }
    if (rows != NULL) {
        result = Py_BuildValue("(Nnn)", rows, c.objects, c.bytes);
    }
done:
    ct_census_free(&c);
    ct_graph_free(&g);
    return result;
}

/* count_instances(objs, classes, exclude, reach) -> [(instances, bytes)]:
 * the count-only classes of a snapshot.  classes: a list of tuples of
 * types, row k the types whose instances count for class k (the class
 * and those of its subclasses attributed to it); a type in two rows is
 * a ValueError.  reach: 1 also walks the referents of objs (instances
 * the collector does not list), 0 not, -1 when some type is not a GC
 * type (its instances are never listed).
 * objs None: the collector's objects, visited in place (base/gcwalk.h),
 * with no list of the whole heap (megabytes at every snapshot); only the
 * instances of the rows' types are kept, and sized after the visit.
 * Needs every type to be a GC type and reach 0 or -1 (a ValueError
 * otherwise: the caller passes the list). */
typedef struct {
    const ct_ptrmap *rows_of;
    PyObject **found;   /* strong references */
    size_t n, cap;
    int failed;
} match_visit;

/* The visit may not create or destroy Python objects: matches are kept
 * in a C array, with a new reference each (no deallocation can follow). */
static int
keep_match(PyObject *o, void *arg)
{
    match_visit *m = arg;
    uint32_t row;
    if (!ct_ptrmap_get(m->rows_of, Py_TYPE(o), &row)) {
        return 1;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        PyObject **found = realloc(m->found, cap * sizeof(*found));
        if (found == NULL) {
            m->failed = 1;
            return 0;
        }
        m->found = found;
        m->cap = cap;
    }
    m->found[m->n++] = Py_NewRef(o);
    return 1;
}

/* A list of the collector's objects whose type is in rows_of. */
static PyObject *
heap_matches(const ct_ptrmap *rows_of)
{
    match_visit m = {rows_of, NULL, 0, 0, 0};
    int rc = ct_gc_visit_objects(keep_match, &m);
    PyObject *out = rc < 0 ? NULL
                    : m.failed ? PyErr_NoMemory() : PyList_New((Py_ssize_t)m.n);
    for (size_t i = 0; i < m.n; i++) {
        if (out != NULL) {
            PyList_SET_ITEM(out, (Py_ssize_t)i, m.found[i]);
        }
        else {
            Py_DECREF(m.found[i]);
        }
    }
    free(m.found);
    return out;
}

static PyObject *
core_count_instances(PyObject *module, PyObject *args)
{
    PyObject *objs, *classes, *exclude, *rows = NULL, *listed = NULL;
    int reach;
    if (!PyArg_ParseTuple(args, "OO!O!i:count_instances", &objs,
                          &PyList_Type, &classes, &PyTuple_Type, &exclude, &reach)) {
        return NULL;
    }
    if (objs != Py_None && !PyList_Check(objs)) {
        PyErr_Format(PyExc_TypeError, "count_instances: objs must be a list or None, not %.100s",
                     Py_TYPE(objs)->tp_name);
        return NULL;
    }
    ct_state *st = ct_get_state(module);
    Py_ssize_t nrows = PyList_GET_SIZE(classes);
    Py_ssize_t *counts = PyMem_Calloc((size_t)nrows + 1, sizeof(Py_ssize_t));
    Py_ssize_t *sizes = PyMem_Calloc((size_t)nrows + 1, sizeof(Py_ssize_t));
    ct_ptrmap rows_of = {0};
    PyObject *result = NULL;
    int any_nogc = 0;
    if (counts == NULL || sizes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* a private copy: the caller's list could change under a __sizeof__ */
    rows = PySequence_Tuple(classes);
    if (rows == NULL) {
        goto done;
    }
    for (Py_ssize_t k = 0; k < nrows; k++) {
        PyObject *row = PyTuple_GET_ITEM(rows, k);
        if (!PyTuple_Check(row)) {
            PyErr_SetString(PyExc_TypeError, "count_instances: each class is a tuple of types");
            goto done;
        }
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(row); j++) {
            PyObject *tp = PyTuple_GET_ITEM(row, j);
            if (!PyType_Check(tp)) {
                PyErr_SetString(PyExc_TypeError, "count_instances: expected types");
                goto done;
            }
            if ((rows_of.n + 1) * 10 > rows_of.cap * 7
                && ct_ptrmap_resize(&rows_of, rows_of.cap ? rows_of.cap * 2 : 16) < 0) {
                PyErr_NoMemory();
                goto done;
            }
            ct_ptrmap_slot *e = ct_ptrmap_slot_of(&rows_of, tp);
            if (e->key != 0) {
                PyErr_Format(PyExc_ValueError, "count_instances: %.100s is in two rows",
                             ((PyTypeObject *)tp)->tp_name);
                goto done;
            }
            ct_ptrmap_fill(&rows_of, e, tp, (uint32_t)k);
            any_nogc |= !PyType_IS_GC((PyTypeObject *)tp);
        }
    }
    if (ct_sizer_ready(&st->sizer_refs) < 0) {
        goto done;
    }
    int walk = reach < 0 ? any_nogc : reach != 0;
    if (objs == Py_None) {
        if (walk) {
            PyErr_SetString(PyExc_ValueError,
                            "count_instances: objs=None cannot reach objects the collector "
                            "does not list (a type is not a GC type): pass gc.get_objects()");
            goto done;
        }
        listed = heap_matches(&rows_of);
        if (listed == NULL) {
            goto done;
        }
        objs = listed;
    }
    ct_sizer s;
    ct_sizer_init(&s, &st->sizer_refs);
    int rc = ct_census_count(objs, exclude, &rows_of, walk, &s, counts, sizes);
    ct_sizer_fini(&s);
    if (rc < 0) {
        goto done;
    }
    result = PyList_New(nrows);
    for (Py_ssize_t k = 0; result != NULL && k < nrows; k++) {
        PyObject *pair = Py_BuildValue("(nn)", counts[k], sizes[k]);
        if (pair == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, k, pair);
    }
done:
    Py_XDECREF(rows);
    Py_XDECREF(listed);
    ct_ptrmap_clear(&rows_of);
    PyMem_Free(counts);
    PyMem_Free(sizes);
    return result;
}

/* release_list(list): empties a list of the whole heap (gc.get_objects())
 * without moving glibc's dynamic mmap threshold.  The array is megabytes,
 * which glibc maps on its own; free() of such a block raises the threshold
 * to the block's size, and the program's later requests below it are then
 * carved from the brk heap, where freed ones stay as holes (27 MB of them
 * on a Sphinx build, docs/benchmarks.md).  CPython's own ways of emptying
 * a list free the array, or copy the items to a temporary array as large
 * (del l[1:]).  Here the list is detached from its array first (so code
 * run by a decref sees an empty list), the items are released, and the
 * array is shrunk with realloc (mremap for a mapped block) before it is
 * freed: a block of one page leaves the threshold where it was. */
static PyObject *
core_release_list(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyList_CheckExact(arg)) {
        PyErr_Format(PyExc_TypeError, "release_list() takes a list, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    PyListObject *l = (PyListObject *)arg;
    PyObject **items = l->ob_item;
    Py_ssize_t n = Py_SIZE(l);
    l->ob_item = NULL;
    Py_SET_SIZE(l, 0);
    l->allocated = 0;
    for (Py_ssize_t i = n; i-- > 0;) {
        Py_XDECREF(items[i]);
    }
    if (items != NULL) {
        PyObject **small = PyMem_Realloc(items, sizeof(PyObject *));
        PyMem_Free(small != NULL ? small : items);
    }
    Py_RETURN_NONE;
}

PyMethodDef ct_census_functions[] = {
    {"release_list", core_release_list, METH_O,
     "release_list(list): empty a list of the whole heap without raising glibc's "
     "dynamic mmap threshold (shrinks its array before freeing it)"},
    {"count_instances", core_count_instances, METH_VARARGS,
     "count_instances(objs, classes, exclude, reach) -> [(instances, bytes)] per row of "
     "classes (tuples of types) among objs (gc.get_objects(), or None on 3.12+ to visit "
     "the collector's objects in place) less exclude; reach: also the objects they lead "
     "to (1), not (0), when a type is not a GC type (-1)."},
    {"census", core_census, METH_VARARGS,
     "census(objs, exclude, retained) -> ([(type, count, size, retained or None, "
     "sample)], objects, bytes) of the heap graph of objs less exclude; retained: "
     "0 none, -1 every type, K the K largest by size."},
    {NULL, NULL, 0, NULL},
};
