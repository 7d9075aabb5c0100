"""Process memory, read in C from /proc."""
import os
import pickle
import sys

import pytest

from classtrack import process
from classtrack.process import ProcessMemoryInfo, is_available

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@linux
def test_fields_are_real():
    assert is_available()
    p = ProcessMemoryInfo()
    assert p.available
    assert 0 < p.rss <= p.vsz <= p.vsz_peak
    assert p.rss <= p.rss_peak
    assert p.data_segment > 0 and p.code_segment > 0 and p.stack_segment > 0
    assert p.pagesize in (4096, 16384, 65536)
    assert 0 < p.uss <= p.pss <= p.rss * 2
    labels = [label for label, _ in p.os_specific]
    assert "Resident set size" in labels and "Virtual memory size" in labels
    with open("/proc/self/statm") as f:
        statm_rss = int(f.read().split()[1]) * p.pagesize
    assert abs(statm_rss - p.rss) < 8 * 1024 * 1024


@linux
def test_growth_is_seen():
    before = ProcessMemoryInfo()
    block = bytearray(64 * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    after = ProcessMemoryInfo()
    assert after.rss - before.rss > 50 * 1024 * 1024
    delta = dict(after - before)
    assert delta["Resident set size (delta)"] > 50 * 1024 * 1024
    del block


@linux
def test_update_and_pickle():
    p = ProcessMemoryInfo()
    assert p.update() is True
    q = pickle.loads(pickle.dumps(p))
    assert q.rss == p.rss and q.vsz == p.vsz


@linux
def test_reads_after_fork_describe_the_child():
    ProcessMemoryInfo()  # opens the cached descriptor in the parent
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        before = ProcessMemoryInfo().rss
        block = bytearray(128 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        os.write(w, ("%d %d" % (before, ProcessMemoryInfo().rss)).encode())
        os._exit(0)
    os.close(w)
    before, after = (int(x) for x in os.read(r, 100).split())
    os.waitpid(pid, 0)
    # the child's own growth: a read of the parent's figures (a descriptor
    # opened before the fork) would show none.  Against the parent's RSS
    # the child's is no measure: it shares what it has not touched.
    assert after - before > 100 * 1024 * 1024, (before, after)


def test_thread_helpers():
    assert any(t.ident == process.get_current_thread_id() for t in process.get_current_threads())
