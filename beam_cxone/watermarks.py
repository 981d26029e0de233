"""Per-partition event-time watermark and lateness, as a pure value the Kafka read keeps in its checkpoint.

watermark = greatest event time seen - bounded out-of-orderness. A record is late when its event time is
more than the allowed lateness behind the watermark as it stood before the record was read. Every
record that is not late is therefore at most `lateness` behind any downstream watermark (which is the
minimum over partitions), so no windowed or stateful step downstream ever sees it as expired: the read
is the one place where "late" is decided, and late records become dead letters instead of silent drops.

An idle partition (caught up, nothing read for `idle_timeout_ms` of wall time) stops holding the watermark back:
it advances with wall time from its last watermark, and at least to the highest watermark of the
other partitions of the topic in this worker.
"""

from __future__ import annotations

import dataclasses

__all__ = ["PartitionClock"]


@dataclasses.dataclass
class PartitionClock:
    """Watermark state of one partition; `state()` / `from_state()` survive checkpoints."""

    out_of_orderness_ms: int
    lateness_ms: int
    idle_timeout_ms: int
    max_event_ms: int | None = None
    floor_ms: int | None = None  # advanced by idleness; the watermark never moves back
    last_activity_wall_ms: int | None = None

    def watermark_ms(self) -> int | None:
        """The current watermark, None while nothing is known (the minimum timestamp)."""
        candidates = [w for w in (self._data_watermark(), self.floor_ms) if w is not None]
        return max(candidates) if candidates else None

    def _data_watermark(self) -> int | None:
        return None if self.max_event_ms is None else self.max_event_ms - self.out_of_orderness_ms

    def observe(self, event_ms: int, wall_ms: int) -> bool:
        """Take one record's event time; returns whether it is late (and then ignores it)."""
        self.last_activity_wall_ms = wall_ms
        wm = self.watermark_ms()
        if wm is not None and event_ms < wm - self.lateness_ms:
            return True
        if self.max_event_ms is None or event_ms > self.max_event_ms:
            self.max_event_ms = event_ms
        return False

    def on_idle(self, wall_ms: int, topic_high_ms: int | None, caught_up: bool = True) -> None:
        """Called when a poll returned nothing: after the idle timeout, advance the floor.

        Only a partition that has read everything there is (`caught_up`) can be idle: an empty poll
        while a backlog remains (a reader scheduled late, a slow fetch) must not advance the watermark
        past records still to be read.
        """
        if self.last_activity_wall_ms is None or not caught_up:
            self.last_activity_wall_ms = wall_ms
            return
        idle_for = wall_ms - self.last_activity_wall_ms
        if idle_for < self.idle_timeout_ms:
            return
        candidates = [topic_high_ms]
        own = self._data_watermark()
        if own is not None:
            candidates.append(own + idle_for)
        best = max((c for c in candidates if c is not None), default=None)
        if best is not None and (self.floor_ms is None or best > self.floor_ms):
            self.floor_ms = best

    def state(self) -> tuple:
        return (self.max_event_ms, self.floor_ms, self.last_activity_wall_ms)

    @classmethod
    def from_state(cls, state: tuple | None, out_of_orderness_ms: int, lateness_ms: int,
                   idle_timeout_ms: int) -> PartitionClock:
        max_event_ms, floor_ms, last_wall = state if state else (None, None, None)
        return cls(out_of_orderness_ms, lateness_ms, idle_timeout_ms, max_event_ms, floor_ms, last_wall)
