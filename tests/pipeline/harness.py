"""Runs `build_analytics` on a TestStream (streaming) or a Create (batch) and reads back the rows.

Rows leave the pipeline as files (tests/support/versions.py), so a test body runs on any runner
whose workers share this machine's file system. Streaming runs on the BundleBasedDirectRunner or on
Prism (the binary stack/prism.sh builds): test_streaming_rules.py runs every test on both (Prism in
the integration tier, tests/pipeline/conftest.py); elsewhere BEAM_CXONE_TEST_RUNNER=prism picks
Prism, e.g. `BEAM_CXONE_TEST_RUNNER=prism pytest tests/pipeline/test_stream_equals_batch.py`.
Batch runs on the FnApiRunner and the BundleBasedDirectRunner, and on Prism (integration tier).

Tests describe what arrives as a *script*: records (dicts built by the helpers below, or raw bytes)
and watermark steps, in arrival order. Every record gets its arrival number as its source order, so
the batch path's "first in source order" and the stream's "first seen" name the same copy.

Rows are compared as Cassandra would hold them after the upserts: the last version written per
primary key (accumulating panes and profile updates write a row more than once), in the export
format (ISO timestamps), without the columns the pipeline stamps from the wall clock
(`updated_at` of a volume, `detected_at` and `alert_id` of an alert; alert ids are compared
separately, between runs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from beam_cxone.config import AnalyticsConfig
from beam_cxone.first_seen import FirstSeen
from beam_cxone.parse import ParseSettings
from beam_cxone.parse import record_identity
from beam_cxone.pipelines.analytics import build_analytics
from beam_cxone.records import RawRecord
from beam_cxone.runners.profiles import prism_binary
from beam_cxone.tables import TABLES
from tests.reference import day
from tests.reference import iso
from tests.reference import reference
from tests.support.versions import WriteVersions
from tests.support.versions import read_versions

# 2026-11-30T00:53:20.000Z: a multiple of 10 s, so `at(s)` lies in window [floor(s/10)*10, +10).
T0 = 1_796_000_000_000
# Dead letters are recorded at the source's time (the Kafka record timestamp): one fixed instant.
SOURCE_TIME_MS = T0 + 3_600_000

FN_API = ["--runner=apache_beam.runners.portability.fn_api_runner.FnApiRunner"]
BUNDLE_BATCH = ["--runner=BundleBasedDirectRunner"]
STREAMING_RUNNERS = ("direct", "prism")
# The runner of `run_stream` and `streaming_options()`: BEAM_CXONE_TEST_RUNNER, else the DirectRunner;
# tests/pipeline/conftest.py sets it per test where a file runs on every streaming runner.
_RUNNER = {"streaming": os.environ.get("BEAM_CXONE_TEST_RUNNER", "direct")}


def prism_options() -> list[str]:
    """Prism, as the integration tests and `run` launch it (LOOPBACK workers: this process)."""
    return ["--runner=PrismRunner", f"--prism_location={prism_binary()}"]


def streaming_runner() -> str:
    return _RUNNER["streaming"]


def use_streaming_runner(name: str) -> None:
    """The FnApiRunner has no TestStream (NotImplementedError: beam:transform:teststream:v1): the
    streaming tests run on the DirectRunner or Prism, the batch ones on both and the FnApiRunner."""
    if name not in STREAMING_RUNNERS:
        raise ValueError(f"the streaming tests run on {' or '.join(STREAMING_RUNNERS)}, not {name!r}")
    _RUNNER["streaming"] = name


def streaming_options() -> list[str]:
    if streaming_runner() == "prism":
        return [*prism_options(), "--streaming"]
    return ["--runner=BundleBasedDirectRunner", "--streaming"]


use_streaming_runner(streaming_runner())  # an unknown BEAM_CXONE_TEST_RUNNER fails at once

# Columns stamped from the wall clock (or a hash of the rest), left out of row comparisons.
STAMPS = {
    "interaction_volumes": ("updated_at",),
    "pattern_alerts": ("detected_at", "alert_id"),
    "customer_profiles": (),
}
# Watermark step of the drain after a script: far below the lateness + within (60 s), so no step
# passes both an evaluation of a customer's event and the pattern steps' expiry of an earlier one.
DRAIN_STEP_S = 5
ROW_TABLES = ("interaction_volumes", "pattern_alerts", "customer_profiles")


def at(seconds: float) -> int:
    """Epoch ms of `seconds` after T0 (millisecond exact)."""
    return T0 + round(seconds * 1000)


# -- records ------------------------------------------------------------------------------------


def interaction(
    eid: str,
    t: float,
    contact: str,
    *,
    channel: str | None = "voice",
    event_type: str = "CONTACT_STARTED",
    customer: str | None = None,
    **extra: Any,
) -> dict:
    """An envelope-v1 interaction at `at(t)`; `extra` adds or overrides fields."""
    obj = {"eventId": eid, "eventTime": at(t), "contactId": contact, "eventType": event_type}
    if channel is not None:
        obj["channel"] = channel
    if customer is not None:
        obj["customerId"] = customer
    obj.update(extra)
    return obj


def failure(
    eid: str, t: float, customer: str, *, contact: str | None = None, channel: str = "voice"
) -> dict:
    return interaction(
        eid,
        t,
        contact or f"ct-{eid}",
        channel=channel,
        event_type="CONTACT_FAILED",
        customer=customer,
    )


def success(eid: str, t: float, customer: str, *, channel: str = "voice") -> dict:
    return interaction(
        eid,
        t,
        f"ct-{eid}",
        channel=channel,
        event_type="CONTACT_ENDED",
        customer=customer,
        endReason="Resolved",
    )


def callback(eid: str, t: float, customer: str, *, channel: str = "voice") -> dict:
    return interaction(
        eid, t, f"ct-{eid}", channel=channel, event_type="CALLBACK_REQUESTED", customer=customer
    )


def update(eid: str, t: float, customer: str, tier: str | None, region: str | None) -> dict:
    obj = {
        "eventId": eid,
        "recordType": "customer_update",
        "eventTime": at(t),
        "customerId": customer,
    }
    if tier is not None:
        obj["tier"] = tier
    if region is not None:
        obj["region"] = region
    return obj


@dataclasses.dataclass(frozen=True)
class Watermark:
    """Advance the TestStream's watermark to `at(seconds)` (ignored by the batch path)."""

    seconds: float


