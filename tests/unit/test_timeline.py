"""The customer timeline's state value, its coder, and the per-partition FirstSeen filter (pure, no Beam run).

Rules: lateness L = 30 s, pattern 3 failures then a callback within 30 s, profile TTL 1 h.
An interaction at t is final once the watermark reaches t + L + 1 ms.
"""

from __future__ import annotations

import pytest

from beam_cxone.first_seen import FirstSeen
from beam_cxone.transforms.patterns import PatternSpec
from beam_cxone.transforms.timeline import EventTimePace
from beam_cxone.transforms.timeline import Timeline
from beam_cxone.transforms.timeline import TimelineCoder
from beam_cxone.transforms.timeline import TimelineRules
from beam_cxone.transforms.timing import Finality

L = 30_000
RULES = TimelineRules(PatternSpec(3, 30_000), Finality(True, L), profile_ttl_ms=3_600_000)


def upd(t, eid, tier="gold", region="emea"):
    return ("u", t, eid, tier, region)


def act(t, eid, outcome, channel="voice"):
    return ("i", t, eid, channel, outcome)


def feed(timeline, *entries):
    return [RULES.add(timeline, "k1", e) for e in entries]


def test_profile_rows_only_for_a_new_greatest_update():
    tl = Timeline()
    results = feed(tl, upd(10, "b"), upd(5, "a"), upd(10, "c"), upd(10, "c"))
    rows = [row for row, _ in results]
    assert rows[0] == {"customer_id": "k1", "tier": "gold", "region": "emea", "updated_at": 10}
    assert rows[1] is None  # older than the greatest
    assert rows[2]["updated_at"] == 10  # (10, "c") > (10, "b")
    assert [dup for _, dup in results] == [False, False, False, True]
    assert [h[:2] for h in tl.history] == [(5, "a"), (10, "b"), (10, "c")]


def test_a_copy_of_a_pending_interaction_is_a_duplicate():
    tl = Timeline()
    assert [dup for _, dup in feed(tl, act(1, "f1", "FAILURE"), act(1, "f1", "FAILURE"))] == [False, True]
    assert len(tl.pending) == 1


def test_evaluation_in_event_order_whatever_the_arrival_order():
    tl = Timeline()
    feed(tl, act(20_000, "c", "CALLBACK", "sms"), act(3_000, "f3", "FAILURE"), upd(0, "u1", "silver"),
         act(1_000, "f1", "FAILURE"), act(2_000, "f2", "FAILURE"), upd(15_000, "u2", "platinum"))
    alerts, joined = RULES.evaluate(tl, "k1", 20_000 + L + 1)
    assert joined == 4
    assert [(a["alert_time"], a["first_failure_time"], a["failure_event_ids"], a["channel"], a["tier"])
            for a in alerts] == [(20_000, 1_000, ["f1", "f2", "f3"], "sms", "platinum")]
    assert tl.pending == []


def test_nothing_is_evaluated_before_it_is_final():
    tl = Timeline()
    feed(tl, act(1_000, "f1", "FAILURE"))
    assert RULES.next_wake(tl, 0) == 1_000 + L + 1
    assert RULES.evaluate(tl, "k1", 1_000 + L) == ([], 0)
    assert len(tl.pending) == 1


@pytest.mark.parametrize("callback_at, matches", [(30_999, True), (31_000, False)], ids=["29.999s", "30s"])
def test_within_is_strict(callback_at, matches):
    tl = Timeline()
    feed(tl, act(1_000, "f1", "FAILURE"), act(2_000, "f2", "FAILURE"), act(3_000, "f3", "FAILURE"),
         act(callback_at, "c", "CALLBACK"))
    alerts, _ = RULES.evaluate(tl, "k1", callback_at + L + 1)
    assert bool(alerts) is matches


