"""JoinProfilesAndDetectPatterns: each customer's timeline, joined with profiles as of event time, then
searched for REPEATED_FAILURE_CALLBACK; plus the `customer_profiles` rows.

Streaming keeps one stateful step per customer (`CustomerTimeline`): updates and interactions are buffered,
and an interaction is evaluated once final (watermark past its event time + allowed lateness + 1 ms), in
`(eventTime, eventId)` order: first the temporal join (`join.profile_at`), then the pattern
(`patterns.detect`). The two live in one step on purpose: as two stateful steps, the pattern step's
timers had to trust the join's timer outputs to hold the watermark, which the DirectRunner does not do
(measured: an alert was lost there); one step also saves a shuffle and a second buffer per customer.

Batch does not come here: `transforms/batch.py` (BatchAnalytics) calls the same two functions on each
customer's whole input.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.transforms.userstate import TimerSpec
from apache_beam.transforms.userstate import on_timer
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from beam_cxone import defaults
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import Interaction
from beam_cxone.transforms.join import PATTERN_OUTCOMES
from beam_cxone.transforms.patterns import PatternSpec
from beam_cxone.transforms.timeline import EventTimePace
from beam_cxone.transforms.timeline import Timeline
from beam_cxone.transforms.timeline import TimelineCoder
from beam_cxone.transforms.timeline import TimelineRules
from beam_cxone.transforms.timeline import interaction_entry
from beam_cxone.transforms.timeline import update_entry
from beam_cxone.transforms.timing import Finality
from beam_cxone.transforms.timing import to_ms
from beam_cxone.transforms.timing import to_timestamp

__all__ = ["CustomerOutputs", "JoinProfilesAndDetectPatterns"]

ALERTS = "alerts"
PROFILE_ROWS = "profile_rows"
# The customer step's wake-ups are rounded up to this grid (see TimelineRules.wake_step_ms): an alert
# is written at most this much later than it is final, and a customer has one timer per grid time, not
# one per record. In a backlog or a replay (a batch of a customer's records spanning more than the live
# grid, or timers moving faster than 5 s of event time per second: EventTimePace) the grid is a minute:
# timer firings per 20,000-record backlog fell from ~2,900 to ~2,100.
WAKE_STEP_MS = 10_000
CATCH_UP_WAKE_STEP_MS = 60_000


class CustomerOutputs(NamedTuple):
    alerts: beam.PCollection  # pattern_alerts rows
    profile_rows: beam.PCollection  # customer_profiles rows


class _Counters:
    def __init__(self):
        self.alerts = Metrics.counter("patterns", "alerts")
        self.joined = Metrics.counter("join", "interactions_joined")
        self.duplicates = Metrics.counter("dedup", "duplicates_dropped")


def _stamped(alerts: list[dict]) -> list[dict]:
    detected_at = int(time.time() * 1000)
    return [{**alert, "detected_at": detected_at} for alert in alerts]


class _BatchPerCustomerFn(beam.DoFn):
    """(customer, entry) -> (customer, [entries]) once per bundle, stamped at the earliest of them.

    Lifts the per-element cost of the stateful step to one per customer and bundle (one state read,
    one write, at most one timer), as a combiner lifts an aggregation: a backlog's bundle of 5,000
    records holds dozens of records per customer. Not keyed state, so it fuses with the parse; the
    timeline is order-insensitive, so batching changes no result. Every entry in a batch is at or after
    the batch's timestamp, which no watermark has passed by more than the allowed lateness.
    """

    def start_bundle(self):
        self._batches: dict[str, list] = {}

    def process(self, element, ts=beam.DoFn.TimestampParam):
        customer_id, entry = element
        batch = self._batches.get(customer_id)
        if batch is None:
            self._batches[customer_id] = [ts, [entry]]
        else:
            batch[0] = min(batch[0], ts)
            batch[1].append(entry)

    def finish_bundle(self):
        batches, self._batches = self._batches, {}
        for customer_id, (ts, entries) in batches.items():
            yield WindowedValue((customer_id, entries), ts, [GlobalWindow()])


class _CustomerTimelineFn(beam.DoFn):
    """Keyed by customer id; input: batches of `timeline.interaction_entry` / `update_entry` tuples.

    Main output: pattern_alerts rows; tag PROFILE_ROWS: customer_profiles rows, on every new greatest
    update. State: one cell, 'timeline' (see `beam_cxone.transforms.timeline`). Timer family: 'wake'
    (watermark), one timer per wake-up time on the grid (dynamic tag = the time: an interaction is
    final, the steps' expiry) and one tagged 'gc' at the idle deadline. Every firing evaluates all that
    is final at its own time, so the order in which a key's firings arrive changes nothing. Several
    timers, not one moved along: a runner fires a key's due timers together, but a timer set while
    firing only in a later bundle, so after a watermark jump (a backlog, a replay) one re-armed timer
    cost one bundle per grid time of the customer, in a row. Most batches cost one state read, one
    write, and a timer per new grid time.
    """

    TIMELINE = ReadModifyWriteStateSpec("timeline", TimelineCoder())
    WAKE = TimerSpec("wake", TimeDomain.WATERMARK)

    def __init__(self, rules: TimelineRules):
        self._rules = rules
        self._counters = _Counters()

    def setup(self):
        self._pace = EventTimePace(WAKE_STEP_MS, CATCH_UP_WAKE_STEP_MS)

    def process(self, element, state=beam.DoFn.StateParam(TIMELINE), wake=beam.DoFn.TimerParam(WAKE)):
        customer_id, entries = element
        timeline = state.read() or Timeline()
        latest_row = None
        added = []
        for entry in entries:
            row, duplicate = self._rules.add(timeline, customer_id, entry)
            if duplicate:
                self._counters.duplicates.inc()
                continue
            added.append(entry)
            latest_row = row or latest_row
        if not added:
            return
        times = [entry[1] for entry in added]
        step_ms = self._pace.step_for_batch(min(times), max(times))
        wake_times = [at for at in (self._rules.wake_for(entry, step_ms) for entry in added) if at is not None]
        if latest_row is not None:
            yield pvalue.TaggedOutput(PROFILE_ROWS, latest_row)
        _set(wake, self._rules.schedule(timeline, wake_times))
        state.write(timeline)

    @on_timer(WAKE)
    def on_wake(self, key=beam.DoFn.KeyParam, ts=beam.DoFn.TimestampParam,
                state=beam.DoFn.StateParam(TIMELINE), wake=beam.DoFn.TimerParam(WAKE)):
        # The timer's own time, not the watermark (a DoFn cannot see it): the runner delivers a key's
        # data stamped up to this time before the timer, so what is final by then is all here.
        # (Tried: evaluating up to the greatest timer time fired in the bundle; it lost an alert,
        # as a key's data queued behind its own earlier timer had not arrived yet.)
        now_ms = to_ms(ts)
        step_ms = self._pace.observe(now_ms, time.monotonic())
        timeline = state.read() or Timeline()
        alerts, joined = self._rules.evaluate(timeline, key, now_ms)
        self._counters.joined.inc(joined)
        for alert in _stamped(alerts):
            self._counters.alerts.inc()
            yield alert
        _set(wake, self._rules.after_wake(timeline, now_ms, step_ms))
        if timeline.is_empty():
            state.clear()
        else:
            state.write(timeline)


def _set(wake, timers: list[tuple[str, int]]) -> None:
    """Sets (dynamic tag, event-time ms) timers of the 'wake' family."""
    for tag, at_ms in timers:
        wake.set(to_timestamp(at_ms), dynamic_timer_tag=tag)


def _is_pattern_input(interaction: Interaction) -> bool:
    """Only interactions of a known customer with a FAILURE, SUCCESS or CALLBACK outcome matter here."""
    return bool(interaction.customer_id) and interaction.outcome in PATTERN_OUTCOMES


def _keyed_interaction_entry(interaction: Interaction) -> tuple[str, tuple]:
    return interaction.customer_id, interaction_entry(interaction)


def _keyed_update_entry(update: CustomerUpdate) -> tuple[str, tuple]:
    return update.customer_id, update_entry(update)


class JoinProfilesAndDetectPatterns(beam.PTransform):
    """(interactions, customer_updates) -> CustomerOutputs(alerts, profile_rows)."""

    def __init__(self, customer_updates: beam.PCollection, spec: PatternSpec = PatternSpec(), *,
                 streaming: bool, allowed_lateness_s: int = defaults.ALLOWED_LATENESS_S,
                 profile_ttl_s: int = defaults.PROFILE_TTL_S):
        super().__init__()
        if not streaming:
            raise ValueError("batch runs transforms/batch.py (BatchAnalytics), not this step")
        if profile_ttl_s <= 0:
            raise ValueError(f"profile_ttl_s must be > 0, got {profile_ttl_s}")
        self._updates = customer_updates
        self._spec = spec
        self._finality = Finality(streaming, allowed_lateness_s * 1000)
        self._profile_ttl_ms = profile_ttl_s * 1000

    def expand(self, interactions):
        pattern_inputs = interactions | "SelectPatternInputs" >> beam.Filter(_is_pattern_input)
        entry = beam.typehints.KV[str, beam.typehints.Tuple[str, int, str, str, str]]
        keyed_interactions = pattern_inputs | "KeyInteractions" >> beam.Map(
            _keyed_interaction_entry).with_output_types(entry)
        keyed_updates = self._updates | "KeyUpdates" >> beam.Map(
            _keyed_update_entry).with_output_types(entry)
        batches = beam.typehints.KV[str, beam.typehints.List[beam.typehints.Tuple[str, int, str, str, str]]]
        merged = (keyed_interactions, keyed_updates) | "MergeByCustomer" >> beam.Flatten()
        rules = TimelineRules(self._spec, self._finality, self._profile_ttl_ms, WAKE_STEP_MS)
        outputs = (merged
                   | "BatchPerCustomer" >> beam.ParDo(_BatchPerCustomerFn()).with_output_types(batches)
                   | "CustomerTimeline" >> beam.ParDo(_CustomerTimelineFn(rules)).with_input_types(
                       batches).with_outputs(PROFILE_ROWS, main=ALERTS))
        return CustomerOutputs(outputs[ALERTS], outputs[PROFILE_ROWS])
