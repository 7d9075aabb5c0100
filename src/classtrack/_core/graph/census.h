/* graph/census.h - the whole heap by class: count, flat bytes and retained bytes
 * per type, over a heap graph (graph.h).  See census.c for the design. */
#ifndef CLASSTRACK_CENSUS_H
#define CLASSTRACK_CENSUS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "graph/graph.h"
#include "sizer/sizer.h"

typedef struct {
    PyTypeObject *type;     /* borrowed: an instance in the graph holds it */
    Py_ssize_t count;       /* its instances in the graph */
    Py_ssize_t size;        /* their flat bytes (ct_flat_size) */
    Py_ssize_t retained;    /* bytes freed with all of them; -1 not known */
    PyObject *sample;       /* borrowed: the last instance met (the graph
                               holds it): gc.get_objects() lists the oldest
                               generation last, so a long-lived one rather
                               than young garbage */
    int leaves_only;        /* no instance has an edge out: retained == size */
} ct_census_row;

typedef struct {
    ct_census_row *rows;    /* malloc'ed, in order of first instance met */
    size_t n, cap;
    PyObject *index;        /* strong: dict type -> row number (int) */
    uint32_t *row_of;       /* malloc'ed, g->n entries: each node's row
                               (node 0, the virtual root: UINT32_MAX) */
    PyObject **owned;       /* ct_census_walk: strong references to the
                               objects found (malloc'ed), nowned of them */
    size_t nowned, ownedcap;
    Py_ssize_t objects;     /* sum of the counts */
    Py_ssize_t bytes;       /* sum of the sizes */
} ct_census;

/* Counts and sizes, by type, every object of objs (gc.get_objects()) but
 * those of the tuple exclude, and every object they refer to that objs
 * does not list (non-GC objects, untracked containers: the objects of the
 * graph ct_graph_build would make, found without building it: no edges,
 * no node numbers).  c->owned holds a strong reference to each object
 * found (samples included) until ct_census_free.  0, or -1 with an
 * exception (c freed). */
int ct_census_walk(ct_census *c, PyObject *objs, PyObject *exclude, ct_sizer *s);

/* Counts and sizes every object of g (its nodes and folded leaves), by
 * type.  g must have its sizes (ct_graph_sizes, same sizer s).  0, or -1
 * with an exception (c freed). */
int ct_census_take(ct_census *c, const ct_graph *g, ct_sizer *s);

/* Fills rows[k].retained for the `top` rows of the largest sizes (all
 * of them when top >= c->n; ties by row order): what would no longer be
 * reachable from the roots if every instance of the type were gone, the
 * instances included.  0, or -1 with MemoryError. */
int ct_census_retained(ct_census *c, const ct_graph *g, size_t top);

void ct_census_free(ct_census *c);

/* Count-only classes: adds to counts[row] and sizes[row] each instance of
 * a type that rows_of maps to `row` (keys: type addresses; rows below
 * the caller's nrows), with its flat size (ct_flat_size).  Looks at every
 * object of objs (gc.get_objects()) but those of the tuple exclude; with
 * `reach`, also at the objects they lead to that objs does not list
 * (non-GC instances, untracked containers), found as ct_census_walk finds
 * them.  Without `reach` it costs one pointer-map probe per object whose
 * type differs from the one before (gc lists come in runs of one type)
 * and a flat size per instance counted: far less than a gc.collect().
 * Nothing is materialised; a __sizeof__ written in Python is the only
 * code that may run.  0, or -1 with an exception (counts partial). */
int ct_census_count(PyObject *objs, PyObject *exclude, const ct_ptrmap *rows_of, int reach,
                    ct_sizer *s, Py_ssize_t *counts, Py_ssize_t *sizes);

#endif
