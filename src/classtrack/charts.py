"""Charts through matplotlib -- a drop-in for ``pympler.charts``.

An optional extra: ``pip install classtrack[charts]``.  The HTML report
does not need it (its charts are inline SVG drawn by classtrack itself).
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["tracker_timespace"]


_MISSING = ("classtrack.charts needs matplotlib to draw %s: pip install "
            "'classtrack[charts]' (or pip install matplotlib); nothing was written. "
            "The HTML report draws its charts without it")


def _pyplot() -> Any:
    """pyplot, or None when matplotlib is missing."""
    try:
        import matplotlib  # optional dependency (classtrack[charts]), heavy to import
    except ImportError:
        return None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # optional, heavy: only when a chart is drawn
    return plt


def tracker_timespace(filename: str, stats: Any) -> None:
    """Memory over time, stacked by class, with the process's RSS, written
    to `filename` (the format follows its extension: .png, .svg, .pdf).

    Without matplotlib, as in Pympler, nothing is drawn and the program goes
    on; unlike Pympler, a RuntimeWarning says so and names the extra."""
    plt = _pyplot()
    if plt is None:
        warnings.warn(_MISSING % (filename,), RuntimeWarning, stacklevel=2)
        return
    stats.annotate()
    snaps = stats.snapshots
    classes = stats.tracked_classes
    xs = [s.timestamp for s in snaps]
    series = [[s.classes[c]["sum"] for s in snaps] for c in classes]
    fig, ax = plt.subplots(figsize=(10, 5))
    try:
        if series and xs:
            ax.stackplot(xs, series, labels=classes)
        rss = [getattr(s.system_total, "rss", 0) for s in snaps]
        if any(rss):
            ax.plot(xs, rss, "--", color="#d63a3a", label="process RSS")
        ax.set_xlabel("time since start (s)")
        ax.set_ylabel("memory (bytes)")
        ax.set_title("Memory over time by class")
        if classes or any(rss):
            ax.legend(loc="upper left", fontsize="small", ncol=2)
        fig.tight_layout()
        fig.savefig(filename)
    finally:
        plt.close(fig)
