/* graph_type.c - Python binding of the heap graph: _core.retained and
 * _core.root_paths.  Argument conversion only; see graph.c. */
#include "state.h"
#include <frameobject.h>
#include "graph.h"
#include "layout.h"

#include <stdlib.h>

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

/* Appends to out the path root .. target as a tuple (ext, refcnt, [objs]). */
static int
emit_path(ct_graph *g, const uint32_t *path, size_t len, PyObject *out)
{
    PyObject *objsl = PyList_New((Py_ssize_t)len);
    if (objsl == NULL) {
        return -1;
    }
    for (size_t k = 0; k < len; k++) {
        PyObject *o = g->nodes[path[len - 1 - k]];
        PyList_SET_ITEM(objsl, (Py_ssize_t)k, Py_NewRef(o));
    }
    /* the root's true refcount: from outside plus from the graph (its
     * in-edges, less the virtual root's) */
    uint32_t r = path[len - 1];
    Py_ssize_t from_graph = (Py_ssize_t)(g->in_off[r + 1] - g->in_off[r]) - (g->ext[r] > 0);
    PyObject *t = Py_BuildValue("(nnN)", g->ext[r], g->ext[r] + from_graph, objsl);
    if (t == NULL) {
        return -1;
    }
    int rc = PyList_Append(out, t);
    Py_DECREF(t);
    return rc;
}

/* root_paths(objs, exclude, target, limit, named_roots) ->
 * [(ext, refcnt, [root, ..., target])]: up to limit shortest paths to
 * target from the objects held from outside the graph (objs less the
 * tuple exclude) and the named roots (modules), target itself never a
 * root. */
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
    PyObject *out = PyList_New(0);
    uint8_t *is_root = calloc(g.n, 1);
    uint32_t *dist = malloc(g.n * sizeof(uint32_t));
    uint32_t *path = NULL, *cursor = NULL;
    if (out == NULL || is_root == NULL || dist == NULL) {
        if (out != NULL) {
            PyErr_NoMemory();
        }
        goto error;
    }
    for (size_t i = 1; i < g.n; i++) {
        is_root[i] = g.ext[i] > 0;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        uint32_t id = ct_graph_find(&g, PySequence_Fast_GET_ITEM(seq, i));
        if (id != 0) {
            is_root[id] = 1;
        }
    }
    uint32_t t = ct_graph_find(&g, target);
    if (t == 0 || limit <= 0) {
        goto done;
    }
    if (ct_graph_distances(&g, is_root, t, dist) < 0) {
        goto error;
    }
    if (dist[t] == UINT32_MAX) {
        goto done;      /* only held by the caller, or garbage */
    }
    /* backtracking over predecessors one step closer to a root: every such
     * choice leads to a root, so each path costs its length */
    size_t len = (size_t)dist[t] + 1;
    path = malloc(len * sizeof(uint32_t));
    cursor = malloc(len * sizeof(uint32_t));
    if (path == NULL || cursor == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    size_t depth = 0;
    path[0] = t;
    cursor[0] = g.in_off[t];
    Py_ssize_t found = 0;
    while (found < limit) {
        uint32_t v = path[depth];
        if (dist[v] == 0) {
            if (emit_path(&g, path, depth + 1, out) < 0) {
                goto error;
            }
            found++;
            if (depth == 0) {
                break;
            }
            depth--;
            continue;
        }
        int advanced = 0;
        while (cursor[depth] < g.in_off[v + 1]) {
            uint32_t p = g.in[cursor[depth]++];
            if (p != 0 && dist[p] + 1 == dist[v]) {
                path[depth + 1] = p;
                cursor[depth + 1] = g.in_off[p];
                depth++;
                advanced = 1;
                break;
            }
        }
        if (!advanced) {
            if (depth == 0) {
                break;
            }
            depth--;
        }
    }
done:
    free(path);
    free(cursor);
    free(is_root);
    free(dist);
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

/* frame_var(frame, name) -> (value,) | None: a variable of a frame read
 * in place, nothing materialised (frame.f_locals before 3.13 copies the
 * locals into a dict the frame keeps).  3.12+: PyFrame_GetVar; 3.9/3.10:
 * the public frame struct's fast locals.  None when the name is unbound,
 * or on 3.11, which has neither. */
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
    Py_RETURN_NONE;     /* 3.11: locals are not readable in place */
#endif
}

PyMethodDef ct_graph_functions[] = {
    {"frame_var", core_frame_var, METH_VARARGS,
     "frame_var(frame, name) -> (value,) or None: a frame's variable read in "
     "place (None where unbound, and on 3.11)."},
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
