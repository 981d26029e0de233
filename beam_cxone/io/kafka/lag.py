"""Consumer lag of the job's group, polled from the launcher (the status line, the stall warning and
the Prometheus endpoint of `beam_cxone.monitoring`): per partition, the end offset and the group's
committed offset, and the Kafka timestamp of a record.

The read commits, at the start of each call, the offset the call resumes from (see `read.py`), so the
committed offset is a slightly trailing measure of what the job has read, never ahead of it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kafka import KafkaConsumer
from kafka import TopicPartition

from beam_cxone.io.kafka.config import consumer_config_from_env

__all__ = ["GroupLagProbe", "PartitionLag", "group_offsets"]

_TIMEOUT_MS = 3_000  # each broker call of a poll: an outage costs the status line a few seconds


@dataclasses.dataclass(frozen=True)
class PartitionLag:
    """One partition: its oldest retained offset, its end offset (the next to be written) and the
    group's committed offset (None before the group's first commit on it)."""

    partition: int
    begin: int
    end: int
    committed: int | None

    @property
    def lag(self) -> int:
        """Records waiting: end - committed; a partition the group never committed counts every
        retained record (where a job started from `earliest` begins)."""
        start = self.begin if self.committed is None else max(self.committed, self.begin)
        return max(0, self.end - start)


class GroupLagProbe:
    """A consumer kept open between polls (it joins no group: it only fetches offsets and, for the
    record-time lag, one record). Not thread-safe: one poller thread uses it."""

    def __init__(self, bootstrap_servers: str, topic: str, group_id: str,
                 consumer_config: tuple[tuple[str, Any], ...] = ()):
        self.topic = topic
        self.group_id = group_id
        kwargs: dict[str, Any] = dict(
            bootstrap_servers=bootstrap_servers.split(","),
            group_id=group_id,
            enable_auto_commit=False,  # never commits: only reads the group's offsets
            reconnect_backoff_max_ms=2_000,
            # record_time_ms wants one record: a small fetch (the broker still sends a larger first batch)
            max_partition_fetch_bytes=64 * 1024,
            fetch_max_bytes=64 * 1024,
        )
        kwargs.update(dict(consumer_config_from_env()))  # SASL/SSL, as the read's consumer
        kwargs.update(dict(consumer_config))
        self._consumer = KafkaConsumer(**kwargs)
        self._times: dict[tuple[int, int], int | None] = {}

    def partitions(self) -> list[TopicPartition]:
        numbers = self._consumer.partitions_for_topic(self.topic) or ()
        return [TopicPartition(self.topic, p) for p in sorted(numbers)]

    def offsets(self) -> list[PartitionLag]:
        """Every partition's (begin, end, committed), in partition order."""
        tps = self.partitions()
        if not tps:
            return []
        begins = self._consumer.beginning_offsets(tps, timeout_ms=_TIMEOUT_MS)
        ends = self._consumer.end_offsets(tps, timeout_ms=_TIMEOUT_MS)
        out = []
        for tp in tps:
            committed = self._consumer.committed(tp, timeout_ms=_TIMEOUT_MS)
            out.append(PartitionLag(tp.partition, begins[tp], ends[tp], committed))
        return out

    def record_time_ms(self, partition: int, offset: int) -> int | None:
        """The Kafka timestamp (producer's CreateTime, or the broker's LogAppendTime) of the record
        at `offset` (of the next one when `offset` holds a transaction marker), or None when none came
        within a second. Remembered, None included: the caller asks again only for another offset."""
        key = (partition, offset)
        if key in self._times:
            return self._times[key]
        tp = TopicPartition(self.topic, partition)
        found = None
        try:
            self._consumer.assign([tp])
            self._consumer.seek(tp, offset)
            for rec in self._consumer.poll(timeout_ms=1_000, max_records=1).get(tp, []):
                if rec.offset >= offset and rec.timestamp is not None and rec.timestamp >= 0:
                    found = rec.timestamp
        finally:
            self._consumer.assign([])
        if len(self._times) > 10_000:
            self._times.clear()
        self._times[key] = found
        return found

    def close(self) -> None:
        self._consumer.close()


def group_offsets(bootstrap_servers: str, topic: str, group_id: str) -> dict[int, tuple[int, int | None]]:
    """partition -> (end offset, the group's committed offset or None): one look, then closed."""
    probe = GroupLagProbe(bootstrap_servers, topic, group_id)
    try:
        return {p.partition: (p.end, p.committed) for p in probe.offsets()}
    finally:
        probe.close()
