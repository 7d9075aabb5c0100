"""Files classtrack writes: never through a link it did not expect, never
destroying a good file, dumps private.

Every writer goes through ``classtrack._safefile``: dumps (``run``,
``dump_stats``, ``--follow-fork``'s per-process dumps), HTML reports and
their ``_files`` folder, the demo.  Links are planted where an attacker on
a shared machine would plant them, and the files they point to must come
out untouched; a write that hits a file size limit must leave the previous
dump loadable.
"""
import glob
import os
import re
import resource
import stat
import sys

import pytest

from classtrack import _safefile
from classtrack.classtracker_stats import HtmlStats, Stats
from helpers import classtrack_cli

VICTIM = b"a file that belongs to somebody else\n"

PROG = """
class Session:
    pass

kept = [Session() for _ in range(int(__import__("sys").argv[1]))]
"""

FORKS = """
import os

class Job:
    pass

mine = [Job() for _ in range(100)]
pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        jobs = [Job() for _ in range(50)]
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
"""


def classtrack(*args, cwd, preexec_fn=None, timeout=120):
    """With this process's sys.path as PYTHONPATH."""
    return classtrack_cli(*args, cwd=cwd, pythonpath=sys.path, timeout=timeout,
                          preexec_fn=preexec_fn)


def victim(tmp_path, name="victim"):
    path = tmp_path / name
    path.write_bytes(VICTIM)
    return path


def untouched(path):
    return path.read_bytes() == VICTIM


def instances(dump):
    return sum(len(v) for v in Stats(filename=dump).index.values())


def no_temporaries(folder):
    return [n for n in os.listdir(str(folder)) if n.endswith(".tmp")]


# -- dumps ------------------------------------------------------------------------------

