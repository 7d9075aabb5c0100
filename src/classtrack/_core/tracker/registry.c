/* registry.c - tracked-object records.  See registry.h for the design.
 *
 * Invariants:
 *   - records 0 .. len in registration order, so births never decrease
 *     along the array (ct_now is monotonic);
 *   - a watched record's object is alive exactly while its block is in
 *     the livemap (the free hook removes it and stamps the death);
 *   - a weak record's object is alive exactly while its TrackRef's
 *     wr_object is not None; the callback stamps the death;
 *   - carriers[0 .. ncarriers) have ascending indexes, each a weak or
 *     kept record, and hold strong references;
 *   - reg->live is non-empty only while reg is registered with the death
 *     watch (reg->watched).
 */
#include "tracker/registry.h"
#include "tracker/deathwatch.h"
#include "base/compat.h"
#include "base/layout.h"
#include "base/bigmem.h"

#include <math.h>
#include <string.h>
#include <time.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif
/* The clock.  Births and deaths are stamped on the object creation and
 * destruction paths, where clock_gettime (25 ns here) was the largest
 * single cost of tracking.  On CPUs with an invariant TSC the stamp is
 * read from it (under 10 ns) and scaled to seconds; the scale is measured
 * once against CLOCK_MONOTONIC over the first 50 ms, and until then (and
 * everywhere without such a TSC) CLOCK_MONOTONIC is read directly.  The
 * hand-over is continuous: the scale is fixed at a point where both agree.
 * State written only under the GIL. */
static double clock_origin;     /* CLOCK_MONOTONIC at module import */
double ct_tsc_scale;
uint64_t ct_tsc_origin;
static int tsc_usable;

#define CT_CALIBRATION_SECONDS 0.05

static double
monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#ifdef CT_HAVE_TSC
#include <cpuid.h>

static int
invariant_tsc(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007) {
        return 0;
    }
    __get_cpuid(0x80000007, &a, &b, &c, &d);
    return (d >> 8) & 1;
}

static inline uint64_t
read_tsc(void)
{
    return __rdtsc();
}
#else
static int invariant_tsc(void) { return 0; }
static inline uint64_t read_tsc(void) { return 0; }
#endif

void
ct_clock_init(void)
{
    if (clock_origin == 0.0) {
        tsc_usable = invariant_tsc();
        ct_tsc_origin = read_tsc();
        clock_origin = monotonic_seconds();
    }
}

double
ct_now_slow(void)
{
    /* ct_now reads the TSC itself once it is calibrated: this runs before
     * that, and always where there is no usable TSC */
    double t = monotonic_seconds() - clock_origin;
    if (tsc_usable && t > CT_CALIBRATION_SECONDS) {
        uint64_t ticks = read_tsc() - ct_tsc_origin;
        if (ticks > 0) {
            ct_tsc_scale = t / (double)ticks;
        }
    }
    /* 0.0 means "alive" in death stamps: never hand it out */
    return t > 0.0 ? t : 1e-9;
}

/* -- TrackRef ----------------------------------------------------------- */

static void
trackref_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    _PyWeakref_RefType.tp_dealloc(self);
    Py_DECREF(tp);
}

static int
trackref_traverse(ct_trackref *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->wr.wr_callback);
    return 0;
}

static PyType_Slot trackref_slots[] = {
    {Py_tp_dealloc, trackref_dealloc},
    {Py_tp_traverse, trackref_traverse},
    {Py_tp_doc, "classtrack's weak reference to a tracked object; carries its record number."},
    {0, NULL},
};

static PyType_Spec trackref_spec = {
    "classtrack._core.TrackRef",
    sizeof(ct_trackref),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    trackref_slots,
};

int
ct_registry_types_init(PyObject *module, ct_registry_types *types)
{
    PyObject *bases = PyTuple_Pack(1, (PyObject *)&_PyWeakref_RefType);
    if (bases == NULL) {
        return -1;
    }
    types->trackref_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &trackref_spec, bases);
    Py_DECREF(bases);
    if (types->trackref_type == NULL) {
        return -1;
    }
