/* dump_loaded.h - what one read of a dump has decoded so far (private to
 * dump/): the reader's sections (dump_reader.c) fill it, and the frames
 * of a streamed file (dump_frames.c) check, apply or roll it back.
 */
#ifndef CLASSTRACK_DUMP_LOADED_H
#define CLASSTRACK_DUMP_LOADED_H

#include "dump/dump_input.h"

/* Where a streamed file's last complete frame ended: what to keep when
 * the file ends inside the next one. */
typedef struct {
    Py_ssize_t strings, names, classes, traces, snaps;
    uint64_t nrec;
    uint64_t offset;        /* file offset after the frame's CHECK */
    uint64_t frames;        /* complete frames so far */
} ct_checkpoint;

typedef struct {
    PyObject *module;       /* borrowed: classtrack._core */
    PyObject *strings;      /* list of str */
    PyObject *names, *classes, *traces, *reprs, *snaps;
    ct_col id, name, cls, birth, death, trace;
    uint64_t nrec;
    int stage;              /* highest section kind (rank, streamed) read so far */
    /* one snapshot's sizes as read the careful way, reused */
    ct_col e_size, e_flat;
    unsigned size_w, flat_w;    /* the widths of the last snapshot's columns */
    /* streamed files (1.2) */
    int streamed;
    Py_ssize_t frame_first_snap;    /* the current frame's first snapshot */
    ct_col pend_deaths;     /* (uint64 index, double death) pairs, applied at CHECK */
    PyObject *pend_reprs;   /* list of (index, str), applied at CHECK */
    ct_checkpoint last;     /* the last complete frame */
} ct_loaded;

/* A string-table reference into *out (borrowed); optional: 0 is None.
 * 0 or -1. */
static inline int
ct_rd_string_ref(ct_reader *r, ct_loaded *L, int optional, PyObject **out)
{
    uint64_t v;
    *out = NULL;
    if (ct_rd_varint(r, &v) < 0) {
        return -1;
    }
    if (optional) {
        if (v == 0) {
            *out = Py_None;
            return 0;
        }
        v -= 1;
    }
    if (v >= (uint64_t)PyList_GET_SIZE(L->strings)) {
        return ct_rd_fail(r, "string reference %llu out of range", (unsigned long long)v);
    }
    *out = PyList_GET_ITEM(L->strings, (Py_ssize_t)v);     /* borrowed */
    return 0;
}

/* dump_snapsecs.c: sections that add to a snapshot already read.  `start`:
 * where the section begins (for errors about its place).  0 or -1. */
int ct_rd_retained(ct_reader *r, ct_loaded *L);
int ct_rd_counted(ct_reader *r, ct_loaded *L, const unsigned char *start);
int ct_rd_snapflags(ct_reader *r, ct_loaded *L);

/* dump_frames.c: the sections only streamed files have. */
int ct_rd_deaths(ct_reader *r, ct_loaded *L);
int ct_rd_reprs(ct_reader *r, ct_loaded *L);
/* A frame's CHECK (or the END) is good: its DEATHS and REPRS take effect
 * and it becomes the checkpoint.  0 or -1. */
int ct_rd_frame_done(ct_reader *r, ct_loaded *L);
/* The file ended inside a frame: back to the last checkpoint.  0 or -1. */
int ct_rd_rollback(ct_loaded *L);
/* Section order within a streamed frame: 0 if `tag` may follow what the
 * frame has had, else -1 with DumpError. */
int ct_rd_frame_order(ct_reader *r, ct_loaded *L, unsigned tag);

#endif
