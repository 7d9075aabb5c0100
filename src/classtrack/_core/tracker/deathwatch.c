/* deathwatch.c - see deathwatch.h for the design.
 *
 * State (process-wide, like the allocator it wraps; GIL-guarded):
 *   base: the allocator wrapped, valid while installed;
 *   ct_deathwatch_installed: our free function was put in place and not
 *     taken out by us (read inline by the creation path);
 *   requests: trackers that asked for the watch;
 *   watched[0 .. n_watched): registries told about freed blocks.
 * The free function never calls Python and never allocates.
 */
#include "tracker/deathwatch.h"
#include "base/compat.h"
#include "base/layout.h"

#include <string.h>

static PyMemAllocatorEx base;
int ct_deathwatch_installed;
static size_t requests;
/* One per watched client: its livemap (borrowed: the client removes
 * itself before freeing it) and the callbacks it installed. */
typedef struct {
    void *client;
    const ct_livemap *live;
    const ct_deathwatch_client *cb;
} ct_watched;
static ct_watched *watched;
static size_t n_watched, cap_watched;
static destructor subtype_dealloc_fn;
static PyInterpreterState *main_interp;
static void *probe_block;
static int probe_seen;

/* In the interpreter whose frees the watch looks at (3.12+ interpreters
 * may have their own GIL and would race with the main one). */
static inline int
in_watched_interpreter(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyThreadState *ts = ct_thread_state_unchecked();
    return ts == NULL || ts->interp == main_interp;
#else
    return 1;
#endif
}

#if PY_VERSION_HEX >= 0x030C0000
int
ct_deathwatch_in_watched_interpreter(void)
{
    return in_watched_interpreter();
}
#endif

/* A block some client may hold was freed: tell them all.  Out of line,
 * so that the free function stays a few instructions for the rest. */
static void __attribute__((noinline))
block_freed(void *p)
{
    for (size_t i = 0; i < n_watched; i++) {
        watched[i].cb->freed(watched[i].client, p);
    }
}

/* Is p in any watched livemap?  (n_watched > 1) */
static int __attribute__((noinline))
any_may_hold(void *p)
{
    for (size_t i = 0; i < n_watched; i++) {
        if (ct_livemap_contains(watched[i].live, p)) {
            return 1;
        }
    }
    return 0;
}

/* Runs on every free of the object domain in the process: kept to a few
 * instructions for the blocks of untracked objects (one registry, the
 * common case, is asked inline). */
static void
watch_free(void *ctx, void *p)
{
    size_t n = n_watched;
    if (n != 0 && in_watched_interpreter()
        && (n == 1 ? ct_livemap_contains(watched[0].live, p) : any_may_hold(p))) {
        block_freed(p);
    }
    if (p == probe_block && p != NULL) {
        probe_seen = 1;
    }
    base.free(ctx, p);
}

int
ct_deathwatch_init(void)
{
    if (subtype_dealloc_fn != NULL) {
        return 0;
    }
    PyObject *cls = PyObject_CallFunction((PyObject *)&PyType_Type, "s(O){}",
                                          "_classtrack_probe", &PyBaseObject_Type);
    if (cls == NULL) {
        return -1;
    }
    subtype_dealloc_fn = ((PyTypeObject *)cls)->tp_dealloc;
    Py_DECREF(cls);
    return 0;
}

/* tracemalloc is tracing (its hooks would unhook ours when stopped). */
static int
tracemalloc_tracing(void)
{
    PyObject *mod = PyImport_ImportModule("_tracemalloc");
    if (mod == NULL) {
        PyErr_Clear();
        return 0;   /* no tracemalloc in this build: nobody to unhook us */
    }
    PyObject *r = PyObject_CallMethod(mod, "is_tracing", NULL);
    Py_DECREF(mod);
    if (r == NULL) {
        return -1;
    }
    int tracing = PyObject_IsTrue(r);
    Py_DECREF(r);
    return tracing;
}

int
ct_deathwatch_request(void)
{
    if (!ct_deathwatch_installed) {
        int tracing = tracemalloc_tracing();
        if (tracing < 0) {
            return -1;
        }
        if (tracing) {
            return 0;
        }
        PyMemAllocatorEx cur;
        PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &cur);
        /* a hook that had saved the watch may have put it back on top: it
         * is in place then (wrapping it again would make it call itself) */
        if (cur.free != watch_free) {
            base = cur;
            PyMemAllocatorEx ours = base;
            ours.free = watch_free;
            main_interp = PyInterpreterState_Main();
            PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &ours);
        }
        ct_deathwatch_installed = 1;
    }
    requests++;
    return 1;
}

