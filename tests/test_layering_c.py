"""The C engine's layout: file sizes, which engine may include which, and
no call circle between files.

`src/classtrack/_core/` has one folder per engine (its README.md says
what each owns).  An engine includes and calls only itself and the
engines below it (ALLOWED); between files, calls never go round in a
circle, inside an engine as well.  The checks read the sources only:
nothing is built or imported.
"""
import os
import re
from collections import defaultdict

import pytest

CORE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "src", "classtrack", "_core")

MAX_LINES = 1000

# engine -> the engines it may include and call, besides itself
ALLOWED = {
    "base": set(),
    "sizer": {"base"},
    "graph": {"sizer", "base"},
    "tracker": {"sizer", "base"},
    "columns": {"tracker", "sizer", "base"},
    "dump": {"columns", "tracker", "sizer", "base"},
    "bindings": {"dump", "columns", "graph", "tracker", "sizer", "base"},
}

C_KEYWORDS = {
    "if", "for", "while", "switch", "return", "sizeof", "do", "else", "case",
    "defined", "__attribute__", "_Alignof", "alignof", "__typeof__", "typeof",
    "_Static_assert", "static_assert", "__builtin_expect",
}


def c_files(root=CORE):
    """Paths of every .c and .h file under root, relative to it ('/')."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.endswith((".c", ".h")):
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                out.append(rel.replace(os.sep, "/"))
    return sorted(out)


def read(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return f.read()


def strip_comments_and_strings(text):
    """The C text with comments, string and char literals blanked (line
    breaks kept, so line numbers stay right)."""
    pattern = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
                         re.S)
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def engine_of(rel):
    """The engine (top folder) of a file, or None for a file outside them."""
    head, sep, _ = rel.partition("/")
    return head if sep else None


def unit_of(rel):
    """x.c and x.h are one unit: a file may call its own header's inlines."""
    return os.path.splitext(rel)[0]


DEF_RE = re.compile(
    r"^(?P<pre>(?:[A-Za-z_][\w]*[ \t\*]+)*)(?P<pre_line>)\**(?P<name>[A-Za-z_]\w*)\s*\((?P<args>[^;{}]*?)\)\s*\{",
    re.M)
CALL_RE = re.compile(r"\b([A-Za-z_]\w*)\s*\(")


def definitions(text):
    """(name, is_static, start, end) of each function defined in text (the
    code style puts a definition's name at the start of a line, its return
    type on the line before or in front)."""
    out = []
    for m in DEF_RE.finditer(text):
        name = m.group("name")
        if name in C_KEYWORDS:
            continue
        line_start = text.rfind("\n", 0, m.start()) + 1
        prev_start = text.rfind("\n", 0, max(line_start - 1, 0)) + 1
        prev_line = text[prev_start:line_start] if line_start > 0 else ""
        is_static = ("static" in m.group("pre").split()
                     or (not m.group("pre").strip() and "static" in prev_line.split()))
        # the body: from the opening brace to its match
        depth, i = 0, m.end() - 1
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        out.append((name, is_static, m.end(), i))
    return out


def include_edges(root=CORE):
    """(file, included header) for every quoted #include."""
    for rel in c_files(root):
        for m in re.finditer(r'^\s*#\s*include\s+"([^"]+)"', read(root, rel), re.M):
            yield rel, m.group(1)


def call_graph(root=CORE):
    """unit -> {unit: example call}: calls from one file unit to a function
    defined in another (external functions, and static inlines of
    headers)."""
    texts = {rel: strip_comments_and_strings(read(root, rel)) for rel in c_files(root)}
    defs = {rel: definitions(t) for rel, t in texts.items()}
    global_defs = defaultdict(set)     # name -> units defining it
    for rel, ds in defs.items():
        for name, is_static, _s, _e in ds:
            if not is_static or rel.endswith(".h"):
                global_defs[name].add(unit_of(rel))
    graph = defaultdict(dict)
    for rel, t in texts.items():
        here = unit_of(rel)
        local_static = {name for name, st, _s, _e in defs[rel] if st and rel.endswith(".c")}
        for name, _st, start, end in defs[rel]:
            for m in CALL_RE.finditer(t, start, end):
                callee = m.group(1)
                if callee in C_KEYWORDS or callee in local_static:
                    continue
                for unit in global_defs.get(callee, ()):
                    if unit != here:
                        graph[here].setdefault(unit, "%s() calls %s()" % (name, callee))
    return graph


