/* hooks.c - tp_alloc hooks on tracked classes.  See hooks.h.
 *
 * State (process-wide, like the type slots it mirrors; GIL-guarded):
 *   hook_entries[0 .. n_entries): one per hooked type.  entry.type is a
 *     strong reference, entry.orig the tp_alloc we replaced (never NULL),
 *     entry.owners the trackers (strong) with their settings.
 *   orig_build_class: strong, builtins.__build_class__ as we found it,
 *     non-NULL exactly while our wrapper is installed.
 * Anything that can run Python code (registering an object allocates,
 * which can trigger the GC, finalizers and so more hooks or even
 * track_class) may reallocate hook_entries, so no entry pointer is held
 * across such a call: the code re-finds the entry by type, or checks
 * hook_epoch, which every change to the table or to an owner list bumps.
 */
#include "tracker/hooks.h"
#include "base/compat.h"
#include "tracker/deathwatch.h"
#include "base/layout.h"
#include "base/ptrset.h"

typedef struct {
    PyTypeObject *type;     /* strong */
    allocfunc orig;
    Py_ssize_t presize;     /* ct_deathwatch_type_presize(type) */
    unsigned per_page;      /* ct_livemap_per_page of its instances' blocks */
    ct_hook_owner *owners;  /* PyMem array, owners[i].tracker strong */
    size_t nowners;
    ct_tracker *fast;       /* borrowed (an owner) or NULL: see refresh_fast */
    uint32_t fast_name_res; /* its name << 8 | resolution */
    int bypass;             /* creation_bypasses_alloc(type): the reference
                               tracer registers its instances too */
} ct_hook_entry;

static ct_hook_entry *hook_entries;
static size_t n_entries;
static size_t cap_entries;
static PyObject *orig_build_class;
static PyObject *build_class_wrapper;
static PyObject *class_watcher;     /* strong or NULL: called with each new class */
static uint64_t hook_epoch;         /* bumped by every change of hook_entries */

static PyObject *ct_hook_alloc(PyTypeObject *type, Py_ssize_t nitems);
static void reftracer_update(void);

/* hook_index: type address -> entry number (base/ptrset.h's ct_ptrmap),
 * so that finding an entry costs the same with 5,000 hooked classes as
 * with one.  Its capacity is a power of two at least twice n_entries,
 * or 0 while the table is small enough to scan (CT_SCAN_ENTRIES).
 * Rebuilt whenever entries move (index_rebuild); a new last entry is one
 * insertion (index_add_last). */
static ct_ptrmap hook_index;
#define CT_SCAN_ENTRIES 8

/* Makes hook_index describe hook_entries[0 .. n_entries).  On memory
 * failure the index is dropped and lookups scan (correct, only slower). */
static void
index_rebuild(void)
{
    if (n_entries <= CT_SCAN_ENTRIES) {
        ct_ptrmap_clear(&hook_index);
        return;
    }
    size_t cap = hook_index.cap ? hook_index.cap : 64;
    while (cap < 2 * n_entries) {
        cap *= 2;
    }
    ct_ptrmap_clear(&hook_index);
    if (ct_ptrmap_resize(&hook_index, cap) < 0) {
        return;
    }
    for (size_t i = 0; i < n_entries; i++) {
        ct_ptrmap_slot *e = ct_ptrmap_slot_of(&hook_index, hook_entries[i].type);
        ct_ptrmap_fill(&hook_index, e, hook_entries[i].type, (uint32_t)i);
    }
}

/* Makes hook_index describe a new last entry: one insertion while the
 * index has room for it (a class statement under a tracked class must
 * not cost a rebuild of the whole index), else index_rebuild. */
static void
index_add_last(void)
{
    if (hook_index.cap == 0 || hook_index.cap < 2 * n_entries) {
        index_rebuild();
        return;
    }
    ct_hook_entry *last = &hook_entries[n_entries - 1];
    ct_ptrmap_slot *e = ct_ptrmap_slot_of(&hook_index, last->type);
    if (e->key == 0) {
        ct_ptrmap_fill(&hook_index, e, last->type, (uint32_t)(n_entries - 1));
    }
    else {
        e->val = (uint32_t)(n_entries - 1);
    }
}

