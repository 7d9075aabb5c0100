/* livemap.c - see livemap.h for the design.
 *
 * Invariants: when slots != NULL, ndirs * 2 <= capacity, so probe loops
 * end on an empty slot; in every occupied slot, bit j of pages is set
 * exactly when page[j] of its directory is not NULL, and pages != 0; every page has 1 <= n <= cap, exactly n bits set, and
 * units[0 .. n) are the set bits' units, each once, with index[k] the
 * record number of units[k]; units[n .. cap) are zero.  last_page != 0
 * implies last is that page's entry (freeing or moving an entry resets
 * last_page).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "tracker/livemap.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define TABLE_MIN_CAPACITY 16
/* Pairs per page: 16 or 32 at first (32 when that many blocks fit a page,
 * so that pages of small objects made together skip one growth; an
 * isolated object's page costs at most 200 bytes), then x4 up to 256
 * (units per page).  Always a multiple of 16. */
#define PAGE_SMALL_CAP 16u
#define PAGE_FIRST_CAP 32u
#define PAGE_MAX_CAP 256u

#define DIR_OF(a) ((uintptr_t)(a) >> CT_LIVEMAP_DIR_SHIFT)
#define PAGE_IN_DIR(a) (((uintptr_t)(a) >> CT_LIVEMAP_PAGE_SHIFT) & (CT_LIVEMAP_DIR_PAGES - 1))

static inline size_t
page_bytes(unsigned cap)
{
    return sizeof(ct_livepage) + (size_t)cap * (sizeof(uint32_t) + 1);
}

/* Position of unit u among units[0 .. n); u is there (its bit is set). */
static inline unsigned
find_unit(ct_livepage *pg, unsigned u)
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

/* Slot of directory d, or the empty slot ending its probe run. */
static inline size_t
find_slot(const ct_livemap *m, uintptr_t d)
{
    size_t i = ct_livemap_hash(d) & m->mask;
    for (;;) {
        uintptr_t k = m->slots[i].key;
        if (k == d || k == 0) {
            return i;
        }
        i = (i + 1) & m->mask;
    }
}

void
ct_livemap_clear(ct_livemap *m)
{
    for (size_t i = 0; m->slots != NULL && i <= m->mask; i++) {
        if (m->slots[i].key == 0) {
            continue;
        }
        ct_livedir *dir = m->dirs[i];
        for (unsigned j = 0; j < CT_LIVEMAP_DIR_PAGES; j++) {
            PyMem_RawFree(dir->page[j]);
        }
        PyMem_RawFree(dir);
    }
    PyMem_RawFree(m->slots);
    PyMem_RawFree(m->dirs);
    memset(m, 0, sizeof(*m));
}

static int
table_resize(ct_livemap *m, size_t capacity)
{
    ct_liveslot *slots = PyMem_RawCalloc(capacity, sizeof(ct_liveslot));
    ct_livedir **dirs = PyMem_RawMalloc(capacity * sizeof(ct_livedir *));
    if (slots == NULL || dirs == NULL) {
        PyMem_RawFree(slots);
        PyMem_RawFree(dirs);
        return -1;
    }
    ct_liveslot *old_slots = m->slots;
    ct_livedir **old_dirs = m->dirs;
    size_t old_cap = old_slots ? m->mask + 1 : 0;
    m->slots = slots;
    m->dirs = dirs;
    m->mask = capacity - 1;
    for (size_t j = 0; j < old_cap; j++) {
        if (old_slots[j].key != 0) {
            size_t i = find_slot(m, old_slots[j].key);
            slots[i] = old_slots[j];
            dirs[i] = old_dirs[j];
        }
    }
    PyMem_RawFree(old_slots);
    PyMem_RawFree(old_dirs);
    return 0;
}

/* The slot of the directory of address a, made if needed (with no page
 * yet: the caller sets its first); 0 and *slot, or -1 when out of memory. */
static int
slot_for(ct_livemap *m, uintptr_t a, size_t *slot)
{
    uintptr_t d = DIR_OF(a);
    if (m->slots == NULL && table_resize(m, TABLE_MIN_CAPACITY) < 0) {
        return -1;
    }
    size_t i = find_slot(m, d);
    if (m->slots[i].key == d) {
        *slot = i;
        return 0;
    }
    if ((m->ndirs + 1) * 2 > m->mask + 1) {
        if (table_resize(m, (m->mask + 1) * 2) < 0) {
            return -1;
        }
        i = find_slot(m, d);
    }
    ct_livedir *dir = PyMem_RawCalloc(1, sizeof(ct_livedir));
    if (dir == NULL) {
        return -1;
    }
    m->slots[i].key = d;
    m->slots[i].pages = 0;
    m->dirs[i] = dir;
    m->ndirs++;
    *slot = i;
    return 0;
}

/* Delete the directory in slot i (now empty), shifting the rest of its
 * probe run back. */
