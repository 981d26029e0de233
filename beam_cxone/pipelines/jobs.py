"""The two jobs as graphs: streaming (Kafka -> analytics -> Cassandra) and backfill (files or a Kafka time
range -> the same analytics in batch -> Cassandra or JSON Lines). Builders take typed configs and only
build; running, options and runner set-up live in `beam_cxone.commands`.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from beam_cxone.config import AnalyticsConfig
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.cassandra_write import WriteToCassandra
from beam_cxone.io.files import ReadJsonLines
from beam_cxone.io.jsonl import WriteJsonLines
from beam_cxone.io.kafka import DeadLetterTopicConfig
from beam_cxone.io.kafka import KafkaReadConfig
from beam_cxone.io.kafka import ReadFromKafka
from beam_cxone.io.kafka import WriteDeadLettersToKafka
from beam_cxone.pipelines.analytics import Results
from beam_cxone.pipelines.analytics import build_analytics
from beam_cxone.pipelines.file_backfill import FileBackfillPlan
from beam_cxone.pipelines.file_backfill import ReadParsedAndAnalyse

__all__ = ["SinkConfig", "build_backfill", "build_streaming", "write_results"]


@dataclasses.dataclass(frozen=True)
class SinkConfig:
    """Cassandra (idempotent upserts) or a JSON Lines export directory (bounded runs)."""

    kind: str = "cassandra"
    cassandra: CassandraConfig | None = None
    output_dir: str | None = None

    def __post_init__(self):
        if self.kind not in ("cassandra", "jsonl"):
            raise ValueError(f"sink must be cassandra or jsonl, got {self.kind!r}")
        if self.kind == "cassandra" and self.cassandra is None:
            raise ValueError("the cassandra sink needs a Cassandra config")
        if self.kind == "jsonl" and not self.output_dir:
            raise ValueError("the jsonl sink needs --output_dir")


def _label(table_name: str) -> str:
    return "Write" + "".join(part.capitalize() for part in table_name.split("_"))


def write_results(results: Results, sink: SinkConfig,
                  dead_letter_topic: DeadLetterTopicConfig | None = None) -> None:
    """One labelled write per table (`WriteInteractionVolumes`, ...); dead letters also to a Kafka
    topic when one is given (`WriteDeadLettersToKafka`)."""
    for table, rows in results.by_table().items():
        if sink.kind == "cassandra":
            rows | _label(table.name) >> WriteToCassandra(sink.cassandra, table)
        else:
            rows | _label(table.name) >> WriteJsonLines(sink.output_dir, table)
    if dead_letter_topic is not None:
        results.dead_letters | "WriteDeadLettersToKafka" >> WriteDeadLettersToKafka(dead_letter_topic)


def build_streaming(p: beam.Pipeline, kafka: KafkaReadConfig, analytics: AnalyticsConfig,
                    sink: SinkConfig, dead_letter_topic: DeadLetterTopicConfig | None = None) -> Results:
    """Kafka (unbounded, or bounded at the end offsets) -> analytics in streaming mode -> sink."""
    raw = p | "ReadKafka" >> ReadFromKafka(kafka, analytics.parse_settings)
    results = build_analytics(raw, analytics, streaming=True)
    write_results(results, sink, dead_letter_topic)
    return results


def build_backfill(p: beam.Pipeline, analytics: AnalyticsConfig, sink: SinkConfig, *,
                   input_pattern: str | None = None, kafka: KafkaReadConfig | None = None,
                   dead_letter_topic: DeadLetterTopicConfig | None = None,
                   plan: FileBackfillPlan | None = None) -> Results:
    """Files or a bounded Kafka range -> the same analytics in batch -> sink.

    `plan`: files through a checkpoint (`pipelines/file_backfill.py`: each file parsed once and
    saved, so a rerun resumes); `input_pattern`: files read straight into the batch graph."""
    if sum(x is not None for x in (input_pattern, kafka, plan)) != 1:
        raise ValueError("a backfill reads either files (input pattern or plan) or a Kafka range")
    if plan is not None:
        results = p | "ReadParsedAndAnalyse" >> ReadParsedAndAnalyse(plan, analytics)
    elif kafka is not None:
        if not kafka.bounded:
            raise ValueError("a Kafka backfill needs a bounded read (end offsets or a stop timestamp)")
        raw = p | "ReadKafkaRange" >> ReadFromKafka(kafka, analytics.parse_settings)
        results = build_analytics(raw, analytics, streaming=False)
    else:
        raw = p | "ReadFiles" >> ReadJsonLines(input_pattern)
        results = build_analytics(raw, analytics, streaming=False)
    write_results(results, sink, dead_letter_topic)
    return results
