/* livemap.c - see livemap.h for the design.
 *
 * Invariants: when keys != NULL, npages * 2 <= capacity, so probe loops end
 * on an empty slot; every occupied slot has 1 <= n <= cap, exactly n bits
 * set, and units[0 .. n) are the set bits' units, each once, with index[k]
 * the record number of units[k]; units[n .. cap) are zero.  last_page != 0
 * implies last points at that page's entry (every move of entries resets
 * last_page).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "livemap.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define LIVEMAP_MIN_CAPACITY 64
#define PAGE_FIRST_CAP 16u      /* pairs; grows x4 up to 256 (units per page) */
#define PAGE_MAX_CAP 256u

#define page_hash ct_livemap_hash

/* Position of unit u among units[0 .. n); u is there (its bit is set). */
static inline unsigned
find_unit(const ct_livepage *pg, unsigned u)
{
    const uint8_t *units = ct_livepage_units(pg);
    unsigned n = pg->n;
#if defined(__SSE2__)
    /* cap is a multiple of 16, so every 16-byte load stays inside */
    __m128i key = _mm_set1_epi8((char)u);
    for (unsigned k = 0; k < n; k += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(units + k));
        unsigned hit = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, key));
        if (n - k < 16) {
            hit &= (1u << (n - k)) - 1u;
        }
        if (hit != 0) {
            return k + (unsigned)__builtin_ctz(hit);
        }
    }
#else
    for (unsigned k = 0; k < n; k++) {
        if (units[k] == u) {
            return k;
        }
    }
#endif
    return n;   /* unreachable while the invariants hold */
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

/* index and units of `cap` pairs in one block, units zeroed. */
static uint32_t *
pairs_new(unsigned cap)
{
    uint32_t *idx = PyMem_RawMalloc((size_t)cap * (sizeof(uint32_t) + 1));
    if (idx != NULL) {
        memset(idx + cap, 0, cap);
    }
    return idx;
}

static int
page_grow(ct_livepage *pg)
{
    unsigned old = pg->cap;
    unsigned cap = old * 4u > PAGE_MAX_CAP ? PAGE_MAX_CAP : old * 4u;
    uint32_t *idx = PyMem_RawRealloc(pg->index, (size_t)cap * (sizeof(uint32_t) + 1));
    if (idx == NULL) {
        return -1;
    }
    /* the units moved with the realloc to idx + old; they belong at idx + cap */
    memmove((uint8_t *)(idx + cap), (uint8_t *)(idx + old), old);
    memset((uint8_t *)(idx + cap) + old, 0, cap - old);
    pg->index = idx;
    pg->cap = (uint16_t)cap;
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
    ct_livepage *pg;
    if (page == m->last_page) {
        pg = m->last;
    }
    else {
        size_t i = find_slot(m, page);
        if (m->keys[i] == 0) {
            if ((m->npages + 1) * 2 > m->mask + 1) {
                if (livemap_resize(m, (m->mask + 1) * 2) < 0) {
                    return -1;
                }
                i = find_slot(m, page);
            }
            uint32_t *idx = pairs_new(PAGE_FIRST_CAP);
            if (idx == NULL) {
                return -1;
            }
            m->keys[i] = page;
            memset(&m->pages[i], 0, sizeof(ct_livepage));
            m->pages[i].index = idx;
            m->pages[i].cap = PAGE_FIRST_CAP;
            m->npages++;
            filter_set(m, page);
        }
        pg = &m->pages[i];
        m->last_page = page;
        m->last = pg;
    }
    if (pg->bits[u >> 6] & bit) {
        unsigned k = find_unit(pg, u);
        *old = pg->index[k];
        pg->index[k] = index;
        return 1;
    }
    if (pg->n == pg->cap && page_grow(pg) < 0) {
        return -1;
    }
    pg->bits[u >> 6] |= bit;
    pg->index[pg->n] = index;
    ct_livepage_units(pg)[pg->n] = (uint8_t)u;
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
    *index = pg->index[find_unit(pg, u)];
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
    unsigned k = find_unit(pg, u);
    uint8_t *units = ct_livepage_units(pg);
    unsigned last = pg->n - 1u;
    *index = pg->index[k];
    pg->index[k] = pg->index[last];
    units[k] = units[last];
    units[last] = 0;
    pg->bits[u >> 6] &= ~bit;
    pg->n--;
    m->count--;
    if (pg->n == 0) {
        delete_slot(m, slot);
    }
    return 1;
}

