/* dump_reader.c - reads a dump (see dumpfmt.h) back into a dataset.
 *
 * Safety contract: nothing from the file is executed or trusted.  Input
 * is a bytes-like object, read in place, or a file streamed through a
 * window: a section is parsed once all its bytes are in the window, which
 * grows only as bytes actually arrive (so a claimed length the file does
 * not back costs nothing) and slides forward over parsed sections.  Every
 * read is bounded by the end of the current section, so a count checked
 * against its section's bytes is checked against bytes really present:
 * columns sized by a count are at most a small multiple of the input.
 * Every index is checked against what it indexes, trees are at most
 * CT_DUMP_MAX_DEPTH deep, and a CRC32 over the whole file catches
 * corruption.  Any problem raises DumpError (a ValueError subclass)
 * naming the problem and its byte offset.
 *
 * Cost: one pass over the input for the CRC and one for the varints, in
 * loops that touch no Python object per record or entry; snapshot
 * entries are decoded straight into compact Entries (entries.h).  A raw
 * file (exactly io.FileIO, as load_stats(path) opens it) is read with
 * read(2) on its descriptor with the GIL released; any other file object
 * through its read() method.  The window is about twice the largest
 * section, not the file: loading a dump never holds all of it.
 *
 * The window, its bounded primitives (ct_rd_*) and the growable columns
 * are in dump_input.c; this file parses the sections with them.
 */
#include "base/modobjs.h"
#include "dump/dumpfmt.h"
#include "dump/dump_input.h"
#include "dump/dump_loaded.h"
#include "base/rows.h"
#include "tracker/entries.h"

#include <math.h>
#include <string.h>

