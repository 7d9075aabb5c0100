/* dumpfmt.h - THE classtrack dump format, version 1.2.
 *
 * Everything little-endian, independent of the writing machine.  Integers
 * are unsigned LEB128 varints ("v" below) unless a width is given; f64 is
 * an IEEE-754 double; a string is referenced by its index in the string
 * table ("s"), or by index + 1 where 0 means "none" ("s?").
 *
 *   file    := header section* end
 *   header  := magic[8] major:u16 minor:u16 flags:u32 sentinel:f64   (24 bytes)
 *              magic    = 89 'C' 'T' 'R' 'K' 0D 0A 1A  (the high byte and
 *                         CR LF SUB catch text-mode mangling, as PNG does)
 *              major    = 1: a reader refuses other majors
 *              minor    = 1: a newer minor only adds skippable sections
 *                         (1.0 had no RETAINED; a 1.0 reader skips it)
 *              flags    = 0, reserved
 *              sentinel = 1234.5, catches a wrong float encoding
 *   section := tag:u8 length:v payload[length]
 *              tag bit 0x80 marks a section a reader may skip when it does
 *              not know the tag; an unknown tag without it is an error.
 *   end     := tag 0x00, length 4, crc32 of every byte before the crc
 *              (the header, all sections, and this section's tag and length)
 *
 * Sections of version 1.0, in this order, each at most once except
 * SNAPSHOT and TREE:
 *   0x01 STRINGS   count:v { length:v utf8[length] }*
 *   0x02 NAMES     count:v { s }*                      tracking names
 *   0x03 CLASSES   count:v { s }*                      "module.qualname"
 *   0x04 TRACES    count:v { frames:v { file:s line:v function:s source:s? }* }*
 *   0x05 RECORDS   count:v { id:v name:v class:v+1 birth:f64 death:f64
 *                            trace:v repr:s? }*
 *                  death 0 = alive at dump time; trace 0 = none, else
 *                  1 + index in TRACES; class 0 = unknown
 *   0x06 SNAPSHOT  timestamp:f64 desc:s tracked_total:v asizeof_total:v
 *                  overhead:v interval:f64 effective_interval:f64
 *                  stretched:u8 process:u8 [process_fields:v{11}]
 *                  count:v { index_delta:v size:v flat:v }*
 *                  process 0 = no process numbers, 1 = eleven fields follow
 *                  (vsz rss rss_peak vsz_peak data code lib stack locked
 *                  page_tables major_faults); index_delta is the record
 *                  index minus the previous entry's (the first minus -1),
 *                  so indices strictly increase.
 *   0x07 TREE      snapshot:v index:v node
 *                  node := name:s size:v flat:v nrefs:v node{nrefs}
 *                  (depth at most CT_DUMP_MAX_DEPTH)
 *
 * Added in 1.1, skippable (so 1.0 readers still read 1.1 files):
 *   0x88 RETAINED  snapshot:v shared:v count:v { retained:v }*
 *                  retained sizes measured at a snapshot (dominator tree,
 *                  see graph.c), one per entry of that SNAPSHOT, in its
 *                  order (count must equal its entry count); 0 = not
 *                  measured for that object (a live object retains at
 *                  least itself).  shared = 1 + bytes the measured objects
 *                  keep alive only together, 0 = not measured.  At most
 *                  one per snapshot, after that SNAPSHOT section.
 *   0x8B COUNTED   snapshot:v count:v { class:s instances:v size:v }*
 *                  the count-only classes at a snapshot: instances of
 *                  classes that cannot be followed one by one, counted and
 *                  sized (flat) when the snapshot was taken; class is
 *                  "module.qualname".  At most one per snapshot, after that
 *                  snapshot's SNAPSHOT, TREE and RETAINED sections.
 *
 * Added in 1.2: streamed files, for a program that may die at any moment
 * (SIGKILL, the OOM killer).  Header flag bit 0 (CT_DUMP_FLAG_STREAMED)
 * with minor = 2 marks one; a file without it is read exactly as 1.1
 * (and written as 1.1, so 1.1 readers read it).  A streamed file is
 *   file  := header frame* [frame-with-END]
 *   frame := section* CHECK
 *   0x09 CHECK     crc32:u32 (length 4), of every byte before the crc,
 *                  from the file's first byte: the frame before it is
 *                  complete.  The last frame ends in END instead.
 * Each frame appends what happened since the one before: STRINGS, NAMES,
 * CLASSES, TRACES and RECORDS may come in every frame, each continuing
 * the numbering of the earlier ones (an empty one is left out after the
 * first frame), then
 *   0x0A DEATHS    count:v { index_delta:v death:f64 }*
 *                  records of earlier frames (written alive) that died
 *                  since; indices strictly increase (delta from -1, as
 *                  entries); each record dies once.
 *   0x0B REPRS     count:v { index_delta:v repr:s }*
 *                  the new custom repr of records of earlier frames
 * then the frame's SNAPSHOT sections with their TREE and RETAINED (whose
 * snapshot number must be one of this frame's).  Within a frame the
 * order is STRINGS NAMES CLASSES TRACES RECORDS* DEATHS REPRS, then
 * snapshots; DEATHS and REPRS take effect at the frame's CHECK.
 * The writer sends each frame with write(2) and nothing else (no
 * rewrite, no seek), so a process killed at any instant leaves a file
 * that is whole up to its last CHECK.  The reader keeps everything up to
 * the last CHECK of a file that ends without END, drops the rest (an
 * incomplete frame) and says so; any other damage (a checksum that does
 * not match, a malformed section) is an error as in any dump.  A 1.1
 * reader refuses a streamed file (unknown section 0x0a/0x09).
 *
 * Added in 1.2, skippable (a 1.1 reader skips it):
 *   0x8C PROCESS   pid:v ppid:v
 *                  the process the dump is of and its parent (a
 *                  --follow-fork run's processes form a tree); at most
 *                  once, anywhere (the writer puts it right after the
 *                  header).
 *
 *   0x8D SNAPFLAGS snapshot:v flags:v
 *                  bit 0: a full garbage collection (gc.collect()) ran
 *                  right before that snapshot; other bits must be 0.  At
 *                  most one per snapshot, after its SNAPSHOT section,
 *                  written only when a flag is set.  Snapshot row field
 *                  16, collected (bool).
 *
 * Sizes: a resolution-0 object costs index_delta (1 byte) + size + flat
 * (2-3 bytes each) per snapshot, about 6 bytes.
 *
 * Reading never trusts a count or a length: each is checked against the
 * bytes left in its section and the section against the end of the file
 * as it is reached; memory grows only with bytes actually read.  Every
 * problem raises classtrack.DumpError (a ValueError) saying what and at
 * which offset.
 */
