/* dump_stream.c - classtrack._core.DumpStream: a dump written a frame at
 * a time (dumpfmt.h, "streamed files"), so that a process killed at any
 * instant leaves a readable dump up to its last snapshot.
 *
 *   s = DumpStream(file, process=None)
 *                                  file: an io.FileIO (written through its
 *                                  descriptor) or any binary file object;
 *                                  process: (pid, ppid) for PROCESS
 *   s.frame(dataset, deaths=None, final=False)
 *                                  one frame: see ct_stream_frame
 *   s.records, s.snapshots         how many each frame so far wrote
 *   s.ended, s.broken
 *
 * The stream holds the file and the string table between frames, no
 * tracked object.  Frames are serialised by the caller (the tracker's
 * snapshot lock); a frame that fails part way breaks the stream.
 */
#include "base/modobjs.h"
#include "dump/dumpfmt.h"
#include "dump/dump_writer.h"
#include "base/bigmem.h"

#include <string.h>

int
ct_stream_set_process(ct_stream *s, PyObject *process)
{
    if (process == NULL || process == Py_None) {
        s->has_process = 0;
        return 0;
    }
    unsigned long long pid, ppid;
    if (!PyTuple_Check(process) || PyTuple_GET_SIZE(process) != 2) {
        PyErr_SetString(PyExc_TypeError, "dump: process must be (pid, ppid) or None");
        return -1;
    }
    pid = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(process, 0));
    ppid = PyErr_Occurred() ? 0 : PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(process, 1));
    if (PyErr_Occurred()) {
        return -1;
    }
    s->has_process = 1;
    s->pid = pid;
    s->ppid = ppid;
    return 0;
}

int
ct_stream_init(ct_stream *s, PyObject *module, PyObject *file, int streamed)
{
    memset(s, 0, sizeof(*s));
    s->streamed = streamed;
    s->w.fd = ct_dump_raw_fd(module, file, 1);
    if (s->w.fd == -2) {
        return -1;
    }
    if (s->w.fd < 0 && (s->w.write = ct_getattr(file, "write")) == NULL) {
        return -1;
    }
    s->t.index = PyDict_New();
    s->t.list = PyList_New(0);
    if (s->t.index == NULL || s->t.list == NULL) {
        ct_stream_release(s);
        return -1;
    }
    return 0;
}

void
ct_stream_release(ct_stream *s)
{
    Py_CLEAR(s->w.write);
    Py_CLEAR(s->t.index);
    Py_CLEAR(s->t.list);
    ct_big_free(s->w.out.data);
    ct_big_free(s->w.sec.data);
    s->w.out = (ct_buf){0};
    s->w.sec = (ct_buf){0};
    s->broken = 1;
}

/* dump_write(file, dataset): write the dataset to a binary file object */
static PyObject *
core_dump_write(PyObject *module, PyObject *args)
{
    PyObject *file, *ds, *process = Py_None;
    if (!PyArg_ParseTuple(args, "OO|O:dump_write", &file, &ds, &process)) {
        return NULL;
    }
    ct_stream s;
    if (ct_stream_init(&s, module, file, 0) < 0) {
        return NULL;
    }
    if (ct_stream_set_process(&s, process) < 0) {
        ct_stream_release(&s);
        return NULL;
    }
    int rc = ct_stream_frame(&s, ds, Py_None, 1, ct_modobjs_of(module)->entries_type);
    ct_stream_release(&s);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

typedef struct {
    PyObject_HEAD
    ct_stream s;
    PyObject *file;         /* strong: kept open by the stream's owner */
    int busy;               /* a frame is being written (file.write may
                               run Python code that calls frame again) */
} ct_dumpstream;

static PyObject *
DumpStream_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"file", "process", NULL};
    PyObject *file, *process = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:DumpStream", kwlist, &file,
                                     &process)) {
        return NULL;
    }
    PyObject *module = PyType_GetModule(type);
    if (module == NULL) {
        return NULL;
    }
    ct_dumpstream *self = (ct_dumpstream *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (ct_stream_init(&self->s, module, file, 1) < 0) {
        self->s.broken = 1;
        Py_DECREF(self);
        return NULL;
    }
    if (ct_stream_set_process(&self->s, process) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->file = Py_NewRef(file);
    return (PyObject *)self;
}

static int
DumpStream_traverse(ct_dumpstream *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->file);
    Py_VISIT(self->s.w.write);
    Py_VISIT(self->s.t.index);
    Py_VISIT(self->s.t.list);
    return 0;
}

static int
DumpStream_clear(ct_dumpstream *self)
{
    Py_CLEAR(self->file);
    ct_stream_release(&self->s);
    return 0;
}

