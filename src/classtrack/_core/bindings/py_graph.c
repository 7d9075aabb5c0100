/* bindings/py_graph.c - Python binding of the heap graph: _core.retained and
 * _core.root_paths.  Argument conversion only; see graph.c. */
#include "bindings/py_state.h"
#include <frameobject.h>
#include "graph/graph.h"
#include "base/layout.h"

#include <stdlib.h>
#include <string.h>

static int
build_with_sizes(PyObject *module, PyObject *objs, PyObject *exclude, ct_graph *g)
{
    ct_state *st = ct_get_state(module);
    if (ct_sizer_ready(&st->sizer_refs) < 0 || ct_graph_build(g, objs, exclude) < 0) {
        return -1;
    }
    ct_sizer s;
    ct_sizer_init(&s, &st->sizer_refs);
    int rc = ct_graph_sizes(g, &s);
    ct_sizer_fini(&s);
    if (rc < 0) {
        ct_graph_free(g);
    }
    return rc;
}

/* The targets as a fast sequence in *seq and the sized graph of objs
 * less exclude (a tuple) in *g.  0, or -1 with an exception (nothing to
 * release). */
static int
open_targets(PyObject *module, PyObject *objs, PyObject *exclude, PyObject *targets,
             PyObject **seq, ct_graph *g)
{
    *seq = PySequence_Fast(targets, "targets must be a sequence");
    if (*seq == NULL) {
        return -1;
    }
    if (build_with_sizes(module, objs, exclude, g) < 0) {
        Py_CLEAR(*seq);
        return -1;
    }
    return 0;
}

/* The targets that are no node of g (nothing in the graph refers to
 * them and they are not listed), as a new list, or NULL. */
static PyObject *
missing_targets(const ct_graph *g, PyObject *seq)
{
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = 0; out != NULL && i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
        if (ct_graph_find(g, o) == 0 && PyList_Append(out, o) < 0) {
            Py_CLEAR(out);
        }
    }
    return out;
}

/* n flags, set for the targets' nodes (malloc'ed), or NULL with MemoryError. */
static uint8_t *
target_flags(const ct_graph *g, PyObject *seq)
{
    uint8_t *flag = calloc(g->n, 1);
    if (flag == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        uint32_t id = ct_graph_find(g, PySequence_Fast_GET_ITEM(seq, i));
        if (id != 0) {
            flag[id] = 1;
        }
    }
    return flag;
}

/* [int, ...]: each target's retained size from the dominator tree (stop
 * as in ct_graph_retained), or NULL with an exception. */
static PyObject *
per_target(ct_graph *g, PyObject *seq, const uint8_t *stop)
{
    if (ct_graph_dominators(g) < 0) {
        return NULL;
    }
    Py_ssize_t *ret = ct_graph_retained(g, stop);
    if (ret == NULL) {
        return NULL;
    }
    Py_ssize_t nt = PySequence_Fast_GET_SIZE(seq);
    PyObject *result = PyList_New(nt);
    for (Py_ssize_t i = 0; result != NULL && i < nt; i++) {
        uint32_t id = ct_graph_find(g, PySequence_Fast_GET_ITEM(seq, i));
        /* an object no other object refers to is a leaf of its own: -1
         * tells the caller to size it alone */
        PyObject *v = PyLong_FromSsize_t(id != 0 && g->idom[id] != UINT32_MAX ? ret[id] : -1);
        if (v == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, v);
    }
    free(ret);
    return result;
}

/* retained(objs, exclude, targets, together) -> (int, [missing])
 * (together) or [int, ...]: bytes freed if the targets (all together, or
 * each alone) became unreachable, over the graph of objs
 * (gc.get_objects()) less the objects of the tuple exclude; with
 * together, also the targets that are not in the graph at all. */
