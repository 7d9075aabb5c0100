/* ptrset.c - see ptrset.h for the design and its invariants.
 *
 * Invariant: when slots != NULL, used * 2 <= capacity, so every probe loop
 * terminates on an empty slot.  Growth doubles the capacity and re-inserts.
 */
#include "ptrset.h"

#include <stdlib.h>
#include <string.h>

#define PTRSET_MIN_CAPACITY 64

static inline size_t
ptr_hash(uintptr_t key)
{
    /* Objects are 16-byte aligned: drop the low bits, then mix with a
     * Fibonacci multiplier so consecutive allocations spread out. */
    uint64_t h = (uint64_t)(key >> 4) * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h ^ (h >> 29));
}

void
ct_ptrset_init(ct_ptrset *s)
{
    s->slots = NULL;
    s->mask = 0;
    s->used = 0;
}

void
ct_ptrset_clear(ct_ptrset *s)
{
    free(s->slots);
    ct_ptrset_init(s);
}

int
ct_ptrset_contains(const ct_ptrset *s, const void *p)
{
    uintptr_t key = (uintptr_t)p;
    if (s->slots == NULL) {
        return 0;
    }
    size_t i = ptr_hash(key) & s->mask;
    for (;;) {
        uintptr_t k = s->slots[i];
        if (k == key) {
            return 1;
        }
        if (k == 0) {
            return 0;
        }
        i = (i + 1) & s->mask;
    }
}

static int
ptrset_resize(ct_ptrset *s, size_t capacity)
{
    uintptr_t *slots = calloc(capacity, sizeof(uintptr_t));
    if (slots == NULL) {
        return -1;
    }
    size_t mask = capacity - 1;
    if (s->slots != NULL) {
        for (size_t j = 0; j <= s->mask; j++) {
            uintptr_t k = s->slots[j];
            if (k != 0) {
                size_t i = ptr_hash(k) & mask;
                while (slots[i] != 0) {
                    i = (i + 1) & mask;
                }
                slots[i] = k;
            }
        }
        free(s->slots);
    }
    s->slots = slots;
    s->mask = mask;
    return 0;
}

int
ct_ptrset_add(ct_ptrset *s, const void *p)
{
    uintptr_t key = (uintptr_t)p;
    if (s->slots == NULL) {
        if (ptrset_resize(s, PTRSET_MIN_CAPACITY) < 0) {
            return -1;
        }
    }
    size_t i = ptr_hash(key) & s->mask;
    for (;;) {
        uintptr_t k = s->slots[i];
        if (k == key) {
            return 0;
        }
        if (k == 0) {
            break;
        }
        i = (i + 1) & s->mask;
    }
    if ((s->used + 1) * 2 > s->mask + 1) {
        if (ptrset_resize(s, (s->mask + 1) * 2) < 0) {
            return -1;
        }
        i = ptr_hash(key) & s->mask;
        while (s->slots[i] != 0) {
            i = (i + 1) & s->mask;
        }
    }
    s->slots[i] = key;
    s->used++;
    return 1;
}

size_t
ct_ptrset_footprint(const ct_ptrset *s)
{
    return s->slots == NULL ? 0 : (s->mask + 1) * sizeof(uintptr_t);
}
