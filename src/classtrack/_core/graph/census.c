/* graph/census.c - the whole heap by class: how many objects of each type the
 * heap graph holds, their flat bytes and, on demand, the bytes that would
 * be freed with all the instances of a type.
 *
 * What is counted: every object of a graph built by ct_graph_build over
 * gc.get_objects(): its nodes (the GC objects, and the non-GC objects
 * they refer to) and its folded leaves (non-GC objects that one node
 * alone refers to), each once.  Not counted: objects no GC object refers
 * to (held only from C: a C global, a C stack, a non-GC container of C
 * code) and the objects the caller excluded from the graph.
 *
 * Sizes: the sizer's flat size of each object (ct_flat_size: its own
 * allocations, not its referents).  g->size[id] holds a node's size plus
 * the sizes of the leaves folded into it; a folded leaf's size is taken
 * again here and moved to the leaf's own type.
 *
 * Retained bytes of a type: the bytes of the nodes reachable from the
 * roots that are no longer reachable once every node of the type is
 * blocked (the nodes themselves included, with what is folded into
 * them).  A type whose instances have no edge out (str, int, bytes, any
 * non-GC type but an expanded ndarray) retains exactly its own bytes, with
 * no walk.  Each other type costs one breadth-first walk of the graph;
 * the nodes reachable at all are found once for every type.
 *
 * Ownership: rows borrow their type and sample: the graph holds a strong
 * reference to every object it counts, and each object to its type, for
 * as long as the graph lives, which the caller keeps longer than c.
 * Nothing here runs Python code but ct_flat_size (a __sizeof__) and the
 * dict of rows (types hash by identity).
 */
#include "graph/census.h"
#include "base/layout.h"

#include <stdlib.h>
#include <string.h>

/* The row of tp, added if new; *cache remembers the last type asked (the
 * objects of gc.get_objects() come in runs of one type).  The row number,
 * or -1 with an exception. */
