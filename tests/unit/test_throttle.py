"""TokenBucket with an injected fake clock and sleep (tier 1: no real waiting).

Rates are powers of two where sums are compared, so every wait is exact in binary floating point.
"""

from __future__ import annotations

import pytest

from beam_cxone.throttle import TokenBucket


class FakeTime:
    """A clock that only moves when the bucket sleeps (or the test advances it)."""

    def __init__(self, now: float = 1000.0):
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def bucket(rate: float, burst: float | None = None) -> tuple[TokenBucket, FakeTime]:
    t = FakeTime()
    return TokenBucket(rate, burst, clock=t.clock, sleep=t.sleep), t


@pytest.mark.parametrize("rate", [0, -5], ids=["zero", "negative"])
def test_no_cap_never_waits(rate):
    # rate <= 0 means no cap: never sleeps, whatever n.
    b, t = bucket(rate)
    assert [b.acquire() for _ in range(1000)] == [0.0] * 1000
    assert b.acquire(1e9) == 0.0
    assert t.sleeps == []


@pytest.mark.parametrize(
    ("rate", "burst", "free"),
    [
        pytest.param(8, None, 8, id="default-burst-one-second"),  # default burst = rate
        pytest.param(0.5, None, 1, id="default-burst-at-least-one"),  # max(1, 0.5) = 1
        pytest.param(4, 2, 2, id="explicit-burst"),  # 2 tokens saved up
    ],
)
def test_burst_is_free_then_waits(rate, burst, free):
    b, t = bucket(rate, burst)
    assert [b.acquire() for _ in range(free)] == [0.0] * free
    assert t.sleeps == []
    assert b.acquire() == 1 / rate  # the first token beyond the burst waits 1/rate


def test_long_run_rate_is_exact():
    # rate 4/s, burst 1: the first is free, the other 999 wait 0.25 s each: 249.75 s in all.
    b, t = bucket(4, 1)
    start = t.now
    waits = [b.acquire() for _ in range(1000)]
    assert waits[0] == 0.0
    assert waits[1:] == [0.25] * 999
    assert t.now - start == 249.75
    assert sum(t.sleeps) == 249.75


def test_n_larger_than_burst_works():
    # burst 2, rate 4: acquire(6) goes 4 tokens into debt and waits 4 / 4 = 1 s.
    b, t = bucket(4, 2)
    assert b.acquire(6) == 1.0
    # At t+1 s the debt is paid (4 tokens refilled): the next token waits 0.25 s.
    assert b.acquire() == 0.25
    assert t.sleeps == [1.0, 0.25]


def test_fractional_tokens():
    # burst 1, rate 2: two halves are free, the third half waits 0.25 s.
    b, _ = bucket(2, 1)
    assert [b.acquire(0.5), b.acquire(0.5), b.acquire(0.5)] == [0.0, 0.0, 0.25]


def test_idle_saves_at_most_burst():
    # After 100 s idle, only `burst` tokens are available, not 400.
    b, t = bucket(4, 2)
    t.now += 100.0
    assert [b.acquire() for _ in range(3)] == [0.0, 0.0, 0.25]


def test_partial_refill_shortens_the_wait():
    # rate 4, burst 1: after using the token, 0.125 s later half a token is back: wait 0.125 s.
    b, t = bucket(4, 1)
    assert b.acquire() == 0.0
    t.now += 0.125
    assert b.acquire() == 0.125


def test_waits_are_recorded_and_never_negative():
    # A mixed run with idle gaps: sleep is called only with positive waits, and each returned wait
    # is what was slept.
    b, t = bucket(8, 2)
    returned = []
    for i in range(200):
        if i % 17 == 0:
            t.now += 0.5  # an idle gap
        returned.append(b.acquire(1 + (i % 3)))
    assert all(w >= 0 for w in returned)
    assert all(s > 0 for s in t.sleeps)
    assert [w for w in returned if w > 0] == t.sleeps
