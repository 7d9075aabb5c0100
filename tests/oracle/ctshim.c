/* ctshim.c - test-only allocator shim: the requested size of every live
 * block, for the sizer oracle (tests/oracle/heap_oracle.py).
 *
 * install() wraps the RAW, MEM and OBJ allocator domains
 * (PyMem_SetAllocator, each wrapping the allocator it found, as the C API
 * requires).  From then on every malloc/calloc/realloc through them records
 * address -> requested size in one open-addressing table, and every free
 * removes the address.  Blocks allocated before install() are unknown:
 * size_of() answers None for them, and the oracle reports them as not
 * verifiable rather than guessing.
 *
 * The RAW domain is called without the GIL, so the table is guarded by a
 * spin lock (`table_lock`); its memory comes from libc directly and never
 * re-enters the hooked domains.  The table never shrinks.  Never used
 * outside tests: it costs a lock and a hash per allocation.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table: key 0 = empty, key 1 = deleted (never valid blocks) ---- */

typedef struct {
    uintptr_t key;
    size_t size;
} slot;

static slot *table;             /* guarded by table_lock */
static size_t table_cap;        /* power of two, or 0 */
static size_t table_used;       /* live + deleted slots */
static size_t table_live;
static volatile int table_lock;

#define EMPTY ((uintptr_t)0)
#define DELETED ((uintptr_t)1)

static void lock(void) { while (__sync_lock_test_and_set(&table_lock, 1)) { } }
static void unlock(void) { __sync_lock_release(&table_lock); }

static size_t
hash_ptr(uintptr_t p)
{
    uint64_t h = (uint64_t)p * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 17);
}

static int
table_grow(void)
{
    size_t cap = table_cap ? table_cap * 2 : ((size_t)1 << 20);
    slot *t = calloc(cap, sizeof(slot));
    if (t == NULL) {
        return -1;
    }
    for (size_t i = 0; i < table_cap; i++) {
        if (table[i].key > DELETED) {
            size_t j = hash_ptr(table[i].key) & (cap - 1);
            while (t[j].key != EMPTY) {
                j = (j + 1) & (cap - 1);
            }
            t[j] = table[i];
        }
    }
    free(table);
    table = t;
    table_cap = cap;
    table_used = table_live;
    return 0;
}

static void
table_put(void *p, size_t size)
{
    if (p == NULL) {
        return;
    }
    uintptr_t k = (uintptr_t)p;
    lock();
    if ((table_used + 1) * 2 > table_cap && table_grow() < 0) {
        unlock();
        return;     /* out of memory: the block stays unknown */
    }
    size_t j = hash_ptr(k) & (table_cap - 1);
    size_t tomb = (size_t)-1;
    while (table[j].key != EMPTY) {
        if (table[j].key == k) {
            table[j].size = size;
            unlock();
            return;
        }
        if (table[j].key == DELETED && tomb == (size_t)-1) {
            tomb = j;
        }
        j = (j + 1) & (table_cap - 1);
    }
    if (tomb != (size_t)-1) {
        j = tomb;
    }
    else {
        table_used++;
    }
    table[j].key = k;
    table[j].size = size;
    table_live++;
    unlock();
}

static void
table_del(void *p)
{
    if (p == NULL || table_cap == 0) {
        return;
    }
    uintptr_t k = (uintptr_t)p;
    lock();
    size_t j = hash_ptr(k) & (table_cap - 1);
    while (table[j].key != EMPTY) {
        if (table[j].key == k) {
            table[j].key = DELETED;
            table_live--;
            break;
        }
        j = (j + 1) & (table_cap - 1);
    }
    unlock();
}

/* 1 and *size when p is a live recorded block. */
static int
table_get(uintptr_t k, size_t *size)
{
    int found = 0;
    if (table_cap == 0 || k <= DELETED) {
        return 0;
    }
    lock();
    size_t j = hash_ptr(k) & (table_cap - 1);
    while (table[j].key != EMPTY) {
        if (table[j].key == k) {
            *size = table[j].size;
            found = 1;
            break;
        }
        j = (j + 1) & (table_cap - 1);
    }
    unlock();
    return found;
}

/* ---- the wrappers: one per domain, each around what it found ---- */

typedef struct {
    PyMemAllocatorEx orig;
    PyMemAllocatorDomain domain;
    int installed;
} domain_hook;

static domain_hook hooks[3] = {
    {{0}, PYMEM_DOMAIN_RAW, 0},
    {{0}, PYMEM_DOMAIN_MEM, 0},
    {{0}, PYMEM_DOMAIN_OBJ, 0},
};

static void *
shim_malloc(void *ctx, size_t size)
{
    domain_hook *h = ctx;
    void *p = h->orig.malloc(h->orig.ctx, size);
    table_put(p, size);
    return p;
}

static void *
shim_calloc(void *ctx, size_t nelem, size_t elsize)
{
    domain_hook *h = ctx;
    void *p = h->orig.calloc(h->orig.ctx, nelem, elsize);
    table_put(p, nelem * elsize);
    return p;
}

static void *
shim_realloc(void *ctx, void *ptr, size_t size)
{
    domain_hook *h = ctx;
    void *p = h->orig.realloc(h->orig.ctx, ptr, size);
    if (p != NULL) {
        if (ptr != NULL && p != ptr) {
            table_del(ptr);
        }
        table_put(p, size);
    }
    return p;
}

static void
shim_free(void *ctx, void *ptr)
{
    domain_hook *h = ctx;
    table_del(ptr);
    h->orig.free(h->orig.ctx, ptr);
}

static PyObject *
shim_install(PyObject *mod, PyObject *noargs)
{
    (void)mod;
    (void)noargs;
    for (int i = 0; i < 3; i++) {
        if (hooks[i].installed) {
            continue;
        }
        PyMem_GetAllocator(hooks[i].domain, &hooks[i].orig);
        PyMemAllocatorEx mine = {&hooks[i], shim_malloc, shim_calloc,
                                 shim_realloc, shim_free};
        PyMem_SetAllocator(hooks[i].domain, &mine);
        hooks[i].installed = 1;
    }
    Py_RETURN_NONE;
}

static PyObject *
shim_size_of(PyObject *mod, PyObject *arg)
{
    (void)mod;
    size_t addr = PyLong_AsSize_t(arg);
    if (addr == (size_t)-1 && PyErr_Occurred()) {
        return NULL;
    }
    size_t size;
    if (!table_get((uintptr_t)addr, &size)) {
        Py_RETURN_NONE;
    }
    return PyLong_FromSize_t(size);
}

static PyObject *
shim_live_blocks(PyObject *mod, PyObject *noargs)
{
    (void)mod;
    (void)noargs;
    lock();
    size_t n = table_live;
    unlock();
    return PyLong_FromSize_t(n);
}

static PyMethodDef shim_methods[] = {
    {"install", shim_install, METH_NOARGS,
     "Wrap the RAW, MEM and OBJ allocators; record live blocks from now on."},
    {"size_of", shim_size_of, METH_O,
     "Requested size of the live block starting at this address, or None."},
    {"live_blocks", shim_live_blocks, METH_NOARGS, "Live blocks recorded."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef shim_module = {
    PyModuleDef_HEAD_INIT, "_ctshim",
    "Test-only allocator shim for classtrack's sizer oracle.", -1, shim_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__ctshim(void)
{
    return PyModule_Create(&shim_module);
}