static ct_hook_entry *
entry_of(PyTypeObject *type)
{
    if (hook_index.cap == 0) {
        for (size_t i = 0; i < n_entries; i++) {
            if (hook_entries[i].type == type) {
                return &hook_entries[i];
            }
        }
        return NULL;
    }
    uint32_t i;
    return ct_ptrmap_get(&hook_index, type, &i) ? &hook_entries[i] : NULL;
}

/* The entry for type, or for its nearest hooked ancestor (a type that
 * inherited our tp_alloc without being hooked itself). */
static ct_hook_entry *
entry_for_alloc(PyTypeObject *type)
{
    ct_hook_entry *e = entry_of(type);
    if (e != NULL || type->tp_mro == NULL) {
        return e;
    }
    PyObject *mro = type->tp_mro;
    for (Py_ssize_t i = 1; i < PyTuple_GET_SIZE(mro); i++) {
        e = entry_of((PyTypeObject *)PyTuple_GET_ITEM(mro, i));
        if (e != NULL) {
            return e;
        }
    }
    return NULL;
}

/* Register a fresh obj with every owner of its class: the general path
 * (any settings, several owners).  0, or -1 with an exception (obj is
 * left alone). */
static int
track_owners(PyTypeObject *type, PyObject *obj, Py_ssize_t presize)
{
    for (size_t i = 0;; i++) {
        ct_hook_entry *e = entry_for_alloc(type);
        if (e == NULL || i >= e->nowners) {
            break;
        }
        ct_hook_owner o = e->owners[i];
        int is_new;
        Py_INCREF(o.tracker);
        /* the first owner sees a fresh object; later owners' trackers
         * find the first one's weak reference in the list */
        const ct_track_opts opts = {
            .name = o.name, .resolution = o.resolution, .keep = o.keep, .trace = o.trace,
            .fresh = i == 0, .presize = presize,
        };
        Py_ssize_t r = ct_tracker_track(o.tracker, obj, &opts, &is_new);
        Py_DECREF(o.tracker);
        if (r < 0) {
            return -1;
        }
    }
    return 0;
}

/* obj comes from tp_alloc, which gave it to the collector before its C
 * base's tp_new filled it (deque_new sets its block pointers after,
 * dict_new its keys, set_new its table).  Tracking it on the general path
 * may allocate (names, weak references, traces), and on 3.9-3.11 an
 * allocation can run a collection, which would traverse the half-built
 * object.  So the automatic collections are off meanwhile (taking obj
 * off the collector's lists instead is no good: a debug build's
 * PyObject_GC_Track traverses the object it is given back).  3.12+
 * collects only between bytecodes.  Returns whether they were on. */
static int
collections_pause(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return 0;
#else
    int was = ct_gc_disable();
    if (was < 0) {
        PyErr_Clear();      /* no exception is in flight here */
        return 0;
    }
    return was;
#endif
}

/* After collections_pause: back on if they were, leaving the exception
 * of a failed tracking as it is. */
static void
collections_resume(int was)
{
#if PY_VERSION_HEX < 0x030C0000
    if (!was) {
        return;
    }
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (ct_gc_enable() < 0) {
        PyErr_Clear();
    }
    PyErr_Restore(et, ev, tb);
#else
    (void)was;
#endif
}

/* track_owners for ct_hook_alloc: returns obj, or NULL with an exception
 * (obj released). */
static PyObject * __attribute__((noinline))
track_general(PyTypeObject *type, PyObject *obj, Py_ssize_t presize)
{
    int paused = collections_pause();
    int r = track_owners(type, obj, presize);
    collections_resume(paused);
    if (r < 0) {
        Py_DECREF(obj);
        return NULL;
    }
    return obj;
}

/* An entry's fast owner: its only owner when that one asks for neither
 * keep nor trace and the death watch can follow the class's instances
 * (presize known); else NULL.  Recomputed at every change of the entry. */
