"""BatchAnalytics: the bounded (batch) strategy of the analytics graph, shaped for throughput.

The rules are the streaming job's, called as the same pure functions (`parse.parse_record`,
`volumes.volume_row`, `join.join_customer`, `patterns.detect`); only the wiring differs. Every record
crosses the runner at most once, inside a batch of many:

```
RawRecord ─ParseRecords─► (dedup bucket, [(source order, record), ...]) per flush ─┐   dead letters ─► rows
                                                     GroupByBucket (64 keys) ◄──────┘
   ReduceBuckets: the first copy of each eventId in source order (all its copies share the
   bucket), then per bucket: volume partials per (channel, window) and each customer's records
                                                     GroupResults (16 + 16 keys)
   ToRows: volumes (contacts unioned, events summed), per customer join + pattern + profile row
```

Why it is exact:
- Dedup: a record's bucket is a stable hash (CRC-32) of its eventId, so every copy of an eventId is in
  one bucket, where the one with the smallest source order (file and line, or partition and offset)
  wins (`transforms/dedup.py`, `first_copies`).
- Volumes: after dedup an eventId lives in exactly one bucket, so a window's distinct events are the
  sum of the buckets' counts; its distinct contacts are the union of the buckets' contact sets.
- Customers: every record of one customer reaches one result bucket (a stable hash of its id), whose
  step calls `join_customer` and `detect` on the customer's whole input, as the streaming step does
  for each final interaction.
- On every runner: everything stays in the global window, and event-time windows are values (a
  window start computed from the event time), never `WindowInto` after a shuffle. The former batch
  graph grouped in the global window, stamped the records back to their event times and then applied
  FixedWindows: Prism found every element behind its watermark and dropped it (no volume row at
  all), while the FnApiRunner kept them. tests/integration/test_conformance.py runs this graph on
  Prism and the FnApiRunner (one and two processes).

Records travel as plain tuples (`compact`): a slotted dataclass pickles ~4x slower.
"""

from __future__ import annotations

import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any
from typing import NamedTuple

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from beam_cxone.parse import ParseSettings
from beam_cxone.parse import parse_record
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import DeadLetter
from beam_cxone.records import Interaction
from beam_cxone.transforms.dedup import first_copies
from beam_cxone.transforms.gc_pause import GcPausedBundles
from beam_cxone.transforms.join import PATTERN_OUTCOMES
from beam_cxone.transforms.join import join_customer
from beam_cxone.transforms.patterns import PatternSpec
from beam_cxone.transforms.patterns import detect
from beam_cxone.transforms.volumes import volume_row

__all__ = [
    "DEDUP_BUCKETS",
    "RESULT_BUCKETS",
    "BatchAnalytics",
    "BatchResults",
    "ParseCounters",
    "ReduceBucketFn",
    "ResultRowsFn",
    "bucket_partials",
    "compact",
    "customer_rows",
    "dedup_bucket",
    "expand",
    "first_copies",
    "merge_volume_partials",
    "stable_hash",
]

# Buckets of the dedup shuffle (by eventId) and of the result shuffle (by window, by customer).
# Part of the checkpoint format (beam_cxone.io.checkpoint): a change invalidates saved parses.
DEDUP_BUCKETS = 64
RESULT_BUCKETS = 16
VOLUMES = "v"
CUSTOMERS = "c"
ALERTS = "alerts"
PROFILE_ROWS = "profile_rows"
DEAD_LETTERS = "dead_letters"
# Valid records a parse step holds before it emits them as one batch per bucket.
FLUSH_RECORDS = 16_384

_INTERACTION_FIELDS = 10  # len(compact(interaction)); a customer update has 5
_intern = sys.intern


