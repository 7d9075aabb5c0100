/* bindings/py_sizer.c - Python binding of the sizer: the heap type
 * classtrack._core.Sizer and the module functions flatsize/basicsize.
 * Argument conversion only; the work happens in sizer*.c. */
#include "bindings/py_state.h"
#include "sizer/sizer.h"
#include "base/layout.h"

#include <string.h>

typedef struct {
    PyObject_HEAD
    ct_sizer s;
    ct_sizer_refs refs;     /* strong: what s.refs points at */
} SizerObject;

static int
parse_config(ct_sizer *s, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"flags", "limit", "clip", NULL};
    unsigned int flags = s->flags;
    Py_ssize_t limit = s->limit, clip = s->clip;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Inn", kwlist, &flags, &limit,
                                     &clip)) {
        return -1;
    }
    s->flags = flags;
    s->limit = limit < 0 ? -1 : limit;
    s->clip = clip;
    return 0;
}

static PyObject *
Sizer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    SizerObject *self = (SizerObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    ct_state *st = (ct_state *)PyType_GetModuleState(type);
    if (st == NULL || ct_sizer_ready(&st->sizer_refs) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    ct_sizer_refs_copy(&self->refs, &st->sizer_refs);
    ct_sizer_init(&self->s, &self->refs);
    if (parse_config(&self->s, args, kwds) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
Sizer_dealloc(SizerObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    ct_sizer_fini(&self->s);
    ct_sizer_refs_clear(&self->refs);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
Sizer_configure(SizerObject *self, PyObject *args, PyObject *kwds)
{
    if (parse_config(&self->s, args, kwds) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* size(*objs) -> int: bytes not sized before, summed over objs. */
static PyObject *
Sizer_size(SizerObject *self, PyObject *args)
{
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        Py_ssize_t n = ct_sizer_size(&self->s, PyTuple_GET_ITEM(args, i));
        if (n < 0) {
            return NULL;
        }
        total += n;
    }
    return PyLong_FromSsize_t(total);
}

/* sizes(*objs) -> tuple of int, one per object. */
static PyObject *
Sizer_sizes(SizerObject *self, PyObject *args)
{
    PyObject *out = PyTuple_New(PyTuple_GET_SIZE(args));
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        Py_ssize_t n = ct_sizer_size(&self->s, PyTuple_GET_ITEM(args, i));
        PyObject *v = n < 0 ? NULL : PyLong_FromSsize_t(n);
        if (v == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, v);
    }
    return out;
}

/* tree(obj, detail, name) -> (name, size, flat, refs) */
static PyObject *
Sizer_tree(SizerObject *self, PyObject *args)
{
    PyObject *obj, *name;
    int detail;
    if (!PyArg_ParseTuple(args, "OiU", &obj, &detail, &name)) {
        return NULL;
    }
    if (detail < 0) {
        PyErr_SetString(PyExc_ValueError, "detail must be >= 0");
        return NULL;
    }
    return ct_sizer_tree(&self->s, obj, detail, name);
}

static PyObject *
exclude_all(SizerObject *self, PyObject *args, int (*fn)(ct_sizer *, PyObject *))
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        if (fn(&self->s, PyTuple_GET_ITEM(args, i)) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
Sizer_exclude_refs(SizerObject *self, PyObject *args)
{
    return exclude_all(self, args, ct_sizer_exclude_ref);
}

static PyObject *
Sizer_exclude_objs(SizerObject *self, PyObject *args)
{
    return exclude_all(self, args, ct_sizer_exclude_obj);
}

static PyObject *
Sizer_reset(SizerObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->s.busy) {
        PyErr_SetString(PyExc_RuntimeError, "Asizer.reset() while sizing");
        return NULL;
    }
    ct_sizer_reset(&self->s);
    Py_RETURN_NONE;
}

static PyObject *
Sizer_flatsize(SizerObject *self, PyObject *obj)
{
    Py_ssize_t n = ct_flat_size(&self->s, obj);
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}

/* flat_parts(obj) -> (flat, pre, body, body_exact, ((addr, size), ...),
 * unlocated, how): what flatsize(obj) is made of, for the oracle. */
static PyObject *
Sizer_flat_parts(SizerObject *self, PyObject *obj)
{
    ct_flat_parts parts;
    Py_ssize_t n = ct_flat_size_parts(&self->s, obj, &parts);
    if (n < 0) {
        return NULL;
    }
    PyObject *blocks = PyTuple_New(parts.nblocks);
    if (blocks == NULL) {
        return NULL;
    }
    for (int i = 0; i < parts.nblocks; i++) {
        PyObject *b = Py_BuildValue("(nn)", (Py_ssize_t)(uintptr_t)parts.blocks[i].addr,
                                    (Py_ssize_t)parts.blocks[i].size);
        if (b == NULL) {
            Py_DECREF(blocks);
            return NULL;
        }
        PyTuple_SET_ITEM(blocks, i, b);
    }
    return Py_BuildValue("(nnniNns)", n, (Py_ssize_t)parts.pre, (Py_ssize_t)parts.body,
                         parts.body_exact, blocks, (Py_ssize_t)parts.unlocated,
                         parts.how);
}

static PyObject *
Sizer_get_total(SizerObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->s.total);
}

static PyObject *
Sizer_get_seen(SizerObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(self->s.seen.used);
}

static PyObject *
Sizer_get_footprint(SizerObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(sizeof(SizerObject) + ct_sizer_footprint(&self->s));
}

static PyObject *
Sizer_get_flags(SizerObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->s.flags);
}

static PyObject *
Sizer_get_limit(SizerObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->s.limit);
}

static PyMethodDef Sizer_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))Sizer_configure,
     METH_VARARGS | METH_KEYWORDS,
     "configure(flags=, limit=, clip=): change what is followed."},
    {"size", (PyCFunction)Sizer_size, METH_VARARGS,
     "size(*objs) -> bytes not sized before by this sizer."},
    {"sizes", (PyCFunction)Sizer_sizes, METH_VARARGS,
     "sizes(*objs) -> tuple of bytes, one per object."},
    {"tree", (PyCFunction)Sizer_tree, METH_VARARGS,
     "tree(obj, detail, name) -> (name, size, flat, refs)."},
    {"exclude_refs", (PyCFunction)Sizer_exclude_refs, METH_VARARGS,
     "Never follow these objects when reached as referents."},
    {"exclude_objs", (PyCFunction)Sizer_exclude_objs, METH_VARARGS,
     "Never size these objects."},
    {"reset", (PyCFunction)Sizer_reset, METH_NOARGS,
     "Forget what was sized; keep exclusions and options."},
    {"flat_parts", (PyCFunction)Sizer_flat_parts, METH_O,
     "flat_parts(obj) -> (flat, pre, body, body_exact, blocks, unlocated, how): "
     "what flatsize(obj) is made of (test oracle)."},
    {"flatsize", (PyCFunction)Sizer_flatsize, METH_O,
     "flatsize(obj) -> bytes of obj's own allocations."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Sizer_getset[] = {
    {"total", (getter)Sizer_get_total, NULL, "bytes counted since reset", NULL},
    {"seen", (getter)Sizer_get_seen, NULL, "objects sized since reset", NULL},
    {"footprint", (getter)Sizer_get_footprint, NULL,
     "bytes this sizer itself holds", NULL},
    {"flags", (getter)Sizer_get_flags, NULL, "CT_FOLLOW_* flags", NULL},
    {"limit", (getter)Sizer_get_limit, NULL, "depth limit or -1", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Sizer_slots[] = {
    {Py_tp_new, Sizer_new},
    {Py_tp_dealloc, Sizer_dealloc},
    {Py_tp_methods, Sizer_methods},
    {Py_tp_getset, Sizer_getset},
    {Py_tp_doc, "Sizer(flags=0, limit=-1, clip=80): the engine of Asizer."},
    {0, NULL},
};

static PyType_Spec Sizer_spec = {
    "classtrack._core.Sizer",
    sizeof(SizerObject),
    0,
    Py_TPFLAGS_DEFAULT,
    Sizer_slots,
};

int
ct_sizer_type_register(PyObject *module, ct_state *st)
{
    st->sizer_type = ct_add_type(module, &Sizer_spec, NULL, "Sizer");
    if (st->sizer_type == NULL) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "FOLLOW_TYPES", CT_FOLLOW_TYPES) < 0
        || PyModule_AddIntConstant(module, "FOLLOW_MODULES", CT_FOLLOW_MODULES) < 0
        || PyModule_AddIntConstant(module, "FOLLOW_FUNCTIONS",
                                   CT_FOLLOW_FUNCTIONS) < 0
        || PyModule_AddIntConstant(module, "FOLLOW_CODE", CT_FOLLOW_CODE) < 0
        || PyModule_AddIntConstant(module, "FOLLOW_FRAMES", CT_FOLLOW_FRAMES) < 0
        || PyModule_AddIntConstant(module, "FOLLOW_SHARED", CT_FOLLOW_SHARED) < 0) {
        return -1;
    }
    return 0;
}

/* basicsize(obj): pre-header + tp_basicsize of obj's type. */
static PyObject *
core_basicsize(PyObject *Py_UNUSED(module), PyObject *obj)
{
    return PyLong_FromSize_t(ct_preheader_size(obj)
                             + (size_t)Py_TYPE(obj)->tp_basicsize);
}

/* layout_info() -> (known, newest, estimate): whether this interpreter's
 * layouts are known, the newest known version, whether sizes are estimates. */
static PyObject *
core_layout_info(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(noargs))
{
    return Py_BuildValue("(O(ii)O)", CT_LAYOUT_KNOWN ? Py_True : Py_False,
                         CT_LAYOUT_NEWEST >> 8, CT_LAYOUT_NEWEST & 0xFF,
                         CT_ESTIMATE() ? Py_True : Py_False);
}

/* _force_layout_estimate(on): test switch for the estimate path. */
static PyObject *
core_force_layout_estimate(PyObject *Py_UNUSED(module), PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0) {
        return NULL;
    }
    ct_layout_force_estimate(on);
    Py_RETURN_NONE;
}

