/* graph.c - the object graph of the whole heap: who holds what, retained
 * sizes (dominators) and why an object is alive (shortest root paths).
 *
 * Building (ct_graph_build): the nodes are every object gc.get_objects()
 * returns and every object they refer to (non-GC objects such as str and
 * int are leaves, never traversed).  Edges come from tp_traverse, plus the
 * str keys dict_traverse leaves out, plus 3.13's materialised __dict__ that
 * an instance's traverse hides, plus a numpy array's base and the elements
 * of an object array owning its buffer (ct_ndarray_visit: an ndarray is
 * no GC object, yet it is expanded like one and never folded): the same
 * referents the sizer follows.
 * Nothing in building runs Python code or creates a Python object (but for
 * one short-lived str, once per process, when the first ndarray met
 * confirms numpy's type).
 *
 * Roots, as CPython's collector finds them: a node's refcount minus the
 * references from traversed nodes (minus the one the gc.get_objects() list
 * holds) is what is held from outside the graph: stacks, C globals,
 * non-GC containers.  Those nodes hang from a virtual root, node 0.
 *
 * Ownership: `objs` (the gc.get_objects() list) keeps every GC node alive;
 * leaves are kept alive by a strong reference taken as each is expanded
 * (its refcount noted first), before any size is computed (which may run
 * a __sizeof__).  All
 * arrays are malloc'ed: nothing here is seen by the collector.
 * Costs: 4 bytes per node for each of a handful of arrays and 8 bytes per
 * edge for each of two CSR tables; dominators by Cooper, Harvey and Kennedy
 * over reverse postorder, iterative, O(E) per pass, few passes.
 */
#include "graph/graph.h"
#include "base/compat.h"
#include "base/layout.h"
#include "sizer/sizer.h"

#include <stdlib.h>
#include <string.h>

/* ---- pointer -> node number map (base/ptrset.h's ct_ptrmap) ----
 * Sized from the list's length up front, so it rarely grows; never
 * shrinks. */

uint32_t
ct_graph_find(const ct_graph *g, PyObject *o)
{
    uint32_t id;
    return ct_ptrmap_get(&g->map, o, &id) ? id : 0;
}

#define PREFETCH_AHEAD 12

static inline void
prefetch(const void *p)
{
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

static inline void
prefetch_slot(const ct_graph *g, PyObject *o)
{
    prefetch(&g->map.slots[ct_ptrmap_home((uintptr_t)o, g->map.cap)]);
}

/* The node of o, added if new.  0 on memory failure (0 is never a real
 * node: it is the virtual root). */
static uint32_t
node_of(ct_graph *g, PyObject *o)
{
    if ((g->n + 1) * 10 > g->map.cap * 7
        && ct_ptrmap_resize(&g->map, g->map.cap ? g->map.cap * 2 : 1024) < 0) {
        return 0;
    }
    ct_ptrmap_slot *e = ct_ptrmap_slot_of(&g->map, o);
    if (e->key != 0) {
        return e->val;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4096;
        PyObject **nodes = realloc(g->nodes, cap * sizeof(PyObject *));
        if (nodes == NULL) {
            return 0;
        }
        g->nodes = nodes;
        Py_ssize_t *ext = realloc(g->ext, cap * sizeof(Py_ssize_t));
        if (ext == NULL) {
            return 0;
        }
        g->ext = ext;
        g->cap = cap;
    }
    uint32_t id = (uint32_t)g->n++;
    g->nodes[id] = o;
    ct_ptrmap_fill(&g->map, e, o, id);
    return id;
}

/* ---- the objects left out (a small address set) ----
 * A ct_ptrmap whose value is 1 once the object was seen in the list (the
 * list holds one reference to it). */

typedef struct {
    ct_ptrmap keys;
} excl_set;

static int
excl_init(excl_set *x, PyObject *exclude)
{
    memset(x, 0, sizeof(*x));
    if (exclude == NULL) {
        return 0;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(exclude);
    size_t cap = 16;
    while (cap < (size_t)(n + 1) * 4) {
        cap *= 2;
    }
    if (ct_ptrmap_resize(&x->keys, cap) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i <= n; i++) {
        /* the sequence's items, and the sequence itself */
        PyObject *k = i < n ? PySequence_Fast_GET_ITEM(exclude, i) : exclude;
        ct_ptrmap_slot *e = ct_ptrmap_slot_of(&x->keys, k);
        if (e->key == 0) {
            ct_ptrmap_fill(&x->keys, e, k, 0);
        }
    }
    return 0;
}

/* The slot of o in the set (its val: seen in the list), or NULL. */
static ct_ptrmap_slot *
excl_find(const excl_set *x, PyObject *o)
{
    if (x->keys.cap == 0) {
        return NULL;
    }
    ct_ptrmap_slot *e = ct_ptrmap_slot_of(&x->keys, o);
    return e->key != 0 ? e : NULL;
}

static void
excl_fini(excl_set *x)
{
    ct_ptrmap_clear(&x->keys);
}

/* ---- edges ----
 * Nodes are expanded in batches: their referents are gathered first (as
 * (source, object) pairs), the map slots of all of them are prefetched,
 * then resolved to node numbers.  A heap does not fit in the cache, so a
 * lookup is a memory access; gathered, they overlap instead of queueing. */

#define BATCH_NODES 256

typedef struct {
    uint32_t src;
    PyObject *ref;
} pending;

typedef struct {
    pending *p;
    size_t n, cap;
    uint32_t src;
    int failed;
} gather;

static int
gather_push(gather *c, uint32_t src, PyObject *ref)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        pending *p = realloc(c->p, cap * sizeof(pending));
        if (p == NULL) {
            c->failed = 1;
            return -1;
        }
        c->p = p;
        c->cap = cap;
    }
    c->p[c->n].src = src;
    c->p[c->n].ref = ref;
    c->n++;
    return 0;
}

