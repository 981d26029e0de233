"""DedupByEventId (batch): the first copy of an event in source order counts; later copies change no result.

Batch has no arrival order worth trusting after a shuffle, so it keeps the copy that came first in its
source (file and line, or partition and offset): the same "first seen" a stream in that order gives.
Streaming needs no step of its own (see `parse_route`).
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue

from beam_cxone.transforms.timing import to_timestamp

__all__ = ["DedupByEventId"]


def _first_in_source(copies) -> Any:
    """The copy with the smallest source order."""
    return min(copies, key=lambda copy: copy[0])


class _CountBatchDuplicates(beam.DoFn):
    def __init__(self):
        self._duplicates = Metrics.counter("dedup", "duplicates_dropped")

    def process(self, element):
        event_id, copies = element
        copies = list(copies)
        self._duplicates.inc(len(copies) - 1)
        _, record = _first_in_source(copies)
        yield TimestampedValue(record, to_timestamp(record.event_time_ms))


class DedupByEventId(beam.PTransform):
    """(eventId, (source order, record)) -> record, one per eventId, at its event time."""

    def expand(self, keyed):
        kv = beam.typehints.KV[str, Any]  # a deterministic key coder
        return (keyed
                | "GroupCopies" >> beam.GroupByKey().with_input_types(kv)
                | "FirstInSource" >> beam.ParDo(_CountBatchDuplicates()))
