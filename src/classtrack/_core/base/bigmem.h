/* bigmem.h - the engine's large short-lived buffers, kept out of the
 * program's malloc heap.
 *
 * Why: glibc's malloc serves a request of 128 KiB or more with its own
 * mmap, and when such a block is freed it raises its "dynamic mmap
 * threshold" to that block's size (up to 32 MiB).  From then on every
 * request below the new threshold, the program's included, is carved
 * from the brk heap, and a buffer freed in the middle of that heap is a
 * hole that is never given back.  A snapshot's arrays (one slot per
 * record: megabytes on a large run) freed through malloc did exactly
 * that: on a Sphinx build the heap ended with 27 MB free and unreturned,
 * against 6 MB without classtrack (docs/benchmarks.md).
 *
 * So a buffer of CT_BIG_MIN bytes or more is mapped here and unmapped
 * when freed: the program's malloc never sees it, its threshold never
 * moves, and pages never touched cost no memory.  Smaller buffers come
 * from malloc.  Mapped buffers are reported to tracemalloc in the
 * engine's own domain (CT_TRACE_DOMAIN), as the record chunks are.
 * Under AddressSanitizer everything comes from malloc, which ASan checks.
 *
 * Neither function calls Python beyond tracemalloc's hooks nor sets an
 * exception; both need the GIL (tracemalloc).
 */
#ifndef CLASSTRACK_BIGMEM_H
#define CLASSTRACK_BIGMEM_H

#include <stddef.h>

#define CT_BIG_MIN ((size_t)64 << 10)
#define CT_TRACE_DOMAIN 0x63740000u     /* tracemalloc domain of engine mappings */

/* n bytes (zeroed when zero != 0), 16-byte aligned; NULL when out of
 * memory or n == 0. */
void *ct_big_alloc(size_t n, int zero);
/* Frees what ct_big_alloc returned; NULL is accepted. */
void ct_big_free(void *p);
/* realloc for these buffers: p (NULL, or from ct_big_alloc) resized to n
 * bytes (n > 0), its content kept up to the smaller size; a mapped buffer
 * grows with mremap.  NULL when out of memory (p is then untouched). */
void *ct_big_realloc(void *p, size_t n);

#endif
