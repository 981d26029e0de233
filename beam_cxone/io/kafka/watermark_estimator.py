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
# their minimum, and an idle partition may advance to their maximum.
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
        self, clock: PartitionClock, topic: str, partition: int, partitions: tuple[int, ...]
    ):
        self.clock = clock
        self._partition = partition
        self._topic = _topic_watermarks(topic, partitions)

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

    def topic_high_ms(self) -> int | None:
        with _TOPIC_LOCK:
            return self._topic.high()

    def publish(self) -> None:
        """Called at the start of a call only: the watermark as the runner committed it."""
        with _TOPIC_LOCK:
            self._topic.update(self._partition, self.clock.watermark_ms(), wall_ms())

    def get_estimator_state(self) -> tuple:
        return (self._partition, self.clock.state())


class EventTimeEstimatorProvider(WatermarkEstimatorProvider):
    """Estimator state: (partition, clock state); the topic and its partitions are fixed per read."""

    def __init__(self, cfg: KafkaReadConfig, partitions: tuple[int, ...]):
        self._cfg = cfg
        self._partitions = partitions

    def initial_estimator_state(self, element: KafkaPartition, restriction):
        return (element.partition, None)

    def create_watermark_estimator(self, estimator_state):
        partition, clock_state = estimator_state
        clock = PartitionClock.from_state(
            clock_state,
            self._cfg.out_of_orderness_ms,
            self._cfg.allowed_lateness_ms,
            self._cfg.idle_timeout_ms,
        )
        return EventTimeEstimator(clock, self._cfg.topic, partition, self._partitions)
