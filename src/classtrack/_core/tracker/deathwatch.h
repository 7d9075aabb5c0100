/* deathwatch.h - learning that tracked objects died from the object
 * allocator, without a weak reference per object.
 *
 * Every object's memory goes back through the object domain's free
 * function when it dies for good: after its class changed (obj.__class__ =
 * Other), after a __del__ that did not resurrect it, after the collector
 * broke its cycle.  The watch wraps that function (PyMem_SetAllocator,
 * wrapping the current allocator as the C API requires; malloc, calloc
 * and realloc are left as they were) and, for each freed block, asks each
 * client's livemap whether the block is one of its objects, and if so
 * tells the client through the callbacks it installed (the registry is
 * the client; the watch never calls up into it by name).
 * One page-table probe per free in the process while a tracker exists.
 *
 * Installation.  The watch installs itself only when nobody's removable
 * hook sits above the base allocator: tracemalloc.stop() restores the
 * allocator it saw at start(), which would silently unhook a watch put on
 * top of it.  So when tracemalloc is tracing at the time of the request,
 * the watch is not installed and trackers fall back to weak references.
 * Started after the watch, tracemalloc wraps it and restores it on stop:
 * harmless.  ct_deathwatch_check() verifies, with a probe block, that the
 * watch still sees frees before anything trusts it.
 *
 * Which objects (ct_deathwatch_covers): instances of classes defined in
 * Python (their tp_dealloc is CPython's subtype_dealloc), allocated by
 * PyType_GenericAlloc, freed by PyObject_GC_Del/PyObject_Del, whose
 * nearest C base is one known to free them through tp_free with no free
 * list: object, dict, list, set, frozenset, str, tuple, int, a built-in
 * exception, collections.deque or the C ElementTree Element; of
 * fixed size unless that base is tuple or int (whose instances are never
 * reallocated: the watch does not see a block move); at a 16-byte aligned
 * block.  Everything else keeps its weak reference, or is counted at
 * snapshots when it cannot have one (subclasses of module or bytes; of
 * tuple or int while tracemalloc keeps the watch out).
 *
 * Subinterpreters with their own GIL (3.12+) share the allocator: frees
 * from other interpreters are passed straight through.  All state is
 * guarded by the main interpreter's GIL.
 */
#ifndef CLASSTRACK_DEATHWATCH_H
#define CLASSTRACK_DEATHWATCH_H

#include "base/compat.h"
#include "tracker/livemap.h"

/* Learns subtype_dealloc from a probe class.  0 or -1 with an exception. */
int ct_deathwatch_init(void);

/* A tracker wants the watch: installs it unless tracemalloc is tracing.
 * Each successful request is released once with ct_deathwatch_release.
 * Returns 1 if the watch is installed, 0 if not (not an error), -1 with an
 * exception. */
int ct_deathwatch_request(void);
void ct_deathwatch_release(void);

/* The watch is installed and its free hook still runs. */
int ct_deathwatch_ready(void);

/* 1 if the installed watch can report the deaths of tp's instances. */
int ct_deathwatch_covers_type(PyTypeObject *tp);

/* The same, whether or not the watch is installed now: the pre-header
 * size of tp's instances (their block is that far before them), or -1. */
Py_ssize_t ct_deathwatch_type_presize(PyTypeObject *tp);

/* A presize not looked up yet (ct_deathwatch_covers finds it). */
#define CT_PRESIZE_UNKNOWN (-2)

/* The block holding obj if the watch can report obj's death, else NULL.
 * `presize` is ct_deathwatch_type_presize(Py_TYPE(obj)) if known, or
 * CT_PRESIZE_UNKNOWN. */
void *ct_deathwatch_covers(PyObject *obj, Py_ssize_t presize);

/* The same for the creation fast path, inline, where presize >= 0 is
 * known (ct_deathwatch_type_presize of obj's class). */
extern int ct_deathwatch_installed;
#if PY_VERSION_HEX >= 0x030C0000
int ct_deathwatch_in_watched_interpreter(void);
#endif

static inline void *
ct_deathwatch_covers_known(PyObject *obj, Py_ssize_t presize)
{
    char *block = (char *)obj - presize;
    if (!ct_deathwatch_installed || ((uintptr_t)block & 15u) != 0) {
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
    /* objects of other interpreters: their frees are not looked at */
    if (!ct_deathwatch_in_watched_interpreter()) {
        return NULL;
    }
#endif
    return block;
}

/* How many blocks of an instance of tp (with pre-header `presize`, as
 * ct_deathwatch_type_presize gives it) can start in one page. */
static inline unsigned
ct_deathwatch_per_page(PyTypeObject *tp, Py_ssize_t presize)
{
    return ct_livemap_per_page((size_t)(presize > 0 ? presize : 0) + (size_t)tp->tp_basicsize);
}

/* What a client (the registry, which installs these) learns from the
 * watch.  Both run with the GIL and must never allocate from the object
 * domain nor call Python: `freed` runs inside the free function. */
typedef struct {
    /* `block`, listed in the client's livemap, was freed */
    void (*freed)(void *client, void *block);
    /* the watch was removed: every block listed may have died unseen;
     * the client is no longer watched when this is called */
    void (*lost)(void *client);
} ct_deathwatch_client;

/* Start reporting the frees of blocks listed in `live` to `cb` with
 * `client` (once per client; `live` and `cb` borrowed until removal).
 * 0 or -1 (no exception set: out of memory). */
int ct_deathwatch_add(void *client, const ct_livemap *live, const ct_deathwatch_client *cb);
/* Stop reporting to `client` (nothing if it is not watched). */
void ct_deathwatch_remove(void *client);

/* Before trusting watched records: if the watch was removed, tells
 * every client (its `lost` callback), uninstalls the watch logically
 * and warns.  0, or -1 if the warning raised. */
int ct_deathwatch_check(void);

/* 1 when instances of tp can be followed by a weak reference made in
 * tp_alloc: tp has a weak-reference list that no C ancestor manages. */
int ct_weakref_follows_type(PyTypeObject *tp);

#endif
