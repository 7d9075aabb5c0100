"""The pytest plugin, run as a user runs it: pytest in a subprocess over a
small project with a real leak (a module-level cache) and a non-leak."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

APP = '''
class Session:
    def __init__(self, user):
        self.user = user
        self.data = [0] * 100

class Admin(Session):
    pass

class Other:
    pass

CACHE = {}

def login(user):
    s = Session(user)
    CACHE[user] = s
    return s

def login_clean(user):
    return Session(user)
'''

TESTS = '''
import gc
import pytest
import app

@pytest.mark.limit_instances("app.Session", 0)
def test_leaks():
    app.login("bob")

@pytest.mark.limit_instances(app.Session, 0)    # a class needs n: alone it would be decorated
def test_clean():
    s = app.login_clean("alice")
    cycle = [s]
    cycle.append(cycle)             # garbage in a cycle: gc.collect frees it
    assert s.user == "alice"

@pytest.mark.limit_instances("app:Session", 1)
def test_one_allowed():
    app.CACHE["x"] = app.Admin("x")

@pytest.mark.limit_instances("app.Session", 1)
def test_subclass_counts():
    app.CACHE["y"] = app.Admin("y")
    app.CACHE["z"] = app.Session("z")

@pytest.mark.limit_instances("app.Session")
@pytest.mark.limit_instances("app.Other")
def test_two_markers():
    app.CACHE["o"] = app.Other()

@pytest.fixture
def holder():
    box = []
    yield box
    box.clear()                     # the fixture lets go at teardown

@pytest.mark.limit_instances("app.Session")
def test_fixture_lets_go(holder):
    holder.append(app.Session("f"))

existing = app.Session("before")

@pytest.mark.limit_instances("app.Session")
def test_older_instances_do_not_count():
    app.CACHE["old"] = existing
'''


def run_pytest(tmp_path, *args, tests=TESTS):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "test_app.py").write_text(tests)
    env = dict(os.environ)
    # the plugin by name, whether or not the package is installed (then its
    # entry point would load it too)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path)] + [p for p in sys.path if p and os.path.isdir(p)])
    env.pop("COLUMNS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "classtrack.pytest_plugin", "-p",
         "no:cacheprovider", "-rA", "test_app.py"] + list(args),
        cwd=str(tmp_path), capture_output=True, text=True, timeout=300, env=env)


def outcomes(out):
    """nodeid -> PASSED / FAILED / ERROR from -rA's summary."""
    got = {}
    for m in re.finditer(r"^(PASSED|FAILED|ERROR) test_app\.py::(\w+)", out, re.M):
        got.setdefault(m.group(2), set()).add(m.group(1))
    return got


def test_marker_catches_a_leak_and_passes_a_non_leak(tmp_path):
    r = run_pytest(tmp_path)
    got = outcomes(r.stdout)
    # a leak fails the test itself, once (not a pass plus an error at teardown)
    assert got["test_leaks"] == {"FAILED"}, r.stdout
    assert got["test_clean"] == {"PASSED"}, r.stdout
    assert got["test_one_allowed"] == {"PASSED"}, r.stdout
    assert got["test_subclass_counts"] == {"FAILED"}, r.stdout     # Admin is a Session
    assert got["test_two_markers"] == {"FAILED"}, r.stdout
    assert got["test_fixture_lets_go"] == {"PASSED"}, r.stdout
    assert got["test_older_instances_do_not_count"] == {"PASSED"}, r.stdout
    assert "3 failed, 4 passed in" in r.stdout and "error" not in r.stdout.lower()
    assert r.returncode == 1
    # the message: how many, of what, and why one of them is alive
    assert ("limit_instances: 1 instance of app.Session created during the test "
            "is still alive after it (limit 0;") in r.stdout
    assert "module app -> dict['CACHE'] -> dict['bob'] -> app.Session" in r.stdout
    assert "2 instances of app.Session" in r.stdout
    assert "1 instance of app.Other" in r.stdout


