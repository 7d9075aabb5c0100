/* entries.h - one snapshot's entries, held compactly: which records the
 * snapshot sized, and each one's size and flat size.
 *
 * This is how Stats keeps a snapshot in memory (the dump keeps it as
 * varints, dumpfmt.h).  Which records: a bitmap over the records with a
 * rank table when the snapshot names many of them (3/16 byte per record),
 * else their ascending indices (4 bytes per entry), whichever is smaller.
 * Sizes and flat sizes: one column each of the narrowest width (1, 2, 4 or
 * 8 bytes) that holds the column's largest value.  A snapshot of small
 * objects costs about 3 bytes per entry, less than its dump.
 *
 * Invariants, checked when an Entries is made and never changed after (it
 * is immutable): every record index is below nrec; indices strictly
 * increase; with a bitmap, exactly n bits are set, all below nrec, and
 * rank[w] counts the set bits of the words before w.  So an entry's
 * position is its rank, and every lookup stays inside the arrays.
 */
#ifndef CLASSTRACK_ENTRIES_H
#define CLASSTRACK_ENTRIES_H

#include "base/compat.h"
#include <stdint.h>

typedef struct {
    PyObject_HEAD
    size_t nrec;        /* every record index is below it */
    size_t n;           /* entries */
    uint64_t *bits;     /* owned, or NULL: nrec bits, record i at bit i%64 of word i/64 */
    uint32_t *rank;     /* owned, with bits: nwords + 1 prefix counts */
    uint32_t *idx;      /* owned, without bits: n ascending record indices */
    unsigned size_w;    /* bytes per value of size, flat: 1, 2, 4 or 8 */
    unsigned flat_w;
    unsigned char *size;    /* owned: n values */
    unsigned char *flat;    /* owned: n values */
} ct_entries;

/* The value at `pos` of a column of `w`-byte native items. */
static inline uint64_t
ct_entries_value(const unsigned char *col, unsigned w, size_t pos)
{
    switch (w) {
    case 1: return col[pos];
    case 2: return ((const uint16_t *)col)[pos];
    case 4: return ((const uint32_t *)col)[pos];
    default: return ((const uint64_t *)col)[pos];
    }
}

/* Walks the entries in order: pos counts from 0, rec is the record. */
typedef struct {
    const ct_entries *e;
    size_t pos;         /* of the next entry */
    size_t word;        /* with bits: the word `cur` came from */
    uint64_t cur;       /* with bits: its bits not yet visited */
} ct_entries_iter;

static inline void
ct_entries_iter_init(ct_entries_iter *it, const ct_entries *e)
{
    it->e = e;
    it->pos = 0;
    it->word = 0;
    it->cur = e->bits != NULL ? e->bits[0] : 0;     /* nrec / 64 + 1 words */
}

/* 1 and the next entry's record in *rec, or 0 after the last. */
static inline int
ct_entries_next(ct_entries_iter *it, size_t *rec)
{
    const ct_entries *e = it->e;
    if (it->pos >= e->n) {
        return 0;
    }
    if (e->bits == NULL) {
        *rec = e->idx[it->pos++];
        return 1;
    }
    while (it->cur == 0) {      /* n bits are set: one lies ahead */
        it->cur = e->bits[++it->word];
    }
    *rec = it->word * 64 + (size_t)__builtin_ctzll(it->cur);
    it->cur &= it->cur - 1;
    it->pos++;
    return 1;
}

/* The position of record `rec`'s entry, or -1 when it has none. */
Py_ssize_t ct_entries_find(const ct_entries *e, size_t rec);

/* A new Entries (new reference) of n entries over nrec records from
 * columns: idx strictly increasing, each below nrec; size and flat n
 * values each.  ValueError when idx breaks that; NULL with an exception. */
PyObject *ct_entries_new(PyTypeObject *type, size_t nrec, size_t n, const uint32_t *idx,
                         const uint64_t *size, const uint64_t *flat);

/* The same in three steps, for a producer that checked its indices
 * itself (the dump reader decodes straight into it):
 *   ct_entries_alloc  a new Entries (new reference) of n entries over nrec
 *                     records with room for the indices, no sizes yet;
 *                     ValueError when n > nrec or nrec passes 32-bit
 *                     indices, NULL with an exception;
 *   ct_entries_put    entry `pos` is record `rec`: called for every pos
 *                     in order, with rec strictly increasing, below nrec;
 *   ct_entries_finish the n sizes and flat sizes, with the OR of each
 *                     column (which gives its width); 0, or -1 with an
 *                     exception, after which the Entries is only to be
 *                     released.
 * Not a Python object anyone may see before it is finished. */
