/* sizer_check.c - the layout table checked against the running interpreter.
 *
 * layout.c mirrors structs that CPython keeps in internal headers, and a
 * patch release may change one (guppy3 had to follow a change in 3.14.4).
 * So, once per process, before the first size is given (ct_sizer_ready),
 * this file builds probe objects of each kind of layout knowledge
 * (layout.h, CT_KIND_*) while a recording allocator sits over the MEM and
 * OBJ domains, then asks the sizer what each probe is made of
 * (ct_flat_size_parts: the body block at obj - pre-header and each
 * separate block it locates) and compares every claimed block with the size
 * the allocator was asked for.  A kind whose probe disagrees is distrusted
 * (ct_layout_distrusted): its objects are sized as estimates from then on,
 * with one RuntimeWarning naming the kinds and the first disagreement of
 * each; every other kind stays exact.
 *
 * Only blocks allocated while the recorder was installed can be judged:
 * an object taken from a free list (floats, ints on 3.14+, small tuples,
 * lists, dicts) was allocated earlier and is skipped, so each probe is
 * made several times and those that come from the allocator decide.
 *
 * Invariants: the recorder is installed and removed inside one C call with
 * the GIL held and the collector disabled, so no Python code runs while it
 * is in place (probe objects are built through the C API and calls of
 * built-in types only); its table is allocated before and freed after,
 * from the RAW domain it does not wrap, so it never allocates itself.
 * Installing it on top of tracemalloc or the death watch and putting back
 * exactly what was there leaves both intact.
 *
 * Cost: about 150 small objects and two allocator swaps, well under a
 * millisecond, once.
 */
#include "sizer/sizer_internal.h"
#include "base/compat.h"
#include "base/layout.h"

#include <string.h>

/* ---- the recording allocator: an open-addressing table of live blocks
 * (address -> requested size), tombstones on free, no allocation ---- */

#define REC_SLOTS 8192                  /* power of two */
#define REC_TOMB ((void *)1)

typedef struct {
    void *ptr;
    size_t size;
} rec_slot;

static struct {
    rec_slot *slots;                    /* REC_SLOTS, from PyMem_RawCalloc */
    size_t used;                        /* slots ever filled (tombs too) */
    PyMemAllocatorEx mem, obj;          /* what was installed before */
    PyInterpreterState *interp;         /* the one whose blocks are recorded */
} rec;

/* Blocks of other interpreters (3.12+ may run with their own GIL) pass
 * through unrecorded: the table is guarded by this interpreter's GIL. */
static inline int
rec_ours(void)
{
    PyThreadState *ts = ct_thread_state_unchecked();
    return ts != NULL && PyThreadState_GetInterpreter(ts) == rec.interp;
}

static inline size_t
rec_hash(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) & (REC_SLOTS - 1);
}

static void
rec_put(void *p, size_t size)
{
    if (p == NULL || rec.used >= REC_SLOTS / 2 || !rec_ours()) {
        return;     /* full: later blocks are simply not judged */
    }
    size_t i = rec_hash(p);
    while (rec.slots[i].ptr != NULL && rec.slots[i].ptr != REC_TOMB
           && rec.slots[i].ptr != p) {
        i = (i + 1) & (REC_SLOTS - 1);
    }
    if (rec.slots[i].ptr == NULL) {
        rec.used++;
    }
    rec.slots[i].ptr = p;
    rec.slots[i].size = size;
}

static rec_slot *
rec_find(const void *p)
{
    size_t i = rec_hash(p);
    while (rec.slots[i].ptr != NULL) {
        if (rec.slots[i].ptr == p) {
            return &rec.slots[i];
        }
        i = (i + 1) & (REC_SLOTS - 1);
    }
    return NULL;
}

static void
rec_drop(void *p)
{
    rec_slot *slot = p != NULL && rec_ours() ? rec_find(p) : NULL;
    if (slot != NULL) {
        slot->ptr = REC_TOMB;
    }
}

static void *
rec_malloc(void *ctx, size_t size)
{
    PyMemAllocatorEx *a = ctx;
    void *p = a->malloc(a->ctx, size);
    rec_put(p, size);
    return p;
}

static void *
rec_calloc(void *ctx, size_t nelem, size_t elsize)
{
    PyMemAllocatorEx *a = ctx;
    void *p = a->calloc(a->ctx, nelem, elsize);
    rec_put(p, nelem * elsize);
    return p;
}