@dataclasses.dataclass(frozen=True)
class Late:
    """A record the Kafka read flagged late (more than the allowed lateness behind its watermark)."""

    record: dict | bytes


Step = dict | bytes | Watermark | Late


def payload_of(record: dict | bytes) -> bytes:
    return record if isinstance(record, bytes) else json.dumps(record).encode("utf-8")


def event_ms_of(record: dict | bytes) -> int | None:
    """The epoch-ms `eventTime` of a record the tests built, None when it has none."""
    if isinstance(record, bytes):
        try:
            record = json.loads(record)
        except ValueError:
            return None
    if isinstance(record, dict) and type(record.get("eventTime")) is int:
        return record["eventTime"]
    return None


def raw_records(script: Iterable[Step], name: str = "test", flag_duplicates: bool = False) -> list[RawRecord]:
    """The script's records in arrival order, numbered from 1 (watermarks skipped).

    `flag_duplicates` (streaming): flag copies of an earlier event id as the Kafka read does, the
    script being one partition."""
    out = []
    first_seen = FirstSeen(AnalyticsConfig().dedup_ttl_s * 1000)
    for step in script:
        if isinstance(step, Watermark):
            continue
        late = isinstance(step, Late)
        record = step.record if late else step
        n = len(out) + 1
        duplicate = False
        if flag_duplicates and not late:
            identity = record_identity(payload_of(record), ParseSettings())
            if identity is not None:
                duplicate = first_seen.is_duplicate(identity[0], identity[1], n)
        out.append(RawRecord(payload_of(record), f"{name}:{n}", SOURCE_TIME_MS, (name, n), late,
                             duplicate))
    return out


