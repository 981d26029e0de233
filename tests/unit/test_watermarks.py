"""PartitionClock and TopicWatermarks: per-partition watermark, lateness and idleness (pure values, no Beam).

Clock used throughout: out-of-orderness 5 s, lateness 30 s, idle timeout 10 s (wall time).
watermark = max event time - 5 000; late iff event < watermark - 30 000.
"""

from __future__ import annotations

import pytest

from beam_cxone.watermarks import PartitionClock
from beam_cxone.watermarks import TopicWatermarks

OOO, LATE, IDLE = 5_000, 30_000, 10_000


def clock(**kw) -> PartitionClock:
    return PartitionClock(out_of_orderness_ms=OOO, lateness_ms=LATE, idle_timeout_ms=IDLE, **kw)


def test_fresh_clock_has_no_watermark():
    # Nothing read yet: the watermark is unknown (None = the minimum timestamp).
    assert clock().watermark_ms() is None


def test_first_record_is_never_late():
    # With no watermark yet, even a very old record is on time, and sets the max.
    c = clock()
    assert c.observe(-1_000_000) is False
    assert c.max_event_ms == -1_000_000
    assert c.watermark_ms() == -1_005_000


@pytest.mark.parametrize(
    ("events", "watermark"),
    [
        pytest.param([100_000], 95_000, id="one"),  # 100 000 - 5 000
        pytest.param([100_000, 120_000], 115_000, id="advances"),  # max 120 000
        pytest.param([120_000, 110_000], 115_000, id="out-of-order-keeps-max"),  # max stays 120 000
        pytest.param([120_000, 90_000, 119_999], 115_000, id="never-back"),  # max stays 120 000
    ],
)
def test_watermark_is_max_minus_out_of_orderness(events, watermark):
    c = clock()
    for e in events:
        assert c.observe(e) is False
    assert c.watermark_ms() == watermark


@pytest.mark.parametrize(
    ("event", "late"),
    [
        # After 120 000: watermark 115 000, late iff event < 115 000 - 30 000 = 85 000.
        pytest.param(85_000, False, id="exactly-at-bound-not-late"),  # equal is not late
        pytest.param(84_999, True, id="one-ms-behind-late"),  # strictly behind: late
        pytest.param(85_001, False, id="inside-lateness"),  # within the allowed lateness
        pytest.param(0, True, id="far-behind"),  # far behind
        pytest.param(130_000, False, id="ahead"),  # new max
    ],
)
def test_late_iff_behind_watermark_by_more_than_lateness(event, late):
    c = clock()
    c.observe(120_000)
    assert c.observe(event) is late


def test_late_record_does_not_move_max_but_counts_as_activity():
    # A late record is ignored for the watermark, but it is activity (the partition is not idle).
    c = clock()
    c.observe(120_000)
    c.on_poll_empty(wall_ms=0, caught_up=True)
    assert c.observe(1_000) is True
    assert c.max_event_ms == 120_000
    assert c.watermark_ms() == 115_000
    assert c.caught_up_since_wall_ms is None


def test_lateness_measured_against_watermark_before_the_record():
    # The record that moves the max is judged against the old watermark, then raises it.
    c = clock()
    c.observe(100_000)  # watermark 95 000, late bound 65 000
    assert c.observe(200_000) is False  # watermark 195 000, late bound 165 000
    assert c.observe(165_000) is False  # equal to the bound
    assert c.observe(164_999) is True


def test_zero_lateness_and_zero_out_of_orderness():
    # lateness 0: anything before the watermark is late; the watermark itself is not.
    c = PartitionClock(out_of_orderness_ms=0, lateness_ms=0, idle_timeout_ms=IDLE)
    c.observe(1_000)
    assert c.observe(1_000) is False
    assert c.observe(999) is True


# ---------------------------------------------------------------------------------------------
# Idleness
# ---------------------------------------------------------------------------------------------


def test_an_empty_poll_while_records_wait_is_never_idle():
    c = clock()
    c.observe(100_000)
    c.on_poll_empty(wall_ms=0, caught_up=False)
    assert not c.is_idle(wall_ms=1_000_000)
    c.vouch(topic_low_ms=500_000, wall_ms=1_000_000)
    assert c.watermark_ms() == 95_000


def test_caught_up_for_the_idle_timeout_is_idle():
    c = clock()
    c.observe(100_000)
    c.on_poll_empty(wall_ms=1_000, caught_up=True)
    c.on_poll_empty(wall_ms=5_000, caught_up=True)  # the idle time counts from the first
    assert not c.is_idle(wall_ms=10_999)
    assert c.is_idle(wall_ms=11_000)
    c.observe(100_001)  # a record: reading again
    assert not c.is_idle(wall_ms=99_000)


