/* bindings/py_census.c - Python binding of the census (census.c): _core.census.
 * Argument conversion only. */
#include "bindings/py_state.h"
#include "graph/census.h"

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

PyMethodDef ct_census_functions[] = {
    {"census", core_census, METH_VARARGS,
     "census(objs, exclude, retained) -> ([(type, count, size, retained or None, "
     "sample)], objects, bytes) of the heap graph of objs less exclude; retained: "
     "0 none, -1 every type, K the K largest by size."},
    {NULL, NULL, 0, NULL},
};
