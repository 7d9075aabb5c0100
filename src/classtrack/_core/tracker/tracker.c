/* tracker.c - registering objects with a tracker: names, classes, traces.
 *
 * Traces: the creation stack is stored as one tuple of (code, lineno)
 * pairs, outermost first, frames whose file lies under skip_prefix (the
 * classtrack package) left out.  Identical stacks share one tuple and one
 * number, so a million objects created at one call site cost one trace.
 * Source lines are read only when someone asks for the trace.
 */
#include "tracker/tracker.h"

#include <frameobject.h>

Py_ssize_t
ct_tracker_name_number(ct_tracker *t, PyObject *name)
{
    PyObject *num = PyDict_GetItemWithError(t->name_numbers, name);  /* borrowed */
    if (num != NULL) {
        return PyLong_AsSsize_t(num);
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(t->names);
    if ((size_t)n >= CT_MAX_NAMES) {
        PyErr_SetString(PyExc_OverflowError, "too many distinct tracking names");
        return -1;
    }
    /* the lists first: the dict must never name a number they lack */
    if (PyList_Append(t->names, name) < 0) {
        return -1;
    }
    if (PyList_Append(t->name_types, Py_None) < 0) {
        (void)PyList_SetSlice(t->names, n, n + 1, NULL);
        return -1;
    }
    num = PyLong_FromSsize_t(n);
    if (num == NULL || PyDict_SetItem(t->name_numbers, name, num) < 0) {
        Py_XDECREF(num);
        (void)PyList_SetSlice(t->names, n, n + 1, NULL);
        (void)PyList_SetSlice(t->name_types, n, n + 1, NULL);
        return -1;
    }
    Py_DECREF(num);
    return n;
}

static int
skipped_frame(ct_tracker *t, PyCodeObject *code)
{
    PyObject *fn = code->co_filename;
    if (!PyUnicode_Check(fn) || t->skip_prefix == NULL) {
        return 0;
    }
    return PyUnicode_Tailmatch(fn, t->skip_prefix, 0, PY_SSIZE_T_MAX, -1) == 1;
}

Py_ssize_t
ct_trace_capture(ct_tracker *t)
{
    PyObject *pairs = PyList_New(0);
    if (pairs == NULL) {
        return -1;
    }
    PyFrameObject *frame = PyEval_GetFrame();   /* borrowed */
    Py_XINCREF(frame);
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);    /* new */
        int line = PyFrame_GetLineNumber(frame);
        if (!skipped_frame(t, code)) {
            PyObject *item = Py_BuildValue("(Oi)", (PyObject *)code, line);
            if (item == NULL || PyList_Append(pairs, item) < 0) {
                Py_XDECREF(item);
                Py_DECREF(code);
                Py_DECREF(frame);
                Py_DECREF(pairs);
                return -1;
            }
            Py_DECREF(item);
        }
        Py_DECREF(code);
        PyFrameObject *back = PyFrame_GetBack(frame);   /* new or NULL */
        Py_DECREF(frame);
        frame = back;
    }
    if (PyList_GET_SIZE(pairs) == 0) {
        Py_DECREF(pairs);
        return 0;
    }
    if (PyList_Reverse(pairs) < 0) {
        Py_DECREF(pairs);
        return -1;
    }
    PyObject *key = PyList_AsTuple(pairs);
    Py_DECREF(pairs);
    if (key == NULL) {
        return -1;
    }
    PyObject *num = PyDict_GetItemWithError(t->trace_numbers, key);
    Py_ssize_t n;
    if (num != NULL) {
        n = PyLong_AsSsize_t(num);
    }
    else if (PyErr_Occurred()) {
        n = -1;
    }
    else {
        n = PyList_GET_SIZE(t->traces) + 1;
        num = PyLong_FromSsize_t(n);
        if (num == NULL || PyDict_SetItem(t->trace_numbers, key, num) < 0
            || PyList_Append(t->traces, key) < 0) {
            n = -1;
        }
        Py_XDECREF(num);
    }
    Py_DECREF(key);
    return n;
}

/* Remember the record's class when it is not its name's class. */
static int
note_class(ct_tracker *t, Py_ssize_t index, uint32_t name, PyTypeObject *tp)
{
    PyObject *primary = PyList_GET_ITEM(t->name_types, name);  /* borrowed */
    if (primary == Py_None) {
        Py_INCREF(tp);
        return PyList_SetItem(t->name_types, name, (PyObject *)tp);
    }
    if (primary == (PyObject *)tp) {
        return 0;
    }
    PyObject *key = PyLong_FromSsize_t(index);
    if (key == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(t->type_overrides, key, (PyObject *)tp);
    Py_DECREF(key);
    return rc;
}

Py_ssize_t
ct_tracker_track(ct_tracker *t, PyObject *obj, const ct_track_opts *opts, int *is_new)
{
    assert(opts->resolution >= 0 && opts->resolution <= CT_MAX_RESOLUTION);
    *is_new = 0;
    if (!opts->fresh) {
        Py_ssize_t found = ct_registry_find(&t->reg, t->types, obj, t->callback);
        if (found >= 0) {
            return found;
        }
    }
    /* kept objects are held alive, so their ids stay theirs; most
     * trackers keep nothing, and then this costs nothing */
    if (PyDict_GET_SIZE(t->keep_ids) > 0) {
        PyObject *id = PyLong_FromVoidPtr(obj);
        if (id == NULL) {
            return -1;
        }
        PyObject *kept = PyDict_GetItemWithError(t->keep_ids, id);   /* borrowed */
        Py_DECREF(id);
        if (kept != NULL || PyErr_Occurred()) {
            return kept != NULL ? PyLong_AsSsize_t(kept) : -1;
        }
    }
    uint32_t trace_no = 0;
    if (opts->trace) {
        Py_ssize_t tn = ct_trace_capture(t);
        if (tn < 0) {
            return -1;
        }
        trace_no = (uint32_t)tn;
    }
    Py_ssize_t index = ct_registry_add(&t->reg, t->types, obj, t->callback, opts, trace_no);
    if (index < 0) {
        return -1;
    }
    int rc = 0;
    if (opts->keep) {
        PyObject *id = PyLong_FromVoidPtr(obj);
        PyObject *num = PyLong_FromSsize_t(index);
        rc = (id == NULL || num == NULL) ? -1 : PyDict_SetItem(t->keep_ids, id, num);
        Py_XDECREF(id);
        Py_XDECREF(num);
    }
    if (rc < 0 || note_class(t, index, opts->name, Py_TYPE(obj)) < 0) {
        return -1;
    }
    *is_new = 1;
    return index;
}