static PyObject *
core_retained(PyObject *module, PyObject *args)
{
    PyObject *objs, *exclude, *targets, *seq;
    int together;
    ct_graph g;
    if (!PyArg_ParseTuple(args, "O!O!Op:retained", &PyList_Type, &objs, &PyTuple_Type,
                          &exclude, &targets, &together)
        || open_targets(module, objs, exclude, targets, &seq, &g) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (together) {
        uint8_t *blocked = target_flags(&g, seq);
        Py_ssize_t freed = blocked != NULL ? ct_graph_freed_without(&g, blocked) : -1;
        free(blocked);
        PyObject *missing = freed >= 0 ? missing_targets(&g, seq) : NULL;
        if (missing != NULL) {
            result = Py_BuildValue("(nN)", freed, missing);
        }
    }
    else {
        result = per_target(&g, seq, NULL);
    }
    ct_graph_free(&g);
    Py_DECREF(seq);
    return result;
}

/* retained_exclusive(objs, exclude, targets) -> ([int, ...], together): what each
 * target retains exclusively of the others (a target another one keeps
 * alive reports its own, the keeper does not count it again; -1 for a
 * target nothing refers to), and the bytes freed if all became unreachable
 * together.  together - sum is what they keep alive only jointly.  One
 * graph build for both. */
static PyObject *
core_retained_exclusive(PyObject *module, PyObject *args)
{
    PyObject *objs, *exclude, *targets, *seq;
    ct_graph g;
    if (!PyArg_ParseTuple(args, "O!O!O:retained_exclusive", &PyList_Type, &objs,
                          &PyTuple_Type, &exclude, &targets)
        || open_targets(module, objs, exclude, targets, &seq, &g) < 0) {
        return NULL;
    }
    PyObject *result = NULL, *list = NULL;
    uint8_t *flag = target_flags(&g, seq);
    Py_ssize_t together = flag != NULL ? ct_graph_freed_without(&g, flag) : -1;
    if (together >= 0) {
        list = per_target(&g, seq, flag);
    }
    if (list != NULL) {
        result = Py_BuildValue("(Nn)", list, together);
    }
    free(flag);
    ct_graph_free(&g);
    Py_DECREF(seq);
    return result;
}

/* ---- why an object is alive: one shortest path per direct holder ----
 *
 * A holder of the target is a node with an edge to it (a distinct
 * in-neighbour; node 0, the virtual root, is none).  For each holder the
 * path is a shortest one from a root to the holder that does not pass
 * through the target (a cycle back through the target is no reason for it
 * to be alive), then the edge holder -> target.  One BFS with the target
 * blocked gives them all: parent[v] is the node that first reached v.
 *
 * Determinism and preference: the BFS queue starts with the named roots in
 * the order given, then the nodes held from outside in node order.  Level
 * by level, a node that some shortest path links to a named root is then
 * reached first from such a path, so a holder's path starts at a named
 * root whenever one is as near as any other root.  Holders are ranked by
 * their queue position (distance first).
 *
 * Cost: O(nodes + edges) for the BFS, 16 bytes per node, plus the length
 * of each path emitted. */

/* Ties at the last distance taken are returned too (Python orders them by
 * text and cuts to limit), at most this many more, so that the first path
 * does not depend on limit. */
#define CT_HOLDER_TIES 256

typedef struct {
    uint32_t *dist;     /* UINT32_MAX: not reached */
    uint32_t *parent;   /* UINT32_MAX: a root of the BFS */
    uint32_t *pos;      /* position in the BFS queue */
    uint32_t *queue;
} holder_bfs;

static void
holder_bfs_free(holder_bfs *b)
{
    free(b->dist);
    free(b->parent);
    free(b->pos);
    free(b->queue);
    memset(b, 0, sizeof(*b));
}

static void
bfs_seed(holder_bfs *b, uint32_t v, size_t *tail)
{
    if (b->dist[v] == UINT32_MAX) {
        b->dist[v] = 0;
        b->pos[v] = (uint32_t)*tail;
        b->queue[(*tail)++] = v;
    }
}

/* BFS from the named roots (seq; objects not in g are skipped), then from
 * the nodes held from outside, never entering node t.  0, or -1 with
 * MemoryError (b freed). */
static int
holder_bfs_run(const ct_graph *g, PyObject *seq, uint32_t t, holder_bfs *b)
{
    size_t n = g->n;
    b->dist = malloc(n * sizeof(uint32_t));
    b->parent = malloc(n * sizeof(uint32_t));
    b->pos = malloc(n * sizeof(uint32_t));
    b->queue = malloc(n * sizeof(uint32_t));
    if (b->dist == NULL || b->parent == NULL || b->pos == NULL || b->queue == NULL) {
        holder_bfs_free(b);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        b->dist[i] = UINT32_MAX;
        b->parent[i] = UINT32_MAX;
    }
    b->dist[t] = 0;     /* blocked: marked reached so nothing enters it */
    size_t head = 0, tail = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        uint32_t id = ct_graph_find(g, PySequence_Fast_GET_ITEM(seq, i));
        if (id != 0) {
            bfs_seed(b, id, &tail);
        }
    }
    for (size_t i = 1; i < n; i++) {
        if (g->ext[i] > 0) {
            bfs_seed(b, (uint32_t)i, &tail);
        }
    }
    while (head < tail) {
        uint32_t v = b->queue[head++];
        for (uint32_t e = g->out_off[v]; e < g->out_off[v + 1]; e++) {
            uint32_t w = g->out[e];
            if (b->dist[w] == UINT32_MAX) {
                b->dist[w] = b->dist[v] + 1;
                b->parent[w] = v;
                b->pos[w] = (uint32_t)tail;
                b->queue[tail++] = w;
            }
        }
    }
    b->dist[t] = UINT32_MAX;
    return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The distinct holders of t reached by the BFS, best (lowest queue
 * position) first, as a malloc'ed array of *count node numbers; NULL with
 * MemoryError. */
static uint32_t *
ranked_holders(const ct_graph *g, const holder_bfs *b, uint32_t t, size_t *count)
{
    size_t deg = g->in_off[t + 1] - g->in_off[t];
    /* (queue position << 32 | node): sorting them sorts by position */
    uint64_t *key = malloc((deg ? deg : 1) * sizeof(uint64_t));
    uint32_t *h = malloc((deg ? deg : 1) * sizeof(uint32_t));
    if (key == NULL || h == NULL) {
        free(key);
        free(h);
        PyErr_NoMemory();
        return NULL;
    }
    size_t k = 0;
    for (uint32_t e = g->in_off[t]; e < g->in_off[t + 1]; e++) {
        uint32_t p = g->in[e];
        if (p != 0 && p != t && b->dist[p] != UINT32_MAX) {
            key[k++] = (uint64_t)b->pos[p] << 32 | p;
        }
    }
    qsort(key, k, sizeof(uint64_t), cmp_u64);
    size_t m = 0;       /* a holder with two edges to t: adjacent once sorted */
    for (size_t i = 0; i < k; i++) {
        uint32_t p = (uint32_t)(key[i] & UINT32_MAX);
        if (m == 0 || h[m - 1] != p) {
            h[m++] = p;
        }
    }
    free(key);
    *count = m;
    return h;
}

/* Appends (ext, refcnt, [root, ..., holder, target]) to out.  0 or -1. */
static int
emit_holder_path(const ct_graph *g, const holder_bfs *b, uint32_t holder, uint32_t t,
                 PyObject *out)
{
    Py_ssize_t len = (Py_ssize_t)b->dist[holder] + 2;
    PyObject *objsl = PyList_New(len);
    if (objsl == NULL) {
        return -1;
    }
    PyList_SET_ITEM(objsl, len - 1, Py_NewRef(g->nodes[t]));
    uint32_t v = holder, r = holder;
    for (Py_ssize_t k = len - 2; k >= 0; k--) {
        PyList_SET_ITEM(objsl, k, Py_NewRef(g->nodes[v]));
        r = v;
        v = b->parent[v];
    }
    /* the root's true refcount: from outside plus from the graph (its
     * in-edges, less the virtual root's) */
    Py_ssize_t from_graph = (Py_ssize_t)(g->in_off[r + 1] - g->in_off[r]) - (g->ext[r] > 0);
    PyObject *tup = Py_BuildValue("(nnN)", g->ext[r], g->ext[r] + from_graph, objsl);
    if (tup == NULL) {
        return -1;
    }
    int rc = PyList_Append(out, tup);
    Py_DECREF(tup);
    return rc;
}

/* root_paths(objs, exclude, target, limit, named_roots) ->
 * [(ext, refcnt, [root, ..., holder, target])]: for up to limit distinct
 * holders of target (objects that refer to it directly), nearest first,
 * a shortest path from a root to the holder that avoids target.  Roots are
 * the objects held from outside the graph (objs less the tuple exclude)
 * and the named roots (modules, running functions' locals), preferred at
 * equal distance; target itself is never a root.  Holders as near as the
 * limit-th follow it (up to CT_HOLDER_TIES more), so that the caller can
 * order ties by something stable and cut. */
static PyObject *
core_root_paths(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *objs, *exclude, *target, *named;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "O!O!OnO:root_paths", &PyList_Type, &objs, &PyTuple_Type,
                          &exclude, &target, &limit, &named)) {
        return NULL;
    }
    PyObject *seq = PySequence_Fast(named, "named roots must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    ct_graph g;
    if (ct_graph_build(&g, objs, exclude) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    holder_bfs b = {NULL, NULL, NULL, NULL};
    uint32_t *holders = NULL;
    size_t nholders = 0;
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        goto error;
    }
    uint32_t t = ct_graph_find(&g, target);
    if (t == 0 || limit <= 0) {
        goto done;      /* nothing in the graph refers to it */
    }
    if (holder_bfs_run(&g, seq, t, &b) < 0) {
        goto error;
    }
    holders = ranked_holders(&g, &b, t, &nholders);
    if (holders == NULL) {
        goto error;
    }
    size_t take = nholders < (size_t)limit ? nholders : (size_t)limit;
    if (take > 0) {
        uint32_t last = b.dist[holders[take - 1]];
        size_t cap = take + CT_HOLDER_TIES;
        while (take < nholders && take < cap && b.dist[holders[take]] == last) {
            take++;
        }
    }
    for (size_t i = 0; i < take; i++) {
        if (emit_holder_path(&g, &b, holders[i], t, out) < 0) {
            goto error;
        }
    }
done:
    free(holders);
    holder_bfs_free(&b);
    ct_graph_free(&g);
    Py_DECREF(seq);
    return out;
error:
    Py_CLEAR(out);
    goto done;
}

