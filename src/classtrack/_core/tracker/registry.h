/* registry.h - the tracked objects of one tracker, as compact C records.
 *
 * Design.  Records live in one array, in registration order (index =
 * registration number): id, birth, death, name and resolution, trace
 * number; 32 bytes.  How the registry learns that an object died depends
 * on the object:
 *   - watched (most objects: instances of Python classes, see
 *     deathwatch.h): the block holding the object is in the registry's
 *     livemap; the object allocator's free hook stamps the death.  Nothing
 *     per object but the record and a few bytes of livemap: no Python
 *     object, nothing for the garbage collector.
 *   - weak (other weakly referenceable objects, or when the watch is not
 *     installed): a TrackRef, a C subtype of weakref.ref carrying the
 *     record number, whose callback stamps the death.
 *   - kept (keep=True): the registry holds the object strongly.
 * TrackRefs and kept objects are "carriers", listed by record number in a
 * side array (rare, so the common record stays 32 bytes; the kind is kept
 * in the two low bits of the id, which are zero in any object address).
 *
 * Histories are not stored: they are derived from births and deaths.
 * All access needs the GIL.
 */
#ifndef CLASSTRACK_REGISTRY_H
#define CLASSTRACK_REGISTRY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <assert.h>
#include <stdint.h>

/* The largest resolution level a record can hold (8 bits of name_res).
 * Checked once, where the user gives it (bindings/py_tracker.c); the
 * engine asserts it. */
#define CT_MAX_RESOLUTION 255
/* Names are numbered; 2**24 distinct names per tracker. */
#define CT_MAX_NAMES (1u << 24)

#define CT_REC_WEAK 1u     /* id flag: a TrackRef carries the record */
#define CT_REC_KEPT 2u     /* id flag: the object is held strongly */
#define CT_REC_FLAGS 3u

typedef struct {
    uintptr_t id;       /* id(obj), kept after death; low bits: CT_REC_* */
    double birth;       /* seconds since classtrack was imported */
    double death;       /* 0.0 while alive or not yet stamped */
    uint32_t name_res;  /* name index << 8 | resolution level */
    uint32_t trace;     /* trace number, 0 for none */
} ct_record;

typedef struct {
    PyWeakReference wr;
    size_t index;       /* record number, SIZE_MAX once forgotten */
} ct_trackref;

typedef struct {
    size_t index;
    PyObject *obj;      /* strong: TrackRef (weak records) or the object (kept) */
} ct_carrier;

static inline uint32_t ct_rec_name(const ct_record *r) { return r->name_res >> 8; }
static inline int ct_rec_resolution(const ct_record *r) { return (int)(r->name_res & 0xff); }

/* name_res for a name number and a resolution level: the one place that
 * packs them (a record's field, the hooks' precomputed value). */
static inline uint32_t
ct_name_res(uint32_t name, int resolution)
{
    assert(name < CT_MAX_NAMES);
    assert(resolution >= 0 && resolution <= CT_MAX_RESOLUTION);
    return (name << 8) | (uint32_t)resolution;
}

/* Sets a record's resolution level (0 .. CT_MAX_RESOLUTION). */
static inline void
ct_rec_set_resolution(ct_record *r, int resolution)
{
    r->name_res = ct_name_res(ct_rec_name(r), resolution);
}
static inline uintptr_t ct_rec_id(const ct_record *r) { return r->id & ~(uintptr_t)CT_REC_FLAGS; }

#include "tracker/livemap.h"

/* Records live in chunks that never move.  Chunk 0 grows by doubling up
 * to CT_FIRST_LEN records (small trackers stay small); later chunks hold
 * CT_CHUNK_LEN records in 2 MiB, mapped so that Linux can back them with
 * one huge page: on the creation path, page faults of fresh record memory
 * were the largest cost left (2.7 us per 4 KiB fault on the development
 * VM, about 20 ns per tracked object; one 2 MiB fault replaces 512). */
#define CT_FIRST_LEN ((size_t)1 << 14)                 /* 512 KiB */
#define CT_CHUNK_SHIFT 16
#define CT_CHUNK_LEN ((size_t)1 << CT_CHUNK_SHIFT)     /* 2 MiB */

