/* layout.h - what classtrack knows about CPython's object memory layout.
 *
 * Everything that differs between CPython 3.9 and 3.15 in how an object's
 * memory is laid out lives behind these functions: the pre-header (GC head,
 * managed dict and weakref words), where instance attributes are stored
 * (a separate dict; a values array; values inline in the object), and which
 * objects are shared interpreter-wide.
 *
 * Contract for every function here: it only READS memory.  It never calls
 * Python code, never allocates Python objects, never sets an exception and
 * never creates a __dict__ (reading obj.__dict__ through the C API would
 * materialise one on 3.11+, which is exactly the observer effect classtrack
 * must not have).  See ../../../../shared/CPYTHON-NOTES.md for sources.
 */
#ifndef CLASSTRACK_LAYOUT_H
#define CLASSTRACK_LAYOUT_H

#include "base/compat.h"

/* ---- the version gate: the one place that says which layouts are known ----
 *
 * CT_LAYOUT_NEWEST is the newest CPython (major << 8 | minor) whose object
 * layouts this file and layout.c mirror.  On a newer interpreter
 * CT_LAYOUT_KNOWN is 0: the package still builds (the mirrors are compiled
 * but never run, and no private symbol of uncertain existence is referenced),
 * and at run time every size falls back to the type's own __sizeof__ plus
 * the pre-header, with one RuntimeWarning saying sizes are estimates; no
 * field is read at a guessed offset.  Adding a version is one reviewed step:
 * check every `CT_LAYOUT_VERSION` test in layout.c and sizer_types.c against
 * that version's headers, run tests/oracle on it, then raise this number. */
#ifdef CT_LAYOUT_NEWEST_OVERRIDE
/* a test build (setup.py, CLASSTRACK_LAYOUT_NEWEST) pretending to know less */
#define CT_LAYOUT_NEWEST CT_LAYOUT_NEWEST_OVERRIDE
#else
#define CT_LAYOUT_NEWEST 0x030F
#endif

#if (PY_VERSION_HEX >> 16) <= CT_LAYOUT_NEWEST
#define CT_LAYOUT_KNOWN 1
#define CT_LAYOUT_VERSION (PY_VERSION_HEX >> 16)
#else
#define CT_LAYOUT_KNOWN 0
/* compile the newest known branches (most likely to compile); never run */
#define CT_LAYOUT_VERSION CT_LAYOUT_NEWEST
#endif

/* 1 when sizes are estimates: always on an unknown version; on a known one
 * only when a test forced it (ct_layout_force_estimate).  Process-wide,
 * written with the GIL held. */
extern int ct_layout_estimate_forced;
#define CT_ESTIMATE() (!CT_LAYOUT_KNOWN || ct_layout_estimate_forced)

/* ---- kinds of layout knowledge, each checked against the interpreter ----
 *
 * A patch release can change an internal struct.  At first use the sizer
 * (sizer_check.c) builds probe objects of each kind below and compares the
 * blocks it would claim with what the allocator was asked for.  A kind
 * whose probe disagrees is distrusted: its objects are sized as estimates
 * (their __sizeof__ plus pre-header, no mirrored field read), the others
 * stay exact.  An object belongs to every kind whose knowledge its size
 * uses (a dict subclass's instance: instance and dict; any GC object: the
 * GC header). */
enum {
    CT_KIND_GC_HEAD,        /* the GC header in front of GC objects */
    CT_KIND_INSTANCE,       /* instances of classes: managed dict/weakref
                               words, values arrays, inline values */
    CT_KIND_DICT,           /* dict keys and values tables */
    CT_KIND_STR,            /* compact str bodies, UTF-8 cache */
    CT_KIND_INT,            /* int digits */
    CT_KIND_LIST,           /* list item arrays */
    CT_KIND_TUPLE,          /* tuple items */
    CT_KIND_BYTES,          /* bytes bodies */
    CT_KIND_VAR_SUBCLASS,   /* heap subclasses of tuple/int/bytes: the extra
                               item PyType_GenericAlloc adds */
    CT_KIND_CLASS,          /* class objects and their slot members */
    CT_KIND_STRUCTSEQ,      /* struct sequences' hidden fields */
    CT_KIND_DATETIME,       /* naive datetime/time without tzinfo */
    CT_KIND_COUNT
};
#define CT_KIND_BIT(k) (1u << (k))
extern const char *const ct_layout_kind_names[CT_KIND_COUNT];

