/* sizer_tree.c - per-referent detail: asized(obj, detail=N).
 *
 * Builds nested tuples (name, size, flat, refs) where refs is a tuple of
 * such nodes, down to `detail` levels; below that a node's size comes from
 * the iterative traversal in sizer.c.  The C recursion here is bounded by
 * `detail`, never by the depth of the object graph.
 *
 * Naming follows Pympler, so that reports merge referents alike:
 *   instance attributes    __dict__, then "[K] name" and "[V] name: repr"
 *   dict entries           "[K] key" and "[V] key: <repr clipped>"
 *   list/tuple items       "[0]", "[1]", ...
 *   __slots__              the slot's (mangled) name
 *   anything else          "[i]" in tp_traverse order
 * On 3.11+ an instance without a materialised dict gets a virtual __dict__
 * node whose flat size is the values storage; the attributes are read from
 * the values and the class's shared keys, so no dict is ever created.
 *
 * Naming runs Python code (str of keys, repr of values).  Everything read
 * from a container is held by a strong reference before that code runs,
 * and a raising repr is replaced by the default "<Type object at 0x..>".
 * With s->no_reprs no repr is taken at all: values are named "[V] key"
 * and keys that are not str "<type>" (by the type's tp_name), so the
 * names hold attribute names and str keys only, never data.
 */
#include "sizer/sizer_internal.h"
#include "base/layout.h"

#ifdef Py_T_OBJECT_EX
#define CT_T_OBJECT_EX Py_T_OBJECT_EX
#else
#include <structmember.h>
#define CT_T_OBJECT_EX T_OBJECT_EX
#endif

static PyObject *tree_node(ct_sizer *s, PyObject *obj, PyObject *name,
                           int level, int detail, int top);

static PyObject *
make_node(PyObject *name, Py_ssize_t size, Py_ssize_t flat, PyObject *refs)
{
    /* refs: new reference or NULL for an empty tuple */
    if (refs == NULL) {
        refs = PyTuple_New(0);
        if (refs == NULL) {
            return NULL;
        }
    }
    PyObject *node = Py_BuildValue("(OnnN)", name, size, flat, refs);
    return node;
}

/* Total size of a list of nodes (tuples whose item 1 is the size). */
static Py_ssize_t
sum_of_sizes(PyObject *nodes)
{
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(nodes); i++) {
        total += PyLong_AsSsize_t(PyTuple_GET_ITEM(PyList_GET_ITEM(nodes, i), 1));
    }
    return total;
}

/* repr(obj) clipped to s->clip characters; never fails with an Exception
 * (falls back to the default repr).  New reference or NULL. */
static PyObject *
safe_repr(ct_sizer *s, PyObject *obj)
{
    PyObject *r = PyObject_Repr(obj);
    if (r == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;
        }
        PyErr_Clear();
        return PyUnicode_FromFormat("<%s object at %p>", Py_TYPE(obj)->tp_name,
                                    (void *)obj);
    }
    if (!PyUnicode_Check(r)) {   /* cannot happen: PyObject_Repr checks */
        Py_DECREF(r);
        return PyUnicode_FromString("?");
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(r);
    if (s->clip > 8 && n > s->clip) {
        Py_ssize_t h = s->clip / 2 - 2;
        PyObject *head = PyUnicode_Substring(r, 0, h);
        PyObject *tail = PyUnicode_Substring(r, n - h, n);
        Py_DECREF(r);
        r = NULL;
        if (head != NULL && tail != NULL) {
            r = PyUnicode_FromFormat("%U....%U", head, tail);
        }
        Py_XDECREF(head);
        Py_XDECREF(tail);
    }
    return r;
}

static PyObject *
key_text(ct_sizer *s, PyObject *key)
{
    if (PyUnicode_Check(key)) {
        Py_INCREF(key);
        return key;
    }
    if (s->no_reprs) {
        return PyUnicode_FromFormat("<%s>", Py_TYPE(key)->tp_name);
    }
    return safe_repr(s, key);
}