static Py_ssize_t
row_for(ct_census *c, PyTypeObject *tp, PyObject *sample, Py_ssize_t *cache)
{
    if (*cache >= 0 && c->rows[*cache].type == tp) {
        return *cache;
    }
    PyObject *k = PyDict_GetItemWithError(c->index, (PyObject *)tp);
    if (k != NULL) {
        return *cache = PyLong_AsSsize_t(k);
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        ct_census_row *rows = realloc(c->rows, cap * sizeof(*rows));
        if (rows == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->rows = rows;
        c->cap = cap;
    }
    PyObject *num = PyLong_FromSize_t(c->n);
    if (num == NULL || PyDict_SetItem(c->index, (PyObject *)tp, num) < 0) {
        Py_XDECREF(num);
        return -1;
    }
    Py_DECREF(num);
    ct_census_row *r = &c->rows[c->n];
    r->type = tp;
    r->count = r->size = 0;
    r->retained = -1;
    r->sample = sample;     /* replaced by each later instance met */
    r->leaves_only = 1;
    return *cache = (Py_ssize_t)c->n++;
}

int
ct_census_take(ct_census *c, const ct_graph *g, ct_sizer *s)
{
    memset(c, 0, sizeof(*c));
    c->index = PyDict_New();
    c->row_of = malloc((g->n ? g->n : 1) * sizeof(uint32_t));
    if (c->index == NULL || c->row_of == NULL) {
        if (c->row_of == NULL) {
            PyErr_NoMemory();
        }
        goto error;
    }
    Py_ssize_t cache = -1;
    c->row_of[0] = UINT32_MAX;
    for (size_t id = 1; id < g->n; id++) {
        PyObject *o = g->nodes[id];
        Py_ssize_t k = row_for(c, Py_TYPE(o), o, &cache);
        if (k < 0) {
            goto error;
        }
        c->row_of[id] = (uint32_t)k;
        c->rows[k].sample = o;
        c->rows[k].count++;
        c->rows[k].size += g->size[id];
        if (g->out_off[id + 1] > g->out_off[id]) {
            c->rows[k].leaves_only = 0;
        }
    }
    for (size_t f = 0; f < g->nfolded; f++) {
        PyObject *leaf = g->folded[f].leaf;
        Py_ssize_t v = ct_flat_size(s, leaf);
        Py_ssize_t k = v < 0 ? -1 : row_for(c, Py_TYPE(leaf), leaf, &cache);
        if (k < 0) {
            goto error;
        }
        if (c->rows[k].sample == NULL || !PyObject_IS_GC(c->rows[k].sample)) {
            c->rows[k].sample = leaf;
        }
        c->rows[k].count++;
        c->rows[k].size += v;
        c->rows[c->row_of[g->folded[f].holder]].size -= v;
    }
    for (size_t k = 0; k < c->n; k++) {
        c->objects += c->rows[k].count;
        c->bytes += c->rows[k].size;
    }
    return 0;
error:
    ct_census_free(c);
    return -1;
}

/* ---- the walk: the graph's objects without the graph ---- */

/* A referent the walks keep: unless it is excluded or met already (it is
 * marked met in `seen`), a strong reference to it is appended to a growable
 * array of found objects (grown by doubling from `first`).  1 kept, 0 not,
 * -1 when out of memory. */
static int
keep_new(const ct_ptrset *excl, ct_ptrset *seen, PyObject ***owned, size_t *n,
         size_t *cap, size_t first, PyObject *ref)
{
    if (ct_ptrset_contains(excl, ref)) {
        return 0;
    }
    int added = ct_ptrset_add(seen, ref);
    if (added <= 0) {
        return added;
    }
    if (*n == *cap) {
        size_t grown = *cap ? *cap * 2 : first;
        PyObject **p = realloc(*owned, grown * sizeof(PyObject *));
        if (p == NULL) {
            return -1;
        }
        *owned = p;
        *cap = grown;
    }
    (*owned)[(*n)++] = Py_NewRef(ref);
    return 1;
}

typedef struct {
    ct_census *c;
    ct_ptrset seen;         /* the objects listed, then those found */
    ct_ptrset excl;         /* the caller's objects: neither counted nor followed */
    int failed;
} walk;

/* A referent not listed, excluded or met already is counted once, and
 * expanded later if it may refer to more.  (Listed is not "tracked by the
 * collector": an object made after the list, a __sizeof__'s, may be
 * tracked and not listed; the graph counts it, so the walk does too.) */
static int
walk_visit(PyObject *ref, void *arg)
{
    walk *w = arg;
    ct_census *c = w->c;
    if (keep_new(&w->excl, &w->seen, &c->owned, &c->nowned, &c->ownedcap, 65536, ref) < 0) {
        w->failed = 1;
        return -1;
    }
    return 0;
}

/* Adds o to its type's row: one more instance, its flat size.  0 or -1. */
static int
tally(ct_census *c, ct_sizer *s, PyObject *o, Py_ssize_t *cache)
{
    Py_ssize_t v = ct_flat_size(s, o);
    Py_ssize_t k = v < 0 ? -1 : row_for(c, Py_TYPE(o), o, cache);
    if (k < 0) {
        return -1;
    }
    c->rows[k].sample = o;
    c->rows[k].count++;
    c->rows[k].size += v;
    return 0;
}

int
ct_census_walk(ct_census *c, PyObject *objs, PyObject *exclude, ct_sizer *s)
{
    memset(c, 0, sizeof(*c));
    walk w = {c, {0}, {0}, 0};
    Py_ssize_t cache = -1;
    c->index = PyDict_New();
    if (c->index == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(exclude); i++) {
        if (ct_ptrset_add(&w.excl, PyTuple_GET_ITEM(exclude, i)) < 0) {
            goto nomem;
        }
    }
    /* first every object, with no Python code run (a __sizeof__ could free
     * what is only borrowed): the listed ones and what they lead to, each
     * found one held from here on */
    Py_ssize_t nobjs = PyList_GET_SIZE(objs);
    for (Py_ssize_t i = 0; i < nobjs; i++) {
        if (ct_ptrset_add(&w.seen, PyList_GET_ITEM(objs, i)) < 0) {
            goto nomem;
        }
    }
    for (Py_ssize_t i = 0; i < nobjs; i++) {
        PyObject *o = PyList_GET_ITEM(objs, i);
        if (ct_ptrset_contains(&w.excl, o)) {
            continue;
        }
        if (ct_graph_referents(o, walk_visit, &w) != 0 || w.failed) {
            goto nomem;
        }
    }
    for (size_t k = 0; k < c->nowned; k++) {       /* nowned grows meanwhile */
        PyObject *o = c->owned[k];
        if ((ct_is_gc(o) || ct_ndarray_check(o))
            && (ct_graph_referents(o, walk_visit, &w) != 0 || w.failed)) {
            goto nomem;
        }
    }
    /* then the sizes */
    for (Py_ssize_t i = 0; i < nobjs; i++) {
        PyObject *o = PyList_GET_ITEM(objs, i);
        if (!ct_ptrset_contains(&w.excl, o) && tally(c, s, o, &cache) < 0) {
            goto error;
        }
    }
    for (size_t k = 0; k < c->nowned; k++) {
        if (tally(c, s, c->owned[k], &cache) < 0) {
            goto error;
        }
    }
    for (size_t k = 0; k < c->n; k++) {
        c->objects += c->rows[k].count;
        c->bytes += c->rows[k].size;
    }
    ct_ptrset_clear(&w.seen);
    ct_ptrset_clear(&w.excl);
    return 0;
nomem:
    if (!PyErr_Occurred()) {
        PyErr_NoMemory();
    }
error:
    ct_ptrset_clear(&w.seen);
    ct_ptrset_clear(&w.excl);
    ct_census_free(c);
    return -1;
}

/* ---- retained bytes per type, over the graph ---- */

/* Marks in `seen` the nodes reachable from the root, never entering a node
 * of row `blocked` (UINT32_MAX: none).  queue: g->n entries. */
static void
reach(const ct_graph *g, const uint32_t *row_of, uint32_t blocked, uint8_t *seen,
      uint32_t *queue)
{
    size_t head = 0, tail = 0;
    memset(seen, 0, g->n);
    seen[0] = 1;
    queue[tail++] = 0;
    while (head < tail) {
        uint32_t v = queue[head++];
        for (uint32_t e = g->out_off[v]; e < g->out_off[v + 1]; e++) {
            uint32_t w = g->out[e];
            if (!seen[w] && row_of[w] != blocked) {
                seen[w] = 1;
                queue[tail++] = w;
            }
        }
    }
}

/* Rows by size, largest first (ties: first met first). */
typedef struct {
    Py_ssize_t size;
    uint32_t row;
} by_size_key;

static int
by_size(const void *a, const void *b)
{
    const by_size_key *x = a, *y = b;
    if (x->size != y->size) {
        return x->size < y->size ? 1 : -1;
    }
    return (x->row > y->row) - (x->row < y->row);
}

int
ct_census_retained(ct_census *c, const ct_graph *g, size_t top)
{
    uint8_t *all = malloc(g->n), *seen = malloc(g->n);
    uint32_t *queue = malloc(g->n * sizeof(uint32_t));
    by_size_key *order = malloc((c->n ? c->n : 1) * sizeof(by_size_key));
    if (all == NULL || seen == NULL || queue == NULL || order == NULL) {
        free(all);
        free(seen);
        free(queue);
        free(order);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t k = 0; k < c->n; k++) {
        order[k].size = c->rows[k].size;
        order[k].row = (uint32_t)k;
    }
    qsort(order, c->n, sizeof(by_size_key), by_size);
    int walked = 0;
    for (size_t i = 0; i < c->n && i < top; i++) {
        uint32_t k = order[i].row;
        ct_census_row *r = &c->rows[k];
        if (r->leaves_only) {
            r->retained = r->size;
            continue;
        }
        if (!walked) {
            reach(g, c->row_of, UINT32_MAX, all, queue);
            walked = 1;
        }
        reach(g, c->row_of, k, seen, queue);
        Py_ssize_t freed = 0;
        for (size_t id = 1; id < g->n; id++) {
            if (all[id] && !seen[id]) {
                freed += g->size[id];
            }
        }
        r->retained = freed;
    }
    free(all);
    free(seen);
    free(queue);
    free(order);
    return 0;
}

void
ct_census_free(ct_census *c)
{
    for (size_t k = 0; k < c->nowned; k++) {
        Py_DECREF(c->owned[k]);
    }
    free(c->owned);
    free(c->rows);
    free(c->row_of);
    Py_CLEAR(c->index);
    memset(c, 0, sizeof(*c));
}

/* ---- count-only classes: instances of chosen types, at each snapshot ---- */

typedef struct {
    const ct_ptrmap *rows_of;
    ct_ptrset seen;         /* the objects listed, then those found */
    ct_ptrset excl;
    PyObject **owned;       /* strong: found objects to expand or count */
    size_t nowned, ownedcap;
    int failed;
} count_walk;

/* A referent worth keeping: a container to expand (GC object, ndarray)
 * or an instance to count, not listed, excluded or met already.  Leaves
 * of other types are neither marked nor held: meeting one again costs a
 * type test. */
static int
count_visit(PyObject *ref, void *arg)
{
    count_walk *w = arg;
    uint32_t row;
    if (!ct_is_gc(ref) && !ct_ptrmap_get(w->rows_of, Py_TYPE(ref), &row)
        && ct_ndarray_check(ref) != 1) {
        return 0;
    }
    if (keep_new(&w->excl, &w->seen, &w->owned, &w->nowned, &w->ownedcap, 4096, ref) < 0) {
        w->failed = 1;
        return -1;
    }
    return 0;
}

/* Adds o to its row when its type has one.  *last caches the previous
 * type and its row (-1: none).  0, or -1 with an exception. */
static inline int
count_one(const ct_ptrmap *rows_of, ct_sizer *s, PyObject *o, PyTypeObject **last,
          int64_t *last_row, Py_ssize_t *counts, Py_ssize_t *sizes)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (tp != *last) {
        uint32_t row;
        *last = tp;
        *last_row = ct_ptrmap_get(rows_of, tp, &row) ? (int64_t)row : -1;
    }
    if (*last_row < 0) {
        return 0;
    }
    Py_INCREF(o);               /* a __sizeof__ may drop the list's reference */
    Py_ssize_t v = ct_flat_size(s, o);
    Py_DECREF(o);
    if (v < 0) {
        return -1;
    }
    counts[*last_row]++;
    sizes[*last_row] += v;
    return 0;
}

