"""JoinProfilesAndDetectPatterns: each customer's timeline, joined with profiles as of event time, then
searched for REPEATED_FAILURE_CALLBACK; plus the `customer_profiles` rows.

Streaming keeps one stateful step per customer (`CustomerTimeline`): updates and interactions are buffered,
and an interaction is evaluated once final (watermark past its event time + allowed lateness + 1 ms), in
`(eventTime, eventId)` order: first the temporal join (`join.profile_at`), then the pattern
(`patterns.detect`). The two live in one step on purpose: as two stateful steps, the pattern step's
timers had to trust the join's timer outputs to hold the watermark, which the DirectRunner does not do
(measured: an alert was lost there); one step also saves a shuffle and a second buffer per customer.

Batch groups each customer's records and calls the same two functions once.
"""

from __future__ import annotations

import time
from typing import Any
from typing import NamedTuple

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.coders import PickleCoder
from apache_beam.coders import VarIntCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.transforms.userstate import TimerSpec
from apache_beam.transforms.userstate import on_timer

from beam_cxone.records import CustomerUpdate
from beam_cxone.records import EnrichedInteraction
from beam_cxone.records import Interaction
from beam_cxone.records import event_order
from beam_cxone.transforms.join import PATTERN_OUTCOMES
from beam_cxone.transforms.join import join_customer
from beam_cxone.transforms.join import profile_at
from beam_cxone.transforms.join import profile_row
from beam_cxone.transforms.join import prune_history
from beam_cxone.transforms.patterns import PatternSpec
from beam_cxone.transforms.patterns import detect
from beam_cxone.transforms.timing import Finality
from beam_cxone.transforms.timing import to_ms
from beam_cxone.transforms.timing import to_timestamp

__all__ = ["CustomerOutputs", "JoinProfilesAndDetectPatterns"]

ALERTS = "alerts"
PROFILE_ROWS = "profile_rows"
ENRICHED = "enriched"


class CustomerOutputs(NamedTuple):
    alerts: beam.PCollection  # pattern_alerts rows
    profile_rows: beam.PCollection  # customer_profiles rows
    enriched: beam.PCollection  # EnrichedInteraction: the temporal join's result, for inspection


class _Counters:
    def __init__(self):
        self.alerts = Metrics.counter("patterns", "alerts")
        self.joined = Metrics.counter("join", "interactions_joined")


def _stamped(alerts: list[dict]) -> list[dict]:
    detected_at = int(time.time() * 1000)
    return [{**alert, "detected_at": detected_at} for alert in alerts]


class _CustomerTimelineFn(beam.DoFn):
    """Keyed by customer id; input CustomerUpdate | Interaction (pattern outcomes only).

    Main output: pattern_alerts rows. Tags PROFILE_ROWS (customer_profiles rows, on every new greatest
    update) and ENRICHED (joined interactions).
    State:  'profiles' bag of CustomerUpdate, pruned to what a later evaluation can need;
            'latest'   the greatest update (for customer_profiles);
            'pending'  bag of Interaction not yet final;
            'steps'    the last N final pattern steps;
            'wake_at'  ms of the one timer; 'gc_at' ms after which an idle customer is forgotten.
    Timer:  'wake' (watermark), at the earliest of: the first pending interaction is final; the pattern
            steps can no longer match (last step + within + lateness); the customer has been idle for
            the profile TTL of event time. One timer, not one per purpose: Prism fires a key's timers
            of different families out of timestamp order (measured: an expiry ran before the evaluation
            that needed the steps), so every deadline is checked in order at each wake-up.
    """

    PROFILES = BagStateSpec("profiles", PickleCoder())
    LATEST = ReadModifyWriteStateSpec("latest", PickleCoder())
    PENDING = BagStateSpec("pending", PickleCoder())
    STEPS = ReadModifyWriteStateSpec("steps", PickleCoder())
    WAKE_AT = ReadModifyWriteStateSpec("wake_at", VarIntCoder())
    GC_AT = ReadModifyWriteStateSpec("gc_at", VarIntCoder())
    WAKE = TimerSpec("wake", TimeDomain.WATERMARK)

    def __init__(self, spec: PatternSpec, finality: Finality, profile_ttl_ms: int):
        self._spec = spec
        self._finality = finality
        self._profile_ttl_ms = profile_ttl_ms
        self._counters = _Counters()

    def process(self, element, profiles=beam.DoFn.StateParam(PROFILES),
                latest=beam.DoFn.StateParam(LATEST), pending=beam.DoFn.StateParam(PENDING),
                wake_at=beam.DoFn.StateParam(WAKE_AT), gc_at=beam.DoFn.StateParam(GC_AT),
                wake=beam.DoFn.TimerParam(WAKE)):
        _, record = element
        gc_due = max(gc_at.read() or 0, record.event_time_ms + self._profile_ttl_ms)
        gc_at.write(gc_due)
        if isinstance(record, CustomerUpdate):
            profiles.add(record)
            current = latest.read()
            if current is None or event_order(record) > event_order(current):
                latest.write(record)
                yield pvalue.TaggedOutput(PROFILE_ROWS, profile_row(record))
            due = gc_due
        else:
            pending.add(record)
            due = self._finality.final_at(record.event_time_ms)
        scheduled = wake_at.read()
        if scheduled is None or due < scheduled:
            wake_at.write(due)
            wake.set(to_timestamp(due))

    @on_timer(WAKE)
    def on_wake(self, key=beam.DoFn.KeyParam, ts=beam.DoFn.TimestampParam,
                profiles=beam.DoFn.StateParam(PROFILES), latest=beam.DoFn.StateParam(LATEST),
                pending=beam.DoFn.StateParam(PENDING), steps=beam.DoFn.StateParam(STEPS),
                wake_at=beam.DoFn.StateParam(WAKE_AT), gc_at=beam.DoFn.StateParam(GC_AT),
                wake=beam.DoFn.TimerParam(WAKE)):
        now_ms = to_ms(ts)
        final_at = self._finality.final_at
        waiting = list(pending.read())
        ready = sorted((i for i in waiting if final_at(i.event_time_ms) <= now_ms), key=event_order)
        rest = [i for i in waiting if final_at(i.event_time_ms) > now_ms]
        history = sorted(profiles.read(), key=event_order)
        enriched = [EnrichedInteraction(i, *profile_at(history, i.event_time_ms)) for i in ready]
        alerts, new_steps = detect(steps.read() or [], enriched, self._spec, key)
        self._counters.joined.inc(len(enriched))
        for e in enriched:
            yield pvalue.TaggedOutput(ENRICHED, e)
        for alert in _stamped(alerts):
            self._counters.alerts.inc()
            yield alert
        if ready:
            _replace(pending, rest)
        # Every interaction still to evaluate (waiting or yet to arrive) is at or after this time.
        _replace(profiles, prune_history(history, now_ms - self._finality.allowed_lateness_ms))
        steps_expire = final_at(new_steps[-1].event_time_ms + self._spec.within_ms) if new_steps else None
        if steps_expire is not None and steps_expire <= now_ms:
            new_steps, steps_expire = [], None
        steps.write(new_steps) if new_steps else steps.clear()
        gc_due = gc_at.read()
        if not rest and gc_due is not None and gc_due <= now_ms:
            profiles.clear()
            latest.clear()
            gc_at.clear()
            gc_due = None
        deadlines = [final_at(i.event_time_ms) for i in rest]
        # A past GC deadline waits for the pending interactions (it is checked again at their wake-up).
        deadlines += [d for d in (steps_expire, gc_due) if d is not None and d > now_ms]
        if deadlines:
            wake_at.write(min(deadlines))
            wake.set(to_timestamp(min(deadlines)))
        else:
            wake_at.clear()