def find_cycle(graph):
    """One cycle as a list of units (first == last), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = defaultdict(int)
    stack = []

    def visit(u):
        colour[u] = GREY
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if colour[v] == GREY:
                return stack[stack.index(v):] + [v]
            if colour[v] == WHITE:
                found = visit(v)
                if found:
                    return found
        stack.pop()
        colour[u] = BLACK
        return None

    for u in sorted(graph):
        if colour[u] == WHITE:
            found = visit(u)
            if found:
                return found
    return None


def test_sources_found():
    files = c_files()
    assert len(files) > 30, files
    assert any(f.startswith("tracker/") for f in files)


def test_no_c_file_over_the_limit():
    long = {}
    for rel in c_files():
        n = read(CORE, rel).count("\n")
        if n > MAX_LINES:
            long[rel] = n
    assert not long, "C files over %d lines: %s" % (MAX_LINES, long)


def test_every_file_is_in_an_engine_folder():
    stray = [rel for rel in c_files() if engine_of(rel) not in ALLOWED]
    assert not stray, ("C files outside the engine folders %s: %s"
                       % (sorted(ALLOWED), stray))


def test_includes_go_downward_only():
    bad = []
    for rel, header in include_edges():
        own = engine_of(rel)
        target = engine_of(header)
        if target is None:
            bad.append("%s includes %r: not by its engine path (e.g. \"base/layout.h\")"
                       % (rel, header))
        elif target != own and target not in ALLOWED.get(own, set()):
            bad.append("%s (%s) includes %s (%s): %s may use only %s"
                       % (rel, own, header, target, own,
                          sorted(ALLOWED.get(own, set())) or "nothing else"))
        elif header.endswith("_internal.h") and target != own:
            bad.append("%s includes %s, private to %s/" % (rel, header, target))
        elif not os.path.exists(os.path.join(CORE, header)):
            bad.append("%s includes %s, which does not exist" % (rel, header))
    assert not bad, "\n".join(bad)


def test_calls_go_downward_only():
    graph = call_graph()
    bad = []
    for src, targets in graph.items():
        own = engine_of(src + ".c")
        for dst, example in targets.items():
            eng = engine_of(dst + ".c")
            if eng != own and eng not in ALLOWED.get(own, set()):
                bad.append("%s calls up into %s: %s" % (src, dst, example))
    assert not bad, "\n".join(bad)


def test_no_call_circle_between_files():
    graph = call_graph()
    assert graph, "no calls found: the parser is broken"
    cycle = find_cycle(graph)
    if cycle:
        steps = ["%s -> %s (%s)" % (a, b, graph[a][b]) for a, b in zip(cycle, cycle[1:])]
        pytest.fail("call circle between C files:\n  " + "\n  ".join(steps))


def test_the_parser_sees_a_circle():
    """The cycle finder and the parser, on a made-up circle of three."""
    graph = {"a": {"b": "f"}, "b": {"c": "g"}, "c": {"a": "h"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": "f"}, "b": {}}) is None
    text = strip_comments_and_strings(
        "static int\nhelper(int x)\n{\n    return x; /* f(1) */\n}\n\n"
        "int\nct_api(void)\n{\n    return helper(2) + other(\"g(\");\n}\n")
    names = {(n, st) for n, st, _s, _e in definitions(text)}
    assert names == {("helper", True), ("ct_api", False)}
    calls = {m.group(1) for m in CALL_RE.finditer(text)}
    assert "other" in calls and "f" not in calls and "g" not in calls
