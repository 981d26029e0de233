"""Partition-parallel splittable Kafka read with kafka-python: the only module that imports kafka.

One restriction per partition (an offset range), so the runner holds the offsets in its checkpoints and a
restarted job resumes where it stopped. Each call reads a bounded amount and returns with
`defer_remainder`, because portable runners never split an unbounded Python SDF themselves. The
watermark is event time (see `beam_cxone.watermarks`); consumer-group offsets are committed only after
the runner finalizes a bundle, so lag shows in the usual Kafka tools without ever being the source
of truth.

Start positions: earliest, latest, committed, or a timestamp. Bounded mode stops at the end offsets seen
at start, or at a timestamp (backfills).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange
from apache_beam.io.restriction_trackers import OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import WatermarkEstimator
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.core import WatermarkEstimatorProvider
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.timestamp import Duration
from apache_beam.utils.timestamp import Timestamp
from kafka import KafkaConsumer
from kafka import KafkaProducer
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from beam_cxone.parse import ParseSettings
from beam_cxone.parse import Rejected
from beam_cxone.parse import decode_object
from beam_cxone.parse import parse_object
from beam_cxone.records import RawRecord
from beam_cxone.throttle import TokenBucket
from beam_cxone.watermarks import PartitionClock
from beam_cxone.watermarks import TopicWatermarks

__all__ = [
    "KafkaPartition",
    "KafkaReadConfig",
    "ReadFromKafka",
    "consumer_config_from_env",
    "create_topic",
    "end_offsets",
    "publish",
]

_LOG = logging.getLogger(__name__)
START_POSITIONS = ("earliest", "latest", "committed", "timestamp")
# The watermarks of each topic's partitions in this worker process (see TopicWatermarks): readers report
# their minimum, and an idle partition may advance to their maximum.
_TOPICS: dict[str, TopicWatermarks] = {}
_TOPIC_LOCK = threading.Lock()


def _topic_watermarks(topic: str, partitions) -> TopicWatermarks:
    with _TOPIC_LOCK:
        if topic not in _TOPICS:
            _TOPICS[topic] = TopicWatermarks(partitions)
        return _TOPICS[topic]


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclasses.dataclass(frozen=True)
class KafkaPartition:
    topic: str
    partition: int


@dataclasses.dataclass(frozen=True)
class KafkaReadConfig:
    """What to read and how fast. Times are ms; `max_events_per_second` 0 means no cap."""

    bootstrap_servers: str
    topic: str
    group_id: str | None = None
    start: str = "earliest"
    start_timestamp_ms: int | None = None
    bounded: bool = False
    stop_timestamp_ms: int | None = None
    max_events_per_second: float = 0.0
    out_of_orderness_ms: int = 5_000
    allowed_lateness_ms: int = 30_000
    idle_timeout_ms: int = 10_000
    max_records_per_call: int = 5_000
    max_seconds_per_call: float = 1.0
    poll_timeout_ms: int = 200
    max_record_bytes: int = 1024 * 1024
    consumer_config: tuple[tuple[str, Any], ...] = ()  # non-secret pass-through consumer settings

    def __post_init__(self) -> None:
        errors = []
        if not self.bootstrap_servers:
            errors.append("bootstrap_servers is empty")
        if not self.topic:
            errors.append("topic is empty")
        if self.start not in START_POSITIONS:
            errors.append(f"start must be one of {START_POSITIONS}, got {self.start!r}")
        if self.start == "timestamp" and self.start_timestamp_ms is None:
            errors.append("start=timestamp needs start_timestamp_ms")
        if self.start == "committed" and not self.group_id:
            errors.append("start=committed needs a group_id")
        if self.max_events_per_second < 0:
            errors.append("max_events_per_second must be >= 0")
        if self.out_of_orderness_ms < 0 or self.allowed_lateness_ms < 0:
            errors.append("out_of_orderness_ms and allowed_lateness_ms must be >= 0")
        if errors:
            raise ValueError("invalid Kafka read config: " + "; ".join(errors))

    def consumer_kwargs(self, with_group: bool = True) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            bootstrap_servers=self.bootstrap_servers.split(","),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            consumer_timeout_ms=self.poll_timeout_ms,
        )
        if with_group and self.group_id:
            kwargs["group_id"] = self.group_id
        # SASL/SSL settings are read here, on the worker, so no secret is pickled into the job graph.
        kwargs.update(dict(consumer_config_from_env()))
        kwargs.update(dict(self.consumer_config))
        return kwargs


def consumer_config_from_env(prefix: str = "KAFKA_") -> tuple[tuple[str, Any], ...]:
    """SASL/SSL settings from the environment (never the command line), e.g. KAFKA_SASL_PASSWORD."""
    names = ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
             "ssl_cafile", "ssl_certfile", "ssl_keyfile")
    found = []
    for name in names:
        value = os.environ.get(prefix + name.upper())
        if value:
            found.append((name, value))
    return tuple(found)


class _EventTimeEstimator(WatermarkEstimator):
    """Exposes a partition's PartitionClock to the runner; reports the topic's low watermark."""

    def __init__(self, clock: PartitionClock, topic: str, partition: int, partitions: tuple[int, ...]):
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
            others = self._topic.low(_wall_ms(), excluding=self._partition)
        wm = None if own is None or others is None else min(own, others)
        return MIN_TIMESTAMP if wm is None else Timestamp(micros=wm * 1000)

    def topic_high_ms(self) -> int | None:
        with _TOPIC_LOCK:
            return self._topic.high()

    def publish(self) -> None:
        """Called at the start of a call only: the watermark as the runner committed it."""
        with _TOPIC_LOCK:
            self._topic.update(self._partition, self.clock.watermark_ms(), _wall_ms())

    def get_estimator_state(self) -> tuple:
        return (self._partition, self.clock.state())


class _EventTimeEstimatorProvider(WatermarkEstimatorProvider):
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
        return _EventTimeEstimator(clock, self._cfg.topic, partition, self._partitions)


def _timestamp_offsets(consumer: KafkaConsumer, tp: TopicPartition, ts_ms: int, fallback: int) -> int:
    found = consumer.offsets_for_times({tp: ts_ms}).get(tp)
    return fallback if found is None else found.offset


class _PartitionOffsetTracker(OffsetRestrictionTracker):
    """Offsets of one partition: only checkpoints split it (fraction 0), never a runner's dynamic split.

    Prism splits an unbounded range at its midpoint otherwise; a partition read by two readers would
    lose its order and its watermark. `is_bounded` tells the runner whether the range ends.
    """

    def try_split(self, fraction_of_remainder):
        if fraction_of_remainder > 0:
            return None
        return super().try_split(fraction_of_remainder)

    def is_bounded(self) -> bool:
        return self._range.stop != sys.maxsize


class _PartitionOffsets(RestrictionProvider):
    """Offset range of one partition, from the configured start to the end (bounded) or infinity."""

    def __init__(self, cfg: KafkaReadConfig):
        self._cfg = cfg

    def initial_restriction(self, element: KafkaPartition) -> OffsetRange:
        cfg = self._cfg
        tp = TopicPartition(element.topic, element.partition)
        consumer = KafkaConsumer(**cfg.consumer_kwargs())
        try:
            begin = consumer.beginning_offsets([tp])[tp]
            end = consumer.end_offsets([tp])[tp]
            if cfg.start == "earliest":
                start = begin
            elif cfg.start == "latest":
                start = end
            elif cfg.start == "committed":
                committed = consumer.committed(tp)
                start = begin if committed is None else committed
            else:
                start = _timestamp_offsets(consumer, tp, cfg.start_timestamp_ms, end)
            if not cfg.bounded:
                stop = sys.maxsize
            elif cfg.stop_timestamp_ms is not None:
                stop = _timestamp_offsets(consumer, tp, cfg.stop_timestamp_ms, end)
            else:
                stop = end
        finally:
            consumer.close()
        start = max(start, begin)
        _LOG.info("kafka read %s/%d: offsets [%d, %s)", element.topic, element.partition, start,
                  "inf" if stop == sys.maxsize else stop)
        return OffsetRange(start, max(start, stop))

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return _PartitionOffsetTracker(restriction)

    def split(self, element, restriction):
        yield restriction  # one reader per partition keeps each partition's order

    def restriction_size(self, element, restriction: OffsetRange) -> int:
        return min(restriction.size(), 1 << 40)


class _ReadPartitionFn(beam.DoFn, RestrictionProvider, WatermarkEstimatorProvider):
    """Reads one partition's offset range in bounded chunks, emitting RawRecords at their event time.

    It is its own restriction provider (offset ranges) and watermark-estimator provider (event time),
    delegating to the two small classes above.
    """

    def __init__(self, cfg: KafkaReadConfig, partitions: tuple[int, ...] = (0,)):
        self._cfg = cfg
        self._settings = ParseSettings(max_record_bytes=cfg.max_record_bytes)
        self._offsets = _PartitionOffsets(cfg)
        self._estimators = _EventTimeEstimatorProvider(cfg, tuple(partitions))
        self._partitions = max(1, len(partitions))
        self._read = Metrics.counter("kafka_read", "records_read")
        self._late = Metrics.counter("kafka_read", "late_records")
        self._throttled_ms = Metrics.counter("kafka_read", "throttled_ms")
        self._commits = Metrics.counter("kafka_read", "offset_commits")

    # RestrictionProvider / WatermarkEstimatorProvider, delegated.
    def initial_restriction(self, element):
        return self._offsets.initial_restriction(element)

    def create_tracker(self, restriction):
        return self._offsets.create_tracker(restriction)

    def split(self, element, restriction):
        return self._offsets.split(element, restriction)

    def restriction_size(self, element, restriction):
        return self._offsets.restriction_size(element, restriction)

    def initial_estimator_state(self, element, restriction):
        return self._estimators.initial_estimator_state(element, restriction)

    def create_watermark_estimator(self, estimator_state):
        return self._estimators.create_watermark_estimator(estimator_state)

    def setup(self) -> None:
        self._consumer = KafkaConsumer(**self._cfg.consumer_kwargs())
        rate = self._cfg.max_events_per_second / self._partitions
        self._buckets: dict[int, TokenBucket] = {}
        self._last_commit: dict[int, int] = {}
        self._rate = rate

    def teardown(self) -> None:
        consumer = getattr(self, "_consumer", None)
        if consumer is not None:
            consumer.close()

    def _bucket(self, partition: int) -> TokenBucket:
        if partition not in self._buckets:
            self._buckets[partition] = TokenBucket(self._rate)
        return self._buckets[partition]

    def _commit_resumed(self, tp: TopicPartition, resume_offset: int) -> None:
        """Commits the offset this call resumes from to the consumer group.

        A call that resumes at offset S exists only because the runner committed the bundle that read
        up to S and checkpointed its residual: so S is safe to report. (Prism's bundle finalization
        callbacks fail with the Python SDK in 2.77, so this does not rely on them.) Best effort: a failed
        commit only delays lag reporting, never data.
        """
        if not self._cfg.group_id or self._last_commit.get(tp.partition) == resume_offset:
            return
        try:
            self._consumer.commit({tp: OffsetAndMetadata(resume_offset, "", -1)})
            self._last_commit[tp.partition] = resume_offset
            self._commits.inc()
        except Exception as err:  # noqa: BLE001 - any broker error here is non-fatal by design
            _LOG.warning("offset commit for %s failed: %s", tp, type(err).__name__)

    def _timestamp(self, payload: bytes | None, clock: PartitionClock, wall_ms: int) -> tuple[int | None, bool]:
        """Event time of a valid record (None for an invalid one) and whether it is late.

        Only valid records move the watermark: a malformed record with an absurd time must not make
        every later record late.
        """
        try:
            event_ms = parse_object(decode_object(payload, self._settings.max_record_bytes),
                                    self._settings).event_time_ms
        except Rejected:
            return None, False
        if self._cfg.bounded:
            return event_ms, False
        return event_ms, clock.observe(event_ms, wall_ms)

    def process(
        self,
        element: KafkaPartition,
        tracker=beam.DoFn.RestrictionParam(),
        estimator=beam.DoFn.WatermarkEstimatorParam(),
    ) -> Iterator[Any]:
        cfg = self._cfg
        tp = TopicPartition(element.topic, element.partition)
        restriction = tracker.current_restriction()
        clock: PartitionClock = estimator.get_clock()
        estimator.publish()
        self._consumer.assign([tp])
        self._consumer.seek(tp, restriction.start)
        self._commit_resumed(tp, restriction.start)
        bucket = self._bucket(element.partition)
        deadline = time.monotonic() + cfg.max_seconds_per_call
        emitted = 0
        while emitted < cfg.max_records_per_call and time.monotonic() < deadline:
            batch = self._consumer.poll(timeout_ms=cfg.poll_timeout_ms,
                                        max_records=min(500, cfg.max_records_per_call - emitted))
            records = batch.get(tp, [])
            if not records:
                if self._consumer.position(tp) >= restriction.stop:
                    tracker.try_claim(restriction.stop)  # bounded and done (control records included)
                    return
                self._on_idle(tp, clock, estimator)
                continue
            for rec in records:
                if not tracker.try_claim(rec.offset):
                    return
                waited = bucket.acquire()
                if waited:
                    self._throttled_ms.inc(int(waited * 1000))
                wall_ms = int(time.time() * 1000)
                event_ms, late = self._timestamp(rec.value, clock, wall_ms)
                if late:
                    self._late.inc()
                if event_ms is None:
                    wm = clock.watermark_ms()
                    event_ms = wm if wm is not None else 0
                self._read.inc()
                emitted += 1
                yield beam.window.TimestampedValue(
                    RawRecord(
                        payload=rec.value,
                        source=f"{rec.topic}/{rec.partition}/{rec.offset}",
                        source_time_ms=rec.timestamp if rec.timestamp is not None else 0,
                        order=(f"{rec.topic}/{rec.partition:06d}", rec.offset),
                        late=late,
                    ),
                    Timestamp(micros=event_ms * 1000),
                )
        tracker.defer_remainder(Duration(seconds=0) if emitted else Duration(seconds=0.2))

    def _on_idle(self, tp: TopicPartition, clock: PartitionClock, estimator) -> None:
        if self._cfg.bounded:
            return
        caught_up = self._consumer.position(tp) >= self._consumer.end_offsets([tp])[tp]
        clock.on_idle(_wall_ms(), estimator.topic_high_ms(), caught_up)


@beam.DoFn.unbounded_per_element()
class _ReadPartitionUnboundedFn(_ReadPartitionFn):
    """The streaming variant: the runner treats each partition's restriction as unbounded."""