@pytest.mark.parametrize(
    "topic_low, watermark",
    [(None, 95_000), (50_000, 95_000), (200_000, 200_000)],
    ids=["nobody_reads", "others_behind", "others_ahead"],
)
def test_an_idle_partition_vouches_for_the_partitions_still_reading(topic_low, watermark):
    c = clock()
    c.observe(100_000)
    c.on_poll_empty(wall_ms=0, caught_up=True)
    c.vouch(topic_low_ms=topic_low, wall_ms=10_000)
    assert c.watermark_ms() == watermark


def test_the_wall_clock_never_moves_a_paused_partition_by_default():
    """A pause of any length: every partition caught up, nothing moves, no record becomes late."""
    c = clock()
    c.observe(100_000)
    c.on_poll_empty(wall_ms=0, caught_up=True)
    for wall in (10_000, 60_000, 3_600_000):
        c.vouch(topic_low_ms=None, wall_ms=wall)
    assert c.watermark_ms() == 95_000
    assert c.observe(65_000) is False  # what the feed sends after the pause is judged as before


def test_wall_clock_idleness_is_an_explicit_option():
    c = clock(wall_clock_idle=True)
    c.observe(100_000)
    c.on_poll_empty(wall_ms=0, caught_up=True)
    c.vouch(topic_low_ms=None, wall_ms=40_000)
    assert c.watermark_ms() == 135_000
    assert c.observe(104_999) is True  # the risk the option documents


def test_watermark_never_moves_back():
    c = clock()
    c.observe(100_000)
    c.on_poll_empty(wall_ms=0, caught_up=True)
    c.vouch(topic_low_ms=200_000, wall_ms=10_000)
    c.vouch(topic_low_ms=150_000, wall_ms=11_000)
    assert c.watermark_ms() == 200_000
    # New data below the floor: the watermark stays, lateness is judged against the floor.
    assert c.observe(170_000) is False  # 200 000 - 30 000 = 170 000: not late
    assert c.observe(169_999) is True
    c.observe(300_000)
    assert c.watermark_ms() == 295_000


# ---------------------------------------------------------------------------------------------
# Checkpoint state
# ---------------------------------------------------------------------------------------------


def test_state_round_trip():
    c = clock()
    c.observe(100_000)
    c.on_poll_empty(wall_ms=0, caught_up=True)
    c.vouch(topic_low_ms=200_000, wall_ms=10_000)
    assert c.state() == (100_000, 200_000, 0)
    restored = PartitionClock.from_state(c.state(), OOO, LATE, IDLE)
    assert restored == c
    assert restored.watermark_ms() == 200_000
    assert restored.observe(169_999) is True


@pytest.mark.parametrize("state", [None, ()], ids=["none", "empty"])
def test_from_empty_state_is_fresh(state):
    assert PartitionClock.from_state(state, OOO, LATE, IDLE) == clock()


# ---------------------------------------------------------------------------------------------
# TopicWatermarks: what each reader reports for the topic
# ---------------------------------------------------------------------------------------------


def topic(**published) -> TopicWatermarks:
    t = TopicWatermarks([0, 1, 2], grace_ms=30_000)
    for p, (wm, idle) in published.items():
        t.update(int(p[1:]), wm, wall_ms=0, idle=idle)
    return t


def test_every_partition_holds_the_others_while_it_reads():
    t = topic(p0=(100, False), p1=(200, False), p2=(300, False))
    assert [t.low(0, excluding=p) for p in (0, 1, 2)] == [200, 100, 100]


def test_an_idle_partition_holds_only_as_far_as_it_vouched():
    # p0 idle at 100 still counts in the minimum until its floor rises to what the others reached:
    # a partition that wakes up must never find the topic past records it is about to read.
    t = topic(p0=(100, True), p1=(200, False), p2=(300, False))
    assert t.low(0, excluding=1) == 100
    assert t.low_of_active(0, excluding=0) == 200  # what p0 may vouch for
    t.update(0, 200, wall_ms=1, idle=True)  # p0 vouched
    assert t.low(1, excluding=1) == 200
    assert t.low(1, excluding=2) == 200


def test_when_every_partition_is_idle_nothing_moves():
    t = topic(p0=(100, True), p1=(200, True), p2=(300, True))
    assert [t.low(0, excluding=p) for p in (0, 1, 2)] == [200, 100, 100]
    assert t.low_of_active(0, excluding=0) is None


def test_a_reading_partition_with_only_idle_others_waits_for_their_vouching():
    t = topic(p0=(100, True), p1=(200, True), p2=(300, False))
    assert t.low(0, excluding=2) == 100
    assert t.low_of_active(0, excluding=0) == 300


def test_a_partition_not_seen_holds_the_minimum_within_the_grace():
    t = topic(p0=(100, False), p1=(200, False))
    assert t.low(1_000, excluding=0) is None
    assert t.low(30_000, excluding=0) == 200  # after the grace it is left out
