"""One customer's streaming state as a single value, and the pure steps that change it.

The streaming `CustomerTimeline` step keeps everything it knows of a customer in ONE state cell (one read
and at most one write per element and per timer firing; on a runner without a state cache every cell is
a round trip), encoded with an explicit, versioned coder of primitives (`TimelineCoder`): the cell is
the savepoint schema on Flink, so it must decode after a code change, and pickled classes would not.

What it holds (times are event-time ms):
- `history`: the customer's updates `(t, event_id, tier, region)` sorted by `(t, event_id)`, pruned to
  what a later evaluation can need (the last one before the horizon and all after it); its last entry
  is the greatest update, the `customer_profiles` row;
- `pending`: interactions `(t, event_id, channel, outcome)` not final yet, sorted (so a backlog of
  hundreds per customer costs a bisection per record and per wake-up, not a scan); a copy of an event id already
  pending is a duplicate (duplicates are identical producer retries, and a copy of an event that is no
  longer pending is behind the watermark by more than the lateness, so the read made it a dead letter);
- `steps`: the last `failure_count` final pattern steps `(t, event_id, outcome)`;
- `wakes`: the times of the watermark timers set on the wake grid, one per time (dynamic tag = the
  time): every pending interaction has its own, so when a watermark jumps (a backlog, a replay) all of a
  customer's due wake-ups fire in ONE bundle instead of one bundle each, one after the other;
- `gc_at`: when an idle customer is forgotten; `gc_timer_at`: when the timer tagged `gc` is set (it is
  set again when it fires early, as later records moved `gc_at`).
"""

from __future__ import annotations

import bisect
import dataclasses

from apache_beam.coders import Coder
from apache_beam.coders import FastPrimitivesCoder

from beam_cxone.records import UNKNOWN
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import EnrichedInteraction
from beam_cxone.records import Interaction
from beam_cxone.transforms.join import profile_row
from beam_cxone.transforms.patterns import PatternSpec
from beam_cxone.transforms.patterns import Step
from beam_cxone.transforms.patterns import detect
from beam_cxone.transforms.timing import END_OF_TIME_MS
from beam_cxone.transforms.timing import Finality

__all__ = [
    "EventTimePace",
    "Timeline",
    "TimelineCoder",
    "TimelineRules",
    "interaction_entry",
    "update_entry",
]

STATE_VERSION = 2
GC_TAG = "gc"
UPDATE = "u"
INTERACTION = "i"


def interaction_entry(interaction: Interaction) -> tuple:
    """What crosses the shuffle for an interaction: primitives only (a fast, stable coder)."""
    return (INTERACTION, interaction.event_time_ms, interaction.event_id, interaction.channel,
            interaction.outcome)


def update_entry(update: CustomerUpdate) -> tuple:
    return (UPDATE, update.event_time_ms, update.event_id, update.tier, update.region)


@dataclasses.dataclass
class Timeline:
    history: list = dataclasses.field(default_factory=list)
    pending: list = dataclasses.field(default_factory=list)
    steps: list = dataclasses.field(default_factory=list)
    wakes: list = dataclasses.field(default_factory=list)
    gc_at: int | None = None
    gc_timer_at: int | None = None

    def is_empty(self) -> bool:
        return not (self.history or self.pending or self.steps) and self.gc_at is None


class TimelineCoder(Coder):
    """`Timeline` <-> bytes: a version tag and tuples of ints and strings (FastPrimitivesCoder).

    Version 1 (one timer, `wake_at`) still decodes: its timer becomes the one wake-up on the grid."""

    def __init__(self):
        self._primitives = FastPrimitivesCoder()

    def encode(self, value: Timeline) -> bytes:
        return self._primitives.encode((
            STATE_VERSION,
            tuple(tuple(h) for h in value.history),
            tuple(tuple(p) for p in value.pending),
            tuple(tuple(s) for s in value.steps),
            tuple(value.wakes),
            _or_minus_one(value.gc_at),
            _or_minus_one(value.gc_timer_at),
        ))

    def decode(self, encoded: bytes) -> Timeline:
        fields = self._primitives.decode(encoded)
        version = fields[0]
        if version == 1:
            _, history, pending, steps, wake_at, gc_at = fields
            wakes, gc_timer_at = ([] if wake_at < 0 else [wake_at]), -1
        elif version == STATE_VERSION:
            _, history, pending, steps, wakes, gc_at, gc_timer_at = fields
        else:
            raise ValueError(f"customer timeline state version {version} is not {STATE_VERSION} (or 1)")
        return Timeline(list(history), sorted(pending), list(steps), list(wakes),
                        _or_none(gc_at), _or_none(gc_timer_at))

    def is_deterministic(self) -> bool:
        return True

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


