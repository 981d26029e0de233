"""`python -m beam_cxone report`: what the job wrote, read back from Cassandra, to look at.

  python -m beam_cxone report --since=2026-11-28T00:00:00Z --until=2026-11-29T00:00:00Z --limit=10
  python -m beam_cxone report --since=1764288000000 --until=1764374400000 --png=volumes.png

Prints three tables over the half-open range [--since, --until) (RFC 3339 or epoch ms; either may
be left out): interaction volumes per channel (rows whose `window_start` is in the range), the
customers with most pattern alerts (`alert_time` in the range) and dead letters by reason
(`recorded_at` in the range: the Kafka record's timestamp or the file's modification time).
`--png FILE` draws interactions per channel over time above a strip with a tick per alert,
1200x700 px (matplotlib on the Agg backend: no display needed).

Reads: with both bounds and at most MAX_PARTITION_DAYS days between them, only the partitions of
the range: `interaction_volumes` per (channel, day) for every channel of EVENTS.md and
`dead_letters` per day, each with a clustering-column range. `pattern_alerts` is partitioned by
customer, so it is read whole (only the columns the report needs) and filtered here, as every table
is when a bound is missing.

Aggregation and formatting are pure functions over row dicts (`beam_cxone.tables`), tested without
Cassandra; only `read_report_data` talks to the cluster.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import sys
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any
from typing import NamedTuple

from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone import options as opts
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.cassandra_write import from_cql_value
from beam_cxone.io.cassandra_write import open_session
from beam_cxone.io.cassandra_write import to_cql_value
from beam_cxone.records import Channel
from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.tables import INTERACTION_VOLUMES
from beam_cxone.tables import PATTERN_ALERTS
from beam_cxone.tables import Table
from beam_cxone.tables import iso_date
from beam_cxone.tables import iso_millis

__all__ = [
    "MAX_PARTITION_DAYS",
    "PNG_DPI",
    "PNG_HEIGHT_PX",
    "PNG_WIDTH_PX",
    "ChannelVolume",
    "CustomerAlerts",
    "ReasonCount",
    "ReportData",
    "TimeRange",
    "VolumeSeries",
    "dead_letters_by_reason",
    "format_report",
    "format_table",
    "read_report_data",
    "render_png",
    "run_report_command",
    "top_customers",
    "volume_series",
    "volumes_by_channel",
]

_LOG = logging.getLogger(__name__)

# Past this many days, one query per (channel, day) costs more than one scan of the table.
MAX_PARTITION_DAYS = 92
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
_DAY_MS = 86_400_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Only the columns the report shows: a dead letter's payload (up to 64 KiB) is never read.
_VOLUME_COLUMNS = ("channel", "window_start", "window_end", "interactions", "events")
_ALERT_COLUMNS = ("customer_id", "alert_time", "alert_type", "channel", "tier", "region")
_DEAD_COLUMNS = ("recorded_at", "stage", "reason")


# ---- the range ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TimeRange:
    """[since_ms, until_ms) in epoch ms; None leaves that side open."""

    since_ms: int | None = None
    until_ms: int | None = None

    def __post_init__(self) -> None:
        if (
            self.since_ms is not None
            and self.until_ms is not None
            and self.since_ms >= self.until_ms
        ):
            raise ValueError(
                f"--since ({iso_millis(self.since_ms)}) must be before --until "
                f"({iso_millis(self.until_ms)})"
            )

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> TimeRange:
        """From the command line's RFC 3339 (with an offset) or epoch-ms strings."""
        bounds = []
        for flag, value in (("--since", since), ("--until", until)):
            try:
                bounds.append(opts.parse_time_ms(value))
            except ValueError as err:
                raise ValueError(f"{flag}: {err}") from None
        return cls(*bounds)

    def contains(self, ms: int) -> bool:
        return (self.since_ms is None or ms >= self.since_ms) and (
            self.until_ms is None or ms < self.until_ms
        )

    def days(self, max_days: int = MAX_PARTITION_DAYS) -> list[str] | None:
        """The UTC days (`YYYY-MM-DD`, the `day` partition values) the range touches, or None when a
        bound is open or there are more than `max_days` of them (then the tables are scanned)."""
        if self.since_ms is None or self.until_ms is None:
            return None
        first, last = self.since_ms // _DAY_MS, (self.until_ms - 1) // _DAY_MS
        if last - first + 1 > max_days:
            return None
        return [iso_date(day * _DAY_MS) for day in range(first, last + 1)]

    def describe(self) -> str:
        since = "-inf" if self.since_ms is None else iso_millis(self.since_ms)
        until = "+inf" if self.until_ms is None else iso_millis(self.until_ms)
        return f"[{since}, {until})"