static int
visit_gather(PyObject *ref, void *arg)
{
    gather *c = arg;
    if (ref == NULL) {
        return 0;
    }
    return gather_push(c, c->src, ref);
}

static int
add_edge(ct_graph *g, uint32_t src, uint32_t dst)
{
    if (g->nedges == g->edgecap) {
        size_t cap = g->edgecap ? g->edgecap * 2 : 16384;
        uint32_t *e = realloc(g->edges, cap * 2 * sizeof(uint32_t));
        if (e == NULL) {
            return -1;
        }
        g->edges = e;
        g->edgecap = cap;
    }
    g->edges[2 * g->nedges] = src;
    g->edges[2 * g->nedges + 1] = dst;
    g->nedges++;
    return 0;
}

/* ---- referents: what the graph follows from one object ---- */

typedef struct {
    ct_referent_visit visit;
    void *arg;
    PyObject *watch;        /* a dict's first key, when a str: reported? */
    int seen;
} referents_ctx;

static int
referents_traverse(PyObject *ref, void *arg)
{
    referents_ctx *r = arg;
    if (ref == NULL) {
        return 0;
    }
    if (ref == r->watch) {
        r->seen = 1;
    }
    return r->visit(ref, r->arg);
}

static int
referents_array(PyObject *ref, Py_ssize_t index, void *arg)
{
    (void)index;
    referents_ctx *r = arg;
    return r->visit(ref, r->arg);
}

