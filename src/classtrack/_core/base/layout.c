/* layout.c - CPython object layouts, 3.9 to 3.15.  See layout.h.
 *
 * Where CPython keeps instance attributes:
 *   3.9, 3.10  a dict object at tp_dictoffset (a split-table dict that shares
 *              its keys with the class).  Nothing outside the dict.
 *   3.11       Py_TPFLAGS_MANAGED_DICT: two pre-header words, the dict at
 *              obj[-3] and the values array at obj[-4].  The values array is
 *              its own allocation: prefix bytes (insertion order, its count
 *              at values[-2], the prefix size at values[-1]) then one
 *              PyObject* per slot of the class's shared keys.
 *   3.12       as 3.11, but obj[-3] holds either the dict or the values
 *              pointer minus one (low bit set); obj[-4] is the weakref list.
 *   3.13       Py_TPFLAGS_INLINE_VALUES: the values live inside the object
 *              allocation right after tp_basicsize, with a 4-byte header
 *              (capacity, size, embedded, valid), the values, then the
 *              insertion-order bytes.  A materialised dict at obj[-3] may
 *              point at those inline values (embedded) or own a copy.
 *
 * The shared keys (attribute names) belong to the class, through
 * PyHeapTypeObject.ht_cached_keys; their layout is mirrored below because
 * CPython keeps it in internal headers.  The mirrors are only read after
 * checking the fields that tell which layout is in use (dk_kind), and every
 * index read from memory is bounds-checked before use.
 */
#include "base/layout.h"

#include <datetime.h>
#include <frameobject.h>
#include <stdint.h>
#include <string.h>

/* datetime.h defines a static C-API pointer for its macros, which this file
 * never uses (it reads only the public struct layouts).  Referencing it from
 * a function marked unused silences both gcc's unused-variable and clang's
 * unused-function warnings. */
__attribute__((unused)) static void *
unused_datetime_capi(void)
{
    return PyDateTimeAPI;
}

#define PTR_SIZE ((size_t)sizeof(PyObject *))
#define ROUND_UP(n, a) (((n) + (a) - 1) / (a) * (a))

#if CT_LAYOUT_VERSION >= 0x030B
/* Mirror of struct _dictkeysobject (Objects/dict-common.h, then
 * Include/internal/pycore_dict.h), identical in 3.11, 3.12 and 3.13 for
 * builds without free threading. */
typedef struct {
    Py_ssize_t dk_refcnt;
    uint8_t dk_log2_size;
    uint8_t dk_log2_index_bytes;
    uint8_t dk_kind;
    uint32_t dk_version;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[];
} ct_dictkeys;

typedef struct {
    PyObject *me_key;
    PyObject *me_value;
} ct_unicode_entry;

#define CT_DICT_KEYS_SPLIT 2

static ct_dictkeys *
shared_keys_of(PyTypeObject *tp)
{
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        return NULL;
    }
    ct_dictkeys *keys = (ct_dictkeys *)((PyHeapTypeObject *)tp)->ht_cached_keys;
    if (keys == NULL || keys->dk_kind != CT_DICT_KEYS_SPLIT
        || keys->dk_nentries < 0 || keys->dk_usable < 0
        || keys->dk_log2_index_bytes > 40) {
        return NULL;
    }
    return keys;
}

static ct_unicode_entry *
keys_entries(ct_dictkeys *keys)
{
    return (ct_unicode_entry *)(keys->dk_indices
                                + ((size_t)1 << keys->dk_log2_index_bytes));
}
#endif

#if CT_LAYOUT_VERSION >= 0x030B && CT_LAYOUT_VERSION < 0x030D
/* 3.11 and 3.12: the separately allocated values array, or NULL. */
static PyObject **
values_array(PyObject *o)
{
    if (!(Py_TYPE(o)->tp_flags & Py_TPFLAGS_MANAGED_DICT)) {
        return NULL;
    }
#if CT_LAYOUT_VERSION >= 0x030C
    uintptr_t dorv = ((uintptr_t *)o)[-3];
    if (!(dorv & 1)) {
        return NULL;
    }
    return (PyObject **)(dorv + 1);
#else
    return ((PyObject ***)o)[-4];
#endif
}
#endif