# ---- aggregation (pure) -------------------------------------------------------------------------


class ChannelVolume(NamedTuple):
    """One channel over the range. `interactions` sums each window's distinct contacts."""

    channel: str
    windows: int
    interactions: int
    events: int
    max_per_window: int


class CustomerAlerts(NamedTuple):
    """A customer's alerts in the range; tier and region are those of the latest alert."""

    customer_id: str
    alerts: int
    first_alert_ms: int
    last_alert_ms: int
    tier: str
    region: str


class ReasonCount(NamedTuple):
    reason: str
    count: int
    stages: tuple[str, ...]


class ReportData(NamedTuple):
    """Rows in the range (dicts with at least the columns the report uses)."""

    volumes: list[dict]
    alerts: list[dict]
    dead_letters: list[dict]


def volumes_by_channel(rows: Iterable[dict]) -> list[ChannelVolume]:
    """Per channel: windows with data, interactions and events summed over them, the busiest window.
    Sorted by interactions (most first), then channel."""
    acc: dict[str, list[int]] = {}
    for r in rows:
        a = acc.setdefault(r["channel"], [0, 0, 0, 0])
        a[0] += 1
        a[1] += r["interactions"]
        a[2] += r["events"]
        a[3] = max(a[3], r["interactions"])
    found = [ChannelVolume(channel, *a) for channel, a in acc.items()]
    return sorted(found, key=lambda v: (-v.interactions, v.channel))


def _volume_total(channels: Sequence[ChannelVolume]) -> ChannelVolume:
    return ChannelVolume(
        "total",
        sum(c.windows for c in channels),
        sum(c.interactions for c in channels),
        sum(c.events for c in channels),
        max((c.max_per_window for c in channels), default=0),
    )


def top_customers(alerts: Iterable[dict], limit: int | None = None) -> list[CustomerAlerts]:
    """Customers by number of alerts (most first, then customer id), at most `limit` of them."""
    by_customer: dict[str, list[dict]] = {}
    for a in alerts:
        by_customer.setdefault(a["customer_id"], []).append(a)
    found = []
    for customer_id, rows in by_customer.items():
        rows.sort(key=lambda a: (a["alert_time"], a.get("alert_type") or ""))
        latest = rows[-1]
        found.append(
            CustomerAlerts(
                customer_id,
                len(rows),
                rows[0]["alert_time"],
                latest["alert_time"],
                latest.get("tier") or "",
                latest.get("region") or "",
            )
        )
    found.sort(key=lambda c: (-c.alerts, c.customer_id))
    return found if limit is None else found[:limit]


def dead_letters_by_reason(rows: Iterable[dict]) -> list[ReasonCount]:
    """Dead letters per reason with the stages that produced them; most frequent first."""
    counts: dict[str, int] = {}
    stages: dict[str, set[str]] = {}
    for r in rows:
        counts[r["reason"]] = counts.get(r["reason"], 0) + 1
        stages.setdefault(r["reason"], set()).add(r.get("stage") or "")
    found = [ReasonCount(reason, n, tuple(sorted(stages[reason]))) for reason, n in counts.items()]
    return sorted(found, key=lambda c: (-c.count, c.reason))


# ---- text ---------------------------------------------------------------------------------------


