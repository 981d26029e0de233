"""Partition-parallel splittable Kafka read with kafka-python: the only module that imports kafka.

One restriction per partition (an offset range), so the runner holds the offsets in its checkpoints and a
restarted job resumes where it stopped. Each call reads a bounded amount and returns with
`defer_remainder`, because portable runners never split an unbounded Python SDF themselves. The
watermark is event time (see `beam_cxone.watermarks`); consumer-group offsets are committed only after
the runner finalizes a bundle, so lag shows in the usual Kafka tools without ever being the source
of truth.

Start positions: earliest, latest, committed, or a timestamp. Bounded mode stops at the end offsets seen
at start, or at a timestamp (backfills).

Resuming from the consumer group (`start=committed`): Prism keeps no durable checkpoint across a job
restart, so a restarted job starts from the group's committed offsets, rewound by a replay margin of
Kafka record time (`resume_replay_ms`, see `resume_offset`): the windows, lateness and pattern state that
were in flight when the old job stopped are rebuilt from the replayed records, and the idempotent
upserts rewrite the rows they produce. While a job replays, it never commits below the offsets it
resumed from, so a second restart does not rewind twice.

Broker faults: Prism fails the whole job when a bundle raises (measured with 2.77: no bundle retry),
so a retriable Kafka error (broker down, leader moving, a request timing out) never leaves `process`:
the call backs off and defers the rest of its restriction, and the runner resumes it from the last
claimed offset. Non-retriable errors (authorization, a missing topic at start-up) still fail loudly.

Rate cap: the readers of a topic in one worker process share one token bucket (`_SharedThrottle`), at
the share of the job's cap that their partitions are of all partitions; it waits, never drops.

Dead letters can also go to a Kafka topic (`WriteDeadLettersToKafka`): the dead_letters row in its
JSON Lines export form, keyed by `dead_letter_id`, so a replay re-sends the same key and value.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
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
from kafka.errors import KafkaError
from kafka.errors import TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from beam_cxone.io.jsonl import to_json_line
from beam_cxone.parse import ParseSettings
from beam_cxone.parse import Rejected
from beam_cxone.parse import decode_object
from beam_cxone.parse import parse_object
from beam_cxone.records import RawRecord
from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.throttle import TokenBucket
from beam_cxone.watermarks import PartitionClock
from beam_cxone.watermarks import TopicWatermarks

__all__ = [
    "DeadLetterTopicConfig",
    "KafkaPartition",
    "KafkaReadConfig",
    "ReadFromKafka",
    "WriteDeadLettersToKafka",
    "consumer_config_from_env",
    "create_topic",
    "dead_letter_message",
    "end_offsets",
    "is_transient",
    "publish",
    "resume_offset",
]

_LOG = logging.getLogger(__name__)
START_POSITIONS = ("earliest", "latest", "committed", "timestamp")
# The watermarks of each topic's partitions in this worker process (see TopicWatermarks): readers report
# their minimum, and an idle partition may advance to their maximum.
_TOPICS: dict[str, TopicWatermarks] = {}
_TOPIC_LOCK = threading.Lock()
# Blocking client calls inside `process` (end offsets, commits) give up after this long, so an outage
# costs a call a couple of seconds, not the client's 30 s request timeout; the call then backs off.
_CALL_TIMEOUT_MS = 2_000
_BACKOFF_S = 1.0
# How long start-up waits for the record whose Kafka timestamp anchors a committed resume.
_ANCHOR_FETCH_S = 10.0


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
    # Streaming only: at this wall time (epoch ms) every partition's read ends, so the watermark goes to
    # the end of time and every window and timer fires before the job finishes (a drain, not a cancel).
    drain_at_wall_ms: int | None = None
    consumer_config: tuple[tuple[str, Any], ...] = ()  # non-secret pass-through consumer settings
    resume_replay_ms: int = 120_000  # start=committed: rewind by this much Kafka record time

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
        if self.resume_replay_ms < 0:
            errors.append("resume_replay_ms must be >= 0")
        if errors:
            raise ValueError("invalid Kafka read config: " + "; ".join(errors))

    def consumer_kwargs(self, with_group: bool = True) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            bootstrap_servers=self.bootstrap_servers.split(","),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            consumer_timeout_ms=self.poll_timeout_ms,
            # kafka-python backs reconnects off up to 30 s; the Java client's 1 s default brings a
            # read back within a second or two of a broker restart instead of up to half a minute.
            reconnect_backoff_max_ms=2_000,
        )
        if with_group and self.group_id:
            kwargs["group_id"] = self.group_id
        # SASL/SSL settings are read here, on the worker, so no secret is pickled into the job graph.
        kwargs.update(dict(consumer_config_from_env()))
        kwargs.update(dict(self.consumer_config))
        return kwargs


def consumer_config_from_env(prefix: str = "KAFKA_") -> tuple[tuple[str, Any], ...]:
    """SASL/SSL settings from the environment (never the command line), e.g. KAFKA_SASL_PASSWORD."""
    names = (
        "security_protocol",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
    )
    found = []
    for name in names:
        value = os.environ.get(prefix + name.upper())
        if value:
            found.append((name, value))
    return tuple(found)


def is_transient(err: BaseException) -> bool:
    """A Kafka error worth waiting out (broker down, leader moving, a timeout); others are permanent."""
    return isinstance(err, KafkaError) and bool(getattr(err, "retriable", False))


def resume_offset(
    begin: int,
    committed: int | None,
    replay_ms: int,
    record_time_ms: Callable[[int], int | None],
    offset_for_time: Callable[[int], int | None],
) -> int:
    """Where a job that starts from the consumer group reads first: the committed offset, rewound by
    `replay_ms` of Kafka record time.

    The anchor is the last record the previous job read (`committed - 1`): its Kafka timestamp T. The
    replay starts at the first offset whose timestamp is >= T - replay_ms (`offset_for_time`), never
    after the committed offset and never before `begin` (the oldest retained offset). No commit yet:
    `begin`. Unknown anchor time (the record cannot be fetched, or no offset matches): `begin`, i.e.
    everything retained is replayed, which costs time but loses nothing.

    Example: offsets 0..99 written one per second (timestamps 1000 + i s), committed 80, replay
    120 s: anchor offset 79 at 1079 s, first offset at >= 959 s is 0 -> 0. Replay 10 s -> offset 69.
    """
    if committed is None:
        return begin
    committed = max(committed, begin)
    if replay_ms <= 0 or committed == begin:
        return committed
    anchor_ms = record_time_ms(committed - 1)
    if anchor_ms is None:
        return begin
    found = offset_for_time(anchor_ms - replay_ms)
    if found is None:
        return begin
    return max(begin, min(found, committed))


def dead_letter_message(row: dict) -> tuple[bytes, bytes]:
    """(key, value) of a dead letter on a Kafka topic: key `dead_letter_id`, value the dead_letters row
    in the JSON Lines export form (timestamps ISO-8601 UTC with ms and `Z`), so a consumer of the topic
    and a reader of the export see the same object, and a replay re-sends identical bytes."""
    return row["dead_letter_id"].encode("utf-8"), to_json_line(DEAD_LETTERS, row).encode("utf-8")


class _EventTimeEstimator(WatermarkEstimator):
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


def _timestamp_offsets(
    consumer: KafkaConsumer, tp: TopicPartition, ts_ms: int, fallback: int
) -> int:
    found = consumer.offsets_for_times({tp: ts_ms}).get(tp)
    return fallback if found is None else found.offset


def _record_time_ms(consumer: KafkaConsumer, tp: TopicPartition, offset: int) -> int | None:
    """The Kafka timestamp of the first record at or after `offset` (None when none arrives in time)."""
    consumer.assign([tp])
    consumer.seek(tp, offset)
    deadline = time.monotonic() + _ANCHOR_FETCH_S
    while time.monotonic() < deadline:
        for rec in consumer.poll(timeout_ms=500, max_records=1).get(tp, []):
            if rec.offset >= offset and rec.timestamp is not None and rec.timestamp >= 0:
                return rec.timestamp
    return None


def _offset_for_time(
    consumer: KafkaConsumer, tp: TopicPartition, ts_ms: int, begin: int
) -> int | None:
    if ts_ms < 0:
        return begin
    found = consumer.offsets_for_times({tp: ts_ms}).get(tp)
    return None if found is None else found.offset


def _committed_start(
    consumer: KafkaConsumer, tp: TopicPartition, begin: int, replay_ms: int
) -> int:
    committed = consumer.committed(tp)
    start = resume_offset(
        begin,
        committed,
        replay_ms,
        record_time_ms=lambda offset: _record_time_ms(consumer, tp, offset),
        offset_for_time=lambda ts: _offset_for_time(consumer, tp, ts, begin),
    )
    if committed is not None:
        _LOG.info(
            "kafka read %s/%d: resuming the group at offset %d, replaying from %d "
            "(%d records, margin %d ms of record time)",
            tp.topic,
            tp.partition,
            committed,
            start,
            max(0, committed - start),
            replay_ms,
        )
    return start


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
                start = _committed_start(consumer, tp, begin, cfg.resume_replay_ms)
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
        _LOG.info(
            "kafka read %s/%d: offsets [%d, %s)",
            element.topic,
            element.partition,
            start,
            "inf" if stop == sys.maxsize else stop,
        )
        return OffsetRange(start, max(start, stop))

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return _PartitionOffsetTracker(restriction)

    def split(self, element, restriction):
        yield restriction  # one reader per partition keeps each partition's order

    def restriction_size(self, element, restriction: OffsetRange) -> int:
        return min(restriction.size(), 1 << 40)


class _SharedThrottle:
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


_THROTTLES: dict[tuple[str, float, int], _SharedThrottle] = {}


def _shared_throttle(cfg: KafkaReadConfig, partitions: int) -> _SharedThrottle | None:
    """This process's throttle of `cfg.topic` (None without a cap)."""
    if cfg.max_events_per_second <= 0:
        return None
    key = (cfg.topic, cfg.max_events_per_second, partitions)
    with _TOPIC_LOCK:
        if key not in _THROTTLES:
            _THROTTLES[key] = _SharedThrottle(cfg.max_events_per_second, partitions)
        return _THROTTLES[key]


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
        self._broker_errors = Metrics.counter("kafka_read", "broker_errors")

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
        self._throttle = _shared_throttle(self._cfg, self._partitions)
        self._last_commit: dict[int, int] = {}
        self._commit_floor: dict[int, int] = {}

    def teardown(self) -> None:
        consumer = getattr(self, "_consumer", None)
        if consumer is not None:
            consumer.close()

    def _throttle_done(self, partition: int) -> None:
        if self._throttle is not None:
            self._throttle.done(partition)

    def _draining(self) -> bool:
        drain_at = self._cfg.drain_at_wall_ms
        return drain_at is not None and _wall_ms() >= drain_at

    def _commit_resumed(self, tp: TopicPartition, resume_offset: int) -> None:
        """Commits the offset this call resumes from to the consumer group.

        A call that resumes at offset S exists only because the runner committed the bundle that read
        up to S and checkpointed its residual: so S is safe to report. (Prism's bundle finalization
        callbacks fail with the Python SDK in 2.77, so this does not rely on them.) Best effort: a failed
        commit only delays lag reporting, and makes a later committed resume replay more, never less.

        A job that resumed from the group (start=committed) replays from before the committed offset;
        it commits nothing below that offset, so stopping it again mid-replay does not rewind twice.
        """
        if not self._cfg.group_id or self._last_commit.get(tp.partition) == resume_offset:
            return
        try:
            if resume_offset < self._floor(tp):
                return
            self._consumer.commit(
                {tp: OffsetAndMetadata(resume_offset, "", -1)}, timeout_ms=_CALL_TIMEOUT_MS
            )
            self._last_commit[tp.partition] = resume_offset
            self._commits.inc()
        except Exception as err:  # noqa: BLE001 - any broker error here is non-fatal by design
            _LOG.warning("offset commit for %s failed: %s", tp, type(err).__name__)

    def _floor(self, tp: TopicPartition) -> int:
        """The group's offset when this reader first committed (start=committed only; else 0)."""
        if self._cfg.start != "committed":
            return 0
        if tp.partition not in self._commit_floor:
            committed = self._consumer.committed(tp, timeout_ms=_CALL_TIMEOUT_MS)
            self._commit_floor[tp.partition] = committed or 0
        return self._commit_floor[tp.partition]

    def _timestamp(
        self, payload: bytes | None, clock: PartitionClock, wall_ms: int
    ) -> tuple[int | None, bool]:
        """Event time of a valid record (None for an invalid one) and whether it is late.

        Only valid records move the watermark: a malformed record with an absurd time must not make
        every later record late.
        """
        try:
            event_ms = parse_object(
                decode_object(payload, self._settings.max_record_bytes), self._settings
            ).event_time_ms
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
        if self._throttle is not None:
            self._throttle.touch(element.partition)
        deadline = time.monotonic() + cfg.max_seconds_per_call
        emitted = 0
        while emitted < cfg.max_records_per_call and time.monotonic() < deadline:
            if self._draining():
                tracker.try_claim(restriction.stop)  # ends the restriction: nothing is deferred
                self._throttle_done(element.partition)
                return
            try:
                records = self._poll(tp, cfg.max_records_per_call - emitted)
                if not records:
                    position = self._consumer.position(tp, timeout_ms=_CALL_TIMEOUT_MS)
                    if position is not None and position >= restriction.stop:
                        # Bounded and done (control records included).
                        tracker.try_claim(restriction.stop)
                        self._throttle_done(element.partition)
                        return
                    self._on_idle(tp, clock, estimator)
                    continue
            except KafkaError as err:
                if not is_transient(err):
                    raise
                self._on_broker_error(tp, err, clock)
                tracker.defer_remainder(Duration(seconds=_BACKOFF_S))
                return
            for rec in records:
                if not tracker.try_claim(rec.offset):
                    self._throttle_done(element.partition)
                    return
                waited = self._throttle.acquire(element.partition) if self._throttle else 0.0
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
                if self._throttle is not None and time.monotonic() >= deadline:
                    break  # throttled: the rest of the batch is read again by the next call
        tracker.defer_remainder(Duration(seconds=0) if emitted else Duration(seconds=0.2))

    def _poll(self, tp: TopicPartition, room: int) -> list:
        """At most `room` records (and at most about one call's worth at the capped rate, so a
        throttled call still returns after `max_seconds_per_call`)."""
        limit = min(500, room)
        if self._throttle is not None:
            cap = self._cfg.max_events_per_second
            limit = min(limit, max(1, int(cap * self._cfg.max_seconds_per_call)))
        return self._consumer.poll(timeout_ms=self._cfg.poll_timeout_ms, max_records=limit).get(
            tp, []
        )

    def _on_idle(self, tp: TopicPartition, clock: PartitionClock, estimator) -> None:
        if self._cfg.bounded:
            return
        position = self._consumer.position(tp, timeout_ms=_CALL_TIMEOUT_MS)
        end = self._consumer.end_offsets([tp], timeout_ms=_CALL_TIMEOUT_MS)[tp]
        caught_up = position is not None and position >= end
        clock.on_idle(_wall_ms(), estimator.topic_high_ms(), caught_up)

    def _on_broker_error(self, tp: TopicPartition, err: KafkaError, clock: PartitionClock) -> None:
        """A retriable broker error: count it, and restart the idle timer (while the broker cannot
        tell whether the partition is caught up, its watermark must not advance by idleness)."""
        self._broker_errors.inc()
        _LOG.warning("kafka read %s: %s, backing off %.1f s", tp, type(err).__name__, _BACKOFF_S)
        if not self._cfg.bounded:
            clock.on_idle(_wall_ms(), None, caught_up=False)


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