static void
refresh_fast(ct_hook_entry *e)
{
    e->fast = NULL;
    if (e->nowners == 1 && e->presize >= 0 && !e->owners[0].keep && !e->owners[0].trace) {
        e->fast = e->owners[0].tracker;
        e->fast_name_res = ct_name_res(e->owners[0].name, e->owners[0].resolution);
    }
}

/* The last object the reference tracer registered (see below), so that
 * ct_hook_alloc does not register it twice when the tracer saw it being
 * made inside the original tp_alloc. */
static PyObject *tracer_last;

static PyObject *
ct_hook_alloc(PyTypeObject *type, Py_ssize_t nitems)
{
    ct_hook_entry *e = entry_for_alloc(type);
    tracer_last = NULL;
    if (e == NULL || e->type != type || e->fast == NULL) {
        /* an unhooked subclass that inherited the hook, or the general
         * settings: the entry's cached answers hold for its own type only */
        Py_ssize_t presize = e != NULL && e->type == type ? e->presize : -2;
        PyObject *obj = (e != NULL ? e->orig : PyType_GenericAlloc)(type, nitems);
        if (obj != NULL && obj == tracer_last) {
            return obj;     /* registered by the reference tracer */
        }
        return obj == NULL ? NULL : track_general(type, obj, presize);
    }
    Py_ssize_t presize = e->presize;
    uint64_t epoch = hook_epoch;
    /* may run the collector, finalizers, any code: e may dangle after */
    PyObject *obj = e->orig(type, nitems);
    if (obj == NULL || obj == tracer_last) {
        return obj;
    }
    /* The common case, inline and without any call that can allocate:
     * e is still valid (epoch), the watch follows obj, and its class is
     * its name's class (else the record needs a class override). */
    if (epoch == hook_epoch) {
        ct_tracker *t = e->fast;
        void *block = ct_deathwatch_covers_known(obj, presize);
        if (block != NULL && t->name_types != NULL
            && PyList_GET_ITEM(t->name_types, e->fast_name_res >> 8) == (PyObject *)type
            && ct_registry_add_fresh(&t->reg, obj, block, e->fast_name_res, e->per_page)) {
            return obj;
        }
    }
    return track_general(type, obj, presize);
}

/* -- creation that bypasses tp_alloc: the reference tracer ---------------
 *
 * CPython 3.14's set and frozenset constructors (make_new_set) and 3.15's
 * dict constructor allocate with _PyType_AllocNoTrack(type, 0) directly,
 * not through type->tp_alloc, so that the collector never sees a
 * half-built object: for their subclasses the tp_alloc hook is never
 * called, on any creation path (call, cls.__new__(cls), copy, pickle).
 * Those built-ins are recognised by their own tp_alloc, which is
 * _PyType_AllocNoTrack (3.14: dict, set, frozenset; 3.15 also
 * frozendict), found on the class's nearest static base.
 *
 * Every object passes _Py_NewReference, which calls the reference tracer
 * (PyRefTracer, 3.13+; needed and used from 3.14) with PyRefTracer_CREATE
 * once the object has its type and a reference count of 1 (its memory
 * zeroed, not yet GC tracked).  While a hooked class has such a base, ct_reftracer is
 * installed (chaining to any tracer that was there) and registers the
 * instances of hooked classes whose creation may bypass tp_alloc, exactly
 * as ct_hook_alloc would.  ct_hook_alloc skips an object the tracer has
 * just registered (tracer_last), so a path that does use tp_alloc (3.14's
 * dict) registers it once.
 *
 * Hazard: tracemalloc.start() replaces the tracer with its own and
 * tracemalloc.stop() clears it.  ct_hook_reftracer_check (every hook
 * change, every snapshot) re-installs ours on top, chaining to whatever
 * is there; objects made while it was away are not tracked. */
#if PY_VERSION_HEX >= 0x030E0000
/* 3.14+: PyRefTracer is 3.13's, but _PyType_AllocNoTrack is exported (and
 * bypassed by built-in constructors) only from 3.14 */
#define CT_HAVE_REFTRACER 1
PyAPI_FUNC(PyObject *) _PyType_AllocNoTrack(PyTypeObject *type, Py_ssize_t nitems);