def test_bad_marker_arguments_fail_clearly(tmp_path):
    tests = '''
import pytest

@pytest.mark.limit_instances("app.Nope")
def test_no_such_class():
    pass

@pytest.mark.limit_instances("nosuchmodule.Session")
def test_no_such_module():
    pass

@pytest.mark.limit_instances("app.CACHE")
def test_not_a_class():
    pass

@pytest.mark.limit_instances("app.Session", -1)
def test_negative():
    pass

@pytest.mark.limit_instances(int, 0)
def test_c_class():
    pass
'''
    r = run_pytest(tmp_path, tests=tests)
    got = outcomes(r.stdout)
    assert all(v == {"FAILED"} for v in got.values()) and len(got) == 5, r.stdout
    assert "module 'app' has no class 'Nope'" in r.stdout
    assert "cannot import a module for 'nosuchmodule.Session'" in r.stdout
    assert "'app.CACHE' is dict, not a class" in r.stdout
    assert "n must be an int >= 0, not -1" in r.stdout
    assert "implemented in C" in r.stdout
    assert "Traceback" not in r.stdout and "INTERNALERROR" not in r.stdout


def test_a_failing_test_is_not_judged(tmp_path):
    tests = '''
import pytest, app

@pytest.mark.limit_instances("app.Session")
def test_fails():
    s = app.Session("z")
    assert s is None
'''
    r = run_pytest(tmp_path, tests=tests)
    assert outcomes(r.stdout) == {"test_fails": {"FAILED"}}, r.stdout
    assert "limit_instances:" not in r.stdout
    # its own failure first, then why the survivors were not judged
    out = r.stdout
    assert out.index("assert s is None") < out.index("the survivors of this test were not "
                                                     "judged")


def test_session_leak_table(tmp_path):
    r = run_pytest(tmp_path, "--classtrack=app")
    out = r.stdout
    table = out[out.index("classtrack: instances alive after their test"):]
    rows = re.findall(r"^test_app\.py::(\w+)\s+(app\.\w+)\s+(\d+)\s+([\d,]+)$", table, re.M)
    got = {(t, c): int(n) for t, c, n, _ in rows}
    assert got == {
        ("test_leaks", "app.Session"): 1,
        ("test_one_allowed", "app.Admin"): 1,
        ("test_subclass_counts", "app.Admin"): 1,
        ("test_subclass_counts", "app.Session"): 1,
        ("test_two_markers", "app.Other"): 1,
    }, table
    # bytes are the instances' real sizes
    sizes = {(t, c): int(b.replace(",", "")) for t, c, _, b in rows}
    assert sizes[("test_leaks", "app.Session")] > 800      # its 100-item list
    assert "why alive: module app -> dict['CACHE'] -> dict['bob'] -> app.Session" in table
    assert "4 of 7 tests left instances of 3 tracked classes alive" in table


def test_session_table_when_nothing_leaks(tmp_path):
    tests = '''
import app

def test_clean():
    assert app.login_clean("a").user == "a"
'''
    r = run_pytest(tmp_path, "--classtrack=app", tests=tests)
    assert r.returncode == 0, r.stdout
    assert "no instance of the 3 tracked classes (app) outlived its test (1 tests)" in r.stdout


def test_session_table_old_cycles_and_later_verdicts(tmp_path):
    # Sessions in a cycle that were moved to the oldest generation while the
    # test held them: a young collection after the test leaves them, only a
    # full one frees them.  They must not be listed, while real leaks of the
    # tests around them are, each under its own test, also when the verdicts
    # of several tests wait for one full collection.
    tests = '''
import gc
import app

def _cycle(user):
    s = app.Session(user)
    s.me = s
    return s

def test_00_leak():
    app.login("first")

''' + "".join('''
def test_%02d_old_cycle():
    held = [_cycle("c%d") for _ in range(5)]
    gc.collect()            # they are now in the oldest generation
    del held

def test_%02d_leak():
    app.login("k%d")
''' % (2 * i + 1, i, 2 * i + 2, i) for i in range(20))
    r = run_pytest(tmp_path, "--classtrack=app", tests=tests)
    out = r.stdout
    assert r.returncode == 0, out
    table = out[out.index("classtrack: instances alive after their test"):]
    rows = re.findall(r"^test_app\.py::(\w+)\s+(app\.\w+)\s+(\d+)\s+[\d,]+$", table, re.M)
    assert sorted(rows) == sorted([("test_00_leak", "app.Session", "1")] + [
        ("test_%02d_leak" % (2 * i + 2), "app.Session", "1") for i in range(20)]), table
    assert "21 of 41 tests left instances of 3 tracked classes alive" in table
    # the first why_alive paths name each test's own leak
    assert "why alive: module app -> dict['CACHE'] -> dict['first'] -> app.Session" in table
    assert "dict['k0'] -> app.Session" in table


