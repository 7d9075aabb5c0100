/* snapshot.c - size every alive tracked object into compact arrays.
 *
 * One sizer per snapshot, every alive tracked object marked sized before
 * the first is sized (roots_seen, sizer.h: each is sized as its own root
 * only), objects sized in registration order: data shared between tracked
 * objects goes to the first one, and a tracked object reached from
 * another is never part of the other's size.
 *
 * The alive objects are held by strong references for the whole snapshot:
 * sizing can run Python code (a __sizeof__, a __repr__) and other threads
 * may drop the last reference meanwhile.
 *
 * Reprs: objects whose class keeps object.__repr__ cost nothing (the
 * default text is rebuilt on demand from class and id).  A custom __repr__
 * is called, its result clipped to 128 characters; if it raises, the
 * default text is kept; if CT_SLOW_REPR_STRIKES calls of a class's repr
 * in a row take longer than t->slow_repr seconds each (CT_SLOW_REPR unless
 * set), that repr is not called again by this tracker.  Not one call: a
 * monitor's snapshot hands the GIL to a busy program every switch
 * interval (5 ms), so about one call in a few thousand of the cheapest
 * __repr__ "takes" 5 ms; with one strike, the commonest classes of a real
 * program lost their texts after a snapshot or two.  A
 * tracker made with reprs=False (t->no_reprs) calls no __repr__, neither
 * of tracked objects nor of referents named in size trees: what it keeps
 * and dumps cannot show the objects' data.
 */
#include "tracker/tracker.h"
#include "base/layout.h"
#include "tracker/deathwatch.h"
#include "base/bigmem.h"

#define CT_REPR_CLIP 128

static PyObject *
clipped_repr(PyObject *obj)
{
    PyObject *r = PyObject_Repr(obj);
    if (r == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(r);
    if (n > CT_REPR_CLIP) {
        Py_ssize_t h = CT_REPR_CLIP / 2 - 2;
        PyObject *head = PyUnicode_Substring(r, 0, h);
        PyObject *tail = PyUnicode_Substring(r, n - h, n);
        Py_SETREF(r, (head && tail) ? PyUnicode_FromFormat("%U....%U", head, tail)
                                    : NULL);
        Py_XDECREF(head);
        Py_XDECREF(tail);
    }
    return r;
}

/* The tables below are keyed by record number (reprs, type_overrides) or
 * by snapshot and record number (trees), as Python ints made only
 * when an entry is read or written: most objects need none. */

/* note_repr once the texts are handed off to a dump stream: a text is
 * kept (until the next export takes it) only when its hash is not the
 * one last noted for the record.  r (stolen) is NULL when the repr
 * raised: the record's text, pending or not, stays as it was.  0 or -1. */
static int
note_handed_off(ct_tracker *t, uint32_t idx, PyObject *r)
{
    if (r == NULL) {
        return 0;
    }
    Py_hash_t h = PyObject_Hash(r);     /* a str subclass's may raise */
    if (h == -1 && PyErr_Occurred()) {
        Py_DECREF(r);
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return -1;
        }
        PyErr_Clear();
        return 0;
    }
    uint64_t digest = ct_repr_digest(h);
    if (ct_idxmap_get(&t->repr_digests, idx) == digest) {
        Py_DECREF(r);
        return 0;
    }
    PyObject *key = PyLong_FromUnsignedLong(idx);
    int rc = key == NULL ? -1 : PyDict_SetItem(t->reprs, key, r);
    if (rc == 0 && ct_idxmap_put(&t->repr_digests, idx, digest) < 0) {
        PyErr_NoMemory();
        rc = -1;
    }
    Py_XDECREF(key);
    Py_DECREF(r);
    return rc;
}

/* Counts a call of tp's repr, slow or not, toward giving it up; 0 or -1.
 * The strikes table is looked at by a quick call only while not empty. */
static int
strike(ct_tracker *t, PyTypeObject *tp, int slow)
{
    PyObject *key = (PyObject *)tp;
    if (!slow) {
        if (PyDict_GET_SIZE(t->repr_strikes) == 0) {
            return 0;
        }
        int has = PyDict_Contains(t->repr_strikes, key);
        return has <= 0 ? has : PyDict_DelItem(t->repr_strikes, key);
    }
    PyObject *prev = PyDict_GetItemWithError(t->repr_strikes, key);
    if (prev == NULL && PyErr_Occurred()) {
        return -1;
    }
    long n = (prev != NULL ? PyLong_AsLong(prev) : 0) + 1;
    if (n >= CT_SLOW_REPR_STRIKES) {
        if (PySet_Add(t->slow_repr_types, key) < 0) {
            return -1;
        }
        return prev != NULL ? PyDict_DelItem(t->repr_strikes, key) : 0;
    }
    PyObject *count = PyLong_FromLong(n);
    int rc = count == NULL ? -1 : PyDict_SetItem(t->repr_strikes, key, count);
    Py_XDECREF(count);
    return rc;
}