typedef struct {
    ct_record **chunks; /* PyMem_Raw; chunk 0: records 0 .. CT_FIRST_LEN,
                           chunk k >= 1: CT_FIRST_LEN + (k - 1) * CT_CHUNK_LEN .. */
    size_t nchunks;
    size_t capchunks;
    size_t cap;         /* records the chunks can hold */
    size_t len;
    size_t alive;       /* records whose object is alive */
    ct_livemap live;    /* blocks of watched live objects -> record number */
    int watched;        /* registered with the death watch */
    ct_carrier *carriers;   /* ascending index; PyMem_Raw array */
    size_t ncarriers;
    size_t capcarriers;
    /* ct_registry_forget: pages of records given back to the system (they
     * read as zeros: id 0, which no object has) */
    uint64_t *released;     /* bit per page of the mapped chunks; PyMem_Raw */
    size_t nreleased;       /* words */
    size_t forgotten;       /* records in released pages */
    size_t forgot_below;    /* every released page lies below this record */
    PyObject *args;     /* strong: a reusable 2-tuple for weakref.__new__,
                           holding None between uses */
} ct_registry;

/* Types of the carriers, created by ct_registry_types_init. */
typedef struct {
    PyTypeObject *trackref_type;
#if PY_VERSION_HEX >= 0x030B0000
    vectorcallfunc weakref_vectorcall;  /* what weakref.__new__ installs */
#endif
} ct_registry_types;

int ct_registry_types_init(PyObject *module, ct_registry_types *types);

/* The clock (registry.c): seconds since the module was imported,
 * monotonic, never 0.0.  Once calibrated it is the CPU's invariant TSC
 * scaled (inline: it is read on every tracked creation and death);
 * before, and without such a TSC, CLOCK_MONOTONIC. */
void ct_clock_init(void);
double ct_now_slow(void);
extern double ct_tsc_scale;     /* seconds per tick; 0 until calibrated */
extern uint64_t ct_tsc_origin;  /* TSC at module import */

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define CT_HAVE_TSC 1
#endif

static inline double
ct_now(void)
{
#ifdef CT_HAVE_TSC
    if (ct_tsc_scale > 0.0) {
        /* signed: one conversion instruction; ticks since import fit */
        double t = (double)(int64_t)(__rdtsc() - ct_tsc_origin) * ct_tsc_scale;
        /* 0.0 means "alive" in death stamps: never hand it out */
        return t > 0.0 ? t : 1e-9;
    }
#endif
    return ct_now_slow();
}

void ct_registry_init(ct_registry *reg);
/* Drops every record and carrier. */
void ct_registry_clear(ct_registry *reg);
int ct_registry_traverse(ct_registry *reg, visitproc visit, void *arg);

/* The record number i (i < len). */
static inline ct_record *
ct_registry_record(const ct_registry *reg, size_t i)
{
    if (i < CT_FIRST_LEN) {
        return &reg->chunks[0][i];
    }
    i -= CT_FIRST_LEN;
    return &reg->chunks[1 + (i >> CT_CHUNK_SHIFT)][i & (CT_CHUNK_LEN - 1)];
}

/* Record i's object, borrowed, or NULL once it died (or while it is
 * being destroyed). */
PyObject *ct_registry_object(const ct_registry *reg, size_t i);

/* Seconds since import at which record i's object died, 0.0 while alive. */
double ct_registry_death(const ct_registry *reg, size_t i);

/* How an object is tracked (ct_tracker_track, ct_registry_add). */
typedef struct {
    uint32_t name;          /* name number (ct_tracker_name_number) */
    int resolution;         /* 0 .. CT_MAX_RESOLUTION: checked by the
                               binding, asserted here */
    int keep;               /* hold the object strongly */
    int trace;              /* record its creation stack */
    int fresh;              /* straight from the tp_alloc hook (so it cannot
                               be tracked yet); 0 when the user gave it */
    Py_ssize_t presize;     /* ct_deathwatch_type_presize(Py_TYPE(obj)) when
                               the caller knows it, else CT_PRESIZE_UNKNOWN */
} ct_track_opts;