static int
read_strings(ct_reader *r, ct_loaded *L)
{
    uint64_t n;
    if (ct_rd_count(r, &n, 1, "string") < 0) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        if (ct_rd_varint(r, &len) < 0) {
            return -1;
        }
        if (len > ct_rd_left(r)) {
            return ct_rd_fail(r, "string of %llu bytes does not fit in its section",
                        (unsigned long long)len);
        }
        PyObject *s = PyUnicode_DecodeUTF8((const char *)r->p, (Py_ssize_t)len, "strict");
        if (s == NULL) {
            PyErr_Clear();
            return ct_rd_fail(r, "string %llu is not valid UTF-8", (unsigned long long)i);
        }
        r->p += len;
        int rc = PyList_Append(L->strings, s);
        Py_DECREF(s);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

static int
read_str_list(ct_reader *r, ct_loaded *L, PyObject *out, const char *what)
{
    uint64_t n;
    if (ct_rd_count(r, &n, 1, what) < 0) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        PyObject *s = NULL;
        if (ct_rd_string_ref(r, L, 0, &s) < 0 || PyList_Append(out, s) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
read_traces(ct_reader *r, ct_loaded *L)
{
    uint64_t n;
    if (ct_rd_count(r, &n, 1, "trace") < 0) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t nf;
        if (ct_rd_count(r, &nf, 4, "frame") < 0) {
            return -1;
        }
        PyObject *frames = PyList_New(0);
        if (frames == NULL) {
            return -1;
        }
        for (uint64_t f = 0; f < nf; f++) {
            PyObject *file = NULL, *func = NULL, *src = NULL, *fr;
            uint64_t line = 0;
            if (ct_rd_string_ref(r, L, 0, &file) < 0 || ct_rd_varint(r, &line) < 0
                || ct_rd_string_ref(r, L, 0, &func) < 0 || ct_rd_string_ref(r, L, 1, &src) < 0
                || (fr = Py_BuildValue("(OKOO)", file, (unsigned long long)line, func, src)) == NULL) {
                Py_DECREF(frames);
                return -1;
            }
            int rc = PyList_Append(frames, fr);
            Py_DECREF(fr);
            if (rc < 0) {
                Py_DECREF(frames);
                return -1;
            }
        }
        PyObject *t = PyList_AsTuple(frames);
        Py_DECREF(frames);
        if (t == NULL || PyList_Append(L->traces, t) < 0) {
            Py_XDECREF(t);
            return -1;
        }
        Py_DECREF(t);
    }
    return 0;
}

static int
read_records(ct_reader *r, ct_loaded *L)
{
    uint64_t n;
    if (ct_rd_count(r, &n, 21, "record") < 0) {
        return -1;
    }
    if (n > (uint64_t)UINT32_MAX - 1 - L->nrec) {
        return ct_rd_fail(r, "too many records");
    }
    /* n records take at least 21 bytes each of this section: the columns
     * (36 bytes per record) stay in proportion to the input */
    if (ct_col_reserve(&L->id, n * 8) < 0 || ct_col_reserve(&L->name, n * 4) < 0
        || ct_col_reserve(&L->cls, n * 4) < 0 || ct_col_reserve(&L->birth, n * 8) < 0
        || ct_col_reserve(&L->death, n * 8) < 0 || ct_col_reserve(&L->trace, n * 4) < 0) {
        return -1;
    }
    uint64_t nnames = (uint64_t)PyList_GET_SIZE(L->names);
    uint64_t nclasses = (uint64_t)PyList_GET_SIZE(L->classes);
    uint64_t ntraces = (uint64_t)PyList_GET_SIZE(L->traces);
    uint64_t *ids = (uint64_t *)(L->id.data + L->id.len);
    uint32_t *names = (uint32_t *)(L->name.data + L->name.len);
    uint32_t *classes = (uint32_t *)(L->cls.data + L->cls.len);
    double *births = (double *)(L->birth.data + L->birth.len);
    double *deaths = (double *)(L->death.data + L->death.len);
    uint32_t *traces = (uint32_t *)(L->trace.data + L->trace.len);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t id = 0, name = 0, cls = 0, trace = 0;
        double birth = 0, death = 0;
        PyObject *repr = NULL;
        if (ct_rd_varint(r, &id) < 0 || ct_rd_index(r, nnames, &name, "name") < 0
            || ct_rd_index(r, nclasses + 1, &cls, "class") < 0
            || ct_rd_f64(r, &birth, "birth") < 0 || ct_rd_f64(r, &death, "death") < 0
            || ct_rd_index(r, ntraces + 1, &trace, "trace") < 0
            || ct_rd_string_ref(r, L, 1, &repr) < 0) {
            return -1;
        }
        if (death != 0.0 && death < birth) {
            return ct_rd_fail(r, "record %llu dies before it is born", (unsigned long long)L->nrec);
        }
        ids[i] = id;
        names[i] = (uint32_t)name;
        classes[i] = (uint32_t)cls;
        births[i] = birth;
        deaths[i] = death;
        traces[i] = (uint32_t)trace;
        L->id.len += 8;
        L->name.len += 4;
        L->cls.len += 4;
        L->birth.len += 8;
        L->death.len += 8;
        L->trace.len += 4;
        if (repr != Py_None) {
            PyObject *key = PyLong_FromUnsignedLongLong(L->nrec);
            int rc = key == NULL ? -1 : PyDict_SetItem(L->reprs, key, repr);
            Py_XDECREF(key);
            if (rc < 0) {
                return -1;
            }
        }
        L->nrec++;
    }
    return 0;
}

/* The entries of a SNAPSHOT section, the careful way: n of them, each
 * at least 3 bytes of the section (checked by the caller), so the 16
 * bytes of scratch each takes here stay in proportion to the input.
 * Indices are checked as they are decoded and go straight into the
 * Entries; sizes go through the reused scratch columns L->e_size and
 * L->e_flat, to be narrowed.  Every problem is reported exactly.  Run
 * only when the quick way (decode_entries) gave up.  New reference, or
 * NULL with an exception. */
static PyObject *
read_entries_wide(ct_reader *r, ct_loaded *L, uint64_t n)
{
    L->e_size.len = L->e_flat.len = 0;
    if (ct_col_reserve(&L->e_size, n * 8) < 0 || ct_col_reserve(&L->e_flat, n * 8) < 0) {
        return NULL;
    }
    ct_entries *ent = (ct_entries *)ct_entries_alloc(ct_modobjs_of(L->module)->entries_type,
                                                     (size_t)L->nrec, (size_t)n);
    if (ent == NULL) {
        return NULL;
    }
    uint64_t *size = (uint64_t *)L->e_size.data;
    uint64_t *flat = (uint64_t *)L->e_flat.data;
    uint64_t nrec = L->nrec, next = 0;     /* the lowest index the next entry may have */
    uint64_t size_or = 0, flat_or = 0;
    for (uint64_t e = 0; e < n; e++) {
        uint64_t delta, sz, fl;
        if (ct_rd_varint(r, &delta) < 0 || ct_rd_varint(r, &sz) < 0 || ct_rd_varint(r, &fl) < 0) {
            Py_DECREF(ent);
            return NULL;
        }
        /* index = previous + delta, the first's previous being -1 */
        if (delta == 0 || delta > nrec || next + delta - 1 >= nrec) {
            Py_DECREF(ent);
            ct_rd_fail(r, "snapshot entry names no record");
            return NULL;
        }
        uint64_t ix = next + delta - 1;
        ct_entries_put(ent, (size_t)e, (size_t)ix);
        size[e] = sz;
        flat[e] = fl;
        size_or |= sz;
        flat_or |= fl;
        next = ix + 1;
    }
    if (ct_entries_finish(ent, size, flat, size_or, flat_or) < 0) {
        Py_DECREF(ent);
        return NULL;
    }
    return (PyObject *)ent;
}

/* A varint at p, which has at least 10 bytes after it: its length, 0 when
 * it is longer than 9 bytes (left to the careful path, which says what
 * is wrong). */
static inline __attribute__((always_inline)) unsigned
get_varint(const unsigned char *p, uint64_t *v)
{
    uint64_t x = p[0];
    if (x < 0x80) {
        *v = x;
        return 1;
    }
    x &= 0x7f;
    for (unsigned i = 1; i < 9; i++) {
        uint64_t c = p[i];
        x |= (c & 0x7f) << (7 * i);
        if (c < 0x80) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

#define CT_WIDTH_MAX(w) ((w) == 8 ? UINT64_MAX : ((uint64_t)1 << (8 * (w))) - 1)

/* The quick way: decodes straight into `ent`'s columns, allocated at
 * widths sw and fw.  1 when every entry was read, 0 when anything is
 * unusual (a value too wide for its column, a bad index, a malformed or
 * short varint): the section is then read again the careful way.  The
 * last entries, closer than 30 bytes to the section's end, are read with
 * bounds checks. */
static inline __attribute__((always_inline)) int
decode_entries_w(ct_reader *r, ct_entries *ent, uint64_t n, uint64_t nrec, unsigned sw,
                 unsigned fw, uint64_t *size_or, uint64_t *flat_or)
{
    const unsigned char *p = r->p, *end = r->sec_end;
    unsigned char *scol = ent->size, *fcol = ent->flat;
    const uint64_t smax = CT_WIDTH_MAX(sw), fmax = CT_WIDTH_MAX(fw);
    uint64_t next = 0, so = 0, fo = 0;
    for (uint64_t e = 0; e < n; e++) {
        uint64_t delta, sz, fl;
        if (end - p >= 30) {
            unsigned a = get_varint(p, &delta);
            unsigned b = a ? get_varint(p + a, &sz) : 0;
            unsigned c = b ? get_varint(p + a + b, &fl) : 0;
            if (c == 0) {
                return 0;
            }
            p += a + b + c;
        }
        else {
            r->p = p;
            if (ct_rd_varint(r, &delta) < 0 || ct_rd_varint(r, &sz) < 0 || ct_rd_varint(r, &fl) < 0) {
                PyErr_Clear();
                return 0;
            }
            p = r->p;
        }
        if (delta == 0 || delta > nrec || next + delta - 1 >= nrec || sz > smax || fl > fmax) {
            return 0;
        }
        uint64_t ix = next + delta - 1;
        ct_entries_put(ent, (size_t)e, (size_t)ix);
        ct_entries_store(scol, sw, (size_t)e, sz);
        ct_entries_store(fcol, fw, (size_t)e, fl);
        so |= sz;
        fo |= fl;
        next = ix + 1;
    }
    r->p = p;
    *size_or = so;
    *flat_or = fo;
    return 1;
}

static int
decode_entries(ct_reader *r, ct_entries *ent, uint64_t n, uint64_t nrec, uint64_t *so,
               uint64_t *fo)
{
#define CT_DEC(sw, fw) return decode_entries_w(r, ent, n, nrec, sw, fw, so, fo)
    CT_ENTRIES_BY_WIDTH(ent->size_w, ent->flat_w, CT_DEC)
#undef CT_DEC
}

/* The entries of a SNAPSHOT section (n of them, each at least 3 bytes of
 * the section, checked by the caller): decoded straight into columns as
 * wide as the previous snapshot's (a snapshot's sizes are much like the
 * one before), the careful way when that fails.  New reference, or NULL
 * with an exception. */
static PyObject *
read_entries(ct_reader *r, ct_loaded *L, uint64_t n)
{
    if (n > L->nrec) {
        ct_rd_fail(r, "snapshot of %llu entries over %llu records", (unsigned long long)n,
             (unsigned long long)L->nrec);
        return NULL;
    }
    ct_entries *ent = (ct_entries *)ct_entries_alloc(ct_modobjs_of(L->module)->entries_type,
                                                     (size_t)L->nrec, (size_t)n);
    if (ent == NULL || ct_entries_columns(ent, L->size_w, L->flat_w) < 0) {
        Py_XDECREF(ent);
        return NULL;
    }
    const unsigned char *start = r->p;
    uint64_t so = 0, fo = 0;
    if (decode_entries(r, ent, n, L->nrec, &so, &fo)) {
        ct_entries_finish_columns(ent, so, fo);
    }
    else {
        Py_DECREF(ent);
        r->p = start;
        ent = (ct_entries *)read_entries_wide(r, L, n);
        if (ent == NULL) {
            return NULL;
        }
    }
    L->size_w = ent->size_w;
    L->flat_w = ent->flat_w;
    return (PyObject *)ent;
}

static int
read_snapshot(ct_reader *r, ct_loaded *L)
{
    double ts = 0, iv = 0, eiv = 0;
    PyObject *desc = NULL;
    uint64_t tot[3] = {0, 0, 0}, n = 0;
    unsigned stretched = 0, has_proc = 0;
    PyObject *proc = NULL, *snap = NULL, *trees = NULL, *entries = NULL;
    int rc = -1;
    if (ct_rd_f64(r, &ts, "timestamp") < 0 || ct_rd_string_ref(r, L, 0, &desc) < 0
        || ct_rd_varint(r, &tot[0]) < 0 || ct_rd_varint(r, &tot[1]) < 0 || ct_rd_varint(r, &tot[2]) < 0
        || ct_rd_f64(r, &iv, "interval") < 0 || ct_rd_f64(r, &eiv, "interval") < 0
        || ct_rd_u8(r, &stretched) < 0 || ct_rd_u8(r, &has_proc) < 0) {
        goto done;
    }
    if (stretched > 1 || has_proc > 1) {
        ct_rd_fail(r, "flag byte out of range");
        goto done;
    }
    if (has_proc) {
        proc = PyTuple_New(CT_DUMP_PROCESS_FIELDS);
        if (proc == NULL) {
            goto done;
        }
        for (int j = 0; j < CT_DUMP_PROCESS_FIELDS; j++) {
            uint64_t f;
            PyObject *v;
            if (ct_rd_varint(r, &f) < 0 || (v = PyLong_FromUnsignedLongLong(f)) == NULL) {
                goto done;
            }
            PyTuple_SET_ITEM(proc, j, v);
        }
    }
    if (ct_rd_count(r, &n, 3, "snapshot entry") < 0
        || (entries = read_entries(r, L, n)) == NULL) {
        goto done;
    }
    trees = PyDict_New();
    if (trees == NULL) {
        goto done;
    }
    snap = ct_row_from_tuple(
        ct_modobjs_of(L->module)->snapshot_row_type,
        Py_BuildValue("(dOKKKddOOOOOOOOOO)", ts, desc, (unsigned long long)tot[0],
                      (unsigned long long)tot[1], (unsigned long long)tot[2], iv, eiv,
                      stretched ? Py_True : Py_False, proc ? proc : Py_None,
                      entries, Py_None, Py_None, trees, Py_None, Py_None, Py_None,
                      Py_False));
    if (snap == NULL || PyList_Append(L->snaps, snap) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(proc);
    Py_XDECREF(snap);
    Py_XDECREF(trees);
    Py_XDECREF(entries);
    return rc;
}

static PyObject *
read_node(ct_reader *r, ct_loaded *L, int depth)
{
    if (depth > CT_DUMP_MAX_DEPTH) {
        ct_rd_fail(r, "size tree deeper than %d levels", CT_DUMP_MAX_DEPTH);
        return NULL;
    }
    PyObject *name = NULL;
    uint64_t size = 0, flat = 0, nrefs = 0;
    if (ct_rd_string_ref(r, L, 0, &name) < 0 || ct_rd_varint(r, &size) < 0
        || ct_rd_varint(r, &flat) < 0 || ct_rd_count(r, &nrefs, 4, "tree node") < 0) {
        return NULL;
    }
    /* grown child by child: the count is bounded only by the section's
     * claimed length, which the file may not back */
    PyObject *children = PyList_New(0);
    if (children == NULL) {
        return NULL;
    }
    for (uint64_t i = 0; i < nrefs; i++) {
        PyObject *child = read_node(r, L, depth + 1);
        if (child == NULL || PyList_Append(children, child) < 0) {
            Py_XDECREF(child);
            Py_DECREF(children);
            return NULL;
        }
        Py_DECREF(child);
    }
    PyObject *refs = PyList_AsTuple(children);
    Py_DECREF(children);
    if (refs == NULL) {
        return NULL;
    }
    return Py_BuildValue("(OKKN)", name, (unsigned long long)size, (unsigned long long)flat, refs);
}

static int
read_tree(ct_reader *r, ct_loaded *L)
{
    uint64_t snap, rec;
    if (ct_rd_index(r, (uint64_t)PyList_GET_SIZE(L->snaps), &snap, "tree snapshot") < 0
        || ct_rd_index(r, L->nrec, &rec, "tree record") < 0) {
        return -1;
    }
    if (L->streamed && (Py_ssize_t)snap < L->frame_first_snap) {
        return ct_rd_fail(r, "size tree of a snapshot of an earlier frame");
    }
    PyObject *node = read_node(r, L, 0);
    if (node == NULL) {
        return -1;
    }
    PyObject *trees = PyTuple_GET_ITEM(PyList_GET_ITEM(L->snaps, (Py_ssize_t)snap), 12);
    PyObject *key = PyLong_FromUnsignedLongLong(rec);
    int rc = key == NULL ? -1 : PyDict_SetItem(trees, key, node);
    Py_XDECREF(key);
    Py_DECREF(node);
    return rc;
}

/* PROCESS (1.2): who wrote the dump, into info (when asked). */
static int
read_process(ct_reader *r, PyObject *info, int *seen)
{
    uint64_t pid, ppid;
    if (*seen) {
        return ct_rd_fail(r, "second process section");
    }
    *seen = 1;
    if (ct_rd_varint(r, &pid) < 0 || ct_rd_varint(r, &ppid) < 0) {
        return -1;
    }
    if (info == NULL) {
        return 0;
    }
    PyObject *a = PyLong_FromUnsignedLongLong(pid), *b = PyLong_FromUnsignedLongLong(ppid);
    int rc = a == NULL || b == NULL || PyDict_SetItemString(info, "pid", a) < 0
             || PyDict_SetItemString(info, "ppid", b) < 0 ? -1 : 0;
    Py_XDECREF(a);
    Py_XDECREF(b);
    return rc;
}

static int
read_header(ct_reader *r, ct_loaded *L)
{
    if (ct_rd_fill(r, CT_DUMP_HEADER_LEN) < 0) {
        return -1;
    }
    const unsigned char *h = r->p;
    size_t got = (size_t)(r->end - r->p);
    if (got == 0) {
        return ct_rd_fail(r, "the file is empty");
    }
    if (h[0] == 0x80 && got >= 2 && h[1] >= 2 && h[1] <= 5) {
        PyErr_Format(r->error,
                     "this is a pickle file (protocol %d), probably a Pympler "
                     "ClassTracker dump: classtrack never loads pickles, because "
                     "loading a pickle can run any code. Convert it once, if you "
                     "trust it, with classtrack.classtracker_stats."
                     "convert_pympler_dump(old_path, new_path)", h[1]);
        return -1;
    }
    /* errors say where the header's bytes end, as far as they go */
    r->p += got < CT_DUMP_HEADER_LEN ? got : CT_DUMP_HEADER_LEN;
    if (got < CT_DUMP_MAGIC_LEN || memcmp(h, CT_DUMP_MAGIC, CT_DUMP_MAGIC_LEN) != 0) {
        return ct_rd_fail(r, "not a classtrack dump (wrong magic bytes)");
    }
    if (got < CT_DUMP_HEADER_LEN) {
        return ct_rd_fail(r, "file ends inside the header (truncated)");
    }
    unsigned major = h[8] | (h[9] << 8), minor = h[10] | (h[11] << 8);
    if (major != CT_DUMP_MAJOR) {
        PyErr_Format(r->error, "dump format version %u.%u is not supported by this "
                     "classtrack (it reads %d.x)%s", major, minor, CT_DUMP_MAJOR,
                     major > CT_DUMP_MAJOR ? "; upgrade classtrack to read it" : "");
        return -1;
    }
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) {
        bits |= (uint64_t)h[16 + i] << (8 * i);
    }
    double sentinel;
    memcpy(&sentinel, &bits, 8);
    unsigned flags = h[12] | (h[13] << 8) | (h[14] << 16) | ((unsigned)h[15] << 24);
    if (sentinel != CT_DUMP_SENTINEL || (flags & ~(unsigned)CT_DUMP_FLAG_STREAMED) != 0
        || ((flags & CT_DUMP_FLAG_STREAMED) && minor < CT_DUMP_MINOR_STREAMED)) {
        return ct_rd_fail(r, "corrupted header (sentinel or flags wrong)");
    }
    L->streamed = (flags & CT_DUMP_FLAG_STREAMED) != 0;
    return 0;
}

/* A section of a file written whole (not streamed) may come here: the
 * order of 1.1 (dumpfmt.h), which it advances.  0, or -1 with DumpError. */
static int
check_order(ct_reader *r, ct_loaded *L, unsigned tag, const unsigned char *start)
{
    int kind = tag & ~CT_TAG_SKIPPABLE;
    if (tag == CT_TAG_RETAINED || tag == CT_TAG_SNAPFLAGS) {
        if (L->stage < CT_TAG_SNAPSHOT) {
            r->p = start;
            return ct_rd_fail(r, "section 0x%02x out of order", tag);
        }
        return 0;
    }
    if (tag == CT_TAG_COUNTED) {
        return 0;           /* its place is checked as it is read */
    }
    if ((tag & CT_TAG_SKIPPABLE) || kind > CT_TAG_TREE) {
        if (!(tag & CT_TAG_SKIPPABLE)) {
            r->p = start;
            return ct_rd_fail(r, "unknown section type 0x%02x (written by a newer "
                              "classtrack?)", tag);
        }
        return 0;           /* a newer minor's addition: skipped */
    }
    int needs_order = kind == CT_TAG_SNAPSHOT || kind == CT_TAG_TREE ? CT_TAG_RECORDS
                                                                      : kind - 1;
    if (L->stage < needs_order || (kind < CT_TAG_RECORDS && L->stage >= kind)
        || (kind == CT_TAG_RECORDS && L->stage > CT_TAG_RECORDS)) {
        r->p = start;
        return ct_rd_fail(r, "section 0x%02x out of order", tag);
    }
    if (kind > L->stage && kind != CT_TAG_TREE) {
        L->stage = kind;
    }
    return 0;
}

/* Parses one section whose place was checked.  0, or -1 with DumpError. */
static int
read_section(ct_reader *r, ct_loaded *L, unsigned tag, const unsigned char *start,
             uint64_t len)
{
    switch (tag) {
    case CT_TAG_STRINGS: return read_strings(r, L);
    case CT_TAG_NAMES: return read_str_list(r, L, L->names, "name");
    case CT_TAG_CLASSES: return read_str_list(r, L, L->classes, "class");
    case CT_TAG_TRACES: return read_traces(r, L);
    case CT_TAG_RECORDS: return read_records(r, L);
    case CT_TAG_SNAPSHOT: return read_snapshot(r, L);
    case CT_TAG_TREE: return read_tree(r, L);
    case CT_TAG_DEATHS: return ct_rd_deaths(r, L);      /* streamed only: see */
    case CT_TAG_REPRS: return ct_rd_reprs(r, L);        /* check_order */
    case CT_TAG_RETAINED: return ct_rd_retained(r, L);
    case CT_TAG_COUNTED: return ct_rd_counted(r, L, start);
    case CT_TAG_SNAPFLAGS: return ct_rd_snapflags(r, L);
    default:
        if (!(tag & CT_TAG_SKIPPABLE)) {
            r->p = start;
            return ct_rd_fail(r, "unknown section type 0x%02x (written by a newer "
                              "classtrack?)", tag);
        }
        return ct_rd_take(r, NULL, (size_t)len);    /* a newer minor's addition */
    }
}

static PyObject *
read_dump(ct_reader *r, PyObject *module, PyObject *info)
{
    const char *torn = NULL;    /* why a streamed file's last frame is incomplete */
    int ended = 0, process_seen = 0;
    ct_loaded L = {0};
    L.size_w = L.flat_w = 1;
    /* the record columns: bytearrays, handed over as the dataset's */
    ct_col *const owned[6] = {&L.id, &L.name, &L.cls, &L.birth, &L.death, &L.trace};
    PyObject *result = NULL;
    L.module = module;
    L.strings = PyList_New(0);
    L.names = PyList_New(0);
    L.classes = PyList_New(0);
    L.traces = PyList_New(0);
    L.reprs = PyDict_New();
    L.snaps = PyList_New(0);
    L.pend_reprs = PyList_New(0);
    if (!L.strings || !L.names || !L.classes || !L.traces || !L.reprs || !L.snaps
        || !L.pend_reprs) {
        goto done;
    }
    for (int c = 0; c < 6; c++) {
        if ((owned[c]->owner = PyByteArray_FromStringAndSize(NULL, 0)) == NULL) {
            goto done;
        }
    }
    r->sec_end = r->end;
    if (read_header(r, &L) < 0) {
        goto done;
    }
    for (;;) {
        unsigned tag;
        uint64_t len;
        /* the tag and length (at most 11 bytes), then the whole section */
        if (ct_rd_fill(r, 11) < 0) {
            goto done;
        }
        r->sec_end = r->end;
        const unsigned char *start = r->p;
        if (r->p == r->end) {
            if (L.streamed) {
                torn = ct_rd_offset(r) == L.last.offset ? NULL
                                                         : "the file ends inside a frame";
                break;
            }
            ct_rd_fail(r, "file ends early (truncated)");
            goto done;
        }
        if (ct_rd_u8(r, &tag) < 0 || ct_rd_varint(r, &len) < 0) {
            if (r->p == r->end) {   /* the varint ran off the input */
                PyErr_Clear();
                if (L.streamed) {
                    torn = "the file ends inside a section's header";
                    break;
                }
                ct_rd_fail(r, "file ends early (truncated)");
            }
            goto done;
        }
        size_t head = (size_t)(r->p - start);
        r->p = start;               /* kept in the window by fill */
        int whole = ct_rd_fill(r, (uint64_t)head + len < len ? UINT64_MAX : (uint64_t)head + len);
        if (whole < 0) {
            goto done;
        }
        start = r->p;
        r->p += head;
        if (!whole) {
            if (L.streamed) {
                torn = "the file ends inside a section";
                break;
            }
            ct_rd_fail(r, "section of %llu bytes runs past the end of the file (truncated)",
                 (unsigned long long)len);
            goto done;
        }
        r->sec_end = r->p + len;
        if (tag == CT_TAG_END || (tag == CT_TAG_CHECK && L.streamed)) {
            if (len != 4) {
                ct_rd_fail(r, "end marker has the wrong length");
                goto done;
            }
            uint32_t expect = ct_crc32(r->crc, r->base, (size_t)(r->p - r->base));
            const unsigned char *c = r->p;
            uint32_t got = c[0] | (c[1] << 8) | (c[2] << 16) | ((uint32_t)c[3] << 24);
            if (got != expect) {
                r->p = start;
                ct_rd_fail(r, "checksum mismatch: the file is corrupted");
                goto done;
            }
            r->p += 4;
            if (L.streamed && ct_rd_frame_done(r, &L) < 0) {
                goto done;
            }
            if (tag == CT_TAG_CHECK) {
                continue;
            }
            ended = 1;
            int more = r->p != r->end ? 1 : ct_rd_fill(r, 1);
            if (more != 0) {
                if (more > 0) {
                    ct_rd_fail(r, "data after the end marker");
                }
                goto done;
            }
            break;
        }
        int rc;
        if (tag == CT_TAG_PROCESS) {
            rc = read_process(r, info, &process_seen);
        }
        else {
            /* where it may come: within a frame (streamed), or 1.1's order */
            rc = L.streamed ? ct_rd_frame_order(r, &L, tag) : check_order(r, &L, tag, start);
            if (rc == 0) {
                rc = read_section(r, &L, tag, start, len);
            }
        }
        if (rc < 0) {
            goto done;
        }
        if (r->p != r->sec_end) {
            ct_rd_fail(r, "section 0x%02x has %llu unread bytes", tag,
                 (unsigned long long)(r->sec_end - r->p));
            goto done;
        }
    }
    if (L.streamed && !ended) {
        /* the writer was killed, or is still writing: the last complete
         * frame is what there is */
        if (L.last.frames == 0) {
            ct_rd_fail(r, "the file ends before its first snapshot was written whole "
                       "(the program was killed, or is starting)");
            goto done;
        }
        uint64_t size = r->base_off + (uint64_t)(r->end - r->base);   /* all of it */
        if (ct_rd_rollback(&L) < 0) {
            goto done;
        }
        if (info != NULL) {
            PyObject *why = PyUnicode_FromString(torn ? torn : "");
            PyObject *dropped = PyLong_FromUnsignedLongLong(size - L.last.offset);
            int bad = why == NULL || dropped == NULL
                      || PyDict_SetItemString(info, "dropped", dropped) < 0
                      || PyDict_SetItemString(info, "why", why) < 0;
            Py_XDECREF(why);
            Py_XDECREF(dropped);
            if (bad) {
                goto done;
            }
        }
    }
    else if (!L.streamed && L.stage < CT_TAG_RECORDS) {
        ct_rd_fail(r, "dump has no records section");
        goto done;
    }
    if (info != NULL) {
        PyObject *frames = PyLong_FromUnsignedLongLong(L.last.frames);
        int bad = frames == NULL
                  || PyDict_SetItemString(info, "streamed", L.streamed ? Py_True : Py_False) < 0
                  || PyDict_SetItemString(info, "complete", ended ? Py_True : Py_False) < 0
                  || PyDict_SetItemString(info, "frames", frames) < 0;
        Py_XDECREF(frames);
        if (bad) {
            goto done;
        }
    }
    result = ct_row_from_tuple(
        ct_modobjs_of(module)->dataset_type,
        Py_BuildValue("(OONNNNNNOOO)", L.names, L.classes, ct_col_hand_over(&L.id),
                      ct_col_hand_over(&L.name), ct_col_hand_over(&L.cls),
                      ct_col_hand_over(&L.birth), ct_col_hand_over(&L.death),
                      ct_col_hand_over(&L.trace), L.reprs, L.traces, L.snaps));
done:
    Py_XDECREF(L.strings);
    Py_XDECREF(L.names);
    Py_XDECREF(L.classes);
    Py_XDECREF(L.traces);
    Py_XDECREF(L.reprs);
    Py_XDECREF(L.snaps);
    Py_XDECREF(L.pend_reprs);
    PyMem_Free(L.pend_deaths.data);
    for (int c = 0; c < 6; c++) {
        Py_XDECREF(owned[c]->owner);
    }
    PyMem_Free(L.e_size.data);
    PyMem_Free(L.e_flat.data);
    return result;
}

/* dump_read(file_or_bytes, info=None) -> dataset; info, a dict, gets
 * what kind of file it was: streamed, complete (ends in END), frames,
 * and for a streamed file cut inside a frame, dropped (bytes) and why */
static PyObject *
core_dump_read(PyObject *module, PyObject *args)
{
    PyObject *src, *info = NULL;
    if (!PyArg_ParseTuple(args, "O|O!:dump_read", &src, &PyDict_Type, &info)) {
        return NULL;
    }
    ct_modobjs *st = ct_modobjs_of(module);
    ct_reader r = {0};
    r.error = st->dump_error;
    r.fd = -1;
    Py_buffer view = {0};
    PyObject *read = NULL, *result = NULL;
    if (PyObject_CheckBuffer(src)) {
        if (PyObject_GetBuffer(src, &view, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        r.base = view.buf != NULL ? view.buf : (const unsigned char *)"";
        r.end = r.base + view.len;
        r.eof = 1;
    }
    else {
        r.fd = ct_dump_raw_fd(module, src, 0);
        if (r.fd == -2) {
            return NULL;
        }
        if (r.fd < 0) {
            read = ct_getattr(src, "read");
            if (read == NULL) {
                return NULL;
            }
            r.read = read;
        }
        r.buf = PyMem_Malloc(CT_IN_START);
        if (r.buf == NULL) {
            Py_XDECREF(read);
            return PyErr_NoMemory();
        }
        r.cap = CT_IN_START;
        r.base = r.end = r.buf;
    }
    r.p = r.base;
    result = read_dump(&r, module, info);
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    Py_XDECREF(read);
    PyMem_Free(r.buf);
    return result;
}

PyMethodDef ct_dump_reader_functions[] = {
    {"dump_read", core_dump_read, METH_VARARGS,
     "dump_read(file_or_bytes, info=None) -> dataset; raises DumpError on any malformed "
     "input; a streamed file cut inside a frame is read to its last whole frame, and "
     "info (a dict) says so"},
    {NULL, NULL, 0, NULL},
};