/* Records a custom repr; 0, or -1 only for a BaseException. */
static int
note_repr(ct_tracker *t, uint32_t idx, PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (t->no_reprs || tp->tp_repr == PyBaseObject_Type.tp_repr) {
        return 0;
    }
    int slow = PySet_Contains(t->slow_repr_types, (PyObject *)tp);
    if (slow != 0) {
        return slow < 0 ? -1 : 0;
    }
    /* held: the __repr__ may change obj's class, and a collection free
     * the old one before strike() looks it up */
    Py_INCREF(tp);
    double t0 = ct_now();
    PyObject *r = clipped_repr(obj);
    double spent = ct_now() - t0;
    if (r == NULL && !PyErr_ExceptionMatches(PyExc_Exception)) {
        Py_DECREF(tp);
        return -1;
    }
    PyErr_Clear();
    int struck = strike(t, tp, spent > t->slow_repr);
    Py_DECREF(tp);
    if (struck < 0) {
        Py_XDECREF(r);
        return -1;
    }
    if (t->reprs_handed_off) {
        return note_handed_off(t, idx, r);
    }
    int rc = -1;
    PyObject *key = PyLong_FromUnsignedLong(idx);
    if (key != NULL && r == NULL) {
        rc = PyDict_DelItem(t->reprs, key) < 0 ? (PyErr_Clear(), 0) : 0;
    }
    else if (key != NULL) {
        /* the same text as before keeps the old string: nothing changed */
        PyObject *old = PyDict_GetItemWithError(t->reprs, key);
        int same = old != NULL ? PyUnicode_Compare(old, r) == 0 : 0;
        if (PyErr_Occurred()) {
            rc = -1;
        }
        else if (same) {
            rc = 0;
        }
        else {
            rc = PyDict_SetItem(t->reprs, key, r);
            if (rc == 0 && t->reprs_changed != NULL) {
                rc = PyDict_SetItem(t->reprs_changed, key, Py_None);
            }
        }
    }
    Py_XDECREF(key);
    Py_XDECREF(r);
    return rc;
}

/* A morphed object (obj.__class__ = Other) shows its new class. */
static int
note_morph(ct_tracker *t, uint32_t idx, const ct_record *rec, PyObject *obj)
{
    PyObject *known = NULL, *key = NULL;
    int rc = -1;
    if (PyDict_GET_SIZE(t->type_overrides) != 0) {
        key = PyLong_FromUnsignedLong(idx);
        if (key == NULL) {
            return -1;
        }
        known = PyDict_GetItemWithError(t->type_overrides, key);
        if (known == NULL && PyErr_Occurred()) {
            goto done;
        }
    }
    if (known == NULL) {
        known = PyList_GET_ITEM(t->name_types, ct_rec_name(rec));
    }
    if (known == (PyObject *)Py_TYPE(obj)) {
        rc = 0;
        goto done;
    }
    if (key == NULL && (key = PyLong_FromUnsignedLong(idx)) == NULL) {
        goto done;
    }
    rc = PyDict_SetItem(t->type_overrides, key, (PyObject *)Py_TYPE(obj));
done:
    Py_XDECREF(key);
    return rc;
}

/* The reprs of the n alive objects objs[k] (records idx[k], ascending).
 * Texts handed off to a dump stream wait in t->reprs for the next frame:
 * once CT_PENDING_REPRS_MAX wait, no more reprs are asked in this
 * snapshot, and the next one starts at the first record not asked (and
 * goes around), so that every record gets its turn.  0 or -1. */
static int
note_reprs(ct_tracker *t, PyObject **objs, const uint32_t *idx, size_t n)
{
    size_t start = 0, hi = n;
    if (t->reprs_handed_off) {      /* the first record >= repr_cursor */
        while (start < hi) {
            size_t mid = start + (hi - start) / 2;
            if (idx[mid] < t->repr_cursor) {
                start = mid + 1;
            }
            else {
                hi = mid;
            }
        }
        start = start == n ? 0 : start;
    }
    t->repr_cursor = 0;
    for (size_t j = 0; j < n; j++) {
        size_t k = (start + j) % n;
        if (t->reprs_handed_off && PyDict_GET_SIZE(t->reprs) >= CT_PENDING_REPRS_MAX) {
            t->repr_cursor = idx[k];
            break;
        }
        PyTypeObject *before = Py_TYPE(objs[k]);
        if (note_repr(t, idx[k], objs[k]) < 0) {
            t->repr_cursor = idx[k];
            return -1;
        }
        if (Py_TYPE(objs[k]) != before) {
            /* its own __repr__ changed its class: this snapshot says so,
             * as the text does */
            ct_record rec = *ct_registry_record(&t->reg, idx[k]);
            if (note_morph(t, idx[k], &rec, objs[k]) < 0) {
                t->repr_cursor = idx[k];
                return -1;
            }
        }
    }
    return 0;
}

