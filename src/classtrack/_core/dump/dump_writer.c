/* dump_writer.c - writes a dataset (see dumpfmt.h) to a binary file.
 *
 * Each section is assembled in a growable buffer first, because its
 * length precedes it; small sections gather in a 64 KiB buffer, large
 * ones go out from where they were assembled (see "the output file").
 * Records are written in sections of at most CT_RECORDS_PER_SECTION, so
 * the section buffer stays small however many objects were tracked.
 * The CRC32 of everything written is appended in the END section.
 */
#include "base/modobjs.h"
#include "dump/dumpfmt.h"
#include "dump/dump_writer.h"
#include "columns/columns.h"
#include "tracker/entries.h"
#include "base/bigmem.h"

#include <string.h>

#define CT_OUT_CHUNK 65536
#define CT_RECORDS_PER_SECTION 65536

/* -- byte buffers -------------------------------------------------------- */


static int
buf_reserve(ct_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    /* megabytes for a large frame: kept out of malloc (base/bigmem.h) */
    unsigned char *d = ct_big_realloc(b->data, cap);
    if (d == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

/* Frees an empty buffer's storage when it is large. */
static void
release_big(ct_buf *b)
{
    if (b->len == 0 && b->cap > 4 * CT_OUT_CHUNK) {
        ct_big_free(b->data);
        *b = (ct_buf){0};
    }
}

static int
buf_put(ct_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0) {
        return -1;
    }
    if (n > 0) {    /* p may be NULL for nothing */
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    return 0;
}

static int
buf_varint(ct_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        unsigned char byte = v & 0x7f;
        v >>= 7;
        tmp[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    return buf_put(b, tmp, n);
}

/* Writes v at p (room for 10 bytes); returns the end. */
static inline unsigned char *
put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

static int
buf_u8(ct_buf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    return buf_put(b, &c, 1);
}

static int
buf_f64(ct_buf *b, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    unsigned char tmp[8];
    for (int i = 0; i < 8; i++) {
        tmp[i] = (unsigned char)(bits >> (8 * i));
    }
    return buf_put(b, tmp, 8);
}

/* -- the output file ------------------------------------------------------ */

/* Bytes go out one of two ways.  To a raw file (exactly io.FileIO, as
 * dump_stats(path) opens it), with write(2) on its descriptor, from our
 * buffers directly (dump_io.c).  To any other file object, through its
 * write() method in bytes objects of at most CT_OUT_CHUNK: a Python
 * write() may keep what it is given, so it never sees our memory. */

/* Passes n bytes on to the file (not through w->out). */
static int
out_write(ct_writer *w, const unsigned char *p, size_t n)
{
    if (w->fd >= 0) {
        return ct_dump_fd_write(w->fd, p, n);
    }
    while (n > 0) {
        size_t chunk = n < CT_OUT_CHUNK ? n : CT_OUT_CHUNK;
        PyObject *bytes = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)chunk);
        if (bytes == NULL) {
            return -1;
        }
        PyObject *r = PyObject_CallOneArg(w->write, bytes);
        Py_DECREF(bytes);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
        p += chunk;
        n -= chunk;
    }
    return 0;
}

static int
out_flush(ct_writer *w)
{
    int rc = out_write(w, w->out.data, w->out.len);
    w->out.len = 0;
    return rc;
}

/* Adds bytes to what is written, and to the crc. */
static int
out_put(ct_writer *w, const void *p, size_t n)
{
    w->crc = ct_crc32(w->crc, p, n);
    if (n >= CT_OUT_CHUNK) {    /* large: straight from where it is */
        return out_flush(w) < 0 ? -1 : out_write(w, p, n);
    }
    if (buf_put(&w->out, p, n) < 0) {
        return -1;
    }
    return w->out.len >= CT_OUT_CHUNK ? out_flush(w) : 0;
}

/* Emits w->sec as a section with this tag and empties it. */
static int
emit_section(ct_writer *w, unsigned tag)
{
    unsigned char head[11];
    head[0] = (unsigned char)tag;
    size_t nhead = (size_t)(put_varint(head + 1, w->sec.len) - head);
    int rc = out_put(w, head, nhead) == 0 && out_put(w, w->sec.data, w->sec.len) == 0
                 ? 0 : -1;
    w->sec.len = 0;
    return rc;
}

/* -- strings ------------------------------------------------------------- */


static Py_ssize_t
str_id(ct_strtab *t, PyObject *s)
{
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "dump: expected str, got %.50s", Py_TYPE(s)->tp_name);
        return -1;
    }
    PyObject *v = PyDict_GetItemWithError(t->index, s);
    if (v != NULL) {
        return PyLong_AsSsize_t(v);
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(t->list);
    v = PyLong_FromSsize_t(n);
    if (v == NULL || PyDict_SetItem(t->index, s, v) < 0 || PyList_Append(t->list, s) < 0) {
        Py_XDECREF(v);
        return -1;
    }
    Py_DECREF(v);
    return n;
}

