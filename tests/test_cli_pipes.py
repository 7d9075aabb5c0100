"""Every command stops quietly when the reader of its output goes away, as
`classtrack report big.ctdump | head` does: real pipes, real subprocesses."""
import os
import subprocess
import sys
import textwrap

import pytest

from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import Stats

BROKEN_PIPE = 141       # the documented status (128 + SIGPIPE)


class Payload:
    def __init__(self, i):
        self.data = list(range(i % 50))


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory):
    """A dump whose every report is far larger than a pipe's buffer (64 KiB):
    1,500 tracked names, three snapshots."""
    path = tmp_path_factory.mktemp("pipes") / "big.ctdump"
    tracker = ClassTracker()
    keep = []
    for i in range(1500):
        obj = Payload(i)
        keep.append(obj)
        tracker.track_object(obj, name="some.rather.long.module.path.Class%04d" % i)
    tracker.create_snapshot("one")
    del keep[::2]
    tracker.create_snapshot("two")
    tracker.create_snapshot("three")
    Stats(tracker=tracker).dump_stats(str(path))
    tracker.close()
    return path


def env(cwd, unbuffered=False):
    out = dict(os.environ, PYTHONPATH=str(cwd))
    # PYTHONUNBUFFERED changes how a closed pipe shows (see test_unbuffered_...)
    out.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        out["PYTHONUNBUFFERED"] = "1"
    return out


def read_a_little_then_close(args, cwd, stream="stdout", nbytes=100, unbuffered=False):
    """Start classtrack with `stream` on a pipe, read `nbytes` of it (0: none),
    close our end, and return (status, the other stream's text)."""
    # bufsize=0: read(nbytes) is one read(2) of at most nbytes.  A buffered
    # reader fills its buffer instead, and from 3.14 (io.DEFAULT_BUFFER_SIZE
    # 128 KiB, was 8 KiB) one read can take a whole 64 KiB pipe: the table
    # report (125 KiB) then fits in what was read plus the pipe, the writer
    # never sees the closed pipe and exits 0.
    proc = subprocess.Popen([sys.executable, "-m", "classtrack"] + args, cwd=str(cwd),
                            env=env(cwd, unbuffered), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    ours, other = (proc.stdout, proc.stderr) if stream == "stdout" else (proc.stderr, proc.stdout)
    if nbytes:
        got = ours.read(nbytes)
        assert got, "the command printed nothing"
    ours.close()
    text = other.read().decode("utf-8", "replace")
    other.close()
    return proc.wait(timeout=120), text


REPORTS = [["report", "big.ctdump"], ["report", "big.ctdump", "--snapshots"],
           ["report", "big.ctdump", "--summary"], ["report", "big.ctdump", "--json"],
           ["report", "big.ctdump", "--sort", "classname", "--limit", "1000"]]


@pytest.mark.parametrize("args", REPORTS, ids=lambda a: " ".join(a[2:]) or "table")
def test_report_into_head(args, big_dump):
    cwd = big_dump.parent
    status, err = read_a_little_then_close(args, cwd)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err == "" and status == BROKEN_PIPE


@pytest.mark.parametrize("args", REPORTS, ids=lambda a: " ".join(a[2:]) or "table")
def test_unbuffered_report_into_head(args, big_dump):
    """With PYTHONUNBUFFERED, CPython (3.11) takes a short write to a pipe
    whose reader left as the end of the output, without an error: classtrack
    cannot tell then, but it must still be quiet."""
    status, err = read_a_little_then_close(args, big_dump.parent, unbuffered=True)
    assert err == "" and status in (0, BROKEN_PIPE)


@pytest.mark.parametrize("args", REPORTS[:1] + [["demo", "--employees", "50"]],
                         ids=lambda a: " ".join(a))
def test_output_closed_before_anything_is_written(args, big_dump):
    """The reader is gone before the first byte: even a short output fails."""
    status, err = read_a_little_then_close(args, big_dump.parent, nbytes=0)
    assert err == "" and status == BROKEN_PIPE


@pytest.mark.parametrize("args", [["--help"], ["report", "--help"], ["run", "--help"]],
                         ids=lambda a: " ".join(a))
def test_help_into_a_closed_pipe(args, tmp_path):
    """argparse ignores a failed write of its help (status 0); quiet either way."""
    status, err = read_a_little_then_close(args, tmp_path, nbytes=0)
    assert err == "" and status in (0, BROKEN_PIPE)


def test_big_output_is_really_bigger_than_a_pipe(big_dump):
    """What the tests above rely on: the table does not fit in a pipe's buffer."""
    r = subprocess.run([sys.executable, "-m", "classtrack", "report", "big.ctdump"],
                       cwd=str(big_dump.parent), capture_output=True, timeout=120)
    assert r.returncode == 0 and len(r.stdout) > 2 * 65536, len(r.stdout)


def test_html_with_its_stderr_closed(big_dump, tmp_path):
    status, out = read_a_little_then_close(
        ["html", str(big_dump), "-o", str(tmp_path / "r.html")], tmp_path,
        stream="stderr", nbytes=0)
    assert out == "" and status == BROKEN_PIPE
    assert (tmp_path / "r.html").exists()       # the work was done; only the message was lost


PROGRAM = textwrap.dedent("""
    import sys
    class Line:
        def __init__(self, i):
            self.text = "line %d " % i * 3
    for i in range(200000):
        print(Line(i).text)
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
""")


def test_run_program_output_into_head(tmp_path):
    """The program's stdout closes: it fails exactly as it would without
    classtrack, and classtrack still writes the dump and says so."""
    (tmp_path / "lines.py").write_text(PROGRAM)
    status, err = read_a_little_then_close(["run", "--track-module", "lines", "lines.py"],
                                           tmp_path)
    plain = subprocess.Popen([sys.executable, "lines.py"], cwd=str(tmp_path),
                             env=env(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    plain.stdout.read(100)
    plain.stdout.close()
    plain_err = plain.stderr.read().decode()
    plain_status = plain.wait(timeout=120)
    assert status == plain_status
    assert ("BrokenPipeError" in err) == ("BrokenPipeError" in plain_err)
    assert "classtrack/" not in err and "runpy" not in err      # no frame of ours
    assert "classtrack: dump written to lines.ctdump" in err
    assert (tmp_path / "lines.ctdump").exists()


def test_run_with_its_stderr_closed_keeps_the_program_status(tmp_path):
    (tmp_path / "lines.py").write_text(PROGRAM.replace("200000", "10"))
    status, out = read_a_little_then_close(
        ["run", "--track-module", "lines", "--track-class", "lines:Nope", "lines.py", "3"],
        tmp_path, stream="stderr", nbytes=0)
    assert status == 3
    assert out.count("line") == 30
    assert (tmp_path / "lines.ctdump").exists()
