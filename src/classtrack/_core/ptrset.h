/* ptrset.h - pointer-keyed open-addressing hash set.
 *
 * Design: keys are raw addresses (uintptr_t), never dereferenced and never
 * reference-counted; the set owns nothing but its slot array.  0 marks an
 * empty slot, so the NULL pointer cannot be stored (callers never need to).
 * Linear probing over a power-of-two table kept at most half full, so a
 * probe sequence always ends at an empty slot.  No deletion: the sizer only
 * ever adds (seen objects, exclusions) and clears the whole set at once.
 *
 * Cost: one multiply and, on average, fewer than two slot reads per lookup.
 * Memory: 8 bytes per slot, at most 16 bytes per element after growth.
 */
#ifndef CLASSTRACK_PTRSET_H
#define CLASSTRACK_PTRSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uintptr_t *slots;   /* NULL until the first insertion */
    size_t mask;        /* capacity - 1; capacity is a power of two */
    size_t used;        /* number of keys stored */
} ct_ptrset;

/* A zeroed ct_ptrset is a valid empty set. */
void ct_ptrset_init(ct_ptrset *s);
/* Free the slot array; the set is empty and usable afterwards. */
void ct_ptrset_clear(ct_ptrset *s);

/* 1 if present, 0 if not. */
int ct_ptrset_contains(const ct_ptrset *s, const void *p);

/* Insert p.  Returns 1 if it was added, 0 if it was already present,
 * -1 on allocation failure (no Python exception is set). */
int ct_ptrset_add(ct_ptrset *s, const void *p);

/* Bytes held by the set's own storage. */
size_t ct_ptrset_footprint(const ct_ptrset *s);

#endif
