/* livemap.h - map from the memory block of a live tracked object to its
 * record number.
 *
 * Design: keys are block addresses (what the object allocator's free
 * function receives), 16-byte aligned, never dereferenced.  Like ptrset,
 * the map is keyed by 4 KiB page: an open-addressing table (linear
 * probing, power-of-two size, at most half full, page 0 marks an empty
 * slot) whose page keys sit in their own array, so the question asked on
 * every free in the process ("is this block one of ours?") touches one
 * small, cache-resident filter and, on a hit, one small array.  Objects
 * created together share a page entry, so the map costs a few bytes per
 * object.
 *
 * Each page keeps a 256-bit bitmap of its 16-byte units that hold a key
 * (membership in one load) and an unordered list of (unit, record number)
 * pairs: `units[k]` is the unit of `index[k]`.  Inserting appends, deleting
 * moves the last pair into the hole: both O(1) and free of memmove; the
 * only search is a scan of the page's unit bytes when a key is removed or
 * looked up (at most 256, 16 at a time with SSE2), paid on the death of a
 * tracked object, not on creation.  The insertion of the same page as the
 * previous one (objects made one after the other) is inline and skips the
 * table: ct_livemap_put_last.
 *
 * Deletion shifts later entries of a probe run back (no tombstones), and
 * a page whose last key goes is deleted, so the table never fills with
 * pages that held objects long ago.
 *
 * Memory comes from PyMem_Raw* (seen by tracemalloc, never the object
 * allocator, so the free watch is never re-entered).  The functions never
 * call Python and never set exceptions; guarded by the GIL.
 */
#ifndef CLASSTRACK_LIVEMAP_H
#define CLASSTRACK_LIVEMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t bits[4];       /* bit u: unit u of the page holds a key */
    uint32_t *index;        /* record numbers [0 .. n), unordered; the unit
                               bytes follow at (uint8_t *)(index + cap) */
    uint16_t n;             /* keys in the page */
    uint16_t cap;           /* capacity of index (a multiple of 16) */
} ct_livepage;

typedef struct {
    uintptr_t *keys;        /* page numbers (address >> 12), 0 = empty */
    ct_livepage *pages;     /* parallel to keys */
    size_t mask;            /* capacity - 1 */
    size_t npages;          /* occupied slots */
    size_t count;           /* keys */
    uint64_t *filter;       /* 8 bits per slot: bit ct_livemap_fbit(page) is
                               set for every page in the table (and maybe
                               for pages deleted since the last rebuild) */
    size_t fmask;           /* filter bits - 1 */
    size_t stale;           /* pages deleted since the filter was built */
    uintptr_t last_page;    /* the page of the latest insertion, 0 if none */
    ct_livepage *last;      /* its entry, valid while last_page != 0 */
} ct_livemap;

static inline uint8_t *
ct_livepage_units(const ct_livepage *pg)
{
    return (uint8_t *)(pg->index + pg->cap);
}

/* A zeroed map is a valid empty map. */
void ct_livemap_clear(ct_livemap *m);

/* Insert block -> index.  0 if added, 1 if the block was present (its
 * number is replaced, the old one stored in *old), -1 when out of memory. */
int ct_livemap_put(ct_livemap *m, const void *block, uint32_t index, uint32_t *old);

/* The common insertion, inline: block lies in the page of the previous
 * insertion, is not present and the page has room.  1 if inserted, 0 if
 * the caller must use ct_livemap_put. */
static inline int
ct_livemap_put_last(ct_livemap *m, const void *block, uint32_t index)
{
    uintptr_t a = (uintptr_t)block;
    if ((a >> 12) != m->last_page) {
        return 0;
    }
    ct_livepage *pg = m->last;
    unsigned u = (unsigned)(a >> 4) & 255u;
    uint64_t bit = (uint64_t)1 << (u & 63);
    if (pg->n == pg->cap || (pg->bits[u >> 6] & bit)) {
        return 0;
    }
    pg->bits[u >> 6] |= bit;
    pg->index[pg->n] = index;
    ct_livepage_units(pg)[pg->n] = (uint8_t)u;
    pg->n++;
    m->count++;
    return 1;
}

/* 1 and *index if present, else 0. */
int ct_livemap_get(const ct_livemap *m, const void *block, uint32_t *index);

/* Remove block from the page in `slot`: 1 and *index if it was present,
 * else 0.  Never allocates. */
int ct_livemap_pop_page(ct_livemap *m, size_t slot, const void *block, uint32_t *index);

static inline size_t
ct_livemap_hash(uintptr_t page)
{
    uint64_t h = (uint64_t)page * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h ^ (h >> 29));
}

static inline size_t
ct_livemap_fbit(uintptr_t page, size_t fmask)
{
    return (size_t)(((uint64_t)page * UINT64_C(0xD6E8FEB86659FD93)) >> 32) & fmask;
}

/* The first question of the free hook, inline: can block be in the map?
 * Most blocks are not in a page of the map, which one bit of the small
 * filter answers. */
static inline int
ct_livemap_maybe(const ct_livemap *m, const void *block)
{
    if (m->count == 0) {
        return 0;
    }
    uintptr_t page = (uintptr_t)block >> 12;
    size_t fb = ct_livemap_fbit(page, m->fmask);
    return (int)((m->filter[fb >> 6] >> (fb & 63)) & 1u);
}

/* Remove block if present (after ct_livemap_maybe said it may be): 1 and
 * *index, else 0.  Never allocates. */
int ct_livemap_pop(ct_livemap *m, const void *block, uint32_t *index);

/* Bytes held by the map. */
size_t ct_livemap_footprint(const ct_livemap *m);

/* Exercise the map against a reference with `n` pseudo-random operations
 * from `seed` (tests): the number of disagreements, or -1 when out of
 * memory. */
long ct_livemap_selftest(uint64_t seed, size_t n);

#endif