#if CT_LAYOUT_VERSION >= 0x030D
typedef struct {
    uint8_t capacity;
    uint8_t size;
    uint8_t embedded;
    uint8_t valid;
    PyObject *values[1];
} ct_inline_values;

/* _PyInlineValuesSize and values_size_from_count: the header word, one
 * slot per capacity, then the insertion-order bytes rounded up to a word. */
static size_t
values_storage_size(size_t capacity)
{
    return PTR_SIZE + capacity * PTR_SIZE + ROUND_UP(capacity, PTR_SIZE);
}

static ct_inline_values *
inline_values(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (!(tp->tp_flags & Py_TPFLAGS_INLINE_VALUES)) {
        return NULL;
    }
    return (ct_inline_values *)((char *)o + tp->tp_basicsize);
}
#endif

#if CT_LAYOUT_VERSION >= 0x030B && CT_LAYOUT_VERSION < 0x030D
/* Allocated bytes of a 3.11/3.12 values array whose keys are `keys`. */
static size_t
values_alloc_size(PyObject **values, ct_dictkeys *keys)
{
    /* new_values(n) allocates ROUND_UP(n + 2, 8) prefix bytes (stored in
     * the last prefix byte) and n slots.  n is not stored; it was the
     * usable size of the shared keys at allocation time, which only
     * shrinks afterwards, so the current one is a lower bound and the
     * prefix size gives the range.  Exact in the steady state. */
    size_t prefix = ((uint8_t *)values)[-1];
    if (prefix < PTR_SIZE || prefix % PTR_SIZE != 0) {
        return 0;   /* not a layout we understand: count nothing extra */
    }
    size_t lo = prefix >= 9 ? prefix - 9 : 0;
    size_t hi = prefix - 2;
    size_t n = lo;
    if (keys != NULL) {
        size_t cur = (size_t)(keys->dk_nentries + keys->dk_usable);
        n = cur < lo ? lo : (cur > hi ? hi : cur);
    }
    if (n == 0) {
        n = 1;
    }
    return prefix + n * PTR_SIZE;
}
#endif

size_t
ct_preheader_size(PyObject *o)
{
    return ct_is_gc(o) == PyType_IS_GC(Py_TYPE(o))
        ? ct_type_preheader_size(Py_TYPE(o))
        : ct_type_preheader_size(Py_TYPE(o)) - CT_GC_HEAD_SIZE;
}

size_t
ct_type_preheader_size(PyTypeObject *tp)
{
    size_t size = 0;
    if (PyType_IS_GC(tp)) {
        size += CT_GC_HEAD_SIZE;
    }
#if CT_LAYOUT_VERSION >= 0x030C
    if (tp->tp_flags & (Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF)) {
        size += 2 * PTR_SIZE;
    }
#elif CT_LAYOUT_VERSION >= 0x030B
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
        size += 2 * PTR_SIZE;
    }
#else
    (void)tp;
#endif
    return size;
}

/* ---- the estimate switch ---- */

int ct_layout_estimate_forced = 0;
static int layout_warned = 0;

void
ct_layout_force_estimate(int on)
{
    ct_layout_estimate_forced = on != 0;
    layout_warned = 0;
}

int
ct_layout_warn_once(void)
{
    if (!CT_ESTIMATE() || layout_warned) {
        return 0;
    }
    layout_warned = 1;
    return PyErr_WarnFormat(
        PyExc_RuntimeWarning, 1,
        "classtrack knows CPython object layouts up to %d.%d; on this "
        "interpreter (%d.%d%s) sizes are estimates: each object's own "
        "__sizeof__ plus its pre-header, without separately allocated "
        "attribute storage",
        CT_LAYOUT_NEWEST >> 8, CT_LAYOUT_NEWEST & 0xFF,
        PY_MAJOR_VERSION, PY_MINOR_VERSION,
        CT_LAYOUT_KNOWN ? ", forced by a test" : "");
}

/* ---- kinds of layout knowledge (layout.h) ---- */

const char *const ct_layout_kind_names[CT_KIND_COUNT] = {
    [CT_KIND_GC_HEAD] = "GC header",
    [CT_KIND_INSTANCE] = "instance",
    [CT_KIND_DICT] = "dict",
    [CT_KIND_STR] = "str",
    [CT_KIND_INT] = "int",
    [CT_KIND_LIST] = "list",
    [CT_KIND_TUPLE] = "tuple",
    [CT_KIND_BYTES] = "bytes",
    [CT_KIND_VAR_SUBCLASS] = "subclass of tuple/int/bytes",
    [CT_KIND_CLASS] = "class",
    [CT_KIND_STRUCTSEQ] = "struct sequence",
    [CT_KIND_DATETIME] = "datetime",
};

