"""The allocator oracle over programs nobody here wrote, in one process:
sphinx-build (autodoc of stdlib modules, with napoleon and viewcode) and
pyflakes checking asyncio's sources, their objects all alive when the heap
is checked.

    python real_programs.py SHIMDIR REPORT.json WORKDIR

heap_oracle (imported first) installs the allocator shim; then the
programs run; then every object of gc.get_objects() and their referents is
checked as heap_oracle.py describes.
"""
import sys

SHIMDIR, REPORT, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
import heap_oracle  # noqa: E402  (installs the shim: must come first)

import ast  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402

MODULES = ["asyncio.base_events", "json.decoder", "email.message", "argparse", "logging",
           "dataclasses"]


def sphinx_build():
    from sphinx.application import Sphinx

    src = os.path.join(WORK, "src")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "conf.py"), "w") as f:
        f.write('project = "probe"\nextensions = ["sphinx.ext.autodoc", '
                '"sphinx.ext.napoleon", "sphinx.ext.viewcode"]\n')
    with open(os.path.join(src, "index.rst"), "w") as f:
        f.write("Probe\n=====\n")
        for m in MODULES:
            f.write("\n.. automodule:: %s\n   :members:\n   :undoc-members:\n" % m)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        app = Sphinx(src, src, os.path.join(WORK, "out"), os.path.join(WORK, "doctrees"),
                     "html", status=out, warning=out, freshenv=True)
        app.build()
    return app


def pyflakes_asyncio():
    import pyflakes.checker

    checkers = []
    base = os.path.join(os.path.dirname(os.__file__), "asyncio")
    for name in sorted(os.listdir(base)):
        if name.endswith(".py"):
            with open(os.path.join(base, name), "rb") as f:
                tree = ast.parse(f.read())
            checkers.append(pyflakes.checker.Checker(tree, filename=name))
    return checkers


def main():
    app = sphinx_build()
    checkers = pyflakes_asyncio()
    per_type = heap_oracle.check(heap_oracle.census())
    heap_oracle.write_report(per_type, {"sphinx_docs": len(app.env.all_docs),
                                        "pyflakes_files": len(checkers),
                                        "pyflakes_messages": sum(len(c.messages) for c in checkers)})


if __name__ == "__main__":
    main()
