"""A small SVG chart renderer: no dependency, output inline in HTML.

Every chart has axes with units and readable ticks, a legend, and hover
text (SVG <title>) with exact values.  All text passes through escape().
"""

from __future__ import annotations

import math
from html import escape
from typing import List, Optional, Sequence, Tuple

# 20 colours that stay distinguishable next to each other (hue-spread,
# alternating lightness); the 21st series and beyond reuse them.
PALETTE = [
    "#1f6fb4", "#f08a24", "#2c9f45", "#d63a3a", "#8a5cc2", "#8c564b", "#e07bbf",
    "#6b6b6b", "#b8b820", "#17b3c7", "#9dc3e8", "#ffbe7a", "#93dc8a", "#ff9c97",
    "#c8b3de", "#c79d92", "#f6b8d3", "#c4c4c4", "#e0e08c", "#9fe0ea",
]

MAX_LINE_POINTS = 1000  # a line with more events is drawn as its envelope per pixel

FONT = "font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:12px"
# Tick labels are laid out without a browser to measure them: CHAR_W is a
# generous width of one character of FONT (digits and lowercase letters are
# 6-7 px wide at 12 px), so a label is never wider than text_width() says.
CHAR_W = 7.5
TICK_GAP = 10       # px kept free between two neighbouring tick labels
MAX_X_TICKS = 10
BAR_LABEL_CHARS = 24    # a snapshot's label under its bar, cut to this


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def fmt_bytes(n: float) -> str:
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            if unit == "B":
                return "%d B" % n
            return ("%.1f %s" if abs(n) < 100 else "%.0f %s") % (n, unit)
        n /= 1024.0
    return str(n)


def text_width(text: str) -> float:
    """An upper estimate of `text`'s width in px, in FONT."""
    return len(text) * CHAR_W