#ifndef CLASSTRACK_DUMPFMT_H
#define CLASSTRACK_DUMPFMT_H

/* Python.h first, as everywhere (it sets feature macros, _POSIX_C_SOURCE,
 * that system headers included before it would define otherwise) */
#include "base/modobjs.h"
#include <stddef.h>
#include <stdint.h>

#define CT_DUMP_MAGIC "\x89" "CTRK\r\n\x1a"
#define CT_DUMP_MAGIC_LEN 8
#define CT_DUMP_MAJOR 1
#define CT_DUMP_MINOR 1            /* of a file written whole */
#define CT_DUMP_MINOR_STREAMED 2   /* of a streamed file */
#define CT_DUMP_FLAG_STREAMED 0x01
#define CT_DUMP_SENTINEL 1234.5
#define CT_DUMP_HEADER_LEN 24

#define CT_TAG_END 0x00
#define CT_TAG_STRINGS 0x01
#define CT_TAG_NAMES 0x02
#define CT_TAG_CLASSES 0x03
#define CT_TAG_TRACES 0x04
#define CT_TAG_RECORDS 0x05
#define CT_TAG_SNAPSHOT 0x06
#define CT_TAG_TREE 0x07
#define CT_TAG_CHECK 0x09
#define CT_TAG_DEATHS 0x0A
#define CT_TAG_REPRS 0x0B
#define CT_TAG_RETAINED 0x88
#define CT_TAG_COUNTED 0x8B
#define CT_TAG_PROCESS 0x8C
#define CT_TAG_SNAPFLAGS 0x8D
#define CT_SNAPFLAG_COLLECTED 0x01
#define CT_TAG_SKIPPABLE 0x80

