"""PartitionClock: per-partition watermark, lateness and idleness (tier 1, pure value, no Beam).

Clock used throughout: out-of-orderness 5 s, lateness 30 s, idle timeout 10 s (wall time).
watermark = max event time - 5 000; late iff event < watermark - 30 000.
"""

from __future__ import annotations

import pytest

from beam_cxone.watermarks import PartitionClock

OOO, LATE, IDLE = 5_000, 30_000, 10_000


def clock(**kw) -> PartitionClock:
    return PartitionClock(out_of_orderness_ms=OOO, lateness_ms=LATE, idle_timeout_ms=IDLE, **kw)


def test_fresh_clock_has_no_watermark():
    # Nothing read yet: the watermark is unknown (None = the minimum timestamp).
    assert clock().watermark_ms() is None


def test_first_record_is_never_late():
    # With no watermark yet, even a very old record is on time, and sets the max.
    c = clock()
    assert c.observe(-1_000_000, wall_ms=0) is False
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
    for i, e in enumerate(events):
        assert c.observe(e, wall_ms=i) is False
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
    c.observe(120_000, wall_ms=0)
    assert c.observe(event, wall_ms=1) is late


def test_late_record_does_not_move_max_but_counts_as_activity():
    # A late record is ignored for the watermark, but it is activity (the partition is not idle).
    c = clock()
    c.observe(120_000, wall_ms=0)
    assert c.observe(1_000, wall_ms=777) is True
    assert c.max_event_ms == 120_000
    assert c.watermark_ms() == 115_000
    assert c.last_activity_wall_ms == 777


def test_lateness_measured_against_watermark_before_the_record():
    # The record that moves the max is judged against the old watermark, then raises it.
    c = clock()
    c.observe(100_000, wall_ms=0)  # watermark 95 000, late bound 65 000
    assert c.observe(200_000, wall_ms=1) is False  # watermark 195 000, late bound 165 000
    assert c.observe(165_000, wall_ms=2) is False  # equal to the bound
    assert c.observe(164_999, wall_ms=3) is True


def test_zero_lateness_and_zero_out_of_orderness():
    # lateness 0: anything before the watermark is late; the watermark itself is not.
    c = PartitionClock(out_of_orderness_ms=0, lateness_ms=0, idle_timeout_ms=IDLE)
    c.observe(1_000, wall_ms=0)
    assert c.observe(1_000, wall_ms=1) is False
    assert c.observe(999, wall_ms=2) is True


# ---------------------------------------------------------------------------------------------
# Idleness
# ---------------------------------------------------------------------------------------------


def test_on_idle_without_any_activity_only_starts_the_idle_timer():
    # No activity recorded yet: the first empty poll marks the start, nothing advances.
    c = clock()
    c.on_idle(wall_ms=50_000, topic_high_ms=999_000)
    assert c.floor_ms is None
    assert c.last_activity_wall_ms == 50_000
    assert c.watermark_ms() is None


@pytest.mark.parametrize(
    ("idle_wall", "caught_up", "floor"),
    [
        # Activity at wall 0 with max 100 000 (watermark 95 000); topic high watermark None.
        pytest.param(9_999, True, None, id="before-timeout"),  # idle 9 999 < 10 000
        pytest.param(10_000, True, 105_000, id="at-timeout"),  # idle 10 000: 95 000 + 10 000
        pytest.param(25_000, True, 120_000, id="grows-with-idle-time"),  # 95 000 + 25 000
        pytest.param(10_000, False, None, id="not-caught-up"),  # backlog: never idle
        pytest.param(1_000_000, False, None, id="not-caught-up-long"),  # backlog: never idle
    ],
)
def test_idle_floor_from_own_watermark(idle_wall, caught_up, floor):
    c = clock()
    c.observe(100_000, wall_ms=0)
    c.on_idle(wall_ms=idle_wall, topic_high_ms=None, caught_up=caught_up)
    assert c.floor_ms == floor
    assert c.watermark_ms() == (95_000 if floor is None else floor)