/* Appends the [K] and [V] nodes of one (key, value) pair. */
static int
append_pair(ct_sizer *s, PyObject *out, PyObject *key, PyObject *value,
            int level, int detail)
{
    int rc = -1;
    PyObject *kt = NULL, *vr = NULL, *kname = NULL, *vname = NULL;
    PyObject *knode = NULL, *vnode = NULL;
    Py_INCREF(key);
    Py_INCREF(value);
    kt = key_text(s, key);
    if (kt == NULL) {
        goto done;
    }
    if (!s->no_reprs && (vr = safe_repr(s, value)) == NULL) {
        goto done;
    }
    kname = PyUnicode_FromFormat("[K] %U", kt);
    vname = vr != NULL ? PyUnicode_FromFormat("[V] %U: %U", kt, vr)
                       : PyUnicode_FromFormat("[V] %U", kt);
    if (kname == NULL || vname == NULL) {
        goto done;
    }
    knode = tree_node(s, key, kname, level, detail, 0);
    if (knode == NULL || PyList_Append(out, knode) < 0) {
        goto done;
    }
    vnode = tree_node(s, value, vname, level, detail, 0);
    if (vnode == NULL || PyList_Append(out, vnode) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(knode);
    Py_XDECREF(vnode);
    Py_XDECREF(kname);
    Py_XDECREF(vname);
    Py_XDECREF(kt);
    Py_XDECREF(vr);
    Py_DECREF(key);
    Py_DECREF(value);
    return rc;
}

static int
append_items(ct_sizer *s, PyObject *out, PyObject *items, int level, int detail)
{
    /* items: a list of (key, value) tuples, as PyDict_Items returns */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        if (append_pair(s, out, PyTuple_GET_ITEM(pair, 0),
                        PyTuple_GET_ITEM(pair, 1), level, detail) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
append_indexed(ct_sizer *s, PyObject *out, PyObject *seq, int level, int detail)
{
    /* seq: a list or tuple this function may rely on (a private copy) */
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyUnicode_FromFormat("[%zd]", i);
        if (name == NULL) {
            return -1;
        }
        PyObject *node = tree_node(s, PySequence_Fast_GET_ITEM(seq, i), name,
                                   level, detail, 0);
        Py_DECREF(name);
        if (node == NULL || PyList_Append(out, node) < 0) {
            Py_XDECREF(node);
            return -1;
        }
        Py_DECREF(node);
    }
    return 0;
}

static int
collect_visit(PyObject *ref, void *arg)
{
    return PyList_Append((PyObject *)arg, ref);
}

/* tp_traverse referents as a new list, minus those in `named`. */
static PyObject *
traverse_list(ct_sizer *s, PyObject *obj, ct_ptrset *named)
{
    PyObject *all = PyList_New(0);
    if (all == NULL || !PyObject_IS_GC(obj) || Py_TYPE(obj)->tp_traverse == NULL) {
        return all;
    }
    if (Py_TYPE(obj)->tp_traverse(obj, collect_visit, all) != 0) {
        Py_DECREF(all);
        return NULL;
    }
    PyObject *kept = PyList_New(0);
    for (Py_ssize_t i = 0; kept != NULL && i < PyList_GET_SIZE(all); i++) {
        PyObject *r = PyList_GET_ITEM(all, i);
        if ((named != NULL && ct_ptrset_contains(named, r))
            || ct_policy_skip(s, r, 0)) {
            continue;
        }
        if (PyList_Append(kept, r) < 0) {
            Py_CLEAR(kept);
        }
    }
    Py_DECREF(all);
    return kept;
}

typedef struct {
    ct_sizer *s;
    PyObject *pairs;    /* list of (name, value) tuples being filled */
} attr_ctx;

static int
collect_attr(PyObject *name, PyObject *value, void *arg)
{
    attr_ctx *ctx = (attr_ctx *)arg;
    PyObject *pair = PyTuple_Pack(2, name, value);
    if (pair == NULL) {
        return -1;
    }
    int r = PyList_Append(ctx->pairs, pair);
    Py_DECREF(pair);
    return r;
}

/* The virtual __dict__ of an instance whose attributes live in values
 * storage.  `pairs` is a list of (name, value). */
static PyObject *
virtual_dict_node(ct_sizer *s, PyObject *pairs, Py_ssize_t storage, int level,
                  int detail)
{
    PyObject *name = PyUnicode_FromString("__dict__");
    PyObject *node = NULL, *refs = NULL, *out = NULL;
    if (name == NULL) {
        return NULL;
    }
    Py_ssize_t size = storage;
    if (level >= detail) {
        size_t base = s->sp;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pairs); i++) {
            PyObject *pair = PyList_GET_ITEM(pairs, i);
            if (ct_consider(s, PyTuple_GET_ITEM(pair, 1), level + 1) < 0) {
                ct_unwind(s, base);
                goto done;
            }
        }
        Py_ssize_t sub = ct_drain(s, base);
        if (sub < 0) {
            goto done;
        }
        node = make_node(name, size + sub, storage, NULL);
        goto done;
    }
    out = PyList_New(0);
    if (out == NULL || append_items(s, out, pairs, level + 1, detail) < 0) {
        goto done;
    }
    size += sum_of_sizes(out);
    refs = PyList_AsTuple(out);
    if (refs != NULL) {
        node = make_node(name, size, storage, refs);
        refs = NULL;
    }
done:
    Py_XDECREF(out);
    Py_DECREF(name);
    return node;
}

