/* livemap.h - map from the memory block of a live tracked object to its
 * record number.
 *
 * Design: keys are block addresses (what the object allocator's free
 * function receives), 16-byte aligned, never dereferenced.  Two levels,
 * like a page table:
 *   - a directory covers 256 KiB of address space (64 pages of 4 KiB):
 *     an array of 64 page pointers, NULL where no key lies.  Directories
 *     are found through a small open-addressing table (linear probing,
 *     power-of-two size, at most half full, 0 marks an empty slot) whose
 *     slots hold the key (address >> 18) and a 64-bit mask of the
 *     directory's pages that hold a key; the directories themselves sit
 *     in a parallel array.  A heap of 60 MB needs 240 slots, so the table
 *     stays in cache, and a free in a page without a key (about 70% of
 *     the frees that fall in a directory on a Sphinx build) is answered
 *     by the slot alone, without loading the directory or a page;
 *   - a page keeps a 256-bit bitmap of its 16-byte units holding a key
 *     (membership in one load) and an unordered list of (unit, record
 *     number) pairs: `units[k]` is the unit of `index[k]`.  Inserting
 *     appends, deleting moves the last pair into the hole: O(1), no
 *     memmove; the only search is a scan of the page's unit bytes (at most
 *     256, 16 per step with SSE2), paid on the death of a tracked object
 *     or a look-up, never on creation.
 * The question asked on every free in the process ("is this block one of
 * ours?") is answered exactly: table probe and page mask, then (only in
 * a page that holds keys) directory, page pointer, bit.  Objects created
 * together share a page, so the map costs a few bytes per object; the
 * insertion into the page of the previous insertion (objects made one
 * after the other) is inline: ct_livemap_put_last.  Memory is bounded by
 * the heap it covers: 512 bytes per 256 KiB directory in use, 40 + 5 * cap
 * bytes per page in use, and the table: 24 bytes a slot, at least twice
 * as many slots as directories (it never shrinks).
 *
 * An emptied page is freed at once, an emptied directory too (deleted
 * from the table by shifting its probe run back, no tombstones).
 *
 * Memory comes from PyMem_Raw* (seen by tracemalloc, never the object
 * allocator, so the free watch is never re-entered).  The functions never
 * call Python and never set exceptions; guarded by the GIL.
 */
#ifndef CLASSTRACK_LIVEMAP_H
#define CLASSTRACK_LIVEMAP_H

#include <stddef.h>
#include <stdint.h>

#define CT_LIVEMAP_PAGE_SHIFT 12
#define CT_LIVEMAP_DIR_SHIFT 18
#define CT_LIVEMAP_DIR_PAGES (1u << (CT_LIVEMAP_DIR_SHIFT - CT_LIVEMAP_PAGE_SHIFT))

/* One page's keys; one PyMem_Raw block: this header, then the record
 * numbers index[cap], then the units[cap] bytes. */
typedef struct {
    uint64_t bits[4];       /* bit u: unit u of the page holds a key */
    uint16_t n;             /* keys in the page, >= 1 */
    uint16_t cap;           /* pairs the block holds, a multiple of 16 */
    uint32_t index[];       /* record numbers [0 .. n), unordered */
} ct_livepage;

typedef struct {
    ct_livepage *page[CT_LIVEMAP_DIR_PAGES];  /* NULL: no key in that page */
} ct_livedir;

/* One slot of the directory table. */
typedef struct {
    uintptr_t key;          /* directory number (address >> 18), 0 = empty */
    uint64_t pages;         /* bit j: page[j] of its directory is not NULL;
                               never 0 in an occupied slot */
} ct_liveslot;

typedef struct {
    ct_liveslot *slots;     /* the table */
    ct_livedir **dirs;      /* parallel to slots */
    size_t mask;            /* table capacity - 1 */
    size_t ndirs;           /* occupied slots */
    size_t count;           /* keys */
    size_t npages;          /* pages in use */
    uintptr_t last_page;    /* the page (address >> 12) of the latest
                               insertion, 0 if none or since deleted */
    ct_livepage *last;      /* its entry, valid while last_page != 0 */
} ct_livemap;

static inline uint8_t *
ct_livepage_units(ct_livepage *pg)
{
    return (uint8_t *)(pg->index + pg->cap);
}

/* A zeroed map is a valid empty map. */
void ct_livemap_clear(ct_livemap *m);

