/* bigbuf.h - classtrack._core.BigBuffer: a read-only bytes-like object
 * whose memory comes from ct_big_alloc (bigmem.h).
 *
 * Why: the columns a dump stream writes at each frame (one item per new
 * record, megabytes on a large run) were bytes objects.  CPython takes a
 * large bytes from malloc, and a short-lived block of that size is carved
 * from the brk heap once a program has raised malloc's dynamic mmap
 * threshold (bigmem.h says why), then left there as a hole.  A BigBuffer
 * of 64 KiB or more is mapped and unmapped instead.
 *
 * Python sees the buffer protocol (memoryview, bytes(), array.frombytes,
 * the dump writer's ct_column_get), len() in bytes, and pickling (as the
 * bytes it holds); nothing else.  It
 * is filled by the C code that made it, before Python sees it. */
#ifndef CLASSTRACK_BIGBUF_H
#define CLASSTRACK_BIGBUF_H

#include "base/compat.h"

/* Registers classtrack._core.BigBuffer; *type gets a strong reference. */
int ct_bigbuf_type_register(PyObject *module, PyTypeObject **type);

/* A new BigBuffer of `len` bytes (zeroed), its memory in *data; NULL with
 * MemoryError. */
PyObject *ct_bigbuf_new(PyTypeObject *type, size_t len, void **data);

#endif