static int
collect_attr(PyObject *name, PyObject *value, void *arg)
{
    PyObject *pair = PyTuple_Pack(2, name, value);
    if (pair == NULL) {
        return -1;
    }
    int rc = PyList_Append((PyObject *)arg, pair);
    Py_DECREF(pair);
    return rc;
}

/* attr_items(obj) -> [(name, value)]: the instance attributes kept in its
 * values storage or existing __dict__, read in place (never creates a
 * __dict__); slots are not included. */
static PyObject *
core_attr_items(PyObject *Py_UNUSED(module), PyObject *obj)
{
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    int r = ct_visit_attr_values(obj, collect_attr, out);
    if (r < 0) {
        Py_DECREF(out);
        return NULL;
    }
    if (r == 0) {
        PyObject *d = ct_existing_dict(obj);
        if (d != NULL && PyDict_Check(d)) {
            Py_ssize_t pos = 0;
            PyObject *k, *v;
            while (PyDict_Next(d, &pos, &k, &v)) {
                if (collect_attr(k, v, out) < 0) {
                    Py_DECREF(out);
                    return NULL;
                }
            }
        }
    }
    return out;
}

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
/* 3.11's frame object and interpreter frame, as far as frame_var reads
 * them (the layouts of Include/internal/pycore_frame.h). */
