/* rows.c - named records for data that crosses into Python.  See rows.h. */
#include "base/rows.h"

#include <string.h>

int
ct_row_type_add(PyObject *module, PyStructSequence_Desc *desc, PyTypeObject **type)
{
    *type = NULL;
    PyTypeObject *tp = PyStructSequence_NewType(desc);
    if (tp == NULL) {
        return -1;
    }
    const char *dot = strrchr(desc->name, '.');
    const char *attr = dot != NULL ? dot + 1 : desc->name;
    if (PyModule_AddObject(module, attr, Py_NewRef((PyObject *)tp)) < 0) {
        Py_DECREF(tp);  /* AddObject only steals on success */
        Py_DECREF(tp);
        return -1;
    }
    *type = tp;
    return 0;
}

PyObject *
ct_row_from_tuple(PyTypeObject *type, PyObject *tuple)
{
    if (tuple == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    PyObject *row = PyStructSequence_New(type);
    if (row == NULL) {
        goto done;
    }
    /* every field of these types is in the sequence: its length is theirs */
    if (Py_SIZE(row) != n) {
        PyErr_Format(PyExc_SystemError, "%s has %zd fields, not %zd",
                     type->tp_name, Py_SIZE(row), n);
        Py_CLEAR(row);
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyStructSequence_SetItem(row, i, Py_NewRef(PyTuple_GET_ITEM(tuple, i)));
    }
done:
    Py_DECREF(tuple);
    return row;
}
