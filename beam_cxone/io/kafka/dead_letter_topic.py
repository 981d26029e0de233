"""Dead letters can also go to a Kafka topic (`WriteDeadLettersToKafka`): the dead_letters row in its
JSON Lines export form, keyed by `dead_letter_id`, so a replay re-sends the same key and value.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from kafka import KafkaProducer

from beam_cxone.io.jsonl import to_json_line
from beam_cxone.io.kafka.config import consumer_config_from_env
from beam_cxone.tables import DEAD_LETTERS


def dead_letter_message(row: dict) -> tuple[bytes, bytes]:
    """(key, value) of a dead letter on a Kafka topic: key `dead_letter_id`, value the dead_letters row
    in the JSON Lines export form (timestamps ISO-8601 UTC with ms and `Z`), so a consumer of the topic
    and a reader of the export see the same object, and a replay re-sends identical bytes."""
    return row["dead_letter_id"].encode("utf-8"), to_json_line(DEAD_LETTERS, row).encode("utf-8")


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