def test_session_option_rejects_a_bad_name(tmp_path):
    r = run_pytest(tmp_path, "--classtrack=not a module")
    assert r.returncode != 0
    assert "--classtrack: track_package needs a dotted module name" in r.stderr + r.stdout


def test_plugin_is_inert_until_asked():
    # every pytest run of anyone with classtrack installed loads the plugin:
    # loading it, and a session that uses neither marker nor option, must
    # change nothing in the interpreter
    code = textwrap.dedent("""
        import builtins, gc, sys, threading
        before = (builtins.__build_class__, list(sys.meta_path), list(gc.callbacks),
                  sys.getprofile(), sys.gettrace(), threading.active_count())
        import pytest
        import classtrack.pytest_plugin
        rc = pytest.main(["-q", "-p", "no:cacheprovider", sys.argv[1]])
        after = (builtins.__build_class__, list(sys.meta_path), list(gc.callbacks),
                 sys.getprofile(), sys.gettrace(), threading.active_count())
        print("SAME" if before == after else "CHANGED %r %r" % (before, after), int(rc))
    """)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        test = os.path.join(d, "test_x.py")
        with open(test, "w") as f:
            f.write("class A:\n    pass\n\ndef test_a():\n    assert A()\n")
        r = subprocess.run([sys.executable, "-c", code, test], capture_output=True,
                           text=True, timeout=120, cwd=d)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "SAME 0", r.stdout


def test_entry_point_registered():
    """Installed with the package (pip install), pytest finds the plugin
    through its pytest11 entry point."""
    from importlib import metadata
    try:
        dist = metadata.distribution("classtrack")
    except metadata.PackageNotFoundError:
        pytest.fail("classtrack is not installed: run the tests after 'pip install .'")
    eps = [ep for ep in dist.entry_points if ep.group == "pytest11"]
    assert [(ep.name, ep.value) for ep in eps] == [("classtrack", "classtrack.pytest_plugin")]


def test_a_leak_is_one_failure(tmp_path):
    tests = '''
import pytest, app

@pytest.mark.limit_instances("app.Session", 0)
def test_leaks():
    app.login("carol")

@pytest.mark.limit_instances("app.Session", 0)
def test_clean():
    assert app.login_clean("dave").user == "dave"
'''
    r = run_pytest(tmp_path, "-q", tests=tests)
    assert r.returncode == 1
    assert r.stdout.strip().splitlines()[-1].startswith("1 failed, 1 passed in"), r.stdout
    assert outcomes(r.stdout) == {"test_leaks": {"FAILED"}, "test_clean": {"PASSED"}}


PKG = {
    "shop/__init__.py": "",
    "shop/models.py": '''
class Cart:
    def __init__(self):
        self.items = list(range(50))

class Order:
    def __init__(self, tag):
        self.tag = tag

REGISTRY = []
''',
    "shop/billing/__init__.py": "",
    "shop/billing/invoice.py": '''
class Invoice:
    pass

SENT = []
''',
    "shop/late.py": '''
class Late:
    pass

KEEP = []
''',
}

PKG_TESTS = '''
import pytest
from shop import models
from shop.billing import invoice

@pytest.mark.limit_instances(package="shop")
def test_subpackage_leak():
    invoice.SENT.append(invoice.Invoice())      # a class no marker names
    models.Cart()                               # dies at once

@pytest.mark.limit_instances(package="shop")
def test_imported_during_the_test():
    from shop import late
    late.KEEP.append(late.Late())

@pytest.mark.limit_instances(package="shop", filter_fn=lambda o: getattr(o, "tag", "") != "cached")
def test_filter_ignores_expected():
    models.REGISTRY.append(models.Order("cached"))

@pytest.mark.limit_instances(package="shop", filter_fn=lambda o: getattr(o, "tag", "") != "cached")
def test_filter_keeps_the_rest():
    models.REGISTRY.append(models.Order("cached"))
    models.REGISTRY.append(models.Order("lost"))
    models.REGISTRY.append(models.Cart())

@pytest.mark.limit_instances(package="shop", n=1)
def test_within_n():
    models.REGISTRY.append(models.Cart())

@pytest.mark.limit_instances(package="shop")
def test_clean():
    cart = models.Cart()
    cycle = [cart]
    cycle.append(cycle)

@pytest.mark.limit_instances(package="nosuchpackage")
def test_bad_package():
    pass

@pytest.mark.limit_instances(package="shop", filter_fn=3)
def test_bad_filter():
    pass
'''


