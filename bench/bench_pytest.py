"""The pytest plugin on two real test suites: wall time and peak memory.

    python bench/bench_pytest.py [--rounds 3] [--quick] [--python PY]
                                 [--projects attrs more-itertools]
                                 [--modes plain classtrack memray memray-leaks nosuchpkg]
                                 [--work DIR] [--classtrack-src PATH] [--classtrack-rev REV]

Needs network access to the package index (pip) the first time; nothing
from bench/requirements.txt: every tool is installed into venvs of its own.

Suites: the test suites of attrs and more-itertools, from their PyPI sdists
at pinned versions (PROJECTS below; both sdists ship their tests/ folder,
which is checked).  For each project and interpreter (--python, default
the one running this script) a venv under --work holds: the project
(installed from its sdist), pytest, the project's test dependencies
(attrs: hypothesis, and cloudpickle and pympler where they install, as in
its "tests" dependency group less pytest-xdist: the suite runs in one
process here), classtrack built from --classtrack-src (default: this
checkout; its files are copied first, so the build writes nothing into
the checkout, and a working tree with changes is measured as it is:
src/ and the packaging files, listed in the output; --classtrack-rev
builds a commit instead), and pytest-memray
where it installs.  Venvs are reused while those files are unchanged.

Modes (each a fresh `pytest -q -p no:cacheprovider -rfE [suite args]`
in the sdist's folder, extracted afresh for each bench run; the plugin a
mode does not use is switched off with -p no:NAME, so each column
measures one tool):

  plain         no option (classtrack's plugin loaded, inert)
  classtrack    --classtrack=PKG for each of the project's packages (attrs:
                attr and attrs; attrs defines no class of its own): one
                tracker for the session, the survivors of each test
                counted after it (with a gc.collect() when there are
                candidates), the table at the end
  memray        pytest --memray: memray's tracker around every test and its
                allocation report at the end; no leak check.  It wraps the
                test function (pytest_pyfunc_call), which pytest does not
                call for unittest.TestCase tests: on such tests (all of
                more-itertools') it tracks nothing, and the table says so
  memray-leaks  pytest --memray plus pytest-memray's leak marker on every
                test: limit_leaked_objects (Python >= 3.13.3; surviving
                objects, filtered to none) or else limit_leaks("1 GB")
                (leaked native and pymalloc allocations, native stacks).
                pytest-memray has no option or ini setting that applies a
                marker to every test, so a small plugin written by this
                bench (-p) adds it at collection; the suite is not edited
  nosuchpkg     --classtrack=nosuchpkg: a package that does not exist, so
                nothing is tracked: the fixed per-test cost of the option

Every mode first runs once untimed (disk cache, .pyc files; and the check
below).  Then each mode runs --rounds times, the order of the modes
rotated each round; the figures are the medians of

  wall      time.perf_counter() around the child, start to exit
  max RSS   ru_maxrss of the pytest process from os.wait4() on its pid:
            that process's peak (the kernel reports the larger of its own
            and that of the children it waited for; they are not added)
  CPU       user + system time of the pytest process (and of the children
            it waited for): less disturbed by other load on the machine

and their ratios to plain; a ratio above the 1.3x target is marked "!".
The ratios within each round are printed too, and every run's figures
are kept in --work as results-*.json.

Same tests everywhere: a test that fails or errors in the untimed run of
any mode (plain first) is deselected in every mode and listed with the
mode and the reason; every timed run's outcome counts (passed, skipped,
xfailed...) must equal plain's, and any difference is printed.  attrs
runs with --hypothesis-seed=0, so every run draws the same examples.
"""
import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET = 1.3

# Pinned: the versions found on the index when this bench was written.
# deps: what the suite cannot run without; optional: installed one by one,
# left out (and said so) where they do not install.
PROJECTS = {
    "attrs": {
        "version": "26.1.0",
        "packages": ["attr", "attrs"],
        "deps": ["hypothesis"],
        # the sdist's pyproject.toml, [dependency-groups] tests; pytest-xdist
        # is left out (tox runs -n auto; one process here)
        "optional": ["cloudpickle", "pympler"],
        "args": ["--hypothesis-seed=0", "tests"],
    },
    "more-itertools": {
        "version": "11.2.1",
        "packages": ["more_itertools"],
        # tests are unittest cases (tox runs `python -m unittest`); pytest
        # collects them; requirements/testing.txt is coverage and ruff only
        "deps": [],
        "optional": [],
        "args": ["tests"],
    },
}

