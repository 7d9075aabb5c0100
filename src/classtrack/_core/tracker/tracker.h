/* tracker.h - one ClassTracker's engine state: the registry of tracked
 * objects, its names and traces, and its snapshots.
 *
 * The Python class classtrack.classtracker.ClassTracker owns one
 * classtrack._core.Tracker (a GC heap type) and builds its public views
 * (TrackedObject, index, history, Snapshot) on demand from the records
 * here.  Everything is guarded by the GIL; the Python layer serialises
 * snapshots with a lock because sizing can run Python code.
 */
#ifndef CLASSTRACK_TRACKER_H
#define CLASSTRACK_TRACKER_H

#include "base/compat.h"
#include "tracker/registry.h"
#include "tracker/deathwatch.h"
#include "sizer/sizer.h"
#include "tracker/entries.h"
#include "base/idxmap.h"

/* One snapshot: for each object alive at that time, in registration
 * order, its index and exact sizes, held as the compact, immutable
 * Entries that Stats and the dump writer use (entries.h: about 3 bytes
 * per object), so exporting a snapshot copies nothing.  NULL once the
 * records were cleared: no entries. */
typedef struct {
    double timestamp;
    ct_entries *entries;    /* strong, or NULL */
} ct_snapshot;

/* The entries of a snapshot (0 when cleared). */
static inline size_t
ct_snapshot_len(const ct_snapshot *s)
{
    return s->entries != NULL ? s->entries->n : 0;
}

/* The position of record `rec` in a snapshot's entries, or -1. */
static inline Py_ssize_t
ct_snapshot_position(const ct_snapshot *s, uint64_t rec)
{
    return s->entries != NULL ? ct_entries_find(s->entries, (size_t)rec) : -1;
}

#define CT_SLOW_REPR 0.005
/* ... in this many calls in a row (one slow call can be the GIL handed to
 * another thread, or a collection, in the middle of a cheap __repr__) */
#define CT_SLOW_REPR_STRIKES 3
/* Texts handed off to a dump stream that may wait for its next frame: about
 * 1.5 MB of strings among the program's objects (snapshot.c, note_reprs).
 * On the Sphinx bench, 16,384 raised max RSS by 4-5 MB, 4,096 gave fewer
 * texts than before the strikes; 8,192: 57,000-65,000 texts, RSS as it was */
#define CT_PENDING_REPRS_MAX 8192

/* The repr_digests value of a repr text's hash (never 0: 0 is "none").
 * The one place that derives it: a text noted and a text handed off
 * must compare equal. */
static inline uint64_t
ct_repr_digest(Py_hash_t h)
{
    return h == 0 ? 1 : (uint64_t)h;
}

typedef struct {
    PyObject_HEAD
    ct_registry reg;
    const ct_registry_types *types;  /* points at own_types */
    const ct_sizer_refs *sizer_refs; /* points at own_refs */
    ct_registry_types own_types;     /* strong: copies of the module state's, */
    ct_sizer_refs own_refs;          /* so a tracker outlives a cleared state */
    PyObject *callback;     /* strong: bound death callback (-> self) */
    PyObject *names;        /* strong: list of str, by name number */
    PyObject *name_numbers; /* strong: dict str -> int */
    PyObject *name_types;   /* strong: list, the class first seen per name */
    PyObject *type_overrides; /* strong: dict index -> class, where a
                                 record's class is not its name's */
    PyObject *traces;       /* strong: list of trace tuples (number - 1) */
    PyObject *trace_numbers;/* strong: dict trace tuple -> int */
    PyObject *skip_prefix;  /* strong: str, frames from files under it are
                               the tracker's own and left out of traces */
    PyObject *keep_ids;     /* strong: dict id -> index of kept objects */
    PyObject *reprs;        /* strong: dict index -> latest custom repr */
    PyObject *reprs_changed;/* strong: dict (a set) of the indices whose repr changed
                               since the last export(changed_reprs=True), or
                               NULL until track_repr_changes() (a dump
                               stream) asks for it */
    uint32_t repr_cursor;   /* handed off: the record the next snapshot
                               asks the repr of first (note_reprs) */
    ct_idxmap repr_digests; /* handed off (below): record -> hash of the
                               repr text last given to export */
    int reprs_handed_off;   /* set by track_repr_changes(hand_off=True), for
                               a dump stream that holds the texts for good:
                               `reprs` keeps only the texts not yet exported
                               (export(changed_reprs=True) takes them all),
                               repr_digests tells a changed text from the
                               same one; a whole export() is refused */
    double slow_repr;       /* seconds: a class whose repr took longer in
                               CT_SLOW_REPR_STRIKES calls in a row is not
                               asked again (CT_SLOW_REPR unless set) */
    PyObject *slow_repr_types; /* strong: set of classes whose repr was too
                                  slow to call during snapshots */
    PyObject *repr_strikes; /* strong: dict class -> its last calls in a row
                               that took longer than slow_repr (1 or more,
                               fewer than CT_SLOW_REPR_STRIKES) */
    PyObject *trees;        /* strong: dict (snap << 32 | index) -> tree */
    PyTypeObject *entries_type; /* strong: classtrack._core.Entries */
    size_t seen_pages;      /* pages the last snapshot's sizer saw: the
                               next one reserves them (ct_ptrset_reserve) */
    ct_snapshot *snaps;
    size_t nsnaps;
    size_t snapcap;
    int watch_requested;    /* holds a ct_deathwatch_request */
    int snapshotting;       /* set while ct_tracker_snapshot runs: the
                               registry and snapshots must not be cleared
                               under it (sizing and reprs run Python code) */
    int no_reprs;           /* set once by the constructor (reprs=False),
                               never changed: snapshots call no __repr__,
                               `reprs` stays empty and size trees name
                               referents without reprs (sizer.h) */
} ct_tracker;

/* Track an object as `opts` (registry.h) says.  Returns the index (the existing one if obj is
 * tracked alive already) and *is_new, or -1 with an exception set. */
Py_ssize_t ct_tracker_track(ct_tracker *t, PyObject *obj, const ct_track_opts *opts,
                            int *is_new);

/* Number for a name (registered on first use), or -1 with an exception. */
Py_ssize_t ct_tracker_name_number(ct_tracker *t, PyObject *name);

/* Capture the creation stack: trace number (0 for an empty stack), or -1. */
Py_ssize_t ct_trace_capture(ct_tracker *t);

/* Take a snapshot; fills *tracked_total and *overhead.  0 or -1. */
int ct_tracker_snapshot(ct_tracker *t, double *timestamp,
                        Py_ssize_t *tracked_total, Py_ssize_t *overhead);

void ct_tracker_clear_snapshots(ct_tracker *t);

/* Forget the latest snapshot and its size trees (a background monitor's
 * that finished after the wait for it was given up).  Runs no Python code
 * but deallocations of the tracker's own data.  0, or -1 with an exception
 * set (MemoryError; some of its trees may be gone then). */
int ct_tracker_discard_last_snapshot(ct_tracker *t);

#endif
