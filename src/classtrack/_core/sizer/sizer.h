/* sizer.h - the exact sizer: true bytes of an object graph.
 *
 * A ct_sizer is the C half of an Asizer.  It remembers every object it has
 * sized (so shared data counts once across calls), two exclusion sets and
 * the policy flags.  Traversal is iterative over an explicit stack, so any
 * depth works and no C recursion happens, except in ct_sizer_tree whose
 * recursion is bounded by the requested detail level.
 *
 * Ownership: the sets hold raw addresses, never references.  The work stack
 * holds a strong reference to each entry, because a user-defined __sizeof__
 * may run Python code (and let other threads run) that drops the last
 * reference to an object still waiting on the stack.
 *
 * All functions need the GIL.  None is re-entrant on the same sizer: the
 * `busy` flag turns re-entry (a __sizeof__ calling back into the same
 * Asizer) into a RuntimeError instead of corrupted state.
 */
#ifndef CLASSTRACK_SIZER_H
#define CLASSTRACK_SIZER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "base/ptrset.h"

/* What is followed and counted besides ordinary data (all off by default). */
enum {
    CT_FOLLOW_TYPES = 1u << 0,      /* classes and other type objects */
    CT_FOLLOW_MODULES = 1u << 1,    /* module objects */
    CT_FOLLOW_FUNCTIONS = 1u << 2,  /* functions, methods, descriptors */
    CT_FOLLOW_CODE = 1u << 3,       /* code objects */
    CT_FOLLOW_FRAMES = 1u << 4,     /* frame objects */
    CT_FOLLOW_SHARED = 1u << 5,     /* None, small ints, interned str, ... */
};

/* Interpreter objects the sizer compares against; owned (strong
 * references) by the module state, filled once by ct_sizer_refs_init. */
typedef struct {
    PyObject *str_sizeof;               /* interned "__sizeof__" */
    PyObject *object_sizeof;            /* object.__sizeof__ descriptor */
    PyTypeObject *method_wrapper_type;  /* type(None.__repr__) */
} ct_sizer_refs;

/* Fill / release a ct_sizer_refs.  0 or -1 with an exception set. */
int ct_sizer_refs_init(ct_sizer_refs *refs);
void ct_sizer_refs_clear(ct_sizer_refs *refs);
/* dst takes its own strong references to src's objects, so that what
 * holds dst does not depend on the module state (cleared at shutdown
 * while instances may still be alive). */
void ct_sizer_refs_copy(ct_sizer_refs *dst, const ct_sizer_refs *src);

typedef struct {
    PyObject *obj;      /* strong reference */
    Py_ssize_t depth;   /* distance from the top-level object */
} ct_stack_entry;

typedef struct {
    ct_ptrset seen;         /* sized already: counts 0 from now on */
    ct_ptrset excl_refs;    /* not followed when reached as a referent */
    ct_ptrset excl_objs;    /* never sized */
    unsigned flags;         /* CT_FOLLOW_* */
    Py_ssize_t limit;       /* max depth followed, or -1 for no limit */
    Py_ssize_t clip;        /* max length of value reprs in names */
    int no_reprs;           /* 1: tree names run no repr: values are named
                               "[V] key", keys that are not str "<type>"
                               (a Tracker made with reprs=False) */
    int roots_seen;         /* 1: every object the caller sizes at top level
                               was put in `seen` first (ct_sizer_mark_root)
                               and is sized all the same, while a path that
                               reaches it as a referent finds it sized (a
                               snapshot's tracked objects: what excl_refs
                               does, without a second set) */
    Py_ssize_t total;       /* bytes counted since the last reset */
    Py_ssize_t leaf_bytes;  /* leaves sized by ct_consider, not yet added */
    ct_stack_entry *stack;  /* work stack, entries [0, sp) are live */
    size_t sp;
    size_t cap;
    PyObject **batch;       /* borrowed referents of the object being
                               expanded, filled by tp_traverse */
    size_t nbatch;
    size_t batchcap;
    int busy;               /* set while a call is running */
    const ct_sizer_refs *refs;  /* borrowed from the module state, which
                                   outlives every sizer */
} ct_sizer;

/* Never fails; `refs` must outlive the sizer. */
void ct_sizer_init(ct_sizer *s, const ct_sizer_refs *refs);
/* Releases everything; the sizer must be initialised again before use. */
void ct_sizer_fini(ct_sizer *s);
/* Forgets what was sized and the total; keeps exclusions and options. */
void ct_sizer_reset(ct_sizer *s);

/* Marks obj, an object the caller will size at top level, as seen (see
 * roots_seen, which the caller sets).  0 or -1 with MemoryError. */
int ct_sizer_mark_root(ct_sizer *s, PyObject *obj);

