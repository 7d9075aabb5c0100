/* dump_rows.c - the named shapes of the dataset (dumpfmt.h): Dataset,
 * which dump_read returns and dump_write takes, and SnapshotRow, one per
 * snapshot in Dataset.snapshots.  Both are struct sequences (base/rows.h):
 * tuples whose fields have names, in the order dumpfmt.h gives.  The
 * writer takes any tuple of the right length, named or not. */
#include "base/rows.h"
#include "base/modobjs.h"
#include "dump/dumpfmt.h"

static PyStructSequence_Field dataset_fields[] = {
    {"names", "list of str: tracking names, by name number"},
    {"classes", "list of str: \"module.qualname\", by class number - 1"},
    {"rec_id", "bytes-like, native uint64 per record: id(obj)"},
    {"rec_name", "bytes-like, native uint32 per record: name number"},
    {"rec_class", "bytes-like, native uint32 per record: class number (0 unknown)"},
    {"rec_birth", "bytes-like, native double per record"},
    {"rec_death", "bytes-like, native double per record (0 alive)"},
    {"rec_trace", "bytes-like, native uint32 per record (0 none, else 1 + index in traces)"},
    {"reprs", "dict record index -> str"},
    {"traces", "list of tuples of (file, line, function, source or None)"},
    {"snapshots", "list of SnapshotRow"},
    {NULL, NULL},
};

static PyStructSequence_Desc dataset_desc = {
    "classtrack._core.Dataset",
    "A tracker's records and snapshots as columns (the dump format's "
    "in-memory form, see dumpfmt.h).",
    dataset_fields,
    CT_DATASET_FIELDS,
};

static PyStructSequence_Field snapshot_fields[] = {
    {"timestamp", "float: when the snapshot was taken"},
    {"desc", "str or None: its description"},
    {"tracked_total", "int: bytes of the tracked objects"},
    {"asizeof_total", "int: bytes of everything sized"},
    {"overhead", "int: bytes classtrack itself held"},
    {"interval", "float: the monitor's interval (0 none)"},
    {"effective_interval", "float: the interval actually kept"},
    {"stretched", "bool: the monitor stretched its interval"},
    {"process", "tuple of 11 ints (process memory) or None"},
    {"entries", "Entries (or, given to dump_write, idx bytes of uint32)"},
    {"entry_sizes", "None with Entries (else size bytes of uint64)"},
    {"entry_flats", "None with Entries (else flat bytes of uint64)"},
    {"trees", "dict record index -> (name, size, flat, refs)"},
    {"retained", "bytes, uint64 per entry (0 not measured), or None"},
    {"shared", "int or None: bytes the measured objects keep alive only together"},
    {"counted", "tuple of (class, instances, size) or None: count-only classes"},
    {"collected", "bool: a full garbage collection ran right before it"},
    {NULL, NULL},
};

static PyStructSequence_Desc snapshot_desc = {
    "classtrack._core.SnapshotRow",
    "One snapshot of a Dataset (see dumpfmt.h).",
    snapshot_fields,
    CT_SNAPSHOT_FIELDS,
};

int
ct_dump_rows_register(PyObject *module, ct_modobjs *objs)
{
    if (ct_row_type_add(module, &dataset_desc, &objs->dataset_type) < 0
        || ct_row_type_add(module, &snapshot_desc, &objs->snapshot_row_type) < 0) {
        return -1;
    }
    return 0;
}