def _replace(bag, items: list) -> None:
    bag.clear()
    for item in items:
        bag.add(item)


class _CustomerBatchFn(beam.DoFn):
    """Batch: (customer_id, all records) -> alerts; tags PROFILE_ROWS and ENRICHED."""

    def __init__(self, spec: PatternSpec):
        self._spec = spec
        self._counters = _Counters()

    def process(self, element):
        customer_id, records = element
        enriched, row = join_customer(customer_id, list(records))
        alerts, _ = detect([], enriched, self._spec, customer_id)
        self._counters.joined.inc(len(enriched))
        for e in enriched:
            yield pvalue.TaggedOutput(ENRICHED, e)
        if row is not None:
            yield pvalue.TaggedOutput(PROFILE_ROWS, row)
        for alert in _stamped(alerts):
            self._counters.alerts.inc()
            yield alert


def _is_pattern_input(interaction: Interaction) -> bool:
    """Only interactions of a known customer with a FAILURE, SUCCESS or CALLBACK outcome matter here."""
    return bool(interaction.customer_id) and interaction.outcome in PATTERN_OUTCOMES


def _by_customer(record: Interaction | CustomerUpdate) -> tuple[str, Any]:
    return record.customer_id, record


class JoinProfilesAndDetectPatterns(beam.PTransform):
    """(interactions, customer_updates) -> CustomerOutputs(alerts, profile_rows, enriched)."""

    def __init__(self, customer_updates: beam.PCollection, spec: PatternSpec = PatternSpec(), *,
                 streaming: bool, allowed_lateness_s: int = 30, profile_ttl_s: int = 30 * 24 * 3600):
        super().__init__()
        if profile_ttl_s <= 0:
            raise ValueError(f"profile_ttl_s must be > 0, got {profile_ttl_s}")
        self._updates = customer_updates
        self._spec = spec
        self._finality = Finality(streaming, allowed_lateness_s * 1000)
        self._profile_ttl_ms = profile_ttl_s * 1000

    def expand(self, interactions):
        kv = beam.typehints.KV[str, Any]
        keyed_interactions = (interactions
                              | "SelectPatternInputs" >> beam.Filter(_is_pattern_input)
                              | "KeyInteractions" >> beam.Map(_by_customer).with_output_types(kv))
        keyed_updates = self._updates | "KeyUpdates" >> beam.Map(_by_customer).with_output_types(kv)
        merged = (keyed_interactions, keyed_updates) | "MergeByCustomer" >> beam.Flatten()
        if self._finality.streaming:
            fn = _CustomerTimelineFn(self._spec, self._finality, self._profile_ttl_ms)
            outputs = merged | "CustomerTimeline" >> beam.ParDo(fn).with_input_types(kv).with_outputs(
                PROFILE_ROWS, ENRICHED, main=ALERTS)
        else:
            outputs = (merged
                       | "GroupByCustomer" >> beam.GroupByKey().with_input_types(kv)
                       | "JoinAndDetect" >> beam.ParDo(_CustomerBatchFn(self._spec)).with_outputs(
                           PROFILE_ROWS, ENRICHED, main=ALERTS))
        return CustomerOutputs(outputs[ALERTS], outputs[PROFILE_ROWS], outputs[ENRICHED])
