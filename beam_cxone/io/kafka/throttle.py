"""The read-rate cap: the readers of a topic in one worker process share one token bucket
(`SharedThrottle`), at the share of the job's cap that their partitions are of all partitions; it
waits, never drops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from beam_cxone.io.kafka.config import KafkaReadConfig
from beam_cxone.throttle import TokenBucket


class SharedThrottle:
    """The rate cap of one topic's readers in this worker process: one token bucket they share.

    The cap is for the whole job; this process takes the share of it that its readers are of all
    the topic's partitions: rate = cap x active / (partitions - finished), where `active` counts
    the partitions whose reader ran here within the last `window_s` (an idle, caught-up reader
    still runs every fraction of a second) and `finished` those whose bounded range ended here. On
    a one-process runner (Prism, the FnApiRunner) that is the whole cap whichever partitions have
    data and however the runner interleaves them; with workers in several processes (Flink) the
    shares add up to the cap. Measured (bench/bench_throttle.py): a bucket per partition at
    cap / partitions reached only 50 % (FnApiRunner) and 73 % (Prism) of the cap over 3 partitions,
    because the runners do not run every partition's reader all the time.

    Thread-safe: readers of several partitions run in parallel bundles. A reader reserves its
    token under the lock and waits outside it (the bucket runs into debt), so the waits of
    concurrent readers add up exactly as if one reader had taken all the tokens.
    """

    def __init__(
        self,
        cap_per_s: float,
        partitions: int,
        window_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._cap, self._partitions, self._window_s = cap_per_s, max(1, partitions), window_s
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._bucket = TokenBucket(cap_per_s / self._partitions, clock=clock, sleep=lambda s: None)
        self._seen: dict[int, float] = {}
        self._finished: set[int] = set()

    @property
    def rate(self) -> float:
        return self._bucket.rate

    def touch(self, partition: int) -> None:
        """A reader of `partition` runs in this process."""
        with self._lock:
            self._seen[partition] = self._clock()
            self._finished.discard(partition)
            self._set_rate()

    def done(self, partition: int) -> None:
        """The bounded range of `partition` ended: its share goes to the readers still running."""
        with self._lock:
            self._seen.pop(partition, None)
            self._finished.add(partition)
            self._set_rate()

    def acquire(self, partition: int) -> float:
        """Takes one token; waits (outside the lock) until it is due; returns the seconds waited."""
        with self._lock:
            wait = self._bucket.acquire()
        if wait > 0:
            self._sleep(wait)
        return wait

    def _set_rate(self) -> None:
        now = self._clock()
        for partition in [p for p, t in self._seen.items() if now - t > self._window_s]:
            del self._seen[partition]
        running = max(1, self._partitions - len(self._finished))
        rate = self._cap * min(running, max(1, len(self._seen))) / running
        if rate != self._bucket.rate:
            self._bucket.rate = rate
            self._bucket.burst = max(1.0, rate)


_THROTTLES_LOCK = threading.Lock()
_THROTTLES: dict[tuple[str, float, int], SharedThrottle] = {}


def shared_throttle(cfg: KafkaReadConfig, partitions: int) -> SharedThrottle | None:
    """This process's throttle of `cfg.topic` (None without a cap)."""
    if cfg.max_events_per_second <= 0:
        return None
    key = (cfg.topic, cfg.max_events_per_second, partitions)
    with _THROTTLES_LOCK:
        if key not in _THROTTLES:
            _THROTTLES[key] = SharedThrottle(cfg.max_events_per_second, partitions)
        return _THROTTLES[key]