static void
DumpStream_dealloc(ct_dumpstream *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    DumpStream_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
DumpStream_frame(ct_dumpstream *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"dataset", "deaths", "final", NULL};
    PyObject *ds, *deaths = Py_None;
    int final = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|Op:frame", kwlist, &ds, &deaths,
                                     &final)) {
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "DumpStream.frame called while a frame "
                        "is being written");
        return NULL;
    }
    if (self->file == NULL) {
        PyErr_SetString(PyExc_ValueError, "dump stream closed");
        return NULL;
    }
    PyObject *module = PyType_GetModule(Py_TYPE(self));
    if (module == NULL) {
        return NULL;
    }
    self->busy = 1;
    int rc = ct_stream_frame(&self->s, ds, deaths, final,
                             ct_modobjs_of(module)->entries_type);
    self->busy = 0;
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
DumpStream_get(ct_dumpstream *self, void *which)
{
    switch ((int)(intptr_t)which) {
    case 0: return PyLong_FromUnsignedLongLong(self->s.nrec);
    case 1: return PyLong_FromUnsignedLongLong(self->s.nsnaps);
    case 2: return PyBool_FromLong(self->s.ended);
    default: return PyBool_FromLong(self->s.broken);
    }
}

static PyMethodDef DumpStream_methods[] = {
    {"frame", (PyCFunction)(void (*)(void))DumpStream_frame, METH_VARARGS | METH_KEYWORDS,
     "frame(dataset, deaths=None, final=False): append one frame (dumpfmt.h)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef DumpStream_getset[] = {
    {"records", (getter)DumpStream_get, NULL, "records the frames so far wrote", (void *)0},
    {"snapshots", (getter)DumpStream_get, NULL, "snapshots the frames so far wrote",
     (void *)1},
    {"ended", (getter)DumpStream_get, NULL, "the last frame (END) is written", (void *)2},
    {"broken", (getter)DumpStream_get, NULL, "a frame failed: no more can be written",
     (void *)3},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot DumpStream_slots[] = {
    {Py_tp_new, DumpStream_new},
    {Py_tp_dealloc, DumpStream_dealloc},
    {Py_tp_traverse, DumpStream_traverse},
    {Py_tp_clear, DumpStream_clear},
    {Py_tp_methods, DumpStream_methods},
    {Py_tp_getset, DumpStream_getset},
    {Py_tp_doc, "DumpStream(file): a dump written one frame per snapshot"},
    {0, NULL},
};

static PyType_Spec DumpStream_spec = {
    "classtrack._core.DumpStream",
    sizeof(ct_dumpstream),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    DumpStream_slots,
};

int
ct_dump_stream_register(PyObject *module)
{
    PyTypeObject *type = ct_add_type(module, &DumpStream_spec, NULL, "DumpStream");
    if (type == NULL) {
        return -1;
    }
    Py_DECREF(type);    /* the module's reference is the one kept */
    return 0;
}

/* crc32(data, value=0, portable=False) -> the dump's checksum of a
 * bytes-like object (zlib.crc32's), for the tests of both implementations */
static PyObject *
core_crc32(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "value", "portable", NULL};
    Py_buffer b;
    PyObject *start = NULL;
    unsigned long value = 0;
    int portable = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*|O!p:crc32", kwlist, &b, &PyLong_Type,
                                     &start, &portable)) {
        return NULL;
    }
    if (start != NULL) {
        value = PyLong_AsUnsignedLong(start);
        if ((value == (unsigned long)-1 && PyErr_Occurred()) || value > 0xffffffffUL) {
            PyBuffer_Release(&b);
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                PyErr_SetString(PyExc_OverflowError, "crc32: value must be in 0..2**32-1");
            }
            return NULL;
        }
    }
    const unsigned char *p = b.buf;
    uint32_t crc = portable ? ct_crc32_portable((uint32_t)value, p, (size_t)b.len)
                            : ct_crc32((uint32_t)value, p, (size_t)b.len);
    PyBuffer_Release(&b);
    return PyLong_FromUnsignedLong(crc);
}

PyMethodDef ct_dump_writer_functions[] = {
    {"dump_write", core_dump_write, METH_VARARGS,
     "dump_write(file, dataset, process=None): write a dataset in classtrack's dump "
     "format; process: (pid, ppid) of the process it is of, or None"},
    {"crc32", (PyCFunction)(void (*)(void))core_crc32, METH_VARARGS | METH_KEYWORDS,
     "crc32(data, value=0, portable=False) -> the dump's CRC-32 (zlib's)"},
    {NULL, NULL, 0, NULL},
};