/* table[(snap_no << 32) | idx] = value; 0 or -1. */
static int
set_snap_entry(PyObject *table, uint64_t snap_no, uint32_t idx, PyObject *value)
{
    PyObject *key = PyLong_FromUnsignedLongLong((snap_no << 32) | idx);
    if (key == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(table, key, value);
    Py_DECREF(key);
    return rc;
}

int
ct_tracker_snapshot(ct_tracker *t, double *timestamp, Py_ssize_t *tracked_total,
                    Py_ssize_t *overhead)
{
    int rc = -1;
    size_t len = t->reg.len, n = 0;
    PyObject **objs = NULL;
    uint32_t *idx = NULL;
    ct_snapshot snap = {0};
    ct_sizer s;
    if (t->snapshotting) {
        PyErr_SetString(PyExc_RuntimeError,
                        "create_snapshot() called from code run by a snapshot "
                        "(a __repr__ or __sizeof__ of a tracked object)");
        return -1;
    }
    t->snapshotting = 1;
    ct_sizer_init(&s, t->sizer_refs);
    s.no_reprs = t->no_reprs;
    if (ct_sizer_ready(t->sizer_refs) < 0) {
        goto done;
    }

    if (t->nsnaps == t->snapcap) {
        size_t cap = t->snapcap ? t->snapcap * 2 : 16;
        ct_snapshot *snaps = PyMem_Realloc(t->snaps, cap * sizeof(*snaps));
        if (snaps == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        t->snaps = snaps;
        t->snapcap = cap;
    }
    snap.timestamp = ct_now();
    size_t slots = len ? len : 1;
    objs = ct_big_alloc(slots * sizeof(PyObject *), 0);
    idx = ct_big_alloc(slots * sizeof(uint32_t), 0);
    if (objs == NULL || idx == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* strong references to the objects: sizing and reprs run Python
     * code, which may drop them meanwhile (records stay: the registry
     * cannot be cleared while snapshotting is set) */
    if (ct_deathwatch_check() < 0) {
        goto done;
    }
    for (size_t i = 0; i < len && i < t->reg.len; i++) {
        PyObject *obj = ct_registry_object(&t->reg, i);
        if (obj != NULL) {
            objs[n] = Py_NewRef(obj);
            idx[n] = (uint32_t)i;
            n++;
        }
    }
    /* each tracked object is sized as its own root, never as part of
     * another's: all are marked sized before the first is sized */
    s.roots_seen = 1;
    if (ct_ptrset_reserve(&s.seen, t->seen_pages) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        if (ct_sizer_mark_root(&s, objs[k]) < 0) {
            goto done;
        }
    }
    /* the snapshot's Entries, its sizes written in place (4 bytes each,
     * 8 once one needs it) and narrowed at the end: no arrays of sizes
     * beside it */
    snap.entries = (ct_entries *)ct_entries_alloc(t->entries_type, len, n);
    if (snap.entries == NULL) {
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        ct_entries_put(snap.entries, k, idx[k]);
    }
    if (ct_entries_columns(snap.entries, 4, 4) < 0) {
        goto done;
    }
    uint64_t snap_no = t->nsnaps, size_or = 0, flat_or = 0;
    ct_entries_iter it;
    ct_entries_iter_init(&it, snap.entries);
    for (size_t k = 0; k < n; k++) {
        PyObject *obj = objs[k];
        size_t i = 0;
        (void)ct_entries_next(&it, &i);     /* n entries: one for each k */
        ct_record rec = *ct_registry_record(&t->reg, i);
        int res = ct_rec_resolution(&rec);
        Py_ssize_t size_k = 0, flat_k = 0;
        int ok = 1;
        if (res == 0) {
            size_k = ct_sizer_size_flat(&s, obj, &flat_k);
            ok = size_k >= 0;
        }
        else {
            PyObject *name = PyList_GET_ITEM(t->names, ct_rec_name(&rec));
            PyObject *tree = ct_sizer_tree(&s, obj, res, name);
            ok = tree != NULL;
            if (ok) {
                size_k = PyLong_AsSsize_t(PyTuple_GET_ITEM(tree, 1));
                flat_k = PyLong_AsSsize_t(PyTuple_GET_ITEM(tree, 2));
                ok = size_k >= 0 && flat_k >= 0;
                ok = ok && set_snap_entry(t->trees, snap_no, (uint32_t)i, tree) == 0;
                Py_DECREF(tree);
            }
        }
        ct_entries *e = snap.entries;
        ok = ok && ((uint64_t)size_k <= UINT32_MAX || ct_entries_widen(e, 0) == 0)
             && ((uint64_t)flat_k <= UINT32_MAX || ct_entries_widen(e, 1) == 0);
        if (ok) {
            ct_entries_store(e->size, e->size_w, k, (uint64_t)size_k);
            ct_entries_store(e->flat, e->flat_w, k, (uint64_t)flat_k);
            size_or |= (uint64_t)size_k;
            flat_or |= (uint64_t)flat_k;
            ok = note_morph(t, (uint32_t)i, &rec, obj) == 0;
        }
        if (!ok) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_RuntimeError, "size tree with a negative size");
            }
            goto done;
        }
    }
    ct_entries_finish_columns(snap.entries, size_or, flat_or);
    if (note_reprs(t, objs, idx, n) < 0) {
        goto done;
    }
    *tracked_total = s.total;
    t->seen_pages = s.seen.pages;

    /* The tracker's own memory: records, entries, and its Python-level
     * tables, sized with the same sizer (tracked objects stay excluded). */
    size_t own = ct_registry_footprint(&t->reg);
    for (size_t k = 0; k <= t->nsnaps; k++) {
        const ct_snapshot *sn = k < t->nsnaps ? &t->snaps[k] : &snap;
        if (sn->entries != NULL) {
            own += sizeof(ct_entries) + ct_entries_nbytes(sn->entries);
        }
    }
    own += t->snapcap * sizeof(ct_snapshot) + ct_idxmap_footprint(&t->repr_digests);
    s.roots_seen = 0;       /* the tables: sized as any Asizer would */
    Py_ssize_t tables = ct_sizer_size(&s, t->names);
    PyObject *parts[] = {t->name_numbers, t->name_types, t->type_overrides,
                         t->traces, t->trace_numbers, t->keep_ids, t->reprs,
                         t->slow_repr_types, t->repr_strikes, t->trees};
    for (size_t k = 0; tables >= 0 && k < sizeof(parts) / sizeof(parts[0]); k++) {
        Py_ssize_t b = ct_sizer_size(&s, parts[k]);
        tables = b < 0 ? -1 : tables + b;
    }
    if (tables < 0) {
        goto done;
    }
    *overhead = (Py_ssize_t)own + tables;
    *timestamp = snap.timestamp;
    if (t->nsnaps >= t->snapcap) {  /* cannot happen while snapshotting is set */
        PyErr_SetString(PyExc_RuntimeError, "snapshot table changed during a snapshot");
        goto done;
    }
    t->snaps[t->nsnaps++] = snap;
    snap.entries = NULL;
    rc = 0;
done:
    for (size_t k = 0; objs != NULL && k < n; k++) {
        Py_DECREF(objs[k]);
    }
    ct_big_free(objs);
    ct_big_free(idx);
    Py_XDECREF(snap.entries);
    ct_sizer_fini(&s);
    t->snapshotting = 0;
    return rc;
}

