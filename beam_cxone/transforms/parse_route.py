"""ParseAndRoute: raw records to interactions, customer updates and dead letters, duplicates dropped.

Each record goes to exactly one output (EVENTS.md). Duplicates by `eventId` are dropped before anything
counts them, across both record kinds, so the split by kind comes after the dedup.
"""

from __future__ import annotations

import enum
from typing import Any
from typing import NamedTuple

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from beam_cxone.parse import ParseSettings
from beam_cxone.parse import parse_record
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import DeadLetter
from beam_cxone.records import Interaction
from beam_cxone.records import RawRecord
from beam_cxone.transforms.dedup import DedupByEventId

__all__ = ["ParseAndRoute", "Route", "Routed"]


class Route(str, enum.Enum):
    """Output tags of the router."""

    VALID = "valid"
    INTERACTIONS = "interactions"
    CUSTOMER_UPDATES = "customer_updates"
    DEAD_LETTERS = "dead_letters"


class Routed(NamedTuple):
    interactions: beam.PCollection
    customer_updates: beam.PCollection
    dead_letters: beam.PCollection


def event_timestamp(ms: int) -> Timestamp:
    """Exact: a float of seconds (ms / 1000) is truncated to microseconds and can land 1 µs early."""
    return Timestamp(micros=ms * 1000)


class _ParseRecordFn(beam.DoFn):
    """Main output: (eventId, (order, record)) stamped at its event time. Tag DEAD_LETTERS: DeadLetter."""

    def __init__(self, settings: ParseSettings):
        self._settings = settings
        self._parsed = Metrics.counter("parse", "records_parsed")
        self._dead = Metrics.counter("parse", "dead_letters")
        self._late = Metrics.counter("parse", "late_records")
        self._by_reason: dict[str, Any] = {}

    def _count_dead(self, reason: str) -> None:
        self._dead.inc()
        if reason == "late":
            self._late.inc()
        counter = self._by_reason.get(reason)
        if counter is None:
            counter = self._by_reason[reason] = Metrics.counter("dead_letters", reason)
        counter.inc()

    def process(self, raw: RawRecord):
        record = parse_record(raw, self._settings)
        if isinstance(record, DeadLetter):
            self._count_dead(record.reason)
            yield pvalue.TaggedOutput(Route.DEAD_LETTERS.value, record)
            return
        self._parsed.inc()
        yield TimestampedValue((record.event_id, (raw.order, record)), event_timestamp(record.event_time_ms))


class _SplitByKindFn(beam.DoFn):
    """Main output: Interaction. Tag CUSTOMER_UPDATES: CustomerUpdate."""

    def process(self, record: Interaction | CustomerUpdate):
        if isinstance(record, CustomerUpdate):
            yield pvalue.TaggedOutput(Route.CUSTOMER_UPDATES.value, record)
        else:
            yield record


class ParseAndRoute(beam.PTransform):
    """RawRecord -> Routed(interactions, customer_updates, dead_letters).

    Valid records are stamped with their event time. `streaming` selects the dedup strategy (state with a
    TTL, or first by source order in batch); `dedup_ttl_s` bounds the dedup state in streaming.
    """

    def __init__(self, settings: ParseSettings = ParseSettings(), *, streaming: bool,
                 dedup_ttl_s: int = 600):
        super().__init__()
        self._settings = settings
        self._streaming = streaming
        self._dedup_ttl_s = dedup_ttl_s

    def expand(self, raw):
        parsed = raw | "ParseRecords" >> beam.ParDo(_ParseRecordFn(self._settings)).with_output_types(
            beam.typehints.KV[str, Any]).with_outputs(Route.DEAD_LETTERS.value, main=Route.VALID.value)
        unique = parsed[Route.VALID.value] | "DedupByEventId" >> DedupByEventId(
            streaming=self._streaming, ttl_s=self._dedup_ttl_s)
        split = unique | "SplitByKind" >> beam.ParDo(_SplitByKindFn()).with_outputs(
            Route.CUSTOMER_UPDATES.value, main=Route.INTERACTIONS.value)
        return Routed(
            interactions=split[Route.INTERACTIONS.value],
            customer_updates=split[Route.CUSTOMER_UPDATES.value],
            dead_letters=parsed[Route.DEAD_LETTERS.value],
        )
