/* dump_stream.c - classtrack._core.DumpStream: a dump written a frame at
 * a time (dumpfmt.h, "streamed files"), so that a process killed at any
 * instant leaves a readable dump up to its last snapshot.
 *
 *   s = DumpStream(file)           file: an io.FileIO (written through its
 *                                  descriptor) or any binary file object
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
    static char *kwlist[] = {"file", NULL};
    PyObject *file;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:DumpStream", kwlist, &file)) {
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
    PyObject *type = PyType_FromModuleAndSpec(module, &DumpStream_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    if (PyModule_AddObject(module, "DumpStream", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}
