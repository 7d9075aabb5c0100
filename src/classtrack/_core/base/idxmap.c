/* idxmap.c - see idxmap.h. */
#include "base/idxmap.h"
#include "base/bigmem.h"

static size_t
home(uint32_t key, size_t cap)
{
    return (size_t)(((uint64_t)key * UINT64_C(0x9E3779B97F4A7C15)) >> 24) & (cap - 1);
}

/* The slot holding key, or the empty slot where it would go (cap > 0,
 * the map not full). */
static ct_idxmap_slot *
slot_of(const ct_idxmap *m, uint32_t key)
{
    size_t j = home(key, m->cap);
    while (m->slots[j].key != 0 && m->slots[j].key != key) {
        j = (j + 1) & (m->cap - 1);
    }
    return &m->slots[j];
}

uint64_t
ct_idxmap_get(const ct_idxmap *m, uint32_t idx)
{
    if (m->cap == 0 || idx == UINT32_MAX) {
        return 0;
    }
    const ct_idxmap_slot *e = slot_of(m, idx + 1);
    return e->key != 0 ? e->val : 0;
}

/* m remade with `cap` slots, holding those of its keys that pass keep
 * (all when keep is NULL). */
static int
rebuild(ct_idxmap *m, size_t cap, int (*keep)(void *, uint32_t), void *ctx)
{
    ct_idxmap_slot *slots = cap <= SIZE_MAX / sizeof(*slots)
        ? ct_big_alloc(cap * sizeof(*slots), 1) : NULL;
    if (slots == NULL) {
        return -1;
    }
    ct_idxmap fresh = {slots, cap, 0};
    for (size_t i = 0; i < m->cap; i++) {
        const ct_idxmap_slot *e = &m->slots[i];
        if (e->key != 0 && (keep == NULL || keep(ctx, e->key - 1))) {
            *slot_of(&fresh, e->key) = *e;
            fresh.n++;
        }
    }
    ct_big_free(m->slots);
    *m = fresh;
    return 0;
}

int
ct_idxmap_put(ct_idxmap *m, uint32_t idx, uint64_t val)
{
    if (idx == UINT32_MAX || val == 0) {
        return -1;
    }
    if ((m->n + 1) * 10 > m->cap * 7
        && rebuild(m, m->cap ? m->cap * 2 : 1024, NULL, NULL) < 0) {
        return -1;
    }
    ct_idxmap_slot *e = slot_of(m, idx + 1);
    if (e->key == 0) {
        e->key = idx + 1;
        m->n++;
    }
    e->val = val;
    return 0;
}

int
ct_idxmap_retain(ct_idxmap *m, int (*keep)(void *ctx, uint32_t idx), void *ctx)
{
    size_t kept = 0;
    for (size_t i = 0; i < m->cap; i++) {
        kept += m->slots[i].key != 0 && keep(ctx, m->slots[i].key - 1);
    }
    if (kept == 0) {
        ct_idxmap_clear(m);
        return 0;
    }
    size_t cap = 1024;
    while (kept * 10 > cap * 5) {       /* room to grow by 40% again */
        cap *= 2;
    }
    return rebuild(m, cap, keep, ctx);
}

void
ct_idxmap_clear(ct_idxmap *m)
{
    ct_big_free(m->slots);
    m->slots = NULL;
    m->cap = 0;
    m->n = 0;
}

size_t
ct_idxmap_footprint(const ct_idxmap *m)
{
    return m->cap * sizeof(ct_idxmap_slot);
}
