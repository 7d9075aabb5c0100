"""The per-object size oracle: every object of a large, real heap, its
sizer figures checked against the allocator's own record of its blocks.

Run as a program (tests/test_size_oracle.py does, in a fresh interpreter):

    python heap_oracle.py SHIMDIR REPORT.json

1. The allocator shim (ctshim.c, built into SHIMDIR) is installed first, so
   it knows the requested size of every block allocated from then on.
2. A heap is built that nobody hand-picked: every importable stdlib module
   and package, then pytest running a real test session; inside that test
   an asyncio loop runs with pending tasks, suspended generators,
   coroutines and async generators, threads are blocked in waits, and a
   zoo of the objects programs hold (exceptions with tracebacks, frames,
   re matches, decimals, naive and aware datetimes, namedtuples, subclasses
   of every builtin, enums, dataclasses, numpy arrays and views when numpy
   is installed) is alive.
3. From inside that coroutine, every object in gc.get_objects() and every
   referent of those is checked:
     - its body block, at id(obj) minus the pre-header the sizer assumes,
       must be a live block of exactly the body size the sizer claims;
     - every separate block the sizer says it counted must be a live block
       of exactly the size it counts.
   Objects whose body block predates the shim (or is static) cannot be
   checked and are counted as such.
4. The report (JSON) lists per type: objects seen, checked, agreeing, and
   each disagreement kind with examples; known, documented bounds are
   reported apart ("bounded") with the worst error seen.
"""
from __future__ import annotations

import json
import os
import sys

SHIMDIR, REPORT = sys.argv[1], sys.argv[2]
sys.path.insert(0, SHIMDIR)
import _ctshim  # noqa: E402

_ctshim.install()

import gc  # noqa: E402

# a full collection empties the free lists (dicts, keys, tuples, floats...),
# whose blocks predate the shim and would otherwise be reused unseen
gc.collect()

import io  # noqa: E402
import pkgutil  # noqa: E402
import sysconfig  # noqa: E402
import warnings  # noqa: E402
import contextlib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------- the heap

# Modules whose import has effects beyond the interpreter (a browser, a
# window, printing a poem, a test run) or is not meant to be imported.
SKIP_TOP = {
    "antigravity", "this", "idlelib", "turtledemo", "turtle", "test",
    "__main__", "__phello__", "__hello__", "_testcapi", "_testinternalcapi",
    "_testmultiphase", "_testimportmultiple", "_testbuffer", "_testclinic",
    "_xxtestfuzz", "_xxsubinterpreters", "_xxinterpchannels", "_ctypes_test",
    "xxlimited", "xxlimited_35", "xxsubtype", "_testsinglephase",
    "tkinter", "ensurepip", "venv", "pydoc_data", "lib2to3", "distutils",
}
SKIP_PARTS = {"test", "tests", "idle_test", "__main__"}
# Under a preloaded ASan runtime, crypt's import calls crypt(3) through
# ASan's interceptor, which has no real crypt to forward to and jumps to
# address 0 (a sanitizer limitation, not ours): leave crypt out there only.
if "libasan" in os.environ.get("LD_PRELOAD", ""):
    SKIP_TOP |= {"crypt", "_crypt"}


def stdlib_modules() -> list:
    stdlib = sysconfig.get_paths()["stdlib"]
    names = set(getattr(sys, "stdlib_module_names", ()))
    for info in pkgutil.iter_modules([stdlib, os.path.join(stdlib, "lib-dynload")]):
        names.add(info.name)
    return sorted(n for n in names if n not in SKIP_TOP and not n.startswith("_test"))


def import_everything() -> int:
    imported = 0
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), \
            contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        for name in stdlib_modules():
            try:
                mod = __import__(name)
                imported += 1
            except BaseException:  # noqa: BLE001 - any import failure is fine here
                continue
            path = getattr(mod, "__path__", None)
            if not path:
                continue
            for info in pkgutil.walk_packages(path, name + ".", onerror=lambda n: None):
                if SKIP_PARTS & set(info.name.split(".")):
                    continue
                try:
                    __import__(info.name)
                    imported += 1
                except BaseException:  # noqa: BLE001
                    continue
    return imported


def main() -> None:
    imported = import_everything()
    import pytest

    test_file = os.path.join(HERE, "oracle_session.py")
    os.environ["CT_ORACLE_REPORT"] = REPORT
    os.environ["CT_ORACLE_IMPORTED"] = str(imported)
    rc = pytest.main(["-q", "-x", "--tb=short", "-p", "no:cacheprovider", "-p", "no:randomly",
                      "-o", "python_files=oracle_session.py", test_file])
    sys.exit(int(rc))


# ---------------------------------------------------------------- the check

def type_name(tp: type) -> str:
    mod = getattr(tp, "__module__", None)
    qual = getattr(tp, "__qualname__", tp.__name__)
    return qual if mod in (None, "builtins") else "%s.%s" % (mod, qual)


