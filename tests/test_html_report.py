"""The HTML report: files, links, escaping, and a real headless browser."""
import os
import re
import shutil
import time

import pytest

from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import HtmlStats, Stats

EVIL = "<script>alert(1)</script>"
SCREENSHOTS = os.environ.get("CLASSTRACK_SCREENSHOTS", "/tmp/classtrack-screenshots")


class Node:
    def __init__(self, i=0):
        self.value = i * 1000 + 7
        self.name = "node-%d" % i
        self.children = []


class Evil:
    def __repr__(self):
        return EVIL


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    t = ClassTracker()
    classes = [type("Kind%d" % k, (Node,), {"__module__": "app.models"}) for k in range(22)]
    for c in classes:
        t.track_class(c, trace=True)
    t.track_class(Evil, name="evil.<b>Name</b>")
    t.track_class(Node, resolution_level=2)
    keep = []
    for step in range(6):
        for k, c in enumerate(classes):
            keep += [c(i) for i in range(3 * (k + 1))]
        keep += [Evil(), Node(step)]
        if step == 3:
            del keep[::2]
        t.create_snapshot("step <%d>" % step)
    fname = d / "report.html"
    HtmlStats(tracker=t).create_html(str(fname), title="Test & report")
    t.clear()
    return fname


def test_files_and_relative_links(report):
    folder = report.parent / "report_files"
    pages = sorted(os.listdir(folder))
    assert "app_models_Kind0.html" in pages and len(pages) == 24
    index = report.read_text()
    for page in pages:
        assert 'href="report_files/%s"' % page in index
    for page in pages:
        text = (folder / page).read_text()
        assert 'href="../report.html"' in text


def test_offline_and_escaped(report):
    folder = report.parent / "report_files"
    for path in [report] + [folder / p for p in os.listdir(folder)]:
        text = path.read_text()
        # nothing fetched from anywhere: the only URL is the SVG namespace
        urls = set(re.findall(r"https?://[^\s\"'<>]+", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path, urls)
        assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text)
        assert EVIL not in text and "<b>Name</b>" not in text
        assert text.count("<script>") == 1  # our sorting code only
    evil_page = (folder / "evil__b_Name__b_.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in evil_page
    assert "step &lt;0&gt;" in report.read_text()


def test_large_class_pages_are_bounded(tmp_path, tracker):
    t = tracker
    t.track_class(Node)
    objs = [Node(i) for i in range(20000)]
    t.create_snapshot()
    HtmlStats(tracker=t).create_html(str(tmp_path / "big.html"))
    page = (tmp_path / "big_files" / (Node.__module__.replace(".", "_") + "_Node.html")).read_text()
    assert page.count("<tr>") <= 101 + 1
    assert "Showing the 100 largest of 20000 instances" in page
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(tmp_path) for f in fs)
    assert total < 1_000_000
    t.clear()
    del objs


def test_charts_module(tmp_path):
    from classtrack import charts
    t = ClassTracker()
    t.track_class(Node)
    keep = [Node(i) for i in range(10)]
    t.create_snapshot()
    t.create_snapshot()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.warns(RuntimeWarning, match=r"pip install 'classtrack\[charts\]'"):
            charts.tracker_timespace(str(tmp_path / "t.png"), Stats(tracker=t))
        assert not (tmp_path / "t.png").exists()
    else:
        charts.tracker_timespace(str(tmp_path / "t.svg"), Stats(tracker=t))
        assert (tmp_path / "t.svg").stat().st_size > 1000
    t.clear()
    del keep


# -- in a real browser ------------------------------------------------------------------

def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if not (chromium and driver_path and webdriver):
        if os.environ.get("CI"):
            pytest.fail("CI must provide chromium, chromedriver and selenium")
        pytest.skip("needs chromium, chromedriver and selenium (CI installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600",
                "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the sanitizer pass preloads libasan into Python; not into the browser
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}
    return webdriver.Chrome(service=Service(driver_path, env=env), options=opts)


