/* sizer_types.c - how big one object is, and whether it is sized at all.
 *
 * Flat size = every byte of the object's own allocations: the pre-header
 * (GC head, managed dict/weakref words), the body, and buffers it owns
 * (list item arrays by capacity, dict and set tables, str/bytes bodies,
 * values arrays of instances...).  Referents are not included.
 *
 * Resolution order, fastest first:
 *   1. exact str, int, float, list, tuple, dict: computed here from the
 *      object's fields, no call, no allocation;
 *   2. the type's __sizeof__ is object.__sizeof__: the layout size;
 *   3. the type's __sizeof__ is a C method (list, set, deque, array,
 *      bytearray, numpy.ndarray ...): its C function is called directly,
 *      which runs no Python code;
 *   4. a __sizeof__ written in Python: called, and trusted only if it
 *      returns an int that is at least the layout size and below 2**48;
 *      otherwise (it raises an Exception, returns garbage) the layout size
 *      is used.  BaseExceptions such as KeyboardInterrupt propagate.
 * Then the pre-header and the instance attribute storage are added.
 *
 * Every lookup goes through the real type (Py_TYPE), never __class__, and
 * the method is found with _PyType_Lookup, never with getattr, so
 * __getattr__, __getattribute__ and proxies cannot interfere.
 *
 * The one type whose referents are known here too: numpy.ndarray (at the
 * end of this file), whose base and object elements no tp_traverse
 * reports.
 */
#include "sizer/sizer_internal.h"
#include "base/compat.h"
#include "base/layout.h"

#include <stddef.h>
#include <string.h>
#include <frameobject.h>


#define CT_SANE_SIZE_LIMIT ((Py_ssize_t)1 << 48)

static inline Py_ssize_t
str_flat(PyObject *o)
{
#if PY_VERSION_HEX < 0x030C0000
    if (!PyUnicode_IS_READY(o) || ((PyASCIIObject *)o)->wstr != NULL) {
        return -1;  /* legacy or with wchar_t cache: ask str.__sizeof__ */
    }
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(o);
    if (PyUnicode_IS_COMPACT_ASCII(o)) {
        return (Py_ssize_t)sizeof(PyASCIIObject) + n + 1;
    }
    if (!PyUnicode_IS_COMPACT(o)) {
        return -1;
    }
    PyCompactUnicodeObject *c = (PyCompactUnicodeObject *)o;
    Py_ssize_t size = (Py_ssize_t)sizeof(PyCompactUnicodeObject)
                      + (n + 1) * (Py_ssize_t)PyUnicode_KIND(o);
    if (c->utf8 != NULL) {
        size += c->utf8_length + 1;
    }
    return size;
}

static inline Py_ssize_t
int_flat(PyObject *o)
{
#if PY_VERSION_HEX >= 0x030C0000
    Py_ssize_t ndigits = (Py_ssize_t)(((PyLongObject *)o)->long_value.lv_tag >> 3);
    Py_ssize_t base = (Py_ssize_t)offsetof(PyLongObject, long_value.ob_digit);
#else
    Py_ssize_t ndigits = Py_SIZE(o) < 0 ? -Py_SIZE(o) : Py_SIZE(o);
    Py_ssize_t base = (Py_ssize_t)offsetof(PyLongObject, ob_digit);
#endif
#if PY_VERSION_HEX >= 0x030B0000
    /* One-digit ints come from _PyLong_FromMedium, which allocates the
     * whole struct: its padding makes them 4 bytes bigger than
     * int.__sizeof__ says. */
    if (ndigits <= 1) {
        return (Py_ssize_t)sizeof(PyLongObject);
    }
#else
    if (ndigits < 1) {
        ndigits = 1;
    }
#endif
    return base + ndigits * (Py_ssize_t)sizeof(digit);
}

/* Calls a user-defined __sizeof__.  Returns its value, -2 when it cannot
 * be trusted (exception cleared), or -1 with a BaseException set. */
