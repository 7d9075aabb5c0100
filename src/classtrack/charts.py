"""Charts through matplotlib -- a drop-in for ``pympler.charts``.

An optional extra: ``pip install classtrack[charts]``.  The HTML report
does not need it (its charts are inline SVG drawn by classtrack itself).
"""

from __future__ import annotations

from typing import Any

__all__ = ["tracker_timespace"]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            "classtrack.charts needs matplotlib: pip install 'classtrack[charts]' "
            "(or pip install matplotlib); the HTML report works without it") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def tracker_timespace(filename: str, stats: Any) -> None:
    """Memory over time, stacked by class, with the process's RSS, written
    to `filename` (the format follows its extension: .png, .svg, .pdf)."""
    plt = _pyplot()
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
