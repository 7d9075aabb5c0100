"""Shared fixtures of the test suite; shared functions are in helpers.py."""
import os
import sys

import pytest

# The helper modules beside this file (helpers, dumpcraft, structures,
# leakcheck) are imported by plain name.  pytest's default import mode puts
# this folder on sys.path already; --import-mode=importlib does not.
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from classtrack.classtracker import ClassTracker  # noqa: E402
from helpers import close_tracker  # noqa: E402


@pytest.fixture
def tracker():
    """A fresh ClassTracker; at teardown its monitor is stopped and it is
    detached from everything and emptied (helpers.close_tracker), whatever
    the test did."""
    t = ClassTracker()
    try:
        yield t
    finally:
        close_tracker(t)