static void maybe_uninstall(void);

void
ct_deathwatch_release(void)
{
    if (requests == 0 || --requests != 0) {
        return;
    }
    maybe_uninstall();
}

static void
maybe_uninstall(void)
{
    if (requests != 0 || n_watched != 0 || !ct_deathwatch_installed) {
        return;
    }
    PyMemAllocatorEx cur;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &cur);
    if (cur.free == watch_free && cur.ctx == base.ctx && cur.malloc == base.malloc
        && cur.calloc == base.calloc && cur.realloc == base.realloc) {
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &base);
        ct_deathwatch_installed = 0;
    }
    /* else someone wrapped the watch: it stays in their chain, idle */
}

int
ct_deathwatch_ready(void)
{
    return ct_deathwatch_installed;
}

/* C classes of extension modules whose deallocator frees an instance of
 * a Python subclass through tp_free, with no free list (deque_dealloc,
 * element_dealloc, 3.9-3.15), known by that deallocator, which every copy
 * of a 3.12+ heap type shares.  Learned from the module the first time a
 * class of that name is seen: a subclass of it means the module is
 * imported, and nothing is imported here. */
typedef struct {
    const char *tp_name, *module, *attr;
    destructor dealloc;     /* NULL until learned */
} ct_known_base;
static ct_known_base known_bases[] = {
    {"collections.deque", "_collections", "deque", NULL},
    {"xml.etree.ElementTree.Element", "_elementtree", "Element", NULL},
};

static int
known_extension_base(PyTypeObject *tp)
{
    for (size_t i = 0; i < sizeof(known_bases) / sizeof(known_bases[0]); i++) {
        ct_known_base *k = &known_bases[i];
        if (strcmp(tp->tp_name, k->tp_name) != 0) {
            continue;
        }
        if (k->dealloc == NULL) {
            PyObject *cls = ct_imported_attr(k->module, k->attr);
            if (cls != NULL && PyType_Check(cls)) {
                k->dealloc = ((PyTypeObject *)cls)->tp_dealloc;
            }
            Py_XDECREF(cls);
        }
        return k->dealloc != NULL && tp->tp_dealloc == k->dealloc;
    }
    return 0;
}

/* Types whose dealloc frees instances of Python subclasses via tp_free. */
static int
frees_through_tp_free(PyTypeObject *tp)
{
    /* CPython's own exceptions are static types named without a module */
    /* str: unicode_dealloc frees a subclass instance's separate data
     * buffer, then the instance through tp_free (3.9-3.15); such instances
     * are never interned (interning takes exact str only).  tuple, int:
     * the free lists (and 3.12+'s immortal small ints) take exact
     * instances only.  Not module: module_dealloc frees through tp_free,
     * but 3.11+'s ModuleType.__new__ allocates with _PyType_AllocNoTrack,
     * never through the tp_alloc hook: no instance would be recorded */
    return tp == &PyBaseObject_Type || tp == &PyDict_Type || tp == &PyList_Type
           || tp == &PySet_Type || tp == &PyFrozenSet_Type || tp == &PyUnicode_Type
           || tp == &PyTuple_Type || tp == &PyLong_Type
           || (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) && strchr(tp->tp_name, '.') == NULL
               && PyType_IsSubtype(tp, (PyTypeObject *)PyExc_BaseException))
           || known_extension_base(tp);
}

/* Variable-sized instances are covered only when their block never moves:
 * the watch sees frees, not reallocations.  _PyTuple_Resize refuses
 * subclass instances, and ints are never resized once made; bytes
 * (_PyBytes_Resize takes subclasses) are left out. */
static int
never_resized(PyTypeObject *c_base)
{
    return c_base == &PyTuple_Type || c_base == &PyLong_Type;
}

