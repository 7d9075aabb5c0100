"""Whole-program overhead on a real program nobody here wrote.

    pip install -r bench/requirements.txt        # pyflakes, memray (bench only)
    python bench/bench_program.py [--rounds 7] [--packages json email asyncio]
    python bench/bench_program.py --workload sphinx [--rounds 3] [--work DIR]
                                  [--classtrack-src PATH] [--keep-dumps]

Two workloads (--workload, default pyflakes).

pyflakes: pyflakes checking a few stdlib packages (their source files), run

  plain       python -m pyflakes DIRS
  classtrack  python -m classtrack run --track-mine --track-package pyflakes
              -o DUMP -m pyflakes DIRS        (default interval: 1 s)
  memray      python -m memray run -o OUT -m pyflakes DIRS

Each variant runs `--rounds` times, interleaved; the figures are the
median wall time and median CPU time (user + system, of the child; less
disturbed by other load on the machine) and their ratios to plain.  Target: classtrack <= 1.10x (goal
1.05x); memray is the anchor.  Also printed: how many classes and
instances the classtrack run tracked.

sphinx: sphinx-build making the HTML of Sphinx's own documentation (the
doc/ folder of the sphinx 9.0.4 sdist, less its changelog, changes/;
intersphinx off: no network during the build; its autodoc pages import
sphinx modules again, SPHINX_AUTODOC_RELOAD_MODULES, as the real build
does), about 15-20 s of CPU time.  Needs network access to the package
index the first time: a venv of its own under --work (default
/tmp/classtrack-bench-program) holds sphinx 9.0.4, memray 1.20.0 and
classtrack, built from a copy of --classtrack-src's src/ and packaging
files (as bench_pytest.py does, with its functions: nothing is written
into the checkout; a working tree with changes is measured as it is).
The venv is reused while those files are unchanged.  Each run writes into
a fresh output folder (-E); --variants adds classtrack-i0 (--interval 0),
classtrack-sphinx (--track-package sphinx only) and classtrack-b05
(--budget 0.05, the monitor's share before the default became 0.03):

  plain       python -m sphinx -b html -q -E -D exclude_patterns=... SRC OUT
  classtrack  python -m classtrack run --track-package sphinx
              --track-package docutils -o DUMP -m sphinx -b html ...
  memray      python -m memray run -q -f -o OUT.bin -m sphinx -b html ...

Each variant runs once untimed, then --rounds times, the order rotated
each round; the figures are the medians of wall time, CPU time (user +
system of the child) and max RSS (ru_maxrss of the child, os.wait4), and
their ratios to plain.  Target: classtrack <= 1.15x wall time and
<= 1.20x max RSS.  Also printed: the 1-minute load average before the
runs, and the classes and instances the classtrack run tracked (from
`classtrack report DUMP --json`, run in the venv).
"""
import argparse
import compileall
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# -- sphinx workload -----------------------------------------------------------------
# Pinned: the versions found on the index when this workload was written.
SPHINX_VERSION = "9.0.4"
MEMRAY_VERSION = "1.20.0"
SPHINX_TARGET_WALL = 1.15
SPHINX_TARGET_RSS = 1.20
# conf.py of the sdist's doc/ asks intersphinx for four inventories over the
# network: none here.  The changelog (changes/, about a quarter of the
# build) is left out to keep a run near 15 s of CPU time.
SPHINX_CONF_APPEND = """
# bench_program: offline, no inventories fetched
intersphinx_mapping = {}
"""
SPHINX_EXCLUDE = "_build,changes"
SPHINX_VARIANTS = {
    "plain": None,
    "classtrack": ["--track-package", "sphinx", "--track-package", "docutils"],
    "memray": None,
    "classtrack-i0": ["--interval", "0", "--track-package", "sphinx",
                      "--track-package", "docutils"],
    "classtrack-sphinx": ["--track-package", "sphinx"],
    "classtrack-b05": ["--budget", "0.05", "--track-package", "sphinx",
                       "--track-package", "docutils"],
}


def log(msg):
    print("bench_program: " + msg, file=sys.stderr, flush=True)


