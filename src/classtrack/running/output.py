"""What ``classtrack`` says on a stream whose reader may be gone."""
import os
from typing import IO


def silence(stream: IO[str]) -> None:
    """Point a stream whose reader went away at /dev/null, so that what is
    still buffered, and the flush at interpreter exit, go nowhere instead of
    raising BrokenPipeError again."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