MODES = ["plain", "classtrack", "memray", "memray-leaks", "nosuchpkg"]
HEAD = {"plain": "plain", "classtrack": "--classtrack", "memray": "memray",
        "memray-leaks": "memray leaks", "nosuchpkg": "nosuchpkg"}

LEAKS_PLUGIN = '''\
"""bench_pytest: pytest-memray's leak marker on every collected test."""
import sys

import pytest


def _none(obj):
    return False


def pytest_collection_modifyitems(config, items):
    if sys.version_info >= (3, 13, 3):
        mark = pytest.mark.limit_leaked_objects(filter_fn=_none)
    else:
        mark = pytest.mark.limit_leaks("1 GB")
    for item in items:
        item.add_marker(mark)
'''


def log(msg):
    print("bench_pytest: " + msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return res


# -- sdists ---------------------------------------------------------------------

def sdist_for(name, version, cache):
    norm = name.replace("-", "_")
    for cand in os.listdir(cache) if os.path.isdir(cache) else []:
        if cand.lower() in ("%s-%s.tar.gz" % (norm, version), "%s-%s.tar.gz" % (name, version)):
            return os.path.join(cache, cand)
    os.makedirs(cache, exist_ok=True)
    log("downloading the %s %s sdist" % (name, version))
    res = run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
               "--no-binary", ":all:", "-d", cache, "%s==%s" % (name, version)])
    if res.returncode != 0:
        sys.exit("bench_pytest: pip download %s==%s failed:\n%s"
                 % (name, version, res.stderr[-3000:]))
    for cand in os.listdir(cache):
        if cand.lower() in ("%s-%s.tar.gz" % (norm, version), "%s-%s.tar.gz" % (name, version)):
            return os.path.join(cache, cand)
    sys.exit("bench_pytest: pip download left no %s %s sdist in %s" % (name, version, cache))


def sdist_tests(path):
    """The sdist's top folder and its test modules (tests/test_*.py)."""
    with tarfile.open(path) as tar:
        names = tar.getnames()
    top = names[0].split("/")[0]
    tests = [n for n in names if re.match(r"[^/]+/tests?/(.*/)?test_[^/]*\.py$", n)]
    return top, tests


def extract(path, dest, clear=True):
    if clear:
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.makedirs(dest)
    with tarfile.open(path) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)


# -- classtrack source and venvs ----------------------------------------------------

def wheel_input(path):
    """Whether a file of the tree goes into the build: src/ and the
    top-level packaging files (not tests/, bench/, docs/)."""
    return (path.startswith("src/") or
            (os.sep not in path and "/" not in path and
             re.match(r"(setup\.(py|cfg)|pyproject\.toml|MANIFEST\.in|README|LICENSE)",
                      path) is not None))


def classtrack_files(src):
    """The files the build reads: tracked and untracked-but-not-ignored ones
    as they are in the working tree (git), or a walk without build output."""
    res = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=src)
    if res.returncode == 0 and res.stdout.strip():
        files = [f for f in res.stdout.split("\n") if f]
    else:
        skip = {"build", "dist", ".git", "__pycache__"}
        files = []
        for dirpath, dirs, names in os.walk(src):
            dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
            files += [os.path.relpath(os.path.join(dirpath, f), src).replace(os.sep, "/")
                      for f in names if not f.endswith((".so", ".pyc"))]
    return sorted(f for f in files
                  if wheel_input(f) and os.path.isfile(os.path.join(src, f)))


def classtrack_state(src):
    """A key for the classtrack build: its input files' names and contents."""
    h = hashlib.sha256()
    files = classtrack_files(src)
    for f in files:
        with open(os.path.join(src, f), "rb") as fh:
            h.update(f.encode() + b"\0" + fh.read())
    return h.hexdigest()[:12], files


