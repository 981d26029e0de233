"""JoinProfiles: the temporal join of interactions with customer profiles, as of each interaction's event time.

An interaction of customer C gets `tier` and `region` of C's update with the greatest `(eventTime, eventId)`
not after the interaction's event time, else UNKNOWN. `customer_profiles` gets each customer's update with
the greatest `(eventTime, eventId)`, not the last to arrive.

Timeline for one customer (lateness L = 30 s), streaming:
  t=10 update(gold)  t=20 interaction i1  t=15 update(silver) arrives after i1
  watermark passes 20 + L + 1 ms -> i1 is evaluated against {10: gold, 15: silver} -> silver.
"""

from __future__ import annotations

import bisect
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

from beam_cxone.records import UNKNOWN
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import EnrichedInteraction
from beam_cxone.records import Interaction
from beam_cxone.records import Outcome
from beam_cxone.records import event_order
from beam_cxone.transforms.timing import Finality
from beam_cxone.transforms.timing import to_ms
from beam_cxone.transforms.timing import to_timestamp

__all__ = ["JoinOutputs", "JoinProfiles", "profile_at", "profile_row", "prune_history"]

PROFILE_ROWS = "profile_rows"
PATTERN_OUTCOMES = frozenset({Outcome.FAILURE.value, Outcome.SUCCESS.value, Outcome.CALLBACK.value})


def profile_at(history: list[CustomerUpdate], event_ms: int) -> tuple[str, str]:
    """(tier, region) of the greatest update not after `event_ms`; `history` sorted by event_order."""
    times = [u.event_time_ms for u in history]
    k = bisect.bisect_right(times, event_ms)
    if k == 0:
        return UNKNOWN, UNKNOWN
    best = history[k - 1]
    return best.tier, best.region


def prune_history(history: list[CustomerUpdate], horizon_ms: int) -> list[CustomerUpdate]:
    """Keeps what any evaluation at or after `horizon_ms` can still need: the latest update before
    the horizon and every update from it on. `history` sorted by event_order."""
    times = [u.event_time_ms for u in history]
    k = bisect.bisect_left(times, horizon_ms)
    return history[max(0, k - 1):]


def profile_row(update: CustomerUpdate) -> dict:
    return {
        "customer_id": update.customer_id,
        "tier": update.tier,
        "region": update.region,
        "updated_at": update.event_time_ms,
    }


class JoinOutputs(NamedTuple):
    enriched: beam.PCollection  # EnrichedInteraction, keyed by customer id
    profile_rows: beam.PCollection  # customer_profiles rows


class _TemporalJoinFn(beam.DoFn):
    """Keyed by customer id; input CustomerUpdate | Interaction.

    Main output: (customer_id, EnrichedInteraction) at the evaluation time. Tag PROFILE_ROWS: rows.
    State:  'profiles' (bag of CustomerUpdate, pruned at each evaluation), 'pending' (bag of Interaction
            not yet final), 'latest' (the greatest update, for customer_profiles), 'next_eval' (ms of the
            evaluate timer, so it only moves earlier), 'gc_at' (ms of the idle timer, only moves later).
    Timers: 'evaluate' (watermark): the earliest pending interaction is final; 'idle_gc' (watermark):
            the customer was idle for the profile TTL of event time; clears everything.
    """

    PROFILES = BagStateSpec("profiles", PickleCoder())
    PENDING = BagStateSpec("pending", PickleCoder())
    LATEST = ReadModifyWriteStateSpec("latest", PickleCoder())
    NEXT_EVAL = ReadModifyWriteStateSpec("next_eval", VarIntCoder())
    GC_AT = ReadModifyWriteStateSpec("gc_at", VarIntCoder())
    EVALUATE = TimerSpec("evaluate", TimeDomain.WATERMARK)
    IDLE_GC = TimerSpec("idle_gc", TimeDomain.WATERMARK)

    def __init__(self, finality: Finality, profile_ttl_ms: int):
        self._finality = finality
        self._profile_ttl_ms = profile_ttl_ms
        self._joined = Metrics.counter("join", "interactions_joined")
        self._unknown = Metrics.counter("join", "interactions_without_profile")

    def process(self, element, profiles=beam.DoFn.StateParam(PROFILES),
                pending=beam.DoFn.StateParam(PENDING), latest=beam.DoFn.StateParam(LATEST),
                next_eval=beam.DoFn.StateParam(NEXT_EVAL), gc_at=beam.DoFn.StateParam(GC_AT),
                evaluate=beam.DoFn.TimerParam(EVALUATE), idle_gc=beam.DoFn.TimerParam(IDLE_GC)):
        _, record = element
        if isinstance(record, CustomerUpdate):
            profiles.add(record)
            current = latest.read()
            if current is None or event_order(record) > event_order(current):
                latest.write(record)
                yield pvalue.TaggedOutput(PROFILE_ROWS, profile_row(record))
        else:
            pending.add(record)
            due = self._finality.final_at(record.event_time_ms)
            scheduled = next_eval.read()
            if scheduled is None or due < scheduled:
                next_eval.write(due)
                evaluate.set(to_timestamp(due))
        self._push_gc(record.event_time_ms, gc_at, idle_gc)

    def _push_gc(self, event_ms: int, gc_at, idle_gc) -> None:
        due = event_ms + self._profile_ttl_ms
        current = gc_at.read()
        if current is None or due > current:
            gc_at.write(due)
            idle_gc.set(to_timestamp(due))

    @on_timer(EVALUATE)
    def on_evaluate(self, key=beam.DoFn.KeyParam, ts=beam.DoFn.TimestampParam,
                    profiles=beam.DoFn.StateParam(PROFILES), pending=beam.DoFn.StateParam(PENDING),
                    latest=beam.DoFn.StateParam(LATEST), next_eval=beam.DoFn.StateParam(NEXT_EVAL),
                    evaluate=beam.DoFn.TimerParam(EVALUATE)):
        now_ms = to_ms(ts)
        waiting = list(pending.read())
        final_at = self._finality.final_at
        ready = sorted((i for i in waiting if final_at(i.event_time_ms) <= now_ms), key=event_order)
        rest = [i for i in waiting if final_at(i.event_time_ms) > now_ms]
        history = sorted(profiles.read(), key=event_order)
        for interaction in ready:
            tier, region = profile_at(history, interaction.event_time_ms)
            (self._unknown if tier == UNKNOWN and region == UNKNOWN else self._joined).inc()
            yield key, EnrichedInteraction(interaction, tier, region)
        self._keep(pending, rest)
        # Every interaction still to be evaluated (pending or yet to arrive) is at or after this.
        horizon = now_ms - self._finality.allowed_lateness_ms
        self._keep(profiles, prune_history(history, horizon))
        next_eval.clear()
        if rest:
            due = min(self._finality.final_at(i.event_time_ms) for i in rest)
            next_eval.write(due)
            evaluate.set(to_timestamp(due))

    @staticmethod
    def _keep(bag, items: list) -> None:
        bag.clear()
        for item in items:
            bag.add(item)

    @on_timer(IDLE_GC)
    def on_idle_gc(self, profiles=beam.DoFn.StateParam(PROFILES),
                   latest=beam.DoFn.StateParam(LATEST), gc_at=beam.DoFn.StateParam(GC_AT)):
        # Nothing is pending here: every interaction's evaluation (t + L + 1 ms) comes before the
        # idle timer (latest t + TTL), and timers fire in timestamp order.
        profiles.clear()
        latest.clear()
        gc_at.clear()