int
ct_livemap_pop(ct_livemap *m, const void *block, uint32_t *index)
{
    uintptr_t page = (uintptr_t)block >> 12;
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

size_t
ct_livemap_footprint(const ct_livemap *m)
{
    if (m->keys == NULL) {
        return 0;
    }
    size_t bytes = (m->mask + 1) * (sizeof(uintptr_t) + sizeof(ct_livepage) + 1);
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->keys[i] != 0) {
            bytes += m->pages[i].cap * (sizeof(uint32_t) + 1);
        }
    }
    return bytes;
}

/* -- self-test ------------------------------------------------------------ */

static uint64_t
xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* The reference: block slot b of a small arena of 16-byte units -> record
 * number + 1 (0 = absent).  Blocks come from a few dozen pages, dense in
 * some, so pages fill up, empty, and probe runs collide and shift. */
long
ct_livemap_selftest(uint64_t seed, size_t n)
{
    enum { PAGES = 48, UNITS = PAGES * 256 };
    uint32_t *ref = PyMem_RawCalloc(UNITS, sizeof(uint32_t));
    if (ref == NULL) {
        return -1;
    }
    ct_livemap m;
    memset(&m, 0, sizeof(m));
    long bad = 0;
    uint64_t s = seed | 1u;
    /* pages spread over the address space so that their hashes collide
     * in every way; page numbers never 0 */
    uintptr_t base = (uintptr_t)0x5a000 << 12;
    for (size_t step = 0; step < n; step++) {
        uint64_t r = xorshift(&s);
        unsigned pg = (unsigned)(r % PAGES);
        /* concentrate on a few units of the page half the time */
        unsigned u = (r >> 20) & 1 ? (unsigned)((r >> 8) % 256) : (unsigned)((r >> 8) % 12);
        size_t key = (size_t)pg * 256 + u;
        uintptr_t page_no = (base >> 12) + (uintptr_t)pg * (pg % 3 == 0 ? 1 : 4099);
        const void *block = (const void *)((page_no << 12) | ((uintptr_t)u << 4));
        unsigned op = (unsigned)((r >> 32) % 10);
        uint32_t got = 0, old = 0;
        if (op < 5) {           /* insert or replace */
            uint32_t val = (uint32_t)(step & 0x7fffffff);
            int rc = (op == 0 && m.last_page == ((uintptr_t)block >> 12) && ref[key] == 0)
                     ? (ct_livemap_put_last(&m, block, val) ? 0 : ct_livemap_put(&m, block, val, &old))
                     : ct_livemap_put(&m, block, val, &old);
            if (rc < 0) {
                bad = -1;
                break;
            }
            if (rc != (ref[key] != 0) || (rc == 1 && old + 1 != ref[key])) {
                bad++;
            }
            ref[key] = val + 1;
        }
        else if (op < 8) {      /* remove */
            int had = ct_livemap_maybe(&m, block) && ct_livemap_pop(&m, block, &got);
            if (had != (ref[key] != 0) || (had && got + 1 != ref[key])) {
                bad++;
            }
            ref[key] = 0;
        }
        else {                  /* look up */
            int has = ct_livemap_get(&m, block, &got);
            if (has != (ref[key] != 0) || (has && got + 1 != ref[key])) {
                bad++;
            }
        }
    }
    /* every key the reference holds is found, and the count agrees */
    size_t live = 0;
    for (size_t key = 0; bad >= 0 && key < UNITS; key++) {
        if (ref[key] == 0) {
            continue;
        }
        live++;
        unsigned pg = (unsigned)(key / 256), u = (unsigned)(key % 256);
        uintptr_t page_no = (base >> 12) + (uintptr_t)pg * (pg % 3 == 0 ? 1 : 4099);
        const void *block = (const void *)((page_no << 12) | ((uintptr_t)u << 4));
        uint32_t got;
        if (!ct_livemap_get(&m, block, &got) || got + 1 != ref[key]) {
            bad++;
        }
    }
    if (bad >= 0 && live != m.count) {
        bad++;
    }
    ct_livemap_clear(&m);
    PyMem_RawFree(ref);
    return bad;
}