def sphinx_venv(work, ct):
    """The venv: sphinx, memray and classtrack (a copy of the source tree,
    keyed by its files' contents); reused while those are unchanged."""
    pyver = "%d.%d.%d" % sys.version_info[:3]
    venv = os.path.join(work, "venvs", "sphinx%s-%s-%s" % (SPHINX_VERSION, pyver, ct["state"]))
    vpy = os.path.join(venv, "bin", "python")
    notes_path = os.path.join(venv, "bench-notes.json")
    if os.path.exists(notes_path):
        with open(notes_path) as fh:
            return vpy, json.load(fh)
    log("making the venv %s (sphinx %s, memray %s, classtrack from %s)"
        % (venv, SPHINX_VERSION, MEMRAY_VERSION, ct["copy"]))
    os.makedirs(os.path.dirname(venv), exist_ok=True)
    res = subprocess.run([sys.executable, "-m", "venv", "--clear", venv],
                         capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit("bench_program: venv failed:\n%s" % res.stderr[-2000:])
    res = subprocess.run([vpy, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "sphinx==" + SPHINX_VERSION, "memray==" + MEMRAY_VERSION, ct["copy"]],
                         capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit("bench_program: installing sphinx, memray and classtrack failed:\n%s"
                 % res.stderr[-3000:])
    res = subprocess.run([vpy, "-c", "import json, importlib.metadata as m; print(json.dumps("
                          "{d.metadata['Name'].lower(): d.version for d in m.distributions()}))"],
                         capture_output=True, text=True, check=True)
    notes = {"versions": json.loads(res.stdout)}
    with open(notes_path, "w") as fh:
        json.dump(notes, fh)
    return vpy, notes


def sphinx_docs(work):
    """Sphinx's doc/ folder from its sdist, extracted afresh, made offline."""
    import tarfile
    cache = os.path.join(work, "sdists")
    os.makedirs(cache, exist_ok=True)
    name = "sphinx-%s.tar.gz" % SPHINX_VERSION
    sdist = os.path.join(cache, name)
    if not os.path.exists(sdist):
        log("downloading the sphinx %s sdist" % SPHINX_VERSION)
        res = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                              "--no-binary", ":all:", "-d", cache, "sphinx==" + SPHINX_VERSION],
                             capture_output=True, text=True)
        if res.returncode != 0 or not os.path.exists(sdist):
            sys.exit("bench_program: pip download sphinx==%s failed:\n%s"
                     % (SPHINX_VERSION, res.stderr[-3000:]))
    dest = os.path.join(work, "runs")
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    prefix = "sphinx-%s/doc/" % SPHINX_VERSION
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:
            tar.extractall(dest, members=members)
    src = os.path.join(dest, prefix.rstrip("/"))
    with open(os.path.join(src, "conf.py"), "a") as fh:
        fh.write(SPHINX_CONF_APPEND)
    return src, os.path.join(dest, "out")


def run_child(cmd, env, logfile):
    """wall seconds, CPU seconds, max RSS bytes, exit status of one run."""
    with open(logfile, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)