def _check_page(driver, path, shot):
    t0 = time.monotonic()
    driver.get("file://" + str(path))
    state = driver.execute_script("return document.readyState")
    assert state == "complete"
    assert time.monotonic() - t0 < 2.0, "page took too long to open"
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    sizes = driver.execute_script("""
        return Array.from(document.querySelectorAll('svg.chart')).map(function (s) {
          var r = s.getBoundingClientRect();
          var drawn = Array.from(s.querySelectorAll('rect.bar, polygon.area, polyline'))
            .filter(function (e) { var b = e.getBBox(); return b.width > 0 && b.height >= 0; });
          return [r.width, r.height, drawn.length];
        });""")
    assert sizes, "no chart on the page"
    for w, h, drawn in sizes:
        assert w > 100 and h > 100 and drawn > 0
    os.makedirs(SCREENSHOTS, exist_ok=True)
    driver.save_screenshot(os.path.join(SCREENSHOTS, shot))


def test_report_in_a_browser(report):
    driver = _browser()
    try:
        _check_page(driver, report, "index.png")
        # sort the classes table by instance count, descending then ascending
        def column(i):
            return driver.execute_script(
                "return Array.from(document.querySelectorAll('#classes tbody tr'))"
                ".map(function (r) { return parseFloat(r.cells[%d].getAttribute('data-v')); });" % i)
        header = driver.find_elements("css selector", "#classes th")[1]
        header.click()
        values = column(1)
        assert values == sorted(values, reverse=True)
        header.click()
        values = column(1)
        assert values == sorted(values)
        assert not driver.execute_script("return window.__alerted === true")
        # referent trees collapse and expand
        folder = report.parent / "report_files"
        _check_page(driver, folder / "app_models_Kind21.html", "class-page.png")
        node_page = folder / (Node.__module__.replace(".", "_") + "_Node.html")
        _check_page(driver, node_page, "class-with-tree.png")
        details = driver.find_elements("css selector", "#referents details")
        assert details and details[0].get_attribute("open") is not None
        driver.find_element("css selector", "#referents details > summary").click()
        assert details[0].get_attribute("open") is None
        # the evil repr shows as text and ran nothing
        evil = folder / "evil__b_Name__b_.html"
        driver.get("file://" + str(evil))
        assert EVIL in driver.find_element("css selector", "#instances").text
        assert not driver.get_log("browser")
    finally:
        driver.quit()


def test_axis_labels_do_not_overlap_in_a_browser(tmp_path, tracker):
    """Measured by the browser: on a short run with many snapshots, no two
    x-axis labels of a chart overlap, and no two read the same."""
    t = tracker
    t.track_class(Node)
    keep = []
    for i in range(22):
        keep.append(Node(i))
        t.create_snapshot("snapshot number %d" % i)
        time.sleep(0.001)
    fname = tmp_path / "short.html"
    HtmlStats(tracker=t).create_html(str(fname))
    t.clear()
    driver = _browser()
    try:
        driver.get("file://" + str(fname))
        charts = driver.execute_script("""
            return Array.from(document.querySelectorAll('svg.chart')).map(function (s) {
              return Array.from(s.querySelectorAll('g.ticks text[text-anchor="middle"]'))
                .filter(function (e) { return !e.getAttribute('fill'); })
                .map(function (e) { var r = e.getBoundingClientRect();
                                    return [r.left, r.right, e.textContent]; });
            });""")
    finally:
        driver.quit()
    time_axis = charts[0]
    assert len(time_axis) >= 3
    for labels in charts:
        labels.sort()
        for (l0, r0, a), (l1, r1, b) in zip(labels, labels[1:]):
            assert r0 <= l1, (a, b, labels)
    texts = [x for _, _, x in time_axis]
    assert len(set(texts)) == len(texts), texts
