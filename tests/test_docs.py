"""The README is the front door and docs/ holds the rest: the README stays
short, the quick start stays in the form CI parses (.ci/run takes its
second line as the test command), every relative link in README.md and
docs/*.md leads to a file (and heading) that exists, and every subcommand
`classtrack --help` lists is documented in docs/cli.md."""
import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
CLI_DOC = os.path.join(ROOT, "docs", "cli.md")
MAX_README_LINES = 160
QUICKSTART = [
    "pip install . && python -m classtrack demo",
    "pip install '.[test]' && python -m pytest -q tests",
]

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _prose_lines(text):
    """The lines outside fenced code blocks."""
    inside = False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            yield line


def slug(heading):
    """The anchor GitHub gives a heading: lower case, punctuation other
    than '-' and '_' dropped, spaces made '-'."""
    text = re.sub(r"`", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    seen = {}
    out = set()
    for line in _prose_lines(_read(path)):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else "%s-%d" % (base, n))
    return out


def links(path):
    """(target, line number) of each Markdown link outside code."""
    inside = False
    for number, line in enumerate(_read(path).splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            continue
        if inside:
            continue
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            yield target, number


def doc_files():
    return [README] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def test_slug_matches_github():
    assert slug("report --json") == "report---json"
    assert slug("Retained sizes and why_alive") == "retained-sizes-and-why_alive"
    assert slug("One class: `limit_instances(cls, n)`") == "one-class-limit_instancescls-n"


def test_readme_is_short():
    n = len(_read(README).splitlines())
    assert n <= MAX_README_LINES, (
        "README.md has %d lines, more than %d: move the detail to a page under docs/"
        % (n, MAX_README_LINES))


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_resolve(path):
    broken = []
    for target, number in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):     # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (os.path.normpath(os.path.join(os.path.dirname(path), file_part))
                if file_part else path)
        if not os.path.exists(dest):
            broken.append("line %d: %s (no such file)" % (number, target))
        elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
            broken.append("line %d: %s (no such heading)" % (number, target))
    assert not broken, "%s:\n  %s" % (os.path.relpath(path, ROOT), "\n  ".join(broken))


def test_quickstart_block():
    lines = _read(README).splitlines()
    starts = [k for k, line in enumerate(lines) if line.startswith("<!-- quickstart")]
    assert len(starts) == 1, "README.md needs exactly one '<!-- quickstart' line"
    rest = lines[starts[0] + 1:]
    assert rest and FENCE.match(rest[0]), "the quickstart comment must be followed by a fence"
    end = next(k for k in range(1, len(rest)) if FENCE.match(rest[k]))
    assert rest[1:end] == QUICKSTART


def test_readme_shows_the_package_marker():
    text = _read(README)
    assert "limit_instances(package=" in text
    assert "filter_fn=" in text


def _subcommands():
    out = subprocess.run([sys.executable, "-m", "classtrack", "--help"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, env=dict(os.environ, COLUMNS="200"),
                         check=True).stdout
    names = re.findall(r"^ {4}([a-z][\w-]*)\s{2,}\S", out, re.M)
    assert names, "no subcommand found in:\n" + out
    return names


def test_every_subcommand_is_in_cli_doc():
    text = _read(CLI_DOC)
    headings = {m.group(2).strip("` ") for m in map(HEADING.match, _prose_lines(text)) if m}
    missing = [name for name in _subcommands()
               if name not in headings or ("classtrack %s" % name) not in text]
    assert not missing, ("docs/cli.md lacks a '## NAME' section or a "
                         "'classtrack NAME' synopsis line for: %s" % ", ".join(missing))
