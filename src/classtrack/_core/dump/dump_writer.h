/* dump_writer.h - the dump writer's state (private to dump/): a dump is
 * written as one or more frames (dumpfmt.h).  dump_write() writes one
 * frame, whole, ending in END; a DumpStream (dump_stream.c) appends a
 * frame per snapshot, each ending in CHECK, and the last in END.
 */
#ifndef CLASSTRACK_DUMP_WRITER_H
#define CLASSTRACK_DUMP_WRITER_H

#include "base/modobjs.h"
#include "dump/dumpfmt.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
    unsigned char *data;
    size_t len;
    size_t cap;
} ct_buf;

/* Where the bytes go (dump_writer.c, "the output file"). */
typedef struct {
    PyObject *write;        /* strong: file.write, or NULL with fd */
    int fd;                 /* the raw file's descriptor, or -1 */
    ct_buf out;             /* pending bytes, flushed at CT_OUT_CHUNK */
    ct_buf sec;             /* the section being assembled */
    uint32_t crc;           /* of every byte written so far */
} ct_writer;

/* The string table: every string written so far, by number. */
typedef struct {
    PyObject *index;        /* strong: dict str -> int */
    PyObject *list;         /* strong: list of str */
} ct_strtab;

/* What the frames written so far hold: each frame writes only what
 * follows (strings, names, classes, traces, records, snapshots).  */
typedef struct {
    ct_writer w;
    ct_strtab t;
    uint64_t nstrings, nnames, nclasses, ntraces, nrec, nsnaps;
    int streamed;           /* frames end in CHECK; header flag 1, minor 2 */
    int started;            /* the header is written */
    int ended;              /* END is written: nothing more may be */
    int broken;             /* a frame failed part way: nothing more may be */
    int has_process;        /* write PROCESS (pid, ppid) in the first frame */
    uint64_t pid, ppid;
} ct_stream;

/* Initialises a stream writing to `file` (an io.FileIO is written
 * through its descriptor, anything else through file.write).  0 or -1. */
int ct_stream_init(ct_stream *s, PyObject *module, PyObject *file, int streamed);
/* The process that wrote the dump: None, or (pid, ppid).  0 or -1. */
int ct_stream_set_process(ct_stream *s, PyObject *process);
void ct_stream_release(ct_stream *s);

/* Writes one frame from `ds`, a dataset (dumpfmt.h) whose lists of names,
 * classes and traces are whole (the frame writes those past what earlier
 * frames wrote), whose record columns hold the records from number
 * s->nrec on, whose snapshots are the new ones (numbered from s->nsnaps)
 * and whose reprs may name earlier records (their new text).  `deaths`:
 * None, or (index uint32 bytes, death double bytes) for earlier records
 * that died since, indices increasing.  `final`: end with END, else
 * CHECK.  0, or -1 with an exception (the stream is broken then). */
int ct_stream_frame(ct_stream *s, PyObject *ds, PyObject *deaths, int final,
                    PyTypeObject *entries_type);

#endif
