"""DedupByEventId: the first copy of an event counts; later copies change no result.

Streaming keeps one flag per eventId in state, cleared by a watermark timer `ttl_s` of event time after the
event (as Beam's DeduplicatePerKey, with a mandatory bound). A copy that arrives after the flag is cleared
would be far behind the watermark, and the read has already made it a `late` dead letter, so with the
default TTL (10 min) above the allowed lateness (30 s) no duplicate is ever counted twice.

Batch has no arrival order worth trusting after a shuffle, so it keeps the copy that came first in its
source (file and line, or partition and offset): the same "first seen" a stream in that order gives.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.coders import BooleanCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.transforms.userstate import TimerSpec
from apache_beam.transforms.userstate import on_timer
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration
from apache_beam.utils.timestamp import Timestamp

__all__ = ["DedupByEventId"]


class _FirstSeenFn(beam.DoFn):
    """Keyed by eventId. State 'seen' (bool); timer 'expiry' (watermark) = event time + TTL clears it."""

    SEEN = ReadModifyWriteStateSpec("seen", BooleanCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, ttl_s: int):
        self._ttl = Duration(seconds=ttl_s)
        self._duplicates = Metrics.counter("dedup", "duplicates_dropped")

    def process(self, element, ts=beam.DoFn.TimestampParam, seen=beam.DoFn.StateParam(SEEN),
                expiry=beam.DoFn.TimerParam(EXPIRY)):
        _, (_, record) = element
        if seen.read():
            self._duplicates.inc()
            return
        seen.write(True)
        expiry.set(ts + self._ttl)
        yield record

    @on_timer(EXPIRY)
    def on_expiry(self, seen=beam.DoFn.StateParam(SEEN)):
        seen.clear()


def _first_in_source(copies) -> Any:
    """Combiner: the copy with the smallest source order (associative, so it may combine early)."""
    return min(copies, key=lambda copy: copy[0])


class _CountBatchDuplicates(beam.DoFn):
    def __init__(self):
        self._duplicates = Metrics.counter("dedup", "duplicates_dropped")

    def process(self, element):
        event_id, copies = element
        copies = list(copies)
        self._duplicates.inc(len(copies) - 1)
        _, record = _first_in_source(copies)
        yield TimestampedValue(record, Timestamp(micros=record.event_time_ms * 1000))


class DedupByEventId(beam.PTransform):
    """(eventId, (source order, record)) -> record, one per eventId, at its event time."""

    def __init__(self, *, streaming: bool, ttl_s: int = 600):
        super().__init__()
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self._streaming = streaming
        self._ttl_s = ttl_s

    def expand(self, keyed):
        kv = beam.typehints.KV[str, Any]  # a deterministic key coder: state must not split by encoding
        if self._streaming:
            return keyed | "FirstSeen" >> beam.ParDo(_FirstSeenFn(self._ttl_s)).with_input_types(kv)
        return (keyed
                | "GroupCopies" >> beam.GroupByKey().with_input_types(kv)
                | "FirstInSource" >> beam.ParDo(_CountBatchDuplicates()))
