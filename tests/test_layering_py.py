"""The Python layers of src/classtrack, checked from the source text.

* no import cycle between the package's modules (every ``import`` and
  ``from`` statement counts, also those inside functions);
* no .py file over 1,000 lines;
* an import inside a function says why it is not at the top (a comment on
  its line or the line above);
* no module under ``classtrack/report`` imports the command layer.
"""
import ast
import importlib.machinery
import io
import os
import tokenize
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "src", "classtrack")
MAX_LINES = 1000


def _modules() -> Dict[str, str]:
    """{dotted module name: path} of every .py file of the package."""
    out = {}
    root = os.path.dirname(SRC)
    for folder, _, files in os.walk(SRC):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(folder, f)
            rel = os.path.relpath(path, root)[:-3].split(os.sep)
            if rel[-1] == "__init__":
                rel = rel[:-1]
            out[".".join(rel)] = path
    return out


MODULES = _modules()
# compiled modules (classtrack._core): outside the graph, and not the package
_COMPILED = importlib.machinery.EXTENSION_SUFFIXES


def _is_compiled(name: str) -> bool:
    base = os.path.join(os.path.dirname(SRC), *name.split("."))
    return (os.path.isdir(base) and not os.path.exists(os.path.join(base, "__init__.py"))) \
        or any(os.path.exists(base + suffix) for suffix in _COMPILED) \
        or name == "classtrack._core"


def _tree(path: str) -> ast.Module:
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read(), path)


def _package_of(name: str, path: str) -> str:
    return name if path.endswith("__init__.py") else name.rpartition(".")[0]


def _targets(name: str, path: str, node: ast.AST) -> Iterator[str]:
    """The package modules an import statement imports (not counting the
    parent packages Python also runs: ``from a.b import c`` counts a.b.c
    when it is a module, else a.b)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in MODULES:
                yield alias.name
        return
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = _package_of(name, path)
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        source = base + ("." + node.module if node.module else "")
    else:
        source = node.module or ""
    for alias in node.names:
        sub = source + "." + alias.name
        if sub in MODULES:
            yield sub
        elif _is_compiled(sub):
            continue
        elif source in MODULES:
            yield source


def _imports(tree: ast.Module) -> Iterator[Tuple[ast.AST, bool]]:
    """(import node, whether it is inside a function body)."""
    def walk(node: ast.AST, in_function: bool) -> Iterator[Tuple[ast.AST, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, in_function
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                      ast.Lambda))
            yield from walk(child, inner)
    return walk(tree, False)


def import_graph() -> Dict[str, Set[str]]:
    graph: Dict[str, Set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for node, _ in _imports(_tree(path)):
            for target in _targets(name, path, node):
                if target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One cycle of the graph as [a, b, ..., a], or None."""
    state: Dict[str, int] = {}      # 1 on the current path, 2 done
    stack: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _comment_lines(path: str) -> Set[int]:
    with open(path, encoding="utf-8") as f:
        source = f.read()
    return {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT}


def test_the_checks_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    import os\n")
    assert [inside for _, inside in _imports(tree)] == [True]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_file_over_1000_lines():
    long = []
    for name, path in sorted(MODULES.items()):
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > MAX_LINES:
            long.append("%s (%d lines)" % (os.path.relpath(path, SRC), n))
    assert not long, "over %d lines: %s" % (MAX_LINES, ", ".join(long))


def test_imports_inside_functions_say_why():
    bare = []
    for name, path in sorted(MODULES.items()):
        comments = _comment_lines(path)
        for node, inside in _imports(_tree(path)):
            if inside and not ({node.lineno, node.lineno - 1} & comments):
                bare.append("%s:%d" % (os.path.relpath(path, SRC), node.lineno))
    assert not bare, ("imports inside functions without a comment saying why: "
                      + ", ".join(bare))


def _command_layer_imports(name: str) -> List[str]:
    path = MODULES[name]
    return sorted({t for node, _ in _imports(_tree(path))
                   for t in _targets(name, path, node)
                   if t == "classtrack.commands" or t.startswith("classtrack.commands.")})


@pytest.mark.parametrize("name", sorted(n for n in MODULES
                                        if n.startswith(("classtrack.report",
                                                         "classtrack.running"))))
def test_lower_layers_do_not_import_commands(name):
    """Reports, and running a program, sit below the command layer."""
    wrong = _command_layer_imports(name)
    assert not wrong, "%s imports the command layer: %s" % (name, ", ".join(wrong))
