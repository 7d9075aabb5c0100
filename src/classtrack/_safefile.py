"""Writing a file without writing through a link and without destroying a
good file: the one way every writer of classtrack creates files (dumps,
``--follow-fork``'s per-process dumps, HTML reports and their ``_files``
folder, the demo).

How a file is written (``replacing``):

* it is created in the target's directory under a name nobody can guess
  (``.NAME.<random>.tmp``) with ``O_CREAT | O_EXCL | O_NOFOLLOW``: an
  existing path, or a link planted there, is never opened for writing;
* it is written, ``fsync``-ed, and renamed over the target.  A rename
  replaces a link planted at the target, it never writes through it; a
  write that fails (a full disk, ``ulimit -f``) removes the temporary file
  and leaves the previous file as it was.

Who named the path decides what a link there means:

* a path the user named (``-o FILE``, ``dump_stats(path)``) that is a link
  is followed, once, to the file it points to, which is then replaced as
  above;
* a path the user named that is a device or a pipe (``/dev/stdout``) is
  written as it is: there is no file to keep and nothing to rename;
* a path classtrack made up (``NAME.<run>.<pid>.ctdump``, the default dump
  name, ``classtrack-demo.html``, an HTML report's ``_files`` folder and its
  pages) that is a link is refused with ``RefusedPath``, one sentence
  naming it.

Dumps are created readable by their owner only (``0600``): they hold reprs
and source lines.  HTML reports are made to be shared and keep the user's
umask.
"""
import contextlib
import errno
import io
import os
import secrets
import stat
from typing import IO, Any, Iterator, Optional, Tuple

PRIVATE = 0o600
SHARED = 0o666          # less the umask, as open() would