def _or_minus_one(ms: int | None) -> int:
    return -1 if ms is None else ms


def _or_none(ms: int) -> int | None:
    return None if ms < 0 else ms


@dataclasses.dataclass(frozen=True)
class TimelineRules:
    """The customer step's rules over a `Timeline`; every method is pure apart from mutating it."""

    spec: PatternSpec
    finality: Finality
    profile_ttl_ms: int
    # Wake-ups are rounded up to this grid: one timer per grid time, not per record. A timer firing
    # evaluates what is final at its own time (a DoFn cannot see the watermark). A later evaluation or
    # steps expiry changes no result: everything final by then is evaluated, in order. The idle
    # deadline is never rounded: a record arriving between it and a later wake-up would keep a profile
    # the TTL forgets.
    wake_step_ms: int = 1

    def _wake(self, deadline_ms: int, step_ms: int | None = None) -> int:
        step = step_ms or self.wake_step_ms
        return min(-(-deadline_ms // step) * step, END_OF_TIME_MS - 1)

    def add(self, timeline: Timeline, customer_id: str, entry: tuple) -> tuple[dict | None, bool]:
        """Takes one record. Returns (a customer_profiles row when the greatest update changed,
        whether the record was a duplicate)."""
        kind, t, event_id = entry[0], entry[1], entry[2]
        if kind == UPDATE:
            item = tuple(entry[1:])
            k = bisect.bisect_left(timeline.history, item)
            if k < len(timeline.history) and timeline.history[k][:2] == item[:2]:
                return None, True  # a copy changes nothing, not even the idle deadline
            timeline.gc_at = max(timeline.gc_at or 0, t + self.profile_ttl_ms)
            timeline.history.insert(k, item)
            if k < len(timeline.history) - 1:
                return None, False
            t, event_id, tier, region = item
            return profile_row(CustomerUpdate(event_id, t, customer_id, tier, region)), False
        pending = timeline.pending
        k = bisect.bisect_left(pending, (t, event_id))
        if k < len(pending) and pending[k][0] == t and pending[k][1] == event_id:
            return None, True
        timeline.gc_at = max(timeline.gc_at or 0, t + self.profile_ttl_ms)
        pending.insert(k, tuple(entry[1:]))
        return None, False

    def _first_not_final(self, pending: list, now_ms: int) -> int:
        """The index of the first sorted pending interaction not final at `now_ms`."""
        if now_ms >= END_OF_TIME_MS - 1:
            return len(pending)
        # final_at(t) <= now  <=>  t <= now - lateness - 1
        return bisect.bisect_left(pending, (now_ms - self.finality.allowed_lateness_ms,))

    def wake_for(self, entry: tuple, step_ms: int | None = None) -> int | None:
        """The grid wake-up an interaction needs (when it is final); None for an update (the idle
        deadline has a timer of its own)."""
        if entry[0] == UPDATE:
            return None
        return self._wake(self.finality.final_at(entry[1]), step_ms)

    def schedule(self, timeline: Timeline, wake_times, after_ms: int | None = None) -> list[tuple[str, int]]:
        """Notes and returns the timers to set, as (dynamic tag, time): one per wake time not set yet,
        and the idle deadline's when none is set (and the deadline is after `after_ms`)."""
        timers = []
        wakes = timeline.wakes
        for at in sorted(set(wake_times)):
            k = bisect.bisect_left(wakes, at)
            if k == len(wakes) or wakes[k] != at:
                wakes.insert(k, at)
                timers.append((str(at), at))
        gc_at = timeline.gc_at
        if gc_at is not None and timeline.gc_timer_at is None and (after_ms is None or gc_at > after_ms):
            timeline.gc_timer_at = gc_at
            timers.append((GC_TAG, gc_at))
        return timers

    def evaluate(self, timeline: Timeline, customer_id: str, now_ms: int) -> tuple[list[dict], int]:
        """The watermark reached `now_ms`: evaluates the final interactions in (eventTime, eventId)
        order (join, then pattern), prunes and expires state. Returns the alert rows (without
        `detected_at`) and how many interactions were joined."""
        final_at = self.finality.final_at
        k = self._first_not_final(timeline.pending, now_ms)
        ready = timeline.pending[:k]
        if ready:
            del timeline.pending[:k]
        history = timeline.history
        times = [h[0] for h in history]
        enriched = []
        for t, event_id, channel, outcome in ready:
            k = bisect.bisect_right(times, t)
            tier, region = (history[k - 1][2], history[k - 1][3]) if k else (UNKNOWN, UNKNOWN)
            enriched.append(EnrichedInteraction(
                Interaction(event_id, t, "", "", customer_id, channel, "", outcome), tier, region))
        steps = [Step(*s) for s in timeline.steps]
        alerts, new_steps = detect(steps, enriched, self.spec, customer_id)
        # Every interaction still to evaluate (waiting or yet to arrive) is at or after this time.
        horizon = now_ms - self.finality.allowed_lateness_ms
        k = bisect.bisect_left(times, horizon)
        timeline.history = history[max(0, k - 1):]
        steps_expire = final_at(new_steps[-1].event_time_ms + self.spec.within_ms) if new_steps else None
        if steps_expire is not None and steps_expire <= now_ms:
            new_steps, steps_expire = [], None
        timeline.steps = [(s.event_time_ms, s.event_id, s.outcome) for s in new_steps]
        if not timeline.pending and timeline.gc_at is not None and timeline.gc_at <= now_ms:
            timeline.history, timeline.steps, timeline.gc_at = [], [], None
        return alerts, len(enriched)

    def after_wake(self, timeline: Timeline, now_ms: int, step_ms: int | None = None) -> list[tuple[str, int]]:
        """After `evaluate(now_ms)`: forgets the timers that have fired by now and returns those to set:
        the steps' expiry unless a later wake-up covers it, any pending interaction no wake-up covers
        (only after a version-1 state), and the idle deadline's timer when it fired before later records
        moved the deadline on. A past idle deadline waits for the pending interactions' wake-ups."""
        final_at = self.finality.final_at
        del timeline.wakes[:bisect.bisect_right(timeline.wakes, now_ms)]
        if timeline.gc_timer_at is not None and timeline.gc_timer_at <= now_ms:
            timeline.gc_timer_at = None
        last = timeline.wakes[-1] if timeline.wakes else now_ms
        pending = timeline.pending
        wake_times = [self._wake(final_at(p[0]), step_ms)
                      for p in pending[self._first_not_final(pending, last):]]
        if timeline.steps:
            expiry = final_at(timeline.steps[-1][0] + self.spec.within_ms)
            if expiry > max(wake_times, default=last):
                wake_times.append(self._wake(expiry, step_ms))
        return self.schedule(timeline, wake_times, after_ms=now_ms)


class EventTimePace:
    """How fast one worker's timer firings move through event time, to pick the wake grid: a backlog
    or a replay moves minutes of event time per second, a live stream about one. Only when a key is
    evaluated depends on it, never what is evaluated (that is decided by the timer's own time), so a
    wall-clock measure here changes no result."""

    def __init__(self, live_step_ms: int, catch_up_step_ms: int, catch_up_speed: float = 5.0):
        self._live, self._catch_up, self._speed = live_step_ms, catch_up_step_ms, catch_up_speed
        self._mark: tuple[float, int] | None = None
        self._newest_ms: int | None = None
        self.step_ms = live_step_ms

    def step_for_batch(self, first_ms: int, last_ms: int) -> int:
        """The grid for the wake-ups of one batch of a customer's records: a batch spanning more
        than the live grid of event time comes from a backlog (a live read call returns within a
        second, so a live customer's batch spans about that), so its wake-ups go on the catch-up
        grid before any timer has fired to tell."""
        return self._catch_up if last_ms - first_ms > self._live else self.step_ms

    def observe(self, timer_ms: int, wall_s: float) -> int:
        """Takes a firing's time; returns the grid for the wake-ups it sets."""
        if self._newest_ms is None or timer_ms > self._newest_ms:
            self._newest_ms = timer_ms
        if self._mark is None:
            self._mark = (wall_s, self._newest_ms)
        elif wall_s - self._mark[0] >= 1.0:
            speed = (self._newest_ms - self._mark[1]) / 1000 / (wall_s - self._mark[0])
            self.step_ms = self._catch_up if speed > self._speed else self._live
            self._mark = (wall_s, self._newest_ms)
        return self.step_ms