#if PY_VERSION_HEX >= 0x030B0000
    /* the call slot CPython gives every weak reference, copied into the
     * TrackRefs built without weakref.__new__ */
    PyObject *probe = PyWeakref_NewRef((PyObject *)types->trackref_type, NULL);
    if (probe == NULL) {
        return -1;
    }
    types->weakref_vectorcall = ((PyWeakReference *)probe)->vectorcall;
    Py_DECREF(probe);
#endif
    return 0;
}

/* -- the registry ------------------------------------------------------- */

static void chunk_free(ct_record *c);
static const ct_deathwatch_client registry_watch_client;

void
ct_registry_init(ct_registry *reg)
{
    memset(reg, 0, sizeof(*reg));
}

void
ct_registry_clear(ct_registry *reg)
{
    ct_registry old = *reg;
    /* detach first: freeing a carrier may run code that looks here */
    if (old.watched) {
        ct_deathwatch_remove(reg);
    }
    ct_registry_init(reg);
    /* TrackRefs of weak records may outlive us (someone else may hold
     * them): their callbacks must not find a record number any more */
    for (size_t i = 0; i < old.ncarriers; i++) {
        PyObject *c = old.carriers[i].obj;
        if (ct_registry_record(&old, old.carriers[i].index)->id & CT_REC_WEAK) {
            ((ct_trackref *)c)->index = SIZE_MAX;
        }
    }
    ct_livemap_clear(&old.live);
    for (size_t k = 0; k < old.nchunks; k++) {
        if (k == 0) {
            PyMem_RawFree(old.chunks[0]);
        }
        else {
            chunk_free(old.chunks[k]);
        }
    }
    PyMem_RawFree(old.chunks);
    Py_XDECREF(old.args);
    for (size_t i = 0; i < old.ncarriers; i++) {
        Py_DECREF(old.carriers[i].obj);
    }
    PyMem_RawFree(old.carriers);
    PyMem_RawFree(old.released);
}

int
ct_registry_traverse(ct_registry *reg, visitproc visit, void *arg)
{
    for (size_t i = 0; i < reg->ncarriers; i++) {
        Py_VISIT(reg->carriers[i].obj);
    }
    Py_VISIT(reg->args);
    return 0;
}

/* The carrier of record i, borrowed, or NULL. */
static PyObject *
carrier_of(const ct_registry *reg, size_t i)
{
    size_t lo = 0, hi = reg->ncarriers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (reg->carriers[mid].index < i) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo < reg->ncarriers && reg->carriers[lo].index == i ? reg->carriers[lo].obj : NULL;
}

PyObject *
ct_registry_object(const ct_registry *reg, size_t i)
{
    const ct_record *r = ct_registry_record(reg, i);
    if (ct_rec_forgotten(r)) {
        return NULL;
    }
    if (r->id & CT_REC_KEPT) {
        return carrier_of(reg, i);
    }
    PyObject *obj;
    if (r->id & CT_REC_WEAK) {
        ct_trackref *t = (ct_trackref *)carrier_of(reg, i);
        if (t == NULL) {
            return NULL;
        }
        obj = t->wr.wr_object;
        if (obj == Py_None) {
            return NULL;
        }
    }
    else {
        if (r->death != 0.0) {
            return NULL;
        }
        obj = (PyObject *)ct_rec_id(r);
    }
    /* refcount 0: being destroyed, not freed yet */
    return Py_REFCNT(obj) > 0 ? obj : NULL;
}

double
ct_registry_death(const ct_registry *reg, size_t i)
{
    const ct_record *r = ct_registry_record(reg, i);
    if (r->death != 0.0 || !(r->id & CT_REC_WEAK)) {
        return r->death;
    }
    ct_trackref *t = (ct_trackref *)carrier_of(reg, i);
    if (t != NULL && t->wr.wr_object == Py_None) {
        /* cleared, callback not run yet: dead, time not stamped */
        return r->birth + 1e-9;
    }
    return 0.0;
}

/* A 2 MiB chunk of records, 2 MiB-aligned and advised for a huge page
 * where the system can (Linux, transparent huge pages on "madvise" or
 * "always"); reported to tracemalloc like any allocation. */
#define CT_CHUNK_BYTES (CT_CHUNK_LEN * sizeof(ct_record))

