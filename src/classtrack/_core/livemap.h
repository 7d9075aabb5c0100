/* livemap.h - map from the memory block of a live tracked object to its
 * record number.
 *
 * Design: keys are block addresses (what the object allocator's free
 * function receives), 16-byte aligned, never dereferenced.  Like ptrset,
 * the map is keyed by 4 KiB page: an open-addressing table (linear
 * probing, power-of-two size, at most half full, page 0 marks an empty
 * slot) whose page keys sit in their own array, so the question asked on
 * every free in the process ("is this block one of ours?") touches one
 * small, cache-resident array.  Each page keeps a 256-bit bitmap of its
 * 16-byte units holding a key and the record numbers of those keys in
 * unit order (the position of a key is the number of bits set below its
 * own: a rank), so objects created together share a page entry and the
 * map costs a few bytes per object.
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
    uint32_t *index;        /* record numbers, in unit order */
    uint16_t n;             /* keys in the page */
    uint16_t cap;           /* capacity of index */
    uint8_t below[4];       /* keys in bits[0 .. w), for the rank */
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
    size_t last_slot;       /* its slot, valid while last_page != 0 */
} ct_livemap;

/* A zeroed map is a valid empty map. */
void ct_livemap_clear(ct_livemap *m);

/* Insert block -> index.  0 if added, 1 if the block was present (its
 * number is replaced, the old one stored in *old), -1 when out of memory. */
int ct_livemap_put(ct_livemap *m, const void *block, uint32_t index, uint32_t *old);

/* 1 and *index if present, else 0. */
int ct_livemap_get(const ct_livemap *m, const void *block, uint32_t *index);

/* Remove block: 1 and *index if it was present, else 0.  Never allocates. */
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

/* The free hook's question, inline: most blocks are not in a page of the
 * map, which one bit of the small filter answers. */
static inline int
ct_livemap_pop(ct_livemap *m, const void *block, uint32_t *index)
{
    if (m->count == 0) {
        return 0;
    }
    uintptr_t page = (uintptr_t)block >> 12;
    size_t fb = ct_livemap_fbit(page, m->fmask);
    if (!((m->filter[fb >> 6] >> (fb & 63)) & 1u)) {
        return 0;
    }
    size_t i = ct_livemap_hash(page) & m->mask;
    for (;;) {
        uintptr_t k = m->keys[i];
        if (k == page) {
            return ct_livemap_pop_page(m, i, block, index);
        }
        if (k == 0) {
            return 0;
        }
        i = (i + 1) & m->mask;
    }
}

/* Bytes held by the map. */
size_t ct_livemap_footprint(const ct_livemap *m);

#endif