static int
put_str(ct_writer *w, ct_strtab *t, PyObject *s)
{
    Py_ssize_t id = str_id(t, s);
    return id < 0 ? -1 : buf_varint(&w->sec, (uint64_t)id);
}

static int
put_opt_str(ct_writer *w, ct_strtab *t, PyObject *s)
{
    if (s == NULL || s == Py_None) {
        return buf_varint(&w->sec, 0);
    }
    Py_ssize_t id = str_id(t, s);
    return id < 0 ? -1 : buf_varint(&w->sec, (uint64_t)id + 1);
}

/* Registers every string of a tree. */
static int
collect_tree_strings(ct_strtab *t, PyObject *node, int depth)
{
    if (!PyTuple_Check(node) || PyTuple_GET_SIZE(node) != 4 || depth > CT_DUMP_MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "dump: malformed or too deep size tree");
        return -1;
    }
    if (str_id(t, PyTuple_GET_ITEM(node, 0)) < 0) {
        return -1;
    }
    PyObject *refs = PyTuple_GET_ITEM(node, 3);
    if (!PyTuple_Check(refs)) {
        PyErr_SetString(PyExc_ValueError, "dump: malformed size tree");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(refs); i++) {
        if (collect_tree_strings(t, PyTuple_GET_ITEM(refs, i), depth + 1) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
put_tree(ct_writer *w, ct_strtab *t, PyObject *node)
{
    Py_ssize_t size = PyLong_AsSsize_t(PyTuple_GET_ITEM(node, 1));
    Py_ssize_t flat = PyLong_AsSsize_t(PyTuple_GET_ITEM(node, 2));
    if ((size < 0 || flat < 0)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "dump: negative size in tree");
        }
        return -1;
    }
    PyObject *refs = PyTuple_GET_ITEM(node, 3);
    if (put_str(w, t, PyTuple_GET_ITEM(node, 0)) < 0
        || buf_varint(&w->sec, (uint64_t)size) < 0
        || buf_varint(&w->sec, (uint64_t)flat) < 0
        || buf_varint(&w->sec, (uint64_t)PyTuple_GET_SIZE(refs)) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(refs); i++) {
        if (put_tree(w, t, PyTuple_GET_ITEM(refs, i)) < 0) {
            return -1;
        }
    }
    return 0;
}

/* -- the dataset ----------------------------------------------------------- */

typedef struct {
    Py_buffer b;
    size_t n;
} ct_col;

static int
get_col(PyObject *obj, size_t itemsize, ct_col *col, const char *what)
{
    return ct_column_get(obj, itemsize, &col->b, &col->n, "dump", what);
}

/* The RETAINED section of snapshot `snap` (see dumpfmt.h), when it has
 * retained sizes: `col` a buffer of one uint64 per entry, or None;
 * `shared` an int or None. */
static int
put_retained(ct_writer *w, uint64_t snap, size_t nentries, PyObject *col, PyObject *shared)
{
    if (col == Py_None) {
        return 0;
    }
    uint64_t sh = 0;
    if (shared != Py_None) {
        unsigned long long v = PyLong_AsUnsignedLongLong(shared);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            return -1;
        }
        if (v == UINT64_MAX) {
            PyErr_SetString(PyExc_OverflowError, "dump: shared size too large");
            return -1;
        }
        sh = (uint64_t)v + 1;
    }
    ct_col r = {0};
    if (get_col(col, 8, &r, "retained") < 0) {
        return -1;
    }
    int ok = 1;
    if (r.n != nentries) {
        PyErr_SetString(PyExc_ValueError, "dump: retained column and snapshot entries "
                        "differ in length");
        ok = 0;
    }
    ok = ok && buf_varint(&w->sec, snap) == 0 && buf_varint(&w->sec, sh) == 0
         && buf_varint(&w->sec, r.n) == 0;
    const uint64_t *rv = (const uint64_t *)r.b.buf;
    for (size_t e = 0; ok && e < r.n; e++) {
        ok = buf_varint(&w->sec, rv[e]) == 0;
    }
    PyBuffer_Release(&r.b);
    return ok && emit_section(w, CT_TAG_RETAINED) == 0 ? 0 : -1;
}

/* SNAPFLAGS of snapshot `snap` (dumpfmt.h): written only when a flag
 * is set (field 16, collected, true). */
static int
put_snapflags(ct_writer *w, uint64_t snap, PyObject *sn)
{
    if (PyTuple_GET_SIZE(sn) < CT_SNAPSHOT_FIELDS) {
        return 0;
    }
    int collected = PyObject_IsTrue(PyTuple_GET_ITEM(sn, 16));
    if (collected <= 0) {
        return collected;
    }
    return buf_varint(&w->sec, snap) == 0 && buf_varint(&w->sec, CT_SNAPFLAG_COLLECTED) == 0
               ? emit_section(w, CT_TAG_SNAPFLAGS) : -1;
}

/* The count-only classes of a snapshot row (field 15), or NULL when the
 * row has none (None, or a row of an older shape).  Borrowed. */
