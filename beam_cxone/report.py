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
the range: `interaction_volumes` per (channel, day) for every channel of docs/RECORDS.md and
`dead_letters` per day, each with a clustering-column range. `pattern_alerts` is partitioned by
customer, so it is read whole (only the columns the report needs) and filtered here, as every table
is when a bound is missing.

This module is the Cassandra reads (the command is `beam_cxone.commands.report`); only
`read_report_data` talks to the cluster.
The range, the aggregation and the text are pure functions over row dicts in
`beam_cxone.report_tables`, the chart (the one matplotlib user) is `beam_cxone.report_chart`; both
are tested without Cassandra, and their public names are re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from beam_cxone.console import held_logs
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.cassandra_write import from_cql_value
from beam_cxone.io.cassandra_write import open_session
from beam_cxone.io.cassandra_write import to_cql_value
from beam_cxone.records import Channel
from beam_cxone.report_chart import PNG_DPI
from beam_cxone.report_chart import PNG_HEIGHT_PX
from beam_cxone.report_chart import PNG_WIDTH_PX
from beam_cxone.report_chart import VolumeSeries
from beam_cxone.report_chart import render_png
from beam_cxone.report_chart import volume_series
from beam_cxone.report_tables import MAX_PARTITION_DAYS
from beam_cxone.report_tables import ChannelVolume
from beam_cxone.report_tables import CustomerAlerts
from beam_cxone.report_tables import ReasonCount
from beam_cxone.report_tables import ReportData
from beam_cxone.report_tables import TimeRange
from beam_cxone.report_tables import dead_letters_by_reason
from beam_cxone.report_tables import format_report
from beam_cxone.report_tables import format_table
from beam_cxone.report_tables import top_customers
from beam_cxone.report_tables import volumes_by_channel
from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.tables import INTERACTION_VOLUMES
from beam_cxone.tables import PATTERN_ALERTS
from beam_cxone.tables import Table

# Re-exported from report_tables and report_chart: `beam_cxone.report` keeps its public names.
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
    "top_customers",
    "volume_series",
    "volumes_by_channel",
]

_LOG = logging.getLogger(__name__)

# Only the columns the report shows: a dead letter's payload (up to 64 KiB) is never read.
_VOLUME_COLUMNS = ("channel", "window_start", "window_end", "interactions", "events")
_ALERT_COLUMNS = ("customer_id", "alert_time", "alert_type", "channel", "tier", "region")
_DEAD_COLUMNS = ("recorded_at", "stage", "reason")


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
    with held_logs("cassandra"):  # a failed connect is the one line the command prints
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