def make_stream(
    script: list[Step], name: str = "test", drain_to_ms: int | None = None
) -> TestStream:
    """One add_elements per run of records between watermark steps (few steps keep it fast).

    An element is stamped with its event time; one without a readable event time (a malformed
    record) with the current watermark. `drain_to_ms`: after the script, the watermark goes on in
    DRAIN_STEP_S steps up to there before it jumps to the end of time.
    """
    raws = iter(raw_records(script, name, flag_duplicates=True))
    stream = TestStream()
    watermark_ms = T0
    batch: list = []
    for step in script:
        if isinstance(step, Watermark):
            if batch:
                stream = stream.add_elements(batch)
                batch = []
            watermark_ms = at(step.seconds)
            stream = stream.advance_watermark_to(watermark_ms / 1000)
            continue
        record = step.record if isinstance(step, Late) else step
        event_ms = event_ms_of(record)
        stamp = watermark_ms if event_ms is None else event_ms
        batch.append(TimestampedValue(next(raws), stamp / 1000))
    if batch:
        stream = stream.add_elements(batch)
    while drain_to_ms is not None and watermark_ms < drain_to_ms:
        watermark_ms += DRAIN_STEP_S * 1000
        stream = stream.advance_watermark_to(watermark_ms / 1000)
    return stream.advance_watermark_to_infinity()


def drain_point(script: list[Step], cfg: AnalyticsConfig) -> int:
    """Where every evaluation and steps expiry of the script's records is due: the newest event
    time + the lateness + the pattern's `within` + one step."""
    times = [event_ms_of(s) for s in script if isinstance(s, dict | bytes)]
    newest = max((t for t in times if t is not None), default=T0)
    return newest + round((cfg.allowed_lateness_s + cfg.pattern_within_s + DRAIN_STEP_S) * 1000)


