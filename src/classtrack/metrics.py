"""A ClassTracker's data as Prometheus metrics.

``ClassTrackerCollector(tracker)`` is a ``prometheus_client`` collector:
register it in any ``CollectorRegistry`` (``pip install
classtrack[prometheus]``)::

    from prometheus_client import CollectorRegistry, start_http_server
    from classtrack.metrics import ClassTrackerCollector

    registry = CollectorRegistry()
    registry.register(ClassTrackerCollector(tracker))
    start_http_server(9464, addr="127.0.0.1", registry=registry)

Per tracking name (label ``class``, the name the tracker files the
instances under, ``module.Class`` for a tracked class):

``classtrack_class_live_instances``  gauge, instances alive now
``classtrack_class_bytes``           gauge, their bytes at the last snapshot
``classtrack_class_retained_bytes``  gauge, their retained bytes at the last
                                     snapshot, only when the snapshot has them

For the tracker:

``classtrack_snapshots_total``                    counter, snapshots taken
``classtrack_tracked_instances``                  gauge, tracked objects alive
``classtrack_last_snapshot_age_seconds``          gauge, since the last snapshot
``classtrack_last_snapshot_cost_seconds``         gauge, what the last snapshot
                                                  cost, when it records it
``classtrack_monitor_interval_seconds``           gauge, the interval asked for
``classtrack_monitor_effective_interval_seconds`` gauge, the interval in effect
``classtrack_monitor_stretched``                  gauge, 1 while the budget
                                                  stretches the interval
``classtrack_process_resident_bytes``             gauge, the process's RSS now
``classtrack_process_resident_peak_bytes``        gauge, its highest RSS so far
                                                  (both where /proc is: Linux)

The monitor gauges are there while the background monitor runs.

Collecting never takes a snapshot and never waits for one: it reads what the
tracker recorded last.  Live counts are the tracker's own (the last point of
``history``); bytes are summed once per snapshot.  A scrape running while
another thread takes a snapshot or clears the tracker reports the snapshot
before it (the sums are checked against the snapshot list after they are
read).

Cost.  Reading live counts is a pass over every record, summing bytes a pass
over the last snapshot's entries (at a million tracked objects, about 0.4 s
and 1 s of CPU, while holding the GIL).  Like the background monitor, the
collector keeps to a ``budget`` (default 5%) of the program's time: when a
refresh read more than 10,000 records (or snapshot entries) and cost more
than 10 ms, the values it read are served for the next ``cost / budget``
seconds before it is done again.  Smaller trackers are read afresh at every
scrape in which they changed (a garbage collection that happens to run
during a small refresh does not hold its values back).
"""
from __future__ import annotations

import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

try:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "classtrack.metrics needs the prometheus_client library: "
        "pip install classtrack[prometheus]") from exc

from classtrack import _core
from classtrack.classtracker import ClassTracker

__all__ = ["ClassTrackerCollector"]

LABEL = "class"

# a refresh reading at most this many items, or costing less than this
# (CPU seconds), is never held back
_FREE_ITEMS = 10000
_FREE_REFRESH = 0.01

_HELP = {
    "classtrack_class_live_instances":
        "Tracked instances of the class alive now.",
    "classtrack_class_bytes":
        "Bytes of the class's alive tracked instances at the last snapshot.",
    "classtrack_class_retained_bytes":
        "Bytes the class's tracked instances retained at the last snapshot "
        "(freed if they became unreachable).",
    "classtrack_snapshots":
        "Snapshots taken by the tracker.",
    "classtrack_tracked_instances":
        "Tracked objects alive now, all classes.",
    "classtrack_last_snapshot_age_seconds":
        "Seconds since the tracker's last snapshot.",
    "classtrack_last_snapshot_cost_seconds":
        "CPU seconds the last snapshot cost the program.",
    "classtrack_monitor_interval_seconds":
        "Seconds between snapshots asked of the background monitor.",
    "classtrack_monitor_effective_interval_seconds":
        "Seconds between snapshots in effect (longer than asked when the "
        "cost budget stretches it).",
    "classtrack_monitor_stretched":
        "1 when the background monitor stretched its interval to keep within "
        "its cost budget, else 0.",
    "classtrack_process_resident_bytes":
        "Resident set size of the process now (RSS), in bytes.",
    "classtrack_process_resident_peak_bytes":
        "Highest resident set size of the process so far, in bytes.",
}