/* Insert block -> index.  0 if added, 1 if the block was present (its
 * number is replaced, the old one stored in *old), -1 when out of memory
 * (the map unchanged).  `per_page` is how many such blocks one page can
 * hold (ct_livemap_per_page), which sizes the entry of a new page. */
int ct_livemap_put(ct_livemap *m, const void *block, uint32_t index, uint32_t *old,
                   unsigned per_page);

/* How many blocks of `size` bytes can start in one page. */
static inline unsigned
ct_livemap_per_page(size_t size)
{
    return size < 16 ? 256u : (unsigned)((4096 + size - 1) / size);
}

/* The unit of a block in its page. */
static inline unsigned
ct_livepage_unit(const void *block)
{
    return (unsigned)((uintptr_t)block >> 4) & 255u;
}

/* Unit u of the page holds a key. */
static inline int
ct_livepage_has(const ct_livepage *pg, unsigned u)
{
    return (int)((pg->bits[u >> 6] >> (u & 63)) & 1u);
}

/* Append unit u -> index to a page with room that lacks u. */
static inline void
ct_livepage_append(ct_livemap *m, ct_livepage *pg, unsigned u, uint32_t index)
{
    pg->bits[u >> 6] |= (uint64_t)1 << (u & 63);
    pg->index[pg->n] = index;
    ct_livepage_units(pg)[pg->n] = (uint8_t)u;
    pg->n++;
    m->count++;
}

/* The common insertion, inline: block lies in the page of the previous
 * insertion, is not present and the page has room.  1 if inserted, 0 if
 * the caller must use ct_livemap_put. */
static inline int
ct_livemap_put_last(ct_livemap *m, const void *block, uint32_t index)
{
    if (((uintptr_t)block >> CT_LIVEMAP_PAGE_SHIFT) != m->last_page) {
        return 0;
    }
    ct_livepage *pg = m->last;
    unsigned u = ct_livepage_unit(block);
    if (pg->n == pg->cap || ct_livepage_has(pg, u)) {
        return 0;
    }
    ct_livepage_append(m, pg, u, index);
    return 1;
}

static inline size_t
ct_livemap_hash(uintptr_t dir)
{
    uint64_t h = (uint64_t)dir * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h ^ (h >> 29));
}

/* The free hook's question, inline: the page entry that may hold block,
 * or NULL when no key lies in block's page (most frees). */
static inline ct_livepage *
ct_livemap_page_of(const ct_livemap *m, const void *block)
{
    if (m->count == 0) {
        return NULL;
    }
    uintptr_t a = (uintptr_t)block;
    uintptr_t d = a >> CT_LIVEMAP_DIR_SHIFT;
    size_t i = ct_livemap_hash(d) & m->mask;
    for (;;) {
        uintptr_t k = m->slots[i].key;
        if (k == 0) {       /* first: a NULL block has d == 0 */
            return NULL;
        }
        if (k == d) {
            unsigned j = (unsigned)(a >> CT_LIVEMAP_PAGE_SHIFT) & (CT_LIVEMAP_DIR_PAGES - 1);
            if (((m->slots[i].pages >> j) & 1u) == 0) {
                return NULL;
            }
            return m->dirs[i]->page[j];
        }
        i = (i + 1) & m->mask;
    }
}

/* Is block a key?  Inline: the free hook asks it for every free. */
static inline int
ct_livemap_contains(const ct_livemap *m, const void *block)
{
    ct_livepage *pg = ct_livemap_page_of(m, block);
    return pg != NULL && ct_livepage_has(pg, ct_livepage_unit(block));
}

/* Remove block if present: 1 and *index, else 0.  Never allocates. */
int ct_livemap_pop(ct_livemap *m, const void *block, uint32_t *index);

/* 1 and *index if present, else 0. */
int ct_livemap_get(const ct_livemap *m, const void *block, uint32_t *index);

/* Call fn(index, arg) for every key's record number (any order). */
void ct_livemap_each(const ct_livemap *m, void (*fn)(uint32_t index, void *arg), void *arg);

/* Bytes held by the map. */
size_t ct_livemap_footprint(const ct_livemap *m);

/* Exercise the map against a reference with `n` pseudo-random operations
 * from `seed` (tests): the number of disagreements, or -1 when out of
 * memory. */
long ct_livemap_selftest(uint64_t seed, size_t n);

#endif