/* layout_check(rerun=False, corrupt=None) -> dict: the first-use layout
 * check's findings; rerun and corrupt (a kind's name) are for tests. */
static PyObject *
core_layout_check(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"rerun", "corrupt", NULL};
    int rerun = 0;
    const char *corrupt = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|pz:layout_check", kwlist,
                                     &rerun, &corrupt)) {
        return NULL;
    }
    int kind = -1;
    if (corrupt != NULL) {
        for (int k = 0; k < CT_KIND_COUNT; k++) {
            if (strcmp(corrupt, ct_layout_kind_names[k]) == 0) {
                kind = k;
            }
        }
        if (kind < 0) {
            PyErr_Format(PyExc_ValueError, "layout_check: no layout kind named '%s'",
                         corrupt);
            return NULL;
        }
    }
    return ct_sizer_check_report(&ct_get_state(module)->sizer_refs, rerun, kind);
}

PyMethodDef ct_sizer_functions[] = {
    {"layout_check", (PyCFunction)(void (*)(void))core_layout_check,
     METH_VARARGS | METH_KEYWORDS,
     "layout_check(rerun=False, corrupt=None) -> dict: what the first-use check "
     "of the layout table against this interpreter found (corrupt: tests only)."},
    {"layout_info", (PyCFunction)core_layout_info, METH_NOARGS,
     "layout_info() -> (known, (major, minor) newest known, estimate)."},
    {"_force_layout_estimate", (PyCFunction)core_force_layout_estimate, METH_O,
     "Tests only: size as on an unknown CPython version (True) or not."},
    {"basicsize", (PyCFunction)core_basicsize, METH_O,
     "basicsize(obj) -> pre-header plus the type's basic size, in bytes."},
    {NULL, NULL, 0, NULL},
};