def join_customer(customer_id: str, records: list) -> tuple[list[EnrichedInteraction], dict | None]:
    """Batch: every interaction of one customer joined at once, and the customer's profile row."""
    history = sorted((r for r in records if isinstance(r, CustomerUpdate)), key=event_order)
    interactions = sorted((r for r in records if isinstance(r, Interaction)), key=event_order)
    enriched = [EnrichedInteraction(i, *profile_at(history, i.event_time_ms)) for i in interactions]
    return enriched, (profile_row(history[-1]) if history else None)


class _JoinCustomerBatchFn(beam.DoFn):
    """Batch: (customer_id, all records) -> (customer_id, EnrichedInteraction); tag PROFILE_ROWS."""

    def process(self, element):
        customer_id, records = element
        enriched, row = join_customer(customer_id, list(records))
        for e in enriched:
            yield customer_id, e
        if row is not None:
            yield pvalue.TaggedOutput(PROFILE_ROWS, row)


def _key_interaction(interaction: Interaction) -> tuple[str, Any]:
    return interaction.customer_id, interaction


def _key_update(update: CustomerUpdate) -> tuple[str, Any]:
    return update.customer_id, update


class JoinProfiles(beam.PTransform):
    """(interactions, customer_updates) -> JoinOutputs(enriched, profile_rows).

    Streaming: the stateful `TemporalJoin` with watermark timers. Batch: all of a customer's records in
    one group, joined by the same `profile_at` (no timers: nothing is late in a bounded input).

    Only interactions that the pattern detector reads (a customer and a FAILURE, SUCCESS or CALLBACK
    outcome) are joined: the rest would only grow state.
    """

    def __init__(self, customer_updates: beam.PCollection, *, streaming: bool,
                 allowed_lateness_s: int = 30, profile_ttl_s: int = 30 * 24 * 3600):
        super().__init__()
        self._updates = customer_updates
        self._finality = Finality(streaming, allowed_lateness_s * 1000)
        self._profile_ttl_ms = profile_ttl_s * 1000

    def expand(self, interactions):
        keyed_interactions = (
            interactions
            | "SelectPatternInputs" >> beam.Filter(
                lambda i: bool(i.customer_id) and i.outcome in PATTERN_OUTCOMES)
            | "KeyInteractions" >> beam.Map(_key_interaction))
        keyed_updates = self._updates | "KeyUpdates" >> beam.Map(_key_update)
        merged = (keyed_interactions, keyed_updates) | "MergeByCustomer" >> beam.Flatten()
        kv = beam.typehints.KV[str, Any]
        if self._finality.streaming:
            joined = merged | "TemporalJoin" >> beam.ParDo(
                _TemporalJoinFn(self._finality, self._profile_ttl_ms)
            ).with_input_types(kv).with_output_types(kv).with_outputs(PROFILE_ROWS, main="enriched")
        else:
            joined = (merged
                      | "GroupByCustomer" >> beam.GroupByKey().with_input_types(kv)
                      | "JoinPerCustomer" >> beam.ParDo(_JoinCustomerBatchFn()).with_output_types(
                          kv).with_outputs(PROFILE_ROWS, main="enriched"))
        return JoinOutputs(enriched=joined.enriched, profile_rows=joined[PROFILE_ROWS])