# -- running ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """What each table's sink received: its bundles in the order they finished, each a list of
    rows in arrival order (tests/support/versions.py)."""

    bundles: dict[str, list[list[dict]]]

    @property
    def versions(self) -> dict[str, list[dict]]:
        """Every row version each table received, in the order the sink saw them."""
        return {table: [row for bundle in bundles for row in bundle]
                for table, bundles in self.bundles.items()}

    def upserts(self, table: str) -> list[dict]:
        """The rows as the Cassandra writer applies them: per bundle (one flush), the last version
        of each primary key; flushes in order."""
        out = []
        for bundle in self.bundles[table]:
            last: dict[tuple, dict] = {}
            for row in bundle:
                last[TABLES[table].key_of(_hashable(row))] = row
            out += last.values()
        return out

    def final(self, table: str) -> list[dict]:
        """The rows Cassandra would hold: last version per primary key, comparable columns only."""
        last: dict[tuple, dict] = {}
        for row in self.upserts(table):
            last[TABLES[table].key_of(_hashable(row))] = row
        return sorted_rows(comparable(table, row) for row in last.values())

    def finals(self) -> dict[str, list[dict]]:
        return {table: self.final(table) for table in ROW_TABLES}

    def assert_versions_only_grow(self) -> None:
        """What Cassandra holds never goes back (an upsert of an older version would lose data):
        a volume's counts only grow (accumulating panes), a profile's update only gets newer."""
        volumes: dict[tuple, tuple] = {}
        for row in self.upserts("interaction_volumes"):
            key = TABLES["interaction_volumes"].key_of(row)
            counts = (row["interactions"], row["events"])
            before = volumes.get(key, (0, 0))
            assert counts[0] >= before[0] and counts[1] >= before[1], (key, before, counts)
            volumes[key] = counts
        profiles: dict[str, int] = {}
        for row in self.upserts("customer_profiles"):
            before = profiles.get(row["customer_id"])
            assert before is None or row["updated_at"] >= before, row
            profiles[row["customer_id"]] = row["updated_at"]

    def dead_triples(self) -> list[tuple[int, str, str]]:
        """(source number, stage, reason) of every dead letter, sorted."""
        return sorted(
            (int(row["source"].split(":")[1]), row["stage"], row["reason"])
            for row in self.versions["dead_letters"]
        )

    def alert_ids(self) -> dict[str, str]:
        """callback_event_id -> alert_id of the final alerts."""
        return {
            row["callback_event_id"]: row["alert_id"] for row in self.versions["pattern_alerts"]
        }

    def dead_letters(self) -> list[dict]:
        """Dead-letter rows without their id (checked apart), sorted."""
        return sorted_rows(
            {k: v for k, v in row.items() if k != "dead_letter_id"}
            for row in self.versions["dead_letters"]
        )


def _hashable(row: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}


def comparable(table: str, row: dict) -> dict:
    """Export format (ISO timestamps), stamped columns left out."""
    out = {}
    for column, cql_type in TABLES[table].columns:
        if column in STAMPS[table]:
            continue
        value = row[column]
        if cql_type == "timestamp":
            value = iso(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[column] = value
    return out


def sorted_rows(rows: Iterable[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def run_graph(options: list[str], source, cfg: AnalyticsConfig, streaming: bool) -> Run:
    """`source` (a PTransform from the pipeline's root to RawRecords) through build_analytics."""
    with tempfile.TemporaryDirectory(prefix="beam-cxone-rows-") as out:
        with beam.Pipeline(options=PipelineOptions(options)) as p:
            results = build_analytics(p | "Source" >> source, cfg, streaming=streaming)
            for table, pcoll in results.by_table().items():
                pcoll | f"Versions_{table.name}" >> WriteVersions(out, table.name)
        return Run({name: read_versions(out, name) for name in TABLES})


def run_stream(
    script: list[Step], cfg: AnalyticsConfig = AnalyticsConfig(), *, drain: bool = True
) -> Run:
    """The streaming graph over a TestStream of the script.

    `drain`: after the script the watermark goes on in small steps, as a live stream's does, up to
    where every buffered event is final, and only then to the end of time; without it the
    watermark jumps there at once. Both must give the same rows.
    """
    stream = make_stream(script, drain_to_ms=drain_point(script, cfg) if drain else None)
    return run_graph(streaming_options(), stream, cfg, streaming=True)


def run_batch(
    raws: list[RawRecord], cfg: AnalyticsConfig = AnalyticsConfig(), options: list[str] = FN_API
) -> Run:
    """The batch graph over a Create of the records."""
    return run_graph(options, beam.Create(raws), cfg, streaming=False)


# -- expected rows, written by hand in the tests ----------------------------------------------


def volume(channel: str, start_s: int, interactions: int, events: int, size_s: int = 10) -> dict:
    """`interaction_volumes` row of window [start_s, start_s + size_s) after T0."""
    return {
        "channel": channel,
        "day": day(at(start_s)),
        "window_start": iso(at(start_s)),
        "window_end": iso(at(start_s + size_s)),
        "interactions": interactions,
        "events": events,
    }


def alert(
    customer: str,
    callback_eid: str,
    callback_t: float,
    failures: list[tuple[str, float]],
    *,
    channel: str = "voice",
    tier: str = "UNKNOWN",
    region: str = "UNKNOWN",
) -> dict:
    """`pattern_alerts` row; `failures` are (eventId, t) from the first failure on."""
    return {
        "customer_id": customer,
        "alert_time": iso(at(callback_t)),
        "alert_type": "REPEATED_FAILURE_CALLBACK",
        "channel": channel,
        "failure_count": len(failures),
        "first_failure_time": iso(at(failures[0][1])),
        "failure_event_ids": [eid for eid, _ in failures],
        "callback_event_id": callback_eid,
        "tier": tier,
        "region": region,
    }


def profile(customer: str, tier: str, region: str, t: float) -> dict:
    return {"customer_id": customer, "tier": tier, "region": region, "updated_at": iso(at(t))}


def expected(
    volumes: list[dict] = (), alerts: list[dict] = (), profiles: list[dict] = ()
) -> dict[str, list[dict]]:
    return {
        "interaction_volumes": sorted_rows(volumes),
        "pattern_alerts": sorted_rows(alerts),
        "customer_profiles": sorted_rows(profiles),
    }


def reference_rows(raws: list[RawRecord], **kw: Any) -> dict[str, list[dict]]:
    """tests/reference.py's rows for the three row tables, sorted."""
    ref = reference(raws, **kw)
    return {table: sorted_rows(ref[table]) for table in ROW_TABLES}
