"""Partition-parallel splittable Kafka read: each partition's records at their event time.

One restriction per partition (an offset range), so the runner holds the offsets in its checkpoints and a
restarted job resumes where it stopped. Each call reads a bounded amount and returns with
`defer_remainder`, because portable runners never split an unbounded Python SDF themselves. The
watermark is event time (see `beam_cxone.watermarks`); a call commits the offset it resumes from to the
consumer group (the runner has checkpointed what came before it), so lag shows in the usual Kafka
tools without ever being the source of truth: a committed restart replays the retained log.

Broker faults: Prism fails the whole job when a bundle raises (measured with 2.77: no bundle retry),
so a retriable Kafka error (broker down, leader moving, a request timing out) never leaves `process`:
the call backs off and defers the rest of its restriction, and the runner resumes it from the last
claimed offset. Non-retriable errors (authorization, a missing topic at start-up) still fail loudly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.core import WatermarkEstimatorProvider
from apache_beam.utils.timestamp import Duration
from apache_beam.utils.timestamp import Timestamp
from kafka import KafkaConsumer
from kafka import TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from beam_cxone.first_seen import FirstSeen
from beam_cxone.io.kafka.config import KafkaPartition
from beam_cxone.io.kafka.config import KafkaReadConfig
from beam_cxone.io.kafka.config import is_transient
from beam_cxone.io.kafka.offsets import PartitionOffsets
from beam_cxone.io.kafka.offsets import partitions_of
from beam_cxone.io.kafka.throttle import shared_throttle
from beam_cxone.io.kafka.watermark_estimator import EventTimeEstimatorProvider
from beam_cxone.io.kafka.watermark_estimator import wall_ms
from beam_cxone.parse import ParseSettings
from beam_cxone.parse import record_identity
from beam_cxone.parse import valid_record
from beam_cxone.records import RawRecord
from beam_cxone.watermarks import PartitionClock

_LOG = logging.getLogger(__name__)
# Blocking client calls inside `process` (end offsets, commits) give up after this long, so an outage
# costs a call a couple of seconds, not the client's 30 s request timeout; the call then backs off.
_CALL_TIMEOUT_MS = 2_000
_BACKOFF_S = 1.0
# Each partition's duplicate filter in this worker process, kept across calls (see `_first_seen`).
_FIRST_SEEN: dict[tuple[str, int], FirstSeen] = {}
_FIRST_SEEN_LOCK = threading.Lock()


class _ReadPartitionFn(beam.DoFn, RestrictionProvider, WatermarkEstimatorProvider):
    """Reads one partition's offset range in bounded chunks, emitting RawRecords at their event time.

    It is its own restriction provider (offset ranges) and watermark-estimator provider (event time),
    delegating to `PartitionOffsets` and `EventTimeEstimatorProvider`.
    """

    def __init__(self, cfg: KafkaReadConfig, partitions: tuple[int, ...] = (0,),
                 settings: ParseSettings | None = None):
        self._cfg = cfg
        self._settings = settings or ParseSettings(max_record_bytes=cfg.max_record_bytes)
        self._offsets = PartitionOffsets(cfg)
        self._estimators = EventTimeEstimatorProvider(cfg, tuple(partitions))
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
        self._throttle = shared_throttle(self._cfg, self._partitions)
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
        drain = self._cfg.drain
        return drain is not None and drain.due(wall_ms())

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

    def _first_seen(self, tp: TopicPartition, start: int, estimator) -> FirstSeen:
        """The partition's duplicate filter, continuing exactly at `start`.

        Kept per process across calls (a call resumes where the last one stopped). A reader that
        starts cold (a fresh process, a checkpoint restored elsewhere) rebuilds it from the first
        offset the checkpointed filter remembered, reading without emitting."""
        key = (tp.topic, tp.partition)
        with _FIRST_SEEN_LOCK:
            seen = _FIRST_SEEN.get(key)
        if seen is not None and seen.next_offset == start:
            return seen
        seen = FirstSeen(self._cfg.dedup_ttl_ms)
        warm_from = estimator.dedup_from()
        if warm_from is not None and warm_from < start:
            self._rebuild(tp, seen, warm_from, start)
        seen.next_offset = start
        with _FIRST_SEEN_LOCK:
            _FIRST_SEEN[key] = seen
        return seen

    def _rebuild(self, tp: TopicPartition, seen: FirstSeen, begin: int, end: int) -> None:
        self._consumer.assign([tp])
        self._consumer.seek(tp, begin)
        position = begin
        while position < end:
            batch = self._consumer.poll(timeout_ms=1_000, max_records=500).get(tp, [])
            for rec in batch:
                if rec.offset >= end:
                    break
                identity = record_identity(rec.value, self._settings)
                if identity is not None:
                    seen.is_duplicate(identity[0], identity[1], rec.offset)
            if batch:
                position = batch[-1].offset + 1
            elif self._consumer.position(tp, timeout_ms=_CALL_TIMEOUT_MS) >= end:
                break
        _LOG.info("kafka read %s/%d: duplicate filter rebuilt from offsets [%d, %d)",
                  tp.topic, tp.partition, begin, end)

    def _classify(self, rec, clock: PartitionClock, seen: FirstSeen | None):
        """(the valid record or None, late, duplicate).

        Only valid records move the watermark: a malformed record with an absurd time must not make
        every later record late. A late record is not remembered as seen: it is a dead letter."""
        record = valid_record(rec.value, self._settings)
        if record is None:
            if seen is not None:
                seen.skip(rec.offset)
            return None, False, False
        if self._cfg.bounded:
            return record, False, False
        event_ms = record.event_time_ms
        if clock.observe(event_ms):
            seen.skip(rec.offset)
            return record, True, False
        return record, False, seen.is_duplicate(record.event_id, event_ms, rec.offset)

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
        seen = None
        if not cfg.bounded:
            seen = self._first_seen(tp, restriction.start, estimator)
            estimator.attach(seen)
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
                    if emitted and not cfg.bounded:
                        # Caught up after reading: return now, so the runner sees the watermark
                        # these records moved (a live topic's call used to last its full second).
                        break
                    self._on_empty_poll(tp, clock, estimator)
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
                record, late, duplicate = self._classify(rec, clock, seen)
                if late:
                    self._late.inc()
                if record is not None:
                    event_ms = record.event_time_ms
                else:
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
                        duplicate=duplicate,
                        parsed=None if record is None else (self._settings, record),
                    ),
                    Timestamp(micros=event_ms * 1000),
                )
                if self._throttle is not None and time.monotonic() >= deadline:
                    break  # throttled: the rest of the batch is read again by the next call
            else:
                if not cfg.bounded and self._caught_up(tp, records[-1].offset + 1):
                    break  # live: return now, so the runner sees the watermark these records moved
                continue
            break
        tracker.defer_remainder(Duration(seconds=0) if emitted else Duration(seconds=0.2))

    def _caught_up(self, tp: TopicPartition, next_offset: int) -> bool:
        """Whether the partition's high watermark of the last fetch (no request: the consumer keeps
        it) has been reached. A call on a live topic then ends instead of lasting its full
        `max_seconds_per_call`, which held the watermark, and every window's row, back by up to that."""
        highwater = self._consumer.highwater(tp)
        return highwater is not None and next_offset >= highwater

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

    def _on_empty_poll(self, tp: TopicPartition, clock: PartitionClock, estimator) -> None:
        if self._cfg.bounded:
            return
        position = self._consumer.position(tp, timeout_ms=_CALL_TIMEOUT_MS)
        end = self._consumer.end_offsets([tp], timeout_ms=_CALL_TIMEOUT_MS)[tp]
        now = wall_ms()
        clock.on_poll_empty(now, caught_up=position is not None and position >= end)
        estimator.vouch_if_idle(now)

    def _on_broker_error(self, tp: TopicPartition, err: KafkaError, clock: PartitionClock) -> None:
        """A retriable broker error: count it; while the broker cannot tell whether the partition is
        caught up, it is not idle."""
        self._broker_errors.inc()
        _LOG.warning("kafka read %s: %s, backing off %.1f s", tp, type(err).__name__, _BACKOFF_S)
        if not self._cfg.bounded:
            clock.on_poll_empty(wall_ms(), caught_up=False)