int
ct_graph_referents(PyObject *o, ct_referent_visit visit, void *arg)
{
    referents_ctx r = {visit, arg, NULL, 0};
    if (ct_ndarray_check(o) && ct_ndarray_visit(o, referents_array, &r) != 0) {
        return -1;
    }
    if (!ct_is_gc(o) || Py_TYPE(o)->tp_traverse == NULL) {
        return 0;
    }
    int keyed = ct_any_dict_check(o) && PyDict_GET_SIZE(o) > 0;
    if (keyed) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        if (PyDict_Next(o, &pos, &k, &v) && PyUnicode_CheckExact(k)) {
            r.watch = k;
        }
    }
    if (Py_TYPE(o)->tp_traverse(o, referents_traverse, &r) != 0) {
        return -1;
    }
    if (r.watch != NULL && !r.seen) {
        /* dict_traverse skips the keys of tables whose keys are all str
         * (and reports them all otherwise): its first key was not
         * reported, so the str keys are visited here, up to a key of
         * another type (then the table is general and traverse had them) */
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(o, &pos, &k, &v) && PyUnicode_CheckExact(k)) {
            if (visit(k, arg) != 0) {
                return -1;
            }
        }
    }
    if (ct_dict_hidden_from_traverse(o)) {
        PyObject *d = ct_existing_dict(o);
        if (d != NULL && visit(d, arg) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Gathers the referents of node id into c, and notes its refcount, less
 * the reference the list holds (listed nodes, left-out ones it holds);
 * a leaf gets our reference from here on.  0 or -1. */
static int
gather_node(ct_graph *g, uint32_t id, const excl_set *x, gather *c)
{
    PyObject *o = g->nodes[id];
    Py_ssize_t held = id <= g->nlisted;
    const ct_ptrmap_slot *xs = held ? NULL : excl_find(x, o);
    if (xs != NULL) {
        held = xs->val;
    }
    g->ext[id] = Py_REFCNT(o) - held;
    if (id > g->nlisted) {
        Py_INCREF(o);
        g->nowned++;
    }
    if (xs != NULL) {
        return 0;       /* left out: a leaf, whatever it refers to */
    }
    c->src = id;
    if (ct_graph_referents(o, visit_gather, c) != 0 || c->failed) {
        return -1;
    }
    return 0;
}

static int
fold(ct_graph *g, uint32_t holder, PyObject *leaf)
{
    if (g->nfolded == g->foldcap) {
        size_t cap = g->foldcap ? g->foldcap * 2 : 4096;
        struct ct_graph_fold *f = realloc(g->folded, cap * sizeof(*f));
        if (f == NULL) {
            return -1;
        }
        g->folded = f;
        g->foldcap = cap;
    }
#if CT_STACK_BORROWS
    if (ct_ptrset_add(&g->folded_set, leaf) < 0) {
        return -1;
    }
#endif
    g->folded[g->nfolded].holder = holder;
    g->folded[g->nfolded].leaf = Py_NewRef(leaf);
    g->nfolded++;
    return 0;
}

/* Expands every node, leaves included as they appear.  0 or -1. */
static int
expand_all(ct_graph *g, const excl_set *x)
{
    gather c = {NULL, 0, 0, 0, 0};
    size_t id = 1;
    while (id < g->n) {                 /* n grows as leaves appear */
        size_t end = id + BATCH_NODES < g->n ? id + BATCH_NODES : g->n;
        c.n = 0;
        for (; id < end; id++) {
            if (id + PREFETCH_AHEAD < g->n) {
                prefetch(g->nodes[id + PREFETCH_AHEAD]);
            }
            if (gather_node(g, (uint32_t)id, x, &c) < 0) {
                free(c.p);
                return -1;
            }
        }
        /* a non-GC object only this reference holds is folded into its
         * holder: no node, no lookup; but not a numpy array, whose
         * referents must be gathered.  Prefetches run PREFETCH_AHEAD
         * entries ahead (more would overflow the CPU's fill buffers). */
        size_t keep = 0;
        for (size_t k = 0; k < c.n; k++) {
            if (k + PREFETCH_AHEAD < c.n) {
                prefetch(c.p[k + PREFETCH_AHEAD].ref);
            }
            PyObject *ref = c.p[k].ref;
            if (Py_REFCNT(ref) == 1 && !ct_is_gc(ref) && !ct_ndarray_check(ref)) {
                if (fold(g, c.p[k].src, ref) < 0) {
                    free(c.p);
                    return -1;
                }
                continue;
            }
#if CT_STACK_BORROWS
            /* The leaf had one reference, and fold() took ours: any other
             * edge to it is a borrowed stack slot (3.14+'s
             * LOAD_FAST_BORROW of the holder's own local), which keeps
             * nothing alive.  Without this it became a node held "from
             * outside" and why_alive lost its holder. */
            if (Py_REFCNT(ref) == 2 && g->folded_set.used != 0
                && ct_ptrset_contains(&g->folded_set, ref) && !ct_is_gc(ref)) {
                continue;
            }
#endif
            c.p[keep++] = c.p[k];
        }
        for (size_t k = 0; k < keep; k++) {
            if (k + PREFETCH_AHEAD < keep) {
                prefetch_slot(g, c.p[k + PREFETCH_AHEAD].ref);
            }
            uint32_t dst = node_of(g, c.p[k].ref);
            if (dst == 0 || add_edge(g, c.p[k].src, dst) < 0) {
                free(c.p);
                return -1;
            }
        }
    }
    free(c.p);
    return 0;
}

/* ---- CSR ---- */

static int
build_csr(ct_graph *g)
{
    size_t n = g->n;
    g->out_off = calloc(n + 1, sizeof(uint32_t));
    g->in_off = calloc(n + 1, sizeof(uint32_t));
    g->out = malloc((g->nedges ? g->nedges : 1) * sizeof(uint32_t));
    g->in = malloc((g->nedges ? g->nedges : 1) * sizeof(uint32_t));
    if (!g->out_off || !g->in_off || !g->out || !g->in) {
        return -1;
    }
    for (size_t e = 0; e < g->nedges; e++) {
        g->out_off[g->edges[2 * e] + 1]++;
        g->in_off[g->edges[2 * e + 1] + 1]++;
    }
    for (size_t i = 0; i < n; i++) {
        g->out_off[i + 1] += g->out_off[i];
        g->in_off[i + 1] += g->in_off[i];
    }
    uint32_t *po = malloc((n + 1) * sizeof(uint32_t));
    uint32_t *pi = malloc((n + 1) * sizeof(uint32_t));
    if (!po || !pi) {
        free(po);
        free(pi);
        return -1;
    }
    memcpy(po, g->out_off, (n + 1) * sizeof(uint32_t));
    memcpy(pi, g->in_off, (n + 1) * sizeof(uint32_t));
    for (size_t e = 0; e < g->nedges; e++) {
        uint32_t s = g->edges[2 * e], d = g->edges[2 * e + 1];
        g->out[po[s]++] = d;
        g->in[pi[d]++] = s;
    }
    free(po);
    free(pi);
    free(g->edges);
    g->edges = NULL;
    return 0;
}

int
ct_graph_build(ct_graph *g, PyObject *objs, PyObject *exclude)
{
    memset(g, 0, sizeof(*g));
    if (!PyList_Check(objs)) {
        PyErr_SetString(PyExc_TypeError, "graph needs the list gc.get_objects() returns");
        return -1;
    }
    excl_set x;
    if (excl_init(&x, exclude) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    g->objs = Py_NewRef(objs);
    Py_ssize_t nobjs = PyList_GET_SIZE(objs);
    /* node 0 is the virtual root: no object, not in the map.  Sized for
     * the listed objects and as many leaves again. */
    size_t guess = (size_t)nobjs + nobjs / 4 + 4096, cap = 1024;
    while (cap * 7 < guess * 10) {
        cap *= 2;
    }
    g->nodes = malloc(guess * sizeof(PyObject *));
    g->ext = malloc(guess * sizeof(Py_ssize_t));
    g->edges = malloc(guess * 2 * sizeof(uint32_t));
    if (g->nodes == NULL || g->ext == NULL || g->edges == NULL || ct_ptrmap_resize(&g->map, cap) < 0) {
        goto nomem;
    }
    g->cap = guess;
    g->edgecap = guess;
    g->nodes[0] = NULL;
    g->n = 1;
    for (Py_ssize_t i = 0; i < nobjs; i++) {
        PyObject *o = PyList_GET_ITEM(objs, i);
        if (i + PREFETCH_AHEAD < nobjs) {
            prefetch_slot(g, PyList_GET_ITEM(objs, i + PREFETCH_AHEAD));
        }
        ct_ptrmap_slot *xs = excl_find(&x, o);
        if (xs != NULL) {
            xs->val = 1;
            continue;
        }
        if (node_of(g, o) == 0) {
            goto nomem;
        }
    }
    g->nlisted = g->n - 1;
    if (expand_all(g, &x) < 0) {
        goto nomem;
    }
    /* held from outside: refcount (noted as each node was expanded, less
     * the list's reference) minus the graph's references */
    g->ext[0] = 0;
    for (size_t e = 0; e < g->nedges; e++) {
        g->ext[g->edges[2 * e + 1]]--;
    }
    size_t roots = 0;
    for (size_t id = 1; id < g->n; id++) {
        if (g->ext[id] > 0) {
            if (add_edge(g, 0, (uint32_t)id) < 0) {
                goto nomem;
            }
            roots++;
        }
    }
    g->nroots = roots;
    if (build_csr(g) < 0) {
        goto nomem;
    }
    excl_fini(&x);
    return 0;
nomem:
    excl_fini(&x);
    ct_graph_free(g);
    PyErr_NoMemory();
    return -1;
}

void
ct_graph_free(ct_graph *g)
{
    for (size_t k = 1; k <= g->nowned; k++) {
        Py_DECREF(g->nodes[g->nlisted + k]);
    }
    for (size_t k = 0; k < g->nfolded; k++) {
        Py_DECREF(g->folded[k].leaf);
    }
    free(g->folded);
    ct_ptrset_clear(&g->folded_set);
    free(g->nodes);
    ct_ptrmap_clear(&g->map);
    free(g->edges);
    free(g->ext);
    free(g->out_off);
    free(g->in_off);
    free(g->out);
    free(g->in);
    free(g->size);
    free(g->idom);
    free(g->order);
    Py_CLEAR(g->objs);
    memset(g, 0, sizeof(*g));
}

/* ---- sizes ---- */

int
ct_graph_sizes(ct_graph *g, ct_sizer *s)
{
    g->size = calloc(g->n, sizeof(Py_ssize_t));
    if (g->size == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t id = 1; id < g->n; id++) {
        Py_ssize_t v = ct_flat_size(s, g->nodes[id]);
        if (v < 0) {
            return -1;
        }
        g->size[id] = v;
    }
    for (size_t k = 0; k < g->nfolded; k++) {
        Py_ssize_t v = ct_flat_size(s, g->folded[k].leaf);
        if (v < 0) {
            return -1;
        }
        g->size[g->folded[k].holder] += v;
    }
    return 0;
}

/* ---- dominators ---- */

/* Reverse postorder from the root over out-edges; order[k] is the node of
 * postorder number k, post[node] its number (or UINT32_MAX unreachable). */
static int
postorder(ct_graph *g, uint32_t *post)
{
    size_t n = g->n;
    g->order = malloc(n * sizeof(uint32_t));
    uint32_t *stack = malloc(n * sizeof(uint32_t));
    uint32_t *next = malloc(n * sizeof(uint32_t));
    if (!g->order || !stack || !next) {
        free(stack);
        free(next);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        post[i] = UINT32_MAX;
    }
    uint8_t *onpath = calloc(n, 1);
    if (onpath == NULL) {
        free(stack);
        free(next);
        return -1;
    }
    size_t sp = 0, k = 0;
    stack[sp++] = 0;
    next[0] = g->out_off[0];
    onpath[0] = 1;
    while (sp) {
        uint32_t v = stack[sp - 1];
        if (next[v] < g->out_off[v + 1]) {
            uint32_t w = g->out[next[v]++];
            if (!onpath[w]) {
                onpath[w] = 1;
                next[w] = g->out_off[w];
                stack[sp++] = w;
            }
        }
        else {
            sp--;
            post[v] = (uint32_t)k;
            g->order[k++] = v;
        }
    }
    g->nreach = k;
    free(stack);
    free(next);
    free(onpath);
    return 0;
}

int
ct_graph_dominators(ct_graph *g)
{
    size_t n = g->n;
    uint32_t *post = malloc(n * sizeof(uint32_t));
    g->idom = malloc(n * sizeof(uint32_t));
    if (post == NULL || g->idom == NULL || postorder(g, post) < 0) {
        free(post);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        g->idom[i] = UINT32_MAX;
    }
    g->idom[0] = 0;
    int changed = 1;
    while (changed) {
        changed = 0;
        /* reverse postorder, the root (last) excluded */
        for (size_t k = g->nreach - 1; k-- > 0;) {
            uint32_t b = g->order[k];
            uint32_t nd = UINT32_MAX;
            for (uint32_t e = g->in_off[b]; e < g->in_off[b + 1]; e++) {
                uint32_t p = g->in[e];
                if (g->idom[p] == UINT32_MAX || post[p] == UINT32_MAX) {
                    continue;
                }
                if (nd == UINT32_MAX) {
                    nd = p;
                    continue;
                }
                uint32_t f1 = p, f2 = nd;
                while (f1 != f2) {
                    while (post[f1] < post[f2]) {
                        f1 = g->idom[f1];
                    }
                    while (post[f2] < post[f1]) {
                        f2 = g->idom[f2];
                    }
                }
                nd = f1;
            }
            /* the root reaches b through an edge 0 -> b when b is held
             * from outside: in_off lists that edge among b's predecessors */
            if (nd != g->idom[b]) {
                g->idom[b] = nd;
                changed = 1;
            }
        }
    }
    free(post);
    return 0;
}

/* retained[i]: size of i and everything it dominates, in postorder
 * (a dominator finishes after every node it dominates).  A node with
 * stop[i] set keeps its sum to itself: the nodes above it do not count
 * what it retains. */
Py_ssize_t *
ct_graph_retained(ct_graph *g, const uint8_t *stop)
{
    Py_ssize_t *r = calloc(g->n, sizeof(Py_ssize_t));
    if (r == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (size_t k = 0; k < g->nreach; k++) {
        uint32_t v = g->order[k];
        r[v] += g->size[v];
        if (v != 0 && (stop == NULL || !stop[v])) {
            r[g->idom[v]] += r[v];
        }
    }
    return r;
}

/* ---- reachability with some nodes blocked ---- */

Py_ssize_t
ct_graph_freed_without(ct_graph *g, const uint8_t *blocked)
{
    size_t n = g->n;
    uint8_t *seen = calloc(n, 1);
    uint8_t *seen_all = calloc(n, 1);
    uint32_t *queue = malloc(n * sizeof(uint32_t));
    if (!seen || !seen_all || !queue) {
        free(seen);
        free(seen_all);
        free(queue);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t freed = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *mark = pass == 0 ? seen_all : seen;
        size_t head = 0, tail = 0;
        queue[tail++] = 0;
        mark[0] = 1;
        while (head < tail) {
            uint32_t v = queue[head++];
            for (uint32_t e = g->out_off[v]; e < g->out_off[v + 1]; e++) {
                uint32_t w = g->out[e];
                if (!mark[w] && !(pass == 1 && blocked[w])) {
                    mark[w] = 1;
                    queue[tail++] = w;
                }
            }
        }
    }
    for (size_t i = 1; i < n; i++) {
        if (seen_all[i] && !seen[i]) {
            freed += g->size[i];
        }
    }
    free(seen);
    free(seen_all);
    free(queue);
    return freed;
}

/* ---- shortest paths from the roots ---- */

int
ct_graph_distances(ct_graph *g, const uint8_t *is_root, uint32_t skip, uint32_t *dist)
{
    size_t n = g->n;
    uint32_t *queue = malloc(n * sizeof(uint32_t));
    if (queue == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++) {
        dist[i] = UINT32_MAX;
    }
    for (size_t i = 1; i < n; i++) {
        if (is_root[i] && i != skip) {
            dist[i] = 0;
            queue[tail++] = (uint32_t)i;
        }
    }
    while (head < tail) {
        uint32_t v = queue[head++];
        for (uint32_t e = g->out_off[v]; e < g->out_off[v + 1]; e++) {
            uint32_t w = g->out[e];
            if (dist[w] == UINT32_MAX) {
                dist[w] = dist[v] + 1;
                queue[tail++] = w;
            }
        }
    }
    free(queue);
    return 0;
}