static ct_record *
chunk_alloc(void)
{
#if defined(__linux__) && defined(MAP_ANONYMOUS)
    size_t align = CT_CHUNK_BYTES;
    char *p = mmap(NULL, CT_CHUNK_BYTES + align, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    char *a = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
    if (a > p) {
        munmap(p, (size_t)(a - p));
    }
    char *end = p + CT_CHUNK_BYTES + align;
    if (end > a + CT_CHUNK_BYTES) {
        munmap(a + CT_CHUNK_BYTES, (size_t)(end - (a + CT_CHUNK_BYTES)));
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(a, CT_CHUNK_BYTES, MADV_HUGEPAGE);
#endif
    (void)PyTraceMalloc_Track(CT_TRACE_DOMAIN, (uintptr_t)a, CT_CHUNK_BYTES);
    return (ct_record *)a;
#else
    return PyMem_RawMalloc(CT_CHUNK_BYTES);
#endif
}

static void
chunk_free(ct_record *c)
{
#if defined(__linux__) && defined(MAP_ANONYMOUS)
    (void)PyTraceMalloc_Untrack(CT_TRACE_DOMAIN, (uintptr_t)c);
    munmap(c, CT_CHUNK_BYTES);
#else
    PyMem_RawFree(c);
#endif
}

static int
append_record(ct_registry *reg)
{
    if (reg->len >= UINT32_MAX - 1) {
        /* record numbers are 32-bit in the livemap and the snapshots */
        PyErr_SetString(PyExc_OverflowError, "too many tracked objects");
        return -1;
    }
    if (reg->len == reg->cap) {
        if (reg->nchunks == reg->capchunks) {
            size_t capchunks = reg->capchunks ? reg->capchunks * 2 : 8;
            ct_record **chunks = PyMem_RawRealloc(reg->chunks, capchunks * sizeof(*chunks));
            if (chunks == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            reg->chunks = chunks;
            reg->capchunks = capchunks;
        }
        if (reg->cap < CT_FIRST_LEN) {
            /* chunk 0 grows by doubling (small trackers stay small) */
            size_t cap = reg->cap ? reg->cap * 2 : 256;
            ct_record *c = PyMem_RawRealloc(reg->nchunks ? reg->chunks[0] : NULL,
                                            cap * sizeof(ct_record));
            if (c == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            reg->chunks[0] = c;
            reg->nchunks = 1;
            reg->cap = cap;
        }
        else {
            ct_record *c = chunk_alloc();
            if (c == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            reg->chunks[reg->nchunks++] = c;
            reg->cap += CT_CHUNK_LEN;
        }
    }
    reg->len++;
    return 0;
}

/* Steals a reference to obj on success. */
static int
append_carrier(ct_registry *reg, size_t index, PyObject *obj)
{
    if (reg->ncarriers == reg->capcarriers) {
        size_t cap = reg->capcarriers ? reg->capcarriers * 2 : 16;
        ct_carrier *c = PyMem_RawRealloc(reg->carriers, cap * sizeof(ct_carrier));
        if (c == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        reg->carriers = c;
        reg->capcarriers = cap;
    }
    reg->carriers[reg->ncarriers].index = index;
    reg->carriers[reg->ncarriers].obj = obj;
    reg->ncarriers++;
    return 0;
}

/* A TrackRef for an object that has no weak reference yet (one that
 * tp_alloc just returned): what weakref.__new__ does for a subtype with a
 * callback, without argument parsing or list search, since the list is
 * empty.  Not yet tracked by the GC; the caller tracks it. */
static PyObject *
fresh_trackref(const ct_registry_types *types, PyObject *obj, PyObject *callback,
               PyWeakReference **list)
{
    ct_trackref *self = PyObject_GC_New(ct_trackref, types->trackref_type);
    if (self == NULL) {
        return NULL;
    }
    self->wr.wr_callback = NULL;
    self->wr.hash = -1;
    self->wr.wr_prev = NULL;
    self->wr.wr_next = NULL;
    self->index = SIZE_MAX;
#if PY_VERSION_HEX >= 0x030B0000
    self->wr.vectorcall = types->weakref_vectorcall;
#endif
    if (*list != NULL) {
        /* the allocation ran the GC, whose code made a weak reference to
         * obj meanwhile: not fresh any more, the caller takes the slow path */
        self->wr.wr_object = Py_None;   /* so dealloc unlinks nothing */
        Py_DECREF(self);
        return Py_NewRef(Py_None);
    }
    self->wr.wr_object = obj;
    self->wr.wr_callback = Py_NewRef(callback);
    *list = &self->wr;
    return (PyObject *)self;
}

/* A new TrackRef to obj (callback set, GC-tracked), or NULL. */
static PyObject *
new_trackref(ct_registry *reg, const ct_registry_types *types, PyObject *obj,
             PyObject *callback, int fresh)
{
    if (Py_TYPE(obj)->tp_weaklistoffset == 0) {
        PyErr_Format(PyExc_TypeError,
                     "cannot track '%.100s' objects: they cannot be weakly "
                     "referenced (give the class a '__weakref__' slot, or "
                     "track with keep=True to hold them alive)",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (fresh && !ct_weakref_follows_type(Py_TYPE(obj))) {
        /* made inside tp_alloc: the C type's own init would clear the
         * reference list (deque), so the death would go unheard */
        PyErr_Format(PyExc_TypeError,
                     "cannot track '%.100s' objects: their weak-reference list is "
                     "managed by C code that resets it after allocation (track "
                     "with keep=True, or track the Python objects that hold them)",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyObject *carrier;
    Py_ssize_t off = Py_TYPE(obj)->tp_weaklistoffset;
    if (fresh && off > 0 && (Py_TYPE(obj)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        PyWeakReference **list = (PyWeakReference **)((char *)obj + off);
        if (*list == NULL) {
            carrier = fresh_trackref(types, obj, callback, list);
            if (carrier == NULL) {
                return NULL;
            }
            if (carrier != Py_None) {
                PyObject_GC_Track(carrier);
                return carrier;
            }
            Py_DECREF(carrier);
        }
    }
    /* weakref.__new__ only borrows its arguments: one 2-tuple per
     * registry is refilled for each new reference */
    PyObject *args = reg->args;
    if (args == NULL || Py_REFCNT(args) != 1) {
        Py_XDECREF(args);
        args = reg->args = PyTuple_New(2);
        if (args == NULL) {
            return NULL;
        }
        Py_INCREF(Py_None);
        Py_INCREF(Py_None);
        PyTuple_SET_ITEM(args, 0, Py_None);
        PyTuple_SET_ITEM(args, 1, Py_None);
    }
    Py_INCREF(obj);
    Py_INCREF(callback);
    Py_SETREF(((PyTupleObject *)args)->ob_item[0], obj);
    Py_SETREF(((PyTupleObject *)args)->ob_item[1], callback);
    carrier = _PyWeakref_RefType.tp_new(types->trackref_type, args, NULL);
    /* keep neither the object nor the callback (-> tracker) alive
     * through the tuple */
    Py_INCREF(Py_None);
    Py_SETREF(((PyTupleObject *)args)->ob_item[0], Py_None);
    Py_INCREF(Py_None);
    Py_SETREF(((PyTupleObject *)args)->ob_item[1], Py_None);
    if (carrier != NULL) {
        ((ct_trackref *)carrier)->index = SIZE_MAX;
        if (!PyObject_GC_IsTracked(carrier)) {
            PyObject_GC_Track(carrier);
        }
    }
    return carrier;
}

Py_ssize_t
ct_registry_add(ct_registry *reg, const ct_registry_types *types, PyObject *obj,
                PyObject *callback, const ct_track_opts *opts, uint32_t trace_no)
{
    assert(opts->resolution >= 0 && opts->resolution <= CT_MAX_RESOLUTION);
    uintptr_t flags = 0;
    PyObject *carrier = NULL;
    void *block = NULL;
    if (opts->keep) {
        flags = CT_REC_KEPT;
        carrier = Py_NewRef(obj);
    }
    else if ((block = ct_deathwatch_covers(obj, opts->presize)) == NULL) {
        flags = CT_REC_WEAK;
        carrier = new_trackref(reg, types, obj, callback, opts->fresh);
        if (carrier == NULL) {
            return -1;
        }
    }
    /* creating the carrier may have run code (the GC) that grew reg */
    size_t index = reg->len;
    if (append_record(reg) < 0) {
        Py_XDECREF(carrier);
        return -1;
    }
    if (carrier != NULL) {
        if (append_carrier(reg, index, carrier) < 0) {
            reg->len--;
            Py_DECREF(carrier);
            return -1;
        }
        if (flags == CT_REC_WEAK) {
            ((ct_trackref *)carrier)->index = index;
        }
    }
    else {
        if (!reg->watched) {
            if (ct_deathwatch_add(reg, &reg->live, &registry_watch_client) < 0) {
                reg->len--;
                PyErr_NoMemory();
                return -1;
            }
            reg->watched = 1;
        }
        unsigned per_page = ct_deathwatch_per_page(Py_TYPE(obj), (char *)obj - (char *)block);
        if (ct_registry_put_block(reg, block, index, per_page) < 0) {
            reg->len--;
            PyErr_NoMemory();
            return -1;
        }
    }
    ct_record *rec = ct_registry_record(reg, index);
    rec->id = (uintptr_t)obj | flags;
    rec->birth = ct_now();
    rec->death = 0.0;
    rec->name_res = ct_name_res(opts->name, opts->resolution);
    rec->trace = trace_no;
    reg->alive++;
    return (Py_ssize_t)index;
}

int
ct_registry_put_block(ct_registry *reg, void *block, size_t index, unsigned per_page)
{
    uint32_t old;
    int r = ct_livemap_put(&reg->live, block, (uint32_t)index, &old, per_page);
    if (r < 0) {
        return -1;
    }
    if (r == 1 && old < index && ct_registry_record(reg, old)->death == 0.0) {
        /* a block still listed was reused: the watch missed the death
         * (it was unhooked); the best time known is now */
        ct_registry_record(reg, old)->death = ct_now();
        reg->alive--;
    }
    return 0;
}

Py_ssize_t
ct_registry_find(const ct_registry *reg, const ct_registry_types *types,
                 PyObject *obj, PyObject *callback)
{
    uint32_t i;
    void *block = (char *)obj - ct_preheader_size(obj);
    if (ct_livemap_get(&reg->live, block, &i) && i < reg->len
        && ct_rec_id(ct_registry_record(reg, i)) == (uintptr_t)obj
        && ct_registry_record(reg, i)->death == 0.0) {
        return (Py_ssize_t)i;
    }
    Py_ssize_t off = Py_TYPE(obj)->tp_weaklistoffset;
    if (off == 0) {     /* negative for 3.12+'s managed weakref list */
        return -1;
    }
    PyWeakReference *wr = *(PyWeakReference **)((char *)obj + off);
    for (; wr != NULL; wr = wr->wr_next) {
        if (Py_IS_TYPE(wr, types->trackref_type) && wr->wr_callback == callback) {
            size_t index = ((ct_trackref *)wr)->index;
            return index < reg->len ? (Py_ssize_t)index : -1;
        }
    }
    return -1;
}

void
ct_registry_block_freed(ct_registry *reg, void *block)
{
    uint32_t i;
    if (ct_livemap_pop(&reg->live, block, &i) && i < reg->len) {
        ct_registry_record(reg, i)->death = ct_now();
        reg->alive--;
    }
}

void
ct_registry_trackref_died(ct_registry *reg, const ct_registry_types *types,
                          PyObject *carrier)
{
    if (!Py_IS_TYPE(carrier, types->trackref_type)) {
        return;
    }
    ct_trackref *t = (ct_trackref *)carrier;
    size_t i = t->index;
    if (i >= reg->len || t->wr.wr_object != Py_None
        || ct_registry_record(reg, i)->death != 0.0) {
        return;     /* forgotten, not cleared (cannot happen), or stamped */
    }
    ct_registry_record(reg, i)->death = ct_now();
    if (reg->alive > 0) {
        reg->alive--;
    }
}

typedef struct {
    ct_registry *reg;
    double now;
} watch_lost_ctx;

static void
close_record(uint32_t idx, void *arg)
{
    watch_lost_ctx *c = arg;
    if (idx < c->reg->len && ct_registry_record(c->reg, idx)->death == 0.0) {
        ct_registry_record(c->reg, idx)->death = c->now;
        c->reg->alive--;
    }
}

void
ct_registry_watch_lost(ct_registry *reg)
{
    watch_lost_ctx c = {reg, ct_now()};
    ct_livemap_each(&reg->live, close_record, &c);
    ct_livemap_clear(&reg->live);
    reg->watched = 0;
}

static void
watch_freed_cb(void *client, void *block)
{
    ct_registry_block_freed((ct_registry *)client, block);
}

static void
watch_lost_cb(void *client)
{
    ct_registry_watch_lost((ct_registry *)client);
}

static const ct_deathwatch_client registry_watch_client = {watch_freed_cb, watch_lost_cb};

#if defined(__linux__) && defined(MAP_ANONYMOUS) && defined(MADV_DONTNEED)
static int
any_released(const uint64_t *words, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (words[i] != 0) {
            return 1;
        }
    }
    return 0;
}
#endif

Py_ssize_t
ct_registry_forget(ct_registry *reg, const unsigned char *written, size_t upto, double before)
{
#if defined(__linux__) && defined(MAP_ANONYMOUS) && defined(MADV_DONTNEED)
    long pagesize = sysconf(_SC_PAGESIZE);
    if (pagesize <= 0 || CT_CHUNK_BYTES % (size_t)pagesize != 0
        || (size_t)pagesize % sizeof(ct_record) != 0) {
        return 0;
    }
    size_t per_page = (size_t)pagesize / sizeof(ct_record);
    size_t pages = CT_CHUNK_BYTES / (size_t)pagesize;  /* per chunk */
    size_t chunk_words = (pages + 63) / 64;
    size_t words = (reg->nchunks > 1 ? reg->nchunks - 1 : 0) * chunk_words;
    if (words > reg->nreleased) {
        uint64_t *r = PyMem_RawRealloc(reg->released, words * sizeof(uint64_t));
        if (r == NULL) {
            return -1;
        }
        memset(r + reg->nreleased, 0, (words - reg->nreleased) * sizeof(uint64_t));
        reg->released = r;
        reg->nreleased = words;
    }
    if (upto > reg->len) {
        upto = reg->len;
    }
    size_t done = 0;
    for (size_t k = 1; k < reg->nchunks; k++) {
        size_t first = CT_FIRST_LEN + (k - 1) * CT_CHUNK_LEN;
        for (size_t p = 0; p < pages && first + (p + 1) * per_page <= upto; p++) {
            uint64_t *word = &reg->released[(k - 1) * chunk_words + p / 64];
            uint64_t bit = (uint64_t)1 << (p % 64);
            if (*word & bit) {
                continue;
            }
            const unsigned char *w = written + first + p * per_page;
            ct_record *r = reg->chunks[k] + p * per_page;
            size_t j = 0;
            while (j < per_page && w[j] && r[j].death != 0.0 && r[j].death < before
                   && !(r[j].id & CT_REC_FLAGS)) {
                j++;
            }
#ifdef MADV_NOHUGEPAGE
            /* the chunk's first release: out of huge pages for good, or
             * khugepaged folds the released pages back into a whole one
             * (max_ptes_none: it fills holes with zeros) */
            if (j == per_page && !any_released(reg->released + (k - 1) * chunk_words,
                                               chunk_words)) {
                (void)madvise(reg->chunks[k], CT_CHUNK_BYTES, MADV_NOHUGEPAGE);
            }
#endif
            if (j == per_page && madvise(r, (size_t)pagesize, MADV_DONTNEED) == 0) {
                *word |= bit;
                done += per_page;
                if (reg->forgot_below < first + (p + 1) * per_page) {
                    reg->forgot_below = first + (p + 1) * per_page;
                }
            }
        }
    }
    reg->forgotten += done;
    return (Py_ssize_t)done;
#else
    (void)reg;
    (void)written;
    (void)upto;
    (void)before;
    return 0;
#endif
}

size_t
ct_registry_footprint(const ct_registry *reg)
{
    size_t bytes = (reg->cap - reg->forgotten) * sizeof(ct_record)
                   + reg->capchunks * sizeof(ct_record *)
                   + reg->capcarriers * sizeof(ct_carrier)
                   + reg->nreleased * sizeof(uint64_t)
                   + ct_livemap_footprint(&reg->live);
    for (size_t i = 0; i < reg->ncarriers; i++) {
        if (ct_registry_record(reg, reg->carriers[i].index)->id & CT_REC_WEAK) {
            bytes += 2 * sizeof(void *) + sizeof(ct_trackref);   /* GC header */
        }
    }
    return bytes;
}