def bounded_kind(obj, ours: int, actual: int, part: str):
    """The documented case a disagreement falls in, or None.

    - ints made by arithmetic: the allocation keeps the digits that
      normalisation dropped (x_add: one more digit; x_sub and friends: the
      larger operand's digits), which the object no longer records.  The
      sizer then counts less than allocated, never more.
    - one-digit ints on 3.11+: _PyLong_FromMedium allocates the whole
      struct (32 bytes), _PyLong_New(1) only the used digit (28); the object
      does not say which made it.  The sizer counts 32: at most 4 over.
    - 3.13 inline values: the instance was sized from the class's shared
      keys one slot larger than the capacity it stores when the keys still
      had a slot to spare; the sizer can tell for every instance but the one
      that took the keys' last spare slot (one per class, 8 or 16 bytes).
    - 3.11/3.12 values arrays: their slot count is not stored; the sizer
      reads it from the class's shared keys within the range the stored
      prefix size allows (at most 7 slots off).
    """
    if part == "body" and type(obj) is int:
        if ours < actual and (actual - ours) % 4 == 0:
            return "int-normalised"
        if ours - actual == 4 and abs(obj) < 2 ** 30:
            return "int-one-digit"
    if (part == "body" and sys.version_info >= (3, 13) and 0 < actual - ours <= 16
            and type(obj).__flags__ & (1 << 2)):    # Py_TPFLAGS_INLINE_VALUES
        return "inline-values-boundary"
    if part == "values" and abs(ours - actual) <= 7 * 8:
        return "values-slots"
    return None


def check(objects: list) -> dict:
    from classtrack import asizeof

    sizer = asizeof.Asizer()._sizer
    size_of = _ctshim.size_of
    per_type: dict = {}
    seen_ids = set()
    for obj in objects:
        oid = id(obj)
        if oid in seen_ids:
            continue
        seen_ids.add(oid)
        tp = type(obj)
        name = type_name(tp)
        rec = per_type.get(name)
        if rec is None:
            rec = per_type[name] = {"seen": 0, "checked": 0, "agree": 0,
                                    "unverifiable": 0, "disagree": {},
                                    "bounded": {}, "how": {}}
        rec["seen"] += 1
        try:
            flat, pre, body, body_exact, blocks, unlocated, how = sizer.flat_parts(obj)
        except Exception as exc:  # noqa: BLE001 - report, never crash
            rec["disagree"].setdefault("error", []).append(repr(exc)[:200])
            continue
        rec["how"][how] = rec["how"].get(how, 0) + 1
        actual = size_of(oid - pre)
        if actual is None:
            # not a block we saw allocated: older than the shim, static,
            # or a wrong pre-header.  Only the last is a defect.
            moved = [d for d in (0, 16, 32, 48)
                     if d != pre and (size_of(oid - d) or 0) > d]   # a block holding obj
            if moved:
                _disagree(rec, "pre-header", obj, pre, moved[0], how)
            else:
                rec["unverifiable"] += 1
            continue
        rec["checked"] += 1
        ok = True
        if actual != body:
            kind = bounded_kind(obj, body, actual, "body")
            if kind:
                _bounded(rec, kind, body, actual)
            else:
                _disagree(rec, "body", obj, body, actual, how)
                ok = False
        for i, (addr, size) in enumerate(blocks):
            got = size_of(addr)
            part = "values" if _is_values_block(obj, i, blocks) else "block"
            if got != size:
                kind = bounded_kind(obj, size, got, part) if got is not None else None
                if kind:
                    _bounded(rec, kind, size, got)
                else:
                    if got is None:
                        # the block is not one the shim saw allocated: it
                        # predates the shim (a dict's keys table that the
                        # class shared with it before install), or the
                        # address is wrong; counted, and bounded by the test
                        rec["blocks_unverifiable"] = rec.get("blocks_unverifiable", 0) + 1
                        continue
                    _disagree(rec, "block", obj, size, got, how)
                    ok = False
        if ok:
            rec["agree"] += 1
        if unlocated:
            rec["unlocated_bytes"] = rec.get("unlocated_bytes", 0) + unlocated
    return per_type


def _is_values_block(obj, i, blocks) -> bool:
    # the values array of a 3.11/3.12 instance or split dict is the last
    # block the sizer lists for them
    return sys.version_info[:2] in ((3, 11), (3, 12)) and i == len(blocks) - 1 and (
        isinstance(obj, dict) or not isinstance(obj, (list, str, set, frozenset, bytearray)))


def _disagree(rec, kind, obj, ours, actual, how) -> None:
    d = rec["disagree"].setdefault(kind, {"count": 0, "examples": []})
    d["count"] += 1
    if len(d["examples"]) < 3:
        try:
            r = object.__repr__(obj)
        except Exception:  # noqa: BLE001
            r = "?"
        d["examples"].append({"ours": ours, "actual": actual, "how": how, "repr": r[:120]})


def _bounded(rec, kind, ours, actual) -> None:
    b = rec["bounded"].setdefault(kind, {"count": 0, "worst": 0, "worst_pair": None})
    b["count"] += 1
    err = actual - ours
    if abs(err) > abs(b["worst"]):
        b["worst"] = err
        b["worst_pair"] = [ours, actual]


def census() -> list:
    """Every object the collector knows, and every referent of those."""
    gc.collect()
    objs = gc.get_objects()
    out = list(objs)
    for o in objs:
        try:
            out.extend(gc.get_referents(o))
        except Exception:  # noqa: BLE001
            pass
    return out


def write_report(per_type: dict, extra: dict) -> None:
    totals = {"types": len(per_type), "objects": 0, "checked": 0, "agree": 0,
              "unverifiable": 0, "disagreements": 0, "blocks_unverifiable": 0,
              "bounded": 0}
    for rec in per_type.values():
        totals["objects"] += rec["seen"]
        totals["checked"] += rec["checked"]
        totals["agree"] += rec["agree"]
        totals["unverifiable"] += rec["unverifiable"]
        totals["blocks_unverifiable"] += rec.get("blocks_unverifiable", 0)
        totals["bounded"] += sum(b["count"] for b in rec["bounded"].values())
        totals["disagreements"] += sum(
            d["count"] if isinstance(d, dict) else len(d) for d in rec["disagree"].values())
    report = {"python": sys.version.split()[0], "totals": totals, "extra": extra,
              "types": per_type}
    with open(REPORT, "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
