"""DetectPatterns: REPEATED_FAILURE_CALLBACK with Flink CEP semantics, evaluated in event-time order.

Flink CEP: `begin("failure").times(3).consecutive().next("callback").within(30 s)`. Per customer, the
interactions with outcome FAILURE, SUCCESS or CALLBACK in `(eventTime, eventId)` order; a CALLBACK c
matches when the `failure_count` outcomes right before it are all FAILURE, f1 (earliest) ... fN, and
`c.eventTime - f1.eventTime < within` (strictly). Four failures then a callback: one match (f2..f4).

Timeline (N = 3, within = 30 s, lateness L = 30 s), streaming, arrival order F@2 C@40 F@1 F@3:
  watermark passes 1+L+1ms: F@1 final; ... 40+L+1ms: C@40 final -> 40 - 1 >= 30 -> no match.
  The same events in any arrival order give the same answer: only final events are evaluated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.coders import VarIntCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.transforms.userstate import TimerSpec
from apache_beam.transforms.userstate import on_timer

from beam_cxone.records import EnrichedInteraction
from beam_cxone.records import Outcome
from beam_cxone.transforms.timing import Finality
from beam_cxone.transforms.timing import to_ms
from beam_cxone.transforms.timing import to_timestamp

__all__ = ["DetectPatterns", "PatternSpec", "Step", "alert_id", "detect"]

ALERT_TYPE = "REPEATED_FAILURE_CALLBACK"


@dataclasses.dataclass(frozen=True)
class PatternSpec:
    """N consecutive failures, then a callback, within `within_ms` of the first failure (exclusive)."""

    failure_count: int = 3
    within_ms: int = 30_000
    alert_type: str = ALERT_TYPE

    def __post_init__(self):
        if self.failure_count < 1:
            raise ValueError(f"failure_count must be >= 1, got {self.failure_count}")
        if self.within_ms <= 0:
            raise ValueError(f"within_ms must be > 0, got {self.within_ms}")


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One final outcome in a customer's sequence (all the detector remembers of an event)."""

    event_time_ms: int
    event_id: str
    outcome: str


def alert_id(customer_id: str, alert_type: str, callback_event_id: str, failure_ids: list[str]) -> str:
    """Deterministic: a replay of the same match writes the same row."""
    text = "\x1f".join([customer_id, alert_type, callback_event_id, *failure_ids])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def detect(history: list[Step], ready: list[EnrichedInteraction], spec: PatternSpec,
           customer_id: str) -> tuple[list[dict], list[Step]]:
    """Feeds final events (sorted by (eventTime, eventId)) after the remembered `history`.

    Returns the alert rows (without `detected_at`) and the new history: the last `failure_count`
    steps, all a later callback can look back at.
    """
    alerts = []
    steps = list(history)
    n = spec.failure_count
    for enriched in ready:
        event = enriched.interaction
        if event.outcome == Outcome.CALLBACK.value and len(steps) >= n:
            run = steps[-n:]
            if (all(s.outcome == Outcome.FAILURE.value for s in run)
                    and event.event_time_ms - run[0].event_time_ms < spec.within_ms):
                failure_ids = [s.event_id for s in run]
                alerts.append({
                    "customer_id": customer_id,
                    "alert_time": event.event_time_ms,
                    "alert_type": spec.alert_type,
                    "alert_id": alert_id(customer_id, spec.alert_type, event.event_id, failure_ids),
                    "channel": event.channel,
                    "failure_count": n,
                    "first_failure_time": run[0].event_time_ms,
                    "failure_event_ids": failure_ids,
                    "callback_event_id": event.event_id,
                    "tier": enriched.tier,
                    "region": enriched.region,
                })
        steps.append(Step(event.event_time_ms, event.event_id, event.outcome))
        steps = steps[-n:]
    return alerts, steps


def _order(enriched: EnrichedInteraction) -> tuple[int, str]:
    return enriched.interaction.event_time_ms, enriched.interaction.event_id