def fmt_seconds(t: float) -> str:
    """A time for hover text and tables: about three significant digits,
    in ms below a second."""
    if t >= 3600:
        return "%dh%02dm" % (t // 3600, t % 3600 // 60)
    if t >= 60:
        return "%dm%02ds" % (t // 60, t % 60)
    if t >= 10:
        return "%.0fs" % t
    if t >= 1:
        return "%.1fs" % t
    if t >= 0.01:
        return "%.0f ms" % (t * 1000)
    return "%.1f ms" % (t * 1000)


# Steps of a time axis, in seconds: 1-2-5 below a minute, then whole
# minutes and hours that divide an hour or a day.
_TIME_STEPS = ([m * 10.0 ** e for e in range(-6, 2) for m in (1, 2, 5) if m * 10.0 ** e < 60]
               + [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400])


def _decimals(step: float) -> int:
    """Decimals that show every multiple of `step` (given in the unit printed)."""
    for d in range(0, 10):
        if abs(step * 10 ** d - round(step * 10 ** d)) < 1e-6 * step * 10 ** d:
            return d
    return 9


def fmt_time_tick(t: float, step: float, hi: float, extra: int = 0) -> str:
    """A time-axis label for a multiple of `step` on an axis ending at `hi`:
    the precision comes from the step (plus `extra` decimals), the unit
    from the axis (ms while the axis stays under a second, then s, m, h)."""
    t = 0.0 if abs(t) < step * 1e-6 else t
    if step >= 60:          # whole minutes or hours
        if step % 3600 == 0:
            return "%dh" % round(t / 3600)
        if hi >= 3600:
            return "%dh%02dm" % divmod(round(t / 60), 60)
        return "%dm" % round(t / 60)
    if hi < 1:
        return "%.*f ms" % (_decimals(step * 1000) + extra, t * 1000)
    d = _decimals(step) + extra
    if hi < 60:
        return "%.*fs" % (d, t)
    minutes, sec = divmod(round(t, d), 60)
    secs = "%0*.*f" % (d + 3 if d else 2, d, sec)
    if hi >= 3600:
        return "%dh%02dm%ss" % (minutes // 60, minutes % 60, secs)
    return "%dm%ss" % (minutes, secs)


def time_ticks(lo: float, hi: float, px: float,
               max_count: int = MAX_X_TICKS, origin: Optional[float] = None
               ) -> List[Tuple[float, str]]:
    """Ticks of a time axis [lo, hi] drawn `px` pixels wide: multiples of a
    round step after `origin` (default lo: "time since start"), labelled
    by their time since it, as many as fit with their labels TICK_GAP apart
    (at most max_count), labels all different.  At least one tick (lo)."""
    if not hi > lo:
        hi = lo + 1
    if origin is None:
        origin = lo
    span = hi - lo
    for step in _TIME_STEPS:
        if span / step > max_count:
            continue
        first = math.ceil((lo - origin) / step - 1e-9)
        last = int(math.floor((hi - origin) / step + 1e-9))
        since = [k * step for k in range(first, last + 1)]
        values = [origin + t for t in since]
        if not values:
            continue
        for extra in range(0, 3):
            labels = [fmt_time_tick(t, step, hi - origin, extra) for t in since]
            if len(set(labels)) == len(labels):
                break
        else:
            continue
        room = step / span * px
        if len(values) == 1 or room >= max(text_width(t) for t in labels) + TICK_GAP:
            if len(values) == 1 and step < span:
                continue    # a finer step that fits gives more than one tick
            return list(zip(values, labels))
    return [(lo, fmt_seconds(lo - origin))]


def nice_ticks(lo: float, hi: float, count: int = 5, binary: bool = False) -> List[float]:
    """Round tick values covering [lo, hi]; powers of 1024 for bytes."""
    if hi <= lo:
        hi = lo + 1
    span = hi - lo
    if binary and span >= 1024:
        scale = 1024 ** int(math.log(span, 1024))
        raw = span / scale / count
        step = scale * _nice(raw)
    else:
        step = _nice(span / count)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 0.5:
        if v >= lo - step * 0.01:
            ticks.append(v)
        v += step
    return ticks


def _nice(raw: float) -> float:
    if raw <= 0:
        return 1.0
    exp = math.floor(math.log10(raw))
    frac = raw / 10 ** exp
    for nice in (1, 2, 2.5, 5, 10):
        if frac <= nice:
            return nice * 10 ** exp
    return 10 ** (exp + 1)


class Frame:
    """Plot area geometry and scales."""

    def __init__(self, width: int, height: int, x_range: Tuple[float, float],
                 y_range: Tuple[float, float], left: int = 72, right: int = 16,
                 top: int = 16, bottom: int = 40) -> None:
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.x0, self.x1 = x_range
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1
        self.y0, self.y1 = y_range
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1

    def x(self, v: float) -> float:
        w = self.width - self.left - self.right
        return self.left + (v - self.x0) / (self.x1 - self.x0) * w

    def y(self, v: float) -> float:
        h = self.height - self.top - self.bottom
        return self.top + h - (v - self.y0) / (self.y1 - self.y0) * h


def _axes(f: Frame, xticks: Sequence[Tuple[float, str]], yticks: Sequence[Tuple[float, str]],
          xlabel: str, ylabel: str) -> List[str]:
    out = ['<g class="axes" stroke="#999" stroke-width="1">']
    out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>'
               % (f.left, f.y(f.y0), f.width - f.right, f.y(f.y0)))
    out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>'
               % (f.left, f.top, f.left, f.y(f.y0)))
    out.append("</g>")
    out.append('<g class="ticks" style="%s" fill="#444">' % FONT)
    for v, text in yticks:
        y = f.y(v)
        out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>'
                   % (f.left, y, f.width - f.right, y))
        out.append('<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>'
                   % (f.left - 6, y, escape(text)))
    last_right = -math.inf
    for v, text in xticks:
        x = f.x(v)
        half = text_width(text) / 2
        if x - half < last_right + TICK_GAP:
            continue        # would touch the label before it
        last_right = x + half
        out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>'
                   % (x, f.y(f.y0), x, f.y(f.y0) + 4))
        out.append('<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>'
                   % (x, f.y(f.y0) + 16, escape(text)))
    out.append('<text x="%.1f" y="%.1f" text-anchor="middle" fill="#222">%s</text>'
               % ((f.left + f.width - f.right) / 2, f.height - 6, escape(xlabel)))
    out.append('<text transform="translate(14 %.1f) rotate(-90)" text-anchor="middle" '
               'fill="#222">%s</text>' % ((f.top + f.y(f.y0)) / 2, escape(ylabel)))
    out.append("</g>")
    return out


def legend(items: Sequence[Tuple[str, str, str]]) -> str:
    """HTML legend: (label, colour, style) with style 'box' or 'line' or 'dash'."""
    parts = ['<ul class="legend">']
    for label, col, style in items:
        if style == "box":
            mark = '<span class="swatch" style="background:%s"></span>' % col
        else:
            dash = ' stroke-dasharray="5 3"' if style == "dash" else ""
            mark = ('<svg width="18" height="10" aria-hidden="true"><line x1="0" y1="5" '
                    'x2="18" y2="5" stroke="%s" stroke-width="2.5"%s/></svg>' % (col, dash))
        parts.append("<li>%s%s</li>" % (mark, escape(label)))
    parts.append("</ul>")
    return "".join(parts)


