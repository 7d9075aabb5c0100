/* dump_input.c - the dump reader's bounded input.  See dump_input.h.
 *
 * The window: input from offset base_off sits at base .. end; it slides
 * forward over parsed bytes (their CRC is kept in crc) and doubles only
 * when it is full and at most half of it was consumed, so it stays within
 * twice the bytes held for the section being read.  Columns are PyMem
 * scratch memory or a bytearray handed over without a copy.
 */
#include "dump/dump_input.h"
#include "dump/dumpfmt.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

int
ct_rd_fail(ct_reader *r, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    PyOS_vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    PyErr_Format(r->error, "invalid classtrack dump at byte %llu: %s",
                 (unsigned long long)ct_rd_offset(r), msg);
    return -1;
}

int
ct_rd_varint_slow(ct_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->sec_end) {
            return ct_rd_fail(r, "a field runs past the end of its section");
        }
        unsigned char c = *r->p;
        if (shift == 63 && (c & 0x7e)) {
            return ct_rd_fail(r, "integer too large");
        }
        r->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return ct_rd_fail(r, "integer too long");
}

/* -- input --------------------------------------------------------------- */

/* Up to `room` more bytes of input at `dst`: how many (0 at the end), or
 * -1 with an exception. */
static Py_ssize_t
source_read(ct_reader *r, unsigned char *dst, size_t room)
{
    if (room > CT_IN_CHUNK) {
        room = CT_IN_CHUNK;
    }
    if (r->fd >= 0) {
        return ct_dump_fd_read(r->fd, dst, room);
    }
    PyObject *b = PyObject_CallFunction(r->read, "n", (Py_ssize_t)room);
    if (b == NULL) {
        return -1;
    }
    if (!PyBytes_Check(b)) {
        PyErr_Format(PyExc_TypeError, "dump file read() returned %.50s, not bytes "
                     "(open the file in binary mode)", Py_TYPE(b)->tp_name);
        Py_DECREF(b);
        return -1;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(b);
    if ((size_t)n > room) {
        Py_DECREF(b);
        PyErr_SetString(PyExc_ValueError, "dump file read() returned more than asked");
        return -1;
    }
    memcpy(dst, PyBytes_AS_STRING(b), (size_t)n);
    Py_DECREF(b);
    return n;
}

/* Makes `need` bytes of input available at r->p, reading as far as the
 * input goes: 1 when they are there, 0 when the input ends first (what
 * there is stays available), -1 with an exception.  May move the window:
 * pointers into it other than r->p, r->end and r->base are stale after;
 * the bytes before r->p may be gone (their crc is kept).  The window
 * doubles only when it is full and at most half of it was consumed, so
 * it stays within twice the bytes held for the section being read. */
int
ct_rd_fill(ct_reader *r, uint64_t need)
{
    while ((uint64_t)(r->end - r->p) < need) {
        if (r->eof || r->buf == NULL) {
            r->eof = 1;
            return 0;
        }
        size_t used = (size_t)(r->end - r->base);
        if (r->cap - used < r->cap / 4) {     /* little room: slide or grow */
            size_t drop = (size_t)(r->p - r->base), keep = used - drop;
            if (drop > 0 && drop >= used / 2) {
                r->crc = ct_crc32(r->crc, r->base, drop);
                memmove(r->buf, r->p, keep);
                r->base_off += drop;
                r->base = r->p = r->buf;
                r->end = r->buf + keep;
                r->sec_end = r->end;
            }
            else {
                size_t cap = r->cap * 2;
                unsigned char *nb = PyMem_Realloc(r->buf, cap);
                if (nb == NULL) {
                    PyErr_NoMemory();
                    return -1;
                }
                r->p = nb + (r->p - r->base);
                r->end = nb + used;
                r->base = r->buf = nb;
                r->cap = cap;
                r->sec_end = r->end;
            }
            continue;
        }
        Py_ssize_t got = source_read(r, r->buf + used, r->cap - used);
        if (got < 0) {
            return -1;
        }
        if (got == 0) {
            r->eof = 1;
        }
        r->end += got;
    }
    return 1;
}

/* -- growable columns ------------------------------------------------------ */

/* Room for n more bytes. */
int
ct_col_reserve(ct_col *c, size_t n)
{
    if (c->len + n <= c->cap) {
        return 0;
    }
    if (n > PY_SSIZE_T_MAX / 2 - c->len) {
        PyErr_NoMemory();
        return -1;
    }
    size_t cap = c->cap ? c->cap : 1024;
    while (cap < c->len + n) {
        cap = c->owner != NULL ? cap + cap / 4 + 1024 : cap * 2;
    }
    if (c->owner != NULL) {
        if (PyByteArray_Resize(c->owner, (Py_ssize_t)cap) < 0) {
            return -1;
        }
        c->data = PyByteArray_AS_STRING(c->owner);
    }
    else {
        char *d = PyMem_Realloc(c->data, cap);
        if (d == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->data = d;
    }
    c->cap = cap;
    return 0;
}

/* An owned column as the dataset's column: its bytearray cut to its
 * length, or for a small column a bytes copy (a copy costs nothing there,
 * and small bytearrays reallocated to their length fragment the small-
 * object allocator: on 3.13 a dump-load loop kept growing for thousands
 * of rounds).  New reference, or NULL with an exception. */
PyObject *
ct_col_hand_over(ct_col *c)
{
    if (c->len < CT_IN_START) {
        return PyBytes_FromStringAndSize(c->len ? c->data : "", (Py_ssize_t)c->len);
    }
    if (PyByteArray_Resize(c->owner, (Py_ssize_t)c->len) < 0) {
        return NULL;
    }
    return Py_NewRef(c->owner);
}

PyObject *
ct_col_bytes(ct_col *c)
{
    return PyBytes_FromStringAndSize(c->data ? c->data : "", (Py_ssize_t)c->len);
}

