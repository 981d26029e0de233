"""Producer-side helpers (generator, tests, benchmarks): create a topic, read its end offsets, publish.
SASL/SSL settings come from the environment, as for the read (`consumer_config_from_env`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer
from kafka import KafkaProducer
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from beam_cxone.io.kafka.config import consumer_config_from_env
from beam_cxone.throttle import TokenBucket


def _security() -> dict[str, Any]:
    return dict(consumer_config_from_env())


def create_topic(bootstrap_servers: str, topic: str, partitions: int = 1) -> bool:
    """Creates the topic if missing; returns whether it was created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","), **_security())
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        return True
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()


def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","), **_security())
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
        **{**_security(), **producer_kw},
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