def _svg_open(f: Frame, label: str) -> str:
    return ('<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" '
            'height="%d" xmlns="http://www.w3.org/2000/svg">'
            % (escape(label), f.width, f.height, f.width, f.height))


def stacked_area(xs: Sequence[float], series: Sequence[Tuple[str, Sequence[float]]],
                 lines: Sequence[Tuple[str, Sequence[float], str, str]] = (),
                 width: int = 860, height: int = 320, label: str = "chart",
                 xy_lines: Sequence[Tuple[str, Sequence[Tuple[float, float]], str, str]] = ()
                 ) -> str:
    """Stacked areas (one per series) over time, and optional lines on top:
    `lines` (name, ys, colour, style) at the times `xs`, `xy_lines` (name,
    [(time, value)], colour, style) at times of their own (one process's
    RSS in a merged report, measured at that process's snapshots)."""
    n = len(xs)
    tops = [0.0] * n
    ymax = 0.0
    for _, ys in series:
        for i in range(n):
            tops[i] += ys[i]
    ymax = max(tops + [0.0] + [max(ys, default=0) for _, ys, _, _ in lines])
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    for _, pts, _, _ in xy_lines:
        if pts:
            x0, x1 = min(x0, min(x for x, _ in pts)), max(x1, max(x for x, _ in pts))
            ymax = max(ymax, max(y for _, y in pts))
    if x1 == x0:
        x0, x1 = (max(0.0, x0 - 0.5) if x0 >= 0 else x0 - 0.5), x1 + 0.5
    yt = nice_ticks(0, ymax or 1, 5, binary=True)
    f = Frame(width, height, (x0, x1), (0, max(yt[-1], ymax or 1)))
    out = [_svg_open(f, label)]
    out += _axes(f, time_ticks(x0, x1, f.x(x1) - f.x(x0)),
                 [(v, fmt_bytes(v)) for v in yt], "time since start", "memory")
    base = [0.0] * n
    for k, (name, ys) in enumerate(series):
        upper = [base[i] + ys[i] for i in range(n)]
        if n == 1:
            pts = [(f.x(xs[0]) - 6, f.y(upper[0])), (f.x(xs[0]) + 6, f.y(upper[0])),
                   (f.x(xs[0]) + 6, f.y(base[0])), (f.x(xs[0]) - 6, f.y(base[0]))]
        else:
            pts = [(f.x(xs[i]), f.y(upper[i])) for i in range(n)]
            pts += [(f.x(xs[i]), f.y(base[i])) for i in reversed(range(n))]
        out.append('<polygon class="area" points="%s" fill="%s" fill-opacity="0.85" '
                   'stroke="#fff" stroke-width="0.5"><title>%s</title></polygon>'
                   % (" ".join("%.1f,%.1f" % p for p in pts), color(k), escape(name)))
        for i in range(n):
            out.append('<circle cx="%.1f" cy="%.1f" r="4" fill="%s" class="pt"><title>%s at %s: '
                       '%s</title></circle>' % (f.x(xs[i]), f.y(upper[i]), color(k), escape(name),
                                               fmt_seconds(xs[i]), fmt_bytes(ys[i])))
        base = upper
    drawn = [(name, list(zip(xs, ys)), col, style) for name, ys, col, style in lines]
    for name, pts, col, style in drawn + list(xy_lines):
        dash = ' stroke-dasharray="6 4"' if style == "dash" else ""
        out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"%s>'
                   '<title>%s</title></polyline>'
                   % (" ".join("%.1f,%.1f" % (f.x(x), f.y(y)) for x, y in pts), col, dash,
                      escape(name)))
        for x, y in pts:
            out.append('<circle cx="%.1f" cy="%.1f" r="4" fill="%s" class="pt"><title>%s at %s: '
                       '%s</title></circle>' % (f.x(x), f.y(y), col, escape(name),
                                               fmt_seconds(x), fmt_bytes(y)))
    out.append("</svg>")
    return "".join(out)