/* Adds obj to an exclusion set.  0 or -1 with MemoryError. */
int ct_sizer_exclude_ref(ct_sizer *s, PyObject *obj);
int ct_sizer_exclude_obj(ct_sizer *s, PyObject *obj);

/* Bytes of obj and everything it owns not sized before; adds them to
 * s->total.  -1 with an exception set on failure. */
Py_ssize_t ct_sizer_size(ct_sizer *s, PyObject *obj);
/* The same, also giving obj's own flat size (0 when obj counted 0). */
Py_ssize_t ct_sizer_size_flat(ct_sizer *s, PyObject *obj, Py_ssize_t *flat_out);

/* Like ct_sizer_size, but returns the tree (name, size, flat, refs) with
 * referents sized one by one down to `detail` levels.  New reference. */
PyObject *ct_sizer_tree(ct_sizer *s, PyObject *obj, int detail, PyObject *name);

/* The object's own allocations, not counting referents; marks nothing.
 * -1 with an exception set only for BaseExceptions other than Exception
 * raised by a user-defined __sizeof__. */
Py_ssize_t ct_flat_size(ct_sizer *s, PyObject *obj);

/* What a flat size is made of, for the allocator oracle (tests/oracle):
 * flat = body + the located blocks + unlocated. */
#define CT_FLAT_MAX_BLOCKS 4
typedef struct {
    size_t pre;             /* pre-header bytes in front of the object */
    size_t body;            /* the block at (char *)obj - pre, pre included */
    int body_exact;         /* 1: from the layout; 0: the type's __sizeof__
                               (or a lower bound) said so */
    struct {
        const void *addr;   /* start of a separately allocated block */
        size_t size;        /* the bytes counted for it */
    } blocks[CT_FLAT_MAX_BLOCKS];
    int nblocks;
    size_t unlocated;       /* counted for blocks whose address is unknown
                               (a C __sizeof__ said so) */
    const char *how;        /* "exact", "layout", "c-sizeof", "py-sizeof",
                               "estimate" */
} ct_flat_parts;

/* ct_flat_size, also filling *parts. */
Py_ssize_t ct_flat_size_parts(ct_sizer *s, PyObject *obj, ct_flat_parts *parts);

/* Before the first size of the process (sizer_check.c): checks the layout
 * table against the running interpreter once, distrusting the kinds whose
 * probes disagree, and warns once when some or all sizes are estimates.
 * 0, or -1 with an exception set (a warning turned into an error). */
int ct_sizer_ready(const ct_sizer_refs *refs);
/* The check alone, without the warnings (a Tracker runs it when made, so
 * that its first snapshot, maybe a monitor's, is not charged for it). */
int ct_sizer_check_once(const ct_sizer_refs *refs);

/* The layout check's findings as a dict (checked, judged and unjudged
 * blocks per kind, distrusted kinds with their first disagreement).  With
 * rerun, the check runs again first (tests), `corrupt_kind` (a CT_KIND_*,
 * or -1) having its expected sizes put 8 bytes off to force a mismatch.
 * New reference, or NULL with an exception set. */
PyObject *ct_sizer_check_report(const ct_sizer_refs *refs, int rerun, int corrupt_kind);

/* Bytes the sizer itself holds (sets and stack). */
size_t ct_sizer_footprint(const ct_sizer *s);

/* ---- numpy arrays (sizer_types.c) ----
 * A numpy.ndarray is no GC object and has no tp_traverse, yet it holds
 * strong references: to its `base` (what a view's memory belongs to) and,
 * when its dtype is object and it owns its buffer, to every element.  The
 * sizer and the heap graph (graph/) follow them through these two functions, with
 * no numpy header and without ever importing numpy. */

/* 1 when o is an instance of numpy.ndarray or of a subclass, else 0
 * (always 0 until numpy has been imported by someone else).  Never fails,
 * never runs Python code; the first ndarray seen confirms numpy's type
 * against sys.modules (one short-lived str, nothing else). */
int ct_ndarray_check(PyObject *o);

/* Called for each object an ndarray holds: `index` is -1 for its base,
 * else the element's flat index in C order.  `ref` is borrowed from the
 * array: visit must run no Python code.  0 to go on, non-zero to stop
 * (-1 with an exception set for an error). */
typedef int (*ct_ndarray_visitproc)(PyObject *ref, Py_ssize_t index, void *arg);

/* Visits what the ndarray o (ct_ndarray_check(o) == 1) holds: its base
 * (unless None), then, only for an array of dtype object that owns its
 * buffer, each element that is not NULL (a view's elements are its
 * owner's: the owner holds the references).  Elements along a zero
 * stride are visited once.  Returns 0 or the first non-zero value visit
 * returned.  Runs no Python code and creates no object: numpy's own C
 * getters of `base` and `dtype` are called directly. */
int ct_ndarray_visit(PyObject *o, ct_ndarray_visitproc visit, void *arg);

#endif
