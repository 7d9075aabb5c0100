"""The HTML report at scale: size on disk and time to open each page.

    python bench/bench_html.py [--instances 1000000] [--snapshots 20] [--classes 10]

Builds a tracker with that many instances spread over the classes, takes
the snapshots, writes the report and measures its total size (target
< 10 MB) and, in headless chromium (selenium + chromium-driver), the time
each page takes to load (target < 2 s each).  Pympler's HTML report needs
matplotlib and breaks on current releases, so there is no side-by-side row.
"""
import argparse
import os
import platform
import shutil
import sys
import tempfile
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()

    from classtrack.classtracker import ClassTracker
    from classtrack.classtracker_stats import HtmlStats

    class Node:
        def __init__(self, i):
            self.value = i
            self.name = "node-%d" % i
            self.children = []

    classes = [type("Kind%d" % k, (Node,), {"__module__": "bench.app"})
               for k in range(args.classes)]
    t = ClassTracker()
    for c in classes:
        t.track_class(c)
    per_snap = args.instances // args.snapshots
    keep = []
    t0 = time.perf_counter()
    for s in range(args.snapshots):
        for j in range(per_snap):
            keep.append(classes[j % len(classes)](j))
        t.create_snapshot("step %d" % s)
    build = time.perf_counter() - t0
    out = tempfile.mkdtemp(prefix="classtrack-html-")
    index = os.path.join(out, "report.html")
    t0 = time.perf_counter()
    HtmlStats(tracker=t).create_html(index)
    render = time.perf_counter() - t0
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out) for f in fs)
    pages = [index] + sorted(os.path.join(out, "report_files", p)
                             for p in os.listdir(os.path.join(out, "report_files")))
    print("# HTML report benchmark — Python %s on %s" % (platform.python_version(),
                                                        platform.machine()))
    print()
    print("%d instances in %d classes, %d snapshots (built in %.1f s)"
          % (len(keep), args.classes, args.snapshots, build))
    print("report written in %.1f s: %d pages, %.2f MB in all (target < 10 MB)"
          % (render, len(pages), total / 1048576.0))
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if not (chromium and driver_path and webdriver):
        print("(no chromium/chromedriver/selenium: page load times not measured)")
        return
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    worst = 0.0
    try:
        print()
        print("| page | size | load time (s) |")
        print("|---|---:|---:|")
        for p in pages:
            t0 = time.perf_counter()
            driver.get("file://" + p)
            driver.execute_script("return document.readyState")
            dt = time.perf_counter() - t0
            worst = max(worst, dt)
            print("| %s | %.0f KB | %.2f |" % (os.path.basename(p), os.path.getsize(p) / 1024.0, dt))
    finally:
        driver.quit()
    print()
    print("slowest page: %.2f s (target < 2 s)" % worst)


if __name__ == "__main__":
    sys.exit(main())