def test_not_caught_up_restarts_the_idle_timer():
    # An empty poll with a backlog resets the idle start: idleness counts from the last such poll.
    c = clock()
    c.observe(100_000, wall_ms=0)
    c.on_idle(wall_ms=8_000, topic_high_ms=None, caught_up=False)
    assert c.last_activity_wall_ms == 8_000
    c.on_idle(wall_ms=17_999, topic_high_ms=None)  # idle 9 999
    assert c.floor_ms is None
    c.on_idle(wall_ms=18_000, topic_high_ms=None)  # idle 10 000: 95 000 + 10 000
    assert c.floor_ms == 105_000


def test_activity_restarts_the_idle_timer():
    c = clock()
    c.observe(100_000, wall_ms=0)
    c.observe(100_500, wall_ms=5_000)  # watermark 95 500, activity at 5 000
    c.on_idle(wall_ms=14_999, topic_high_ms=None)  # idle 9 999
    assert c.floor_ms is None
    c.on_idle(wall_ms=15_000, topic_high_ms=None)  # idle 10 000: 95 500 + 10 000
    assert c.floor_ms == 105_500


@pytest.mark.parametrize(
    ("topic_high", "floor"),
    [
        pytest.param(200_000, 200_000, id="topic-high-wins"),  # 200 000 > 95 000 + 10 000
        pytest.param(100_000, 105_000, id="own-wins"),  # 105 000 > 100 000
        pytest.param(None, 105_000, id="no-topic-high"),  # own only
    ],
)
def test_idle_floor_is_max_of_topic_high_and_own(topic_high, floor):
    c = clock()
    c.observe(100_000, wall_ms=0)
    c.on_idle(wall_ms=10_000, topic_high_ms=topic_high)
    assert c.floor_ms == floor
    assert c.watermark_ms() == floor


def test_idle_partition_without_data_follows_topic_high():
    # No record ever read: only the other partitions' watermark can move it.
    c = clock()
    c.on_idle(wall_ms=0, topic_high_ms=None)  # starts the idle timer
    c.on_idle(wall_ms=10_000, topic_high_ms=None)  # idle but nothing to go by
    assert c.watermark_ms() is None
    c.on_idle(wall_ms=10_001, topic_high_ms=50_000)
    assert c.watermark_ms() == 50_000


def test_watermark_never_moves_back():
    # The floor only rises; a lower topic high watermark or a lower own estimate leaves it.
    c = clock()
    c.observe(100_000, wall_ms=0)
    c.on_idle(wall_ms=10_000, topic_high_ms=200_000)
    assert c.watermark_ms() == 200_000
    c.on_idle(wall_ms=11_000, topic_high_ms=150_000)  # max(150 000, 95 000 + 11 000) < 200 000
    assert c.watermark_ms() == 200_000
    # New data below the floor: the watermark stays, lateness is judged against the floor.
    assert c.observe(170_000, wall_ms=12_000) is False  # 200 000 - 30 000 = 170 000: not late
    assert c.watermark_ms() == 200_000
    assert c.observe(169_999, wall_ms=12_001) is True
    assert c.watermark_ms() == 200_000
    # Data above the floor moves it on again.
    c.observe(300_000, wall_ms=12_002)
    assert c.watermark_ms() == 295_000


# ---------------------------------------------------------------------------------------------
# Checkpoint state
# ---------------------------------------------------------------------------------------------


def test_state_round_trip():
    c = clock()
    c.observe(100_000, wall_ms=0)
    c.on_idle(wall_ms=10_000, topic_high_ms=200_000)
    assert c.state() == (100_000, 200_000, 0)
    restored = PartitionClock.from_state(c.state(), OOO, LATE, IDLE)
    assert restored == c
    assert restored.watermark_ms() == 200_000
    # The restored clock judges lateness as the original did.
    assert restored.observe(169_999, wall_ms=20_000) is True


@pytest.mark.parametrize("state", [None, ()], ids=["none", "empty"])
def test_from_empty_state_is_fresh(state):
    # No checkpoint yet: a fresh clock with the given settings.
    assert PartitionClock.from_state(state, OOO, LATE, IDLE) == clock()
