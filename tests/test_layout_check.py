"""The layout table checks itself against the running interpreter.

At first use the engine builds probe objects of each kind of layout
knowledge under a recording allocator and compares the blocks it would
claim with what was allocated (src/classtrack/_core/sizer/sizer_check.c).  A kind
that disagrees is sized as estimates, with one warning naming it; the other
kinds stay exact.  The mismatch is forced here by putting one kind's
expected sizes 8 bytes off.

Also here: what the build does on interpreters it must refuse
(free-threaded) or does not know (newer than the layouts).
"""
import datetime
import os
import shlex
import subprocess
import sys
import sysconfig
import warnings

import pytest

from classtrack import _core, asizeof

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORE_SRC = os.path.join(ROOT, "src", "classtrack", "_core")

KINDS = ["GC header", "instance", "dict", "str", "int", "list", "tuple", "bytes",
         "subclass of tuple/int/bytes", "class", "struct sequence", "datetime"]

known = pytest.mark.skipif(not _core.layout_info()[0],
                           reason="layouts of this CPython are unknown: sizes are estimates")


@pytest.fixture
def clean_check():
    """Leaves the check as a clean first use would."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = _core.layout_check(rerun=True)
    assert report["distrusted"] == {}


class _Plain:
    def __init__(self, i):
        self.a = i
        self.b = str(i)


def _samples():
    """One object of each kind, with the kind it belongs to."""
    warm = [_Plain(i) for i in range(40)]   # past the class's first instances
    return warm, {
        "instance": _Plain(-1),
        "dict": {str(i): i for i in range(20)},
        "str": "\u20ac" * 7 + "x",
        "int": 10 ** 40,
        "list": list(range(30)),
        "tuple": tuple(range(25)),
        "bytes": b"b" * 50,
        "struct sequence": os.stat(HERE),
        "datetime": datetime.datetime(2000, 1, 2),
    }


@known
def test_first_use_check_finds_this_interpreter_as_the_table_says(clean_check):
    asizeof.asizeof([1])        # the first use
    report = _core.layout_check()
    assert report["checked"] is True
    assert report["distrusted"] == {}
    # with datetime imported (the check never imports it itself), every kind
    # has blocks that were judged, not only skipped
    report = _core.layout_check(rerun=True)
    assert sorted(report["judged"]) == sorted(KINDS)
    for kind in KINDS:
        assert report["judged"][kind] > 0, (kind, report)


@known
@pytest.mark.parametrize("kind", ["dict", "instance", "str", "int", "list", "struct sequence",
                                  "GC header"])
def test_a_forced_mismatch_makes_that_kind_an_estimate_with_one_warning(kind, clean_check):
    warm, samples = _samples()
    sizer = asizeof.Asizer()._sizer
    exact = {k: sizer.flat_parts(o) for k, o in samples.items()}
    assert all(p[-1] != "estimate" for p in exact.values()), exact
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = _core.layout_check(rerun=True, corrupt=kind)
        asizeof.asizeof(samples)        # no second warning at the next use
        asizeof.Asizer()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    assert kind + " (" in messages[0] and "estimates" in messages[0]
    assert list(report["distrusted"]) == [kind]
    # the figures are named
    assert "expected" in report["distrusted"][kind] and "allocated" in report["distrusted"][kind]
    for k, o in samples.items():
        parts = sizer.flat_parts(o)
        belongs = k == kind or (kind == "GC header" and _is_gc(o)) \
            or (kind == "instance" and k == "instance")
        if belongs:
            # an estimate: the object's own __sizeof__ plus its pre-header
            assert parts[-1] == "estimate", (k, parts)
            assert parts[0] == sys.getsizeof(o), (k, parts)
        else:
            assert parts == exact[k], (k, parts, exact[k])
    del warm


def _is_gc(o):
    return bool(type(o).__flags__ & (1 << 14))     # Py_TPFLAGS_HAVE_GC


@known
def test_a_clean_rerun_trusts_again(clean_check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _core.layout_check(rerun=True, corrupt="list")
    assert asizeof.Asizer()._sizer.flat_parts([1, 2])[-1] == "estimate"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _core.layout_check(rerun=True)["distrusted"] == {}
    assert asizeof.Asizer()._sizer.flat_parts([1, 2])[-1] == "exact"


def test_an_unknown_kind_name_is_a_value_error():
    with pytest.raises(ValueError, match="no layout kind named 'lists'"):
        _core.layout_check(rerun=True, corrupt="lists")


def test_free_threaded_build_is_refused_at_install():
    code = (
        "import sys, sysconfig\n"
        "real = sysconfig.get_config_var\n"
        "sysconfig.get_config_var = lambda n: 1 if n == 'Py_GIL_DISABLED' else real(n)\n"
        "sys.argv = ['setup.py', '--name']\n"
        "with open('setup.py') as f:\n"
        "    source = f.read()\n"
        "exec(compile(source, 'setup.py', 'exec'))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "free-threaded CPython" in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.count("\n") <= 2, proc.stderr     # one sentence, no traceback


def test_free_threaded_build_is_refused_at_compile_time(tmp_path):
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    src = tmp_path / "ft.c"
    src.write_text('#include "base/compat.h"\n')
    proc = subprocess.run(cc + ["-fsyntax-only", "-DPy_GIL_DISABLED", "-I", CORE_SRC,
                                "-I", sysconfig.get_paths()["include"], str(src)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "does not support free-threaded CPython" in proc.stderr, proc.stderr[-2000:]


def test_layout_info_names_the_newest_known_version():
    known_, newest, estimate = _core.layout_info()
    # CLASSTRACK_LAYOUT_NEWEST: a test build that pretends to know fewer
    # versions (setup.py; CI builds one to run the unknown-version path)
    forced = os.environ.get("CLASSTRACK_LAYOUT_NEWEST")
    assert newest == (tuple(int(x) for x in forced.split(".")) if forced else (3, 15))
    assert known_ == (sys.version_info[:2] <= newest)
    if not known_:
        assert estimate is True
