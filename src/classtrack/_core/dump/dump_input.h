/* dump_input.h - the dump reader's bounded input (private to dump/).
 *
 * A ct_reader is a window over the input (a bytes-like object read in
 * place, or a file streamed in chunks) and a cursor in it; every read is
 * bounded by the end of the current section (sec_end), so a count checked
 * against its section's bytes is checked against bytes really present.
 * Every failure is a DumpError naming the problem and its byte offset
 * (ct_rd_fail).  A ct_col is a growable column the reader decodes into.
 * The section parsers that use them are in dump_reader.c.
 */
#ifndef CLASSTRACK_DUMP_INPUT_H
#define CLASSTRACK_DUMP_INPUT_H

#include "base/compat.h"
#include "dump/dumpfmt.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define CT_IN_CHUNK (1 << 20)   /* the most one read asks for */
#define CT_IN_START (1 << 16)   /* the window's first size */

typedef struct {
    const unsigned char *base;      /* the window: input from offset base_off */
    const unsigned char *p;         /* next byte, base <= p <= end */
    const unsigned char *end;       /* end of the input in the window */
    const unsigned char *sec_end;   /* end of the current section, <= end */
    PyObject *error;                /* borrowed: DumpError */
    uint64_t base_off;              /* input offset of base */
    uint32_t crc;                   /* crc32 of the input before base */
    unsigned char *buf;             /* owned window storage (base), or NULL
                                       when the whole input is in memory */
    size_t cap;                     /* bytes at buf */
    int fd;                         /* the raw file's descriptor, or -1 */
    PyObject *read;                 /* borrowed: file.read, or NULL */
    int eof;                        /* nothing more to read */
} ct_reader;

static inline uint64_t
ct_rd_offset(const ct_reader *r)
{
    return r->base_off + (uint64_t)(r->p - r->base);
}

static inline uint64_t
ct_rd_left(const ct_reader *r)
{
    return (uint64_t)(r->sec_end - r->p);
}

/* DumpError "invalid classtrack dump at byte N: <message>".  Returns -1. */
int ct_rd_fail(ct_reader *r, const char *fmt, ...);

/* The primitives below are inline: the record and entry loops call them
 * once or more per item.  Each returns 0, or -1 with DumpError set. */

/* Copies n bytes (n may be 0) to dst, or skips them when dst is NULL. */
static inline int
ct_rd_take(ct_reader *r, void *dst, size_t n)
{
    if (n > ct_rd_left(r)) {
        return ct_rd_fail(r, "a field runs past the end of its section");
    }
    if (dst != NULL) {
        memcpy(dst, r->p, n);
    }
    r->p += n;
    return 0;
}

/* One byte. */
static inline int
ct_rd_u8(ct_reader *r, unsigned *v)
{
    if (r->p >= r->sec_end) {
        *v = 0;
        return ct_rd_fail(r, "a field runs past the end of its section");
    }
    *v = *r->p++;
    return 0;
}

int ct_rd_varint_slow(ct_reader *r, uint64_t *v);

/* One varint; the common one-byte case inline. */
static inline int
ct_rd_varint(ct_reader *r, uint64_t *v)
{
    if (r->p < r->sec_end && !(*r->p & 0x80)) {
        *v = *r->p++;
        return 0;
    }
    *v = 0;     /* set on every path, as the compiler cannot see */
    return ct_rd_varint_slow(r, v);
}

/* A finite, non-negative little-endian double; `what` names it. */
static inline int
ct_rd_f64(ct_reader *r, double *d, const char *what)
{
    unsigned char b[8] = {0};  /* zeroed: inlined, gcc cannot tell that ct_rd_take fills it */
    if (ct_rd_take(r, b, 8) < 0) {
        return -1;
    }
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) {
        bits |= (uint64_t)b[i] << (8 * i);
    }
    memcpy(d, &bits, 8);
    if (!isfinite(*d) || *d < 0) {
        return ct_rd_fail(r, "%s is not a finite, non-negative number", what);
    }
    return 0;
}

/* A count of items, each at least min_item bytes, must fit the section. */
static inline int
ct_rd_count(ct_reader *r, uint64_t *n, uint64_t min_item, const char *what)
{
    if (ct_rd_varint(r, n) < 0) {
        return -1;
    }
    if (*n > ct_rd_left(r) / (min_item ? min_item : 1)) {
        return ct_rd_fail(r, "%s count %llu does not fit in its section", what,
                       (unsigned long long)*n);
    }
    return 0;
}

/* A varint below `limit`. */
static inline int
ct_rd_index(ct_reader *r, uint64_t limit, uint64_t *v, const char *what)
{
    if (ct_rd_varint(r, v) < 0) {
        return -1;
    }
    if (*v >= limit) {
        return ct_rd_fail(r, "%s %llu out of range (%llu known)", what,
                       (unsigned long long)*v, (unsigned long long)limit);
    }
    return 0;
}


/* Makes `need` bytes of input available at r->p: 1, 0 when the input ends
 * first, -1 with an exception (see dump_input.c). */
int ct_rd_fill(ct_reader *r, uint64_t need);

/* A column: scratch memory (PyMem), or with `owner` a bytearray that is
 * handed over as the column itself, so it is never copied.  An owned
 * column grows by a quarter (large reallocations move pages, not bytes)
 * and is cut to its length when handed over. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    PyObject *owner;    /* strong: bytearray, or NULL */
} ct_col;

/* Room for n more bytes.  0 or -1 with an exception. */
int ct_col_reserve(ct_col *c, size_t n);

/* An owned column handed over as the dataset's column (see
 * dump_input.c).  New reference, or NULL with an exception. */
PyObject *ct_col_hand_over(ct_col *c);

/* Appends n bytes at p (p may be NULL when n is 0).  0 or -1.  Inline:
 * the record loop appends six fields per record. */
static inline int
ct_col_put(ct_col *c, const void *p, size_t n)
{
    if (c->len + n > c->cap && ct_col_reserve(c, n) < 0) {
        return -1;
    }
    if (n > 0) {    /* p may be NULL for nothing */
        memcpy(c->data + c->len, p, n);
    }
    c->len += n;
    return 0;
}

/* The column's bytes as a new bytes object, or NULL. */
PyObject *ct_col_bytes(ct_col *c);

#endif