static size_t n_bypass;             /* entries with bypass set */
static int reftracer_installed;     /* ours is (or was last seen) installed */
static PyRefTracer prev_tracer;     /* the tracer ours chains to */
static void *prev_tracer_data;
/* The tracer is process-wide: interpreters with their own GIL create
 * objects through it concurrently.  Only the interpreter that installed
 * it (whose GIL guards the hook table) is looked at. */
static PyInterpreterState *tracer_interp;

static int
creation_bypasses_alloc(PyTypeObject *type)
{
    PyTypeObject *b = type;
    while (b != NULL && (b->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        b = b->tp_base;
    }
    return b != NULL && b->tp_alloc == _PyType_AllocNoTrack;
}

static void __attribute__((noinline))
tracer_register(PyTypeObject *type, PyObject *obj)
{
    ct_hook_entry *e = entry_for_alloc(type);
    if (e == NULL || !e->bypass) {
        return;
    }
    Py_ssize_t presize = e->type == type ? e->presize : -2;
    if (e->type == type && e->fast != NULL) {
        ct_tracker *t = e->fast;
        void *block = ct_deathwatch_covers_known(obj, presize);
        if (block != NULL && t->name_types != NULL
            && PyList_GET_ITEM(t->name_types, e->fast_name_res >> 8) == (PyObject *)type
            && ct_registry_add_fresh(&t->reg, obj, block, e->fast_name_res, e->per_page)) {
            tracer_last = obj;
            return;
        }
    }
    /* the general path allocates (names, weak references, traces): the
     * tracer must leave any exception in flight as it found it, and cannot
     * fail the allocation */
    PyObject *exc = PyErr_GetRaisedException();
    if (track_owners(type, obj, presize) < 0) {
        PyErr_WriteUnraisable((PyObject *)type);
    }
    PyErr_SetRaisedException(exc);
    tracer_last = obj;
}

static int
ct_reftracer(PyObject *obj, PyRefTracerEvent event, void *Py_UNUSED(data))
{
    if (event == PyRefTracer_CREATE && n_bypass > 0) {
        PyThreadState *ts = ct_thread_state_unchecked();
        if (ts == NULL || ts->interp != tracer_interp) {
            goto chain;
        }
        PyTypeObject *type = Py_TYPE(obj);
        if ((type->tp_flags & Py_TPFLAGS_HEAPTYPE) && creation_bypasses_alloc(type)) {
            tracer_register(type, obj);
        }
    }
chain:
    return prev_tracer != NULL ? prev_tracer(obj, event, prev_tracer_data) : 0;
}

/* Installs ct_reftracer while some entry bypasses tp_alloc, removes it
 * (restoring what it chained to) when none does. */
static void
reftracer_update(void)
{
    void *data = NULL;
    PyRefTracer cur = PyRefTracer_GetTracer(&data);
    if (n_bypass > 0) {
        if (cur != ct_reftracer) {
            tracer_interp = PyInterpreterState_Get();
            prev_tracer = cur;
            prev_tracer_data = data;
            if (PyRefTracer_SetTracer(ct_reftracer, NULL) < 0) {
                PyErr_Clear();
                return;
            }
        }
        reftracer_installed = 1;
    }
    else if (reftracer_installed) {
        if (cur == ct_reftracer) {
            /* only if ours is on top: a tracer installed after ours keeps
             * its own state, and ours stays inert (n_bypass == 0) */
            if (PyRefTracer_SetTracer(prev_tracer, prev_tracer_data) < 0) {
                PyErr_Clear();
                return;
            }
            prev_tracer = NULL;
            prev_tracer_data = NULL;
        }
        reftracer_installed = 0;
    }
}

static void
entry_set_bypass(ct_hook_entry *e)
{
    e->bypass = creation_bypasses_alloc(e->type);
    n_bypass += e->bypass != 0;
}

static void
entry_clear_bypass(ct_hook_entry *e)
{
    n_bypass -= e->bypass != 0;
    e->bypass = 0;
}
#else
static void reftracer_update(void) {}
static void entry_set_bypass(ct_hook_entry *e) { e->bypass = 0; }
static void entry_clear_bypass(ct_hook_entry *e) { (void)e; }
#endif

void
ct_hook_reftracer_check(void)
{
    reftracer_update();
}

/* The lookup base/layout.h's ct_alloc_of uses (installed by
 * ct_hook_install before the first hook): the tp_alloc the hook of
 * `type` (or of its hooked ancestor) calls, or type's own tp_alloc when
 * that is not the hook. */
static allocfunc
alloc_of(PyTypeObject *type)
{
    if (type->tp_alloc != ct_hook_alloc) {
        return type->tp_alloc;
    }
    ct_hook_entry *e = entry_for_alloc(type);
    return e != NULL ? e->orig : PyType_GenericAlloc;
}

/* -- builtins.__build_class__ wrapper ------------------------------------ */

/* How many direct subclasses a heap type has: the size of its
 * tp_subclasses dict (NULL until the first subclass; for static types
 * from 3.12 the field is an index, but only heap types are hooked). */
static Py_ssize_t
subclass_count(PyTypeObject *type)
{
    if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        return 0;
    }
    PyObject *subs = (PyObject *)type->tp_subclasses;
    return subs != NULL && PyDict_Check(subs) ? PyDict_GET_SIZE(subs) : 0;
}