/* Bit per distrusted kind (CT_KIND_BIT); 0 while every check agreed.
 * Process-wide, written with the GIL held by sizer_check.c. */
extern unsigned ct_layout_distrusted;

/* The kinds whose knowledge sizing o uses. */
unsigned ct_layout_kinds_of(PyObject *o);

/* 1 when o is sized as an estimate: the version is unknown, a test forced
 * it, or one of o's kinds failed its check. */
#define CT_ESTIMATE_FOR(o) \
    (CT_ESTIMATE() || (ct_layout_distrusted != 0 \
                       && (ct_layout_distrusted & ct_layout_kinds_of(o)) != 0))

/* Warns once per process (RuntimeWarning) when sizes are estimates.
 * 0, or -1 with an exception set when warnings are errors. */
int ct_layout_warn_once(void);
/* Test switch: force the estimate path on a known version (1) or leave it
 * (0; no effect on an unknown version).  Re-arms the one warning. */
void ct_layout_force_estimate(int on);

/* sizeof(PyGC_Head): two words in every supported version (3.9-3.15,
 * default and debug builds); the struct itself is internal from 3.9. */
#define CT_GC_HEAD_SIZE (2 * sizeof(void *))

/* PyObject_IS_GC without the function call. */
static inline int
ct_is_gc(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    return PyType_IS_GC(tp) && (tp->tp_is_gc == NULL || tp->tp_is_gc(o));
}

/* Hints the CPU to fetch the instance's separately allocated attribute
 * storage (3.11/3.12 values array), which sizing reads next. */
static inline void
ct_prefetch_attr_storage(PyObject *o)
{
#if CT_LAYOUT_VERSION >= 0x030B && CT_LAYOUT_VERSION < 0x030D
    if (!CT_ESTIMATE_FOR(o) && (Py_TYPE(o)->tp_flags & Py_TPFLAGS_MANAGED_DICT)) {
#if CT_LAYOUT_VERSION >= 0x030C
        __builtin_prefetch((char *)((uintptr_t *)o)[-3] - 8);
#else
        __builtin_prefetch((char *)((uintptr_t *)o)[-4] - 8);
#endif
    }
#else
    (void)o;
#endif
}

/* Bytes allocated in front of the object's address: the GC header for GC
 * objects and, from 3.11, the managed dict / weakref words. */
size_t ct_preheader_size(PyObject *o);
/* The same for instances of tp, when tp has no tp_is_gc (heap classes). */
size_t ct_type_preheader_size(PyTypeObject *tp);

/* The object's body block (the allocation at (char *)o - pre-header), its
 * size in *size, pre-header included, 3.13's inline values included.
 * Returns 1 when *size is exactly what was allocated: fixed-size types
 * (with the special allocators of datetime and time), and types whose item
 * count is a real ob_size (tuple, bytes, int, type and their subclasses;
 * a heap subclass allocated by PyType_GenericAlloc has one item more).
 * Returns 0 when *size is only a lower bound (tp_basicsize + pre-header):
 * a type with tp_itemsize whose item count is not stored where ob_size
 * would be (generators, frames, code, unknown C types), or any type when
 * sizes are estimates.  Never multiplies a field that is not a size. */
int ct_body_size(PyObject *o, size_t *size);

/* For a C type with tp_itemsize that has no __sizeof__ of its own (so
 * CPython's object.__sizeof__, and sys.getsizeof, take ob_size as its item
 * count): _PyObject_VAR_SIZE(tp, ob_size) plus the pre-header in *size.
 * Returns 0 (nothing written) when ob_size is not a plausible count. */
int ct_body_size_from_ob_size(PyObject *o, size_t *size);

/* Learns what layout.c needs from the running interpreter (the struct
 * sequences' tp_dealloc).  Called once from module init; 0 or -1. */
int ct_layout_init(void);

/* The allocator tp's instances really come from: tp->tp_alloc, or, when
 * that is a tracker's tp_alloc hook (tracker/hooks.c), the function the
 * hook calls.  The hooks install their lookup with ct_layout_set_alloc_of
 * before any tp_alloc becomes a hook, so base never calls up into the
 * tracker; until then (no lookup) tp->tp_alloc is the answer.  Never NULL
 * for a type with a tp_alloc.  GIL-guarded. */
