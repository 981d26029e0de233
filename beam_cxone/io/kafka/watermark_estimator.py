"""The read's watermark as the runner sees it: each partition's event-time clock (see
`beam_cxone.watermarks`), held back by the other partitions of its topic read in this process."""

from __future__ import annotations

import threading
import time

from apache_beam.io.watermark_estimators import WatermarkEstimator
from apache_beam.transforms.core import WatermarkEstimatorProvider
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.timestamp import Timestamp

from beam_cxone.io.kafka.config import KafkaPartition
from beam_cxone.io.kafka.config import KafkaReadConfig
from beam_cxone.watermarks import PartitionClock
from beam_cxone.watermarks import TopicWatermarks

# The watermarks of each topic's partitions in this worker process (see TopicWatermarks): readers report
# their minimum, and an idle partition may vouch for the minimum of those still reading.
_TOPICS: dict[str, TopicWatermarks] = {}
_TOPIC_LOCK = threading.Lock()


def _topic_watermarks(topic: str, partitions) -> TopicWatermarks:
    with _TOPIC_LOCK:
        if topic not in _TOPICS:
            _TOPICS[topic] = TopicWatermarks(partitions)
        return _TOPICS[topic]


def wall_ms() -> int:
    return int(time.time() * 1000)


class EventTimeEstimator(WatermarkEstimator):
    """Exposes a partition's PartitionClock to the runner; reports the topic's low watermark."""

    def __init__(
        self, clock: PartitionClock, topic: str, partition: int, partitions: tuple[int, ...],
        dedup_from: int | None = None,
    ):
        self.clock = clock
        self._partition = partition
        self._topic = _topic_watermarks(topic, partitions)
        self._dedup_from = dedup_from  # the first offset the partition's FirstSeen filter remembers
        self._first_seen = None

    def get_clock(self) -> PartitionClock:
        """A method, not an attribute: the runner wraps the estimator and forwards method calls."""
        return self.clock

    def observe_timestamp(self, timestamp: Timestamp) -> None:
        pass  # the read feeds the clock itself, with lateness decided per record

    def current_watermark(self) -> Timestamp:
        own = self.clock.watermark_ms()
        with _TOPIC_LOCK:
            others = self._topic.low(wall_ms(), excluding=self._partition)
        wm = None if own is None or others is None else min(own, others)
        return MIN_TIMESTAMP if wm is None else Timestamp(micros=wm * 1000)

    def vouch_if_idle(self, now_ms: int) -> None:
        """An idle partition stops holding the others back (see `PartitionClock.vouch`); one that has
        never had a record vouches for the others even when they are idle too."""
        if not self.clock.is_idle(now_ms):
            return
        with _TOPIC_LOCK:
            if self.clock.watermark_ms() is None:
                low = self._topic.low(now_ms, excluding=self._partition)
                low = None if low is not None and low >= 2**62 else low
            else:
                low = self._topic.low_of_active(now_ms, excluding=self._partition)
        self.clock.vouch(low, now_ms)

    def publish(self) -> None:
        """Called at the start of a call only: the watermark as the runner committed it."""
        now = wall_ms()
        with _TOPIC_LOCK:
            self._topic.update(self._partition, self.clock.watermark_ms(), now, self.clock.is_idle(now))

    def dedup_from(self) -> int | None:
        """A method, like get_clock: where a cold reader rebuilds the duplicate filter from."""
        return self._dedup_from

    def attach(self, first_seen) -> None:
        self._first_seen = first_seen

    def get_estimator_state(self) -> tuple:
        dedup_from = self._dedup_from
        if self._first_seen is not None:
            dedup_from = self._first_seen.oldest_offset()
        return (self._partition, self.clock.state(), dedup_from)


class EventTimeEstimatorProvider(WatermarkEstimatorProvider):
    """Estimator state: (partition, clock state, the first offset the dedup filter remembers); the topic
    and its partitions are fixed per read."""

    def __init__(self, cfg: KafkaReadConfig, partitions: tuple[int, ...]):
        self._cfg = cfg
        self._partitions = partitions

    def initial_estimator_state(self, element: KafkaPartition, restriction):
        return (element.partition, None, None)

    def create_watermark_estimator(self, estimator_state):
        partition, clock_state, dedup_from = (tuple(estimator_state) + (None,))[:3]
        clock = PartitionClock.from_state(
            clock_state,
            self._cfg.out_of_orderness_ms,
            self._cfg.allowed_lateness_ms,
            self._cfg.idle_timeout_ms,
            self._cfg.wall_clock_idle,
        )
        return EventTimeEstimator(clock, self._cfg.topic, partition, self._partitions, dedup_from)