static Py_ssize_t
call_python_sizeof(PyObject *descr, PyObject *o)
{
    PyObject *res = NULL;
    descrgetfunc get = Py_TYPE(descr)->tp_descr_get;
    if (get != NULL) {
        PyObject *bound = get(descr, o, (PyObject *)Py_TYPE(o));
        if (bound != NULL) {
            res = PyObject_CallNoArgs(bound);
            Py_DECREF(bound);
        }
    }
    else {
        res = PyObject_CallNoArgs(descr);
    }
    if (res == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return -1;
        }
        PyErr_Clear();
        return -2;
    }
    Py_ssize_t v = -2;
    if (PyLong_Check(res)) {
        int overflow = 0;
        long long ll = PyLong_AsLongLongAndOverflow(res, &overflow);
        if (ll == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
        else if (!overflow && ll >= 0 && ll < CT_SANE_SIZE_LIMIT) {
            v = (Py_ssize_t)ll;
        }
    }
    Py_DECREF(res);
    return v;
}

/* The value a C-implemented __sizeof__ returns, or -2 if unusable. */
static Py_ssize_t
call_c_sizeof(PyCFunction fn, PyObject *o)
{
    PyObject *res = fn(o, NULL);
    if (res == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return -1;
        }
        PyErr_Clear();
        return -2;
    }
    Py_ssize_t v = PyLong_Check(res) ? PyLong_AsSsize_t(res) : -2;
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        v = -2;
    }
    Py_DECREF(res);
    return v < 0 ? -2 : v;
}

Py_ssize_t
ct_leaf_size(PyObject *o)
{
    if (CT_ESTIMATE_FOR(o)) {
        return -1;
    }
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyUnicode_Type) {
        return str_flat(o);
    }
    if (tp == &PyLong_Type) {
        return int_flat(o);
    }
    if (tp == &PyFloat_Type) {
        return tp->tp_basicsize;
    }
    if (tp == &PyBytes_Type) {
        return tp->tp_basicsize + Py_SIZE(o);
    }
    return -1;
}

/* ---- the parts of a flat size, for the oracle; every helper accepts
 * parts == NULL (the sizer's own calls), which costs one test ---- */

static inline void
parts_body(ct_flat_parts *p, size_t pre, size_t body, int exact, const char *how)
{
    p->pre = pre;
    p->body = body;
    p->body_exact = exact;
    p->nblocks = 0;
    p->unlocated = 0;
    p->how = how;
}

static inline void
parts_block(ct_flat_parts *p, const void *addr, size_t size)
{
    if (size == 0) {
        return;
    }
    if (addr != NULL && p->nblocks < CT_FLAT_MAX_BLOCKS) {
        p->blocks[p->nblocks].addr = addr;
        p->blocks[p->nblocks].size = size;
        p->nblocks++;
    }
    else {
        p->unlocated += size;
    }
}

/* 1 when descr is builtin type bt's own __sizeof__. */
static int
is_sizeof_of(ct_sizer *s, PyObject *descr, PyTypeObject *bt)
{
    return descr != NULL && descr == _PyType_Lookup(bt, s->refs->str_sizeof);
}

/* Splits what a type's C __sizeof__ counted beyond the body (`rest`) into
 * the blocks the layout can locate: dict keys and values, set tables,
 * bytearray buffers, a class's cached keys; anything else, and anything a
 * subclass's own __sizeof__ adds, stays unlocated. */
