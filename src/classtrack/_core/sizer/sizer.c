/* sizer.c - iterative traversal of an object graph.  See sizer.h.
 *
 * Algorithm: depth-first over an explicit stack.  An object is marked seen
 * when it is pushed, so it is counted exactly once however many paths lead
 * to it, and the stack never holds it twice.  Referents come from:
 *   - list and tuple items, read directly;
 *   - dict keys and values through PyDict_Next (dict_traverse skips str
 *     keys, and str keys are real memory);
 *   - a numpy array's base and, for an object array owning its buffer,
 *     its elements (ct_ndarray_visit: an ndarray has no tp_traverse);
 *   - tp_traverse for every other GC object (never for non-GC objects:
 *     some traverse functions assume GC state);
 *   - the materialised __dict__ that 3.13's traverse hides while inline
 *     values are valid.
 * Invariant: every pointer in stack[0..sp) is a strong reference and is
 * in `seen`.
 */
#include "sizer/sizer_internal.h"
#include "base/compat.h"
#include "base/layout.h"

#include <stdlib.h>
#if PY_VERSION_HEX < 0x030B0000
#include <frameobject.h>
#endif

int
ct_sizer_refs_init(ct_sizer_refs *refs)
{
    memset(refs, 0, sizeof(*refs));
    refs->str_sizeof = PyUnicode_InternFromString("__sizeof__");
    if (refs->str_sizeof == NULL) {
        return -1;
    }
    refs->object_sizeof = _PyType_Lookup(&PyBaseObject_Type, refs->str_sizeof);
    if (refs->object_sizeof == NULL) {
        Py_CLEAR(refs->str_sizeof);
        PyErr_SetString(PyExc_RuntimeError, "object.__sizeof__ not found");
        return -1;
    }
    Py_INCREF(refs->object_sizeof);
    PyObject *wrapper = ct_getattr(Py_None, "__repr__");
    if (wrapper == NULL) {
        ct_sizer_refs_clear(refs);
        return -1;
    }
    refs->method_wrapper_type = Py_TYPE(wrapper);
    Py_INCREF(refs->method_wrapper_type);
    Py_DECREF(wrapper);
    return 0;
}

void
ct_sizer_refs_clear(ct_sizer_refs *refs)
{
    Py_CLEAR(refs->str_sizeof);
    Py_CLEAR(refs->object_sizeof);
    Py_CLEAR(refs->method_wrapper_type);
}

void
ct_sizer_refs_copy(ct_sizer_refs *dst, const ct_sizer_refs *src)
{
    dst->str_sizeof = Py_NewRef(src->str_sizeof);
    dst->object_sizeof = Py_NewRef(src->object_sizeof);
    dst->method_wrapper_type = (PyTypeObject *)Py_NewRef((PyObject *)src->method_wrapper_type);
}

void
ct_sizer_init(ct_sizer *s, const ct_sizer_refs *refs)
{
    memset(s, 0, sizeof(*s));
    s->limit = -1;
    s->clip = 80;
    s->refs = refs;
}

void
ct_unwind(ct_sizer *s, size_t base)
{
    while (s->sp > base) {
        s->sp--;
        Py_DECREF(s->stack[s->sp].obj);
    }
    s->leaf_bytes = 0;
}

void
ct_sizer_fini(ct_sizer *s)
{
    ct_unwind(s, 0);
    free(s->stack);
    s->stack = NULL;
    s->cap = 0;
    free(s->batch);
    s->batch = NULL;
    s->batchcap = 0;
    ct_ptrset_clear(&s->seen);
    ct_ptrset_clear(&s->excl_refs);
    ct_ptrset_clear(&s->excl_objs);
}

void
ct_sizer_reset(ct_sizer *s)
{
    ct_ptrset_clear(&s->seen);
    s->total = 0;
}