PyObject *ct_entries_alloc(PyTypeObject *type, size_t nrec, size_t n);
int ct_entries_finish(ct_entries *e, const uint64_t *size, const uint64_t *flat,
                      uint64_t size_or, uint64_t flat_or);

static inline void
ct_entries_put(ct_entries *e, size_t pos, size_t rec)
{
    if (e->bits != NULL) {
        e->bits[rec / 64] |= (uint64_t)1 << (rec % 64);
    }
    else {
        e->idx[pos] = (uint32_t)rec;
    }
}

/* Or, for a producer that writes the columns itself at widths it chose
 * (the reader guesses them from the snapshot before), instead of
 * ct_entries_finish:
 *   ct_entries_columns        room for n values of each column at these
 *                             widths (1, 2, 4 or 8), to be filled in
 *                             place with ct_entries_store; 0, or -1 with
 *                             an exception;
 *   ct_entries_finish_columns with the OR of each column: narrows a
 *                             column whose values fit a smaller width
 *                             and gives its tail back.
 * (A snapshot fills its Entries this way too: at width 4, widened to 8
 * when a size needs it, ct_entries_widen.) */
int ct_entries_columns(ct_entries *e, unsigned size_w, unsigned flat_w);
/* Widens the size column (flat: the flat column) to 8 bytes, its values
 * kept, for a producer that started narrower and met a larger value.
 * 0, or -1 with MemoryError (the column unchanged). */
int ct_entries_widen(ct_entries *e, int flat);
void ct_entries_finish_columns(ct_entries *e, uint64_t size_or, uint64_t flat_or);

/* Stores v (which fits) as value `pos` of a column of w-byte items. */
static inline void
ct_entries_store(unsigned char *col, unsigned w, size_t pos, uint64_t v)
{
    switch (w) {
    case 1: col[pos] = (unsigned char)v; break;
    case 2: ((uint16_t *)col)[pos] = (uint16_t)v; break;
    case 4: ((uint32_t *)col)[pos] = (uint32_t)v; break;
    default: ((uint64_t *)col)[pos] = v; break;
    }
}

/* Runs CASE(sw, fw) with the constant widths equal to size_w and flat_w:
 * a loop written as an always-inline function of the widths, called
 * through this, is compiled once per width pair with no test per value
 * (the dump writer and reader, aggregate.c).  CASE ends its case itself
 * (a return). */
#define CT_ENTRIES_WIDTH_CASE(CASE, s, f) case s * 16 + f: CASE(s, f);
#define CT_ENTRIES_BY_WIDTH(size_w, flat_w, CASE)                            \
    switch ((size_w) * 16 + (flat_w)) {                                      \
    CT_ENTRIES_WIDTH_CASE(CASE, 1, 1) CT_ENTRIES_WIDTH_CASE(CASE, 1, 2)      \
    CT_ENTRIES_WIDTH_CASE(CASE, 1, 4) CT_ENTRIES_WIDTH_CASE(CASE, 1, 8)      \
    CT_ENTRIES_WIDTH_CASE(CASE, 2, 1) CT_ENTRIES_WIDTH_CASE(CASE, 2, 2)      \
    CT_ENTRIES_WIDTH_CASE(CASE, 2, 4) CT_ENTRIES_WIDTH_CASE(CASE, 2, 8)      \
    CT_ENTRIES_WIDTH_CASE(CASE, 4, 1) CT_ENTRIES_WIDTH_CASE(CASE, 4, 2)      \
    CT_ENTRIES_WIDTH_CASE(CASE, 4, 4) CT_ENTRIES_WIDTH_CASE(CASE, 4, 8)      \
    CT_ENTRIES_WIDTH_CASE(CASE, 8, 1) CT_ENTRIES_WIDTH_CASE(CASE, 8, 2)      \
    CT_ENTRIES_WIDTH_CASE(CASE, 8, 4)                                        \
    default: CASE(8, 8);                                                      \
    }

/* Bytes held, beyond the object header. */
size_t ct_entries_nbytes(const ct_entries *e);

/* Registers classtrack._core.Entries; fills *type (strong).  0 or -1. */
int ct_entries_type_register(PyObject *module, PyTypeObject **type);

/* The Entries in `obj`, borrowed, or NULL with TypeError naming `who`. */
ct_entries *ct_entries_check(PyObject *module, PyObject *obj, const char *who);

#endif
