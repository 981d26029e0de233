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


_NO_OTHERS = 2**62  # no other partition: nothing to hold the watermark back


class TopicWatermarks:
    """The committed watermarks of one topic's partitions read in this worker process.

    Each partition's reader reports min(its own watermark, `low(excluding itself)`) rather than its own
    watermark: Prism takes a stage's output watermark from whichever residual it saw last (measured:
    one partition's backlog pushed the watermark past records of another partition still unread), so
    every reader must speak for all. A reader publishes its watermark only as restored at the start of
    a call, i.e. as the runner committed it with the previous bundle; a value reached mid-bundle would
    let another partition's bundle vouch for records not yet handed to the runner (measured, with
    bundles running in parallel). A partition this worker has never read holds the minimum for
    `grace_ms` of wall time (another worker may own it); after that it is left out.
    """

    def __init__(self, partitions, grace_ms: int = 30_000):
        self._expected = set(partitions)
        self._grace_ms = grace_ms
        self._wm: dict[int, int | None] = {}
        self._first_seen_ms: int | None = None

    def update(self, partition: int, watermark_ms: int | None, wall_ms: int) -> None:
        if self._first_seen_ms is None:
            self._first_seen_ms = wall_ms
        previous = self._wm.get(partition)
        if partition not in self._wm or (watermark_ms is not None and
                                          (previous is None or watermark_ms > previous)):
            self._wm[partition] = watermark_ms

    def low(self, wall_ms: int, excluding: int | None = None) -> int | None:
        """The minimum watermark of the other partitions; None (the minimum timestamp) while any of
        them holds it back."""
        within_grace = self._first_seen_ms is None or wall_ms - self._first_seen_ms < self._grace_ms
        others = self._expected - {excluding}
        if within_grace and not others.issubset(self._wm):
            return None
        values = [v for p, v in self._wm.items() if p != excluding]
        if any(v is None for v in values):
            return None
        return min(values) if values else _NO_OTHERS

    def high(self) -> int | None:
        values = [v for v in self._wm.values() if v is not None]
        return max(values) if values else None
