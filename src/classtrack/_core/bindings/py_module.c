/* bindings/py_module.c - classtrack._core: module definition, state, registration.
 * Nothing else lives here; each concept registers itself. */
#include "bindings/py_state.h"
#include "dump/dumpfmt.h"
#include "tracker/tracker.h"
#include "tracker/deathwatch.h"
#include "base/layout.h"
#include "graph/graph.h"
#include "graph/census.h"
#include "tracker/entries.h"
#include "base/bigbuf.h"

static int
core_exec(PyObject *module)
{
    ct_state *st = ct_get_state(module);
    ct_clock_init();
    if (ct_layout_init() < 0
        || ct_sizer_refs_init(&st->sizer_refs) < 0
        || ct_sizer_type_register(module, st) < 0
        || ct_deathwatch_init() < 0
        || ct_registry_types_init(module, &st->registry_types) < 0
        || ct_tracker_type_register(module, &st->tracker_type) < 0
        || ct_entries_type_register(module, &st->objs.entries_type) < 0
        || ct_bigbuf_type_register(module, &st->objs.bigbuf_type) < 0
        || ct_dump_rows_register(module, &st->objs) < 0
        || ct_dump_stream_register(module) < 0
        || ct_tracker_rows_register(module, st) < 0
        || PyModule_AddFunctions(module, ct_sizer_functions) < 0
        || PyModule_AddFunctions(module, ct_tracker_functions) < 0
        || PyModule_AddFunctions(module, ct_hook_functions) < 0
        || PyModule_AddFunctions(module, ct_process_functions) < 0
        || PyModule_AddFunctions(module, ct_dump_writer_functions) < 0
        || PyModule_AddFunctions(module, ct_dump_reader_functions) < 0
        || PyModule_AddFunctions(module, ct_aggregate_functions) < 0
        || PyModule_AddFunctions(module, ct_order_functions) < 0
        || PyModule_AddFunctions(module, ct_merge_functions) < 0
        || PyModule_AddFunctions(module, ct_series_functions) < 0
        || PyModule_AddFunctions(module, ct_termwatch_functions) < 0
        || PyModule_AddFunctions(module, ct_graph_functions) < 0
        || PyModule_AddFunctions(module, ct_census_functions) < 0) {
        return -1;
    }
    st->objs.dump_error = PyErr_NewExceptionWithDoc(
        "classtrack._core.DumpError",
        "A classtrack dump file is malformed, truncated, corrupted, of another "
        "type or of an unsupported version; the message says which and where.",
        PyExc_ValueError, NULL);
    if (st->objs.dump_error == NULL) {
        return -1;
    }
    if (PyModule_AddObject(module, "DumpError", Py_NewRef(st->objs.dump_error)) < 0) {
        Py_DECREF(st->objs.dump_error);  /* AddObject only steals on success */
        return -1;
    }
    PyObject *io = PyImport_ImportModule("_io");
    if (io == NULL) {
        return -1;
    }
    st->objs.fileio_type = PyObject_GetAttrString(io, "FileIO");
    Py_DECREF(io);
    return st->objs.fileio_type == NULL ? -1 : 0;
}

static int
core_traverse(PyObject *module, visitproc visit, void *arg)
{
    ct_state *st = ct_get_state(module);
    Py_VISIT(st->sizer_type);
    Py_VISIT(st->tracker_type);
    Py_VISIT(st->objs.entries_type);
    Py_VISIT(st->objs.bigbuf_type);
    Py_VISIT(st->objs.dataset_type);
    Py_VISIT(st->objs.snapshot_row_type);
    for (size_t i = 0; i < sizeof(st->tracker_rows) / sizeof(st->tracker_rows[0]); i++) {
        Py_VISIT(st->tracker_rows[i]);
    }
    Py_VISIT(st->registry_types.trackref_type);
    Py_VISIT(st->objs.dump_error);
    Py_VISIT(st->objs.fileio_type);
    Py_VISIT(st->sizer_refs.object_sizeof);
    Py_VISIT(st->sizer_refs.method_wrapper_type);
    return 0;
}

static int
core_clear(PyObject *module)
{
    ct_state *st = ct_get_state(module);
    Py_CLEAR(st->sizer_type);
    Py_CLEAR(st->tracker_type);
    Py_CLEAR(st->objs.entries_type);
    Py_CLEAR(st->objs.bigbuf_type);
    Py_CLEAR(st->objs.dataset_type);
    Py_CLEAR(st->objs.snapshot_row_type);
    for (size_t i = 0; i < sizeof(st->tracker_rows) / sizeof(st->tracker_rows[0]); i++) {
        Py_CLEAR(st->tracker_rows[i]);
    }
    Py_CLEAR(st->registry_types.trackref_type);
    Py_CLEAR(st->objs.dump_error);
    Py_CLEAR(st->objs.fileio_type);
    ct_sizer_refs_clear(&st->sizer_refs);
    return 0;
}

static void
core_free(void *module)
{
    (void)core_clear((PyObject *)module);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, (void *)core_exec},
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    "classtrack._core",
    "classtrack's C engine: exact sizer, tracker registry, class hooks, snapshots.",
    sizeof(ct_state),
    NULL,
    core_slots,
    core_traverse,
    core_clear,
    core_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}
