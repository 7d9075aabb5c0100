/* bigbuf.c - see bigbuf.h. */
#include "base/bigbuf.h"
#include "base/bigmem.h"
#include "base/modobjs.h"

typedef struct {
    PyObject_HEAD
    void *data;         /* from ct_big_alloc; NULL when len is 0 */
    Py_ssize_t len;
} ct_bigbuf;

static char empty_buffer[16];

PyObject *
ct_bigbuf_new(PyTypeObject *type, size_t len, void **data)
{
    if (len > (size_t)PY_SSIZE_T_MAX) {
        return PyErr_NoMemory();
    }
    ct_bigbuf *b = PyObject_New(ct_bigbuf, type);
    if (b == NULL) {
        return NULL;
    }
    b->len = (Py_ssize_t)len;
    b->data = len ? ct_big_alloc(len, 1) : NULL;
    if (len && b->data == NULL) {
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    *data = b->data ? b->data : empty_buffer;
    return (PyObject *)b;
}

static void
bigbuf_dealloc(ct_bigbuf *b)
{
    PyTypeObject *tp = Py_TYPE(b);
    ct_big_free(b->data);
    PyObject_Free(b);
    Py_DECREF(tp);
}

static int
bigbuf_getbuffer(ct_bigbuf *b, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *)b, b->data ? b->data : empty_buffer,
                             b->len, 1, flags);
}

static Py_ssize_t
bigbuf_length(ct_bigbuf *b)
{
    return b->len;
}

/* Pickled (and copied) as the bytes it holds. */
static PyObject *
bigbuf_reduce(ct_bigbuf *b, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(O(N))", (PyObject *)&PyBytes_Type,
                         PyBytes_FromStringAndSize(b->data ? b->data : empty_buffer, b->len));
}

static PyMethodDef bigbuf_methods[] = {
    {"__reduce__", (PyCFunction)bigbuf_reduce, METH_NOARGS, "pickled as bytes"},
    {NULL, NULL, 0, NULL},
};

static PyObject *
bigbuf_new_refused(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances: the engine makes them",
                 type->tp_name);
    return NULL;
}

static PyType_Slot bigbuf_slots[] = {
    {Py_tp_doc, "Read-only bytes-like columns the engine hands out (memoryview, "
                "bytes(), len() in bytes); mapped outside the malloc heap."},
    {Py_tp_dealloc, bigbuf_dealloc},
    {Py_tp_new, bigbuf_new_refused},
    {Py_tp_methods, bigbuf_methods},
    {Py_bf_getbuffer, bigbuf_getbuffer},
    {Py_sq_length, bigbuf_length},
    {0, NULL},
};

static PyType_Spec bigbuf_spec = {
    .name = "classtrack._core.BigBuffer",
    .basicsize = sizeof(ct_bigbuf),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = bigbuf_slots,
};

int
ct_bigbuf_type_register(PyObject *module, PyTypeObject **type)
{
    *type = ct_add_type(module, &bigbuf_spec, NULL, "BigBuffer");
    return *type == NULL ? -1 : 0;
}