def sphinx_bench(args) -> None:
    sys.path.insert(0, HERE)
    import bench_pytest     # its classtrack copy (files, key, description)
    rounds = args.rounds or 3
    names = args.variants or ["plain", "classtrack", "memray"]
    names = ["plain"] + [n for n in dict.fromkeys(names) if n != "plain"]
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    src = os.path.abspath(args.classtrack_src)
    if not os.path.exists(os.path.join(src, "setup.py")):
        sys.exit("bench_program: %s is not a classtrack source tree" % src)
    state, files = bench_pytest.classtrack_state(src)
    ct = {"state": state, "describe": bench_pytest.classtrack_describe(src),
          "copy": bench_pytest.copy_classtrack(src, files,
                                               os.path.join(work, "classtrack-src-" + state))}
    vpy, notes = sphinx_venv(work, ct)
    docs, out = sphinx_docs(work)
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONMALLOC", "PYTHONTRACEMALLOC",
                "PYTHONDEVMODE"):
        env.pop(var, None)
    build = ["-m", "sphinx", "-b", "html", "-q", "-E", "-D", "exclude_patterns=" + SPHINX_EXCLUDE,
             docs, out]
    dumps = {n: os.path.join(work, "%s.ctdump" % n) for n in names}
    commands = {}
    for n in names:
        if n == "plain":
            commands[n] = [vpy] + build
        elif n == "memray":
            commands[n] = [vpy, "-m", "memray", "run", "-q", "-f",
                           "-o", os.path.join(work, "sphinx.bin")] + build
        else:
            commands[n] = ([vpy, "-m", "classtrack", "run"] + SPHINX_VARIANTS[n]
                           + ["-o", dumps[n]] + build)
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    rss = {n: [] for n in names}
    warnings = {n: set() for n in names}
    loads = []
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())

    def one(n, label):
        if os.path.exists(out):
            shutil.rmtree(out)
        logfile = os.path.join(logs, "%s-%s.log" % (n, label))
        w, c, m, code = run_child(commands[n], env, logfile)
        if code != 0:
            with open(logfile, errors="replace") as fh:
                sys.exit("bench_program: sphinx %s exited %d; see %s:\n%s"
                         % (n, code, logfile, fh.read()[-2000:]))
        with open(logfile, errors="replace") as fh:
            warnings[n].add(sum(1 for line in fh if "WARNING:" in line))
        return w, c, m

    for n in names:     # untimed: disk cache, .pyc files
        log("untimed %s run" % n)
        one(n, "untimed")
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            log("round %d/%d, %s" % (r + 1, rounds, n))
            loads.append(os.getloadavg()[0])
            w, c, m = one(n, "timed")
            wall[n].append(w)
            cpu[n].append(c)
            rss[n].append(m)
    tracked = {}
    for n in names:
        if not n.startswith("classtrack"):
            continue
        res = subprocess.run([vpy, "-m", "classtrack", "report", dumps[n], "--json"],
                             capture_output=True, text=True, env=env)
        if res.returncode != 0:
            sys.exit("bench_program: classtrack report %s failed:\n%s"
                     % (dumps[n], res.stderr[-2000:]))
        doc = json.loads(res.stdout)
        tracked[n] = (len(doc["classes"]), sum(c["instances"] for c in doc["classes"]),
                      len(doc["snapshots"]), doc.get("classes_without_instances"),
                      os.path.getsize(dumps[n]))
        if not args.keep_dumps:
            os.remove(dumps[n])
    for leftover in (out, os.path.join(work, "sphinx.bin")):
        if os.path.isdir(leftover):
            shutil.rmtree(leftover)
        elif os.path.exists(leftover):
            os.remove(leftover)
    med = {k: {n: statistics.median(v[n]) for n in names}
           for k, v in (("wall", wall), ("cpu", cpu), ("rss", rss))}
    raw_path = os.path.join(work, "results-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(raw_path, "w") as fh:
        json.dump({"started": started, "classtrack": ct["describe"], "rounds": rounds,
                   "commands": commands, "wall": wall, "cpu": cpu, "rss": rss,
                   "loads": loads, "tracked": tracked}, fh, indent=1)
    v = notes["versions"]
    print("# whole-program overhead -- sphinx-build on Sphinx %s's docs, Python %s on %s, "
          "%d CPUs, %d round%s, medians; started %s"
          % (SPHINX_VERSION, platform.python_version(), platform.machine(),
             os.cpu_count() or 0, rounds, "" if rounds == 1 else "s", started))
    print()
    print("classtrack: %s (built from a copy, tree key %s); sphinx %s, docutils %s, memray %s"
          % (ct["describe"], state, v.get("sphinx"), v.get("docutils"), v.get("memray")))
    print()
    print("| variant | wall | ratio | CPU | ratio | max RSS | ratio | target |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for n in names:
        target = ""
        if n.startswith("classtrack"):
            target = "wall <= %.2fx, RSS <= %.2fx" % (SPHINX_TARGET_WALL, SPHINX_TARGET_RSS)
        mark_w = " !" if n.startswith("classtrack") and \
            med["wall"][n] / med["wall"]["plain"] > SPHINX_TARGET_WALL else ""
        mark_r = " !" if n.startswith("classtrack") and \
            med["rss"][n] / med["rss"]["plain"] > SPHINX_TARGET_RSS else ""
        print("| %s | %.2f s | %.2fx%s | %.2f s | %.2fx | %.1f MB | %.2fx%s | %s |"
              % (n, med["wall"][n], med["wall"][n] / med["wall"]["plain"], mark_w,
                 med["cpu"][n], med["cpu"][n] / med["cpu"]["plain"],
                 med["rss"][n] / 1e6, med["rss"][n] / med["rss"]["plain"], mark_r, target))
    print()
    print("! above the target.  CPU time is user + system of the child, less disturbed "
          "by other load than wall time.")
    print("1-minute load average before each timed run: %.2f-%.2f (median %.2f; this "
          "bench's own run adds about 1)" % (min(loads), max(loads), statistics.median(loads)))
    print("wall ratio to plain, round by round: " + ", ".join(
        "%s %s" % (n, "/".join("%.2f" % (a / b) for a, b in zip(wall[n], wall["plain"])))
        for n in names if n != "plain"))
    print("CPU ratio to plain, round by round: " + ", ".join(
        "%s %s" % (n, "/".join("%.2f" % (a / b) for a, b in zip(cpu[n], cpu["plain"])))
        for n in names if n != "plain"))
    print("max RSS min-max: " + ", ".join(
        "%s %.0f-%.0f MB" % (n, min(rss[n]) / 1e6, max(rss[n]) / 1e6) for n in names))
    for n, (ncls, ninst, nsnap, without, size) in tracked.items():
        print("%s tracked %s instances of %s classes%s, %d snapshots, dump %.1f MB"
              % (n, format(ninst, ","), format(ncls, ","),
                 "" if without is None else " (%s more tracked classes made none)"
                 % format(without, ","), nsnap, size / 1e6))
    counts = {n: sorted(w) for n, w in warnings.items()}
    if len({tuple(c) for c in counts.values()}) > 1:
        print("warnings printed by sphinx differ between variants: %s" % counts)
    else:
        print("sphinx printed %s warnings in every run (the sdist's docs, offline, without "
              "graphviz; the same in every variant)" % "/".join(map(str, counts["plain"])))
    print("logs in %s; every run's figures: %s; commands:" % (logs, raw_path))
    for n in names:
        print("  %-17s %s" % (n, " ".join(commands[n])))



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=["pyflakes", "sphinx"], default="pyflakes")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed runs of each variant (default: pyflakes 7, sphinx 3)")
    parser.add_argument("--packages", nargs="+", default=["json", "email", "asyncio", "http", "xml", "logging", "unittest", "multiprocessing", "importlib", "concurrent"],
                        help="pyflakes: the stdlib packages it checks")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(),
                                                       "classtrack-bench-program"),
                        help="sphinx: sdist, venvs, runs and logs (default: %(default)s)")
    parser.add_argument("--classtrack-src", default=ROOT,
                        help="sphinx: classtrack source tree to build (default: %(default)s)")
    parser.add_argument("--variants", nargs="+", default=None, choices=list(SPHINX_VARIANTS),
                        help="sphinx: the variants to run (default: plain classtrack memray); "
                             "classtrack-i0 is --interval 0 (snapshots at start and exit "
                             "only), classtrack-sphinx tracks the sphinx package only, "
                             "classtrack-b05 gives the monitor a 5%% share (the default is 3%%)")
    parser.add_argument("--keep-dumps", action="store_true",
                        help="sphinx: keep the last classtrack dump of each variant in --work")
    args = parser.parse_args()
    if args.workload == "sphinx":
        sphinx_bench(args)
        return
    if args.rounds is None:
        args.rounds = 7
    for mod in ("pyflakes", "memray"):
        try:
            __import__(mod)
        except ImportError:
            sys.exit("bench_program: %s is needed: pip install -r bench/requirements.txt" % mod)
    stdlib = sysconfig.get_paths()["stdlib"]
    dirs = [os.path.join(stdlib, p) for p in args.packages]
    tmp = tempfile.mkdtemp(prefix="ct-bench-program-")
    dump = os.path.join(tmp, "pf.ctdump")
    variants = {
        "plain": [sys.executable, "-m", "pyflakes"] + dirs,
        "classtrack": [sys.executable, "-m", "classtrack", "run", "--track-mine",
                       "--track-package", "pyflakes", "-o", dump, "-m", "pyflakes"] + dirs,
        "memray": [sys.executable, "-m", "memray", "run", "-q", "-f",
                   "-o", os.path.join(tmp, "pf.bin"), "-m", "pyflakes"] + dirs,
    }
    # classtrack as a user has it: pip compiles an installed package's
    # modules; run from a source tree (or with PYTHONDONTWRITEBYTECODE set,
    # as on the CI machines) every run would compile them again (~40 ms,
    # which pyflakes and memray, installed, never pay)
    import classtrack
    compileall.compile_dir(os.path.dirname(classtrack.__file__), quiet=1)
    times = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    try:
        for name, cmd in variants.items():      # warm-up: disk cache, not timed
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(args.rounds):
            for name, cmd in variants.items():
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True)
                times[name].append(time.perf_counter() - t0)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
                # pyflakes exits 1 when it reports warnings: that is its normal result
                if proc.returncode not in (0, 1):
                    sys.exit("%s failed (%d): %s" % (name, proc.returncode, proc.stderr[-2000:]))
        from classtrack.classtracker_stats import Stats
        stats = Stats(filename=dump)
        tracked = (len(stats.index), sum(len(v) for v in stats.index.values()),
                   len(stats.snapshots))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    print("# whole-program overhead — Python %s on %s, pyflakes over %s, %d rounds"
          % (platform.python_version(), platform.machine(), " ".join(args.packages),
             args.rounds))
    print()
    print("| variant    | median wall time | ratio to plain | median CPU time | ratio | target |")
    print("|------------|-----------------:|---------------:|----------------:|------:|--------|")
    for name in variants:
        target = "<=1.10x (goal 1.05x)" if name == "classtrack" else ""
        print("| %-10s | %14.3f s | %13.2fx | %13.3f s | %4.2fx | %s |"
              % (name, med[name], med[name] / med["plain"], mcpu[name],
                 mcpu[name] / mcpu["plain"], target))
    print()
    print("classtrack tracked %d classes, %d instances, %d snapshots" % tracked)


if __name__ == "__main__":
    main()