void
ct_tracker_clear_snapshots(ct_tracker *t)
{
    ct_snapshot *snaps = t->snaps;
    size_t nsnaps = t->nsnaps;
    t->snaps = NULL;
    t->nsnaps = t->snapcap = 0;
    for (size_t k = 0; k < nsnaps; k++) {
        Py_XDECREF(snaps[k].entries);
    }
    PyMem_Free(snaps);
    if (t->trees != NULL) {     /* NULL after tp_clear */
        PyDict_Clear(t->trees);
    }
}

int
ct_tracker_discard_last_snapshot(ct_tracker *t)
{
    if (t->nsnaps == 0) {
        return 0;
    }
    uint64_t snap_no = t->nsnaps - 1;
    ct_entries *entries = t->snaps[snap_no].entries;
    if (entries != NULL && PyDict_GET_SIZE(t->trees) != 0) {
        ct_entries_iter it;
        size_t rec;
        ct_entries_iter_init(&it, entries);
        while (ct_entries_next(&it, &rec)) {
            PyObject *key = PyLong_FromUnsignedLongLong((snap_no << 32) | rec);
            if (key == NULL) {
                return -1;
            }
            /* only records sized with resolution_level >= 1 have a tree */
            int rc = PyDict_GetItemWithError(t->trees, key) != NULL
                         ? PyDict_DelItem(t->trees, key)
                         : (PyErr_Occurred() ? -1 : 0);
            Py_DECREF(key);
            if (rc < 0) {
                return -1;
            }
        }
    }
    t->nsnaps--;
    t->snaps[snap_no].entries = NULL;
    Py_XDECREF(entries);
    return 0;
}
