/* layout.c - CPython object layouts, 3.9 to 3.13.  See layout.h.
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
#include "layout.h"

#include <stdint.h>
#include <string.h>

#define PTR_SIZE ((size_t)sizeof(PyObject *))
#define ROUND_UP(n, a) (((n) + (a) - 1) / (a) * (a))

#if PY_VERSION_HEX >= 0x030B0000
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

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
/* 3.11 and 3.12: the separately allocated values array, or NULL. */
static PyObject **
values_array(PyObject *o)
{
    if (!(Py_TYPE(o)->tp_flags & Py_TPFLAGS_MANAGED_DICT)) {
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
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

#if PY_VERSION_HEX >= 0x030D0000
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
#if PY_VERSION_HEX >= 0x030C0000
    if (tp->tp_flags & (Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF)) {
        size += 2 * PTR_SIZE;
    }
#elif PY_VERSION_HEX >= 0x030B0000
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
        size += 2 * PTR_SIZE;
    }
#else
    (void)tp;
#endif
    return size;
}

size_t
ct_layout_size(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    size_t size = (size_t)tp->tp_basicsize;
    if (tp->tp_itemsize != 0 && !PyLong_Check(o)) {
        /* ob_size is not an item count for ints from 3.12 on. */
        Py_ssize_t n = Py_SIZE(o);
        if (n < 0) {
            n = -n;
        }
        size += (size_t)n * (size_t)(tp->tp_itemsize < 0 ? -tp->tp_itemsize
                                                          : tp->tp_itemsize);
    }
    return size + ct_preheader_size(o);
}

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
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

Py_ssize_t
ct_split_values_correction(PyObject *dict)
{
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
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
#elif PY_VERSION_HEX >= 0x030D0000
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
ct_attr_storage_size(PyObject *o)
{
#if PY_VERSION_HEX >= 0x030D0000
    ct_inline_values *iv = inline_values(o);
    if (iv == NULL) {
        return 0;
    }
    return values_storage_size(iv->capacity);
#elif PY_VERSION_HEX >= 0x030B0000
    PyObject **values = values_array(o);
    if (values == NULL) {
        return 0;
    }
    return values_alloc_size(values, shared_keys_of(Py_TYPE(o)));
#else
    (void)o;
    return 0;
#endif
}

PyObject *
ct_existing_dict(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
#if PY_VERSION_HEX >= 0x030B0000
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
        uintptr_t slot = ((uintptr_t *)o)[-3];
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
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
    /* Not a managed dict: this only computes the slot address. */
    PyObject **dictptr = _PyObject_GetDictPtr(o);
    return dictptr == NULL ? NULL : *dictptr;
}

int
ct_dict_hidden_from_traverse(PyObject *o)
{
#if PY_VERSION_HEX >= 0x030D0000
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
#if PY_VERSION_HEX >= 0x030B0000
    ct_dictkeys *keys = shared_keys_of(Py_TYPE(o));
    PyObject **values;
    const uint8_t *order;
    size_t count;
#if PY_VERSION_HEX >= 0x030D0000
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