def classtrack_describe(src):
    res = run(["git", "log", "-1", "--format=%h %cd", "--date=format:%Y-%m-%d %H:%M"], cwd=src)
    if res.returncode != 0:
        return "not a git checkout"
    desc = res.stdout.strip()
    st = run(["git", "status", "--porcelain"], cwd=src)
    changed = [line[3:] for line in st.stdout.splitlines()
               if line.strip() and wheel_input(line[3:])]
    if changed:
        desc += " + uncommitted changes (%s)" % ", ".join(changed)
    elif st.stdout.strip():
        desc += " (its uncommitted changes are outside the build: none to src/)"
    return desc


def copy_classtrack(src, files, dest):
    if os.path.exists(os.path.join(dest, ".complete")):
        return dest
    if os.path.exists(dest):
        shutil.rmtree(dest)
    for f in files:
        os.makedirs(os.path.dirname(os.path.join(dest, f)), exist_ok=True)
        shutil.copy2(os.path.join(src, f), os.path.join(dest, f))
    open(os.path.join(dest, ".complete"), "w").close()
    return dest


def classtrack_at(src, rev, work):
    """A commit of the classtrack repository, exported (git archive)."""
    res = run(["git", "rev-parse", "--verify", rev + "^{commit}"], cwd=src)
    if res.returncode != 0:
        sys.exit("bench_pytest: %s is no commit of %s: %s" % (rev, src, res.stderr.strip()))
    sha = res.stdout.strip()
    dest = os.path.join(work, "classtrack-rev-" + sha[:12])
    if not os.path.exists(os.path.join(dest, ".complete")):
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.makedirs(dest)
        arch = subprocess.run(["git", "archive", "--format=tar", sha], cwd=src,
                              capture_output=True, check=True).stdout
        tar = os.path.join(dest, ".export.tar")
        with open(tar, "wb") as fh:
            fh.write(arch)
        extract(tar, dest, clear=False)
        os.remove(tar)
        open(os.path.join(dest, ".complete"), "w").close()
    desc = run(["git", "log", "-1", "--format=%h %cd", "--date=format:%Y-%m-%d %H:%M", sha],
               cwd=src).stdout.strip()
    return {"state": "rev-" + sha[:12], "describe": desc + " (--classtrack-rev %s)" % rev,
            "copy": dest}


