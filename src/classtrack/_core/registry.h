/* registry.h - the tracked objects of one tracker, as compact C records.
 *
 * Design.  A tracked object's record lives inside the weak reference that
 * watches it: TrackRef is a C subtype of weakref.ref whose extra fields are
 * the record (id, birth, name, resolution, trace).  The death time needs
 * no field of its own: once CPython has cleared a weak reference (its
 * referent died), the reference's list links wr_prev/wr_next are never
 * read again, and the death callback stores the time in wr_prev.  One
 * allocation per tracked object, 104 bytes with the GC header on 3.11-3.13
 * (a 112-byte pymalloc block), and no other per-object structure but one
 * pointer in the registry's array: the budget is 128 bytes per tracked
 * instance, everything included.
 * Objects tracked with keep=True are held strongly by a KeepRef carrying
 * the same record instead (they need no weak reference, so objects that
 * cannot be weakly referenced can be kept).
 *
 * Deaths: every TrackRef has the tracker's one death callback (a C
 * function bound to the tracker); CPython calls it with the TrackRef when
 * the object dies, and it stamps the death time.  Histories are not stored:
 * they are derived from births and deaths on demand.
 *
 * Ownership: the registry's array holds a strong reference to every
 * carrier, in registration order (index = registration number).  A
 * carrier never refers back to the registry except through its callback,
 * which holds the tracker: the tracker is a GC object and traverses both.
 * All access needs the GIL.
 */
#ifndef CLASSTRACK_REGISTRY_H
#define CLASSTRACK_REGISTRY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Resolution levels above this are stored as this. */
#define CT_MAX_RESOLUTION 255
/* Names are numbered; 2**24 distinct names per tracker. */
#define CT_MAX_NAMES (1u << 24)

typedef struct {
    uintptr_t id;       /* id(obj): its address, kept after death */
    double birth;       /* seconds since classtrack was imported */
    uint32_t name_res;  /* name index << 8 | resolution level */
    uint32_t trace;     /* trace number, 0 for none */
} ct_record;

typedef struct {
    PyWeakReference wr;
    ct_record rec;
} ct_trackref;

typedef struct {
    PyObject_HEAD
    PyObject *obj;      /* strong: the kept object */
    ct_record rec;
} ct_keepref;

static inline uint32_t ct_rec_name(const ct_record *r) { return r->name_res >> 8; }
static inline int ct_rec_resolution(const ct_record *r) { return (int)(r->name_res & 0xff); }

typedef struct {
    PyObject **items;   /* strong references to carriers */
    size_t len;
    size_t cap;
    size_t alive;       /* carriers whose object is alive */
    PyObject *args;     /* strong: a reusable 2-tuple for weakref.__new__,
                           holding None between uses */
} ct_registry;

/* Types of the carriers, created by ct_registry_types_init. */
typedef struct {
    PyTypeObject *trackref_type;
    PyTypeObject *keepref_type;
#if PY_VERSION_HEX >= 0x030B0000
    vectorcallfunc weakref_vectorcall;  /* what weakref.__new__ installs */
#endif
} ct_registry_types;

int ct_registry_types_init(PyObject *module, ct_registry_types *types);

/* Seconds since the module was imported (monotonic clock). */
double ct_now(void);
void ct_clock_init(void);

void ct_registry_init(ct_registry *reg);
/* Drops every carrier (their weak references die with them). */
void ct_registry_clear(ct_registry *reg);
int ct_registry_traverse(ct_registry *reg, visitproc visit, void *arg);

/* The record inside a carrier. */
ct_record *ct_carrier_record(const ct_registry_types *types, PyObject *carrier);

/* The carrier's object, borrowed, or NULL once it died. */
PyObject *ct_carrier_object(const ct_registry_types *types, PyObject *carrier);

/* Track obj: appends a carrier.  `callback` is the death callback for
 * weak references; `fresh` says obj was just allocated (from the tp_alloc
 * hook), which allows a faster construction of its weak reference.
 * Returns the new index, or -1 with an exception (TypeError when obj
 * cannot be weakly referenced and keep is false). */
Py_ssize_t ct_registry_add(ct_registry *reg, const ct_registry_types *types,
                           PyObject *obj, PyObject *callback, uint32_t name,
                           int resolution, int keep, uint32_t trace, int fresh);

/* Index of the carrier tracking obj alive in this registry, or -1.  Walks
 * obj's weak reference list (no map needed), then, for keep=True carriers,
 * the caller's keep map. */
Py_ssize_t ct_registry_find_weak(const ct_registry *reg,
                                 const ct_registry_types *types, PyObject *obj,
                                 PyObject *callback);

/* Seconds since import at which the carrier's object died, 0.0 while it
 * is alive (kept objects never die while kept). */
double ct_carrier_death(const ct_registry_types *types, PyObject *carrier);

/* Marks the carrier's object dead now (death callback). */
void ct_registry_mark_dead(ct_registry *reg, const ct_registry_types *types,
                           PyObject *carrier);

/* Bytes the registry holds: carriers and the array. */
size_t ct_registry_footprint(const ct_registry *reg,
                             const ct_registry_types *types);

#endif
