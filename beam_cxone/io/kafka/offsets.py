"""Where each partition's read starts and stops, and the offset ranges the runner checkpoints: one
restriction per partition, so a restarted job resumes where it stopped.

Start positions: earliest, latest, committed, or a timestamp. Bounded mode stops at the end offsets seen
at start, or at a timestamp (backfills).

Resuming from the consumer group (`start=committed`): Prism keeps no durable checkpoint across a job
restart, so a restarted job rebuilds its state from the log. By default (`resume_replay_ms` = -1) it
replays everything the topic retains: every window, watermark, duplicate and profile is rebuilt exactly
as the uninterrupted run built it, and the idempotent upserts rewrite the same rows, whatever moment the
old job died at and whatever had reached Cassandra. A bounded margin of Kafka record time
(`resume_replay_ms` >= 0, see `resume_offset`) restarts faster but is exact only when it covers the
old job's output lag, every in-flight window and pattern, and each customer's last profile update.
While a job replays, it never commits below the offsets it resumed from.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from apache_beam.io.restriction_trackers import OffsetRange
from apache_beam.io.restriction_trackers import OffsetRestrictionTracker
from apache_beam.transforms.core import RestrictionProvider
from kafka import KafkaConsumer
from kafka import TopicPartition

from beam_cxone.io.kafka.config import KafkaPartition
from beam_cxone.io.kafka.config import KafkaReadConfig

_LOG = logging.getLogger(__name__)
# How long start-up waits for the record whose Kafka timestamp anchors a committed resume.
_ANCHOR_FETCH_S = 10.0


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
    everything retained is replayed, which costs time but loses nothing. `replay_ms` < 0: `begin`.

    Example: offsets 0..99 written one per second (timestamps 1000 + i s), committed 80, replay
    120 s: anchor offset 79 at 1079 s, first offset at >= 959 s is 0 -> 0. Replay 10 s -> offset 69.
    """
    if committed is None or replay_ms < 0:
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
    if committed is not None and replay_ms < 0:
        _LOG.info("kafka read %s/%d: resuming the group (committed %d) by replaying everything retained "
                  "from offset %d", tp.topic, tp.partition, committed, begin)
        return begin
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


class PartitionOffsets(RestrictionProvider):
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


def partitions_of(cfg: KafkaReadConfig) -> list[KafkaPartition]:
    consumer = KafkaConsumer(**cfg.consumer_kwargs(with_group=False))
    try:
        partitions = consumer.partitions_for_topic(cfg.topic)
    finally:
        consumer.close()
    if not partitions:
        raise ValueError(f"Kafka topic {cfg.topic!r} does not exist or has no partitions")
    return [KafkaPartition(cfg.topic, p) for p in sorted(partitions)]