def stacked_bars(categories: Sequence[str], series: Sequence[Tuple[str, Sequence[float]]],
                 width: int = 860, height: int = 320, label: str = "chart") -> str:
    """One bar per category (snapshot), stacked by series (class)."""
    n = len(categories)
    totals = [sum(ys[i] for _, ys in series) for i in range(n)]
    ymax = max(totals, default=0) or 1
    yt = nice_ticks(0, ymax, 5, binary=True)
    f = Frame(width, height, (0, max(n, 1)), (0, max(yt[-1], ymax)), bottom=56)
    out = [_svg_open(f, label)]
    step = (f.width - f.left - f.right) / max(n, 1)
    names = [c if len(c) <= BAR_LABEL_CHARS else c[:BAR_LABEL_CHARS - 1] + "…"
             for c in categories]
    # every k-th bar labelled: k bars give the room of the widest label
    widest = max([text_width(c) for c in names], default=0) + TICK_GAP
    k = max(1, int(math.ceil(widest / step))) if step > 0 else 1
    xt = [(i + 0.5, names[i]) for i in range(0, n, k)]
    out += _axes(f, xt, [(v, fmt_bytes(v)) for v in yt], "snapshot", "memory")
    for i in range(n):
        base = 0.0
        bw = step * 0.7
        x = f.left + step * i + (step - bw) / 2
        for k, (name, ys) in enumerate(series):
            v = ys[i]
            if v <= 0:
                continue
            y_top, y_bot = f.y(base + v), f.y(base)
            pct = 100.0 * v / totals[i] if totals[i] else 0
            out.append('<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
                       '<title>%s — %s: %s (%.1f%%)</title></rect>'
                       % (x, y_top, bw, max(y_bot - y_top, 0.5), color(k), escape(categories[i]),
                          escape(name), fmt_bytes(v), pct))
            base += v
    out.append("</svg>")
    return "".join(out)


def step_chart(pts: Sequence[Tuple[float, float]], marks: Sequence[Tuple[float, float]],
               name: str, x_range: Tuple[float, float], col: str = PALETTE[0],
               width: int = 860, height: int = 260, ylabel: str = "live instances",
               label: str = "chart") -> str:
    """A count over time as a step line, given as its points in data
    coordinates (_core.live_series makes them from the columns: every
    step, or per time bucket the range the count went through when there
    are more events than pixels), with hover marks."""
    x0, x1 = x_range
    if x1 <= x0:
        x1 = x0 + 1
    ymax = max([y for _, y in pts] + [y for _, y in marks], default=0) or 1
    yt = nice_ticks(0, ymax, 5)
    f = Frame(width, height, (x0, x1), (0, max(yt[-1], ymax)))
    out = [_svg_open(f, label)]
    out += _axes(f, time_ticks(x0, x1, f.x(x1) - f.x(x0)),
                 [(v, "%g" % v) for v in yt], "time since start", ylabel)
    if pts:
        line = [(f.x(x), f.y(y)) for x, y in pts]
        line.append((f.x(x1), line[-1][1]))
        out.append('<polyline class="line" points="%s" fill="none" stroke="%s" stroke-width="2">'
                   '<title>%s</title></polyline>'
                   % (" ".join("%.1f,%.1f" % p for p in line), col, escape(name)))
    for x, y in marks:
        out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s" class="pt"><title>%s: %d at %s'
                   '</title></circle>' % (f.x(x), f.y(y), col, escape(name), y,
                                         fmt_seconds(x)))
    out.append("</svg>")
    return "".join(out)


def histogram(values: Sequence[float], name: str, col: str = PALETTE[0], bins: int = 24,
              width: int = 860, height: int = 260, label: str = "chart",
              weights: Optional[Sequence[int]] = None) -> str:
    """Distribution of sizes: how many instances fall in each size range.
    With `weights`, values[i] stands for weights[i] instances (distinct
    values with their counts: the same chart from far fewer numbers)."""
    if not values:
        values, weights = [0], None
    if weights is None:
        weights = [1] * len(values)
    lo, hi = min(values), max(values)
    if hi - lo < max(8.0, hi * 0.02):  # (nearly) one size: centre it in a padded range
        pad = max(8.0, hi * 0.05)
        lo, hi = max(0.0, lo - pad), hi + pad
        bins = min(bins, 9)
    width_b = (hi - lo) / bins
    counts = [0] * bins
    for v, w in zip(values, weights):
        counts[min(int((v - lo) / width_b), bins - 1)] += w
    ymax = max(counts) or 1
    yt = nice_ticks(0, ymax, 5)
    f = Frame(width, height, (lo, hi), (0, max(yt[-1], ymax)))
    out = [_svg_open(f, label)]
    out += _axes(f, [(v, fmt_bytes(v)) for v in nice_ticks(lo, hi, 6, binary=True) if lo <= v <= hi],
                 [(v, "%g" % v) for v in yt], "instance size", "instances")
    for b in range(bins):
        a, z = lo + b * width_b, lo + (b + 1) * width_b
        x0, x1 = f.x(a), f.x(z)
        y = f.y(counts[b])
        out.append('<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
                   '<title>%s: %d instances of %s – %s</title></rect>'
                   % (x0 + 0.5, y, max(x1 - x0 - 1, 0.5), max(f.y(0) - y, 0.5), col,
                      escape(name), counts[b], fmt_bytes(a), fmt_bytes(z)))
    out.append("</svg>")
    return "".join(out)