#define CT_DUMP_PROCESS_FIELDS 11
#define CT_DUMP_MAX_DEPTH 64

/* The in-memory dataset both the writer takes and the reader returns, a
 * tuple of (see classtrack/classtracker_stats.py, _Dataset):
 *   0 names     list of str
 *   1 classes   list of str
 *   2 rec_id    bytes-like (bytes from export, bytearray from the
 *               reader), native uint64 per record; so are 3 to 7
 *   3 rec_name  bytes, native uint32
 *   4 rec_class bytes, native uint32 (index + 1, 0 unknown)
 *   5 rec_birth bytes, native double
 *   6 rec_death bytes, native double (0 alive)
 *   7 rec_trace bytes, native uint32 (0 none, else 1 + index)
 *   8 reprs     dict record index -> str
 *   9 traces    list of tuples of (file, line, function, source or None)
 *  10 snapshots list of tuples (timestamp, desc, tracked_total,
 *               asizeof_total, overhead, interval, effective_interval,
 *               stretched, process tuple or None, entries, None, None,
 *               trees dict index -> (name, size, flat, refs), retained
 *               bytes (uint64 per entry, 0 not measured) or None, shared
 *               int or None, counted: a tuple of (class str, instances
 *               int, size int) or None, collected bool).  `entries` is a classtrack._core.Entries
 *               (entries.h: the snapshot's records, sizes and flat sizes,
 *               compact), as the reader returns it.  The writer also
 *               takes, in fields 9-11, idx bytes (uint32), size bytes
 *               (uint64) and flat bytes (uint64), and the 13 fields
 *               before retained (as 1.0 had them), the 15 before
 *               counted or the 16 before collected
 */
#define CT_DATASET_FIELDS 11
/* The dataset and its snapshots come from dump_read as named rows,
 * classtrack._core.Dataset and SnapshotRow (dump_rows.c, field names
 * there), tuples still. */
#define CT_SNAPSHOT_FIELDS 17
#define CT_SNAPSHOT_FIELDS_COUNTED 16
#define CT_SNAPSHOT_FIELDS_1_0 13
#define CT_SNAPSHOT_FIELDS_1_1 15

/* crc32 (IEEE 802.3, as zlib computes it; crc32.c): the crc of `len`
 * more bytes after a crc of `crc` (0 to start).  _portable always uses
 * the tables, for the tests. */
uint32_t ct_crc32(uint32_t crc, const unsigned char *buf, size_t len);
uint32_t ct_crc32_portable(uint32_t crc, const unsigned char *buf, size_t len);

/* Raw file access (dump_io.c).  ct_dump_raw_fd: the descriptor of `file`
 * when it is exactly an open io.FileIO (the module state's) that can read (writing 0) or
 * write (writing 1), -1 for any other file object (use its methods), -2
 * with an exception.  ct_dump_fd_read: up to n bytes, how many (0 at the
 * end), or -1 with OSError.  ct_dump_fd_write: all n bytes, in writes of
 * at most CT_DUMP_FD_CHUNK (the kernel copies larger ones no faster); 0
 * or -1 with OSError.  Both release the GIL around each system call and
 * retry after a signal whose handler does not raise. */
#define CT_DUMP_FD_CHUNK (1 << 20)
int ct_dump_raw_fd(PyObject *module, PyObject *file, int writing);
Py_ssize_t ct_dump_fd_read(int fd, unsigned char *dst, size_t n);
int ct_dump_fd_write(int fd, const unsigned char *p, size_t n);

/* Adds classtrack._core.DumpStream (dump_stream.c) to the module.  0 or
 * -1. */
int ct_dump_stream_register(PyObject *module);

/* Makes classtrack._core.Dataset and SnapshotRow (dump_rows.c) into
 * objs and the module.  0 or -1. */
int ct_dump_rows_register(PyObject *module, ct_modobjs *objs);

#endif
