"""A live tracker's dump written as the program runs (dump format 1.2,
streamed): one frame per snapshot, appended and handed to the kernel as
it is taken, so that a process killed at any instant (SIGKILL, the OOM
killer) leaves a dump that reads up to its last snapshot.

Each frame carries only what is new since the one before: records
tracked since (from ``Tracker.export(rec_start, ...)``), deaths and new
reprs of earlier records, and the new snapshots.  The stream is written
from the tracker's snapshot hook, under its snapshot lock.

``classtrack run`` uses it; ``finish()`` writes the last frame (END).  A
stream that cannot go on (the tracker was cleared, a write failed, the
process forked) says so, and ``run`` then writes the dump whole at the
end as before, unless records were forgotten.

``forget=True``: after each frame, the tracker gives back the memory of
the records the stream holds for good (written, dead before the latest
snapshot), whole pages of them at a time (``Tracker.forget``).  On a long
run most records are of objects long dead: without it their 32 bytes
each stay to the end (20 MB of a Sphinx build's 623,571).  The tracker
then cannot answer whole-history questions (``index``, ``stats()``,
``history()``): the dump can.
"""
from __future__ import annotations

import array
import os
from typing import Any, Callable, Dict, List, Optional

from classtrack import _core, _safefile
from classtrack._dataset import snapshot_rows, trace_frames


class DumpStreamer:
    """Streams `tracker`'s dump to `path` (`named`: the user named it, see
    ``_safefile``)."""

    def __init__(self, tracker: Any, path: str, named: bool,
                 transform: Optional[Callable[[tuple], tuple]] = None,
                 death_offset: float = 0.0, forget: bool = False) -> None:
        self.tracker = tracker
        self.forget = forget
        self.names_written: set = set()     # name numbers of the records written
        # a spawned worker's frames on its parent's clock (run --follow-fork):
        # transform(dataset) shifts times and names, death_offset the DEATHS
        self._transform = transform
        self._death_offset = death_offset
        self.path = path
        self.named = named
        self.pid = os.getpid()
        self.failed: Optional[str] = None   # why the stream stopped, if it did
        self._file: Optional[_safefile.Streamed] = None
        self._stream: Any = None
        self._class_index: Dict[type, int] = {}
        self._classes: List[str] = []
        self._traces: List[tuple] = []      # the stream's, converted
        self._dead = bytearray()            # per record written: its death is written

    @property
    def active(self) -> bool:
        """Frames can still be written (this process's stream, not failed)."""
        return self.failed is None and os.getpid() == self.pid and \
            (self._stream is None or not self._stream.ended)

    def on_snapshot(self, snapshot: Any) -> None:
        """The tracker's snapshot hook: one frame."""
        self.frame(final=False)

    def frame(self, final: bool) -> bool:
        """Write what is new as one frame (the last: `final`).  False when the
        stream cannot go on; the reason is in ``failed``."""
        if not self.active:
            return False
        try:
            self._frame(final)
            return True
        except (OSError, ValueError, RuntimeError) as exc:
            self.failed = getattr(exc, "strerror", None) or str(exc)
            self._close(sync=False)
            return False

    def finish(self) -> bool:
        """The last frame, then the file is flushed to disk and closed."""
        ok = self.frame(final=True)
        if ok:
            self._close(sync=True)
        return ok

    def _close(self, sync: bool) -> None:
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close(sync=sync)
            except OSError as exc:
                self.failed = self.failed or exc.strerror or str(exc)

    def _frame(self, final: bool) -> None:
        engine = self.tracker._engine
        if self._stream is None:
            self._file = _safefile.Streamed(self.path, self.named)
            self._stream = _core.DumpStream(self._file.file,
                                            process=(os.getpid(), os.getppid()))
        stream = self._stream
        rec_start, snap_start = stream.records, stream.snapshots
        if engine.nsnapshots < snap_start or len(self.tracker.snapshots) != engine.nsnapshots:
            raise RuntimeError("the tracker's snapshots were cleared")
        # the first frame: every repr; later ones: those changed since (the
        # engine keeps their record numbers, not a copy of the texts)
        first = stream.records == 0 and stream.snapshots == 0
        exp = engine.export(rec_start, snap_start, self._class_index, self._classes,
                            changed_reprs=not first)
        if first:
            # forgetting: the stream holds the texts for good, the engine
            # keeps only their hashes (to tell a changed text)
            engine.track_repr_changes(hand_off=self.forget)
        (names, classes, rec_id, rec_name, rec_class, rec_birth, rec_death, rec_trace,
         reprs, raw_traces, snap_cols) = exp
        source = engine.reprs
        for tr in raw_traces[len(self._traces):]:
            self._traces.append(trace_frames(tr, source))
        deaths = None
        if rec_start:
            deaths = engine.new_deaths(self._dead, rec_start)
            if not deaths[0]:
                deaths = None
            elif self._death_offset:
                times = array.array("d")
                times.frombytes(deaths[1])
                deaths = (deaths[0], array.array(
                    "d", [t + self._death_offset for t in times]).tobytes())
        rows = snapshot_rows(self.tracker, self.tracker.snapshots[snap_start:], snap_cols)
        # the stream's own lists: the writer copies what it reads of them
        ds = (names, classes, rec_id, rec_name, rec_class, rec_birth, rec_death,
              rec_trace, reprs, self._traces, rows)
        if self._transform is not None:
            ds = self._transform(ds)
        stream.frame(ds, deaths, final)
        # the new records written dead carry their death already
        self._dead.extend(bytes(d != 0.0 for d in memoryview(rec_death).cast("d")))
        self.names_written.update(memoryview(rec_name).cast("I"))
        if self._file is not None:
            self._file.publish()
        if self.forget and not final and self.tracker.snapshots:
            # what the stream now holds for good; records a snapshot from
            # the latest on names are kept (they died after it, or live)
            try:
                engine.forget(self._dead, self.tracker.snapshots[-1].timestamp)
            except Exception:   # noqa: BLE001 - it only saves memory: never the dump's cost
                self.forget = False