int
ct_census_count(PyObject *objs, PyObject *exclude, const ct_ptrmap *rows_of, int reach,
                ct_sizer *s, Py_ssize_t *counts, Py_ssize_t *sizes)
{
    count_walk w;
    memset(&w, 0, sizeof(w));
    w.rows_of = rows_of;
    int rc = -1;
    PyTypeObject *last = NULL;
    int64_t last_row = -1;
    if (rows_of->n == 0) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(exclude); i++) {
        if (ct_ptrset_add(&w.excl, PyTuple_GET_ITEM(exclude, i)) < 0) {
            goto nomem;
        }
    }
    Py_ssize_t nobjs = PyList_GET_SIZE(objs);
    if (reach) {
        /* every object first, with no Python code run (a __sizeof__
         * could free what is only borrowed), as ct_census_walk does */
        for (Py_ssize_t i = 0; i < nobjs; i++) {
            if (ct_ptrset_add(&w.seen, PyList_GET_ITEM(objs, i)) < 0) {
                goto nomem;
            }
        }
        for (Py_ssize_t i = 0; i < nobjs; i++) {
            PyObject *o = PyList_GET_ITEM(objs, i);
            if (!ct_ptrset_contains(&w.excl, o)
                && (ct_graph_referents(o, count_visit, &w) != 0 || w.failed)) {
                goto nomem;
            }
        }
        for (size_t k = 0; k < w.nowned; k++) {     /* nowned grows meanwhile */
            PyObject *o = w.owned[k];
            if ((ct_is_gc(o) || ct_ndarray_check(o) == 1)
                && (ct_graph_referents(o, count_visit, &w) != 0 || w.failed)) {
                goto nomem;
            }
        }
    }
    /* objs holds each listed object, w.owned each found one, while their
     * sizes are taken; a __sizeof__ may change objs (a caller's list),
     * so its length is read again each time */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(objs); i++) {
        PyObject *o = PyList_GET_ITEM(objs, i);
        if (Py_TYPE(o) == last && last_row < 0) {
            continue;                       /* the common case: not counted */
        }
        if (w.excl.used != 0 && ct_ptrset_contains(&w.excl, o)) {
            continue;
        }
        if (count_one(rows_of, s, o, &last, &last_row, counts, sizes) < 0) {
            goto done;
        }
    }
    for (size_t k = 0; k < w.nowned; k++) {
        if (count_one(rows_of, s, w.owned[k], &last, &last_row, counts, sizes) < 0) {
            goto done;
        }
    }
    rc = 0;
    goto done;
nomem:
    if (!PyErr_Occurred()) {
        PyErr_NoMemory();
    }
done:
    for (size_t k = 0; k < w.nowned; k++) {
        Py_DECREF(w.owned[k]);
    }
    free(w.owned);
    ct_ptrset_clear(&w.seen);
    ct_ptrset_clear(&w.excl);
    return rc;
}
