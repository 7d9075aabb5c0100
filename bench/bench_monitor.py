"""Background monitoring and process memory, side by side with Pympler.

    pip install -r bench/requirements.txt     # Pympler, for comparison only
    python bench/bench_monitor.py [--seconds 10]

  slowdown   a CPU-bound Python loop with 100,000 tracked instances and
             start_periodic_snapshots(interval=0.1), default budget, against
             the same loop without a monitor (best of 3 each, fresh
             interpreters).  Target <= 5%.  Again at interval=0.05, where
             a snapshot of 100,000 objects costs more than the budget allows
             and the interval must stretch.
  monitor CPU the monitor thread's CPU time during the monitored runs, as a
             share of their wall time: what the budget bounds (the first
             snapshot, taken before any cost is known, comes on top).  On a
             shared machine this is steadier than the slowdown, whose
             best-of-3 runs vary by a few percent either way.
  cadence    snapshots taken in --seconds at interval=0.1 while the main
             thread runs Python code.  Target 100 +- 3 in 10 s.
  busy       snapshots taken in 3 s at interval=0.05 with nothing tracked,
             while the main thread runs a pure-Python loop (issue 13: 50-58
             when the monitor charged its waits for the GIL as cost).
             Target 60 +- 3, none stretched; median of 5 fresh interpreters.
  process    cost of reading the process's memory.  Target <= 20 us.
"""
import argparse
import json
import platform
import subprocess
import sys
import timeit

CHILD = r'''
import json, sys, time
impl, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
if impl == "pympler":
    from pympler.classtracker import ClassTracker
else:
    from classtrack.classtracker import ClassTracker

class Node:
    def __init__(self, i):
        self.value = i
        self.name = "node-%d" % i
        self.children = []

def work(n):
    x = 0
    for i in range(n):
        x += i * i % 7
    return x

out = {}
if mode == "slowdown":
    t = ClassTracker()
    t.track_class(Node)
    keep = [Node(i) for i in range(100000)]
    work(10**6)
    best = []
    share = []
    for monitored in (False, True, False, True, False, True):
        if monitored:
            t.start_periodic_snapshots(interval=interval)
            thread = t._periodic_thread
            time.sleep(0.01)
            cpu0 = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        t0 = time.perf_counter()
        work(int(seconds * 40 * 10**6))
        dt = time.perf_counter() - t0
        if monitored:
            cpu = time.clock_gettime(time.pthread_getcpuclockid(thread.ident)) - cpu0
            share.append(cpu / dt)
            t.stop_periodic_snapshots()
        best.append((monitored, dt))
    plain = min(dt for m, dt in best if not m)
    mon = min(dt for m, dt in best if m)
    out = {"plain": plain, "monitored": mon, "snapshots": len(t.snapshots),
           "share": max(share),
           "stretched": sum(bool(getattr(s, "stretched", False)) for s in t.snapshots)}
elif mode == "cadence":
    t = ClassTracker()
    t.track_class(Node)
    keep = [Node(i) for i in range(1000)]
    t.start_periodic_snapshots(interval=0.1)
    t0 = time.monotonic()
    x = 0
    while time.monotonic() - t0 < seconds:
        x += 1
    t.stop_periodic_snapshots()
    out = {"snapshots": len(t.snapshots)}
elif mode == "busy":
    t = ClassTracker()
    t.start_periodic_snapshots(interval=interval)
    end = time.monotonic() + seconds
    x = 0
    while True:
        for i in range(10000):
            x += i * i
        if time.monotonic() >= end:
            break
    t.stop_periodic_snapshots()
    out = {"snapshots": len(t.snapshots),
           "stretched": sum(bool(getattr(s, "stretched", False)) for s in t.snapshots)}
print(json.dumps(out))
'''