/* `tracker`'s owner record on type's entry, or NULL.  Points into the
 * table: valid until the next call that can run Python code. */
static ct_hook_owner *
owner_of(PyTypeObject *type, ct_tracker *tracker)
{
    ct_hook_entry *e = entry_of(type);
    for (size_t k = 0; e != NULL && k < e->nowners; k++) {
        if (e->owners[k].tracker == tracker) {
            return &e->owners[k];
        }
    }
    return NULL;
}

/* Hook a class just created under every tracker that hooks one of its
 * ancestors, with the settings of that tracker's first tracked class
 * (root) in the new class's MRO -- the settings the Python layer gives
 * it (the most specialised tracked base) -- or, for a tracker without a
 * root there (not expected), those of its first hooked ancestor.  Each
 * direct base the tracker hooks counts the new subclass as seen (see
 * ct_hook_unhooked_subclasses). */
static int
hook_new_subclass(PyTypeObject *cls)
{
    if (!(cls->tp_flags & Py_TPFLAGS_HEAPTYPE) || cls->tp_mro == NULL
        || entry_of(cls) != NULL) {
        return 0;
    }
    PyObject *mro = Py_NewRef(cls->tp_mro);
    int rc = 0;
    for (int roots_only = 1; rc == 0 && roots_only >= 0; roots_only--) {
        for (Py_ssize_t i = 1; rc == 0 && i < PyTuple_GET_SIZE(mro); i++) {
            PyTypeObject *base = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
            for (size_t k = 0;; k++) {
                ct_hook_entry *e = entry_of(base);
                if (e == NULL || k >= e->nowners) {
                    break;
                }
                ct_hook_owner o = e->owners[k];
                if ((roots_only && !o.root) || owner_of(cls, o.tracker) != NULL) {
                    continue;
                }
                Py_INCREF(o.tracker);
                rc = ct_hook_install(cls, o.tracker, o.name, o.resolution, o.keep,
                                     o.trace, 0);
                PyObject *bases = cls->tp_bases;
                for (Py_ssize_t b = 0; rc == 0 && bases && b < PyTuple_GET_SIZE(bases); b++) {
                    ct_hook_owner *seen = owner_of(
                        (PyTypeObject *)PyTuple_GET_ITEM(bases, b), o.tracker);
                    if (seen != NULL) {
                        seen->nsubs++;
                    }
                }
                Py_DECREF(o.tracker);
                if (rc < 0) {
                    break;
                }
            }
        }
    }
    Py_DECREF(mro);
    return rc;
}

