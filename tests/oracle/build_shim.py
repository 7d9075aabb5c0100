"""Builds the test-only allocator shim (ctshim.c) for the running
interpreter, with the compiler and flags the interpreter was built with.

``build(dest)`` returns the directory holding ``_ctshim*.so``; the build is
cached by interpreter and source, so repeated test runs compile once.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "ctshim.c")


def build(dest: str) -> str:
    with open(SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read() + sys.version.encode()
                                + sys.executable.encode()).hexdigest()[:16]
    outdir = os.path.join(dest, "ctshim-" + digest)
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = os.path.join(outdir, "_ctshim" + suffix)
    if os.path.exists(target):
        return outdir
    os.makedirs(outdir, exist_ok=True)
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    include = sysconfig.get_paths()["include"]
    cmd = cc + ["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
                "-I", include, SOURCE, "-o", target + ".tmp"]
    if sys.platform == "darwin":
        cmd += ["-undefined", "dynamic_lookup"]
    subprocess.run(cmd, check=True)
    os.replace(target + ".tmp", target)
    return outdir


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else "/tmp"))