# ----- dead letters to a Kafka topic ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DeadLetterTopicConfig:
    """Where dead letters are also produced: a topic on a cluster (SASL/SSL from the environment)."""

    bootstrap_servers: str
    topic: str
    producer_config: tuple[tuple[str, Any], ...] = ()  # non-secret pass-through producer settings

    def __post_init__(self) -> None:
        if not self.bootstrap_servers or not self.topic:
            raise ValueError("a dead-letter topic needs bootstrap servers and a topic name")

    def producer_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            bootstrap_servers=self.bootstrap_servers.split(","),
            acks="all",
            linger_ms=20,
            max_request_size=2 * 1024 * 1024,  # a dead letter's payload is capped at 64 KiB of text
            reconnect_backoff_max_ms=2_000,  # as the read: back soon after a broker restart
        )
        kwargs.update(dict(consumer_config_from_env()))  # read on the worker: no pickled secret
        kwargs.update(dict(self.producer_config))
        return kwargs


class _ProduceDeadLettersFn(beam.DoFn):
    """dead_letters rows -> records on the topic. One producer per DoFn instance (setup); each bundle
    is flushed and every send checked in finish_bundle, so a bundle the runner commits has been
    acknowledged by the broker. The producer retries a broker outage for up to its delivery timeout
    (2 minutes by default); what still fails raises: dead letters are never silently dropped."""

    def __init__(self, cfg: DeadLetterTopicConfig):
        self._cfg = cfg
        self._sent = Metrics.counter("dead_letter_topic", "records_produced")

    def setup(self) -> None:
        self._producer = KafkaProducer(**self._cfg.producer_kwargs())

    def start_bundle(self) -> None:
        self._pending: list = []

    def process(self, row: dict) -> None:
        key, value = dead_letter_message(row)
        self._pending.append(self._producer.send(self._cfg.topic, key=key, value=value))

    def finish_bundle(self) -> None:
        if not self._pending:
            return
        self._producer.flush()
        for future in self._pending:
            future.get(timeout=0)  # raises the send's error, if any
        self._sent.inc(len(self._pending))
        self._pending = []

    def teardown(self) -> None:
        producer = getattr(self, "_producer", None)
        if producer is not None:
            producer.close(timeout=10)


class WriteDeadLettersToKafka(beam.PTransform):
    """PCollection[dead_letters row] -> the dead-letter topic (see `dead_letter_message`).

    At-least-once: a retried bundle re-sends the same key and value, so a consumer that keys by
    `dead_letter_id` (or a compacted topic) sees each dead letter once.
    """

    def __init__(self, cfg: DeadLetterTopicConfig):
        super().__init__()
        self._cfg = cfg

    def expand(self, rows):
        return rows | "ProduceDeadLetters" >> beam.ParDo(_ProduceDeadLettersFn(self._cfg))


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


def publish(
    bootstrap_servers: str,
    topic: str,
    records: Iterator[tuple[bytes | None, bytes]],
    rate_per_s: float = 0.0,
    **producer_kw: Any,
) -> int:
    """Publishes (key, value) pairs in order, optionally capped at a rate; returns the count."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers.split(","),
        linger_ms=5,
        max_request_size=4 * 1024 * 1024,
        **producer_kw,
    )
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
