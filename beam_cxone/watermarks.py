"""Per-partition event-time watermark and lateness, as a pure value the Kafka read keeps in its checkpoint.

watermark = greatest event time seen - bounded out-of-orderness (or a floor, below). A record is late
when its event time is more than the allowed lateness behind its partition's watermark as it stood
before the record was read: a function of the partition's log alone, so a replay, a pause or a burst
decides it the same way. No record that is not late is more than `lateness` behind any downstream
watermark (each reader reports at most its own watermark), so no windowed or stateful step downstream
ever sees it as expired: the read is the one place where "late" is decided, and late records become
dead letters instead of silent drops.

Idleness, by event time only: a partition that has read everything there is (caught up for
`idle_timeout_ms` of wall time) stops holding the others back by vouching for the watermark of the
partitions still reading: its floor rises to their minimum, so the topic's watermark (the minimum over
all partitions, idle ones included) follows them, and a record the idle partition receives later that
is far behind is `late`, never silently dropped downstream. (An idle partition left out of the minimum
instead would let the topic pass records it reads in the moment it wakes up: measured, the window
rows around a pause lost records.) When every partition is caught up (a pause in the feed, the end of a backlog),
nothing moves: the wall clock never advances a watermark unless `wall_clock_idle` is set (an explicit
option for sparse topics, at the price of turning what a feed sends after a long enough pause into
`late` dead letters).
"""

from __future__ import annotations

import dataclasses

__all__ = ["PartitionClock", "TopicWatermarks"]


@dataclasses.dataclass
class PartitionClock:
    """Watermark state of one partition; `state()` / `from_state()` survive checkpoints."""

    out_of_orderness_ms: int
    lateness_ms: int
    idle_timeout_ms: int
    max_event_ms: int | None = None
    floor_ms: int | None = None  # raised by idleness only; the watermark never moves back
    caught_up_since_wall_ms: int | None = None  # None while records wait to be read
    wall_clock_idle: bool = False

    def watermark_ms(self) -> int | None:
        """The current watermark, None while nothing is known (the minimum timestamp)."""
        candidates = [w for w in (self._data_watermark(), self.floor_ms) if w is not None]
        return max(candidates) if candidates else None

    def _data_watermark(self) -> int | None:
        return None if self.max_event_ms is None else self.max_event_ms - self.out_of_orderness_ms

    def observe(self, event_ms: int) -> bool:
        """Take one record's event time; returns whether it is late (and then ignores it)."""
        self.caught_up_since_wall_ms = None
        wm = self.watermark_ms()
        if wm is not None and event_ms < wm - self.lateness_ms:
            return True
        if self.max_event_ms is None or event_ms > self.max_event_ms:
            self.max_event_ms = event_ms
        return False

    def on_poll_empty(self, wall_ms: int, caught_up: bool) -> None:
        """A poll returned nothing. Only a partition that has read everything there is can be idle:
        an empty poll while a backlog remains (a reader scheduled late, a slow fetch, a broker
        error) must not let the others pass records still to be read."""
        if not caught_up:
            self.caught_up_since_wall_ms = None
        elif self.caught_up_since_wall_ms is None:
            self.caught_up_since_wall_ms = wall_ms

    def is_idle(self, wall_ms: int) -> bool:
        since = self.caught_up_since_wall_ms
        return since is not None and wall_ms - since >= self.idle_timeout_ms

    def vouch(self, topic_low_ms: int | None, wall_ms: int) -> None:
        """An idle partition takes the watermark of the partitions still reading as its floor (it
        no longer holds them back); with `wall_clock_idle`, its watermark also follows the wall clock."""
        if not self.is_idle(wall_ms):
            return
        candidates = [topic_low_ms]
        own = self._data_watermark()
        if self.wall_clock_idle and own is not None:
            candidates.append(own + wall_ms - self.caught_up_since_wall_ms)
        best = max((c for c in candidates if c is not None), default=None)
        if best is not None and (self.floor_ms is None or best > self.floor_ms):
            self.floor_ms = best

    def state(self) -> tuple:
        return (self.max_event_ms, self.floor_ms, self.caught_up_since_wall_ms)

    @classmethod
    def from_state(cls, state: tuple | None, out_of_orderness_ms: int, lateness_ms: int,
                   idle_timeout_ms: int, wall_clock_idle: bool = False) -> PartitionClock:
        max_event_ms, floor_ms, since = state if state else (None, None, None)
        return cls(out_of_orderness_ms, lateness_ms, idle_timeout_ms, max_event_ms, floor_ms, since,
                   wall_clock_idle)


_NO_OTHERS = 2**62  # no other partition: nothing to hold the watermark back


class TopicWatermarks:
    """The committed watermarks (and idleness) of one topic's partitions read in this worker process.

    Each partition's reader reports min(its own watermark, `low(excluding itself)`) rather than its own
    watermark: Prism takes a stage's output watermark from whichever residual it saw last (measured:
    one partition's backlog pushed the watermark past records of another partition still unread), so
    every reader must speak for all. A reader publishes its state only as restored at the start of a
    call, i.e. as the runner committed it with the previous bundle; a value reached mid-bundle would
    let another partition's bundle vouch for records not yet handed to the runner (measured, with
    bundles running in parallel). A partition this worker has never read holds the minimum for
    `grace_ms` of wall time (another worker may own it); after that it is left out.
    """

    def __init__(self, partitions, grace_ms: int = 30_000):
        self._expected = set(partitions)
        self._grace_ms = grace_ms
        self._wm: dict[int, int | None] = {}
        self._idle: dict[int, bool] = {}
        self._first_seen_ms: int | None = None

    def update(self, partition: int, watermark_ms: int | None, wall_ms: int, idle: bool = False) -> None:
        if self._first_seen_ms is None:
            self._first_seen_ms = wall_ms
        previous = self._wm.get(partition)
        if partition not in self._wm or (watermark_ms is not None and
                                          (previous is None or watermark_ms > previous)):
            self._wm[partition] = watermark_ms
        self._idle[partition] = idle

    def low(self, wall_ms: int, excluding: int | None = None) -> int | None:
        """The minimum watermark of the other partitions, idle ones included (an idle partition has
        raised its floor to what the others reached, see `vouch`: it never lets the topic pass a
        record it may still read without calling that record late); None (the minimum timestamp)
        while any of them holds it back."""
        within_grace = self._first_seen_ms is None or wall_ms - self._first_seen_ms < self._grace_ms
        others = self._expected - {excluding}
        if within_grace and not others.issubset(self._wm):
            return None
        values = [v for p, v in self._wm.items() if p != excluding]
        if any(v is None for v in values):
            return None
        return min(values) if values else _NO_OTHERS

    def low_of_active(self, wall_ms: int, excluding: int) -> int | None:
        """What an idle partition may vouch for: the minimum of the other partitions still reading;
        None when there is none (every partition idle: nothing moves) or one holds the minimum."""
        if self.low(wall_ms, excluding) is None:
            return None
        active = [v for p, v in self._wm.items() if p != excluding and not self._idle.get(p, False)]
        return min(active) if active else None