def _partitions_of(cfg: KafkaReadConfig) -> list[KafkaPartition]:
    consumer = KafkaConsumer(**cfg.consumer_kwargs(with_group=False))
    try:
        partitions = consumer.partitions_for_topic(cfg.topic)
    finally:
        consumer.close()
    if not partitions:
        raise ValueError(f"Kafka topic {cfg.topic!r} does not exist or has no partitions")
    return [KafkaPartition(cfg.topic, p) for p in sorted(partitions)]


class ReadFromKafka(beam.PTransform):
    """Reads `cfg.topic` as RawRecords timestamped with their event time.

    Output: PCollection[RawRecord]; `late` is set on records behind the watermark by more than the
    allowed lateness (streaming only). Unbounded unless `cfg.bounded`.
    """

    def __init__(self, cfg: KafkaReadConfig):
        super().__init__()
        self._cfg = cfg

    def expand(self, pbegin):
        cfg = self._cfg
        partitions = _partitions_of(cfg)
        fn_class = _ReadPartitionFn if cfg.bounded else _ReadPartitionUnboundedFn
        numbers = tuple(p.partition for p in partitions)
        return (
            pbegin
            | "ListPartitions" >> beam.Create(partitions, reshuffle=False)
            | "ReadPartitions" >> beam.ParDo(fn_class(cfg, numbers))
        )


# ----- producer-side helpers (generator, tests, benchmarks) -------------------------------------


def create_topic(bootstrap_servers: str, topic: str, partitions: int = 1) -> bool:
    """Creates the topic if missing; returns whether it was created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","))
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        return True
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()


def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","))
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def publish(bootstrap_servers: str, topic: str, records: Iterator[tuple[bytes | None, bytes]],
            rate_per_s: float = 0.0, **producer_kw: Any) -> int:
    """Publishes (key, value) pairs in order, optionally capped at a rate; returns the count."""
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers.split(","), linger_ms=5,
                             max_request_size=4 * 1024 * 1024, **producer_kw)
    bucket = TokenBucket(rate_per_s)
    count = 0
    try:
        for key, value in records:
            bucket.acquire()
            producer.send(topic, key=key, value=value)
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count