@beam.DoFn.unbounded_per_element()
class _ReadPartitionUnboundedFn(_ReadPartitionFn):
    """The streaming variant: the runner treats each partition's restriction as unbounded."""


class ReadFromKafka(beam.PTransform):
    """Reads `cfg.topic` as RawRecords timestamped with their event time.

    Output: PCollection[RawRecord]; `late` is set on records behind the watermark by more than the
    allowed lateness (streaming only). Unbounded unless `cfg.bounded`.
    """

    def __init__(self, cfg: KafkaReadConfig, parse_settings: ParseSettings | None = None):
        """`parse_settings`: the job's, so that the records the read parses for their event time are
        handed on parsed (`RawRecord.parsed`) instead of being parsed again."""
        super().__init__()
        self._cfg = cfg
        self._parse_settings = parse_settings

    def expand(self, pbegin):
        cfg = self._cfg
        partitions = partitions_of(cfg)
        fn_class = _ReadPartitionFn if cfg.bounded else _ReadPartitionUnboundedFn
        numbers = tuple(p.partition for p in partitions)
        return (
            pbegin
            | "ListPartitions" >> beam.Create(partitions, reshuffle=False)
            | "ReadPartitions" >> beam.ParDo(fn_class(cfg, numbers, self._parse_settings))
        )