/* Track obj as `opts` says (its `trace` is ignored: `trace_no` is the
 * creation trace's number, 0 for none): appends a record.  `callback` is
 * the death callback for weak references.  Returns the new index, or -1 with an
 * exception (TypeError when obj cannot be followed and keep is false). */
Py_ssize_t ct_registry_add(ct_registry *reg, const ct_registry_types *types,
                           PyObject *obj, PyObject *callback, const ct_track_opts *opts,
                           uint32_t trace_no);

/* Put a watched object's block in reg's livemap as record `index`; a
 * block still listed there proves a death the watch missed, which is
 * stamped now.  `per_page`: ct_livemap_per_page of the block's size.
 * 0, or -1 when out of memory (no exception set). */
int ct_registry_put_block(ct_registry *reg, void *block, size_t index, unsigned per_page);

/* The creation fast path, inline.  obj was just allocated (so it is not
 * tracked yet), `block` is its block (ct_deathwatch_covers said the watch
 * reports its death), its class is its name's class and nothing else
 * (keep, trace) is asked for.  Appends the record when that needs no
 * Python object: 1 if done, 0 if the caller must take ct_registry_add.
 * Never calls Python, never sets an exception. */
static inline int
ct_registry_add_fresh(ct_registry *reg, PyObject *obj, void *block, uint32_t name_res,
                      unsigned per_page)
{
    size_t index = reg->len;
    if (index >= reg->cap || index >= UINT32_MAX - 1 || !reg->watched) {
        return 0;
    }
    if (!ct_livemap_put_last(&reg->live, block, (uint32_t)index)
        && ct_registry_put_block(reg, block, index, per_page) < 0) {
        return 0;
    }
    ct_record *rec = ct_registry_record(reg, index);
    rec->id = (uintptr_t)obj;
    rec->birth = ct_now();
    rec->death = 0.0;
    rec->name_res = name_res;
    rec->trace = 0;
    reg->len = index + 1;
    reg->alive++;
    return 1;
}

/* Index of the record following obj alive in this registry (watched or
 * weak), or -1.  Kept objects are found by the caller's keep map. */
Py_ssize_t ct_registry_find(const ct_registry *reg, const ct_registry_types *types,
                            PyObject *obj, PyObject *callback);

/* Death callback of a TrackRef. */
void ct_registry_trackref_died(ct_registry *reg, const ct_registry_types *types,
                               PyObject *carrier);

/* The death watch's callbacks (deathwatch.h), installed by
 * ct_registry_add when the first watched object is registered; the
 * watch asks reg->live itself whether a freed block is reg's.
 *
 * Block freed: stamps the death of the object it held, if reg followed
 * it.  Never allocates. */
void ct_registry_block_freed(ct_registry *reg, void *block);

/* The death watch was removed: every object still in the livemap is
 * marked dead now and the livemap emptied.  Never calls Python. */
void ct_registry_watch_lost(ct_registry *reg);

/* A record ct_registry_forget gave back: it reads as zeros. */
static inline int ct_rec_forgotten(const ct_record *r) { return r->id == 0; }

/* Gives the memory of records back to the system, a page at a time (128
 * records of 32 bytes), for the pages of the mapped chunks whose every
 * record is written (written[i] != 0 for i < upto: its whole life is in
 * a dump stream), dead before `before` (so no snapshot from `before` on
 * names it) and neither weak nor kept (no carrier refers to it).  Such a
 * page is dropped with madvise(MADV_DONTNEED): it then reads as zeros,
 * which ct_rec_forgotten tells (id 0) and ct_registry_object treats as
 * dead.  For a tracker whose dump is streamed (classtrack run): most
 * records are of objects long dead, and without this their 32 bytes each
 * stay until the end.  Returns the records forgotten now; 0 where pages
 * cannot be dropped (no mapped chunks), -1 when out of memory (no
 * exception set). */
Py_ssize_t ct_registry_forget(ct_registry *reg, const unsigned char *written, size_t upto,
                              double before);

/* Bytes the registry holds: records, livemap, carriers. */
size_t ct_registry_footprint(const ct_registry *reg);

#endif
