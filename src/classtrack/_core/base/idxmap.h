/* idxmap.h - a map from record number (uint32_t) to a nonzero uint64_t,
 * outside Python's and malloc's heaps (ct_idxmap).
 *
 * Used for the digests of the reprs a tracker handed off to its dump
 * stream (tracker.h): one 16-byte slot per live record with a custom
 * repr, where a dict of Python ints and strings cost about ten times as
 * much and, spread among the program's objects, kept its memory pools
 * from being given back.
 *
 * Design: open addressing with linear probing over a power-of-two array
 * from ct_big_alloc (bigmem.h), at most 70% full; slot key = record
 * number + 1, 0 for an empty slot.  Single keys are not deleted: the
 * owner rebuilds the map keeping what it still needs (ct_idxmap_retain).
 * No Python, no exception: failures return -1 and leave the map as it
 * was. */
#ifndef CLASSTRACK_IDXMAP_H
#define CLASSTRACK_IDXMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t key;       /* record number + 1; 0: empty */
    uint32_t unused;
    uint64_t val;       /* nonzero */
} ct_idxmap_slot;

typedef struct {
    ct_idxmap_slot *slots;  /* NULL while cap == 0 */
    size_t cap;             /* 0 or a power of two */
    size_t n;               /* keys stored */
} ct_idxmap;

/* The value stored for `idx`, or 0. */
uint64_t ct_idxmap_get(const ct_idxmap *m, uint32_t idx);
/* Stores idx -> val (val != 0), growing the map as needed.  0, or -1 when
 * out of memory (the map is unchanged). */
int ct_idxmap_put(ct_idxmap *m, uint32_t idx, uint64_t val);
/* Keeps only the keys for which keep(ctx, idx) is nonzero, in a map sized
 * for them.  0, or -1 when out of memory (the map is unchanged). */
int ct_idxmap_retain(ct_idxmap *m, int (*keep)(void *ctx, uint32_t idx), void *ctx);
/* Frees the slots; the map is empty and usable afterwards. */
void ct_idxmap_clear(ct_idxmap *m);
/* Bytes held by the map's slots. */
size_t ct_idxmap_footprint(const ct_idxmap *m);

#endif