static PyObject *
counted_of(PyObject *sn)
{
    if (PyTuple_GET_SIZE(sn) < CT_SNAPSHOT_FIELDS_COUNTED) {
        return NULL;
    }
    PyObject *c = PyTuple_GET_ITEM(sn, 15);
    return c == Py_None ? NULL : c;
}

/* Pass 1 for the COUNTED section of a snapshot row: checks its shape (a
 * tuple of (str, int, int)) and registers the class names. */
static int
collect_counted_strings(ct_strtab *t, PyObject *sn)
{
    PyObject *c = counted_of(sn);
    if (c == NULL) {
        return 0;
    }
    if (!PyTuple_Check(c)) {
        PyErr_SetString(PyExc_TypeError, "dump: counted must be a tuple or None");
        return -1;
    }
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(c); j++) {
        PyObject *row = PyTuple_GET_ITEM(c, j);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 3
            || !PyLong_Check(PyTuple_GET_ITEM(row, 1)) || !PyLong_Check(PyTuple_GET_ITEM(row, 2))) {
            PyErr_SetString(PyExc_TypeError, "dump: a counted class must be (str, int, int)");
            return -1;
        }
        if (str_id(t, PyTuple_GET_ITEM(row, 0)) < 0) {
            return -1;
        }
    }
    return 0;
}

/* The COUNTED section of snapshot `snap` (see dumpfmt.h), when its row
 * has count-only classes (checked by collect_counted_strings). */
static int
put_counted(ct_writer *w, ct_strtab *t, uint64_t snap, PyObject *sn)
{
    PyObject *c = counted_of(sn);
    if (c == NULL) {
        return 0;
    }
    if (buf_varint(&w->sec, snap) < 0 || buf_varint(&w->sec, (uint64_t)PyTuple_GET_SIZE(c)) < 0) {
        return -1;
    }
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(c); j++) {
        PyObject *row = PyTuple_GET_ITEM(c, j);
        unsigned long long n = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(row, 1));
        unsigned long long size = n == (unsigned long long)-1 && PyErr_Occurred()
                                      ? 0 : PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(row, 2));
        if (PyErr_Occurred() || put_str(w, t, PyTuple_GET_ITEM(row, 0)) < 0
            || buf_varint(&w->sec, n) < 0 || buf_varint(&w->sec, size) < 0) {
            return -1;
        }
    }
    return emit_section(w, CT_TAG_COUNTED);
}

/* A record's custom repr: (record index, borrowed str) */
typedef struct {
    size_t rec;
    PyObject *text;
} ct_repr;

static int
cmp_repr(const void *a, const void *b)
{
    const ct_repr *x = a, *y = b;
    return x->rec < y->rec ? -1 : x->rec > y->rec;
}

/* One varint, the one-byte case inline. */
static inline __attribute__((always_inline)) unsigned char *
put_small(unsigned char *p, uint64_t v)
{
    if (v < 0x80) {
        *p++ = (unsigned char)v;
        return p;
    }
    return put_varint(p, v);
}

/* The entries of `e` as (index delta, size, flat) varints at p (room for
 * 30 bytes an entry); returns the end.  Inlined with constant widths
 * (encode_entries), so the loop reads each column at its own width with
 * no test per value. */
