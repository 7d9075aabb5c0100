/* ptrset.h - a set of object addresses, as page bitmaps in a hash table
 * (ct_ptrset); and a map from object address to uint32_t (ct_ptrmap,
 * below).
 *
 * Design: keys are addresses of Python objects, never dereferenced and
 * never reference-counted.  Every object is at least 16 bytes and objects
 * do not overlap, so two objects never share a 16-byte unit: an address is
 * identified by (address >> 4).  The set keeps one 256-bit bitmap per 4 KiB
 * page, and the pages in an open-addressing table (linear probing,
 * power-of-two size, at most half full, page number 0 marks an empty slot:
 * nothing lives in the first page of the address space).
 *
 * Why not a plain hash set of pointers: objects built together sit in the
 * same pages, so a whole heap of objects maps to a table that fits in the
 * CPU cache, where a pointer table is many megabytes of random accesses.
 * This is what makes sizing faster than one gc.collect().
 *
 * No deletion of single keys: the sizer only adds (seen objects,
 * exclusions) and clears the whole set at once.
 * Memory: 40 bytes per occupied page (x2 for the table's slack), from
 * ct_big_alloc (bigmem.h): a large table is unmapped when freed, never
 * left as a hole in the program's malloc heap.
 */
#ifndef CLASSTRACK_PTRSET_H
#define CLASSTRACK_PTRSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uintptr_t page;     /* address >> 12; 0 for an empty slot */
    uint64_t bits[4];   /* bit (address >> 4) & 255 */
} ct_ptrset_page;

typedef struct {
    ct_ptrset_page *slots;  /* NULL until the first insertion */
    size_t mask;            /* capacity - 1; capacity is a power of two */
    size_t pages;           /* occupied slots */
    size_t used;            /* number of keys stored */
} ct_ptrset;

/* A zeroed ct_ptrset is a valid empty set. */
void ct_ptrset_init(ct_ptrset *s);
/* Free the slot array; the set is empty and usable afterwards. */
void ct_ptrset_clear(ct_ptrset *s);

/* Room for `pages` pages without growing, in an empty set (a caller that
 * knows how many to expect skips the doublings, during each of which the
 * old and the new table are held at once).  0, or -1 when out of memory
 * (the set is unchanged and still usable). */
int ct_ptrset_reserve(ct_ptrset *s, size_t pages);

/* Lookups and insertions into a page already present are inline: the
 * sizer makes several per object it sizes, and a call each cost more
 * than the probe. */

static inline size_t
ct_ptrset_hash(uintptr_t page)
{
    uint64_t h = (uint64_t)page * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h ^ (h >> 29));
}

/* The slot holding `page`, or the empty slot where it would go (slots
 * not NULL: at most half of them are full, so the probe ends). */
static inline ct_ptrset_page *
ct_ptrset_slot(const ct_ptrset *s, uintptr_t page)
{
    size_t i = ct_ptrset_hash(page) & s->mask;
    for (;;) {
        ct_ptrset_page *e = &s->slots[i];
        if (e->page == page || e->page == 0) {
            return e;
        }
        i = (i + 1) & s->mask;
    }
}

/* 1 if present, 0 if not. */
static inline int
ct_ptrset_contains(const ct_ptrset *s, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (s->slots == NULL) {
        return 0;
    }
    const ct_ptrset_page *e = ct_ptrset_slot(s, a >> 12);
    unsigned bit = (unsigned)(a >> 4) & 255u;
    return e->page != 0 && ((e->bits[bit >> 6] >> (bit & 63)) & 1u);
}

/* ct_ptrset_add for a key whose page is not in the set yet. */
int ct_ptrset_add_page(ct_ptrset *s, const void *p);

/* Insert p.  Returns 1 if it was added, 0 if it was already present,
 * -1 on allocation failure (no Python exception is set). */
static inline int
ct_ptrset_add(ct_ptrset *s, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (s->slots != NULL) {
        ct_ptrset_page *e = ct_ptrset_slot(s, a >> 12);
        if (e->page != 0) {
            unsigned bit = (unsigned)(a >> 4) & 255u;
            uint64_t mask = (uint64_t)1 << (bit & 63);
            if (e->bits[bit >> 6] & mask) {
                return 0;
            }
            e->bits[bit >> 6] |= mask;
            s->used++;
            return 1;
        }
    }
    return ct_ptrset_add_page(s, p);
}

/* Bytes held by the set's own storage. */
size_t ct_ptrset_footprint(const ct_ptrset *s);

/* ---- ct_ptrmap: object address -> uint32_t ----
 *
 * Design: open addressing with linear probing over a power-of-two array
 * of (key, value) slots, so a lookup costs one cache miss; key 0 marks an
 * empty slot (no object lives at address 0).  Keys are addresses, never
 * dereferenced nor reference-counted.  The owner decides when to grow
 * (ct_ptrmap_resize) and keeps the map at most 70% full, so every probe
 * ends on an empty slot.  No deletion of single keys.  Memory from
 * ct_big_alloc (bigmem.h), as the set's: invisible to the collector.  Used by the heap graph (node
 * numbers) and the class hooks (entry numbers). */

typedef struct {
    uintptr_t key;      /* the address, 0 for an empty slot */
    uint32_t val;
} ct_ptrmap_slot;

typedef struct {
    ct_ptrmap_slot *slots;  /* NULL while cap == 0 */
    size_t cap;             /* 0 or a power of two */
    size_t n;               /* keys stored */
} ct_ptrmap;

/* Home slot number of address k in a map of capacity cap (> 0). */
static inline size_t
ct_ptrmap_home(uintptr_t k, size_t cap)
{
    return (size_t)((k >> 4) * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (cap - 1);
}

/* The slot holding p, or the empty slot where p would go (cap > 0). */
static inline ct_ptrmap_slot *
ct_ptrmap_slot_of(const ct_ptrmap *m, const void *p)
{
    uintptr_t k = (uintptr_t)p;
    size_t j = ct_ptrmap_home(k, m->cap);
    while (m->slots[j].key != 0 && m->slots[j].key != k) {
        j = (j + 1) & (m->cap - 1);
    }
    return &m->slots[j];
}

/* 1 and *val if p is a key, else 0. */
static inline int
ct_ptrmap_get(const ct_ptrmap *m, const void *p, uint32_t *val)
{
    if (m->cap == 0) {
        return 0;
    }
    const ct_ptrmap_slot *e = ct_ptrmap_slot_of(m, p);
    if (e->key == 0) {
        return 0;
    }
    *val = e->val;
    return 1;
}

/* Store p -> val in the slot ct_ptrmap_slot_of(m, p) returned (`e`,
 * empty), with room for it (the caller checked the load). */
static inline void
ct_ptrmap_fill(ct_ptrmap *m, ct_ptrmap_slot *e, const void *p, uint32_t val)
{
    e->key = (uintptr_t)p;
    e->val = val;
    m->n++;
}

/* Rehash into `cap` slots (a power of two above n).  0, or -1 (no
 * exception set: out of memory; the map is unchanged). */
int ct_ptrmap_resize(ct_ptrmap *m, size_t cap);

/* Free the slots; the map is empty and usable afterwards. */
void ct_ptrmap_clear(ct_ptrmap *m);

#endif