def stable_hash(text: str) -> int:
    """The same in every worker process (Python's own str hash is salted per process)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def dedup_bucket(event_id: str, buckets: int = DEDUP_BUCKETS) -> int:
    return stable_hash(event_id) % buckets


def compact(record: Interaction | CustomerUpdate) -> tuple:
    """A record as the tuple of its fields (`expand` gives the record back, equal to it).

    Vocabulary fields are interned, so a batch of many records pickles or marshals each once."""
    if isinstance(record, Interaction):
        return (record.event_id, record.event_time_ms, record.contact_id,
                record.master_contact_id, record.customer_id, _intern(record.channel),
                _intern(record.event_type), _intern(record.outcome), record.tenant_id,
                record.business_unit_id)
    return (record.event_id, record.event_time_ms, record.customer_id, record.tier, record.region)


def expand(fields: tuple) -> Interaction | CustomerUpdate:
    if len(fields) == _INTERACTION_FIELDS:
        return Interaction(*fields)
    return CustomerUpdate(*fields)


def bucket_partials(records: Iterable[tuple], window_ms: int,
                    result_buckets: int = RESULT_BUCKETS) -> Iterator[tuple[tuple[str, int], Any]]:
    """One dedup bucket's unique records -> what the result step of each result bucket needs:

    ((VOLUMES, b), {(channel, window_start): (contact ids, distinct events)}) for windows with
    `window_start // window_ms % result_buckets == b`; ((CUSTOMERS, b), [record, ...]) for the
    customers hashed to b: pattern inputs (a customer and a FAILURE, SUCCESS or CALLBACK outcome)
    and customer updates. Nothing else of a record matters downstream.
    """
    volumes: dict[int, dict[tuple[str, int], list]] = defaultdict(dict)
    customers: dict[int, list[tuple]] = defaultdict(list)
    for fields in records:
        if len(fields) == _INTERACTION_FIELDS:
            t = fields[1]
            start = t - t % window_ms  # epoch-aligned, floor for negative times too (FixedWindows)
            per_window = volumes[start // window_ms % result_buckets]
            key = (fields[5], start)
            acc = per_window.get(key)
            if acc is None:
                acc = per_window[key] = [set(), 0]
            acc[0].add(fields[2])
            acc[1] += 1  # eventIds are unique here, and no other bucket holds this one
            customer = fields[4]
            if customer and fields[7] in PATTERN_OUTCOMES:
                customers[stable_hash(customer) % result_buckets].append(fields)
        else:
            customers[stable_hash(fields[2]) % result_buckets].append(fields)
    for b, per_window in volumes.items():
        yield (VOLUMES, b), {key: (acc[0], acc[1]) for key, acc in per_window.items()}
    for b, recs in customers.items():
        yield (CUSTOMERS, b), recs


def merge_volume_partials(partials: Iterable[dict], window_ms: int,
                          updated_at_ms: int) -> list[dict]:
    """`interaction_volumes` rows of one result bucket: contacts unioned, events summed."""
    merged: dict[tuple[str, int], list] = {}
    for partial in partials:
        for key, (contacts, events) in partial.items():
            acc = merged.get(key)
            if acc is None:
                merged[key] = [set(contacts), events]
            else:
                acc[0].update(contacts)
                acc[1] += events
    return [volume_row(channel, start, start + window_ms, len(acc[0]), acc[1], updated_at_ms)
            for (channel, start), acc in merged.items()]


def customer_rows(batches: Iterable[list[tuple]], spec: PatternSpec,
                  detected_at_ms: int) -> tuple[list[dict], list[dict], int]:
    """(alerts, profile rows, interactions joined) of one result bucket's customers: each customer's
    whole input through `join_customer` and `detect`, as the batch customer step calls them."""
    by_customer: dict[str, list] = defaultdict(list)
    for batch in batches:
        for fields in batch:
            record = expand(fields)
            by_customer[record.customer_id].append(record)
    alerts, profiles, joined = [], [], 0
    for customer_id, records in by_customer.items():
        enriched, row = join_customer(customer_id, records)
        found, _ = detect([], enriched, spec, customer_id)
        joined += len(enriched)
        if row is not None:
            profiles.append(row)
        alerts.extend({**alert, "detected_at": detected_at_ms} for alert in found)
    return alerts, profiles, joined


class ParseCounters:
    """The parse step's Beam counters (names as `transforms/parse_route.py` reports them)."""

    def __init__(self):
        self.parsed = Metrics.counter("parse", "records_parsed")
        self._dead = Metrics.counter("parse", "dead_letters")
        self._late = Metrics.counter("parse", "late_records")
        self._by_reason: dict[str, Any] = {}

    def dead(self, reason: str, count: int = 1) -> None:
        self._dead.inc(count)
        if reason == "late":
            self._late.inc(count)
        counter = self._by_reason.get(reason)
        if counter is None:
            counter = self._by_reason[reason] = Metrics.counter("dead_letters", reason)
        counter.inc(count)


def _global(value: Any) -> WindowedValue:
    return WindowedValue(value, MIN_TIMESTAMP, (GlobalWindow(),))


