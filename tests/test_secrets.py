"""What reaches a dump: ClassTracker(reprs=False) and `run --no-repr` keep the
tracked objects' data (what a __repr__ shows, values named in size trees,
source lines of traces) out of it."""
import os
import textwrap

import pytest

from classtrack.classtracker import ClassTracker
from classtrack.classtracker_stats import Stats
from helpers import classtrack_cli

# built at run time: no source line of this file holds the whole token
SECRET = "sk-" + "SECRET-TOKEN-" + str(41 + 82)
SOURCE_MARKER = "SOURCE-LINE-" + "MARKER-7391"


class Session:
    repr_calls = 0

    def __init__(self, token):
        self.token = token
        self.headers = {"Authorization": "Bearer " + token, 7: token}

    def __repr__(self):
        Session.repr_calls += 1
        return "Session(token=%r)" % self.token


def make_session():
    return Session(SECRET)  # SOURCE-LINE-MARKER-7391: creation line of every traced Session


def _names(asized):
    out = [asized.name]
    for ref in asized.refs:
        out.extend(_names(ref))
    return out


def dump_sessions(path, **kwargs):
    """Track Sessions (traced, with size trees three levels deep), take two
    snapshots, dump; returns the dump's bytes and the live tracker."""
    Session.repr_calls = 0
    tracker = ClassTracker(**kwargs)
    tracker.track_class(Session, trace=True, resolution_level=3)
    session = make_session()
    tracker.create_snapshot("one")
    tracker.create_snapshot("two")
    Stats(tracker=tracker).dump_stats(str(path))
    with open(str(path), "rb") as f:
        data = f.read()
    tracker.detach_all_classes()
    return data, tracker, session


def test_no_repr_dump_holds_no_secret(tmp_path):
    data, tracker, session = dump_sessions(tmp_path / "plain.ctdump")
    assert SECRET.encode() in data          # the default: what __repr__ shows is dumped
    assert Session.repr_calls > 0

    data, tracker, session = dump_sessions(tmp_path / "safe.ctdump", reprs=False)
    assert SECRET.encode() not in data
    assert b"Bearer" not in data
    assert Session.repr_calls == 0          # never called, not even while sizing
    assert tracker.reprs is False

    loaded = Stats(filename=str(tmp_path / "safe.ctdump"))
    (obj,) = loaded.index["%s.Session" % __name__]
    default = "<%s.Session object at 0x%x>" % (__name__, id(session))
    assert obj.id == id(session) and obj.repr == default
    (live,) = tracker.index["%s.Session" % __name__]
    assert live.repr == default
    # size trees: attribute names and str keys stay, values' reprs do not
    names = _names(obj.snapshots[-1][1])
    assert "[V] token" in names and "[K] Authorization" in names
    assert "[V] Authorization" in names and "[K] <int>" in names and "[V] <int>" in names
    assert not any(SECRET in n for n in names)
    assert Session.repr_calls == 0


def test_no_repr_live_trace_has_no_source_line(tmp_path):
    _, tracker, _ = dump_sessions(tmp_path / "plain.ctdump")
    (live,) = tracker.index["%s.Session" % __name__]
    frame = [f for f in live.trace if f[2] == "make_session"][0]
    assert SOURCE_MARKER in frame[3][0]

    _, tracker, _ = dump_sessions(tmp_path / "safe.ctdump", reprs=False)
    (live,) = tracker.index["%s.Session" % __name__]
    frame = [f for f in live.trace if f[2] == "make_session"][0]
    assert frame[0] == os.path.abspath(__file__) and frame[1] > 0
    assert frame[3] is None and frame[4] is None


def test_no_repr_dump_has_no_source_lines(tmp_path):
    data, _, _ = dump_sessions(tmp_path / "plain.ctdump")
    assert SOURCE_MARKER.encode() in data   # the default: source lines are dumped

    data, _, _ = dump_sessions(tmp_path / "safe.ctdump", reprs=False)
    assert SOURCE_MARKER.encode() not in data
    loaded = Stats(filename=str(tmp_path / "safe.ctdump"))
    (obj,) = loaded.index["%s.Session" % __name__]
    frames = [f for f in obj.trace if f[2] == "make_session"]
    assert len(frames) == 1                 # file, line and function stay
    filename, line, _, context, _ = frames[0]
    assert filename == os.path.abspath(__file__) and line > 0
    assert context is None
    assert all(f[3] is None for f in obj.trace)


@pytest.mark.parametrize("bad", ["no", 0, 1, None])
def test_reprs_must_be_a_bool(bad):
    with pytest.raises(TypeError, match="reprs must be a bool"):
        ClassTracker(reprs=bad)


PROGRAM = textwrap.dedent("""
    class Session:
        def __init__(self, token):
            self.token = token

        def __repr__(self):
            return "Session(token=%r)" % self.token

    session = Session("sk-" + "CLI-SECRET-" + "5150")
""")
CLI_SECRET = b"sk-CLI-SECRET-5150"


def classtrack(*args, cwd):
    """The program's folder is on its PYTHONPATH."""
    return classtrack_cli(*args, cwd=cwd, pythonpath=cwd)


def _tree_bytes(top):
    out = b""
    for dirpath, _, files in os.walk(str(top)):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                out += f.read()
    return out


def test_run_no_repr(tmp_path):
    (tmp_path / "prog.py").write_text(PROGRAM)
    for flags, out in (([], "plain"), (["--no-repr"], "safe")):
        r = classtrack("run", *flags, "--track-class", "__main__:Session", "--resolution", "1",
                       "-o", out + ".ctdump", "prog.py", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        (tmp_path / out).mkdir()
        r = classtrack("html", out + ".ctdump", "-o", os.path.join(out, "index.html"),
                       cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    assert CLI_SECRET in (tmp_path / "plain.ctdump").read_bytes()
    assert CLI_SECRET in _tree_bytes(tmp_path / "plain")
    safe = (tmp_path / "safe.ctdump").read_bytes()
    assert CLI_SECRET not in safe and b"Session(" not in safe
    assert b"__main__.Session" in safe      # the class is there, its data is not
    assert CLI_SECRET not in _tree_bytes(tmp_path / "safe")


def test_run_help_lists_no_repr(tmp_path):
    r = classtrack("run", "--help", cwd=tmp_path)
    assert r.returncode == 0
    assert "--no-repr" in r.stdout.split("\n\n")[0]   # in the usage line too
    assert "no source lines" in " ".join(r.stdout.split())