/* Children of a heap-type instance: __dict__ (real or virtual), slots,
 * then what tp_traverse reports beyond those.  *flat loses the values
 * storage when it moves to a virtual __dict__ node. */
static int
instance_children(ct_sizer *s, PyObject *obj, PyObject *out, Py_ssize_t *flat,
                  int level, int detail)
{
    int rc = -1;
    ct_ptrset named;
    ct_ptrset_init(&named);
    PyObject *pairs = NULL, *rest = NULL, *node = NULL;
    PyObject *mro = Py_TYPE(obj)->tp_mro;
    Py_XINCREF(mro);

    PyObject *dict = ct_existing_dict(obj);
    if (dict != NULL) {
        PyObject *dname = PyUnicode_FromString("__dict__");
        if (dname == NULL) {
            goto done;
        }
        Py_INCREF(dict);
        node = tree_node(s, dict, dname, level, detail, 0);
        if (ct_ptrset_add(&named, dict) < 0) {
            PyErr_NoMemory();
            Py_CLEAR(node);
        }
        Py_DECREF(dict);
        Py_DECREF(dname);
        if (node == NULL || PyList_Append(out, node) < 0) {
            goto done;
        }
        Py_CLEAR(node);
    }
    else {
        pairs = PyList_New(0);
        if (pairs == NULL) {
            goto done;
        }
        attr_ctx ctx = {s, pairs};
        int r = ct_visit_attr_values(obj, collect_attr, &ctx);
        if (r < 0) {
            goto done;
        }
        if (r > 0) {
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pairs); i++) {
                if (ct_ptrset_add(&named, PyTuple_GET_ITEM(
                                      PyList_GET_ITEM(pairs, i), 1)) < 0) {
                    PyErr_NoMemory();
                    goto done;
                }
            }
            Py_ssize_t storage = (Py_ssize_t)(ct_attr_storage_size(obj)
                                                + ct_inline_values_size(obj));
            if (storage > *flat) {
                storage = 0;
            }
            *flat -= storage;
            node = virtual_dict_node(s, pairs, storage, level, detail);
            if (node == NULL || PyList_Append(out, node) < 0) {
                goto done;
            }
            Py_CLEAR(node);
        }
    }

    /* __slots__: object members of every heap type in the MRO */
    for (Py_ssize_t i = 0; mro != NULL && PyTuple_Check(mro)
                           && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!PyType_Check(t) || !(t->tp_flags & Py_TPFLAGS_HEAPTYPE)
            || t->tp_members == NULL) {
            continue;
        }
        for (PyMemberDef *m = t->tp_members; m->name != NULL; m++) {
            if (m->type != CT_T_OBJECT_EX || m->offset <= 0) {
                continue;
            }
            PyObject *v = *(PyObject **)((char *)obj + m->offset);
            if (v == NULL) {
                continue;
            }
            PyObject *sname = PyUnicode_FromString(m->name);
            if (sname == NULL) {
                goto done;
            }
            Py_INCREF(v);
            if (ct_ptrset_add(&named, v) < 0) {
                PyErr_NoMemory();
            }
            else {
                node = tree_node(s, v, sname, level, detail, 0);
            }
            Py_DECREF(v);
            Py_DECREF(sname);
            if (node == NULL || PyList_Append(out, node) < 0) {
                goto done;
            }
            Py_CLEAR(node);
        }
    }

    rest = traverse_list(s, obj, &named);
    if (rest == NULL || append_indexed(s, out, rest, level, detail) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(node);
    Py_XDECREF(pairs);
    Py_XDECREF(rest);
    Py_XDECREF(mro);
    ct_ptrset_clear(&named);
    return rc;
}

/* What a numpy array holds, taken (each with a strong reference) before
 * any naming or sizing runs Python code that could change the array. */
typedef struct {
    PyObject **refs;
    Py_ssize_t *index;
    size_t n, cap;
} ndarray_refs;

