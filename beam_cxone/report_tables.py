"""The report's pure part: the time range, the aggregates and the text tables, over row dicts.

Separate from `beam_cxone.report` (the command and the Cassandra reads) so every number and every
line the report prints is tested without a cluster, and from `beam_cxone.report_chart` so the text
report never needs matplotlib.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any
from typing import NamedTuple

from beam_cxone.tables import iso_date
from beam_cxone.tables import iso_millis
from beam_cxone.time_args import parse_time_ms

__all__ = [
    "MAX_PARTITION_DAYS",
    "ChannelVolume",
    "CustomerAlerts",
    "ReasonCount",
    "ReportData",
    "TimeRange",
    "dead_letters_by_reason",
    "format_report",
    "format_table",
    "top_customers",
    "volumes_by_channel",
]

# Past this many days, one query per (channel, day) costs more than one scan of the table.
MAX_PARTITION_DAYS = 92
_DAY_MS = 86_400_000


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
                bounds.append(parse_time_ms(value))
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
