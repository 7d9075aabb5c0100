"""The leak check itself can fail: a leak of one object per call is caught."""
import pytest

from leakcheck import assert_no_leak

_kept = []


def test_detects_a_leak():
    with pytest.raises(AssertionError, match="leak"):
        assert_no_leak(lambda: _kept.append(object()), per_round=50)
    _kept.clear()


def test_passes_without_a_leak():
    assert_no_leak(lambda: [object() for _ in range(10)], per_round=50)
