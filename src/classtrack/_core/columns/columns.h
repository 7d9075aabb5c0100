/* columns.h - the columns engine's entry header: loops over the numeric
 * columns of a dataset (see dumpfmt.h).  The buffers themselves are
 * accepted in base/colbuf.h, which the tracker's Entries use too. */
#ifndef CLASSTRACK_COLUMNS_H
#define CLASSTRACK_COLUMNS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "base/colbuf.h"

/* {name: [(timestamp, live count), ...]} from each record's name number,
 * birth and death (0.0: alive), births before deaths at equal times.
 * Records whose name number is not below len(names) are skipped.  New
 * reference or NULL with an exception.  Shared by Tracker.history and
 * _core.history (the same over a dataset's columns, aggregate.c). */
PyObject *ct_history(PyObject *names, const uint32_t *name, const double *birth,
                     const double *death, size_t len);

#endif
