/* rows.h - named records for data that crosses into Python.
 *
 * A row is an instance of a struct sequence type (PyStructSequence): a
 * tuple subclass whose fields also have names, so Python reads
 * `row.timestamp` where it used to read `row[0]`, and code that indexes
 * or unpacks keeps working.  Each type is a heap type made per module
 * (PyStructSequence_NewType), owned by the module state and exposed as
 * a module attribute; the engine that builds the rows describes their
 * fields next to the code that fills them.
 */
#ifndef CLASSTRACK_ROWS_H
#define CLASSTRACK_ROWS_H

#include "base/compat.h"

/* Makes the struct sequence type `desc` describes (desc->name is
 * "classtrack._core.<Name>"), stores it in *type (strong, for the module
 * state) and adds it to `module` as <Name>.  0, or -1 with an exception
 * (*type stays NULL). */
int ct_row_type_add(PyObject *module, PyStructSequence_Desc *desc, PyTypeObject **type);

/* A row of `type` with the items of `tuple` (exactly the type's length),
 * which is consumed (its reference stolen, may be NULL: then NULL is
 * returned with the exception of whoever failed to build it).  New
 * reference, or NULL with an exception. */
PyObject *ct_row_from_tuple(PyTypeObject *type, PyObject *tuple);

#endif
