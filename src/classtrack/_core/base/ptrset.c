/* ptrset.c - see ptrset.h for the design and its invariants.
 *
 * ct_ptrset invariant: when slots != NULL, pages * 2 <= capacity, so
 * every probe loop terminates on an empty slot.  Growth doubles the
 * capacity and re-inserts the pages with their bitmaps.
 * ct_ptrmap: resized only by its owner, which keeps it below 70% full.
 */
#include "base/ptrset.h"
#include "base/bigmem.h"

#include <stdlib.h>
#include <string.h>

#define PTRSET_MIN_CAPACITY 64

void
ct_ptrset_init(ct_ptrset *s)
{
    memset(s, 0, sizeof(*s));
}

void
ct_ptrset_clear(ct_ptrset *s)
{
    ct_big_free(s->slots);
    ct_ptrset_init(s);
}

static int
ptrset_resize(ct_ptrset *s, size_t capacity)
{
    ct_ptrset_page *old = s->slots;
    size_t old_cap = old ? s->mask + 1 : 0;
    ct_ptrset_page *slots = capacity <= SIZE_MAX / sizeof(ct_ptrset_page)
        ? ct_big_alloc(capacity * sizeof(ct_ptrset_page), 1) : NULL;
    if (slots == NULL) {
        return -1;
    }
    s->slots = slots;
    s->mask = capacity - 1;
    for (size_t j = 0; j < old_cap; j++) {
        if (old[j].page != 0) {
            *ct_ptrset_slot(s, old[j].page) = old[j];
        }
    }
    ct_big_free(old);
    return 0;
}

int
ct_ptrset_reserve(ct_ptrset *s, size_t pages)
{
    size_t cap = PTRSET_MIN_CAPACITY;
    while (cap / 2 < pages && cap < ((size_t)1 << 40)) {
        cap *= 2;
    }
    if (s->slots != NULL || cap == PTRSET_MIN_CAPACITY) {
        return 0;
    }
    return ptrset_resize(s, cap);
}

int
ct_ptrset_add_page(ct_ptrset *s, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    uintptr_t page = a >> 12;
    unsigned bit = (unsigned)(a >> 4) & 255u;
    uint64_t mask = (uint64_t)1 << (bit & 63);
    if (s->slots == NULL && ptrset_resize(s, PTRSET_MIN_CAPACITY) < 0) {
        return -1;
    }
    ct_ptrset_page *e = ct_ptrset_slot(s, page);
    if (e->page == 0) {
        if ((s->pages + 1) * 2 > s->mask + 1) {
            if (ptrset_resize(s, (s->mask + 1) * 2) < 0) {
                return -1;
            }
            e = ct_ptrset_slot(s, page);
        }
        e->page = page;
        s->pages++;
    }
    else if (e->bits[bit >> 6] & mask) {
        return 0;
    }
    e->bits[bit >> 6] |= mask;
    s->used++;
    return 1;
}

size_t
ct_ptrset_footprint(const ct_ptrset *s)
{
    return s->slots == NULL ? 0 : (s->mask + 1) * sizeof(ct_ptrset_page);
}

int
ct_ptrmap_resize(ct_ptrmap *m, size_t cap)
{
    ct_ptrmap_slot *slots = cap <= SIZE_MAX / sizeof(*slots)
        ? ct_big_alloc(cap * sizeof(*slots), 1) : NULL;
    if (slots == NULL) {
        return -1;
    }
    ct_ptrmap old = *m;
    m->slots = slots;
    m->cap = cap;
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].key != 0) {
            ct_ptrmap_slot *e = ct_ptrmap_slot_of(m, (const void *)old.slots[i].key);
            ct_ptrmap_fill(m, e, (const void *)old.slots[i].key, old.slots[i].val);
        }
    }
    ct_big_free(old.slots);
    return 0;
}

void
ct_ptrmap_clear(ct_ptrmap *m)
{
    ct_big_free(m->slots);
    m->slots = NULL;
    m->cap = 0;
    m->n = 0;
}