class _Sums:
    """Per-name byte sums of one snapshot."""

    __slots__ = ("snapshot", "count", "sizes", "retained")

    def __init__(self, snapshot: Any, count: int, sizes: Dict[str, int],
                 retained: Optional[Dict[str, int]]) -> None:
        self.snapshot = snapshot
        self.count = count
        self.sizes = sizes
        self.retained = retained


class ClassTrackerCollector:
    """Exposes a ClassTracker to Prometheus (see the module's docstring)."""

    def __init__(self, tracker: Any, budget: float = 0.05) -> None:
        if not isinstance(tracker, ClassTracker):
            raise TypeError("ClassTrackerCollector needs a ClassTracker, not %r"
                            % (type(tracker).__name__,))
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) \
                or not 0 < budget <= 1:
            raise ValueError("budget must be a share of time in (0, 1], not %r" % (budget,))
        self.tracker = tracker
        self.budget = float(budget)
        self._lock = threading.Lock()
        self._sums: Optional[_Sums] = None
        self._sums_hold = 0.0           # monotonic time before which _sums is served
        self._live_key: Optional[tuple] = None
        self._live: Dict[str, int] = {}
        self._live_hold = 0.0

    def _hold_until(self, cpu_started: float, items: int) -> float:
        """When a refresh of items records or entries, which started at
        cpu_started (thread CPU clock) and ends now, may be done again."""
        cost = _cpu_clock() - cpu_started
        if items <= _FREE_ITEMS or cost < _FREE_REFRESH:
            return 0.0
        return time.monotonic() + cost / self.budget

    # -- reading the tracker ---------------------------------------------------------

    def _live_counts(self) -> Dict[str, int]:
        """name -> instances alive now: the last point of the tracker's
        history, re-read only when a birth or death happened since."""
        key = self._records_key()
        if key != self._live_key and time.monotonic() >= self._live_hold:
            started = _cpu_clock()
            live = {name: points[-1][1] for name, points in self.tracker.history.items()
                    if points}
            # a birth or death between reading the key and the history (in
            # another thread): keep the counts, but read them again next time
            self._live_key = key if self._records_key() == key else None
            self._live = live
            self._live_hold = self._hold_until(started, key[0])
        return self._live

    def _records_key(self) -> tuple:
        """Changes with every birth, death and clear: (records, alive, birth
        of the first record)."""
        engine = self.tracker._engine
        n = len(engine)
        first = None
        if n:
            try:
                first = engine.record(0)[2]
            except IndexError:      # cleared meanwhile
                return (0, 0, None)
        return (n, engine.alive, first)

    def _last_sums(self) -> Optional[_Sums]:
        """Byte sums of the last snapshot, computed once per snapshot."""
        tracker = self.tracker
        snapshots = list(tracker.snapshots)      # one atomic copy
        if not snapshots:
            self._sums = None
            return None
        k = len(snapshots) - 1
        last = snapshots[k]
        cached = self._sums
        if cached is not None and (cached.snapshot is last and cached.count == len(snapshots)
                                   or time.monotonic() < self._sums_hold):
            return cached
        started = _cpu_clock()
        engine = tracker._engine
        try:
            entries = engine.snapshot_entries(k)
            record_names = engine.record_names()
            names = engine.names
        except IndexError:          # cleared meanwhile
            return cached
        nnames = len(names)
        by_number = [0] * nnames
        # retained bytes, when this snapshot measured them (create_snapshot
        # with retained=True, or classes tracked with retained=True)
        measured = tracker._retained_at.get(last.timestamp)
        retained_by: Optional[List[int]] = None if measured is None else [0] * nnames
        try:
            for entry in entries:
                n = record_names[entry[0]]
                by_number[n] += entry[1]
                if retained_by is not None:
                    retained_by[n] += measured.get(entry[0], 0)
        except IndexError:          # records cleared meanwhile
            return cached
        sizes = {names[n]: v for n, v in enumerate(by_number) if v}
        retained = None if retained_by is None else \
            {names[n]: v for n, v in enumerate(retained_by) if v}
        current = tracker.snapshots
        if len(current) <= k or current[k] is not last:   # cleared while summing
            return cached
        self._sums = _Sums(last, len(snapshots), sizes, retained)
        self._sums_hold = self._hold_until(started, len(entries))
        return self._sums

    # -- the collector protocol --------------------------------------------------------

    def describe(self) -> Iterator[Any]:
        """Every family this collector may yield, without samples (so that
        registering does not read the tracker)."""
        for name, family in _families().items():
            yield family

    def collect(self) -> Iterator[Any]:
        with self._lock:
            families = self._collect()
        return iter(families)

    def _collect(self) -> List[Any]:
        tracker = self.tracker
        engine = tracker._engine
        fam = _families()
        live = self._live_counts()
        sums = self._last_sums()
        names = list(engine.names)
        for name in names:
            fam["classtrack_class_live_instances"].add_metric([name], live.get(name, 0))
        if sums is not None:
            for name in names:
                fam["classtrack_class_bytes"].add_metric([name], sums.sizes.get(name, 0))
            if sums.retained is not None:
                for name in names:
                    fam["classtrack_class_retained_bytes"].add_metric(
                        [name], sums.retained.get(name, 0))
        out = [fam["classtrack_class_live_instances"]]
        if sums is not None:
            out.append(fam["classtrack_class_bytes"])
            if sums.retained is not None:
                out.append(fam["classtrack_class_retained_bytes"])

        snapshots = list(tracker.snapshots)
        fam["classtrack_snapshots"].add_metric([], len(snapshots))
        fam["classtrack_tracked_instances"].add_metric([], engine.alive)
        out += [fam["classtrack_snapshots"], fam["classtrack_tracked_instances"]]
        if snapshots:
            last = snapshots[-1]
            fam["classtrack_last_snapshot_age_seconds"].add_metric(
                [], max(0.0, _core.now() - last.timestamp))
            out.append(fam["classtrack_last_snapshot_age_seconds"])
            cost = getattr(last, "cost", None)
            if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                fam["classtrack_last_snapshot_cost_seconds"].add_metric([], cost)
                out.append(fam["classtrack_last_snapshot_cost_seconds"])

        status = _core.process_status()     # one read of /proc/self/status
        if status is not None:
            fam["classtrack_process_resident_bytes"].add_metric([], status[1])
            fam["classtrack_process_resident_peak_bytes"].add_metric([], status[2])
            out += [fam["classtrack_process_resident_bytes"],
                    fam["classtrack_process_resident_peak_bytes"]]

        interval, effective = _monitor(tracker)
        if interval is not None:
            fam["classtrack_monitor_interval_seconds"].add_metric([], interval)
            fam["classtrack_monitor_effective_interval_seconds"].add_metric([], effective)
            fam["classtrack_monitor_stretched"].add_metric([], 1 if effective > interval else 0)
            out += [fam["classtrack_monitor_interval_seconds"],
                    fam["classtrack_monitor_effective_interval_seconds"],
                    fam["classtrack_monitor_stretched"]]
        return out