static int
collect_ndarray_ref(PyObject *ref, Py_ssize_t index, void *arg)
{
    ndarray_refs *nr = (ndarray_refs *)arg;
    if (nr->n == nr->cap) {
        size_t cap = nr->cap ? nr->cap * 2 : 16;
        PyObject **refs = PyMem_Realloc(nr->refs, cap * sizeof(PyObject *));
        if (refs == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        nr->refs = refs;
        Py_ssize_t *index_ = PyMem_Realloc(nr->index, cap * sizeof(Py_ssize_t));
        if (index_ == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        nr->index = index_;
        nr->cap = cap;
    }
    nr->refs[nr->n] = Py_NewRef(ref);
    nr->index[nr->n] = index;
    nr->n++;
    return 0;
}

/* An ndarray's base ("base") and object elements ("[i]", flat index). */
static int
append_ndarray(ct_sizer *s, PyObject *out, PyObject *obj, int level, int detail)
{
    ndarray_refs nr = {NULL, NULL, 0, 0};
    int rc = ct_ndarray_visit(obj, collect_ndarray_ref, &nr);
    for (size_t i = 0; rc == 0 && i < nr.n; i++) {
        PyObject *name = nr.index[i] < 0 ? PyUnicode_FromString("base")
                                          : PyUnicode_FromFormat("[%zd]", nr.index[i]);
        PyObject *node = name != NULL ? tree_node(s, nr.refs[i], name, level, detail, 0)
                                      : NULL;
        Py_XDECREF(name);
        if (node == NULL || PyList_Append(out, node) < 0) {
            rc = -1;
        }
        Py_XDECREF(node);
    }
    for (size_t i = 0; i < nr.n; i++) {
        Py_DECREF(nr.refs[i]);
    }
    PyMem_Free(nr.refs);
    PyMem_Free(nr.index);
    return rc;
}

static int
children_of(ct_sizer *s, PyObject *obj, PyObject *out, Py_ssize_t *flat,
            int level, int detail)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp == &PyList_Type || tp == &PyTuple_Type) {
        PyObject *copy = tp == &PyList_Type
                             ? PyList_GetSlice(obj, 0, PyList_GET_SIZE(obj))
                             : (Py_INCREF(obj), obj);
        if (copy == NULL) {
            return -1;
        }
        int r = append_indexed(s, out, copy, level, detail);
        Py_DECREF(copy);
        return r;
    }
    if (ct_any_dict_check(obj)) {
        PyObject *items = PyDict_Items(obj);
        if (items == NULL) {
            return -1;
        }
        int r = append_items(s, out, items, level, detail);
        Py_DECREF(items);
        if (r < 0 || tp == &PyDict_Type) {
            return r;
        }
    }
    if (ct_ndarray_check(obj) && append_ndarray(s, out, obj, level, detail) < 0) {
        return -1;
    }
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        return instance_children(s, obj, out, flat, level, detail);
    }
    PyObject *rest = traverse_list(s, obj, NULL);
    if (rest == NULL) {
        return -1;
    }
    int r = append_indexed(s, out, rest, level, detail);
    Py_DECREF(rest);
    return r;
}

static PyObject *
tree_node(ct_sizer *s, PyObject *obj, PyObject *name, int level, int detail,
          int top)
{
    int skip = ct_policy_skip(s, obj, top)
               || (s->excl_objs.used && ct_ptrset_contains(&s->excl_objs, obj))
               || (!top && s->excl_refs.used
                   && ct_ptrset_contains(&s->excl_refs, obj));
    if (skip) {
        return make_node(name, 0, 0, NULL);
    }
    int added = ct_ptrset_add(&s->seen, obj);
    if (added < 0) {
        return PyErr_NoMemory();
    }
    if (added == 0 && !(top && s->roots_seen)) {
        return make_node(name, 0, 0, NULL);
    }
    Py_ssize_t flat = ct_flat_size(s, obj);
    if (flat < 0) {
        return NULL;
    }
    if (level >= detail || (s->limit >= 0 && level >= s->limit)) {
        size_t base = s->sp;
        if (ct_push_referents(s, obj, level + 1) < 0) {
            ct_unwind(s, base);
            return NULL;
        }
        Py_ssize_t sub = ct_drain(s, base);
        if (sub < 0) {
            return NULL;
        }
        return make_node(name, flat + sub, flat, NULL);
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    Py_INCREF(obj);
    int r = children_of(s, obj, out, &flat, level + 1, detail);
    Py_DECREF(obj);
    if (r < 0) {
        Py_DECREF(out);
        return NULL;
    }
    Py_ssize_t size = flat + sum_of_sizes(out);
    PyObject *refs = PyList_AsTuple(out);
    Py_DECREF(out);
    if (refs == NULL) {
        return NULL;
    }
    return make_node(name, size, flat, refs);
}

PyObject *
ct_sizer_tree(ct_sizer *s, PyObject *obj, int detail, PyObject *name)
{
    if (s->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Asizer used re-entrantly (from a __sizeof__ or "
                        "__repr__ it is sizing)");
        return NULL;
    }
    s->busy = 1;
    PyObject *node = tree_node(s, obj, name, 0, detail, 1);
    s->busy = 0;
    if (node != NULL) {
        s->total += PyLong_AsSsize_t(PyTuple_GET_ITEM(node, 1));
    }
    return node;
}