def format_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Iterable[int] = ()
) -> str:
    """Columns two spaces apart, each as wide as its widest cell; `numeric` columns right-aligned.
    Every line starts with two spaces; no trailing spaces."""
    right = set(numeric)
    cells = [[str(h) for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = []
    for line in cells:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append(("  " + "  ".join(parts)).rstrip())
    return "\n".join(lines)


def _share(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}%" if total else "-"


def format_report(data: ReportData, rng: TimeRange, *, limit: int = 20, keyspace: str = "") -> str:
    """The whole text report; `limit` caps the customers and reasons shown."""
    where = f" of {keyspace}" if keyspace else ""
    out = [
        f"report{where}: window_start / alert_time / recorded_at in {rng.describe()}",
        f"{len(data.volumes)} volume rows, {len(data.alerts)} alerts, "
        f"{len(data.dead_letters)} dead letters",
        "",
        "interaction volumes per channel (interactions: distinct contacts per window, summed)",
    ]
    channels = volumes_by_channel(data.volumes)
    if channels:
        rows = [list(c) for c in [*channels, _volume_total(channels)]]
        out.append(
            format_table(
                ["channel", "windows", "interactions", "events", "max/window"], rows, (1, 2, 3, 4)
            )
        )
    else:
        out.append("  (none)")

    customers = top_customers(data.alerts)
    out += [
        "",
        f"customers with most alerts (top {min(limit, len(customers))} of {len(customers)})",
    ]
    if customers:
        rows = [
            [
                c.customer_id,
                c.alerts,
                iso_millis(c.first_alert_ms),
                iso_millis(c.last_alert_ms),
                c.tier,
                c.region,
            ]
            for c in customers[:limit]
        ]
        out.append(
            format_table(
                ["customer", "alerts", "first_alert", "last_alert", "tier", "region"], rows, (1,)
            )
        )
    else:
        out.append("  (none)")

    reasons = dead_letters_by_reason(data.dead_letters)
    total = len(data.dead_letters)
    out += ["", f"dead letters by reason (top {min(limit, len(reasons))} of {len(reasons)})"]
    if reasons:
        rows = [
            [r.reason, r.count, _share(r.count, total), ",".join(r.stages)] for r in reasons[:limit]
        ]
        out.append(format_table(["reason", "count", "share", "stage"], rows, (1, 2)))
    else:
        out.append("  (none)")
    return "\n".join(out) + "\n"


# ---- the chart ----------------------------------------------------------------------------------


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
    """The same colour for a channel in every chart (tab10 in the order of EVENTS.md)."""
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
    known = [c.value for c in Channel]
    return palette[known.index(channel)] if channel in known else "#7f7f7f"


# ---- Cassandra ----------------------------------------------------------------------------------


def _select(
    session,
    prepared: dict[str, Any],
    cfg: CassandraConfig,
    table: Table,
    columns: Sequence[str],
    where: str = "",
    params: Sequence[Any] = (),
) -> list[dict]:
    cql = f"SELECT {', '.join(columns)} FROM {cfg.keyspace}.{table.name}"
    if where:
        cql += f" WHERE {where}"
    # One PREPARE per distinct query, however many partitions it is run for.
    statement = prepared.get(cql)
    if statement is None:
        statement = prepared[cql] = session.prepare(cql)
    types = [table.column_type(c) for c in columns]
    return [
        {c: from_cql_value(t, v) for c, t, v in zip(columns, types, row, strict=True)}
        for row in session.execute(statement, list(params))
    ]


def _bounds(rng: TimeRange) -> tuple[Any, Any]:
    return to_cql_value("timestamp", rng.since_ms), to_cql_value("timestamp", rng.until_ms)


def read_report_data(
    cfg: CassandraConfig, rng: TimeRange, *, max_partition_days: int = MAX_PARTITION_DAYS
) -> ReportData:
    """The rows of the range, by day partitions when the range allows it (see the module doc)."""
    days = rng.days(max_partition_days)
    cluster, session = open_session(cfg)
    prepared: dict[str, Any] = {}
    try:
        if days is None:
            volumes = _select(session, prepared, cfg, INTERACTION_VOLUMES, _VOLUME_COLUMNS)
            dead = _select(session, prepared, cfg, DEAD_LETTERS, _DEAD_COLUMNS)
        else:
            since, until = _bounds(rng)
            volumes, dead = [], []
            for day in days:
                date = to_cql_value("date", day)
                for channel in Channel:
                    volumes += _select(
                        session,
                        prepared,
                        cfg,
                        INTERACTION_VOLUMES,
                        _VOLUME_COLUMNS,
                        "channel = ? AND day = ? AND window_start >= ? AND window_start < ?",
                        (channel.value, date, since, until),
                    )
                dead += _select(
                    session,
                    prepared,
                    cfg,
                    DEAD_LETTERS,
                    _DEAD_COLUMNS,
                    "day = ? AND recorded_at >= ? AND recorded_at < ?",
                    (date, since, until),
                )
        alerts = _select(session, prepared, cfg, PATTERN_ALERTS, _ALERT_COLUMNS)
    finally:
        cluster.shutdown()
    _LOG.info(
        "report read %s: %d volume rows, %d alerts, %d dead letters (%s)",
        cfg.keyspace,
        len(volumes),
        len(alerts),
        len(dead),
        "full scans" if days is None else f"{len(days)} day partition(s)",
    )
    return ReportData(
        sorted(
            (r for r in volumes if rng.contains(r["window_start"])),
            key=lambda r: (r["window_start"], r["channel"]),
        ),
        sorted(
            (r for r in alerts if rng.contains(r["alert_time"])),
            key=lambda r: (r["alert_time"], r["customer_id"]),
        ),
        sorted(
            (r for r in dead if rng.contains(r["recorded_at"])),
            key=lambda r: (r["recorded_at"], r["reason"]),
        ),
    )


# ---- command ------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m beam_cxone report",
        description="Interaction volumes, alerts and dead letters from Cassandra.",
    )
    g = p.add_argument_group("report")
    g.add_argument(
        "--since",
        default=None,
        help="Range start, inclusive: RFC 3339 with an offset, or epoch ms. Default: open.",
    )
    g.add_argument(
        "--until",
        default=None,
        help="Range end, exclusive: RFC 3339 with an offset, or epoch ms. Default: open.",
    )
    g.add_argument(
        "--limit",
        type=int,
        default=20,
        help="Customers and dead-letter reasons shown, at most. Default 20.",
    )
    g.add_argument(
        "--png",
        default=None,
        metavar="FILE",
        help=f"Also draw volumes and alerts to this PNG, {PNG_WIDTH_PX}x{PNG_HEIGHT_PX} px.",
    )
    g.add_argument(
        "--log_level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Log level (set up by the command line). Default INFO.",
    )
    opts.CassandraOptions._add_argparse_args(p)  # the job's --cassandra_* flags, same defaults
    return p


def _fail(message: str) -> int:
    print(f"beam_cxone report: {message}", file=sys.stderr)
    return 2


def run_report_command(argv: list[str]) -> int:
    """Prints the report; with --png also writes the chart. 0 on success, 2 on a usage or read
    error."""
    args = _parser().parse_args(argv)
    if args.limit < 1:
        return _fail(f"--limit must be >= 1, got {args.limit}")
    try:
        rng = TimeRange.parse(args.since, args.until)
        cassandra = {k: v for k, v in vars(args).items() if k.startswith("cassandra_")}
        cfg = opts.cassandra_config(PipelineOptions([], **cassandra))
    except ValueError as err:
        return _fail(str(err))
    try:
        data = read_report_data(cfg, rng)
    except Exception as err:  # noqa: BLE001 - any driver error ends the command with its name
        return _fail(
            f"cannot read {cfg.keyspace} from {','.join(cfg.hosts)}:{cfg.port}: "
            f"{type(err).__name__}: {str(err)[:300]}"
        )
    sys.stdout.write(format_report(data, rng, limit=args.limit, keyspace=cfg.keyspace))
    if args.png:
        render_png(data, args.png, title=f"Interactions per channel, {rng.describe()}")
        print(f"\nchart written to {args.png} ({PNG_WIDTH_PX}x{PNG_HEIGHT_PX} px)")
    return 0
