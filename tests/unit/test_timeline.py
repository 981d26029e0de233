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
    assert RULES.wake_for(act(1_000, "f1", "FAILURE")) == 1_000 + L + 1
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
    assert RULES.schedule(tl, [1_000 + L + 1]) == [(str(1_000 + L + 1), 1_000 + L + 1), ("gc", 3_601_000)]
    RULES.evaluate(tl, "k1", 1_000 + L + 1)
    assert tl.steps == [(1_000, "f1", "FAILURE")]
    # the steps expire once no callback can match them any more
    expiry = 1_000 + 30_000 + L + 1
    assert RULES.after_wake(tl, 1_000 + L + 1) == [(str(expiry), expiry)]
    RULES.evaluate(tl, "k1", expiry)
    assert tl.steps == []
    assert RULES.after_wake(tl, expiry) == []  # the idle deadline's timer is set already
    assert tl.gc_timer_at == tl.gc_at == 1_000 + 3_600_000
    RULES.evaluate(tl, "k1", tl.gc_at)
    assert RULES.after_wake(tl, 3_601_000) == []
    assert tl.is_empty()


def test_one_timer_per_grid_time_so_a_jumped_watermark_fires_them_together():
    rules = TimelineRules(PatternSpec(3, 30_000), Finality(True, L), profile_ttl_ms=3_600_000,
                          wake_step_ms=10_000)
    tl = Timeline()
    entries = [act(1_000, "f1", "FAILURE"), act(2_000, "f2", "FAILURE"), act(25_000, "f3", "FAILURE")]
    for entry in entries:
        rules.add(tl, "k1", entry)
    timers = rules.schedule(tl, [rules.wake_for(e) for e in entries])
    assert timers == [("40000", 40_000), ("60000", 60_000), ("gc", 3_625_000)]
    assert rules.schedule(tl, [40_000]) == []  # set already
    # both fired in one bundle, the later one first: it evaluates all three
    rules.evaluate(tl, "k1", 60_000)
    assert rules.after_wake(tl, 60_000) == [("90000", 90_000)]  # the steps' expiry, 85 001, rounded up
    assert rules.evaluate(tl, "k1", 40_000) == ([], 0)
    assert rules.after_wake(tl, 40_000) == []
    assert tl.wakes == [90_000]


def test_an_idle_timer_that_fired_early_is_set_again_at_the_moved_deadline():
    tl = Timeline()
    feed(tl, upd(0, "u1"))
    assert RULES.schedule(tl, []) == [("gc", 3_600_000)]
    feed(tl, upd(60_000, "u2"))  # moves the deadline; the timer stays where it is
    assert RULES.schedule(tl, []) == []
    RULES.evaluate(tl, "k1", 3_600_000)
    assert tl.history and RULES.after_wake(tl, 3_600_000) == [("gc", 3_660_000)]
    RULES.evaluate(tl, "k1", 3_660_000)
    assert RULES.after_wake(tl, 3_660_000) == [] and tl.is_empty()


def test_a_past_idle_deadline_waits_for_the_pending_interactions():
    rules = TimelineRules(PatternSpec(3, 30_000), Finality(True, L), profile_ttl_ms=10_000)
    tl = Timeline()
    for entry in (upd(0, "u1"), act(5_000, "s1", "SUCCESS")):
        rules.add(tl, "k1", entry)
    assert rules.schedule(tl, [rules.wake_for(act(5_000, "s1", "SUCCESS"))]) == [
        ("35001", 35_001), ("gc", 15_000)]
    rules.evaluate(tl, "k1", 15_000)
    assert tl.history and rules.after_wake(tl, 15_000) == []  # no timer behind the watermark
    rules.evaluate(tl, "k1", 35_001)
    assert rules.after_wake(tl, 35_001) == [] and tl.is_empty()


def test_the_coder_round_trips_and_refuses_another_version():
    tl = Timeline()
    feed(tl, upd(0, "u1", "gold", "emea"), act(5, "f1", "FAILURE", "chat"))
    tl.wakes, tl.gc_timer_at = [30_006, 40_000], 3_600_000
    coder = TimelineCoder()
    assert coder.decode(coder.encode(tl)) == tl
    assert coder.decode(coder.encode(Timeline())) == Timeline()
    other = coder._primitives.encode((3, (), (), (), (), -1, -1))
    with pytest.raises(ValueError, match="version 3"):
        coder.decode(other)


def test_a_version_1_cell_still_decodes_and_its_pending_interactions_get_wake_ups():
    coder = TimelineCoder()
    v1 = coder._primitives.encode((1, ((0, "u1", "gold", "emea"),), ((5, "f1", "chat", "FAILURE"),
                                                                      (40_000, "f2", "chat", "FAILURE")),
                                   (), 30_006, 3_640_000))
    tl = coder.decode(v1)
    assert (tl.wakes, tl.gc_at, tl.gc_timer_at) == ([30_006], 3_640_000, None)
    RULES.evaluate(tl, "k1", 30_006)
    # f2's wake-up also covers the steps' expiry (60 006)
    assert RULES.after_wake(tl, 30_006) == [("70001", 70_001), ("gc", 3_640_000)]


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
    assert rules.wake_for(act(1_000, "f1", "FAILURE")) == 35_000  # 31 001 rounded up
    rules.schedule(tl, [35_000])
    alerts, joined = rules.evaluate(tl, "k1", 35_000)
    assert joined == 4 and [a["callback_event_id"] for a in alerts] == ["c"]
    assert rules.after_wake(tl, 35_000) == [("65000", 65_000)]  # the steps' expiry, 64 001, rounded up


def test_the_idle_deadline_is_exact_on_the_grid():
    rules = TimelineRules(PatternSpec(3, 30_000), Finality(True, L), profile_ttl_ms=3_600_000,
                          wake_step_ms=10_000)
    tl = Timeline()
    rules.add(tl, "k1", upd(1_234, "u1"))
    assert rules.wake_for(upd(1_234, "u1")) is None
    assert rules.schedule(tl, []) == [("gc", 3_601_234)]


def test_the_wake_grid_widens_only_while_timers_race_through_event_time():
    pace = EventTimePace(live_step_ms=10_000, catch_up_step_ms=60_000)
    assert pace.observe(1_000_000, wall_s=0.0) == 10_000
    assert pace.observe(1_001_000, wall_s=1.0) == 10_000  # 1 s of event time per second: live
    assert pace.observe(1_100_000, wall_s=2.0) == 60_000  # 99 s per second: a backlog
    assert pace.observe(1_050_000, wall_s=2.5) == 60_000  # an older key's timer: no new measure yet
    assert pace.observe(1_101_000, wall_s=3.5) == 10_000  # back to live


def test_a_batch_spanning_more_than_the_live_grid_is_a_backlog():
    pace = EventTimePace(live_step_ms=10_000, catch_up_step_ms=60_000)
    assert pace.step_for_batch(1_000_000, 1_001_500) == 10_000  # a live customer's batch
    assert pace.step_for_batch(1_000_000, 1_010_001) == 60_000  # more than the live grid at once