def python_version(py):
    res = run([py, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    if res.returncode != 0:
        sys.exit("bench_pytest: %s does not run: %s" % (py, res.stderr[-500:]))
    return res.stdout.strip()


def venv_for(project, spec, sdist, py, pyver, ct_src, state, work):
    """The venv for one project on one interpreter; its notes (what was
    left out) are kept beside it."""
    venv = os.path.join(work, "venvs", "%s-%s-%s" % (project, pyver, state))
    vpy = os.path.join(venv, "bin", "python")
    notes_path = os.path.join(venv, "bench-notes.json")
    if os.path.exists(notes_path):
        with open(notes_path) as fh:
            return vpy, json.load(fh)
    log("making the %s venv for Python %s (%s)" % (project, pyver, venv))
    os.makedirs(os.path.dirname(venv), exist_ok=True)
    res = run([py, "-m", "venv", "--clear", venv])
    if res.returncode != 0:
        sys.exit("bench_pytest: venv for %s failed:\n%s" % (py, res.stderr[-2000:]))
    pip = [vpy, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # the project's sdist in the same install, so that a dependency that
    # wants the project (hypothesis once wanted attrs) gets this version
    res = run(pip + [sdist, "pytest"] + spec["deps"] + [ct_src])
    if res.returncode != 0:
        sys.exit("bench_pytest: installing %s, pytest, %s and classtrack failed:\n%s"
                 % (project, " ".join(spec["deps"]) or "(no deps)", res.stderr[-3000:]))
    notes = {"left_out": {}}
    for dep in spec["optional"] + ["pytest-memray"]:
        res = run(pip + [dep])
        if res.returncode != 0:
            last = [l for l in res.stderr.splitlines() if l.strip()]
            notes["left_out"][dep] = last[-1][:200] if last else "pip install failed"
            log("%s: %s does not install here, left out: %s"
                % (project, dep, notes["left_out"][dep]))
    res = run([vpy, "-c", "import json, importlib.metadata as m; print(json.dumps("
               "{d.metadata['Name'].lower(): d.version for d in m.distributions()}))"])
    notes["versions"] = json.loads(res.stdout)
    with open(notes_path, "w") as fh:
        json.dump(notes, fh)
    return vpy, notes


# -- one pytest run -------------------------------------------------------------------

OUTCOME = re.compile(r"(\d+) (subtests (?:passed|failed|skipped|xfailed)|passed|failed|"
                     r"skipped|xfailed|xpassed|errors?|deselected|warnings?|rerun)")


def outcomes(text):
    """The counts of pytest's closing line ('3 passed, 1 skipped in 1.2s')."""
    for line in reversed(text.splitlines()):
        if re.search(r" in [\d.]+s( \([\d:]+\))?\s*=*\s*$", line) and OUTCOME.search(line):
            counts = {}
            for n, word in OUTCOME.findall(line):
                word = {"error": "errors", "warning": "warnings"}.get(word, word)
                counts[word] = int(n)
            return counts
    return None


def ran(counts):
    return sum(v for k, v in counts.items()
               if k not in ("deselected", "warnings", "rerun") and not k.startswith("subtests"))


def problems(text):
    """(nodeid, reason) of the FAILED and ERROR lines of the short summary."""
    out = []
    for line in text.splitlines():
        m = re.match(r"(FAILED|ERROR) (.+?)(?: - (.*))?$", line)
        if m:
            out.append((m.group(2), "%s: %s" % (m.group(1), (m.group(3) or "").strip()[:160])))
    return out


def warning_lines(text):
    """The messages of the warnings summary (the last run's), shortened."""
    part = text.split("warnings summary", 1)
    if len(part) < 2:
        return []
    return sorted({m.group(1)[:160] for m in
                   re.finditer(r"^\s+\S+:\d+: (\w*Warning: .*)$", part[1], re.M)})


def memray_tracked(text):
    """Whether pytest-memray's report names any test.  It wraps the test
    function through pytest_pyfunc_call, which pytest does not call for
    unittest.TestCase tests: on such a suite it tracks nothing."""
    part = text.split("MEMRAY REPORT", 1)
    return len(part) == 2 and re.search(r"Allocations? results for", part[1]) is not None


def classtrack_summary(text):
    m = re.search(r"no instance of the (\d+) tracked classes .* outlived its test "
                  r"\((\d+) tests\)", text)
    if m:
        return {"classes": int(m.group(1)), "tests": int(m.group(2)), "leaving": 0}
    m = re.search(r"(\d+) of (\d+) tests left instances of (\d+) tracked classes alive", text)
    if m:
        return {"classes": int(m.group(3)), "tests": int(m.group(2)),
                "leaving": int(m.group(1))}
    return None


def run_pytest(cmd, cwd, env, logfile):
    """wall seconds, max RSS bytes, CPU seconds, exit code, output."""
    with open(logfile, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(logfile, errors="replace") as fh:
        text = fh.read()
    return wall, ru.ru_maxrss * 1024, ru.ru_utime + ru.ru_stime, proc.returncode, text


# -- the bench ----------------------------------------------------------------------

def mode_args(mode, spec, plugin_dir):
    """pytest options and extra environment of a mode."""
    if mode == "plain":
        return ["-p", "no:memray"], {}
    if mode == "classtrack":
        return ["-p", "no:memray"] + ["--classtrack=%s" % p for p in spec["packages"]], {}
    if mode == "nosuchpkg":
        return ["-p", "no:memray", "--classtrack=nosuchpkg"], {}
    if mode == "memray":
        return ["-p", "no:classtrack", "--memray"], {}
    if mode == "memray-leaks":
        return (["-p", "no:classtrack", "--memray", "-p", "ct_bench_memray_leaks"],
                {"PYTHONPATH": plugin_dir})
    raise ValueError(mode)


def bench_project(project, spec, py, pyver, args, ct, work, plugin_dir):
    sdist = sdist_for(project, spec["version"], os.path.join(work, "sdists"))
    top, tests = sdist_tests(sdist)
    if not tests:
        sys.exit("bench_pytest: the %s %s sdist has no tests/test_*.py: pick another project"
                 % (project, spec["version"]))
    vpy, notes = venv_for(project, spec, sdist, py, pyver, ct["copy"], ct["state"], work)
    modes = [m for m in args.modes
             if not m.startswith("memray") or "pytest-memray" not in notes["left_out"]]
    skipped_modes = [m for m in args.modes if m not in modes]
    runs = os.path.join(work, "runs", "%s-%s" % (project, pyver))
    extract(sdist, runs)
    cwd = os.path.join(runs, top)
    logs = os.path.join(work, "logs", "%s-%s" % (project, pyver))
    os.makedirs(logs, exist_ok=True)
    env = dict(os.environ)
    for var in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
                "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "COV_CORE_SOURCE"):
        env.pop(var, None)
    env["COLUMNS"] = "200"          # the reasons on FAILED lines, less cut
    pytest = os.path.join(os.path.dirname(vpy), "pytest")
    base = [pytest, "-q", "-p", "no:cacheprovider", "-rfE"]

    def command(mode, deselect):
        opts, extra = mode_args(mode, spec, plugin_dir)
        sel = []
        for nodeid in deselect:
            sel += ["--deselect", nodeid] if "::" in nodeid else ["--ignore", nodeid]
        return base + opts + sel + spec["args"], dict(env, **extra)

    # untimed run of every mode: warm caches, and find what fails where
    deselected = {}         # nodeid -> (mode, reason)
    for mode in modes:
        for attempt in range(3):
            cmd, menv = command(mode, sorted(deselected))
            log("%s: untimed %s run" % (project, mode))
            ulog = os.path.join(logs, "untimed-%s-%d.log" % (mode, attempt + 1))
            wall, rss, cpu, code, text = run_pytest(cmd, cwd, menv, ulog)
            found = [(n, r) for n, r in problems(text) if n not in deselected]
            if code not in (0, 1) or outcomes(text) is None:
                sys.exit("bench_pytest: %s %s exited %d without a test result; see %s"
                         % (project, mode, code, ulog))
            if not found:
                break
            for nodeid, reason in found:
                deselected[nodeid] = (mode, reason)
                log("%s: deselecting %s (fails under %s: %s)" % (project, nodeid, mode, reason))
        else:
            sys.exit("bench_pytest: %s %s still fails after deselecting %d tests"
                     % (project, mode, len(deselected)))
    commands = {m: command(m, sorted(deselected)) for m in modes}

    wall = {m: [] for m in modes}
    rss = {m: [] for m in modes}
    cpu = {m: [] for m in modes}
    counts = {m: [] for m in modes}
    odd = []
    ctsum = {}
    warned = {}
    untracked = set()       # memray modes whose report names no test
    loads = []              # 1-minute load average before each timed run
    for r in range(args.rounds):
        order = modes[r % len(modes):] + modes[:r % len(modes)]
        for mode in order:
            cmd, menv = commands[mode]
            log("%s: round %d/%d, %s" % (project, r + 1, args.rounds, mode))
            loads.append(os.getloadavg()[0])
            w, m, c, code, text = run_pytest(cmd, cwd, menv,
                                             os.path.join(logs, "%s.log" % mode))
            got = outcomes(text)
            if got is None:
                sys.exit("bench_pytest: %s %s round %d printed no test result; see %s"
                         % (project, mode, r + 1, os.path.join(logs, "%s.log" % mode)))
            wall[mode].append(w)
            rss[mode].append(m)
            cpu[mode].append(c)
            counts[mode].append(got)
            if code != 0:
                odd.append("%s %s round %d: exit %d, %s" % (
                    project, mode, r + 1, code,
                    "; ".join("%s %s" % p for p in problems(text)) or "no FAILED line"))
            warned[mode] = warning_lines(text)
            if mode.startswith("memray") and not memray_tracked(text):
                untracked.add(mode)
            if mode in ("classtrack", "nosuchpkg"):
                ctsum[mode] = classtrack_summary(text)
                if ctsum[mode] is None:
                    odd.append("%s %s round %d: no classtrack table in the output"
                               % (project, mode, r + 1))
    ref = counts["plain"][0] if "plain" in counts else counts[modes[0]][0]
    nowarn = lambda d: {k: v for k, v in d.items() if k != "warnings"}
    for mode in modes:
        for i, got in enumerate(counts[mode]):
            if nowarn(got) != nowarn(ref):
                odd.append("%s %s run %d: %s, plain %s" % (project, mode, i + 1, got, ref))
            elif got.get("warnings", 0) != ref.get("warnings", 0):
                odd.append("%s %s run %d: %d warnings, plain %d (tests the same): %s"
                           % (project, mode, i + 1, got.get("warnings", 0),
                              ref.get("warnings", 0), " / ".join(warned[mode]) or "?"))
    return {
        "project": project, "version": spec["version"], "sdist": os.path.basename(sdist),
        "test_files": len(tests), "modes": modes, "skipped_modes": skipped_modes,
        "wall": {m: statistics.median(v) for m, v in wall.items()},
        "rss": {m: statistics.median(v) for m, v in rss.items()},
        "cpu": {m: statistics.median(v) for m, v in cpu.items()},
        "raw": {"wall": wall, "rss": rss, "cpu": cpu},
        "spread": {m: (min(v), max(v)) for m, v in wall.items()},
        "rss_spread": {m: (min(v), max(v)) for m, v in rss.items()},
        "counts": ref, "deselected": deselected, "odd": odd, "notes": notes,
        "classtrack": ctsum, "commands": {m: c[0] for m, c in commands.items()},
        "cwd": cwd, "logs": logs, "memray_untracked": sorted(untracked), "loads": loads,
    }


def ratio(x, base):
    r = x / base
    return "%.2fx%s" % (r, " !" if r > TARGET else "")


def table(results, modes, key, fmt):
    cols = []
    for m in modes:
        cols += [HEAD[m]] + (["ratio"] if m != "plain" else [])
    print("| suite | tests | " + " | ".join(cols) + " |")
    print("|---|---:|" + "---:|" * len(cols))
    for res in results:
        cells = []
        for m in modes:
            if m not in res["modes"]:
                cells += ["n/a"] + (["" ] if m != "plain" else [])
                continue
            cells.append(fmt(res[key][m]) + (" *" if m in res["memray_untracked"] else ""))
            if m != "plain":
                cells.append(ratio(res[key][m], res[key]["plain"]))
        print("| %s %s | %d | %s |" % (res["project"], res["version"], ran(res["counts"]),
                                       " | ".join(cells)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round (to try it out)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter of the venvs (default: this one)")
    parser.add_argument("--projects", nargs="+", default=list(PROJECTS), choices=list(PROJECTS))
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(),
                                                       "classtrack-bench-pytest"),
                        help="sdists, venvs, runs and logs (default: %(default)s)")
    parser.add_argument("--classtrack-src", default=ROOT,
                        help="classtrack source tree to build (default: %(default)s)")
    parser.add_argument("--classtrack-rev",
                        help="build this git commit of --classtrack-src (git archive) "
                             "instead of its working tree")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    if "plain" not in args.modes:
        args.modes = ["plain"] + args.modes
    args.modes = [m for m in MODES if m in args.modes]
    if not sys.platform.startswith("linux"):
        log("not Linux: pytest-memray may not install; os.wait4's ru_maxrss is in KiB here "
            "as on Linux only")
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    src = os.path.abspath(args.classtrack_src)
    if not os.path.exists(os.path.join(src, "setup.py")):
        sys.exit("bench_pytest: %s is not a classtrack source tree" % src)
    if args.classtrack_rev:
        ct = classtrack_at(src, args.classtrack_rev, work)
    else:
        state, files = classtrack_state(src)
        ct = {"state": state, "describe": classtrack_describe(src),
              "copy": copy_classtrack(src, files,
                                      os.path.join(work, "classtrack-src-" + state))}
    state = ct["state"]
    plugin_dir = os.path.join(work, "plugins")
    os.makedirs(plugin_dir, exist_ok=True)
    with open(os.path.join(plugin_dir, "ct_bench_memray_leaks.py"), "w") as fh:
        fh.write(LEAKS_PLUGIN)
    py = os.path.abspath(args.python) if os.sep in args.python else shutil.which(args.python)
    pyver = python_version(py)

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results = [bench_project(p, PROJECTS[p], py, pyver, args, ct, work, plugin_dir)
               for p in args.projects]
    raw_path = os.path.join(work, "results-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(raw_path, "w") as fh:
        json.dump({"started": started, "python": pyver, "classtrack": ct["describe"],
                   "rounds": args.rounds, "results": results}, fh, indent=1)

    print("# pytest plugin overhead on real suites -- Python %s (%s) on %s, %d CPUs, "
          "%d round%s, medians; started %s"
          % (pyver, py, platform.machine(), os.cpu_count() or 0, args.rounds,
             "" if args.rounds == 1 else "s", started))
    print()
    print("classtrack: %s (built from a copy, tree key %s)" % (ct["describe"], state))
    for res in results:
        v = res["notes"]["versions"]
        tools = ", ".join("%s %s" % (n, v[n]) for n in
                          ("pytest", "hypothesis", "cloudpickle", "pympler", "memray",
                           "pytest-memray", "classtrack") if n in v)
        print("%s: %s (%d test files); %s" % (res["project"], res["sdist"],
                                              res["test_files"], tools))
    print()
    modes = args.modes
    print("## wall time (median seconds)")
    print()
    table(results, modes, "wall", lambda x: "%.2f s" % x)
    print()
    print("## max RSS of the pytest process (median MB)")
    print()
    table(results, modes, "rss", lambda x: "%.1f MB" % (x / 1e6))
    print()
    print("## CPU time, user + system (median seconds)")
    print()
    table(results, modes, "cpu", lambda x: "%.2f s" % x)
    print()
    print("! above the %.1fx target.  tests: the tests run (%s); "
          "the same in every mode unless said below." % (
              TARGET, "; ".join("%s: %s" % (r["project"], ", ".join(
                  "%d %s" % (n, k) for k, n in sorted(r["counts"].items())))
                  for r in results)))
    if any(res["memray_untracked"] for res in results):
        print("* pytest-memray tracked no test of this suite (its report names none): it "
              "wraps the test function through pytest_pyfunc_call, which pytest does not "
              "call for unittest.TestCase tests, so this column is its plugin loaded and "
              "--memray's empty report, not memray tracking.")
    print()
    for res in results:
        print("%s:" % res["project"])
        print("  wall min-max per mode: " + ", ".join(
            "%s %.2f-%.2f s" % (m, a, b) for m, (a, b) in res["spread"].items()))
        raw = res["raw"]["wall"]
        print("  wall ratio to plain, round by round: " + ", ".join(
                  "%s %s" % (m, "/".join("%.2f" % (a / b) for a, b in zip(v, raw["plain"])))
                  for m, v in raw.items() if m != "plain"))
        print("  max RSS min-max per mode: " + ", ".join(
            "%s %.0f-%.0f MB" % (m, a / 1e6, b / 1e6) for m, (a, b) in res["rss_spread"].items()))
        print("  1-minute load average before each timed run: %.2f-%.2f (median %.2f; "
              "this bench's own run adds about 1)" % (min(res["loads"]), max(res["loads"]),
                                                     statistics.median(res["loads"])))
        for mode in ("classtrack", "nosuchpkg"):
            s = res["classtrack"].get(mode)
            if s:
                print("  %s: %d classes tracked, %d of %d tests left instances alive"
                      % (mode, s["classes"], s["leaving"], s["tests"]))
        for dep, why in res["notes"]["left_out"].items():
            print("  left out: %s (%s)" % (dep, why))
        for mode in res["skipped_modes"]:
            print("  mode %s not run: pytest-memray did not install" % mode)
        for nodeid, (mode, reason) in sorted(res["deselected"].items()):
            print("  deselected: %s (under %s: %s)" % (nodeid, mode, reason))
        if not res["deselected"]:
            print("  deselected: none (every test passes or skips in every mode)")
        for line in res["odd"]:
            print("  odd: " + line)
        print("  in %s, logs in %s; commands:" % (res["cwd"], res["logs"]))
        for mode, cmd in res["commands"].items():
            shown = [os.path.basename(cmd[0])] + cmd[1:]
            extra = "PYTHONPATH=%s " % plugin_dir if mode == "memray-leaks" else ""
            print("    %-12s %s%s" % (mode, extra, " ".join(shown)))
    print()
    print("every run's figures: %s" % raw_path)


if __name__ == "__main__":
    main()
