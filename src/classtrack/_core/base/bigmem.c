/* bigmem.c - see bigmem.h.  Every buffer starts with a 16-byte header:
 * its whole length (header included), then how it was obtained (BY_MAP
 * or BY_MALLOC), so ct_big_free knows how to give it back. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "base/bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sys/mman.h>       /* mremap: pyconfig.h defines _GNU_SOURCE */
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CT_BIG_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CT_BIG_UNDER_ASAN 1
#endif

#if defined(__linux__) && defined(MAP_ANONYMOUS) && !defined(CT_BIG_UNDER_ASAN)
#define CT_BIG_MAPS 1
#endif

#define HEADER ((size_t)16)
#define BY_MALLOC ((size_t)0x6d616c6c)
#define BY_MAP ((size_t)0x6d6d6170)

void *
ct_big_alloc(size_t n, int zero)
{
    if (n == 0 || n > SIZE_MAX / 2) {
        return NULL;
    }
    size_t whole = n + HEADER;
    unsigned char *p;
#ifdef CT_BIG_MAPS
    if (whole >= CT_BIG_MIN) {
        size_t page = 4096;
        whole = (whole + page - 1) & ~(page - 1);
        void *m = mmap(NULL, whole, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            p = m;      /* fresh anonymous pages read as zeros */
            ((size_t *)p)[0] = whole;
            ((size_t *)p)[1] = BY_MAP;
            (void)PyTraceMalloc_Track(CT_TRACE_DOMAIN, (uintptr_t)p, whole);
            return p + HEADER;
        }
        /* no mapping (vm.max_map_count reached, say): malloc's turn */
        whole = n + HEADER;
    }
#endif
    p = zero ? calloc(1, whole) : malloc(whole);
    if (p == NULL) {
        return NULL;
    }
    ((size_t *)p)[0] = whole;
    ((size_t *)p)[1] = BY_MALLOC;
    return p + HEADER;
}

void
ct_big_free(void *q)
{
    if (q == NULL) {
        return;
    }
    unsigned char *p = (unsigned char *)q - HEADER;
    size_t whole = ((size_t *)p)[0], how = ((size_t *)p)[1];
    assert(how == BY_MAP || how == BY_MALLOC);
#ifdef CT_BIG_MAPS
    if (how == BY_MAP) {
        (void)PyTraceMalloc_Untrack(CT_TRACE_DOMAIN, (uintptr_t)p);
        munmap(p, whole);
        return;
    }
#endif
    (void)whole;
    (void)how;
    free(p);
}

void *
ct_big_realloc(void *q, size_t n)
{
    if (q == NULL) {
        return ct_big_alloc(n, 0);
    }
    if (n == 0 || n > SIZE_MAX / 2) {
        return NULL;
    }
    unsigned char *p = (unsigned char *)q - HEADER;
    size_t whole = ((size_t *)p)[0], how = ((size_t *)p)[1];
    size_t want = n + HEADER;
    assert(how == BY_MAP || how == BY_MALLOC);
#if defined(CT_BIG_MAPS) && defined(MREMAP_MAYMOVE)
    if (how == BY_MAP && want >= CT_BIG_MIN) {
        want = (want + 4095) & ~(size_t)4095;
        void *m = mremap(p, whole, want, MREMAP_MAYMOVE);
        if (m == MAP_FAILED) {
            return NULL;
        }
        (void)PyTraceMalloc_Untrack(CT_TRACE_DOMAIN, (uintptr_t)p);
        p = m;
        ((size_t *)p)[0] = want;
        (void)PyTraceMalloc_Track(CT_TRACE_DOMAIN, (uintptr_t)p, want);
        return p + HEADER;
    }
#endif
#ifdef CT_BIG_MAPS
    if (how == BY_MALLOC && want < CT_BIG_MIN) {
#else
    if (how == BY_MALLOC) {
#endif
        unsigned char *r = realloc(p, want);
        if (r == NULL) {
            return NULL;
        }
        ((size_t *)r)[0] = want;
        return r + HEADER;
    }
    /* across the two kinds: a new buffer, the content copied */
    unsigned char *r = ct_big_alloc(n, 0);
    if (r == NULL) {
        return NULL;
    }
    size_t keep = whole - HEADER < n ? whole - HEADER : n;
    memcpy(r, q, keep);
    ct_big_free(q);
    return r;
}