static void *
rec_realloc(void *ctx, void *ptr, size_t size)
{
    PyMemAllocatorEx *a = ctx;
    void *p = a->realloc(a->ctx, ptr, size);
    if (p != NULL) {
        rec_drop(ptr);
        rec_put(p, size);
    }
    return p;
}

static void
rec_free(void *ctx, void *ptr)
{
    PyMemAllocatorEx *a = ctx;
    rec_drop(ptr);
    a->free(a->ctx, ptr);
}

static void
rec_install(void)
{
    rec.interp = PyInterpreterState_Get();
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &rec.mem);
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &rec.obj);
    PyMemAllocatorEx mem = {&rec.mem, rec_malloc, rec_calloc, rec_realloc, rec_free};
    PyMemAllocatorEx obj = {&rec.obj, rec_malloc, rec_calloc, rec_realloc, rec_free};
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &mem);
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &obj);
}

static void
rec_remove(void)
{
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &rec.obj);
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &rec.mem);
}

/* ---- probes ---- */

#define PROBE_COPIES 40     /* of each probe: enough to drain free lists */
#define MAX_PROBES 32

typedef struct {
    int kind;
    const char *what;
    PyObject *obj;          /* strong */
} probe;

typedef struct {
    probe p[MAX_PROBES * PROBE_COPIES];
    size_t n;
    PyObject *keep;         /* strong list: classes and warm-up instances */
} probe_set;

/* Adds a new reference (stolen); NULL from the builder is an error. */
static int
add(probe_set *ps, int kind, const char *what, PyObject *obj)
{
    if (obj == NULL) {
        return -1;
    }
    if (ps->n == sizeof(ps->p) / sizeof(ps->p[0])) {
        Py_DECREF(obj);
        return 0;
    }
    ps->p[ps->n].kind = kind;
    ps->p[ps->n].what = what;
    ps->p[ps->n].obj = obj;
    ps->n++;
    return 0;
}

/* A class made by calling type, as a class statement would; `slots`
 * (stolen, may be NULL) becomes its __slots__. */
static PyObject *
make_class(const char *name, PyObject *base, PyObject *slots)
{
    PyObject *ns = PyDict_New();
    if (ns == NULL || (slots != NULL && PyDict_SetItemString(ns, "__slots__", slots) < 0)) {
        Py_XDECREF(ns);
        Py_XDECREF(slots);
        return NULL;
    }
    Py_XDECREF(slots);
    PyObject *cls = base != NULL
        ? PyObject_CallFunction((PyObject *)&PyType_Type, "s(O)O", name, base, ns)
        : PyObject_CallFunction((PyObject *)&PyType_Type, "s()O", name, ns);
    Py_DECREF(ns);
    return cls;
}

/* An instance of cls with attributes a, b, c (plain ints, no Python code:
 * the probe classes define nothing). */
static PyObject *
make_instance(PyObject *cls, long i)
{
    PyObject *o = PyObject_CallNoArgs(cls);
    if (o == NULL) {
        return NULL;
    }
    static const char *const names[] = {"a", "b", "c"};
    for (int k = 0; k < 3; k++) {
        PyObject *v = PyLong_FromLong(i * 3 + k);
        int r = v == NULL ? -1 : PyObject_SetAttrString(o, names[k], v);
        Py_XDECREF(v);
        if (r < 0) {
            Py_DECREF(o);
            return NULL;
        }
    }
    return o;
}

/* A dict of n entries with str keys ("k0", "k1"...: a unicode table) or
 * int keys (a general table). */
static PyObject *
make_dict(long i, int n, int str_keys)
{
    PyObject *d = PyDict_New();
    for (int k = 0; d != NULL && k < n; k++) {
        PyObject *key = str_keys ? PyUnicode_FromFormat("k%d", k) : PyLong_FromLong(1000 + k);
        PyObject *v = PyLong_FromLong(i + k);
        int r = key == NULL || v == NULL ? -1 : PyDict_SetItem(d, key, v);
        Py_XDECREF(key);
        Py_XDECREF(v);
        if (r < 0) {
            Py_CLEAR(d);
        }
    }
    return d;
}

static PyObject *
make_list(long i, int n)
{
    PyObject *l = PyList_New(0);
    for (int k = 0; l != NULL && k < n; k++) {
        PyObject *v = PyLong_FromLong(i + k);
        int r = v == NULL ? -1 : PyList_Append(l, v);
        Py_XDECREF(v);
        if (r < 0) {
            Py_CLEAR(l);
        }
    }
    return l;
}

