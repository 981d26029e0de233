"""A token bucket that caps a rate by waiting, never by dropping (the tutorial's limiter dropped records)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """`acquire(n)` blocks until n tokens are available; returns the seconds it waited.

    rate <= 0 means no cap. `burst` bounds how many tokens an idle reader may save up (default: one
    second's worth), so a pause is not followed by an unbounded spike.
    """

    def __init__(self, rate_per_s: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = float(rate_per_s)
        self.burst = float(burst if burst is not None else max(1.0, self.rate))
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def acquire(self, n: float = 1.0) -> float:
        if self.rate <= 0:
            return 0.0
        self._refill()
        self._tokens -= n
        if self._tokens >= 0:
            return 0.0
        # In debt: wait until the debt is paid back at the capped rate (works for n > burst too).
        wait = -self._tokens / self.rate
        self._sleep(wait)
        return wait
