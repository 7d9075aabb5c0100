/* gcwalk.c - see gcwalk.h. */
#include "base/gcwalk.h"

#include <stdint.h>

#if PY_VERSION_HEX >= 0x030C0000

int
ct_gc_visit_objects(ct_gc_visitor visit, void *arg)
{
    PyUnstable_GC_VisitObjects(visit, arg);
    return 0;
}

#else

typedef struct {
    uintptr_t next;
    uintptr_t prev;     /* two low bits: flags */
} gc_head;

#define PREV(h) ((gc_head *)((h)->prev & ~(uintptr_t)3))
#define NEXT(h) ((gc_head *)(h)->next)
#define GEN_BYTES 24    /* sizeof(struct gc_generation) */
#define NGENS 3

/* A list head whose neighbours point back at it. */
static int
is_head(gc_head *h)
{
    return h->next != 0 && h->prev != 0 && PREV(NEXT(h)) == h && NEXT(PREV(h)) == h;
}

int
ct_gc_visit_objects(ct_gc_visitor visit, void *arg)
{
    PyObject *probe = PyList_New(0);
    if (probe == NULL) {
        return -1;
    }
    gc_head *mine = (gc_head *)probe - 1;
    gc_head *gen0 = NEXT(mine);
    gc_head *heads[NGENS];
    int ok = PyObject_GC_IsTracked(probe) && gen0 != NULL && PREV(gen0) == mine;
    for (int g = 0; ok && g < NGENS; g++) {
        heads[g] = (gc_head *)((char *)gen0 + g * GEN_BYTES);
        ok = is_head(heads[g]);
    }
    Py_DECREF(probe);   /* untracked and unlinked: not visited */
    if (!ok) {
        PyErr_SetString(PyExc_RuntimeError, "the collector's generation lists are not laid "
                        "out as this build of classtrack expects (use gc.get_objects())");
        return -1;
    }
    for (int g = 0; g < NGENS; g++) {
        for (gc_head *h = NEXT(heads[g]); h != heads[g]; h = NEXT(h)) {
            if (!visit((PyObject *)(h + 1), arg)) {
                return 0;
            }
        }
    }
    return 0;
}

#endif