static void
parts_rest(ct_sizer *s, ct_flat_parts *p, PyObject *o, PyObject *descr,
           size_t total, size_t rest)
{
    if (rest == 0) {
        return;
    }
    if (PyDict_Check(o) && (descr == NULL || is_sizeof_of(s, descr, &PyDict_Type))) {
        const void *kb, *vb;
        size_t ks, vs;
        if (ct_dict_blocks(o, total, p->body, &kb, &ks, &vb, &vs) == 0) {
            parts_block(p, kb, ks);
            parts_block(p, vb, vs);
            return;
        }
    }
    else if (PyAnySet_Check(o) && (is_sizeof_of(s, descr, &PySet_Type)
                                   || is_sizeof_of(s, descr, &PyFrozenSet_Type))) {
        PySetObject *so = (PySetObject *)o;
        size_t table = (size_t)(so->mask + 1) * sizeof(setentry);
        if (so->table != so->smalltable && table == rest) {
            parts_block(p, so->table, table);
            return;
        }
    }
    else if (PyByteArray_Check(o) && is_sizeof_of(s, descr, &PyByteArray_Type)) {
        PyByteArrayObject *ba = (PyByteArrayObject *)o;
        if (ba->ob_bytes != NULL && (size_t)ba->ob_alloc == rest) {
            parts_block(p, ba->ob_bytes, rest);
            return;
        }
    }
    else if (PyType_Check(o) && (((PyTypeObject *)o)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        PyHeapTypeObject *et = (PyHeapTypeObject *)o;
        if (et->ht_cached_keys != NULL) {
            parts_block(p, et->ht_cached_keys, rest);
            return;
        }
    }
    p->unlocated += rest;
}

/* The blocks of a str that is not sized by str_flat (a compact str with a
 * wchar_t cache before 3.12, or a str subclass with its data apart), as
 * str.__sizeof__ counts them, plus `inline_values`, the bytes of 3.14+'s
 * inline values in the body of a str subclass's instance.  Returns their
 * sum. */
static size_t
str_parts(PyObject *o, ct_flat_parts *p, size_t pre, size_t inline_values, const char *how)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(o);
    size_t kind = PyUnicode_KIND(o);
    const void *data = PyUnicode_DATA(o);
    size_t body;
    if (PyUnicode_IS_COMPACT_ASCII(o)) {
        body = sizeof(PyASCIIObject) + (size_t)len + 1;
    }
    else if (PyUnicode_IS_COMPACT(o)) {
        body = sizeof(PyCompactUnicodeObject) + ((size_t)len + 1) * kind;
    }
    else {
        body = (size_t)Py_TYPE(o)->tp_basicsize + pre + inline_values;
    }
    size_t total = body;
    if (p != NULL) {
        parts_body(p, pre, body, 1, how);
    }
    if (!PyUnicode_IS_COMPACT(o) && data != NULL) {
        size_t n = ((size_t)len + 1) * kind;
        total += n;
        if (p != NULL) {
            parts_block(p, data, n);
        }
    }
#if PY_VERSION_HEX < 0x030C0000
    wchar_t *wstr = ((PyASCIIObject *)o)->wstr;
    if (wstr != NULL && (const void *)wstr != data) {
        size_t wlen = PyUnicode_IS_COMPACT_ASCII(o)
                          ? (size_t)((PyASCIIObject *)o)->length
                          : (size_t)((PyCompactUnicodeObject *)o)->wstr_length;
        size_t n = (wlen + 1) * sizeof(wchar_t);
        total += n;
        if (p != NULL) {
            parts_block(p, wstr, n);
        }
    }
#endif
    if (!PyUnicode_IS_COMPACT_ASCII(o)) {
        PyCompactUnicodeObject *c = (PyCompactUnicodeObject *)o;
        if (c->utf8 != NULL && (const void *)c->utf8 != data) {
            size_t n = (size_t)c->utf8_length + 1;
            total += n;
            if (p != NULL) {
                parts_block(p, c->utf8, n);
            }
        }
    }
    return total;
}

/* object.__sizeof__ is basicsize + ob_size * itemsize: a real size only
 * for fixed-size types and those whose ob_size counts items. */
