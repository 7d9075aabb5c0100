/* livemap.c - see livemap.h for the design.
 *
 * Invariants: when keys != NULL, npages * 2 <= capacity, so probe loops end
 * on an empty slot; every occupied slot has n >= 1 and exactly n bits set,
 * and index[0 .. n) lists the numbers in ascending unit order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "livemap.h"

#include <string.h>

#define LIVEMAP_MIN_CAPACITY 64

#define page_hash ct_livemap_hash

/* Bits set in x, without a library call when the build does not assume
 * the POPCNT instruction. */
static inline unsigned
popcount64(uint64_t x)
{
    x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
    x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
    x = (x + (x >> 4)) & UINT64_C(0x0F0F0F0F0F0F0F0F);
    return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
}

/* Slot of `page`, or the empty slot ending its probe run. */
static inline size_t
find_slot(const ct_livemap *m, uintptr_t page)
{
    size_t i = page_hash(page) & m->mask;
    for (;;) {
        uintptr_t k = m->keys[i];
        if (k == page || k == 0) {
            return i;
        }
        i = (i + 1) & m->mask;
    }
}

/* Number of keys of the page below unit u. */
static inline unsigned
rank_of(const ct_livepage *pg, unsigned u)
{
    unsigned w = u >> 6;
    uint64_t below = pg->bits[w] & (((uint64_t)1 << (u & 63)) - 1);
    return pg->below[w] + (below ? popcount64(below) : 0u);
}

/* A key was added (+1) or removed (-1) in word w. */
static inline void
adjust_below(ct_livepage *pg, unsigned w, int delta)
{
    for (unsigned k = w + 1; k < 4; k++) {
        pg->below[k] = (uint8_t)(pg->below[k] + delta);
    }
}

void
ct_livemap_clear(ct_livemap *m)
{
    if (m->keys != NULL) {
        for (size_t i = 0; i <= m->mask; i++) {
            if (m->keys[i] != 0) {
                PyMem_RawFree(m->pages[i].index);
            }
        }
    }
    PyMem_RawFree(m->keys);
    PyMem_RawFree(m->pages);
    PyMem_RawFree(m->filter);
    memset(m, 0, sizeof(*m));
}

static inline void
filter_set(ct_livemap *m, uintptr_t page)
{
    size_t fb = ct_livemap_fbit(page, m->fmask);
    m->filter[fb >> 6] |= (uint64_t)1 << (fb & 63);
}

/* Rebuild the filter from the pages present.  Never allocates. */
static void
filter_rebuild(ct_livemap *m)
{
    memset(m->filter, 0, (m->fmask + 1) / 8);
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->keys[i] != 0) {
            filter_set(m, m->keys[i]);
        }
    }
    m->stale = 0;
}

static int
livemap_resize(ct_livemap *m, size_t capacity)
{
    uintptr_t *keys = PyMem_RawCalloc(capacity, sizeof(uintptr_t));
    ct_livepage *pages = PyMem_RawMalloc(capacity * sizeof(ct_livepage));
    uint64_t *filter = PyMem_RawMalloc(capacity);     /* 8 bits per slot */
    if (keys == NULL || pages == NULL || filter == NULL) {
        PyMem_RawFree(keys);
        PyMem_RawFree(pages);
        PyMem_RawFree(filter);
        return -1;
    }
    PyMem_RawFree(m->filter);
    m->filter = filter;
    m->fmask = capacity * 8 - 1;
    m->last_page = 0;
    uintptr_t *old_keys = m->keys;
    ct_livepage *old_pages = m->pages;
    size_t old_cap = old_keys ? m->mask + 1 : 0;
    m->keys = keys;
    m->pages = pages;
    m->mask = capacity - 1;
    for (size_t j = 0; j < old_cap; j++) {
        if (old_keys[j] != 0) {
            size_t i = find_slot(m, old_keys[j]);
            keys[i] = old_keys[j];
            pages[i] = old_pages[j];
        }
    }
    PyMem_RawFree(old_keys);
    PyMem_RawFree(old_pages);
    filter_rebuild(m);
    return 0;
}