class _DetectRepeatedFailureFn(beam.DoFn):
    """Keyed by customer id; input EnrichedInteraction (only FAILURE, SUCCESS, CALLBACK outcomes).

    Output: pattern_alerts rows. State: 'pending' (bag, events not yet final), 'history' (last N final
    steps), 'next_eval' (ms of the evaluate timer, only moves earlier). Timers: 'evaluate' (watermark),
    when the earliest pending event is final; 'expire' (watermark), `within` + lateness after the last
    step: no later callback can match it, so the history is cleared.
    """

    PENDING = BagStateSpec("pending", PickleCoder())
    HISTORY = ReadModifyWriteStateSpec("history", PickleCoder())
    NEXT_EVAL = ReadModifyWriteStateSpec("next_eval", VarIntCoder())
    EVALUATE = TimerSpec("evaluate", TimeDomain.WATERMARK)
    EXPIRE = TimerSpec("expire", TimeDomain.WATERMARK)

    def __init__(self, spec: PatternSpec, finality: Finality):
        self._spec = spec
        self._finality = finality
        self._alerts = Metrics.counter("patterns", "alerts")

    def process(self, element, pending=beam.DoFn.StateParam(PENDING),
                next_eval=beam.DoFn.StateParam(NEXT_EVAL), evaluate=beam.DoFn.TimerParam(EVALUATE)):
        _, enriched = element
        pending.add(enriched)
        due = self._finality.final_at(enriched.interaction.event_time_ms)
        scheduled = next_eval.read()
        if scheduled is None or due < scheduled:
            next_eval.write(due)
            evaluate.set(to_timestamp(due))

    @on_timer(EVALUATE)
    def on_evaluate(self, key=beam.DoFn.KeyParam, ts=beam.DoFn.TimestampParam,
                    pending=beam.DoFn.StateParam(PENDING), history=beam.DoFn.StateParam(HISTORY),
                    next_eval=beam.DoFn.StateParam(NEXT_EVAL),
                    evaluate=beam.DoFn.TimerParam(EVALUATE), expire=beam.DoFn.TimerParam(EXPIRE)):
        now_ms = to_ms(ts)
        waiting = list(pending.read())
        final_at = self._finality.final_at
        ready = sorted((e for e in waiting if final_at(e.interaction.event_time_ms) <= now_ms), key=_order)
        rest = [e for e in waiting if final_at(e.interaction.event_time_ms) > now_ms]
        alerts, steps = detect(history.read() or [], ready, self._spec, key)
        detected_at = int(time.time() * 1000)
        for alert in alerts:
            self._alerts.inc()
            yield {**alert, "detected_at": detected_at}
        history.write(steps)
        pending.clear()
        for e in rest:
            pending.add(e)
        next_eval.clear()
        if rest:
            due = min(final_at(e.interaction.event_time_ms) for e in rest)
            next_eval.write(due)
            evaluate.set(to_timestamp(due))
        if steps:
            expire_at = final_at(steps[-1].event_time_ms + self._spec.within_ms)
            expire.set(to_timestamp(expire_at))

    @on_timer(EXPIRE)
    def on_expire(self, history=beam.DoFn.StateParam(HISTORY)):
        history.clear()


class _DetectPerCustomerBatchFn(beam.DoFn):
    """Batch: (customer_id, all enriched interactions) -> alert rows, by the same `detect`."""

    def __init__(self, spec: PatternSpec):
        self._spec = spec
        self._alerts = Metrics.counter("patterns", "alerts")

    def process(self, element):
        customer_id, events = element
        alerts, _ = detect([], sorted(events, key=_order), self._spec, customer_id)
        detected_at = int(time.time() * 1000)
        for alert in alerts:
            self._alerts.inc()
            yield {**alert, "detected_at": detected_at}


class DetectPatterns(beam.PTransform):
    """PCollection[(customer_id, EnrichedInteraction)] -> PCollection[dict] of `pattern_alerts` rows.

    Streaming: the stateful `RepeatedFailureCallback` step with watermark timers. Batch: each customer's
    whole sequence in one group, through the same `detect`.
    """

    def __init__(self, spec: PatternSpec = PatternSpec(), *, streaming: bool,
                 allowed_lateness_s: int = 30):
        super().__init__()
        self._spec = spec
        self._finality = Finality(streaming, allowed_lateness_s * 1000)

    def expand(self, enriched):
        kv = beam.typehints.KV[str, Any]
        if self._finality.streaming:
            return enriched | "RepeatedFailureCallback" >> beam.ParDo(
                _DetectRepeatedFailureFn(self._spec, self._finality)).with_input_types(kv)
        return (enriched
                | "GroupByCustomer" >> beam.GroupByKey().with_input_types(kv)
                | "DetectPerCustomer" >> beam.ParDo(_DetectPerCustomerBatchFn(self._spec)))
