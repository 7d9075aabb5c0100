"""Whole-program overhead on a real program nobody here wrote.

    pip install -r bench/requirements.txt        # pyflakes, memray (bench only)
    python bench/bench_program.py [--rounds 7] [--packages json email asyncio]

Workload: pyflakes checking a few stdlib packages (their source files), run

  plain       python -m pyflakes DIRS
  classtrack  python -m classtrack run --track-mine --track-package pyflakes
              -o DUMP -m pyflakes DIRS        (default interval: 1 s)
  memray      python -m memray run -o OUT -m pyflakes DIRS

Each variant runs `--rounds` times, interleaved; the figures are the
median wall time and median CPU time (user + system, of the child; less
disturbed by other load on the machine) and their ratios to plain.  Target: classtrack <= 1.10x (goal
1.05x); memray is the anchor.  Also printed: how many classes and
instances the classtrack run tracked.
"""
import argparse
import compileall
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--packages", nargs="+", default=["json", "email", "asyncio", "http", "xml", "logging", "unittest", "multiprocessing", "importlib", "concurrent"])
    args = parser.parse_args()
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