def test_state_is_bounded_and_cleared_after_the_idle_ttl():
    tl = Timeline()
    feed(tl, upd(0, "u1"), act(1_000, "f1", "FAILURE"))
    RULES.evaluate(tl, "k1", 1_000 + L + 1)
    assert tl.steps == [(1_000, "f1", "FAILURE")]
    # the steps expire once no callback can match them any more
    expiry = 1_000 + 30_000 + L + 1
    assert RULES.next_wake(tl, 1_000 + L + 1) == expiry
    RULES.evaluate(tl, "k1", expiry)
    assert tl.steps == []
    assert RULES.next_wake(tl, expiry) == tl.gc_at == 1_000 + 3_600_000
    RULES.evaluate(tl, "k1", tl.gc_at)
    assert tl.is_empty()


def test_the_coder_round_trips_and_refuses_another_version():
    tl = Timeline()
    feed(tl, upd(0, "u1", "gold", "emea"), act(5, "f1", "FAILURE", "chat"))
    tl.wake_at = 30_006
    coder = TimelineCoder()
    assert coder.decode(coder.encode(tl)) == tl
    assert coder.decode(coder.encode(Timeline())) == Timeline()
    other = coder._primitives.encode((2, (), (), (), -1, -1))
    with pytest.raises(ValueError, match="version 2"):
        coder.decode(other)


def test_first_seen_keeps_the_first_copy_per_source_order():
    seen = FirstSeen(ttl_ms=600_000)
    flags = [seen.is_duplicate(eid, t, off) for off, (eid, t) in
             enumerate([("a", 1_000), ("b", 2_000), ("a", 1_000), ("a", 9_000)])]
    assert flags == [False, False, True, True]  # same id, other content: still a copy
    assert seen.next_offset == 4
    assert seen.oldest_offset() == 0


def test_first_seen_forgets_ids_past_the_ttl_of_event_time():
    seen = FirstSeen(ttl_ms=10_000)
    seen.is_duplicate("a", 0, 0)
    seen.is_duplicate("b", 5_000, 1)
    seen.is_duplicate("c", 10_001, 2)  # forgets what is before 1 ms
    assert len(seen) == 2
    assert seen.oldest_offset() == 1
    assert seen.is_duplicate("a", 0, 3) is False  # forgotten (the read makes such a copy late)


def test_wake_ups_on_a_grid_evaluate_everything_final_by_then():
    rules = TimelineRules(PatternSpec(3, 30_000), Finality(True, L), profile_ttl_ms=3_600_000,
                          wake_step_ms=5_000)
    tl = Timeline()
    for entry in (act(1_000, "f1", "FAILURE"), act(2_000, "f2", "FAILURE"), act(3_000, "f3", "FAILURE"),
                  act(4_000, "c", "CALLBACK")):
        rules.add(tl, "k1", entry)
    assert rules.due(act(1_000, "f1", "FAILURE"), tl) == 35_000  # 31 001 rounded up
    alerts, joined = rules.evaluate(tl, "k1", 35_000)
    assert joined == 4 and [a["callback_event_id"] for a in alerts] == ["c"]
    assert rules.next_wake(tl, 35_000) == 65_000  # the steps' expiry, 64 001, rounded up


def test_the_idle_deadline_is_exact_on_the_grid():
    rules = TimelineRules(PatternSpec(3, 30_000), Finality(True, L), profile_ttl_ms=3_600_000,
                          wake_step_ms=10_000)
    tl = Timeline()
    rules.add(tl, "k1", upd(1_234, "u1"))
    assert rules.due(upd(1_234, "u1"), tl) == tl.gc_at == 3_601_234
    assert rules.next_wake(tl, 0) == 3_601_234


def test_the_wake_grid_widens_only_while_timers_race_through_event_time():
    pace = EventTimePace(live_step_ms=10_000, catch_up_step_ms=60_000)
    assert pace.observe(1_000_000, wall_s=0.0) == 10_000
    assert pace.observe(1_001_000, wall_s=1.0) == 10_000  # 1 s of event time per second: live
    assert pace.observe(1_100_000, wall_s=2.0) == 60_000  # 99 s per second: a backlog
    assert pace.observe(1_050_000, wall_s=2.5) == 60_000  # an older key's timer: no new measure yet
    assert pace.observe(1_101_000, wall_s=3.5) == 10_000  # back to live