def _thread_cpu_clock() -> Any:
    """time.thread_time where there is a per-thread CPU clock (the cost to
    the program: waits for the GIL are not counted), else time.monotonic."""
    try:
        time.thread_time()
    except (AttributeError, OSError):  # pragma: no cover - not on Linux
        return time.monotonic
    return time.thread_time


_cpu_clock = _thread_cpu_clock()


def _monitor(tracker: Any) -> Tuple[Optional[float], float]:
    """(interval asked, interval in effect) of the running background
    monitor, (None, 0) when none runs."""
    thread = tracker._periodic_thread
    if thread is None or not thread.is_alive():
        return None, 0.0
    interval = float(thread.interval)
    return interval, float(thread.effective_interval)


def _families() -> Dict[str, Any]:
    per_class = ("classtrack_class_live_instances", "classtrack_class_bytes",
                 "classtrack_class_retained_bytes")
    out: Dict[str, Any] = {}
    for name in per_class:
        out[name] = GaugeMetricFamily(name, _HELP[name], labels=[LABEL],
                                      unit="bytes" if name.endswith("_bytes") else "")
    out["classtrack_snapshots"] = CounterMetricFamily(
        "classtrack_snapshots", _HELP["classtrack_snapshots"])
    for name in ("classtrack_tracked_instances", "classtrack_last_snapshot_age_seconds",
                 "classtrack_last_snapshot_cost_seconds", "classtrack_monitor_interval_seconds",
                 "classtrack_monitor_effective_interval_seconds",
                 "classtrack_monitor_stretched"):
        out[name] = GaugeMetricFamily(name, _HELP[name],
                                      unit="seconds" if name.endswith("_seconds") else "")
    for name in ("classtrack_process_resident_bytes",
                 "classtrack_process_resident_peak_bytes"):
        out[name] = GaugeMetricFamily(name, _HELP[name], unit="bytes")
    return out