static PyObject *
build_class(PyObject *original, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames)
{
    PyObject *cls = PyObject_Vectorcall(original, args, (size_t)nargs, kwnames);
    if (cls != NULL && PyType_Check(cls) && n_entries > 0
        && hook_new_subclass((PyTypeObject *)cls) < 0) {
        Py_CLEAR(cls);
    }
    if (cls != NULL && class_watcher != NULL) {
        /* the watcher must never break the program that defines classes */
        PyObject *watcher = Py_NewRef(class_watcher);
        PyObject *r = PyObject_CallOneArg(watcher, cls);
        if (r == NULL) {
            PyErr_WriteUnraisable(watcher);
        }
        Py_XDECREF(r);
        Py_DECREF(watcher);
    }
    return cls;
}

static PyMethodDef build_class_def = {
    "__build_class__", (PyCFunction)(void (*)(void))build_class,
    METH_FASTCALL | METH_KEYWORDS,
    "__build_class__(func, name, /, *bases, [metaclass], **kwds) -> class\n\n"
    "builtins.__build_class__, watched by classtrack while classes are "
    "tracked so that new subclasses of tracked classes are tracked too.",
};

static PyObject *
builtins_dict(void)
{
    PyObject *mod = PyImport_AddModule("builtins");   /* borrowed */
    return mod == NULL ? NULL : PyModule_GetDict(mod);
}

static int
install_build_class_wrapper(void)
{
    if (orig_build_class != NULL) {
        return 0;
    }
    PyObject *bdict = builtins_dict();
    if (bdict == NULL) {
        return -1;
    }
    PyObject *orig = PyDict_GetItemString(bdict, "__build_class__");  /* borrowed */
    if (orig == NULL) {
        return 0;   /* nothing to wrap (interpreter shutting down) */
    }
    Py_INCREF(orig);   /* PyCFunction_New may run the GC, and code that
                          replaces __build_class__ or installs us */
    PyObject *wrapper = PyCFunction_New(&build_class_def, orig);
    Py_DECREF(orig);
    if (wrapper == NULL) {
        return -1;
    }
    if (orig_build_class != NULL) {     /* installed meanwhile */
        Py_DECREF(wrapper);
        return 0;
    }
    if (PyDict_SetItemString(bdict, "__build_class__", wrapper) < 0) {
        Py_DECREF(wrapper);
        return -1;
    }
    Py_INCREF(orig);
    orig_build_class = orig;
    build_class_wrapper = wrapper;
    return 0;
}

static void
remove_build_class_wrapper(void)
{
    if (orig_build_class == NULL) {
        return;
    }
    PyObject *bdict = builtins_dict();
    if (bdict != NULL) {
        PyObject *cur = PyDict_GetItemString(bdict, "__build_class__");
        if (cur == build_class_wrapper
            && PyDict_SetItemString(bdict, "__build_class__", orig_build_class) < 0) {
            PyErr_Clear();
        }
    }
    else {
        PyErr_Clear();
    }
    Py_CLEAR(orig_build_class);
    Py_CLEAR(build_class_wrapper);
}

/* The wrapper stays while classes are hooked or a watcher is set. */
static void
maybe_remove_build_class_wrapper(void)
{
    if (n_entries == 0 && class_watcher == NULL) {
        remove_build_class_wrapper();
    }
}

/* -- install / remove ---------------------------------------------------- */

