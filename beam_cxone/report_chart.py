"""The report's `--png` chart: interactions per channel over time above a strip of alert ticks.

Separate from `beam_cxone.report_tables` because it is the only part that needs matplotlib (imported
inside `render_png`, so the text report and `volume_series` work without it), and from
`beam_cxone.report` so the chart is drawn and tested without Cassandra.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from beam_cxone.records import Channel
from beam_cxone.report_tables import ReportData

__all__ = [
    "MAX_CHART_POINTS",
    "PNG_DPI",
    "PNG_HEIGHT_PX",
    "PNG_WIDTH_PX",
    "VolumeSeries",
    "render_png",
    "volume_series",
]

# The chart: a fixed pixel size, so it reads the same on every screen and in every test.
PNG_WIDTH_PX = 1200
PNG_HEIGHT_PX = 700
PNG_DPI = 100
# At most this many points per line: 10 s windows over an hour (360) are already a hairball.
MAX_CHART_POINTS = 150
# Chart bin sizes (ms) in increasing order; the smallest that keeps a line under MAX_CHART_POINTS.
_NICE_BINS_MS = tuple(
    s * 1000
    for s in (1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
) + (7 * 86400 * 1000,)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class VolumeSeries(NamedTuple):
    """Interactions per channel in equal bins over [start_ms, start_ms + bin_ms * len(bins_ms)),
    zeros where a channel had no window; channels ordered by total, most first."""

    bin_ms: int
    starts_ms: list[int]
    by_channel: dict[str, list[int]]


def _nice_bin(window_ms: int, span_ms: int, max_points: int) -> int:
    for size in _NICE_BINS_MS:
        if size >= window_ms and size % window_ms == 0 and span_ms / size <= max_points:
            return size
    size = window_ms
    while span_ms / size > max_points:
        size *= 2
    return size


def volume_series(rows: Sequence[dict], max_points: int = MAX_CHART_POINTS) -> VolumeSeries:
    """Volume rows summed into bins of the window size, or a larger multiple of it when the range
    holds more than `max_points` windows. Bins are aligned to the epoch, like the windows."""
    if not rows:
        return VolumeSeries(0, [], {})
    window_ms = min(max(1, r["window_end"] - r["window_start"]) for r in rows)
    lo = min(r["window_start"] for r in rows)
    hi = max(r["window_end"] for r in rows)
    bin_ms = _nice_bin(window_ms, hi - lo, max_points)
    first = lo - lo % bin_ms
    n = -(-(hi - first) // bin_ms)
    starts = [first + i * bin_ms for i in range(n)]
    sums: dict[str, list[int]] = {}
    for r in rows:
        sums.setdefault(r["channel"], [0] * n)[(r["window_start"] - first) // bin_ms] += r[
            "interactions"
        ]
    ordered = sorted(sums, key=lambda c: (-sum(sums[c]), c))
    return VolumeSeries(bin_ms, starts, {c: sums[c] for c in ordered})


def _duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"


def _utc(ms: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=ms)


def render_png(data: ReportData, path: str, *, title: str) -> None:
    """Interactions per channel over time (one line each, a fixed colour per channel) above a strip
    with a tick per pattern alert at its `alert_time`, one row per channel; PNG_WIDTH_PX x
    PNG_HEIGHT_PX pixels. matplotlib is imported here, so the text report works without it."""
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(PNG_WIDTH_PX / PNG_DPI, PNG_HEIGHT_PX / PNG_DPI), dpi=PNG_DPI)
    FigureCanvasAgg(fig)  # Agg, whatever backend the environment selects: no display needed
    grid = fig.add_gridspec(
        2, 1, height_ratios=(5, 1), hspace=0.08, left=0.09, right=0.80, top=0.92, bottom=0.10
    )
    ax = fig.add_subplot(grid[0])
    strip = fig.add_subplot(grid[1], sharex=ax)
    series = volume_series(data.volumes)
    # Steps: each bin's value holds over the whole bin, so an alert inside a bin lines up with it.
    edges = [_utc(s) for s in series.starts_ms]
    if edges:
        edges.append(_utc(series.starts_ms[-1] + series.bin_ms))
    for channel, ys in series.by_channel.items():
        ax.plot(
            edges,
            [*ys, ys[-1]],
            drawstyle="steps-post",
            color=_channel_colour(channel),
            linewidth=1.8,
            label=f"{channel} ({sum(ys):,})",
        )
    by_channel: dict[str, list[int]] = {}
    for a in data.alerts:
        by_channel.setdefault(a.get("channel") or "?", []).append(a["alert_time"])
    rows = sorted(by_channel, key=lambda c: (-len(by_channel[c]), c))
    for y, channel in enumerate(rows):
        times = sorted(by_channel[channel])
        strip.plot(
            [_utc(t) for t in times],
            [y] * len(times),
            linestyle="none",
            marker="|",
            markersize=14,
            markeredgewidth=1.8,
            color=_channel_colour(channel),
        )
    strip.set_yticks(range(len(rows)), rows, fontsize=8)
    strip.set_ylim(-0.7, max(len(rows), 1) - 0.3)
    strip.invert_yaxis()
    strip.set_ylabel("alerts", fontsize=9)
    strip.grid(True, axis="x", alpha=0.3)
    ax.tick_params(labelbottom=False)
    n_alerts = len(data.alerts)
    if not series.by_channel and not n_alerts:
        ax.text(
            0.5,
            0.5,
            "no interaction volumes or alerts in this range",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=14,
            color="grey",
        )
        ax.set_yticks([])
        strip.set_xticks([])
    else:
        locator = mdates.AutoDateLocator(tz=dt.UTC)
        strip.xaxis.set_major_locator(locator)
        strip.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=dt.UTC))
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        handles, _ = ax.get_legend_handles_labels()
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="|",
                markersize=14,
                markeredgewidth=1.8,
                color="black",
                label=f"pattern alerts ({n_alerts:,}),\nticks below",
            )
        )
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            title="channel (interactions)",
            frameon=False,
            fontsize=10,
        )
    per = _duration(series.bin_ms) if series.bin_ms else "window"
    ax.set_title(title, fontsize=14, loc="left")
    ax.set_ylabel(f"interactions per {per}")
    strip.set_xlabel("window start / alert time (UTC)")
    fig.savefig(path, format="png", dpi=PNG_DPI)


def _channel_colour(channel: str) -> str:
    """The same colour for a channel in every chart (tab10 in the order of docs/RECORDS.md)."""
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
    known = [c.value for c in Channel]
    return palette[known.index(channel)] if channel in known else "#7f7f7f"
