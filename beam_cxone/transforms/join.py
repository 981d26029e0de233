"""The temporal join of interactions with customer profiles, as pure functions over one customer's records.

An interaction of customer C gets `tier` and `region` of C's update with the greatest `(eventTime, eventId)`
not after the interaction's event time, else UNKNOWN. `customer_profiles` gets each customer's update with
the greatest `(eventTime, eventId)`, not the last to arrive.

Timeline for one customer (lateness L = 30 s), streaming (see `customers.py` for the state and timers):
  t=10 update(gold)  t=20 interaction i1  t=15 update(silver) arrives after i1
  watermark passes 20 + L + 1 ms -> i1 is evaluated against {10: gold, 15: silver} -> silver.
"""

from __future__ import annotations

import bisect

from beam_cxone.records import UNKNOWN
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import EnrichedInteraction
from beam_cxone.records import Interaction
from beam_cxone.records import Outcome
from beam_cxone.records import event_order

__all__ = ["PATTERN_OUTCOMES", "join_customer", "profile_at", "profile_row", "prune_history"]

PATTERN_OUTCOMES = frozenset({Outcome.FAILURE.value, Outcome.SUCCESS.value, Outcome.CALLBACK.value})


def profile_at(history: list[CustomerUpdate], event_ms: int) -> tuple[str, str]:
    """(tier, region) of the greatest update not after `event_ms`; `history` sorted by event_order."""
    return _profile_at(history, [u.event_time_ms for u in history], event_ms)


def _profile_at(history: list[CustomerUpdate], times: list[int], event_ms: int) -> tuple[str, str]:
    """`profile_at` with the history's event times given (`times[i]` of `history[i]`)."""
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


def join_customer(customer_id: str, records: list) -> tuple[list[EnrichedInteraction], dict | None]:
    """Batch: every interaction of one customer joined at once, and the customer's profile row."""
    history = sorted((r for r in records if isinstance(r, CustomerUpdate)), key=event_order)
    interactions = sorted((r for r in records if isinstance(r, Interaction)), key=event_order)
    times = [u.event_time_ms for u in history]  # once per customer, not once per interaction
    enriched = [EnrichedInteraction(i, *_profile_at(history, times, i.event_time_ms))
                for i in interactions]
    return enriched, (profile_row(history[-1]) if history else None)