static inline __attribute__((always_inline)) unsigned char *
encode_entries_w(unsigned char *p, const ct_entries *e, unsigned sw, unsigned fw)
{
    size_t prev = (size_t)-1;       /* the first delta is index + 1 */
    if (e->bits == NULL) {
        for (size_t pos = 0; pos < e->n; pos++) {
            size_t rec = e->idx[pos];
            p = put_small(p, (uint64_t)(rec - prev));
            p = put_small(p, ct_entries_value(e->size, sw, pos));
            p = put_small(p, ct_entries_value(e->flat, fw, pos));
            prev = rec;
        }
        return p;
    }
    size_t pos = 0, nwords = e->nrec / 64 + 1;
    for (size_t w = 0; w < nwords && pos < e->n; w++) {
        uint64_t bits = e->bits[w];
        while (bits != 0) {
            size_t rec = w * 64 + (size_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            p = put_small(p, (uint64_t)(rec - prev));
            p = put_small(p, ct_entries_value(e->size, sw, pos));
            p = put_small(p, ct_entries_value(e->flat, fw, pos));
            prev = rec;
            pos++;
        }
    }
    return p;
}

static unsigned char *
encode_entries(unsigned char *p, const ct_entries *e)
{
#define CT_ENC(sw, fw) return encode_entries_w(p, e, sw, fw)
    CT_ENTRIES_BY_WIDTH(e->size_w, e->flat_w, CT_ENC)
#undef CT_ENC
}

/* The entries of one snapshot, given as an Entries or as columns. */
static int
put_entries(ct_writer *w, PyTypeObject *entries_type, PyObject *sn, size_t nrec,
            size_t *nentries)
{
    PyObject *first = PyTuple_GET_ITEM(sn, 9);
    if (PyObject_TypeCheck(first, entries_type)) {
        const ct_entries *e = (const ct_entries *)first;
        if (e->nrec > nrec) {
            PyErr_SetString(PyExc_ValueError, "dump: snapshot entries name records "
                            "that do not exist");
            return -1;
        }
        *nentries = e->n;
        if (buf_varint(&w->sec, e->n) < 0 || buf_reserve(&w->sec, e->n * 30) < 0) {
            return -1;
        }
        w->sec.len = (size_t)(encode_entries(w->sec.data + w->sec.len, e) - w->sec.data);
        return 0;
    }
    ct_col idx = {0}, size = {0}, flat = {0};
    int ok = get_col(first, 4, &idx, "snapshot index") == 0;
    ok = ok && get_col(PyTuple_GET_ITEM(sn, 10), 8, &size, "snapshot size") == 0;
    ok = ok && get_col(PyTuple_GET_ITEM(sn, 11), 8, &flat, "snapshot flat") == 0;
    if (ok && (size.n != idx.n || flat.n != idx.n)) {
        PyErr_SetString(PyExc_ValueError, "dump: snapshot columns differ in length");
        ok = 0;
    }
    ok = ok && buf_varint(&w->sec, idx.n) == 0 && buf_reserve(&w->sec, idx.n * 30) == 0;
    if (ok) {
        const uint32_t *ix = (const uint32_t *)idx.b.buf;
        const uint64_t *sz = (const uint64_t *)size.b.buf;
        const uint64_t *fl = (const uint64_t *)flat.b.buf;
        unsigned char *p = w->sec.data + w->sec.len;
        int64_t prev = -1;
        for (size_t e = 0; e < idx.n; e++) {
            if ((int64_t)ix[e] <= prev || ix[e] >= nrec) {
                PyErr_SetString(PyExc_ValueError, "dump: snapshot indices must increase "
                                "and name records");
                ok = 0;
                break;
            }
            p = put_varint(p, (uint64_t)((int64_t)ix[e] - prev));
            p = put_varint(p, sz[e]);
            p = put_varint(p, fl[e]);
            prev = ix[e];
        }
        w->sec.len = (size_t)(p - w->sec.data);
    }
    *nentries = idx.n;
    if (idx.b.obj) PyBuffer_Release(&idx.b);
    if (size.b.obj) PyBuffer_Release(&size.b);
    if (flat.b.obj) PyBuffer_Release(&flat.b);
    return ok ? 0 : -1;
}

static int
check_list(PyObject *o, const char *what)
{
    if (!PyList_Check(o)) {
        PyErr_Format(PyExc_TypeError, "dump: %s must be a list", what);
        return -1;
    }
    return 0;
}

/* The REPRS section (streamed files): new text for records that earlier
 * frames wrote, sorted by record. */
static int
put_reprs(ct_writer *w, ct_strtab *t, const ct_repr *rtab, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (buf_varint(&w->sec, n) < 0) {
        return -1;
    }
    int64_t prev = -1;
    for (size_t i = 0; i < n; i++) {
        if (buf_varint(&w->sec, (uint64_t)((int64_t)rtab[i].rec - prev)) < 0
            || put_str(w, t, rtab[i].text) < 0) {
            return -1;
        }
        prev = (int64_t)rtab[i].rec;
    }
    return emit_section(w, CT_TAG_REPRS);
}

/* The DEATHS section (streamed files): (index uint32 bytes, death double
 * bytes) of records earlier frames wrote alive, indices increasing. */
static int
put_deaths(ct_writer *w, PyObject *deaths, uint64_t nold)
{
    if (deaths == Py_None) {
        return 0;
    }
    if (!PyTuple_Check(deaths) || PyTuple_GET_SIZE(deaths) != 2) {
        PyErr_SetString(PyExc_TypeError, "dump: deaths must be (indices, times)");
        return -1;
    }
    ct_col idx = {0}, when = {0};
    int ok = get_col(PyTuple_GET_ITEM(deaths, 0), 4, &idx, "death index") == 0;
    ok = ok && get_col(PyTuple_GET_ITEM(deaths, 1), 8, &when, "death time") == 0;
    if (ok && when.n != idx.n) {
        PyErr_SetString(PyExc_ValueError, "dump: death columns differ in length");
        ok = 0;
    }
    if (ok && idx.n > 0) {
        const uint32_t *ix = (const uint32_t *)idx.b.buf;
        const double *tm = (const double *)when.b.buf;
        int64_t prev = -1;
        ok = buf_varint(&w->sec, idx.n) == 0;
        for (size_t i = 0; ok && i < idx.n; i++) {
            if ((int64_t)ix[i] <= prev || ix[i] >= nold || !(tm[i] > 0)) {
                PyErr_SetString(PyExc_ValueError, "dump: deaths must name earlier records "
                                "in increasing order, with a time");
                ok = 0;
                break;
            }
            ok = buf_varint(&w->sec, (uint64_t)((int64_t)ix[i] - prev)) == 0
                 && buf_f64(&w->sec, tm[i]) == 0;
            prev = ix[i];
        }
        ok = ok && emit_section(w, CT_TAG_DEATHS) == 0;
    }
    if (idx.b.obj) PyBuffer_Release(&idx.b);
    if (when.b.obj) PyBuffer_Release(&when.b);
    return ok ? 0 : -1;
}

/* The header: version 1.1, or 1.2 with the streamed flag. */
static int
put_header(ct_stream *s)
{
    unsigned char head[CT_DUMP_HEADER_LEN];
    memcpy(head, CT_DUMP_MAGIC, CT_DUMP_MAGIC_LEN);
    head[8] = CT_DUMP_MAJOR; head[9] = 0;
    head[10] = s->streamed ? CT_DUMP_MINOR_STREAMED : CT_DUMP_MINOR; head[11] = 0;
    memset(head + 12, 0, 4);
    head[12] = s->streamed ? CT_DUMP_FLAG_STREAMED : 0;
    double sentinel = CT_DUMP_SENTINEL;
    uint64_t bits;
    memcpy(&bits, &sentinel, 8);
    for (int i = 0; i < 8; i++) {
        head[16 + i] = (unsigned char)(bits >> (8 * i));
    }
    return out_put(&s->w, head, sizeof(head));
}

/* A list section (NAMES, CLASSES) of the items past `from`. */
static int
put_str_list(ct_stream *s, PyObject *list, uint64_t from, unsigned tag)
{
    ct_writer *w = &s->w;
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (s->started && (uint64_t)n == from) {
        return 0;           /* nothing new: later frames leave it out */
    }
    if (buf_varint(&w->sec, (uint64_t)n - from) < 0) {
        return -1;
    }
    for (Py_ssize_t i = (Py_ssize_t)from; i < n; i++) {
        if (put_str(w, &s->t, PyList_GET_ITEM(list, i)) < 0) {
            return -1;
        }
    }
    return emit_section(w, tag);
}

static int
write_frame(ct_stream *s, PyObject *ds, PyObject *deaths, int final,
            PyTypeObject *entries_type)
{
    ct_writer *w = &s->w;
    ct_strtab *t = &s->t;
    int rc = -1;
    ct_repr *rtab = NULL;
    size_t nreprs = 0, nold_reprs = 0;
    ct_col cols[6];
    int ncols = 0;
    PyObject *names = NULL, *classes = NULL, *traces = NULL, *snaps = NULL;
    PyObject *reprs = NULL, *trees = NULL;
    Py_ssize_t nstr_before = PyList_GET_SIZE(t->list);
    if (!PyTuple_Check(ds) || PyTuple_GET_SIZE(ds) != CT_DATASET_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "dump: malformed dataset");
        goto done;
    }
    if (check_list(PyTuple_GET_ITEM(ds, 0), "names") < 0
        || check_list(PyTuple_GET_ITEM(ds, 1), "classes") < 0
        || check_list(PyTuple_GET_ITEM(ds, 9), "traces") < 0
        || check_list(PyTuple_GET_ITEM(ds, 10), "snapshots") < 0) {
        goto done;
    }
    if (!PyDict_Check(PyTuple_GET_ITEM(ds, 8))) {
        PyErr_SetString(PyExc_TypeError, "dump: reprs must be a dict");
        goto done;
    }
    /* Private copies: file.write() runs Python code between the checks of
     * pass 1 and the uses of pass 2, and must not be able to change what
     * was checked. Tuples and str inside are immutable. */
    names = PySequence_List(PyTuple_GET_ITEM(ds, 0));
    classes = PySequence_List(PyTuple_GET_ITEM(ds, 1));
    traces = PySequence_List(PyTuple_GET_ITEM(ds, 9));
    snaps = PySequence_List(PyTuple_GET_ITEM(ds, 10));
    reprs = PyDict_Copy(PyTuple_GET_ITEM(ds, 8));
    trees = PyList_New(0);
    if (!names || !classes || !traces || !snaps || !reprs || !trees) {
        goto done;
    }
    if ((uint64_t)PyList_GET_SIZE(names) < s->nnames
        || (uint64_t)PyList_GET_SIZE(classes) < s->nclasses
        || (uint64_t)PyList_GET_SIZE(traces) < s->ntraces) {
        PyErr_SetString(PyExc_ValueError, "dump: names, classes or traces shrank "
                        "since the last frame");
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(snaps); i++) {
        PyObject *sn = PyList_GET_ITEM(snaps, i);
        if (!PyTuple_Check(sn) || (PyTuple_GET_SIZE(sn) != CT_SNAPSHOT_FIELDS
                                   && PyTuple_GET_SIZE(sn) != CT_SNAPSHOT_FIELDS_COUNTED
                                   && PyTuple_GET_SIZE(sn) != CT_SNAPSHOT_FIELDS_1_1
                                   && PyTuple_GET_SIZE(sn) != CT_SNAPSHOT_FIELDS_1_0)
            || !PyDict_Check(PyTuple_GET_ITEM(sn, 12))) {
            PyErr_SetString(PyExc_TypeError, "dump: malformed snapshot");
            goto done;
        }
        PyObject *copy = PyDict_Copy(PyTuple_GET_ITEM(sn, 12));
        if (copy == NULL || PyList_Append(trees, copy) < 0) {
            Py_XDECREF(copy);
            goto done;
        }
        Py_DECREF(copy);
    }
    static const size_t widths[6] = {8, 4, 4, 8, 8, 4};
    static const char *colnames[6] = {"id", "name", "class", "birth", "death", "trace"};
    for (int i = 0; i < 6; i++) {
        if (get_col(PyTuple_GET_ITEM(ds, 2 + i), widths[i], &cols[i], colnames[i]) < 0) {
            goto done;
        }
        ncols++;
        if (cols[i].n != cols[0].n) {
            PyErr_SetString(PyExc_ValueError, "dump: record columns differ in length");
            goto done;
        }
    }
    uint64_t nold = s->nrec;            /* records earlier frames wrote */
    size_t nnew = cols[0].n;
    uint64_t nrec = nold + nnew;
    if (nrec > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "dump: too many records");
        goto done;
    }

    /* pass 1: the string table */
    for (Py_ssize_t i = (Py_ssize_t)s->nnames; i < PyList_GET_SIZE(names); i++) {
        if (str_id(t, PyList_GET_ITEM(names, i)) < 0) goto done;
    }
    for (Py_ssize_t i = (Py_ssize_t)s->nclasses; i < PyList_GET_SIZE(classes); i++) {
        if (str_id(t, PyList_GET_ITEM(classes, i)) < 0) goto done;
    }
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(reprs, &pos, &k, &v)) {
        if (str_id(t, v) < 0) goto done;
    }
    for (Py_ssize_t i = (Py_ssize_t)s->ntraces; i < PyList_GET_SIZE(traces); i++) {
        PyObject *tr = PyList_GET_ITEM(traces, i);
        if (!PyTuple_Check(tr)) {
            PyErr_SetString(PyExc_TypeError, "dump: a trace must be a tuple");
            goto done;
        }
        for (Py_ssize_t f = 0; f < PyTuple_GET_SIZE(tr); f++) {
            PyObject *fr = PyTuple_GET_ITEM(tr, f);
            if (!PyTuple_Check(fr) || PyTuple_GET_SIZE(fr) != 4) {
                PyErr_SetString(PyExc_TypeError, "dump: a frame must be a 4-tuple");
                goto done;
            }
            if (str_id(t, PyTuple_GET_ITEM(fr, 0)) < 0 || str_id(t, PyTuple_GET_ITEM(fr, 2)) < 0
                || (PyTuple_GET_ITEM(fr, 3) != Py_None && str_id(t, PyTuple_GET_ITEM(fr, 3)) < 0)) {
                goto done;
            }
        }
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(snaps); i++) {
        PyObject *sn = PyList_GET_ITEM(snaps, i);
        if (str_id(t, PyTuple_GET_ITEM(sn, 1)) < 0) goto done;
        pos = 0;
        while (PyDict_Next(PyList_GET_ITEM(trees, i), &pos, &k, &v)) {
            if (collect_tree_strings(t, v, 0) < 0) goto done;
        }
        if (collect_counted_strings(t, sn) < 0) goto done;
    }

    if (!s->started && put_header(s) < 0) goto done;
    if (!s->started && s->has_process) {     /* PROCESS: who wrote it */
        if (buf_varint(&w->sec, s->pid) < 0 || buf_varint(&w->sec, s->ppid) < 0
            || emit_section(w, CT_TAG_PROCESS) < 0) {
            goto done;
        }
    }

    /* STRINGS: those this frame added */
    if (!s->started || PyList_GET_SIZE(t->list) > nstr_before) {
        if (buf_varint(&w->sec, (uint64_t)(PyList_GET_SIZE(t->list) - nstr_before)) < 0) goto done;
        for (Py_ssize_t i = nstr_before; i < PyList_GET_SIZE(t->list); i++) {
            Py_ssize_t len;
            const char *utf8 = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(t->list, i), &len);
            if (utf8 == NULL || buf_varint(&w->sec, (uint64_t)len) < 0
                || buf_put(&w->sec, utf8, (size_t)len) < 0) {
                goto done;
            }
        }
        if (emit_section(w, CT_TAG_STRINGS) < 0) goto done;
    }

    /* NAMES, CLASSES */
    if (put_str_list(s, names, s->nnames, CT_TAG_NAMES) < 0
        || put_str_list(s, classes, s->nclasses, CT_TAG_CLASSES) < 0) {
        goto done;
    }

    /* TRACES */
    if (!s->started || (uint64_t)PyList_GET_SIZE(traces) > s->ntraces) {
        if (buf_varint(&w->sec, (uint64_t)PyList_GET_SIZE(traces) - s->ntraces) < 0) goto done;
        for (Py_ssize_t i = (Py_ssize_t)s->ntraces; i < PyList_GET_SIZE(traces); i++) {
            PyObject *tr = PyList_GET_ITEM(traces, i);
            if (buf_varint(&w->sec, (uint64_t)PyTuple_GET_SIZE(tr)) < 0) goto done;
            for (Py_ssize_t f = 0; f < PyTuple_GET_SIZE(tr); f++) {
                PyObject *fr = PyTuple_GET_ITEM(tr, f);
                long line = PyLong_AsLong(PyTuple_GET_ITEM(fr, 1));
                if ((line == -1 && PyErr_Occurred()) || put_str(w, t, PyTuple_GET_ITEM(fr, 0)) < 0
                    || buf_varint(&w->sec, (uint64_t)(line < 0 ? 0 : line)) < 0
                    || put_str(w, t, PyTuple_GET_ITEM(fr, 2)) < 0
                    || put_opt_str(w, t, PyTuple_GET_ITEM(fr, 3)) < 0) {
                    goto done;
                }
            }
        }
        if (emit_section(w, CT_TAG_TRACES) < 0) goto done;
    }

    /* RECORDS, in sections of CT_RECORDS_PER_SECTION; the custom reprs
     * sorted by record, walked beside them (those of earlier records go
     * to REPRS) */
    rtab = PyMem_Malloc((size_t)PyDict_GET_SIZE(reprs) * sizeof(ct_repr) + 1);
    if (rtab == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    pos = 0;
    while (PyDict_Next(reprs, &pos, &k, &v)) {
        if (!PyLong_Check(k)) {
            continue;           /* names no record: not written */
        }
        size_t rec = PyLong_AsSize_t(k);
        if (rec == (size_t)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                goto done;
            }
            PyErr_Clear();      /* negative or huge: no record */
            continue;
        }
        if (rec < nrec) {
            rtab[nreprs++] = (ct_repr){rec, v};
        }
    }
    qsort(rtab, nreprs, sizeof(ct_repr), cmp_repr);
    while (nold_reprs < nreprs && rtab[nold_reprs].rec < nold) {
        nold_reprs++;
    }
    if (nold_reprs > 0 && !s->streamed) {
        PyErr_SetString(PyExc_ValueError, "dump: reprs of earlier records need a stream");
        goto done;
    }
    const uint64_t *rid = (const uint64_t *)cols[0].b.buf;
    const uint32_t *rname = (const uint32_t *)cols[1].b.buf;
    const uint32_t *rclass = (const uint32_t *)cols[2].b.buf;
    const double *rbirth = (const double *)cols[3].b.buf;
    const double *rdeath = (const double *)cols[4].b.buf;
    const uint32_t *rtrace = (const uint32_t *)cols[5].b.buf;
    size_t next_repr = nold_reprs;
    for (size_t start = 0; start < nnew || (start == 0 && !s->started); start += CT_RECORDS_PER_SECTION) {
        size_t end = start + CT_RECORDS_PER_SECTION < nnew ? start + CT_RECORDS_PER_SECTION : nnew;
        if (buf_varint(&w->sec, end - start) < 0) goto done;
        for (size_t i = start; i < end; i++) {
            PyObject *r = NULL;
            if (next_repr < nreprs && rtab[next_repr].rec == nold + i) {
                r = rtab[next_repr++].text;
            }
            if (buf_reserve(&w->sec, 46) < 0) goto done;
            unsigned char *p = w->sec.data + w->sec.len;
            p = put_varint(p, rid[i]);
            p = put_varint(p, rname[i]);
            p = put_varint(p, rclass[i]);
            w->sec.len = (size_t)(p - w->sec.data);
            if (buf_f64(&w->sec, rbirth[i]) < 0 || buf_f64(&w->sec, rdeath[i]) < 0
                || buf_varint(&w->sec, rtrace[i]) < 0 || put_opt_str(w, t, r) < 0) {
                goto done;
            }
        }
        if (emit_section(w, CT_TAG_RECORDS) < 0) goto done;
        if (nnew == 0) break;
    }

    /* DEATHS and REPRS of earlier records (streamed files only) */
    if (deaths != Py_None && !s->streamed) {
        PyErr_SetString(PyExc_ValueError, "dump: deaths of earlier records need a stream");
        goto done;
    }
    if (put_deaths(w, deaths, nold) < 0 || put_reprs(w, t, rtab, nold_reprs) < 0) {
        goto done;
    }

    /* SNAPSHOT and TREE sections */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(snaps); i++) {
        PyObject *sn = PyList_GET_ITEM(snaps, i);
        uint64_t number = s->nsnaps + (uint64_t)i;
        int ok = 1;
        PyObject *proc = PyTuple_GET_ITEM(sn, 8);
        double ts = PyFloat_AsDouble(PyTuple_GET_ITEM(sn, 0));
        unsigned long long totals[3];
        for (int j = 0; ok && j < 3; j++) {
            totals[j] = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(sn, 2 + j));
            ok = !PyErr_Occurred();
        }
        double iv = ok ? PyFloat_AsDouble(PyTuple_GET_ITEM(sn, 5)) : 0;
        double eiv = ok ? PyFloat_AsDouble(PyTuple_GET_ITEM(sn, 6)) : 0;
        int stretched = ok ? PyObject_IsTrue(PyTuple_GET_ITEM(sn, 7)) : 0;
        ok = ok && !PyErr_Occurred() && stretched >= 0;
        ok = ok && buf_f64(&w->sec, ts) == 0 && put_str(w, t, PyTuple_GET_ITEM(sn, 1)) == 0
             && buf_varint(&w->sec, totals[0]) == 0 && buf_varint(&w->sec, totals[1]) == 0
             && buf_varint(&w->sec, totals[2]) == 0 && buf_f64(&w->sec, iv) == 0
             && buf_f64(&w->sec, eiv) == 0 && buf_u8(&w->sec, (unsigned)stretched) == 0;
        if (ok && proc != Py_None) {
            if (!PyTuple_Check(proc) || PyTuple_GET_SIZE(proc) != CT_DUMP_PROCESS_FIELDS) {
                PyErr_SetString(PyExc_TypeError, "dump: malformed process numbers");
                ok = 0;
            }
            ok = ok && buf_u8(&w->sec, 1) == 0;
            for (int j = 0; ok && j < CT_DUMP_PROCESS_FIELDS; j++) {
                unsigned long long f = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(proc, j));
                ok = !PyErr_Occurred() && buf_varint(&w->sec, f) == 0;
            }
        }
        else if (ok) {
            ok = buf_u8(&w->sec, 0) == 0;
        }
        size_t nentries = 0;
        ok = ok && put_entries(w, entries_type, sn, (size_t)nrec, &nentries) == 0;
        if (!ok || emit_section(w, CT_TAG_SNAPSHOT) < 0) goto done;
        pos = 0;
        while (PyDict_Next(PyList_GET_ITEM(trees, i), &pos, &k, &v)) {
            size_t rec = PyLong_AsSize_t(k);
            if (PyErr_Occurred()) goto done;
            if (buf_varint(&w->sec, number) < 0 || buf_varint(&w->sec, rec) < 0
                || put_tree(w, t, v) < 0 || emit_section(w, CT_TAG_TREE) < 0) {
                goto done;
            }
        }
        if (PyTuple_GET_SIZE(sn) >= CT_SNAPSHOT_FIELDS_1_1
            && put_retained(w, number, nentries, PyTuple_GET_ITEM(sn, 13),
                            PyTuple_GET_ITEM(sn, 14)) < 0) {
            goto done;
        }
        if (put_counted(w, t, number, sn) < 0 || put_snapflags(w, number, sn) < 0) goto done;
    }

    /* END, or CHECK after a frame of a stream: crc of everything before it */
    {
        unsigned char end[6] = {final ? CT_TAG_END : CT_TAG_CHECK, 4, 0, 0, 0, 0};
        if (!final && !s->streamed) {
            PyErr_SetString(PyExc_ValueError, "dump: only a stream writes more than one frame");
            goto done;
        }
        uint32_t crc = ct_crc32(w->crc, end, 2);
        for (int i = 0; i < 4; i++) {
            end[2 + i] = (unsigned char)(crc >> (8 * i));
        }
        /* the crc covers the tag and length too, not its own bytes */
        if (buf_put(&w->out, end, 6) < 0 || out_flush(w) < 0) goto done;
        w->crc = ct_crc32(crc, end + 2, 4);
    }
    s->started = 1;
    s->nstrings = (uint64_t)PyList_GET_SIZE(t->list);
    s->nnames = (uint64_t)PyList_GET_SIZE(names);
    s->nclasses = (uint64_t)PyList_GET_SIZE(classes);
    s->ntraces = (uint64_t)PyList_GET_SIZE(traces);
    s->nrec = nrec;
    s->nsnaps += (uint64_t)PyList_GET_SIZE(snaps);
    s->ended = final;
    rc = 0;
done:
    PyMem_Free(rtab);
    for (int i = 0; i < ncols; i++) {
        PyBuffer_Release(&cols[i].b);
    }
    Py_XDECREF(names);
    Py_XDECREF(classes);
    Py_XDECREF(traces);
    Py_XDECREF(snaps);
    Py_XDECREF(reprs);
    Py_XDECREF(trees);
    return rc;
}

int
ct_stream_frame(ct_stream *s, PyObject *ds, PyObject *deaths, int final,
                PyTypeObject *entries_type)
{
    if (s->ended || s->broken) {
        PyErr_SetString(PyExc_ValueError, s->ended ? "dump stream already ended"
                        : "dump stream broken by an earlier error");
        return -1;
    }
    int rc = write_frame(s, ds, deaths, final, entries_type);
    if (rc < 0) {
        /* part of a frame may be out: nothing after it could be read */
        s->broken = 1;
    }
    /* a large frame's buffers (megabytes: the records of a busy interval)
     * are given back between frames, not held for the rest of the run */
    release_big(&s->w.sec);
    release_big(&s->w.out);
    return rc;
}
