/* registry.c - tracked-object records.  See registry.h for the design.
 *
 * Invariants:
 *   - reg->items[0 .. len) are strong references to TrackRef or KeepRef
 *     carriers, in registration order, so births never decrease along
 *     the array (ct_now is monotonic);
 *   - a TrackRef's object is alive exactly while wr_object is not None
 *     (CPython sets None when it clears the reference); after that,
 *     wr_prev holds the death time's bits (all zero until the callback
 *     ran); a KeepRef's obj is non-NULL until the registry is cleared.
 */
#include "registry.h"
#include "compat.h"

#include <math.h>
#include <string.h>
#include <time.h>

/* The clock.  Births and deaths are stamped on the object creation and
 * destruction paths, where clock_gettime (25 ns here) was the largest
 * single cost of tracking.  On CPUs with an invariant TSC the stamp is
 * read from it (under 10 ns) and scaled to seconds; the scale is measured
 * once against CLOCK_MONOTONIC over the first 50 ms, and until then (and
 * everywhere without such a TSC) CLOCK_MONOTONIC is read directly.  The
 * hand-over is continuous: the scale is fixed at a point where both agree.
 * State written only under the GIL. */
static double clock_origin;     /* CLOCK_MONOTONIC at module import */
static double tsc_scale;        /* seconds per tick; 0 until calibrated */
static uint64_t tsc_origin;     /* TSC at module import */
static int tsc_usable;

#define CT_CALIBRATION_SECONDS 0.05

static double
monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <x86intrin.h>

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
        tsc_origin = read_tsc();
        clock_origin = monotonic_seconds();
    }
}

double
ct_now(void)
{
    double t;
    if (tsc_scale > 0.0) {
        t = (double)(read_tsc() - tsc_origin) * tsc_scale;
    }
    else {
        t = monotonic_seconds() - clock_origin;
        if (tsc_usable && t > CT_CALIBRATION_SECONDS) {
            uint64_t ticks = read_tsc() - tsc_origin;
            if (ticks > 0) {
                tsc_scale = t / (double)ticks;
            }
        }
    }
    /* 0.0 means "alive" in death stamps: never hand it out */
    return t > 0.0 ? t : 1e-9;
}

/* -- carrier types ------------------------------------------------------ */

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
    {Py_tp_doc, "classtrack's weak reference to a tracked object; carries its record."},
    {0, NULL},
};

static PyType_Spec trackref_spec = {
    "classtrack._core.TrackRef",
    sizeof(ct_trackref),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    trackref_slots,
};

static int
keepref_traverse(ct_keepref *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->obj);
    return 0;
}

static int
keepref_clear(ct_keepref *self)
{
    Py_CLEAR(self->obj);
    return 0;
}

static void
keepref_dealloc(ct_keepref *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->obj);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyType_Slot keepref_slots[] = {
    {Py_tp_dealloc, keepref_dealloc},
    {Py_tp_traverse, keepref_traverse},
    {Py_tp_clear, keepref_clear},
    {Py_tp_doc, "classtrack's strong reference to an object tracked with keep=True."},
    {0, NULL},
};

static PyType_Spec keepref_spec = {
    "classtrack._core.KeepRef",
    sizeof(ct_keepref),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    keepref_slots,
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
    types->keepref_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &keepref_spec, NULL);
    if (types->keepref_type == NULL) {
        return -1;
    }
#if PY_VERSION_HEX >= 0x030B0000
    /* the call slot CPython gives every weak reference, copied into the
     * TrackRefs built without weakref.__new__ */
    PyObject *probe = PyWeakref_NewRef((PyObject *)types->keepref_type, NULL);
    if (probe == NULL) {
        return -1;
    }
    types->weakref_vectorcall = ((PyWeakReference *)probe)->vectorcall;
    Py_DECREF(probe);
#endif
    return 0;
}

/* -- the registry ------------------------------------------------------- */

void
ct_registry_init(ct_registry *reg)
{
    memset(reg, 0, sizeof(*reg));
}