class _ParseToBucketsFn(beam.DoFn):
    """RawRecord -> (dedup bucket, [(source order, compact record), ...]), a batch per bucket every
    `flush_records` valid records and at the bundle's end; tag DEAD_LETTERS: DeadLetter.

    Batch ignores the read's `duplicate` flag: dedup is by source order, in ReduceBuckets."""

    def __init__(self, settings: ParseSettings, buckets: int = DEDUP_BUCKETS,
                 flush_records: int = FLUSH_RECORDS):
        self._settings = settings
        self._buckets = buckets
        self._flush_records = flush_records
        self._counters = ParseCounters()

    def start_bundle(self) -> None:
        self._pending: dict[int, list] = defaultdict(list)
        self._held = 0

    def process(self, raw):
        record = parse_record(raw, self._settings)
        if isinstance(record, DeadLetter):
            self._counters.dead(record.reason)
            yield pvalue.TaggedOutput(DEAD_LETTERS, record)
            return
        self._pending[dedup_bucket(record.event_id, self._buckets)].append(
            (raw.order, compact(record)))
        self._held += 1
        if self._held >= self._flush_records:
            yield from self._flush()

    def finish_bundle(self):
        yield from self._flush()

    def _flush(self) -> Iterator[WindowedValue]:
        if self._held:
            self._counters.parsed.inc(self._held)
        pending, self._pending, self._held = self._pending, defaultdict(list), 0
        for bucket, entries in pending.items():
            yield _global((bucket, entries))


class ReduceBucketFn(GcPausedBundles, beam.DoFn):
    """(dedup bucket, batches of (source order, compact record)) -> ((kind, result bucket), partial):
    the first copy of each eventId in source order, then `bucket_partials`."""

    def __init__(self, window_ms: int, result_buckets: int = RESULT_BUCKETS):
        self._window_ms = window_ms
        self._result_buckets = result_buckets
        self._duplicates = Metrics.counter("dedup", "duplicates_dropped")

    def process(self, element):
        _, batches = element
        yield from self.reduce(entry for batch in batches for entry in batch)

    def reduce(self, entries: Iterable[tuple[Any, tuple]]) -> Iterator[tuple[tuple[str, int], Any]]:
        first, seen = first_copies(entries)
        self._duplicates.inc(seen - len(first))
        yield from bucket_partials((fields for _, fields in first.values()), self._window_ms,
                                   self._result_buckets)


class ResultRowsFn(GcPausedBundles, beam.DoFn):
    """((kind, result bucket), partials) -> `interaction_volumes` rows (main output), tags ALERTS
    (`pattern_alerts` rows) and PROFILE_ROWS (`customer_profiles` rows)."""

    def __init__(self, window_ms: int, spec: PatternSpec):
        self._window_ms = window_ms
        self._spec = spec
        self._alerts = Metrics.counter("patterns", "alerts")
        self._joined = Metrics.counter("join", "interactions_joined")

    def process(self, element):
        (kind, _), partials = element
        now_ms = int(time.time() * 1000)
        if kind == VOLUMES:
            yield from merge_volume_partials(partials, self._window_ms, now_ms)
            return
        alerts, profiles, joined = customer_rows(partials, self._spec, now_ms)
        self._joined.inc(joined)
        self._alerts.inc(len(alerts))
        for row in profiles:
            yield pvalue.TaggedOutput(PROFILE_ROWS, row)
        for row in alerts:
            yield pvalue.TaggedOutput(ALERTS, row)


class BatchResults(NamedTuple):
    interaction_volumes: beam.PCollection
    pattern_alerts: beam.PCollection
    customer_profiles: beam.PCollection
    dead_letters: beam.PCollection  # DeadLetter objects


def result_rows(partials: beam.PCollection, window_ms: int, spec: PatternSpec):
    """((kind, result bucket), partial) -> (volume rows, alert rows, profile rows)."""
    key = beam.typehints.Tuple[str, int]
    rows = (partials
            | "GroupResults" >> beam.GroupByKey().with_input_types(beam.typehints.KV[key, Any])
            | "ToRows" >> beam.ParDo(ResultRowsFn(window_ms, spec)).with_outputs(
                ALERTS, PROFILE_ROWS, main="volumes"))
    return rows.volumes, rows[ALERTS], rows[PROFILE_ROWS]


class BatchAnalytics(beam.PTransform):
    """PCollection[RawRecord] -> BatchResults (rows of three tables, and DeadLetters)."""

    def __init__(self, settings: ParseSettings, window_size_s: int, spec: PatternSpec):
        super().__init__()
        if window_size_s <= 0:
            raise ValueError(f"window_size_s must be > 0, got {window_size_s}")
        self._settings = settings
        self._window_ms = window_size_s * 1000
        self._spec = spec

    def expand(self, raw):
        parsed = raw | "ParseRecords" >> beam.ParDo(_ParseToBucketsFn(self._settings)).with_outputs(
            DEAD_LETTERS, main="buckets")
        partials = (parsed.buckets
                    | "GroupByBucket" >> beam.GroupByKey().with_input_types(
                        beam.typehints.KV[int, Any])
                    | "ReduceBuckets" >> beam.ParDo(ReduceBucketFn(self._window_ms)))
        volumes, alerts, profiles = result_rows(partials, self._window_ms, self._spec)
        return BatchResults(volumes, alerts, profiles, parsed[DEAD_LETTERS])
