"""The four result tables of docs/SEMANTICS.md: one description serves the Cassandra DDL, the Cassandra
writer and the JSON Lines export, so their columns cannot drift apart.

A row is a plain dict keyed by column name. Inside the pipeline, `timestamp` columns hold integer epoch
milliseconds and `date` columns an ISO `YYYY-MM-DD` string; each sink converts once at its edge.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools

__all__ = [
    "CUSTOMER_PROFILES",
    "DEAD_LETTERS",
    "INTERACTION_VOLUMES",
    "KEYSPACE",
    "PATTERN_ALERTS",
    "TABLES",
    "Table",
    "iso_date",
    "iso_millis",
]

KEYSPACE = "cxone_analytics"


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, CQL type) in DDL order
    partition_key: tuple[str, ...]
    clustering_key: tuple[str, ...] = ()

    @functools.cached_property
    def column_names(self) -> tuple[str, ...]:
        """Cached: the writer checks every row against it."""
        return tuple(name for name, _ in self.columns)

    @property
    def primary_key(self) -> tuple[str, ...]:
        return self.partition_key + self.clustering_key

    def column_type(self, column: str) -> str:
        return dict(self.columns)[column]

    def key_of(self, row: dict) -> tuple:
        """The full primary key of a row: an upsert replaces exactly the row with this key."""
        return tuple(row[c] for c in self.primary_key)


INTERACTION_VOLUMES = Table(
    "interaction_volumes",
    (("channel", "text"), ("day", "date"), ("window_start", "timestamp"), ("window_end", "timestamp"),
     ("interactions", "bigint"), ("events", "bigint"), ("updated_at", "timestamp")),
    partition_key=("channel", "day"),
    clustering_key=("window_start",),
)
PATTERN_ALERTS = Table(
    "pattern_alerts",
    (("customer_id", "text"), ("alert_time", "timestamp"), ("alert_type", "text"), ("alert_id", "text"),
     ("channel", "text"), ("failure_count", "int"), ("first_failure_time", "timestamp"),
     ("failure_event_ids", "list<text>"), ("callback_event_id", "text"), ("tier", "text"),
     ("region", "text"), ("detected_at", "timestamp")),
    partition_key=("customer_id",),
    clustering_key=("alert_time", "alert_type", "alert_id"),
)
CUSTOMER_PROFILES = Table(
    "customer_profiles",
    (("customer_id", "text"), ("tier", "text"), ("region", "text"), ("updated_at", "timestamp")),
    partition_key=("customer_id",),
)
DEAD_LETTERS = Table(
    "dead_letters",
    (("day", "date"), ("recorded_at", "timestamp"), ("dead_letter_id", "text"), ("stage", "text"),
     ("reason", "text"), ("payload", "text"), ("source", "text")),
    partition_key=("day",),
    clustering_key=("recorded_at", "dead_letter_id"),
)
TABLES = {t.name: t for t in (INTERACTION_VOLUMES, PATTERN_ALERTS, CUSTOMER_PROFILES, DEAD_LETTERS)}

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def iso_millis(ms: int) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, the export's timestamp format."""
    t = _EPOCH + dt.timedelta(milliseconds=ms)
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}."
            f"{t.microsecond // 1000:03d}Z")


def iso_date(ms: int) -> str:
    """The UTC date of an instant, `YYYY-MM-DD` (the `day` partition columns)."""
    d = (_EPOCH + dt.timedelta(milliseconds=ms)).date()
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
