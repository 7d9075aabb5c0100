"""Build of classtrack's C engine.

Every C file under src/classtrack/_core (one folder per engine, see
docs/design.md) is compiled with -Wall -Wextra.
-Werror is for CI only (CLASSTRACK_WERROR=1, set by .ci/run): a user's
install must never fail on a warning that a newer compiler or a newer
CPython adds.  CLASSTRACK_SANITIZE=1 builds with AddressSanitizer and
UndefinedBehaviorSanitizer and live assertions (-UNDEBUG), as CI does;
CLASSTRACK_FUZZ=1 (with CC=clang) builds for coverage-guided fuzzing.
CLASSTRACK_LAYOUT_NEWEST=3.13 (tests only) builds as if the layouts known
stopped at that version, so the path of a CPython newer than the layouts
can be run on a known one.
"""
import glob
import os
import sys
import sysconfig

if sysconfig.get_config_var("Py_GIL_DISABLED"):
    # compat.h refuses it too, at compile time
    sys.exit("classtrack cannot be installed on a free-threaded CPython "
             "(built with Py_GIL_DISABLED): its allocator hook and object "
             "layouts assume the GIL and were never tested without it; use a "
             "default (GIL) build of CPython.")

from setuptools import Extension, setup  # noqa: E402

cflags = ["-Wall", "-Wextra"]
if os.environ.get("CLASSTRACK_WERROR") == "1":
    cflags.append("-Werror")
ldflags = []
undef = []
macros = []
# Tests only: pretend the layouts known stop at this version ("3.13"), to
# build and run the path every newer CPython takes (estimates, one warning).
newest = os.environ.get("CLASSTRACK_LAYOUT_NEWEST")
if newest:
    major, minor = (int(x) for x in newest.split("."))
    macros.append(("CT_LAYOUT_NEWEST_OVERRIDE", "0x%02X%02X" % (major, minor)))
if os.environ.get("CLASSTRACK_SANITIZE") == "1":
    cflags += ["-O1", "-g", "-fno-omit-frame-pointer",
               "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    ldflags += ["-fsanitize=address,undefined"]
    undef += ["NDEBUG"]

if os.environ.get("CLASSTRACK_FUZZ") == "1":
    # clang with libFuzzer coverage instrumentation; the runtime comes from
    # atheris's asan_with_fuzzer.so, preloaded (see tests/fuzz/fuzz_dump.py)
    cflags += ["-O1", "-g", "-fno-omit-frame-pointer",
               "-fsanitize=address,fuzzer-no-link"]
    undef += ["NDEBUG"]

CORE = os.path.join("src", "classtrack", "_core")
# One folder per engine; headers are included by their path under _core
# ("base/layout.h"), so _core is the one include directory.
sources = sorted(glob.glob(os.path.join(CORE, "**", "*.c"), recursive=True))
headers = sorted(glob.glob(os.path.join(CORE, "**", "*.h"), recursive=True))

setup(
    ext_modules=[
        Extension(
            "classtrack._core",
            sources=sources,
            depends=headers,
            include_dirs=[CORE],
            extra_compile_args=cflags,
            extra_link_args=ldflags,
            undef_macros=undef,
            define_macros=macros,
        )
    ],
)