typedef allocfunc (*ct_alloc_of_fn)(PyTypeObject *tp);
void ct_layout_set_alloc_of(ct_alloc_of_fn fn);
allocfunc ct_alloc_of(PyTypeObject *tp);

/* Bytes of instance-attribute storage allocated apart from the object and
 * from any dict: the values array of 3.11/3.12, its block start in *block
 * (when block is not NULL).  0 elsewhere (3.13's inline values are part of
 * the body; 3.9/3.10 keep attributes in a dict). */
size_t ct_attr_storage_size(PyObject *o);
size_t ct_attr_storage_block(PyObject *o, const void **block);

/* Bytes of 3.13's inline values inside the body (counted by ct_body_size;
 * the tree code moves them to a virtual __dict__ node).  0 elsewhere. */
size_t ct_inline_values_size(PyObject *o);

/* The separate blocks of a dict: the keys table when the dict owns it
 * (*keys_block, *keys_size; 0 when shared or static), the values array of
 * a split table (*values_block, *values_size; 0 when combined or embedded
 * in an instance).  `total` is the dict's whole flat size as computed by
 * the caller, pre-header included; `body` its body block.  Returns 0, or
 * -1 when the sizes do not add up (the caller then leaves them unlocated). */
int ct_dict_blocks(PyObject *dict, size_t total, size_t body,
                   const void **keys_block, size_t *keys_size,
                   const void **values_block, size_t *values_size);

/* What dict.__sizeof__ misses for a split-table dict (an instance
 * __dict__ materialised on 3.11/3.12): the prefix bytes of its values
 * array, and the difference between the slots it counts (from the class's
 * current keys) and those allocated.  May be negative; 0 elsewhere. */
Py_ssize_t ct_split_values_correction(PyObject *dict);

/* The instance's existing __dict__, borrowed, or NULL.  Never creates one. */
PyObject *ct_existing_dict(PyObject *o);

/* 1 when the object's type keeps a managed dict whose materialised dict
 * is NOT reported by tp_traverse (3.13 with valid inline values), so the
 * caller has to visit ct_existing_dict() itself. */
int ct_dict_hidden_from_traverse(PyObject *o);

/* Calls cb(name, value, arg) for each attribute kept in values storage
 * (3.11+, no dict materialised), in insertion order; both borrowed.
 * Returns 1 when it iterated values, 0 when the object has no values
 * storage (look at ct_existing_dict instead), or the callback's
 * negative result. */
typedef int (*ct_attr_cb)(PyObject *name, PyObject *value, void *arg);
int ct_visit_attr_values(PyObject *o, ct_attr_cb cb, void *arg);

/* 1 when o is shared interpreter-wide rather than owned by whoever refers
 * to it: None/True/False/Ellipsis/NotImplemented, small ints, interned
 * strings, the cached empty and one-character str/bytes, the empty
 * tuple, and (3.12+) every immortal object. */
static inline int ct_is_shared(PyObject *o);

static inline int
ct_is_shared(PyObject *o)
{
#if CT_LAYOUT_VERSION >= 0x030C
    if (ct_is_immortal(o)) {
        return 1;
    }
    if (PyUnicode_CheckExact(o)) {
        return PyUnicode_CHECK_INTERNED(o) != 0;
    }
    return 0;
#else
    if (o == Py_None || o == Py_True || o == Py_False || o == Py_Ellipsis
        || o == Py_NotImplemented) {
        return 1;
    }
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyUnicode_Type) {
        if (PyUnicode_CHECK_INTERNED(o)) {
            return 1;
        }
        if (PyUnicode_IS_READY(o)) {
            Py_ssize_t n = PyUnicode_GET_LENGTH(o);
            return n == 0 || (n == 1 && PyUnicode_READ_CHAR(o, 0) < 256);
        }
        return 0;
    }
    if (tp == &PyLong_Type) {
        Py_ssize_t n = Py_SIZE(o);
        if (n == 0) {
            return 1;
        }
        if (n == 1 || n == -1) {
            long v = (long)((PyLongObject *)o)->ob_digit[0] * (long)n;
            return v >= -5 && v <= 256;
        }
        return 0;
    }
    if (tp == &PyBytes_Type) {
        return Py_SIZE(o) <= 1;
    }
    if (tp == &PyTuple_Type) {
        return Py_SIZE(o) == 0;
    }
    return 0;
#endif
}

#endif