int
ct_livemap_put(ct_livemap *m, const void *block, uint32_t index, uint32_t *old)
{
    uintptr_t a = (uintptr_t)block;
    uintptr_t page = a >> 12;
    unsigned u = (unsigned)(a >> 4) & 255u;
    uint64_t bit = (uint64_t)1 << (u & 63);
    if (m->keys == NULL && livemap_resize(m, LIVEMAP_MIN_CAPACITY) < 0) {
        return -1;
    }
    /* objects made one after the other mostly share a page */
    size_t i;
    if (page == m->last_page) {
        i = m->last_slot;
        goto have_page;
    }
    i = find_slot(m, page);
    if (m->keys[i] == 0) {
        if ((m->npages + 1) * 2 > m->mask + 1) {
            if (livemap_resize(m, (m->mask + 1) * 2) < 0) {
                return -1;
            }
            i = find_slot(m, page);
        }
        uint32_t *idx = PyMem_RawMalloc(4 * sizeof(uint32_t));
        if (idx == NULL) {
            return -1;
        }
        m->keys[i] = page;
        memset(&m->pages[i], 0, sizeof(ct_livepage));
        m->pages[i].index = idx;
        m->pages[i].cap = 4;
        m->npages++;
        filter_set(m, page);
    }
    m->last_page = page;
    m->last_slot = i;
have_page:;
    ct_livepage *pg = &m->pages[i];
    unsigned r = rank_of(pg, u);
    if (pg->bits[u >> 6] & bit) {
        *old = pg->index[r];
        pg->index[r] = index;
        return 1;
    }
    if (pg->n == pg->cap) {
        unsigned cap = pg->cap * 2u > 256u ? 256u : pg->cap * 2u;
        uint32_t *idx = PyMem_RawRealloc(pg->index, cap * sizeof(uint32_t));
        if (idx == NULL) {
            return -1;
        }
        pg->index = idx;
        pg->cap = (uint16_t)cap;
    }
    if (r < pg->n) {
        memmove(&pg->index[r + 1], &pg->index[r], (pg->n - r) * sizeof(uint32_t));
    }
    pg->index[r] = index;
    pg->bits[u >> 6] |= bit;
    adjust_below(pg, u >> 6, 1);
    pg->n++;
    m->count++;
    return 0;
}

int
ct_livemap_get(const ct_livemap *m, const void *block, uint32_t *index)
{
    uintptr_t a = (uintptr_t)block;
    if (m->keys == NULL) {
        return 0;
    }
    size_t i = find_slot(m, a >> 12);
    if (m->keys[i] == 0) {
        return 0;
    }
    const ct_livepage *pg = &m->pages[i];
    unsigned u = (unsigned)(a >> 4) & 255u;
    if (!((pg->bits[u >> 6] >> (u & 63)) & 1u)) {
        return 0;
    }
    *index = pg->index[rank_of(pg, u)];
    return 1;
}

/* Remove the page in slot i, shifting the rest of its probe run back. */
static void
delete_slot(ct_livemap *m, size_t i)
{
    PyMem_RawFree(m->pages[i].index);
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        uintptr_t k = m->keys[j];
        if (k == 0) {
            break;
        }
        size_t home = page_hash(k) & m->mask;
        /* move j into the hole unless its home lies cyclically in (hole, j] */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            m->keys[hole] = k;
            m->pages[hole] = m->pages[j];
            hole = j;
        }
    }
    m->keys[hole] = 0;
    m->npages--;
    m->last_page = 0;
    if (++m->stale > (m->mask + 1) / 2) {
        filter_rebuild(m);
    }
}

int
ct_livemap_pop_page(ct_livemap *m, size_t slot, const void *block, uint32_t *index)
{
    uintptr_t a = (uintptr_t)block;
    ct_livepage *pg = &m->pages[slot];
    unsigned u = (unsigned)(a >> 4) & 255u;
    uint64_t bit = (uint64_t)1 << (u & 63);
    if (!(pg->bits[u >> 6] & bit)) {
        return 0;
    }
    unsigned r = rank_of(pg, u);
    *index = pg->index[r];
    if (r + 1u < pg->n) {
        memmove(&pg->index[r], &pg->index[r + 1], (pg->n - r - 1) * sizeof(uint32_t));
    }
    pg->bits[u >> 6] &= ~bit;
    adjust_below(pg, u >> 6, -1);
    pg->n--;
    m->count--;
    if (pg->n == 0) {
        delete_slot(m, slot);
    }
    return 1;
}

size_t
ct_livemap_footprint(const ct_livemap *m)
{
    if (m->keys == NULL) {
        return 0;
    }
    size_t bytes = (m->mask + 1) * (sizeof(uintptr_t) + sizeof(ct_livepage) + 1);
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->keys[i] != 0) {
            bytes += m->pages[i].cap * sizeof(uint32_t);
        }
    }
    return bytes;
}