unsigned ct_layout_distrusted = 0;

static PyTypeObject *static_base(PyTypeObject *tp);
static destructor structseq_dealloc_fn;
static size_t special_static_size(PyObject *o);

unsigned
ct_layout_kinds_of(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    unsigned kinds = ct_is_gc(o) ? CT_KIND_BIT(CT_KIND_GC_HEAD) : 0;
    PyTypeObject *base = static_base(tp);
    int structseq = structseq_dealloc_fn != NULL && tp->tp_dealloc == structseq_dealloc_fn;
    if (base != tp && !structseq) {
        /* a class's instances: where their attributes are kept */
#if CT_LAYOUT_VERSION >= 0x030C
        if (tp->tp_flags & (Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF)) {
#elif CT_LAYOUT_VERSION >= 0x030B
        if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
#else
        if (tp->tp_dictoffset != 0) {
#endif
            kinds |= CT_KIND_BIT(CT_KIND_INSTANCE);
        }
        if (base == &PyTuple_Type || base == &PyLong_Type || base == &PyBytes_Type) {
            kinds |= CT_KIND_BIT(CT_KIND_VAR_SUBCLASS);
        }
    }
    if (base == &PyDict_Type || PyType_IsSubtype(base, &PyDict_Type)) {
        kinds |= CT_KIND_BIT(CT_KIND_DICT);
    }
    else if (base == &PyUnicode_Type) {
        kinds |= CT_KIND_BIT(CT_KIND_STR);
    }
    else if (base == &PyLong_Type || base == &PyBool_Type) {
        kinds |= CT_KIND_BIT(CT_KIND_INT);
    }
    else if (base == &PyList_Type) {
        kinds |= CT_KIND_BIT(CT_KIND_LIST);
    }
    else if (base == &PyTuple_Type) {
        kinds |= CT_KIND_BIT(structseq ? CT_KIND_STRUCTSEQ : CT_KIND_TUPLE);
    }
    else if (base == &PyBytes_Type) {
        kinds |= CT_KIND_BIT(CT_KIND_BYTES);
    }
    else if (PyType_Check(o)) {
        kinds |= CT_KIND_BIT(CT_KIND_CLASS);
    }
    else if (special_static_size(o) != 0) {
        kinds |= CT_KIND_BIT(CT_KIND_DATETIME);
    }
    return kinds;
}

/* ---- body sizes ---- */

/* The static (C) type whose instance layout tp extends: tp itself, or the
 * first non-heap type along tp_base. */
static PyTypeObject *
static_base(PyTypeObject *tp)
{
    while (tp != NULL && (tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        tp = tp->tp_base;
    }
    return tp;
}

/* Digits of an int's value (never negative). */
static size_t
int_digits(PyObject *o)
{
#if CT_LAYOUT_VERSION >= 0x030C
    return (size_t)(((PyLongObject *)o)->long_value.lv_tag >> 3);
#else
    Py_ssize_t n = Py_SIZE(o);
    return (size_t)(n < 0 ? -n : n);
#endif
}

/* The item count a heap subclass of tuple, bytes, int or type passed to
 * tp_alloc when the instance was made (its *_subtype_new / type_new). */
static size_t
subtype_alloc_items(PyTypeObject *base, PyObject *o)
{
    if (base == &PyLong_Type) {
        size_t n = int_digits(o);
#if CT_LAYOUT_VERSION >= 0x030C
        /* long_subtype_new: n = digit count, at least 1 */
        if (n == 0) {
            n = 1;
        }
#endif
        return n;
    }
    Py_ssize_t n = Py_SIZE(o);
    return (size_t)(n < 0 ? -n : n);
}

/* ---- C types whose allocation is not tp_basicsize (+ items) ---- */

/* datetime.datetime and datetime.time (the C module) allocate naive
 * instances without the tzinfo pointer (datetime_alloc, time_alloc);
 * tp_basicsize is the aware size. */
static size_t
datetime_naive_size(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (tp->tp_basicsize == (Py_ssize_t)sizeof(PyDateTime_DateTime)
        && strcmp(tp->tp_name, "datetime.datetime") == 0) {
        return ((_PyDateTime_BaseTZInfo *)o)->hastzinfo
                   ? 0 : sizeof(_PyDateTime_BaseDateTime);
    }
    if (tp->tp_basicsize == (Py_ssize_t)sizeof(PyDateTime_Time)
        && strcmp(tp->tp_name, "datetime.time") == 0) {
        return ((_PyDateTime_BaseTZInfo *)o)->hastzinfo
                   ? 0 : sizeof(_PyDateTime_BaseTime);
    }
    return 0;
}

/* Mirror of struct encoding_map (Objects/unicodeobject.c, 3.9-3.13): the
 * codecs' charmap, allocated with its level-2/3 tables after the struct. */
typedef struct {
    PyObject_HEAD
    unsigned char level1[32];
    int count2, count3;
    unsigned char level23[1];
} ct_encoding_map;

static size_t
encoding_map_size(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (tp->tp_basicsize != (Py_ssize_t)sizeof(ct_encoding_map)
        || strcmp(tp->tp_name, "EncodingMap") != 0) {
        return 0;
    }
    ct_encoding_map *m = (ct_encoding_map *)o;
    if (m->count2 < 0 || m->count3 < 0 || m->count2 > 256 || m->count3 > 256 * 256) {
        return 0;
    }
    return sizeof(ct_encoding_map) + 16 * (size_t)m->count2 + 128 * (size_t)m->count3 - 1;
}

/* Body size of a static C type instance made by its own allocator, or 0
 * when the type is not one of those. */
static size_t
special_static_size(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        return 0;
    }
    size_t n = datetime_naive_size(o);
    return n != 0 ? n : encoding_map_size(o);
}

/* Struct sequences (os.stat_result, sys.flags, ...) are tuples whose
 * allocation holds n_fields items while ob_size counts only the visible
 * ones (PyStructSequence_New, up to 3.12; 3.13 moved the hidden fields into
 * tp_basicsize).  Never allocated by tp_alloc, so no extra item.  All share
 * one tp_dealloc, learnt from type(sys.flags) at module init
 * (structseq_dealloc_fn, declared above). */

int
ct_layout_init(void)
{
    PyObject *flags = PySys_GetObject("flags");     /* borrowed */
    if (flags != NULL && PyTuple_Check(flags)) {
        structseq_dealloc_fn = Py_TYPE(flags)->tp_dealloc;
    }
    return 0;
}

/* Items allocated for a struct sequence, or -1 when unknown. */
static Py_ssize_t
structseq_fields(PyTypeObject *tp)
{
    PyObject *name = PyUnicode_InternFromString("n_fields");
    if (name == NULL) {
        PyErr_Clear();
        return -1;
    }
    PyObject *v = _PyType_Lookup(tp, name);    /* borrowed, runs no code */
    Py_DECREF(name);
    if (v == NULL || !PyLong_CheckExact(v)) {
        return -1;
    }
    Py_ssize_t n = PyLong_AsSsize_t(v);
    if (n < 0 || n > 4096) {
        PyErr_Clear();
        return -1;
    }
    return n;
}

/* Set once by the tracker's hooks (ct_layout_set_alloc_of), or NULL. */
static ct_alloc_of_fn alloc_of_lookup;

void
ct_layout_set_alloc_of(ct_alloc_of_fn fn)
{
    alloc_of_lookup = fn;
}

allocfunc
ct_alloc_of(PyTypeObject *tp)
{
    allocfunc alloc = tp->tp_alloc;
    /* PyType_GenericAlloc is never a hook: no need to ask */
    if (alloc == PyType_GenericAlloc || alloc_of_lookup == NULL) {
        return alloc;
    }
    return alloc_of_lookup(tp);
}

/* 1 when heap type tp allocates through PyType_GenericAlloc, directly or
 * under a tracker's hook. */
static int
generic_alloc(PyTypeObject *tp)
{
    return ct_alloc_of(tp) == PyType_GenericAlloc;
}

/* 1 when base's instance layout extends `of`'s. */
static int
layout_extends(PyTypeObject *base, PyTypeObject *of)
{
    return base == of || PyType_IsSubtype(base, of);
}

int
ct_body_size(PyObject *o, size_t *size)
{
    PyTypeObject *tp = Py_TYPE(o);
    size_t pre = ct_preheader_size(o);
    size_t basic = (size_t)tp->tp_basicsize;
    *size = basic + pre;
    if (CT_ESTIMATE_FOR(o)) {
        return 0;
    }
    if (tp->tp_itemsize == 0) {
        size_t special = special_static_size(o);
        if (special != 0) {
            *size = special + pre;
        }
        *size += ct_inline_values_size(o);
        return 1;
    }
    size_t item = (size_t)(tp->tp_itemsize < 0 ? -tp->tp_itemsize : tp->tp_itemsize);
    if (structseq_dealloc_fn != NULL && tp->tp_dealloc == structseq_dealloc_fn) {
        /* n_fields items, in every version: 3.13 also counts the hidden
         * fields in tp_basicsize, but PyStructSequence_New still asks
         * PyObject_GC_NewVar for n_fields items on top of it */
        Py_ssize_t n = structseq_fields(tp);
        if (n < 0) {
            return 0;
        }
        *size = ROUND_UP(basic + (size_t)n * item, PTR_SIZE) + pre;
        return 1;
    }
    PyTypeObject *base = static_base(tp);
#if CT_LAYOUT_VERSION < 0x030B
    if (tp == &PyFrame_Type) {
        /* 3.9/3.10 frames: PyObject_GC_NewVar with ob_size extra slots */
        *size = ROUND_UP(basic + (size_t)Py_SIZE(o) * (size_t)tp->tp_itemsize, PTR_SIZE) + pre;
        return 1;
    }
#endif
    PyTypeObject *kind = layout_extends(base, &PyType_Type) ? &PyType_Type
                         : base == &PyTuple_Type ? &PyTuple_Type
                         : base == &PyBytes_Type ? &PyBytes_Type
                         : base == &PyLong_Type ? &PyLong_Type : NULL;
    if (kind == NULL) {
        return 0;   /* tp_itemsize, but no item count known to be real */
    }
    if (kind == &PyType_Type && !(((PyTypeObject *)o)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        return 0;   /* a static type: not allocated */
    }
    if (tp != kind || kind == &PyType_Type) {
        /* PyType_GenericAlloc: _PyObject_VAR_SIZE(tp, nitems + 1), a
         * word-rounded size with one item more than asked for: heap
         * subclasses (their *_subtype_new) and class objects (type_new
         * asks the metatype for one item per slot). */
        if (!((tp->tp_flags & Py_TPFLAGS_HEAPTYPE) ? generic_alloc(tp)
                                                    : tp->tp_alloc == PyType_GenericAlloc)) {
            return 0;
        }
        size_t n = subtype_alloc_items(kind, o);
        *size = ROUND_UP(basic + (n + 1) * item, PTR_SIZE) + pre;
        return 1;
    }
    if (kind == &PyLong_Type) {
        return 0;   /* exact ints are sized from their digits */
    }
    /* exact tuple (PyObject_GC_NewVar) and bytes (PyObject_Malloc of
     * PyBytesObject_SIZE + n, tp_basicsize counting the NUL) */
    *size = basic + (size_t)Py_SIZE(o) * item + pre;
    return 1;
}

int
ct_body_size_from_ob_size(PyObject *o, size_t *size)
{
    PyTypeObject *tp = Py_TYPE(o);
    Py_ssize_t n = Py_SIZE(o);
    if (CT_ESTIMATE_FOR(o) || n < 0 || n >= ((Py_ssize_t)1 << 31)) {
        return 0;
    }
    size_t item = (size_t)(tp->tp_itemsize < 0 ? -tp->tp_itemsize : tp->tp_itemsize);
    *size = ROUND_UP((size_t)tp->tp_basicsize + (size_t)n * item, PTR_SIZE)
            + ct_preheader_size(o);
    return 1;
}

Py_ssize_t
ct_split_values_correction(PyObject *dict)
{
    if (CT_ESTIMATE_FOR(dict)) {
        return 0;
    }
#if CT_LAYOUT_VERSION >= 0x030B && CT_LAYOUT_VERSION < 0x030D
    PyDictObject *mp = (PyDictObject *)dict;
    if (mp->ma_values == NULL) {
        return 0;
    }
    ct_dictkeys *keys = (ct_dictkeys *)mp->ma_keys;
    if (keys == NULL || keys->dk_kind != CT_DICT_KEYS_SPLIT) {
        return 0;
    }
    PyObject **values = (PyObject **)mp->ma_values;
    Py_ssize_t counted = (keys->dk_nentries + keys->dk_usable) * (Py_ssize_t)PTR_SIZE;
    return (Py_ssize_t)values_alloc_size(values, keys) - counted;
#elif CT_LAYOUT_VERSION >= 0x030D
    PyDictObject *mp = (PyDictObject *)dict;
    ct_inline_values *values = (ct_inline_values *)mp->ma_values;
    ct_dictkeys *keys = (ct_dictkeys *)mp->ma_keys;
    if (values == NULL || keys == NULL || keys->dk_kind != CT_DICT_KEYS_SPLIT) {
        return 0;
    }
    Py_ssize_t counted = (keys->dk_nentries + keys->dk_usable) * (Py_ssize_t)PTR_SIZE;
    if (values->embedded) {
        return -counted;    /* inside the instance, counted there */
    }
    return (Py_ssize_t)values_storage_size(values->capacity) - counted;
#else
    (void)dict;
    return 0;
#endif
}

size_t
ct_attr_storage_block(PyObject *o, const void **block)
{
    if (block != NULL) {
        *block = NULL;
    }
    if (CT_ESTIMATE_FOR(o)) {
        return 0;
    }
#if CT_LAYOUT_VERSION >= 0x030B && CT_LAYOUT_VERSION < 0x030D
    PyObject **values = values_array(o);
    if (values == NULL) {
        return 0;
    }
    size_t size = values_alloc_size(values, shared_keys_of(Py_TYPE(o)));
    if (block != NULL && size != 0) {
        *block = (const uint8_t *)values - ((const uint8_t *)values)[-1];
    }
    return size;
#else
    (void)o;
    return 0;
#endif
}

size_t
ct_attr_storage_size(PyObject *o)
{
    return ct_attr_storage_block(o, NULL);
}

size_t
ct_inline_values_size(PyObject *o)
{
    if (CT_ESTIMATE_FOR(o)) {
        return 0;
    }
#if CT_LAYOUT_VERSION >= 0x030D
    ct_inline_values *iv = inline_values(o);
    if (iv == NULL) {
        return 0;
    }
    /* The allocation was sized from the class's shared keys (usable +
     * entries) before _PyObject_InitInlineValues took one usable slot
     * (while more than one was left) and stored the smaller figure as the
     * capacity.  That happened if the keys lost a slot since (their sum is
     * now below the capacity) or still have more than one usable slot;
     * otherwise it is taken not to have (exact but for the one instance
     * that took the keys from 2 usable slots to 1). */
    size_t cap = iv->capacity;
    ct_dictkeys *keys = shared_keys_of(Py_TYPE(o));
    if (keys != NULL) {
        size_t sum = (size_t)(keys->dk_nentries + keys->dk_usable);
        if (sum < cap || (sum == cap && keys->dk_usable > 1)) {
            cap += 1;
        }
    }
    return values_storage_size(cap);
#else
    (void)o;
    return 0;
#endif
}

#if CT_LAYOUT_VERSION < 0x030B
/* Mirror of struct _dictkeysobject in 3.9 and 3.10 (Objects/dict-common.h):
 * only its first two fields are read. */
typedef struct {
    Py_ssize_t dk_refcnt;
    Py_ssize_t dk_size;
} ct_dictkeys_old;
#endif

int
ct_dict_blocks(PyObject *dict, size_t total, size_t body,
               const void **keys_block, size_t *keys_size,
               const void **values_block, size_t *values_size)
{
    *keys_block = *values_block = NULL;
    *keys_size = *values_size = 0;
    if (CT_ESTIMATE_FOR(dict) || total < body) {
        return -1;
    }
    PyDictObject *mp = (PyDictObject *)dict;
    if (mp->ma_values != NULL) {
#if CT_LAYOUT_VERSION >= 0x030D
        ct_inline_values *v = (ct_inline_values *)mp->ma_values;
        if (!v->embedded) {
            *values_block = v;
            *values_size = values_storage_size(v->capacity);
        }
#elif CT_LAYOUT_VERSION >= 0x030B
        PyObject **values = (PyObject **)mp->ma_values;
        ct_dictkeys *keys = (ct_dictkeys *)mp->ma_keys;
        *values_size = values_alloc_size(values, keys);
        *values_block = (const uint8_t *)values - ((const uint8_t *)values)[-1];
#else
        /* new_values(USABLE_FRACTION(dk_size)): PyMem_NEW of PyObject* */
        ct_dictkeys_old *keys = (ct_dictkeys_old *)mp->ma_keys;
        *values_size = (size_t)((keys->dk_size << 1) / 3) * PTR_SIZE;
        *values_block = mp->ma_values;
#endif
    }
    size_t rest = total - body;
    if (*values_size > rest) {
        *values_block = NULL;
        *values_size = 0;
        return -1;
    }
    rest -= *values_size;
    /* dk_refcnt, the first field in every version: the dict counts its
     * keys table only when it is the table's one owner */
    if (*(Py_ssize_t *)mp->ma_keys == 1) {
        *keys_block = mp->ma_keys;
        *keys_size = rest;
    }
    else if (rest != 0) {
        return -1;
    }
    return 0;
}

PyObject *
ct_existing_dict(PyObject *o)
{
    if (CT_ESTIMATE_FOR(o)) {
        return NULL;    /* no field is read at a guessed offset */
    }
    PyTypeObject *tp = Py_TYPE(o);
#if CT_LAYOUT_VERSION >= 0x030B
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
        uintptr_t slot = ((uintptr_t *)o)[-3];
#if CT_LAYOUT_VERSION >= 0x030C && CT_LAYOUT_VERSION < 0x030D
        if (slot & 1) {
            return NULL;    /* values, no dict */
        }
#endif
        return (PyObject *)slot;
    }
#endif
    if (tp->tp_dictoffset == 0) {
        return NULL;
    }
#if CT_LAYOUT_KNOWN
    /* Not a managed dict: this only computes the slot address. */
    PyObject **dictptr = _PyObject_GetDictPtr(o);
    return dictptr == NULL ? NULL : *dictptr;
#else
    return NULL;
#endif
}

int
ct_dict_hidden_from_traverse(PyObject *o)
{
    if (CT_ESTIMATE_FOR(o)) {
        return 0;
    }
#if CT_LAYOUT_VERSION >= 0x030D
    ct_inline_values *iv = inline_values(o);
    return iv != NULL && iv->valid;
#else
    (void)o;
    return 0;
#endif
}

int
ct_visit_attr_values(PyObject *o, ct_attr_cb cb, void *arg)
{
    if (CT_ESTIMATE_FOR(o)) {
        return 0;
    }
#if CT_LAYOUT_VERSION >= 0x030B
    ct_dictkeys *keys = shared_keys_of(Py_TYPE(o));
    PyObject **values;
    const uint8_t *order;
    size_t count;
#if CT_LAYOUT_VERSION >= 0x030D
    ct_inline_values *iv = inline_values(o);
    if (iv == NULL || !iv->valid) {
        return 0;
    }
    values = iv->values;
    count = iv->size;
    order = (const uint8_t *)&iv->values[iv->capacity];
    if (count > iv->capacity) {
        return 0;
    }
#define ORDER_AT(k) (order[(k)])
#else
    values = values_array(o);
    if (values == NULL) {
        return 0;
    }
    size_t prefix = ((uint8_t *)values)[-1];
    count = ((uint8_t *)values)[-2];
    order = (const uint8_t *)values;
    if (count + 2 > prefix) {
        return 0;
    }
#define ORDER_AT(k) (order[-3 - (Py_ssize_t)(k)])
#endif
    if (keys == NULL) {
        return 0;
    }
    ct_unicode_entry *entries = keys_entries(keys);
    for (size_t k = 0; k < count; k++) {
        size_t ix = ORDER_AT(k);
        if ((Py_ssize_t)ix >= keys->dk_nentries) {
            continue;
        }
        PyObject *value = values[ix];
        PyObject *name = entries[ix].me_key;
        if (value == NULL || name == NULL) {
            continue;
        }
        int r = cb(name, value, arg);
        if (r < 0) {
            return r;
        }
    }
#undef ORDER_AT
    return 1;
#else
    (void)o;
    (void)cb;
    (void)arg;
    return 0;
#endif
}