class RefusedPath(OSError):
    """A path classtrack will not write: a link it did not expect."""

    def __init__(self, message: str) -> None:
        OSError.__init__(self, errno.ELOOP, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _is_link(path: str, dir_fd: Optional[int] = None) -> bool:
    try:
        st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return stat.S_ISLNK(st.st_mode)


def target_of(path: str, named: bool) -> str:
    """The file a write of `path` replaces: `path`, or where a link the user
    named points.  Raises RefusedPath for a link classtrack named."""
    path = os.fspath(path)
    if not _is_link(path):
        return path
    if not named:
        raise RefusedPath("refusing to write %s: it is a symbolic link, and classtrack "
                          "chose that name (remove the link, or name the file with -o)"
                          % path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return path         # a device or a pipe (/dev/stdout): opened through the link
    except OSError:
        pass                    # a link to nothing yet: its target is created
    return os.path.realpath(path)


@contextlib.contextmanager
def replacing(path: Any, named: bool, mode: int = PRIVATE, text: bool = False,
              dir_fd: Optional[int] = None) -> Iterator[IO[Any]]:
    """A new file, open for writing, that replaces `path` when the block
    ends without an exception (see the module's docstring).  `dir_fd`: a
    folder's descriptor that `path` (a bare name then) is relative to; such
    a name is one classtrack chose (`named` False: a link there is
    refused), as a link the user named could not be followed from it."""
    path = os.fspath(path)
    if dir_fd is not None and named:
        raise ValueError("replacing: a name relative to dir_fd is one classtrack chose; "
                         "named=True needs a path")
    if dir_fd is None:
        path = target_of(path, named)
        special = _special_file(path, named)
        if special is not None:
            # a device or a pipe the user named (/dev/stdout, a fifo): written
            # as it is, there is no file to keep whole and nothing to rename
            with special as raw:
                f: IO[Any] = raw
                if text:
                    f = io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8")
                yield f
                f.flush()
            return
        folder, name = os.path.split(os.path.abspath(path))
    else:
        if os.sep in path:
            raise ValueError("a name relative to dir_fd has no folder: %r" % path)
        if _is_link(path, dir_fd):
            raise RefusedPath("refusing to write %s: it is a symbolic link, and classtrack "
                              "chose that name" % path)
        folder, name = "", path
    fd, tmp, tmp_path = _create_temp(folder, name, mode, dir_fd)
    done = False
    try:
        f = os.fdopen(fd, "wb", buffering=0)
        if text:
            f = io.TextIOWrapper(io.BufferedWriter(f), encoding="utf-8")
        with f:
            yield f
            f.flush()
            os.fsync(fd)
        if dir_fd is not None:
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            os.rename(tmp_path, path)
        done = True
    finally:
        if not done:
            try:
                os.unlink(tmp_path, dir_fd=dir_fd)
            except OSError:
                pass
    _sync_folder(folder, dir_fd)


def _create_temp(folder: str, name: str, mode: int,
                 dir_fd: Optional[int] = None) -> Tuple[int, str, str]:
    """A new file beside `name` that nobody could have planted: (its
    descriptor, its name, its path)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = ".%s.%s.tmp" % (name, secrets.token_hex(8))
        tmp_path = tmp if dir_fd is not None else os.path.join(folder, tmp)
        try:
            return os.open(tmp_path, flags, mode, dir_fd=dir_fd), tmp, tmp_path
        except FileExistsError:
            continue
    # pragma: no cover - 100 collisions of 64 random bits
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file", folder)


class Streamed:
    """A file written as a program runs (a streamed dump): created as
    ``replacing`` creates one, under a name nobody can guess, and renamed
    over `path` by ``publish()``, once its first part is written, so the
    path always holds a readable file; then appended to through
    ``file`` (an unbuffered io.FileIO) until ``close()``.  A device or a
    pipe the user named is written as it is.  Links: as ``replacing``."""

    def __init__(self, path: Any, named: bool, mode: int = PRIVATE) -> None:
        path = target_of(os.fspath(path), named)
        self.path = path
        self._tmp_path: Optional[str] = None
        special = _special_file(path, named)
        if special is not None:
            self.file: IO[bytes] = special
            self._folder = ""
            return
        self._folder, name = os.path.split(os.path.abspath(path))
        fd, _, self._tmp_path = _create_temp(self._folder, name, mode)
        self.file = os.fdopen(fd, "wb", buffering=0)

    def publish(self) -> None:
        """Put the file at its path (the first call; later ones do nothing)."""
        if self._tmp_path is None:
            return
        os.rename(self._tmp_path, self.path)
        self._tmp_path = None
        _sync_folder(self._folder, None)

    def close(self, sync: bool = True) -> None:
        """Flush it to disk and close it; an unpublished file is removed."""
        try:
            if sync and self._tmp_path is None and not self.file.closed:
                try:
                    os.fsync(self.file.fileno())
                except OSError as exc:
                    if exc.errno not in (errno.EINVAL, errno.EROFS):   # a pipe, a device
                        raise
        finally:
            self.file.close()
            if self._tmp_path is not None:
                try:
                    os.unlink(self._tmp_path)
                except OSError:
                    pass
                self._tmp_path = None


def _special_file(path: str, named: bool) -> Optional[IO[bytes]]:
    """An existing path that is not a regular file: a device or a pipe the
    user named, opened as it is (never renamed over); anything else is
    refused.  None for a regular file or a free name."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", path)
    if not named:
        raise RefusedPath("refusing to write %s: it is not a regular file, and classtrack "
                          "chose that name" % path)
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    return os.fdopen(fd, "wb", buffering=0)


def _sync_folder(folder: str, dir_fd: Optional[int]) -> None:
    """The rename itself on disk (best effort: not every file system can)."""
    try:
        if dir_fd is not None:
            os.fsync(dir_fd)
            return
        fd = os.open(folder or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_folder(path: str) -> int:
    """A descriptor of the folder `path`, created if missing (with the
    user's umask), for `replacing(name, dir_fd=...)`.  A link there, or
    anything but a folder, is refused: classtrack chose the name."""
    path = os.fspath(path)
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    if _is_link(path):
        raise RefusedPath("refusing to use %s: it is a symbolic link, and classtrack "
                          "chose that name (remove the link)" % path)
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                       | getattr(os, "O_CLOEXEC", 0))
    except NotADirectoryError:
        raise RefusedPath("refusing to use %s: it is not a folder" % path) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RefusedPath("refusing to use %s: it is a symbolic link, and classtrack "
                              "chose that name (remove the link)" % path) from None
        raise