int
ct_hook_install(PyTypeObject *type, ct_tracker *tracker, uint32_t name,
                int resolution, int keep, int trace, int root)
{
    ct_layout_set_alloc_of(alloc_of);
    if (!(type->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        PyErr_Format(PyExc_TypeError,
                     "cannot track class '%.100s': it is implemented in C "
                     "(a static type); track its instances with track_object "
                     "instead, or subclass it in Python and track the subclass",
                     type->tp_name);
        return -1;
    }
    if (type->tp_alloc == NULL) {
        PyErr_Format(PyExc_TypeError, "cannot track class '%.100s': no tp_alloc",
                     type->tp_name);
        return -1;
    }
    assert(resolution >= 0 && resolution <= CT_MAX_RESOLUTION);
    ct_hook_owner owner = {tracker, name, (uint8_t)resolution,
                           (uint8_t)(keep != 0), (uint8_t)(trace != 0),
                           (uint8_t)(root != 0), 0};
    ct_hook_entry *e = entry_of(type);
    if (e == NULL) {
        if (n_entries == cap_entries) {
            size_t cap = cap_entries ? cap_entries * 2 : 16;
            ct_hook_entry *ents = PyMem_Realloc(hook_entries, cap * sizeof(*ents));
            if (ents == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            hook_entries = ents;
            cap_entries = cap;
            hook_epoch++;
        }
        if (install_build_class_wrapper() < 0) {
            return -1;
        }
        if (n_entries == cap_entries || entry_of(type) != NULL) {
            /* the wrapper's allocation ran code (the GC) that hooked classes */
            PyErr_SetString(PyExc_RuntimeError, "hook table changed while hooking");
            return -1;
        }
        hook_epoch++;
        e = &hook_entries[n_entries++];
        Py_INCREF(type);
        e->type = type;
        index_add_last();
        e->owners = NULL;
        e->nowners = 0;
        e->fast = NULL;
        e->bypass = 0;
        if (type->tp_alloc == ct_hook_alloc) {
            /* inherited from a hooked base: chain to that base's original */
            ct_hook_entry *base = NULL;
            PyObject *mro = type->tp_mro;
            for (Py_ssize_t i = 1; mro && base == NULL && i < PyTuple_GET_SIZE(mro); i++) {
                base = entry_of((PyTypeObject *)PyTuple_GET_ITEM(mro, i));
            }
            e->orig = base != NULL ? base->orig : PyType_GenericAlloc;
        }
        else {
            e->orig = type->tp_alloc;
        }
        type->tp_alloc = ct_hook_alloc;
        e->presize = -2;
        e->per_page = 256;
        PyType_Modified(type);  /* 3.12+ runs type watchers: code that may
                                   hook classes and move hook_entries */
        e = entry_of(type);
        if (e == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "hook table changed while hooking");
            return -1;
        }
        e->presize = ct_deathwatch_type_presize(type);
        e->per_page = ct_deathwatch_per_page(type, e->presize);
        refresh_fast(e);
        entry_set_bypass(e);
        reftracer_update();
    }
    hook_epoch++;
    owner.nsubs = subclass_count(type);    /* the caller hooks them all */
    for (size_t i = 0; i < e->nowners; i++) {
        if (e->owners[i].tracker == tracker) {
            e->owners[i] = owner;
            refresh_fast(e);
            return 0;
        }
    }
    ct_hook_owner *owners = PyMem_Realloc(e->owners, (e->nowners + 1) * sizeof(*owners));
    if (owners == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(tracker);
    owners[e->nowners] = owner;
    e->owners = owners;
    e->nowners++;
    refresh_fast(e);
    return 0;
}

/* Drops an entry without owners; restores the slot if it is still ours. */
static void
drop_entry_if_unowned(ct_hook_entry *e)
{
    if (e->nowners != 0) {
        return;
    }
    PyTypeObject *type = e->type;
    if (type->tp_alloc != ct_hook_alloc) {
        /* someone replaced our slot: keep chaining forever (the entry
         * registers nothing without owners) */
        entry_clear_bypass(e);
        reftracer_update();
        return;
    }
    type->tp_alloc = e->orig;
    PyMem_Free(e->owners);
    entry_clear_bypass(e);
    hook_epoch++;
    *e = hook_entries[--n_entries];
    index_rebuild();
    reftracer_update();
    /* after the table is consistent: 3.12+ type watchers may run code */
    PyType_Modified(type);
    maybe_remove_build_class_wrapper();
    Py_DECREF(type);
}

int
ct_hook_remove(PyTypeObject *type, ct_tracker *tracker)
{
    ct_hook_entry *e = entry_of(type);
    if (e == NULL) {
        return -1;
    }
    for (size_t i = 0; i < e->nowners; i++) {
        if (e->owners[i].tracker == tracker) {
            hook_epoch++;
            e->owners[i] = e->owners[--e->nowners];
            refresh_fast(e);
            drop_entry_if_unowned(e);
            Py_DECREF(tracker);
            return 0;
        }
    }
    return -1;
}

void
ct_hook_remove_all(ct_tracker *tracker)
{
    size_t i = n_entries;
    while (i-- > 0) {
        if (i < n_entries) {
            (void)ct_hook_remove(hook_entries[i].type, tracker);
        }
    }
}

PyObject *
ct_hook_types_of(ct_tracker *tracker)
{
    PyObject *out = PyList_New(0);
    for (size_t i = 0; out != NULL && i < n_entries; i++) {
        for (size_t k = 0; k < hook_entries[i].nowners; k++) {
            if (hook_entries[i].owners[k].tracker == tracker
                && PyList_Append(out, (PyObject *)hook_entries[i].type) < 0) {
                Py_CLEAR(out);
                break;
            }
        }
    }
    return out;
}

PyObject *
ct_hook_unhooked_subclasses(ct_tracker *tracker)
{
    PyObject *changed = PyList_New(0);
    PyObject *out = PyList_New(0);
    PyObject *subclasses = NULL;
    if (changed == NULL || out == NULL) {
        goto error;
    }
    /* first the types whose count moved (no code runs in this loop: a
     * list append allocates no GC object), then their subclasses */
    for (size_t i = 0; i < n_entries; i++) {
        ct_hook_entry *e = &hook_entries[i];
        for (size_t k = 0; k < e->nowners; k++) {
            Py_ssize_t n;
            if (e->owners[k].tracker != tracker
                || (n = subclass_count(e->type)) == e->owners[k].nsubs) {
                continue;
            }
            e->owners[k].nsubs = n;
            if (PyList_Append(changed, (PyObject *)e->type) < 0) {
                goto error;
            }
        }
    }
    if (PyList_GET_SIZE(changed) == 0) {
        Py_DECREF(changed);
        return out;
    }
    /* type's own method: a metaclass cannot answer in its place */
    subclasses = PyObject_GetAttrString((PyObject *)&PyType_Type, "__subclasses__");
    if (subclasses == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(changed); i++) {
        PyObject *subs = PyObject_CallOneArg(subclasses, PyList_GET_ITEM(changed, i));
        if (subs == NULL) {
            goto error;
        }
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(subs); j++) {
            PyObject *sub = PyList_GET_ITEM(subs, j);
            if (PyType_Check(sub) && owner_of((PyTypeObject *)sub, tracker) == NULL
                && PyList_Append(out, sub) < 0) {
                Py_DECREF(subs);
                goto error;
            }
        }
        Py_DECREF(subs);
    }
    Py_DECREF(subclasses);
    Py_DECREF(changed);
    return out;
error:
    Py_XDECREF(subclasses);
    Py_XDECREF(changed);
    Py_XDECREF(out);
    return NULL;
}

/* _core.hooked_types() -> list of every type hooked by any tracker. */
static PyObject *
core_hooked_types(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(0);
    for (size_t i = 0; out != NULL && i < n_entries; i++) {
        if (PyList_Append(out, (PyObject *)hook_entries[i].type) < 0) {
            Py_CLEAR(out);
        }
    }
    return out;
}

/* _core.watch_classes(callable or None): call it with every class a class
 * statement creates (the command line's --track-module/--track-class). */
static PyObject *
core_watch_classes(PyObject *Py_UNUSED(module), PyObject *watcher)
{
    if (watcher != Py_None && !PyCallable_Check(watcher)) {
        PyErr_SetString(PyExc_TypeError, "watch_classes() needs a callable or None");
        return NULL;
    }
    if (watcher == Py_None) {
        Py_CLEAR(class_watcher);
        maybe_remove_build_class_wrapper();
        Py_RETURN_NONE;
    }
    if (install_build_class_wrapper() < 0) {
        return NULL;
    }
    Py_XSETREF(class_watcher, Py_NewRef(watcher));
    Py_RETURN_NONE;
}

PyMethodDef ct_hook_functions[] = {
    {"watch_classes", core_watch_classes, METH_O,
     "watch_classes(callable or None): call it with each class a class statement creates"},
    {"hooked_types", core_hooked_types, METH_NOARGS,
     "hooked_types() -> list of the classes whose creation classtrack watches."},
    {NULL, NULL, 0, NULL},
};