static int
add_to(ct_ptrset *set, PyObject *obj)
{
    if (ct_ptrset_add(set, obj) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

int
ct_sizer_mark_root(ct_sizer *s, PyObject *obj)
{
    return add_to(&s->seen, obj);
}

int
ct_sizer_exclude_ref(ct_sizer *s, PyObject *obj)
{
    return add_to(&s->excl_refs, obj);
}

int
ct_sizer_exclude_obj(ct_sizer *s, PyObject *obj)
{
    return add_to(&s->excl_objs, obj);
}

size_t
ct_sizer_footprint(const ct_sizer *s)
{
    return ct_ptrset_footprint(&s->seen) + ct_ptrset_footprint(&s->excl_refs)
           + ct_ptrset_footprint(&s->excl_objs)
           + s->cap * sizeof(ct_stack_entry) + s->batchcap * sizeof(PyObject *);
}

static int
stack_push(ct_sizer *s, PyObject *obj, Py_ssize_t depth)
{
    if (s->sp == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        ct_stack_entry *st = realloc(s->stack, cap * sizeof(ct_stack_entry));
        if (st == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->stack = st;
        s->cap = cap;
    }
    Py_INCREF(obj);
    s->stack[s->sp].obj = obj;
    s->stack[s->sp].depth = depth;
    s->sp++;
    return 0;
}

/* 1 when ref is in an exclusion set, or (roots_seen: a snapshot, where
 * most referents met twice are tracked objects) sized already: decided
 * from the address alone, without touching the object. */
static inline int
excluded(const ct_sizer *s, PyObject *ref)
{
    return (s->excl_refs.used && ct_ptrset_contains(&s->excl_refs, ref))
           || (s->excl_objs.used && ct_ptrset_contains(&s->excl_objs, ref))
           || (s->roots_seen && ct_ptrset_contains(&s->seen, ref));
}

/* ct_consider for a referent already known not to be excluded. */
static int
consider_unexcluded(ct_sizer *s, PyObject *ref, Py_ssize_t depth)
{
    if (ct_policy_skip(s, ref, 0)) {
        return 0;
    }
    int added = ct_ptrset_add(&s->seen, ref);
    if (added <= 0) {
        if (added < 0) {
            PyErr_NoMemory();
        }
        return added;
    }
    /* Leaves of the common built-in types are sized right here, while the
     * object is in cache, and never go on the stack: they have no
     * referents and sizing them runs no Python code (this runs inside
     * tp_traverse callbacks, where Python code must not run). */
    Py_ssize_t leaf = ct_leaf_size(ref);
    if (leaf >= 0) {
        s->leaf_bytes += leaf;
        return 1;
    }
    return stack_push(s, ref, depth) < 0 ? -1 : 1;
}

int
ct_consider(ct_sizer *s, PyObject *ref, Py_ssize_t depth)
{
    /* The exclusion sets first: they look at the address only, while the
     * policy reads the object's type, a cache miss for an excluded
     * referent that nothing else touches (in a snapshot, every tracked
     * object that a tracked object refers to). */
    if (ref == NULL || excluded(s, ref)) {
        return 0;
    }
    return consider_unexcluded(s, ref, depth);
}

/* Considers n borrowed referents, a chunk at a time: the excluded ones
 * are dropped by address, then the others are prefetched together and
 * considered in order.  The first touch of each object is a cache miss,
 * and issuing a chunk's at once overlaps them; an excluded referent is
 * never fetched.  Nothing here runs Python code, so the borrowed pointers
 * stay valid. */
#define CT_CONSIDER_CHUNK 16

static int
consider_array(ct_sizer *s, PyObject *const *items, Py_ssize_t n,
               Py_ssize_t depth)
{
    PyObject *keep[CT_CONSIDER_CHUNK];
    for (Py_ssize_t start = 0; start < n; start += CT_CONSIDER_CHUNK) {
        Py_ssize_t end = n - start < CT_CONSIDER_CHUNK ? n : start + CT_CONSIDER_CHUNK;
        int nkeep = 0;
        for (Py_ssize_t i = start; i < end; i++) {
            PyObject *ref = items[i];
            if (ref != NULL && !excluded(s, ref)) {
                __builtin_prefetch(ref);
                keep[nkeep++] = ref;
            }
        }
        for (int j = 0; j < nkeep; j++) {
            if (consider_unexcluded(s, keep[j], depth) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* tp_traverse callback: collect the referent into s->batch. */
static int
visit_collect(PyObject *ref, void *arg)
{
    ct_sizer *s = (ct_sizer *)arg;
    if (s->nbatch == s->batchcap) {
        size_t cap = s->batchcap ? s->batchcap * 2 : 64;
        PyObject **b = realloc(s->batch, cap * sizeof(PyObject *));
        if (b == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->batch = b;
        s->batchcap = cap;
    }
    s->batch[s->nbatch++] = ref;
    return 0;
}

/* ct_ndarray_visit callback: considers the array's referents a chunk at
 * a time (consider_array), so that an array of millions of objects needs
 * no list of them. */
typedef struct {
    ct_sizer *s;
    Py_ssize_t depth;
    int n;
    PyObject *chunk[CT_CONSIDER_CHUNK];     /* borrowed from the array */
} array_refs;

static int
visit_array_ref(PyObject *ref, Py_ssize_t index, void *arg)
{
    (void)index;
    array_refs *ar = (array_refs *)arg;
    ar->chunk[ar->n++] = ref;
    if (ar->n == CT_CONSIDER_CHUNK) {
        ar->n = 0;
        return consider_array(ar->s, ar->chunk, CT_CONSIDER_CHUNK, ar->depth);
    }
    return 0;
}

int
ct_push_referents(ct_sizer *s, PyObject *obj, Py_ssize_t depth)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (s->limit >= 0 && depth > s->limit) {
        return 0;
    }
    if (tp == &PyList_Type) {
        return consider_array(s, ((PyListObject *)obj)->ob_item,
                              PyList_GET_SIZE(obj), depth);
    }
    if (tp == &PyTuple_Type) {
        return consider_array(s, ((PyTupleObject *)obj)->ob_item,
                              PyTuple_GET_SIZE(obj), depth);
    }
    if (ct_any_dict_check(obj)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(obj, &pos, &k, &v)) {
            if (ct_consider(s, k, depth) < 0 || ct_consider(s, v, depth) < 0) {
                return -1;
            }
        }
        if (tp == &PyDict_Type) {
            return 0;
        }
    }
    if (ct_ndarray_check(obj)) {
        array_refs ar;
        ar.s = s;
        ar.depth = depth;
        ar.n = 0;
        if (ct_ndarray_visit(obj, visit_array_ref, &ar) != 0
            || consider_array(s, ar.chunk, ar.n, depth) < 0) {
            return -1;
        }
    }
#if CT_LAYOUT_VERSION < 0x030B
    /* 3.9/3.10: a generator's, coroutine's or async generator's frame is
     * its own state (3.11+ keeps it inside the object), so it is counted
     * with it even where frames are not followed */
    if ((PyGen_Check(obj) || PyCoro_CheckExact(obj) || PyAsyncGen_CheckExact(obj))
        && ((PyGenObject *)obj)->gi_frame != NULL && !(s->flags & CT_FOLLOW_FRAMES)) {
        s->flags |= CT_FOLLOW_FRAMES;
        int r = ct_consider(s, (PyObject *)((PyGenObject *)obj)->gi_frame, depth);
        s->flags &= ~(unsigned)CT_FOLLOW_FRAMES;
        if (r < 0) {
            return -1;
        }
    }
#endif
    if (ct_is_gc(obj) && tp->tp_traverse != NULL) {
        s->nbatch = 0;
        if (tp->tp_traverse(obj, visit_collect, s) != 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_RuntimeError, "traversal failed");
            }
            return -1;
        }
#if CT_LAYOUT_VERSION < 0x030B
        if (tp == &PyFrame_Type) {
            /* a 3.9/3.10 frame's globals, builtins and caller are not its
             * own (3.11+ frames do not report them) */
            PyFrameObject *f = (PyFrameObject *)obj;
            size_t k = 0;
            for (size_t i = 0; i < s->nbatch; i++) {
                PyObject *r = s->batch[i];
                if (r != f->f_globals && r != f->f_builtins && r != (PyObject *)f->f_back) {
                    s->batch[k++] = r;
                }
            }
            s->nbatch = k;
        }
#endif
        if (consider_array(s, s->batch, (Py_ssize_t)s->nbatch, depth) < 0) {
            return -1;
        }
        if (ct_dict_hidden_from_traverse(obj)
            && ct_consider(s, ct_existing_dict(obj), depth) < 0) {
            return -1;
        }
    }
    return 0;
}

Py_ssize_t
ct_drain(ct_sizer *s, size_t base)
{
    Py_ssize_t total = s->leaf_bytes;
    s->leaf_bytes = 0;
    while (s->sp > base) {
        s->sp--;
        PyObject *obj = s->stack[s->sp].obj;
        Py_ssize_t depth = s->stack[s->sp].depth;
        if (s->sp > base) {
            ct_prefetch_attr_storage(s->stack[s->sp - 1].obj);
        }
        Py_ssize_t flat = ct_flat_size(s, obj);
        if (flat < 0 || ct_push_referents(s, obj, depth + 1) < 0) {
            Py_DECREF(obj);
            ct_unwind(s, base);
            return -1;
        }
        total += flat;
        Py_DECREF(obj);
    }
    total += s->leaf_bytes;
    s->leaf_bytes = 0;
    return total;
}

static int
enter(ct_sizer *s)
{
    if (s->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Asizer used re-entrantly (from a __sizeof__ or "
                        "__repr__ it is sizing)");
        return -1;
    }
    s->busy = 1;
    s->leaf_bytes = 0;
    return 0;
}

Py_ssize_t
ct_sizer_size_flat(ct_sizer *s, PyObject *obj, Py_ssize_t *flat_out)
{
    if (enter(s) < 0) {
        return -1;
    }
    Py_ssize_t total = 0, flat = 0;
    if (ct_policy_skip(s, obj, 1)
        || (s->excl_objs.used && ct_ptrset_contains(&s->excl_objs, obj))) {
        goto done;
    }
    int added = ct_ptrset_add(&s->seen, obj);
    if (added < 0) {
        PyErr_NoMemory();
        total = -1;
        goto done;
    }
    if (added == 0 && !s->roots_seen) {
        goto done;
    }
    Py_INCREF(obj);
    flat = ct_flat_size(s, obj);
    size_t base = s->sp;
    if (flat < 0 || ct_push_referents(s, obj, 1) < 0) {
        ct_unwind(s, base);
        total = -1;
    }
    else {
        Py_ssize_t sub = ct_drain(s, base);
        total = sub < 0 ? -1 : flat + sub;
    }
    Py_DECREF(obj);
    if (total >= 0) {
        s->total += total;
    }
done:
    s->busy = 0;
    if (flat_out != NULL) {
        *flat_out = total > 0 ? flat : 0;
    }
    return total;
}

Py_ssize_t
ct_sizer_size(ct_sizer *s, PyObject *obj)
{
    return ct_sizer_size_flat(s, obj, NULL);
}
