/* graph.h - the heap's object graph: roots, dominators, shortest paths.
 * See graph.c for the design.  All functions need the GIL. */
#ifndef CLASSTRACK_GRAPH_H
#define CLASSTRACK_GRAPH_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "base/ptrset.h"

#include "sizer/sizer.h"

/* A non-GC object whose only reference is one node's (refcount 1): it
 * cannot be shared, its holder dominates it, so it is no node of its own
 * and its size is added to the holder's (strong reference). */
struct ct_graph_fold {
    uint32_t holder;
    PyObject *leaf;
};

typedef struct {
    PyObject *objs;         /* strong: the gc.get_objects() list */
    PyObject **nodes;       /* node i's object; nodes[0] is the virtual root
                               (NULL); 1..nlisted from objs (kept alive by
                               it), the rest leaves (strong once built) */
    size_t n, cap, nlisted;
    ct_ptrmap map;          /* object address -> node number */
    uint32_t *edges;        /* (src, dst) pairs while building */
    size_t nedges, edgecap;
    Py_ssize_t *ext;        /* references from outside the graph (grows with nodes) */
    size_t nroots;          /* nodes with ext > 0 */
    uint32_t *out_off, *out;    /* CSR of out-edges, node 0's are the roots */
    uint32_t *in_off, *in;      /* CSR of in-edges */
    Py_ssize_t *size;       /* flat size per node (ct_graph_sizes) */
    uint32_t *idom;         /* immediate dominator (ct_graph_dominators) */
    uint32_t *order;        /* nodes reachable from the root, in postorder */
    size_t nreach;
    struct ct_graph_fold *folded;   /* leaves folded into their one holder */
    size_t nfolded, foldcap;
    ct_ptrset folded_set;   /* the folded leaves (3.14+: see CT_STACK_BORROWS) */
    size_t nowned;          /* leaves nlisted+1 .. nlisted+nowned hold our reference */
} ct_graph;

/* Builds the graph of the objects in `objs` (gc.get_objects()) and all
 * they refer to, leaving out the objects of `exclude` (a sequence, or
 * NULL): they are not nodes of their own, but a leaf when another node
 * refers to them.  0, or -1 with an exception (g is then freed). */
int ct_graph_build(ct_graph *g, PyObject *objs, PyObject *exclude);
void ct_graph_free(ct_graph *g);

/* Node number of o, or 0 when o is not in the graph. */
uint32_t ct_graph_find(const ct_graph *g, PyObject *o);

/* Flat sizes of every node (may run a __sizeof__).  0 or -1. */
int ct_graph_sizes(ct_graph *g, ct_sizer *s);

/* Immediate dominators of the nodes reachable from the root.  0 or -1. */
int ct_graph_dominators(ct_graph *g);
/* Retained size per node (malloc'ed array, n entries), or NULL.  With
 * `stop` (n flags, or NULL), a flagged node's retained size is left out of
 * its dominators': each flagged node then reports only what it retains
 * exclusively of the other flagged nodes. */
Py_ssize_t *ct_graph_retained(ct_graph *g, const uint8_t *stop);

/* Bytes that become unreachable when the `blocked` nodes do (blocked
 * nodes included).  -1 with MemoryError. */
Py_ssize_t ct_graph_freed_without(ct_graph *g, const uint8_t *blocked);

/* BFS distances from the nodes with is_root[i] (node `skip` excepted);
 * UINT32_MAX when unreachable.  0 or -1. */
int ct_graph_distances(ct_graph *g, const uint8_t *is_root, uint32_t skip, uint32_t *dist);

/* Calls visit(ref, arg) for each referent of o the graph follows: what
 * tp_traverse reports, the str keys dict_traverse leaves out, a managed
 * __dict__ an instance's traverse hides (3.13), and a numpy array's base
 * and the elements of an object array owning its buffer.  A referent may
 * come more than once.  visit returns 0 to go on; anything else stops the
 * walk, and then this returns -1.  Runs no Python code. */
typedef int (*ct_referent_visit)(PyObject *ref, void *arg);
int ct_graph_referents(PyObject *o, ct_referent_visit visit, void *arg);

extern PyMethodDef ct_graph_functions[];

#endif