void
ct_registry_clear(ct_registry *reg)
{
    PyObject **items = reg->items;
    size_t len = reg->len;
    PyObject *args = reg->args;
    /* detach first: deallocating a carrier may run code that looks here */
    ct_registry_init(reg);
    Py_XDECREF(args);
    for (size_t i = 0; i < len; i++) {
        Py_DECREF(items[i]);
    }
    PyMem_Free(items);
}

int
ct_registry_traverse(ct_registry *reg, visitproc visit, void *arg)
{
    for (size_t i = 0; i < reg->len; i++) {
        Py_VISIT(reg->items[i]);
    }
    return 0;
}

ct_record *
ct_carrier_record(const ct_registry_types *types, PyObject *carrier)
{
    if (Py_IS_TYPE(carrier, types->trackref_type)) {
        return &((ct_trackref *)carrier)->rec;
    }
    return &((ct_keepref *)carrier)->rec;
}

PyObject *
ct_carrier_object(const ct_registry_types *types, PyObject *carrier)
{
    if (Py_IS_TYPE(carrier, types->trackref_type)) {
        ct_trackref *t = (ct_trackref *)carrier;
        PyObject *obj = t->wr.wr_object;
        if (obj == Py_None || Py_REFCNT(obj) <= 0) {
            return NULL;
        }
        return obj;
    }
    return ((ct_keepref *)carrier)->obj;
}

static int
registry_append(ct_registry *reg, PyObject *carrier)
{
    if (reg->len == reg->cap) {
        /* grow by 1/4: the array is part of the per-object budget */
        size_t cap = reg->cap < 1024 ? 1024 : reg->cap + reg->cap / 4;
        PyObject **items = PyMem_Realloc(reg->items, cap * sizeof(PyObject *));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        reg->items = items;
        reg->cap = cap;
    }
    reg->items[reg->len++] = carrier;   /* steals the reference */
    reg->alive++;
    return 0;
}

/* A TrackRef for an object that has no weak reference yet (one that
 * tp_alloc just returned): what weakref.__new__ does for a subtype with a
 * callback, without argument parsing or list search, since the list is
 * empty.  Not yet tracked by the GC; the caller fills the record and
 * tracks it. */
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

