"""_safefile.replacing with dir_fd: the name is one classtrack chose.

Before, `named` was ignored when dir_fd was given: a link the user named
was refused as if classtrack had chosen the name, silently.  The
combination is now refused outright; named=False keeps refusing links.
"""
import os

import pytest

from classtrack import _safefile


@pytest.fixture
def folder(tmp_path):
    fd = _safefile.open_folder(str(tmp_path / "out"))
    yield tmp_path / "out", fd
    os.close(fd)


def test_named_with_dir_fd_is_refused(folder):
    path, fd = folder
    with pytest.raises(ValueError, match="dir_fd"):
        with _safefile.replacing("page.html", named=True, dir_fd=fd) as f:
            f.write(b"x")
    assert not os.listdir(str(path))


def test_chosen_name_with_dir_fd_is_written(folder):
    path, fd = folder
    with _safefile.replacing("page.html", named=False, dir_fd=fd) as f:
        f.write(b"hello")
    assert (path / "page.html").read_bytes() == b"hello"


def test_chosen_name_with_dir_fd_refuses_a_link(folder, tmp_path):
    path, fd = folder
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    os.symlink(str(victim), str(path / "page.html"))
    with pytest.raises(_safefile.RefusedPath):
        with _safefile.replacing("page.html", named=False, dir_fd=fd) as f:
            f.write(b"x")
    assert victim.read_bytes() == b"keep"