struct ct_iframe311 {
    PyObject *f_func;
    PyObject *f_globals;
    PyObject *f_builtins;
    PyObject *f_locals;
    PyCodeObject *f_code;
    PyObject *frame_obj;
    void *previous;
    void *prev_instr;
    int stacktop;
    char is_entry;
    char owner;
    PyObject *localsplus[1];
};

struct ct_frame311 {
    PyObject_HEAD
    PyObject *f_back;
    struct ct_iframe311 *f_frame;
};

#define CT_CO_FAST_CELL 0x40
#define CT_CO_FAST_FREE 0x80
#endif

/* frame_var(frame, name) -> (value,) | None: a variable of a frame read
 * in place, nothing materialised (frame.f_locals before 3.13 copies the
 * locals into a dict the frame keeps).  3.12+: PyFrame_GetVar; 3.11: the
 * interpreter frame's localsplus (mirrored layout); 3.9/3.10: the public
 * frame struct's fast locals.  None when the name is unbound. */
static PyObject *
core_frame_var(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *frame, *name;
    if (!PyArg_ParseTuple(args, "OU:frame_var", &frame, &name)) {
        return NULL;
    }
    if (!PyFrame_Check(frame)) {
        PyErr_Format(PyExc_TypeError, "frame_var needs a frame, not %.100s",
                     Py_TYPE(frame)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *v = PyFrame_GetVar((PyFrameObject *)frame, name);
    if (v == NULL) {
        if (PyErr_ExceptionMatches(PyExc_NameError)) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        return NULL;
    }
    PyObject *t = PyTuple_Pack(1, v);
    Py_DECREF(v);
    return t;
#elif PY_VERSION_HEX < 0x030B0000
    /* 3.9/3.10: the frame struct is public; fast locals, then the cells
     * of cell and free variables */
    PyFrameObject *f = (PyFrameObject *)frame;
    PyCodeObject *co = f->f_code;
    Py_ssize_t nlocals = co->co_nlocals;
    Py_ssize_t ncells = PyTuple_GET_SIZE(co->co_cellvars);
    PyObject *groups[3] = {co->co_varnames, co->co_cellvars, co->co_freevars};
    Py_ssize_t base[3] = {0, nlocals, nlocals + ncells};
    for (int g = 0; g < 3; g++) {
        Py_ssize_t count = g == 0 ? nlocals : PyTuple_GET_SIZE(groups[g]);
        if (count > PyTuple_GET_SIZE(groups[g])) {
            count = PyTuple_GET_SIZE(groups[g]);
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *n = PyTuple_GET_ITEM(groups[g], i);
            if (!PyUnicode_Check(n) || PyUnicode_Compare(n, name) != 0) {
                continue;
            }
            PyObject *v = f->f_localsplus[base[g] + i];
            if (v != NULL && g > 0) {
                v = PyCell_Check(v) ? PyCell_GET(v) : NULL;
            }
            if (v == NULL) {
                Py_RETURN_NONE;
            }
            return PyTuple_Pack(1, v);
        }
    }
    Py_RETURN_NONE;
#else
    /* 3.11: the locals live in the frame's _PyInterpreterFrame (on the
     * thread's stack for a running function); the mirrors below follow
     * Include/internal/pycore_frame.h and pycore_code.h of 3.11, which no
     * 3.11 release changed.  co_localsplusnames and co_localspluskinds are
     * public there. */
    const struct ct_frame311 *f = (const struct ct_frame311 *)frame;
    const struct ct_iframe311 *fi = f->f_frame;
    if (fi == NULL || fi->f_code == NULL) {
        Py_RETURN_NONE;
    }
    PyCodeObject *co = fi->f_code;
    for (int i = 0; i < co->co_nlocalsplus; i++) {
        PyObject *n = PyTuple_GET_ITEM(co->co_localsplusnames, i);
        if (!PyUnicode_Check(n) || PyUnicode_Compare(n, name) != 0) {
            continue;
        }
        unsigned char kind = (unsigned char)PyBytes_AS_STRING(co->co_localspluskinds)[i];
        PyObject *v = fi->localsplus[i];
        if (v != NULL && (kind & (CT_CO_FAST_CELL | CT_CO_FAST_FREE)) && PyCell_Check(v)) {
            v = PyCell_GET(v);
        }
        if (v == NULL) {
            Py_RETURN_NONE;
        }
        return PyTuple_Pack(1, v);
    }
    Py_RETURN_NONE;
#endif
}

PyMethodDef ct_graph_functions[] = {
    {"frame_var", core_frame_var, METH_VARARGS,
     "frame_var(frame, name) -> (value,) or None: a frame's variable read in "
     "place (None where unbound)."},
    {"attr_items", core_attr_items, METH_O,
     "attr_items(obj) -> [(name, value)] of its attribute storage, read in place."},
    {"retained", core_retained, METH_VARARGS,
     "retained(objs, exclude, targets, together) -> bytes freed if the targets "
     "became unreachable (together: (int, [targets not in the graph]); else "
     "one per target, -1 for a target nothing refers to)."},
    {"retained_exclusive", core_retained_exclusive, METH_VARARGS,
     "retained_exclusive(objs, exclude, targets) -> ([bytes each retains exclusively of "
     "the other targets, -1 for one nothing refers to], bytes freed with all)."},
    {"root_paths", core_root_paths, METH_VARARGS,
     "root_paths(objs, exclude, target, limit, named_roots) -> up to limit shortest "
     "paths [(ext, refcnt, [root, ..., target])] from the roots to target."},
    {NULL, NULL, 0, NULL},
};
