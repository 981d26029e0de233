"""ParseAndRoute: raw records to interactions, customer updates and dead letters.

Streaming only: batch runs `transforms/batch.py` (BatchAnalytics), which dedups by source order.

Each record goes to exactly one output. Duplicates by `eventId` (a producer retry re-sends the same
record) must change no result. There is no step of its own for them: a per-eventId state cell and
timer cost a round trip per record on a runner without a state cache (measured: 38 % of the job's
CPU on Prism).
Instead the read, which decodes every record for its event time anyway and sees each partition in
offset order, flags a copy of an event id it saw before in the partition (`beam_cxone.first_seen`), and
the router drops flagged copies. Copies in two partitions (two Kafka keys) get past the read; the
consumers are immune to identical ones where they already key the data: the volume windows count
distinct contacts and distinct event ids, and the customer timeline drops a copy of an event it still
holds.
"""

from __future__ import annotations

import enum
from typing import Any
from typing import NamedTuple

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue

from beam_cxone.parse import ParseSettings
from beam_cxone.parse import parse_record
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import DeadLetter
from beam_cxone.records import Interaction
from beam_cxone.records import RawRecord
from beam_cxone.transforms.timing import to_timestamp

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


class _ParseRecordFn(beam.DoFn):
    """Main output: the record, stamped at its event time. Tag DEAD_LETTERS: DeadLetter."""

    def __init__(self, settings: ParseSettings):
        self._settings = settings
        self._parsed = Metrics.counter("parse", "records_parsed")
        self._dead = Metrics.counter("parse", "dead_letters")
        self._late = Metrics.counter("parse", "late_records")
        self._duplicates = Metrics.counter("dedup", "duplicates_dropped")
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
        if raw.duplicate and not raw.late:
            self._duplicates.inc()
            return
        record = parse_record(raw, self._settings)
        if isinstance(record, DeadLetter):
            self._count_dead(record.reason)
            yield pvalue.TaggedOutput(Route.DEAD_LETTERS.value, record)
            return
        self._parsed.inc()
        # Exact (integer micros): a float of seconds (ms / 1000) can land 1 µs early.
        yield TimestampedValue(record, to_timestamp(record.event_time_ms))


class _SplitByKindFn(beam.DoFn):
    """Main output: Interaction. Tag CUSTOMER_UPDATES: CustomerUpdate."""

    def process(self, record: Interaction | CustomerUpdate):
        if isinstance(record, CustomerUpdate):
            yield pvalue.TaggedOutput(Route.CUSTOMER_UPDATES.value, record)
        else:
            yield record


class ParseAndRoute(beam.PTransform):
    """RawRecord -> Routed(interactions, customer_updates, dead_letters).

    Valid records are stamped with their event time. Duplicates are left to the keyed consumers
    (see the module docstring). Streaming only (`streaming=False` is refused).
    """

    def __init__(self, settings: ParseSettings = ParseSettings(), *, streaming: bool):
        super().__init__()
        if not streaming:
            raise ValueError("batch runs transforms/batch.py (BatchAnalytics), not this step")
        self._settings = settings

    def expand(self, raw):
        parse = beam.ParDo(_ParseRecordFn(self._settings))
        parsed = raw | "ParseRecords" >> parse.with_outputs(Route.DEAD_LETTERS.value, main=Route.VALID.value)
        split = parsed[Route.VALID.value] | "SplitByKind" >> beam.ParDo(_SplitByKindFn()).with_outputs(
            Route.CUSTOMER_UPDATES.value, main=Route.INTERACTIONS.value)
        return Routed(
            interactions=split[Route.INTERACTIONS.value],
            customer_updates=split[Route.CUSTOMER_UPDATES.value],
            dead_letters=parsed[Route.DEAD_LETTERS.value],
        )