Py_ssize_t
ct_deathwatch_type_presize(PyTypeObject *tp)
{
#if SIZEOF_VOID_P < 8
    /* 8-byte objects could share a livemap unit */
    (void)tp;
    return -1;
#endif
    if (tp->tp_dealloc != subtype_dealloc_fn
        || (tp->tp_free != PyObject_GC_Del && tp->tp_free != PyObject_Del)
        || tp->tp_is_gc != NULL) {
        return -1;
    }
    if (ct_alloc_of(tp) != PyType_GenericAlloc) {
        return -1;
    }
    PyTypeObject *b = tp->tp_base;
    while (b != NULL && b->tp_dealloc == subtype_dealloc_fn) {
        b = b->tp_base;
    }
    if (b == NULL || !frees_through_tp_free(b) || (tp->tp_itemsize != 0 && !never_resized(b))) {
        return -1;
    }
    return (Py_ssize_t)ct_type_preheader_size(tp);
}

int
ct_weakref_follows_type(PyTypeObject *tp)
{
    if (tp->tp_weaklistoffset == 0) {
        return 0;
    }
    /* the class's C ancestor (the first whose tp_dealloc is not
     * subtype_dealloc) must not own the weak-reference list: C code such as
     * deque_new clears that list after tp_alloc, which is where the tracking
     * reference is made, and the death would never be heard of */
    PyTypeObject *b = tp;
    while (b != NULL && subtype_dealloc_fn != NULL && b->tp_dealloc == subtype_dealloc_fn) {
        b = b->tp_base;
    }
    return b == NULL || b->tp_weaklistoffset == 0;
}

int
ct_deathwatch_covers_type(PyTypeObject *tp)
{
    return ct_deathwatch_installed && in_watched_interpreter() && ct_deathwatch_type_presize(tp) >= 0;
}

void *
ct_deathwatch_covers(PyObject *obj, Py_ssize_t presize)
{
    if (!ct_deathwatch_installed) {
        return NULL;    /* before the type walk: the weak-reference fallback */
    }
    if (presize == CT_PRESIZE_UNKNOWN) {
        presize = ct_deathwatch_type_presize(Py_TYPE(obj));
    }
    return presize < 0 ? NULL : ct_deathwatch_covers_known(obj, presize);
}

int
ct_deathwatch_add(void *client, const ct_livemap *live, const ct_deathwatch_client *cb)
{
    for (size_t i = 0; i < n_watched; i++) {
        if (watched[i].client == client) {
            return 0;
        }
    }
    if (n_watched == cap_watched) {
        size_t cap = cap_watched ? cap_watched * 2 : 8;
        ct_watched *w = PyMem_RawRealloc(watched, cap * sizeof(*w));
        if (w == NULL) {
            return -1;
        }
        watched = w;
        cap_watched = cap;
    }
    watched[n_watched].client = client;
    watched[n_watched].live = live;
    watched[n_watched].cb = cb;
    n_watched++;
    return 0;
}

void
ct_deathwatch_remove(void *client)
{
    for (size_t i = 0; i < n_watched; i++) {
        if (watched[i].client == client) {
            watched[i] = watched[--n_watched];
            maybe_uninstall();
            return;
        }
    }
}

/* 1 if the installed watch still sees frees (it is the current allocator,
 * or a probe block allocated and freed reaches it), 0 if another
 * allocator hook removed it. */
static int
ct_deathwatch_intact(void)
{
    if (!ct_deathwatch_installed) {
        return 0;
    }
    PyMemAllocatorEx cur;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &cur);
    if (cur.free == watch_free) {
        return 1;   /* on top: certainly in the chain */
    }
    void *p = PyObject_Malloc(16);
    if (p == NULL) {
        return 1;   /* cannot probe; nothing suggests a change */
    }
    probe_block = p;
    probe_seen = 0;
    PyObject_Free(p);
    probe_block = NULL;
    return probe_seen;
}

int
ct_deathwatch_check(void)
{
    /* only the watched interpreter may judge (and touch its registries) */
    if (!ct_deathwatch_installed || n_watched == 0 || !in_watched_interpreter()
        || ct_deathwatch_intact()) {
        return 0;
    }
    /* Someone restored an allocator saved before ours: frees are not
     * seen any more.  Every object the watch followed may have died
     * unseen; close their records now (the best time known) and follow
     * new objects with weak references. */
    ct_deathwatch_installed = 0;
    while (n_watched > 0) {
        ct_watched w = watched[--n_watched];
        w.cb->lost(w.client);
    }
    return PyErr_WarnEx(PyExc_RuntimeWarning,
                        "classtrack: another memory allocator hook removed the "
                        "death watch; objects tracked until now are marked dead "
                        "and new ones are followed with weak references", 1);
}