def test_default_dump_name_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "prog.py").write_text(PROG)
    target = victim(tmp_path)
    os.symlink(str(target), str(tmp_path / "prog.ctdump"))
    proc = classtrack("run", "--track-class", "prog:Session", "prog.py", "10", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "symbolic link" in proc.stderr and "prog.ctdump" in proc.stderr
    assert untouched(target)
    assert os.path.islink(str(tmp_path / "prog.ctdump"))
    assert no_temporaries(tmp_path) == []


def test_a_link_the_user_names_is_followed_and_its_target_replaced(tmp_path):
    (tmp_path / "prog.py").write_text(PROG)
    target = victim(tmp_path, "mine.ctdump")
    os.symlink(str(target), str(tmp_path / "link.ctdump"))
    proc = classtrack("run", "--track-class", "prog:Session", "-o", "link.ctdump",
                      "prog.py", "10", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert os.path.islink(str(tmp_path / "link.ctdump"))
    assert instances(str(target)) == 10


def test_dumps_are_private_and_html_keeps_the_umask(tmp_path, tracker):
    tracker.create_snapshot()
    old = os.umask(0o022)
    try:
        Stats(tracker=tracker).dump_stats(str(tmp_path / "a.ctdump"))
        HtmlStats(tracker=tracker).create_html(str(tmp_path / "a.html"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(str(tmp_path / "a.ctdump")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(tmp_path / "a.html")).st_mode) == 0o644
    old = os.umask(0o077)
    try:
        HtmlStats(tracker=tracker).create_html(str(tmp_path / "b.html"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(str(tmp_path / "b.html")).st_mode) == 0o600


def test_run_dump_is_private(tmp_path):
    (tmp_path / "prog.py").write_text(PROG)
    proc = classtrack("run", "--track-class", "prog:Session", "prog.py", "10", cwd=tmp_path,
                      preexec_fn=lambda: os.umask(0o022))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(os.stat(str(tmp_path / "prog.ctdump")).st_mode) == 0o600


def _limit_file_size():
    limit = 50 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_write_over_the_size_limit_leaves_the_runs_dump_readable(tmp_path):
    """run's dump is streamed: its first snapshot replaces the previous
    dump (it never writes through the old file, see test_run_dump_is_private
    and the links tests), and a write that fails later (a full disk, ulimit
    -f) leaves a dump that reads to its last complete snapshot; run says
    it could not write it and exits 1."""
    (tmp_path / "prog.py").write_text(PROG)
    proc = classtrack("run", "--track-class", "prog:Session", "-o", "good.ctdump",
                      "prog.py", "10", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    good = (tmp_path / "good.ctdump").read_bytes()
    # 20,000 instances: a dump well over the 50 KB the child may write
    proc = classtrack("run", "--track-class", "prog:Session", "-o", "good.ctdump",
                      "prog.py", "20000", cwd=tmp_path, preexec_fn=_limit_file_size)
    assert proc.returncode == 1, proc.stderr
    # the engine handed its repr texts to the stream: it cannot write the
    # dump whole, the stream holds the run to its last complete snapshot
    assert "could not be written to its end" in proc.stderr
    assert "good.ctdump holds the run up to its last complete snapshot" in proc.stderr
    assert (tmp_path / "good.ctdump").read_bytes() != good
    stats = Stats(filename=str(tmp_path / "good.ctdump"))
    assert stats.dump_info["streamed"] and not stats.dump_info["complete"]
    assert [s.desc for s in stats.snapshots][:1] == ["start"]
    assert no_temporaries(tmp_path) == []


def test_dump_stats_failure_keeps_the_previous_file(tmp_path, tracker):
    tracker.create_snapshot()
    path = tmp_path / "x.ctdump"
    Stats(tracker=tracker).dump_stats(str(path))
    good = path.read_bytes()

    class Bomb(Exception):
        pass

    with pytest.raises(Bomb):
        with _safefile.replacing(str(path), named=True) as f:
            f.write(b"half a dump")
            raise Bomb()
    assert path.read_bytes() == good and no_temporaries(tmp_path) == []


def test_special_files_are_written_as_they_are(tmp_path, tracker):
    """/dev/null named by the user: written, never renamed over."""
    tracker.create_snapshot()
    before = os.stat("/dev/null")
    Stats(tracker=tracker).dump_stats("/dev/null")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    with pytest.raises(_safefile.RefusedPath, match="not a regular file"):
        with _safefile.replacing("/dev/null", named=False):
            pass


# -- --follow-fork ---------------------------------------------------------------------

def test_follow_fork_ignores_planted_links_and_files(tmp_path):
    (tmp_path / "prog.py").write_text(FORKS)
    shared = tmp_path / "shared"
    shared.mkdir()
    target = victim(tmp_path)
    # links for the next pids, under the names an older classtrack used,
    # and 199 planted dumps that its summary counted and offered to merge
    first = int(open("/proc/sys/kernel/ns_last_pid").read()) \
        if os.path.exists("/proc/sys/kernel/ns_last_pid") else os.getpid()
    for pid in range(first, first + 400):
        for name in ("run.%d.ctdump" % pid, "run.%d.ctdump.tmp" % pid):
            os.symlink(str(target), str(shared / name))
    for k in range(199):
        (shared / ("run.%08x.%d.ctdump" % (k, 10 ** 6 + k))).write_bytes(b"planted")
    proc = classtrack("run", "--follow-fork", "--track-class", "prog:Job",
                      "-o", str(shared / "run"), "prog.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert untouched(target)
    m = re.search(r"(\d+) dumps, one per process: (\S+)", proc.stderr)
    assert m and m.group(1) == "3", proc.stderr
    dumps = glob.glob(m.group(2))
    assert len(dumps) == 3
    for d in dumps:
        assert not os.path.islink(d)
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o600
    proc = classtrack("report", *dumps, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "200" in proc.stdout     # 100 + 2 x 50 instances


def test_a_link_at_a_per_process_name_is_refused(tmp_path):
    """Where a planted link has the run's name (it cannot be guessed in
    advance; a name classtrack chose): refused, the target untouched."""
    target = victim(tmp_path)
    link = tmp_path / "run.0123abcd.42.ctdump"
    os.symlink(str(target), str(link))
    with pytest.raises(_safefile.RefusedPath, match="symbolic link"):
        with _safefile.replacing(str(link), named=False) as f:
            f.write(b"dump")
    assert untouched(target) and os.path.islink(str(link))


# -- HTML and the demo -----------------------------------------------------------------

def _dump(tmp_path):
    (tmp_path / "prog.py").write_text(PROG)
    proc = classtrack("run", "--track-class", "prog:Session", "-o", "d.ctdump",
                      "prog.py", "10", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return "d.ctdump"


def test_html_files_folder_that_is_a_link_is_refused(tmp_path):
    dump = _dump(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    page = victim(elsewhere, "prog_Session.html")
    os.symlink(str(elsewhere), str(tmp_path / "report_files"))
    proc = classtrack("html", dump, "-o", "report.html", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "report_files" in proc.stderr and "symbolic link" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert untouched(page) and sorted(os.listdir(str(elsewhere))) == ["prog_Session.html"]


def test_html_class_page_that_is_a_link_is_refused(tmp_path):
    dump = _dump(tmp_path)
    proc = classtrack("html", dump, "-o", "report.html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pages = os.listdir(str(tmp_path / "report_files"))
    assert pages
    target = victim(tmp_path)
    for name in pages:
        os.unlink(str(tmp_path / "report_files" / name))
        os.symlink(str(target), str(tmp_path / "report_files" / name))
    proc = classtrack("html", dump, "-o", "report.html", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "symbolic link" in proc.stderr
    assert untouched(target)


def test_html_index_the_user_names_through_a_link_is_followed(tmp_path):
    dump = _dump(tmp_path)
    target = victim(tmp_path, "mine.html")
    os.symlink(str(target), str(tmp_path / "link.html"))
    proc = classtrack("html", dump, "-o", "link.html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert os.path.islink(str(tmp_path / "link.html"))
    assert target.read_text().startswith("<!DOCTYPE html>")


def test_html_default_name_that_is_a_link_is_refused(tmp_path):
    dump = _dump(tmp_path)
    target = victim(tmp_path)
    os.symlink(str(target), str(tmp_path / "d.html"))
    proc = classtrack("html", dump, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "d.html" in proc.stderr and "symbolic link" in proc.stderr
    assert untouched(target)


def test_demo_default_page_that_is_a_link_is_refused(tmp_path):
    target = victim(tmp_path)
    os.symlink(str(target), str(tmp_path / "classtrack-demo.html"))
    proc = classtrack("demo", "--employees", "10", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "classtrack-demo.html" in proc.stderr and "symbolic link" in proc.stderr
    assert untouched(target)
    # and a planted folder link for its pages
    os.unlink(str(tmp_path / "classtrack-demo.html"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(str(elsewhere), str(tmp_path / "classtrack-demo_files"))
    proc = classtrack("demo", "--employees", "10", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert os.listdir(str(elsewhere)) == []