static int
object_sizeof_is_sound(PyTypeObject *tp)
{
    if (tp->tp_itemsize == 0) {
        return 1;
    }
    while (tp != NULL && (tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        tp = tp->tp_base;
    }
    return tp == &PyTuple_Type || tp == &PyBytes_Type;
}

static inline Py_ssize_t
flat_size(ct_sizer *s, PyObject *o, ct_flat_parts *parts)
{
    PyTypeObject *tp = Py_TYPE(o);
    Py_ssize_t v;
    const int estimate = CT_ESTIMATE_FOR(o);

    /* 1. exact built-ins, computed from their fields */
    if (!estimate) {
        if (tp == &PyUnicode_Type) {
            v = str_flat(o);
            if (v >= 0) {
                if (parts != NULL) {
                    size_t utf8 = 0;
                    if (!PyUnicode_IS_COMPACT_ASCII(o)
                        && ((PyCompactUnicodeObject *)o)->utf8 != NULL) {
                        utf8 = (size_t)((PyCompactUnicodeObject *)o)->utf8_length + 1;
                    }
                    parts_body(parts, 0, (size_t)v - utf8, 1, "exact");
                    if (utf8 != 0) {
                        parts_block(parts, ((PyCompactUnicodeObject *)o)->utf8, utf8);
                    }
                }
                return v;
            }
        }
        else if (tp == &PyLong_Type || tp == &PyFloat_Type) {
            v = tp == &PyLong_Type ? int_flat(o) : tp->tp_basicsize;
            if (parts != NULL) {
                parts_body(parts, 0, (size_t)v, 1, "exact");
            }
            return v;
        }
        else if (tp == &PyList_Type) {
            size_t body = CT_GC_HEAD_SIZE + (size_t)tp->tp_basicsize;
            size_t items = (size_t)((PyListObject *)o)->allocated * sizeof(PyObject *);
            if (parts != NULL) {
                parts_body(parts, CT_GC_HEAD_SIZE, body, 1, "exact");
                parts_block(parts, ((PyListObject *)o)->ob_item, items);
            }
            return (Py_ssize_t)(body + items);
        }
        else if (tp == &PyTuple_Type) {
            v = (Py_ssize_t)CT_GC_HEAD_SIZE + tp->tp_basicsize
                + Py_SIZE(o) * (Py_ssize_t)sizeof(PyObject *);
            if (parts != NULL) {
                parts_body(parts, CT_GC_HEAD_SIZE, (size_t)v, 1, "exact");
            }
            return v;
        }
#if CT_LAYOUT_KNOWN
        else if (tp == &PyDict_Type) {
            v = (Py_ssize_t)CT_GC_HEAD_SIZE + _PyDict_SizeOf((PyDictObject *)o)
                + ct_split_values_correction(o);
            if (parts != NULL) {
                size_t body = CT_GC_HEAD_SIZE + (size_t)tp->tp_basicsize;
                parts_body(parts, CT_GC_HEAD_SIZE, body, 1, "exact");
                parts_rest(s, parts, o, NULL, (size_t)v, (size_t)v - body);
            }
            return v;
        }
#endif
    }

    /* 2-4. through the type's __sizeof__, checked against the layout */
    size_t body;
    int exact = ct_body_size(o, &body);
    size_t pre = ct_preheader_size(o);
    const void *values_block;
    size_t values = ct_attr_storage_block(o, &values_block);
    /* Inline values (3.13+) are in the body, which no type's own
     * __sizeof__ counts: object.__sizeof__ leaves them out, and a C
     * __sizeof__ (dict, list, set, str...) counts its own struct by
     * tp_basicsize and its buffers.  3.14 gives them to every fixed-size
     * class, subclasses of builtins included. */
    size_t inline_values = ct_inline_values_size(o);
    const char *how = exact ? "layout" : "layout-min";
    PyObject *descr = _PyType_Lookup(tp, s->refs->str_sizeof);   /* borrowed */
    if (descr == NULL || (descr == s->refs->object_sizeof
                          && !(estimate && object_sizeof_is_sound(tp)))) {
        /* No __sizeof__ of the type's own: the layout decides.  A C type
         * with items then has its count in ob_size (what object.__sizeof__
         * and sys.getsizeof assume), if the count is plausible. */
        if (!exact && ct_body_size_from_ob_size(o, &body)) {
            how = "ob-size";
        }
        v = -2;
        descr = NULL;
    }
    else {
        Py_INCREF(descr);   /* a Python __sizeof__ may delete it from the class */
        if (Py_IS_TYPE(descr, &PyMethodDescr_Type)) {
            PyMethodDef *def = ((PyMethodDescrObject *)descr)->d_method;
            if ((def->ml_flags & (METH_NOARGS | METH_VARARGS | METH_KEYWORDS
                                  | METH_O | METH_FASTCALL)) == METH_NOARGS
                && PyObject_TypeCheck(o, PyDescr_TYPE(descr))) {
                v = call_c_sizeof(def->ml_meth, o);
                how = "c-sizeof";
            }
            else {
                v = -2;
            }
        }
        else {
            v = call_python_sizeof(descr, o);
            how = "py-sizeof";
        }
        if (v == -1) {
            Py_DECREF(descr);
            return -1;
        }
    }
    if (v >= 0 && exact && PyType_Check(o)
        && (((PyTypeObject *)o)->tp_flags & Py_TPFLAGS_HEAPTYPE)
        && is_sizeof_of(s, descr, &PyType_Type)) {
        /* a class: type.__sizeof__ counts sizeof(PyHeapTypeObject) and the
         * cached keys, not the slot members allocated after the struct */
        Py_ssize_t keys = v - PyType_Type.tp_basicsize;
        v = keys > 0 ? (Py_ssize_t)body + keys : (Py_ssize_t)body;
    }
    else if (v >= 0 && !estimate && PyUnicode_Check(o)
             && is_sizeof_of(s, descr, &PyUnicode_Type)) {
        /* str.__sizeof__ has no pre-header of a subclass in mind */
        v = (Py_ssize_t)str_parts(o, parts, pre, inline_values, how);
        Py_DECREF(descr);
        if (parts != NULL) {
            parts_block(parts, values_block, values);
        }
        return v + (Py_ssize_t)values;
    }
    else if (v >= 0) {
        /* what the type says, with its pre-header: never less than the
         * layout, never an absurd figure */
        v += (Py_ssize_t)(pre + inline_values);
        if (PyDict_Check(o)) {
            v += ct_split_values_correction(o);
        }
        if ((v < (Py_ssize_t)body && !estimate) || v >= CT_SANE_SIZE_LIMIT) {
            v = -2;     /* (an estimate has no layout to hold it to) */
        }
    }
    if (v < 0) {
        v = (Py_ssize_t)body;
        how = exact ? "layout" : (how[0] == 'o' ? how : "layout-min");
    }
    else if (estimate) {
        how = "estimate";
    }
    if (parts != NULL) {
        if (exact) {
            parts_body(parts, pre, body, 1, how);
            parts_rest(s, parts, o, descr, (size_t)v, (size_t)v - body);
        }
        else {
            /* the type's own figure is the best word on its body */
            parts_body(parts, pre, (size_t)v, 0, how);
        }
        parts_block(parts, values_block, values);
    }
    Py_XDECREF(descr);
    return v + (Py_ssize_t)values;
}

Py_ssize_t
ct_flat_size(ct_sizer *s, PyObject *o)
{
    return flat_size(s, o, NULL);
}

Py_ssize_t
ct_flat_size_parts(ct_sizer *s, PyObject *o, ct_flat_parts *parts)
{
    return flat_size(s, o, parts);
}

static int
is_function_like(const ct_sizer *s, PyTypeObject *tp)
{
    return tp == &PyFunction_Type || tp == &PyCFunction_Type
           || tp == &PyCMethod_Type || tp == &PyMethod_Type
           || tp == &PyInstanceMethod_Type || tp == &PyMethodDescr_Type
           || tp == &PyClassMethodDescr_Type || tp == &PyWrapperDescr_Type
           || tp == &PyMemberDescr_Type || tp == &PyGetSetDescr_Type
           || tp == s->refs->method_wrapper_type
           || PyType_IsSubtype(tp, &PyClassMethod_Type)
           || PyType_IsSubtype(tp, &PyStaticMethod_Type);
}

int
ct_policy_skip_any(const ct_sizer *s, PyObject *o, int top)
{
    PyTypeObject *tp = Py_TYPE(o);
    unsigned flags = s->flags;
    /* the common data types first: only the shared check applies */
    if (tp == &PyUnicode_Type || tp == &PyLong_Type || tp == &PyTuple_Type
        || tp == &PyBytes_Type) {
        return !top && !(flags & CT_FOLLOW_SHARED) && ct_is_shared(o);
    }
    if (tp == &PyList_Type || tp == &PyDict_Type || tp == &PyFloat_Type) {
        return 0;
    }
    /* Instances of classes whose nearest built-in base is object (most
     * objects a program makes): none of the kinds below, each of which
     * has a layout of its own that a subclass's chain of bases reaches */
    PyTypeObject *base = tp;
    while (base != NULL && (base->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        base = base->tp_base;
    }
    if (base == &PyBaseObject_Type && tp != &PyBaseObject_Type) {
        return !top && !(flags & CT_FOLLOW_SHARED) && ct_is_shared(o);
    }
    if (PyType_Check(o)) {
        return !(flags & CT_FOLLOW_TYPES);
    }
    if (PyModule_Check(o)) {
        return !(flags & CT_FOLLOW_MODULES);
    }
    if (tp == &PyCode_Type) {
        return !(flags & CT_FOLLOW_CODE);
    }
    if (tp == &PyFrame_Type) {
        return !(flags & CT_FOLLOW_FRAMES);
    }
    if (is_function_like(s, tp)) {
        return !(flags & CT_FOLLOW_FUNCTIONS);
    }
    return !top && !(flags & CT_FOLLOW_SHARED) && ct_is_shared(o);
}

/* ---- numpy arrays ----
 *
 * Flat size: an ndarray's own __sizeof__ (a C method, step 3 above):
 * its struct, its shape and strides, and its data buffer only when it
 * owns it, so a view counts none of its base's memory.  The referents
 * (ct_ndarray_visit) bring in the rest: the base, and the elements of an
 * object array that owns its buffer.
 *
 * Finding the type: the first static type named "numpy.ndarray" in an
 * object's chain of bases is confirmed once against
 * sys.modules["numpy"].ndarray (numpy is never imported from here; an
 * array exists only once someone has), together with numpy.dtype and
 * numpy's own getset entries of ndarray.base and ndarray.dtype.
 *
 * `np` is process-wide, written once with the GIL held and never
 * released: it holds no reference, only addresses of a static type and of
 * static C tables in numpy's extension module, which CPython never
 * unloads.  They are the same in every interpreter.
 *
 * Mirrors: the leading fields of numpy's array and dtype objects, which
 * numpy's ABI has kept in place from 1.7 through 2.x (read here on 1.26
 * and 2.4).  Every array is checked against numpy before its fields are
 * read: its base and dtype fields must hold what numpy's getters return.
 * An array that fails has its base followed (the getter's answer) and its
 * elements not. */

typedef struct {
    PyObject_HEAD
    char *data;                 /* the first element, or NULL */
    int nd;
    Py_intptr_t *dims;          /* nd extents */
    Py_intptr_t *strides;       /* nd byte steps, maybe 0 or negative */
    PyObject *base;             /* strong, or NULL */
    PyObject *descr;            /* the dtype, strong */
    int flags;
} ct_np_array;

typedef struct {
    PyObject_HEAD
    PyTypeObject *scalar_type;
    char kind;                  /* 'O' for object */
} ct_np_descr;

#define CT_NP_OWNDATA 0x0004    /* the array owns (and, for objects, holds) its buffer */
#define CT_NP_MAXDIMS 64        /* numpy 2's limit (numpy 1: 32) */

static struct {
    PyTypeObject *array_type;   /* numpy.ndarray; NULL until confirmed */
    PyTypeObject *dtype_type;   /* numpy.dtype */
    PyGetSetDef *base_get;      /* numpy's ndarray.base getter entry */
    PyGetSetDef *dtype_get;     /* numpy's ndarray.dtype getter entry */
} np;

/* tp's own getset entry `name` with a getter, or NULL. */
static PyGetSetDef *
getset_of(PyTypeObject *tp, const char *name)
{
    PyObject *key = PyUnicode_FromString(name);
    if (key == NULL) {
        PyErr_Clear();      /* only MemoryError: then not confirmed */
        return NULL;
    }
    PyObject *d = _PyType_Lookup(tp, key);     /* borrowed */
    Py_DECREF(key);
    if (d == NULL || !Py_IS_TYPE(d, &PyGetSetDescr_Type)
        || PyDescr_TYPE(d) != tp) {
        return NULL;
    }
    PyGetSetDef *def = ((PyGetSetDescrObject *)d)->d_getset;
    return def != NULL && def->get != NULL ? def : NULL;
}

/* 1 when t, a static type named numpy.ndarray, is the ndarray of the
 * numpy in sys.modules (then `np` is filled), else 0.  Reads dicts only. */
static int
ndarray_confirm(PyTypeObject *t)
{
    PyObject *modules = PySys_GetObject("modules");     /* borrowed */
    if (modules == NULL || !PyDict_Check(modules)) {
        return 0;
    }
    PyObject *mod = PyDict_GetItemString(modules, "numpy");
    if (mod == NULL || !PyModule_Check(mod)) {
        return 0;
    }
    PyObject *md = PyModule_GetDict(mod);
    PyObject *arr = PyDict_GetItemString(md, "ndarray");
    PyObject *dt = PyDict_GetItemString(md, "dtype");
    if (arr != (PyObject *)t || dt == NULL || !PyType_Check(dt)
        || t->tp_basicsize < (Py_ssize_t)sizeof(ct_np_array)
        || ((PyTypeObject *)dt)->tp_basicsize < (Py_ssize_t)sizeof(ct_np_descr)) {
        return 0;
    }
    PyGetSetDef *base_get = getset_of(t, "base");
    PyGetSetDef *dtype_get = getset_of(t, "dtype");
    if (base_get == NULL || dtype_get == NULL) {
        return 0;
    }
    np.dtype_type = (PyTypeObject *)dt;
    np.base_get = base_get;
    np.dtype_get = dtype_get;
    np.array_type = t;
    return 1;
}

int
ct_ndarray_check(PyObject *o)
{
    for (PyTypeObject *t = Py_TYPE(o); t != NULL; t = t->tp_base) {
        if (t == np.array_type) {
            return 1;
        }
        if (np.array_type == NULL && !(t->tp_flags & Py_TPFLAGS_HEAPTYPE)
            && t->tp_name[0] == 'n' && strcmp(t->tp_name, "numpy.ndarray") == 0) {
            return ndarray_confirm(t);
        }
    }
    return 0;
}

/* Each non-NULL element of an object array, in C order; an index along
 * a zero stride stays 0 (every index there is the same slot). */
static int
visit_elements(const ct_np_array *a, ct_ndarray_visitproc visit, void *arg)
{
    int nd = a->nd;
    if (nd < 0 || nd > CT_NP_MAXDIMS || a->data == NULL) {
        return 0;
    }
    Py_intptr_t idx[CT_NP_MAXDIMS], span[CT_NP_MAXDIMS], step[CT_NP_MAXDIMS];
    Py_intptr_t count = 1;
    for (int k = nd - 1; k >= 0; k--) {
        if (a->dims[k] <= 0) {
            return 0;               /* empty */
        }
        idx[k] = 0;
        span[k] = a->strides[k] == 0 ? 1 : a->dims[k];
        step[k] = count;            /* flat index per step along k */
        count *= a->dims[k];        /* numpy keeps the size within intp */
    }
    const char *p = a->data;
    Py_ssize_t flat = 0;
    for (;;) {
        PyObject *item;
        memcpy(&item, p, sizeof(item));     /* the buffer may be unaligned */
        if (item != NULL) {
            int rc = visit(item, flat, arg);
            if (rc != 0) {
                return rc;
            }
        }
        int k = nd - 1;
        for (; k >= 0; k--) {
            if (++idx[k] < span[k]) {
                p += a->strides[k];
                flat += step[k];
                break;
            }
            p -= a->strides[k] * (span[k] - 1);
            flat -= step[k] * (span[k] - 1);
            idx[k] = 0;
        }
        if (k < 0) {
            return 0;
        }
    }
}

int
ct_ndarray_visit(PyObject *o, ct_ndarray_visitproc visit, void *arg)
{
    const ct_np_array *a = (const ct_np_array *)o;
    /* numpy's getters return a new reference to the field (None for no
     * base) and cannot fail; were one ever to, nothing is followed */
    PyObject *base = np.base_get->get(o, np.base_get->closure);
    if (base == NULL) {
        PyErr_Clear();
        return 0;
    }
    int layout_ok = (a->base != NULL ? a->base : Py_None) == base;
    int rc = base != Py_None ? visit(base, -1, arg) : 0;
    Py_DECREF(base);        /* the array still holds it */
    if (rc != 0 || !layout_ok || !(a->flags & CT_NP_OWNDATA)) {
        return rc;
    }
    PyObject *dtype = np.dtype_get->get(o, np.dtype_get->closure);
    if (dtype == NULL) {
        PyErr_Clear();
        return 0;
    }
    int objects = dtype == a->descr && PyObject_TypeCheck(dtype, np.dtype_type)
                  && ((const ct_np_descr *)dtype)->kind == 'O';
    Py_DECREF(dtype);
    return objects ? visit_elements(a, visit, arg) : 0;
}
