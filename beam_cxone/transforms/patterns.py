"""The REPEATED_FAILURE_CALLBACK pattern with Flink CEP semantics, as a pure function over final events.

Flink CEP: `begin("failure").times(3).consecutive().next("callback").within(30 s)`. Per customer, the
interactions with outcome FAILURE, SUCCESS or CALLBACK in `(eventTime, eventId)` order; a CALLBACK c
matches when the `failure_count` outcomes right before it are all FAILURE, f1 (earliest) ... fN, and
`c.eventTime - f1.eventTime < within` (strictly). Four failures then a callback: one match (f2..f4).

Timeline (N = 3, within = 30 s, lateness L = 30 s), streaming, arrival order F@2 C@40 F@1 F@3:
  watermark passes 1+L+1ms: F@1 final; ... 40+L+1ms: C@40 final -> 40 - 1 >= 30 -> no match.
  The same events in any arrival order give the same answer: only final events are evaluated
  (`customers.py` buffers them in state until then).
"""

from __future__ import annotations

import dataclasses
import hashlib

from beam_cxone import defaults
from beam_cxone.records import EnrichedInteraction
from beam_cxone.records import Outcome

__all__ = ["ALERT_TYPE", "PatternSpec", "Step", "alert_id", "detect"]

ALERT_TYPE = "REPEATED_FAILURE_CALLBACK"


@dataclasses.dataclass(frozen=True)
class PatternSpec:
    """N consecutive failures, then a callback, within `within_ms` of the first failure (exclusive)."""

    failure_count: int = defaults.FAILURE_COUNT
    within_ms: int = round(defaults.PATTERN_WITHIN_S * 1000)
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
