"""Kafka with kafka-python: the only package that imports kafka, so the client stays swappable and its
settings (SASL/SSL from the environment, timeouts, reconnect back-off) are decided in one place."""

from beam_cxone.io.kafka.admin import create_topic
from beam_cxone.io.kafka.admin import end_offsets
from beam_cxone.io.kafka.admin import publish
from beam_cxone.io.kafka.config import START_POSITIONS
from beam_cxone.io.kafka.config import KafkaPartition
from beam_cxone.io.kafka.config import KafkaReadConfig
from beam_cxone.io.kafka.config import consumer_config_from_env
from beam_cxone.io.kafka.config import is_transient
from beam_cxone.io.kafka.dead_letter_topic import DeadLetterTopicConfig
from beam_cxone.io.kafka.dead_letter_topic import WriteDeadLettersToKafka
from beam_cxone.io.kafka.dead_letter_topic import dead_letter_message
from beam_cxone.io.kafka.offsets import PartitionOffsets
from beam_cxone.io.kafka.offsets import partitions_of
from beam_cxone.io.kafka.offsets import resume_offset
from beam_cxone.io.kafka.read import ReadFromKafka

__all__ = [
    "START_POSITIONS",
    "DeadLetterTopicConfig",
    "KafkaPartition",
    "KafkaReadConfig",
    "PartitionOffsets",
    "ReadFromKafka",
    "WriteDeadLettersToKafka",
    "consumer_config_from_env",
    "create_topic",
    "dead_letter_message",
    "end_offsets",
    "is_transient",
    "partitions_of",
    "publish",
    "resume_offset",
]