Py_ssize_t
ct_registry_add(ct_registry *reg, const ct_registry_types *types, PyObject *obj,
                PyObject *callback, uint32_t name, int resolution, int keep,
                uint32_t trace, int fresh)
{
    PyObject *carrier;
    ct_record *rec;
    if (resolution < 0) {
        resolution = 0;
    }
    if (resolution > CT_MAX_RESOLUTION) {
        resolution = CT_MAX_RESOLUTION;
    }
    if (keep) {
        ct_keepref *k = PyObject_GC_New(ct_keepref, types->keepref_type);
        if (k == NULL) {
            return -1;
        }
        Py_INCREF(obj);
        k->obj = obj;
        rec = &k->rec;
        carrier = (PyObject *)k;
    }
    else {
        if (Py_TYPE(obj)->tp_weaklistoffset == 0) {
            PyErr_Format(PyExc_TypeError,
                         "cannot track '%.100s' objects: they cannot be weakly "
                         "referenced (give the class a '__weakref__' slot, or "
                         "track with keep=True to hold them alive)",
                         Py_TYPE(obj)->tp_name);
            return -1;
        }
        PyWeakReference **list =
            (PyWeakReference **)((char *)obj + Py_TYPE(obj)->tp_weaklistoffset);
        if (fresh && *list == NULL && (Py_TYPE(obj)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
            carrier = fresh_trackref(types, obj, callback, list);
            if (carrier == NULL) {
                return -1;
            }
            if (carrier != Py_None) {
                rec = &((ct_trackref *)carrier)->rec;
                goto filled;
            }
            Py_DECREF(carrier);
        }
        /* weakref.__new__ only borrows its arguments: one 2-tuple per
         * registry is refilled for each new reference */
        PyObject *args = reg->args;
        if (args == NULL || Py_REFCNT(args) != 1) {
            Py_XDECREF(args);
            args = reg->args = PyTuple_New(2);
            if (args == NULL) {
                return -1;
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
        /* do not keep the tracked object alive through the tuple */
        Py_INCREF(Py_None);
        Py_SETREF(((PyTupleObject *)args)->ob_item[0], Py_None);
        if (carrier == NULL) {
            return -1;
        }
        rec = &((ct_trackref *)carrier)->rec;
    }
filled:
    rec->id = (uintptr_t)obj;
    rec->birth = ct_now();
    rec->name_res = (name << 8) | (uint32_t)resolution;
    rec->trace = trace;
    if (keep || PyObject_GC_IsTracked(carrier) == 0) {
        PyObject_GC_Track(carrier);
    }
    Py_ssize_t index = (Py_ssize_t)reg->len;
    if (registry_append(reg, carrier) < 0) {
        Py_DECREF(carrier);
        return -1;
    }
    return index;
}

/* Position of `carrier` in the array, found by birth (births are sorted). */
static Py_ssize_t
index_of(const ct_registry *reg, const ct_registry_types *types, PyObject *carrier)
{
    double birth = ct_carrier_record(types, carrier)->birth;
    size_t lo = 0, hi = reg->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ct_carrier_record(types, reg->items[mid])->birth < birth) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    for (size_t i = lo; i < reg->len; i++) {
        if (reg->items[i] == carrier) {
            return (Py_ssize_t)i;
        }
        if (ct_carrier_record(types, reg->items[i])->birth > birth) {
            break;
        }
    }
    return -1;
}

Py_ssize_t
ct_registry_find_weak(const ct_registry *reg, const ct_registry_types *types,
                      PyObject *obj, PyObject *callback)
{
    Py_ssize_t off = Py_TYPE(obj)->tp_weaklistoffset;
    if (off == 0) {     /* negative for 3.12+'s managed weakref list */
        return -1;
    }
    PyWeakReference *wr = *(PyWeakReference **)((char *)obj + off);
    for (; wr != NULL; wr = wr->wr_next) {
        if (Py_IS_TYPE(wr, types->trackref_type) && wr->wr_callback == callback) {
            return index_of(reg, types, (PyObject *)wr);
        }
    }
    return -1;
}

double
ct_carrier_death(const ct_registry_types *types, PyObject *carrier)
{
    if (!Py_IS_TYPE(carrier, types->trackref_type)) {
        return 0.0;
    }
    const ct_trackref *t = (const ct_trackref *)carrier;
    if (t->wr.wr_object != Py_None) {
        return 0.0;
    }
    double death;
    memcpy(&death, &t->wr.wr_prev, sizeof(death));
    /* cleared but the callback has not run yet: dead, time not stamped */
    return death > 0.0 ? death : t->rec.birth + 1e-9;
}

void
ct_registry_mark_dead(ct_registry *reg, const ct_registry_types *types,
                      PyObject *carrier)
{
    if (!Py_IS_TYPE(carrier, types->trackref_type)) {
        return;
    }
    ct_trackref *t = (ct_trackref *)carrier;
    if (t->wr.wr_object != Py_None || t->wr.wr_prev != NULL) {
        return;     /* not cleared (cannot happen), or stamped already */
    }
    double now = ct_now();
    memcpy(&t->wr.wr_prev, &now, sizeof(now));
    if (reg->alive > 0) {
        reg->alive--;
    }
}

size_t
ct_registry_footprint(const ct_registry *reg, const ct_registry_types *types)
{
    size_t bytes = reg->cap * sizeof(PyObject *);
    for (size_t i = 0; i < reg->len; i++) {
        PyObject *c = reg->items[i];
        bytes += 2 * sizeof(void *)   /* GC header */
                 + (size_t)(Py_IS_TYPE(c, types->trackref_type)
                            ? sizeof(ct_trackref) : sizeof(ct_keepref));
    }
    return bytes;
}
