"""When the stateful steps may call their buffered events final, in one place.

Streaming: an event at time t is final once the watermark passes t + allowed lateness + 1 ms. Every record
the read lets through is at most the allowed lateness behind the watermark, so by then every record that
could come before it in event time has arrived, and evaluating in `(eventTime, eventId)` order gives the
same result whatever the arrival order. Batch needs no timers: the composites group each key's whole input
and call the same pure functions (measured: the FnApiRunner lost or repeated timer outputs, and the
BundleBasedDirectRunner's GroupByKey failed on elements that timers emitted at the end of a bounded run).
"""

from __future__ import annotations

import dataclasses

from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp

__all__ = ["END_OF_TIME_MS", "Finality", "to_ms", "to_timestamp"]

END_OF_TIME_MS = GlobalWindow().max_timestamp().micros // 1000


def to_timestamp(ms: int) -> Timestamp:
    return Timestamp(micros=ms * 1000)


def to_ms(ts: Timestamp) -> int:
    return ts.micros // 1000


@dataclasses.dataclass(frozen=True)
class Finality:
    """`final_at(t)`: the watermark time at which an event at t can be evaluated."""

    streaming: bool
    allowed_lateness_ms: int

    def final_at(self, event_ms: int) -> int:
        return min(event_ms + self.allowed_lateness_ms + 1, END_OF_TIME_MS - 1)