def test_package_wide_marker(tmp_path):
    for name, text in PKG.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    r = run_pytest(tmp_path, tests=PKG_TESTS)
    got = outcomes(r.stdout)
    assert got == {
        "test_subpackage_leak": {"FAILED"},
        "test_imported_during_the_test": {"FAILED"},
        "test_filter_ignores_expected": {"PASSED"},
        "test_filter_keeps_the_rest": {"FAILED"},
        "test_within_n": {"PASSED"},
        "test_clean": {"PASSED"},
        "test_bad_package": {"FAILED"},
        "test_bad_filter": {"FAILED"},
    }, r.stdout
    out = r.stdout
    assert ("limit_instances: 1 instance of package shop created during the test is still "
            "alive after it") in out
    assert "shop.billing.invoice.Invoice: 1," in out
    assert "module shop.billing.invoice -> dict['SENT'] -> list[0] -> " \
           "shop.billing.invoice.Invoice" in out
    assert "shop.late.Late: 1," in out
    # grouped by class, each with its count, bytes and one path
    section = out[out.index("_ test_filter_keeps_the_rest _"):]
    section = section[:section.index("\n_")] if "\n_" in section else section
    assert "2 instances of package shop" in section
    assert "shop.models.Order: 1," in section and "shop.models.Cart: 1," in section
    assert section.count("why one of them is alive") == 2
    assert "limit_instances: no module named 'nosuchpackage'" in out
    assert "filter_fn must be callable, not 3" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out


def test_unknown_session_name_is_a_warning_and_costs_no_collection(tmp_path):
    tests = '''
import gc, app

def test_a():
    app.login_clean("a")

def test_b():
    app.login_clean("b")

def test_c():
    app.login_clean("c")

def test_count():
    pass
'''
    conftest = '''
import gc
FULL = []
gc.callbacks.append(lambda phase, info: FULL.append(info["generation"])
                    if phase == "start" and info["generation"] == 2 else None)

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line("FULL COLLECTIONS %d" % len(FULL))
'''
    (tmp_path / "conftest.py").write_text(conftest)
    plain = run_pytest(tmp_path, tests=tests)
    ours = run_pytest(tmp_path, "--classtrack=nosuchpkg", "--classtrack=app", tests=tests)
    assert plain.returncode == ours.returncode == 0, ours.stdout
    assert "--classtrack=nosuchpkg: no module of that name" in ours.stdout
    count = lambda out: int(re.search(r"FULL COLLECTIONS (\d+)", out).group(1))
    # nothing tracked survived a test: no gc.collect() was needed
    assert count(ours.stdout) == count(plain.stdout), (plain.stdout, ours.stdout)
    assert "no instance of the 3 tracked classes (app) outlived its test (4 tests)" \
        in ours.stdout


@pytest.mark.skipif(not __import__("importlib").util.find_spec("xdist"),
                    reason="needs pytest-xdist (in the test extras)")
def test_xdist_prints_one_merged_table_and_markers_work(tmp_path):
    env_plugins = ("-p", "xdist.plugin", "-n", "2")
    r = run_pytest(tmp_path, "--classtrack=app", *env_plugins)
    out = r.stdout
    assert r.returncode == 1, out
    got = outcomes(out)
    assert got["test_leaks"] == {"FAILED"} and got["test_clean"] == {"PASSED"}, out
    assert out.count("classtrack: instances alive after their test") == 1, out
    assert "2 workers' tests, merged" in out
    table = out[out.index("classtrack: instances alive after their test"):]
    rows = re.findall(r"^test_app\.py::(\w+)\s+(app\.\w+)\s+(\d+)\s+([\d,]+)$", table, re.M)
    assert {(t, c) for t, c, _, _ in rows} == {
        ("test_leaks", "app.Session"), ("test_one_allowed", "app.Admin"),
        ("test_subclass_counts", "app.Admin"), ("test_subclass_counts", "app.Session"),
        ("test_two_markers", "app.Other")}, table
    assert "4 of 7 tests left instances of 3 tracked classes alive" in table