static void
delete_slot(ct_livemap *m, size_t i)
{
    PyMem_RawFree(m->dirs[i]);
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        uintptr_t k = m->slots[j].key;
        if (k == 0) {
            break;
        }
        size_t home = ct_livemap_hash(k) & m->mask;
        /* move j into the hole unless its home lies cyclically in (hole, j] */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            m->slots[hole] = m->slots[j];
            m->dirs[hole] = m->dirs[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->slots[hole].pages = 0;
    m->ndirs--;
}

static ct_livepage *
page_new(unsigned cap)
{
    ct_livepage *pg = PyMem_RawMalloc(page_bytes(cap));
    if (pg != NULL) {
        memset(pg->bits, 0, sizeof(pg->bits));
        pg->n = 0;
        pg->cap = (uint16_t)cap;
        memset(ct_livepage_units(pg), 0, cap);
    }
    return pg;
}

/* The page grown x4; the old entry is gone (NULL and unchanged when out
 * of memory). */
static ct_livepage *
page_grow(ct_livepage *pg)
{
    unsigned old = pg->cap;
    unsigned cap = old * 4u > PAGE_MAX_CAP ? PAGE_MAX_CAP : old * 4u;
    ct_livepage *g = PyMem_RawRealloc(pg, page_bytes(cap));
    if (g == NULL) {
        return NULL;
    }
    /* the units moved with the realloc to index + old; they belong at
     * index + cap (no overlap: cap >= 4 * old) */
    uint8_t *from = (uint8_t *)(g->index + old);
    g->cap = (uint16_t)cap;
    memmove(ct_livepage_units(g), from, old);
    memset(ct_livepage_units(g) + old, 0, cap - old);
    return g;
}

int
ct_livemap_put(ct_livemap *m, const void *block, uint32_t index, uint32_t *old,
               unsigned per_page)
{
    uintptr_t a = (uintptr_t)block;
    unsigned u = ct_livepage_unit(block);
    size_t i;
    if (slot_for(m, a, &i) < 0) {
        return -1;
    }
    ct_livedir *dir = m->dirs[i];
    unsigned j = PAGE_IN_DIR(a);
    ct_livepage *pg = dir->page[j];
    if (pg == NULL) {
        pg = page_new(per_page >= PAGE_FIRST_CAP ? PAGE_FIRST_CAP : PAGE_SMALL_CAP);
        if (pg == NULL) {
            if (m->slots[i].pages == 0) {
                /* the directory was made for this key: drop it again */
                delete_slot(m, i);
            }
            return -1;
        }
        dir->page[j] = pg;
        m->slots[i].pages |= (uint64_t)1 << j;
        m->npages++;
    }
    if (ct_livepage_has(pg, u)) {
        unsigned k = find_unit(pg, u);
        *old = pg->index[k];
        pg->index[k] = index;
        return 1;
    }
    if (pg->n == pg->cap) {
        ct_livepage *g = page_grow(pg);
        if (g == NULL) {
            return -1;
        }
        pg = dir->page[j] = g;
    }
    ct_livepage_append(m, pg, u, index);
    m->last_page = a >> CT_LIVEMAP_PAGE_SHIFT;
    m->last = pg;
    return 0;
}

int
ct_livemap_get(const ct_livemap *m, const void *block, uint32_t *index)
{
    ct_livepage *pg = ct_livemap_page_of(m, block);
    unsigned u = ct_livepage_unit(block);
    if (pg == NULL || !ct_livepage_has(pg, u)) {
        return 0;
    }
    *index = pg->index[find_unit(pg, u)];
    return 1;
}

int
ct_livemap_pop(ct_livemap *m, const void *block, uint32_t *index)
{
    uintptr_t a = (uintptr_t)block;
    if (m->count == 0 || DIR_OF(a) == 0) {
        return 0;
    }
    size_t i = find_slot(m, DIR_OF(a));
    if (m->slots[i].key == 0) {
        return 0;
    }
    ct_livedir *dir = m->dirs[i];
    unsigned j = PAGE_IN_DIR(a);
    ct_livepage *pg = dir->page[j];
    unsigned u = ct_livepage_unit(block);
    if (pg == NULL || !ct_livepage_has(pg, u)) {
        return 0;
    }
    unsigned k = find_unit(pg, u);
    uint8_t *units = ct_livepage_units(pg);
    unsigned last = pg->n - 1u;
    *index = pg->index[k];
    pg->index[k] = pg->index[last];
    units[k] = units[last];
    units[last] = 0;
    pg->bits[u >> 6] &= ~((uint64_t)1 << (u & 63));
    pg->n--;
    m->count--;
    if (pg->n == 0) {
        if (m->last == pg) {
            m->last_page = 0;
        }
        PyMem_RawFree(pg);
        dir->page[j] = NULL;
        m->npages--;
        m->slots[i].pages &= ~((uint64_t)1 << j);
        if (m->slots[i].pages == 0) {
            delete_slot(m, i);
        }
    }
    return 1;
}

void
ct_livemap_each(const ct_livemap *m, void (*fn)(uint32_t index, void *arg), void *arg)
{
    for (size_t i = 0; m->slots != NULL && i <= m->mask; i++) {
        if (m->slots[i].key == 0) {
            continue;
        }
        ct_livedir *dir = m->dirs[i];
        for (unsigned j = 0; j < CT_LIVEMAP_DIR_PAGES; j++) {
            ct_livepage *pg = dir->page[j];
            for (unsigned k = 0; pg != NULL && k < pg->n; k++) {
                fn(pg->index[k], arg);
            }
        }
    }
}

size_t
ct_livemap_footprint(const ct_livemap *m)
{
    if (m->slots == NULL) {
        return 0;
    }
    size_t bytes = (m->mask + 1) * (sizeof(ct_liveslot) + sizeof(ct_livedir *))
                   + m->ndirs * sizeof(ct_livedir);
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->slots[i].key == 0) {
            continue;
        }
        for (unsigned j = 0; j < CT_LIVEMAP_DIR_PAGES; j++) {
            if (m->dirs[i]->page[j] != NULL) {
                bytes += page_bytes(m->dirs[i]->page[j]->cap);
            }
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

/* Occupied slots whose page mask does not name exactly the non-NULL
 * pages of their directory (or is 0). */
static long
masks_wrong(const ct_livemap *m)
{
    long wrong = 0;
    for (size_t i = 0; m->slots != NULL && i <= m->mask; i++) {
        uint64_t pages = 0;
        for (unsigned j = 0; m->slots[i].key != 0 && j < CT_LIVEMAP_DIR_PAGES; j++) {
            pages |= (uint64_t)(m->dirs[i]->page[j] != NULL) << j;
        }
        if (pages != m->slots[i].pages || (m->slots[i].key != 0 && pages == 0)) {
            wrong++;
        }
    }
    return wrong;
}

/* The test's block of unit u of test page pg: pages spread over the
 * address space so that their hashes collide in every way (page numbers
 * never 0), every third one next to the previous. */
static const void *
test_block(unsigned pg, unsigned u)
{
    uintptr_t page_no = ((uintptr_t)0x5a000 + (uintptr_t)pg * (pg % 3 == 0 ? 1 : 4099));
    return (const void *)((page_no << 12) | ((uintptr_t)u << 4));
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
    for (size_t step = 0; step < n; step++) {
        uint64_t r = xorshift(&s);
        unsigned pg = (unsigned)(r % PAGES);
        /* concentrate on a few units of the page half the time */
        unsigned u = (r >> 20) & 1 ? (unsigned)((r >> 8) % 256) : (unsigned)((r >> 8) % 12);
        size_t key = (size_t)pg * 256 + u;
        const void *block = test_block(pg, u);
        /* windows of 16,384 steps that mostly insert, then only remove:
         * pages and directories empty and come back, probe runs shift */
        unsigned op = (unsigned)((r >> 32) % 10);
        if ((step >> 14) & 1) {
            op = op < 9 ? 5 + op % 3 : 8;
        }
        uint32_t got = 0, old = 0;
        if (op < 5) {           /* insert or replace */
            uint32_t val = (uint32_t)(step & 0x7fffffff);
            int rc = (op == 0 && m.last_page == ((uintptr_t)block >> 12) && ref[key] == 0)
                     ? (ct_livemap_put_last(&m, block, val) ? 0
                        : ct_livemap_put(&m, block, val, &old, (unsigned)(r >> 40) & 255u))
                     : ct_livemap_put(&m, block, val, &old, (unsigned)(r >> 40) & 255u);
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
            int had = ct_livemap_pop(&m, block, &got);
            if (had != (ref[key] != 0) || (had && got + 1 != ref[key])) {
                bad++;
            }
            ref[key] = 0;
            if (ct_livemap_get(&m, block, &got)) {
                bad++;      /* still there after its removal */
            }
            if (had && (step & 15) == 0) {
                bad += masks_wrong(&m);
            }
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
        const void *block = test_block(pg, u);
        uint32_t got;
        if (!ct_livemap_get(&m, block, &got) || got + 1 != ref[key]) {
            bad++;
        }
    }
    if (bad >= 0 && live != m.count) {
        bad++;
    }
    if (bad >= 0) {
        bad += masks_wrong(&m);
    }
    /* a NULL block is never a key (asked while the map holds keys) */
    uint32_t none;
    if (bad >= 0 && (ct_livemap_page_of(&m, NULL) != NULL || ct_livemap_pop(&m, NULL, &none)
                     || ct_livemap_get(&m, NULL, &none))) {
        bad++;
    }
    /* drain it, spread over the pages: every page and directory empties,
     * and the map ends empty */
    for (size_t k = 0; bad >= 0 && k < UNITS; k++) {
        size_t key = (k * 7919) % UNITS;
        if (ref[key] == 0) {
            continue;
        }
        unsigned pg = (unsigned)(key / 256), u = (unsigned)(key % 256);
        const void *block = test_block(pg, u);
        uint32_t got;
        if (!ct_livemap_pop(&m, block, &got) || got + 1 != ref[key]) {
            bad++;
        }
        ref[key] = 0;
        if ((k & 63) == 0) {
            bad += masks_wrong(&m);
        }
    }
    if (bad >= 0 && (m.count != 0 || m.ndirs != 0 || m.npages != 0)) {
        bad++;
    }
    ct_livemap_clear(&m);
    PyMem_RawFree(ref);
    return bad;
}