static PyObject *
make_tuple(Py_ssize_t n)
{
    /* past the tuple free lists' sizes (20), so always allocated */
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t k = 0; t != NULL && k < n; k++) {
        PyTuple_SET_ITEM(t, k, Py_NewRef(Py_None));
    }
    return t;
}

/* Builds every probe; the recorder is installed around it by the caller. */
static int
build_probes(probe_set *ps, PyObject *cls_plain, PyObject *cls_slots,
             PyObject *cls_list, PyObject *cls_tuple, PyObject *cls_int,
             PyObject *stat_result, PyObject *datetime_type)
{
    static const char big[] = "123456789012345678901234567890123456789012345678901234567890";
    for (long i = 0; i < PROBE_COPIES; i++) {
        PyObject *inst = make_instance(cls_plain, i);
        if (add(ps, CT_KIND_INSTANCE, "instance with 3 attributes", inst) < 0
            || add(ps, CT_KIND_GC_HEAD, "cell", PyCell_New(NULL)) < 0
            || add(ps, CT_KIND_INSTANCE, "__slots__ instance", PyObject_CallNoArgs(cls_slots)) < 0
            || add(ps, CT_KIND_INSTANCE, "list subclass instance", PyObject_CallNoArgs(cls_list)) < 0
            || add(ps, CT_KIND_DICT, "dict of 12 str keys", make_dict(i, 12, 1)) < 0
            || add(ps, CT_KIND_DICT, "dict of 3 str keys", make_dict(i, 3, 1)) < 0
            || add(ps, CT_KIND_DICT, "dict of 12 int keys", make_dict(i, 12, 0)) < 0
            || add(ps, CT_KIND_DICT, "an instance's __dict__",
                   PyObject_GenericGetDict(inst, NULL)) < 0
            || add(ps, CT_KIND_STR, "ASCII str", PyUnicode_FromFormat("probe %ld", i)) < 0
            || add(ps, CT_KIND_STR, "UCS-2 str", PyUnicode_FromFormat("%c%ld", 0x113, i)) < 0
            || add(ps, CT_KIND_STR, "UCS-4 str", PyUnicode_FromFormat("%c%ld", 0x1F40D, i)) < 0
            || add(ps, CT_KIND_INT, "one-digit int", PyLong_FromLong(100000 + i)) < 0
            || add(ps, CT_KIND_INT, "int of 7 digits", PyLong_FromString(big + i % 8, NULL, 10)) < 0
            || add(ps, CT_KIND_LIST, "list of 5 grown by append", make_list(i, 5)) < 0
            || add(ps, CT_KIND_TUPLE, "tuple of 23", make_tuple(23)) < 0
            || add(ps, CT_KIND_BYTES, "bytes of 100", PyBytes_FromStringAndSize(NULL, 100 + i)) < 0
            || add(ps, CT_KIND_VAR_SUBCLASS, "tuple subclass instance",
                   PyObject_CallFunction(cls_tuple, "((iii))", 1, 2, (int)i)) < 0
            || add(ps, CT_KIND_VAR_SUBCLASS, "int subclass instance",
                   PyObject_CallFunction(cls_int, "s", big + i % 8)) < 0) {
            return -1;
        }
        /* a str with its UTF-8 cache */
        PyObject *u = PyUnicode_FromFormat("%ct%c %ld", 0xE9, 0xE9, i);
        if (u == NULL || PyUnicode_AsUTF8(u) == NULL
            || add(ps, CT_KIND_STR, "str with UTF-8 cache", u) < 0) {
            Py_XDECREF(u);
            return -1;
        }
        if (i % 8 == 0
            && add(ps, CT_KIND_CLASS, "class with __slots__",
                   make_class("ct_probe_cls", NULL, PyUnicode_FromString("x"))) < 0) {
            return -1;
        }
        if (stat_result != NULL
            && add(ps, CT_KIND_STRUCTSEQ, "os.stat_result",
                   PyObject_CallFunction(stat_result, "(N)", make_tuple(10))) < 0) {
            return -1;
        }
        if (datetime_type != NULL
            && add(ps, CT_KIND_DATETIME, "naive datetime",
                   PyObject_CallFunction(datetime_type, "iii", 2000, 1, 1 + (int)(i % 28))) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- the check ---- */

typedef struct {
    size_t judged[CT_KIND_COUNT];
    size_t unjudged[CT_KIND_COUNT];
    unsigned distrusted;
    char first[CT_KIND_COUNT][160];     /* the first disagreement of a kind */
} check_result;

static check_result last;
static int checked = 0;
static int warned = 0;

static void
judge(check_result *r, int kind, const char *what, const char *part,
      const void *addr, size_t claimed, int corrupt)
{
    rec_slot *slot = rec_find(addr);
    if (slot == NULL) {
        r->unjudged[kind]++;
        return;
    }
    r->judged[kind]++;
    if (corrupt) {
        claimed += 8;   /* a test's forced mismatch */
    }
    if (slot->size != claimed && !(r->distrusted & CT_KIND_BIT(kind))) {
        r->distrusted |= CT_KIND_BIT(kind);
        PyOS_snprintf(r->first[kind], sizeof(r->first[kind]),
                      "%s: %s of %zu bytes expected, %zu allocated",
                      what, part, claimed, slot->size);
    }
}

static int
run_check(const ct_sizer_refs *refs, int corrupt_kind, check_result *r)
{
    int ret = -1;
    probe_set *ps = PyMem_RawCalloc(1, sizeof(*ps));
    PyObject *cls_plain = NULL, *cls_slots = NULL, *cls_list = NULL;
    PyObject *cls_tuple = NULL, *cls_int = NULL, *stat_result = NULL, *dt = NULL;
    int gc_was_enabled = 0;
    memset(r, 0, sizeof(*r));
    if (ps == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    rec.slots = PyMem_RawCalloc(REC_SLOTS, sizeof(rec_slot));
    rec.used = 0;
    if (rec.slots == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    ps->keep = PyList_New(0);
    cls_plain = make_class("ct_probe", NULL, NULL);
    cls_slots = make_class("ct_probe_slots", NULL, Py_BuildValue("(ss)", "a", "b"));
    cls_list = make_class("ct_probe_list", (PyObject *)&PyList_Type, NULL);
    cls_tuple = make_class("ct_probe_tuple", (PyObject *)&PyTuple_Type, NULL);
    cls_int = make_class("ct_probe_int", (PyObject *)&PyLong_Type, NULL);
    if (ps->keep == NULL || cls_plain == NULL || cls_slots == NULL || cls_list == NULL
        || cls_tuple == NULL || cls_int == NULL) {
        goto done;
    }
    /* warm-up: a class's first instances are bigger while its shared keys
     * still shrink (docs/sizes.md); judge the steady state */
    for (long i = 0; i < 2 * 40; i++) {
        PyObject *w = i % 2 ? make_instance(cls_plain, i) : PyObject_CallNoArgs(cls_list);
        if (w == NULL || PyList_Append(ps->keep, w) < 0) {
            Py_XDECREF(w);
            goto done;
        }
        Py_DECREF(w);
    }
    stat_result = ct_imported_attr("os", "stat_result");
    dt = ct_imported_attr("_datetime", "datetime");

    gc_was_enabled = ct_gc_disable();
    if (gc_was_enabled < 0) {
        goto done;
    }
    rec_install();
    int built = build_probes(ps, cls_plain, cls_slots, cls_list, cls_tuple, cls_int,
                             stat_result, dt);
    rec_remove();
    if (gc_was_enabled == 1 && ct_gc_enable() < 0) {
        built = -1;
    }
    if (built < 0) {
        goto done;
    }

    ct_sizer s;
    ct_sizer_init(&s, refs);
    for (size_t i = 0; i < ps->n; i++) {
        probe *p = &ps->p[i];
        ct_flat_parts parts;
        if (ct_flat_size_parts(&s, p->obj, &parts) < 0) {
            ct_sizer_fini(&s);
            goto done;
        }
        int corrupt = p->kind == corrupt_kind;
        if (parts.body_exact) {
            judge(r, p->kind, p->what, "body", (const char *)p->obj - parts.pre,
                  parts.body, corrupt);
        }
        for (int b = 0; b < parts.nblocks; b++) {
            judge(r, p->kind, p->what, "block", parts.blocks[b].addr,
                  parts.blocks[b].size, corrupt);
        }
    }
    ct_sizer_fini(&s);
    ret = 0;

done:
    if (rec.slots != NULL) {
        PyMem_RawFree(rec.slots);
        rec.slots = NULL;
    }
    for (size_t i = 0; i < ps->n; i++) {
        Py_DECREF(ps->p[i].obj);
    }
    Py_XDECREF(ps->keep);
    PyMem_RawFree(ps);
    Py_XDECREF(cls_plain);
    Py_XDECREF(cls_slots);
    Py_XDECREF(cls_list);
    Py_XDECREF(cls_tuple);
    Py_XDECREF(cls_int);
    Py_XDECREF(stat_result);
    Py_XDECREF(dt);
    return ret;
}

static int
warn_distrusted(const check_result *r)
{
    if (r->distrusted == 0 || warned) {
        return 0;
    }
    warned = 1;
    char msg[1024];
    size_t len = (size_t)PyOS_snprintf(
        msg, sizeof(msg),
        "classtrack's object layouts for CPython %d.%d do not match this "
        "interpreter (%s) for: ", PY_MAJOR_VERSION, PY_MINOR_VERSION, PY_VERSION);
    for (int k = 0; k < CT_KIND_COUNT && len < sizeof(msg); k++) {
        if (r->distrusted & CT_KIND_BIT(k)) {
            len += (size_t)PyOS_snprintf(msg + len, sizeof(msg) - len, "%s (%s); ",
                                         ct_layout_kind_names[k], r->first[k]);
        }
    }
    if (len < sizeof(msg)) {
        PyOS_snprintf(msg + len, sizeof(msg) - len,
                      "objects of those kinds are sized as estimates (their own "
                      "__sizeof__ plus pre-header)");
    }
    return PyErr_WarnEx(PyExc_RuntimeWarning, msg, 1);
}

int
ct_sizer_check_once(const ct_sizer_refs *refs)
{
    if (!checked && !CT_ESTIMATE()) {
        checked = 1;
        if (run_check(refs, -1, &last) < 0) {
            checked = 0;
            return -1;
        }
        ct_layout_distrusted = last.distrusted;
    }
    return 0;
}

int
ct_sizer_ready(const ct_sizer_refs *refs)
{
    if (ct_sizer_check_once(refs) < 0 || warn_distrusted(&last) < 0) {
        return -1;
    }
    return ct_layout_warn_once();
}

PyObject *
ct_sizer_check_report(const ct_sizer_refs *refs, int rerun, int corrupt_kind)
{
    if (rerun) {
        if (CT_ESTIMATE()) {
            PyErr_SetString(PyExc_RuntimeError,
                            "the layout check needs known layouts (sizes are estimates)");
            return NULL;
        }
        check_result r;
        if (run_check(refs, corrupt_kind, &r) < 0) {
            return NULL;
        }
        last = r;
        checked = 1;
        warned = 0;
        ct_layout_distrusted = r.distrusted;
        if (warn_distrusted(&last) < 0) {
            return NULL;
        }
    }
    PyObject *judged = PyDict_New(), *unjudged = PyDict_New(), *bad = PyDict_New();
    PyObject *res = NULL;
    if (judged == NULL || unjudged == NULL || bad == NULL) {
        goto done;
    }
    for (int k = 0; k < CT_KIND_COUNT; k++) {
        PyObject *a = PyLong_FromSize_t(last.judged[k]);
        PyObject *b = PyLong_FromSize_t(last.unjudged[k]);
        int rc = a == NULL || b == NULL
                 || PyDict_SetItemString(judged, ct_layout_kind_names[k], a) < 0
                 || PyDict_SetItemString(unjudged, ct_layout_kind_names[k], b) < 0;
        Py_XDECREF(a);
        Py_XDECREF(b);
        if (rc) {
            goto done;
        }
        if (last.distrusted & CT_KIND_BIT(k)) {
            PyObject *m = PyUnicode_FromString(last.first[k]);
            rc = m == NULL || PyDict_SetItemString(bad, ct_layout_kind_names[k], m) < 0;
            Py_XDECREF(m);
            if (rc) {
                goto done;
            }
        }
    }
    res = Py_BuildValue("{sOsOsOsO}", "checked", checked ? Py_True : Py_False,
                        "judged", judged, "unjudged", unjudged, "distrusted", bad);
done:
    Py_XDECREF(judged);
    Py_XDECREF(unjudged);
    Py_XDECREF(bad);
    return res;
}