def run(impl, mode, seconds, interval=0.1):
    res = subprocess.run([sys.executable, "-c", CHILD, impl, mode, str(seconds),
                          str(interval)], capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def median_run(impl, mode, seconds, interval, runs=5):
    results = sorted((run(impl, mode, seconds, interval) for _ in range(runs)),
                     key=lambda r: r["snapshots"])
    return results[runs // 2], [r["snapshots"] for r in results]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    try:
        from pympler import process as pympler_process
    except ImportError:
        sys.exit("bench_monitor: Pympler is needed for the comparison: "
                 "pip install -r bench/requirements.txt")
    from classtrack import _core, process

    print("# Monitoring benchmark — Python %s on %s" % (platform.python_version(),
                                                       platform.machine()))
    print()
    impls = ("classtrack", "pympler")
    slow = {impl: run(impl, "slowdown", 1.0) for impl in impls}
    # (each timed run of the loop takes about 3 s)
    slow05 = {impl: run(impl, "slowdown", 1.0, 0.05) for impl in impls}
    cad = {impl: run(impl, "cadence", args.seconds) for impl in impls}
    busy = {impl: median_run(impl, "busy", 3.0, 0.05) for impl in impls}
    n = 20000
    t_core = timeit.timeit(_core.process_status, number=n) / n
    t_ct = timeit.timeit(process.ProcessMemoryInfo, number=n) / n
    t_py = timeit.timeit(pympler_process.ProcessMemoryInfo, number=n // 10) / (n // 10)

    def pct(r):
        return 100.0 * (r["monitored"] / r["plain"] - 1.0)

    print("| measure                                              | target   | classtrack | pympler |")
    print("|------------------------------------------------------|----------|-----------:|--------:|")
    print("| slowdown, 100k tracked, interval=0.1, default budget | <= 5%%    | %9.1f%% | %6.1f%% |"
          % (pct(slow["classtrack"]), pct(slow["pympler"])))
    print("| snapshots during that run                            |          | %10d | %7d |"
          % (slow["classtrack"]["snapshots"], slow["pympler"]["snapshots"]))
    print("| monitor thread's CPU share of that run               | <= 5%%    | %9.1f%% | %6.1f%% |"
          % (100 * slow["classtrack"]["share"], 100 * slow["pympler"]["share"]))
    print("| slowdown, 100k tracked, interval=0.05 (stretches)    | <= 5%%    | %9.1f%% | %6.1f%% |"
          % (pct(slow05["classtrack"]), pct(slow05["pympler"])))
    print("| snapshots during that run (stretched)                |          | %4d (%3d) | %7d |"
          % (slow05["classtrack"]["snapshots"], slow05["classtrack"]["stretched"],
             slow05["pympler"]["snapshots"]))
    print("| monitor thread's CPU share of that run               | <= 5%%    | %9.1f%% | %6.1f%% |"
          % (100 * slow05["classtrack"]["share"], 100 * slow05["pympler"]["share"]))
    print("| snapshots in %4.0f s at interval=0.1                   | %3.0f +- 3 | %10d | %7d |"
          % (args.seconds, args.seconds * 10, cad["classtrack"]["snapshots"],
             cad["pympler"]["snapshots"]))
    print("| %-52s |  60 +- 3 | %4d (%3d) | %7d |"
          % ("snapshots in 3 s at interval=0.05, busy main (stretched)",
             busy["classtrack"][0]["snapshots"], busy["classtrack"][0]["stretched"],
             busy["pympler"][0]["snapshots"]))
    print("| read process memory (C call), us                     | <= 20    | %10.1f |         |"
          % (t_core * 1e6))
    print("| ProcessMemoryInfo(), us                              | <= 20    | %10.1f | %7.1f |"
          % (t_ct * 1e6, t_py * 1e6))
    print()
    print("busy-main-thread runs (snapshots, sorted): classtrack %s, pympler %s"
          % (busy["classtrack"][1], busy["pympler"][1]))


if __name__ == "__main__":
    main()
