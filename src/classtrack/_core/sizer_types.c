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
 */
#include "sizer_internal.h"
#include "layout.h"

#include <stddef.h>
#include <frameobject.h>

#if PY_VERSION_HEX >= 0x030D0000
/* Exported by CPython but declared in an internal header on 3.13. */
PyAPI_FUNC(Py_ssize_t) _PyDict_SizeOf(PyDictObject *);
#endif

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

Py_ssize_t
ct_flat_size(ct_sizer *s, PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    Py_ssize_t v;

    /* 1. exact built-ins, computed from their fields */
    if (tp == &PyUnicode_Type) {
        v = str_flat(o);
        if (v >= 0) {
            return v;
        }
    }
    else if (tp == &PyLong_Type) {
        return int_flat(o);
    }
    else if (tp == &PyFloat_Type) {
        return tp->tp_basicsize;
    }
    else if (tp == &PyList_Type) {
        return (Py_ssize_t)CT_GC_HEAD_SIZE + tp->tp_basicsize
               + ((PyListObject *)o)->allocated * (Py_ssize_t)sizeof(PyObject *);
    }
    else if (tp == &PyTuple_Type) {
        return (Py_ssize_t)CT_GC_HEAD_SIZE + tp->tp_basicsize
               + Py_SIZE(o) * (Py_ssize_t)sizeof(PyObject *);
    }
    else if (tp == &PyDict_Type) {
        return (Py_ssize_t)CT_GC_HEAD_SIZE + _PyDict_SizeOf((PyDictObject *)o)
               + ct_split_values_correction(o);
    }

    /* 2-4. through the type's __sizeof__ */
    Py_ssize_t layout = (Py_ssize_t)ct_layout_size(o);
    Py_ssize_t extra = (Py_ssize_t)ct_attr_storage_size(o);
    PyObject *descr = _PyType_Lookup(tp, s->refs->str_sizeof);   /* borrowed */
    if (descr == NULL || descr == s->refs->object_sizeof) {
        return layout + extra;
    }
    Py_INCREF(descr);   /* a Python __sizeof__ may delete it from the class */
    if (Py_IS_TYPE(descr, &PyMethodDescr_Type)) {
        PyMethodDef *def = ((PyMethodDescrObject *)descr)->d_method;
        if ((def->ml_flags & (METH_NOARGS | METH_VARARGS | METH_KEYWORDS
                              | METH_O | METH_FASTCALL)) == METH_NOARGS
            && PyObject_TypeCheck(o, PyDescr_TYPE(descr))) {
            v = call_c_sizeof(def->ml_meth, o);
        }
        else {
            v = -2;
        }
    }
    else {
        v = call_python_sizeof(descr, o);
    }
    Py_DECREF(descr);
    if (v == -1) {
        return -1;
    }
    if (v == -2) {
        return layout + extra;
    }
    v += (Py_ssize_t)ct_preheader_size(o);
    if (PyDict_Check(o)) {
        v += ct_split_values_correction(o);
    }
    if (v < layout) {
        v = layout;
    }
    return v + extra;
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
ct_policy_skip(const ct_sizer *s, PyObject *o, int top)
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
