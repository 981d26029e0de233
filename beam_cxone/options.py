"""Pipeline options (Beam's `PipelineOptions` convention) and their conversion to typed configs.

Every option has a default or is validated explicitly; all errors are collected and reported at once,
before anything is submitted. Secrets never come from here: Kafka SASL, Cassandra and CXone credentials
are read from the environment (or a secrets file) by the module that needs them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING
from typing import Any

from apache_beam.options.pipeline_options import KafkaStreamsRunnerOptions
from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone import defaults
from beam_cxone.config import AnalyticsConfig
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.kafka import DeadLetterTopicConfig
from beam_cxone.io.kafka import KafkaReadConfig
from beam_cxone.parse import DEFAULT_FAILURE_REASONS
from beam_cxone.parse import DEFAULT_MAX_RECORD_BYTES
from beam_cxone.time_args import parse_time_ms

if TYPE_CHECKING:  # the job graphs' module: imported only when a job is configured
    from beam_cxone.pipelines.jobs import SinkConfig

__all__ = [
    "AnalyticsOptions",
    "CassandraOptions",
    "JobOptions",
    "JobSettings",
    "KafkaOptions",
    "MonitoringOptions",
    "OptionsError",
    "analytics_config",
    "cassandra_config",
    "dead_letter_topic_config",
    "kafka_config",
    "job_settings",
    "parse_time_ms",
]


class OptionsError(ValueError):
    """Invalid options; the message lists every problem, one per line."""


class KafkaOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        g = parser.add_argument_group("kafka")
        # --bootstrap_servers is Beam's own (KafkaStreamsRunnerOptions, default localhost:9092): reused.
        g.add_argument("--topic", default="cxone-data-actions", help="Topic to read. Default cxone-data-actions.")
        g.add_argument("--group_id", default="beam-cxone",
                       help="Consumer group for committed offsets (lag reporting, start=committed).")
        g.add_argument("--start_position", default="earliest",
                       choices=["earliest", "latest", "committed", "timestamp"],
                       help="Where a new job starts reading. Default earliest.")
        g.add_argument("--start_timestamp", default=None,
                       help="With --start_position=timestamp, or a backfill's range start: RFC 3339 or epoch ms.")
        g.add_argument("--stop_timestamp", default=None,
                       help="Bounded read up to this time (RFC 3339 or epoch ms), exclusive.")
        g.add_argument("--bounded", action="store_true",
                       help="Stop at the end offsets seen at start (or --stop_timestamp) instead of streaming.")
        g.add_argument("--max_events_per_second", type=float, default=0.0,
                       help="Read rate cap for the whole job, events/s, split across partitions. 0 = no cap.")
        g.add_argument("--out_of_orderness_s", type=float, default=defaults.OUT_OF_ORDERNESS_S,
                       help="Bounded out-of-orderness of the event-time watermark, seconds. "
                            f"Default {defaults.OUT_OF_ORDERNESS_S:g}.")
        g.add_argument("--idle_timeout_s", type=float, default=defaults.IDLE_TIMEOUT_S,
                       help="A partition caught up this long (wall time) stops holding the others back; its "
                            f"watermark moves only with theirs (event time). Default {defaults.IDLE_TIMEOUT_S:g}.")
        g.add_argument("--wall_clock_idle", action="store_true",
                       help="Let an idle partition's watermark follow the wall clock, so windows close on a "
                            "quiet topic; RISK: what the feed sends after a pause longer than the lateness "
                            "becomes `late` dead letters. Default off.")
        g.add_argument("--resume_replay_s", type=float, default=-1.0,
                       help="With --start_position=committed: -1 (default) rebuilds the job's state by "
                            "replaying everything the topic retains (exact); N >= 0 replays only N s of Kafka "
                            "record time before the committed offsets (faster, exact only when N covers "
                            "in-flight output, windows, patterns and each customer's last profile update).")
        g.add_argument("--dead_letter_topic", default=None,
                       help="Also produce dead letters (JSON, key dead_letter_id) to this Kafka topic. Default none.")


class AnalyticsOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        g = parser.add_argument_group("analytics")
        g.add_argument("--window_size_s", type=int, default=defaults.WINDOW_SIZE_S,
                       help=f"Volume window size, seconds. Default {defaults.WINDOW_SIZE_S}.")
        g.add_argument("--allowed_lateness_s", type=int, default=defaults.ALLOWED_LATENESS_S,
                       help="Events later than this behind the watermark are dead letters (late). "
                            f"Default {defaults.ALLOWED_LATENESS_S}.")
        g.add_argument("--dedup_ttl_s", type=int, default=defaults.DEDUP_TTL_S,
                       help="How long (event time) an eventId is remembered for dedup, seconds. "
                            f"Default {defaults.DEDUP_TTL_S}.")
        g.add_argument("--profile_ttl_s", type=int, default=defaults.PROFILE_TTL_S,
                       help="Idle customers' state is cleared after this much event time, seconds. "
                            f"Default {defaults.PROFILE_TTL_S // 86400} days.")
        g.add_argument("--failure_count", type=int, default=defaults.FAILURE_COUNT,
                       help="Consecutive failures before a callback that raise an alert. "
                            f"Default {defaults.FAILURE_COUNT}.")
        g.add_argument("--pattern_within_s", type=float, default=defaults.PATTERN_WITHIN_S,
                       help="Callback must come less than this after the first failure, seconds. "
                            f"Default {defaults.PATTERN_WITHIN_S:g}.")
        g.add_argument("--failure_reasons", default=",".join(DEFAULT_FAILURE_REASONS),
                       help="endReason values that make a CONTACT_ENDED a failure, comma-separated.")
        g.add_argument("--max_record_bytes", type=int, default=DEFAULT_MAX_RECORD_BYTES,
                       help="Larger records are dead letters (too_large). Default 1 MiB.")


class CassandraOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        g = parser.add_argument_group("cassandra")
        g.add_argument("--cassandra_hosts", default="127.0.0.1", help="Contact points, comma-separated.")
        g.add_argument("--cassandra_port", type=int, default=9042, help="Native protocol port. Default 9042.")
        g.add_argument("--cassandra_keyspace", default="cxone_analytics", help="Keyspace. Default cxone_analytics.")
        g.add_argument("--cassandra_consistency", default="LOCAL_QUORUM",
                       help="Write consistency level name. Default LOCAL_QUORUM.")
        g.add_argument("--cassandra_max_in_flight", type=int, default=100,
                       help="Concurrent writes per writer. Default 100.")
        g.add_argument("--cassandra_replication_factor", type=int, default=1,
                       help="SimpleStrategy replication factor when the schema creates the keyspace. Default 1.")
        g.add_argument("--cassandra_tls", action="store_true", help="Use TLS to Cassandra.")
        g.add_argument("--cassandra_ca_file", default=None, help="CA bundle for --cassandra_tls.")


class JobOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        g = parser.add_argument_group("job")
        g.add_argument("--run_seconds", type=float, default=0.0,
                       help="Drain a streaming job this many seconds after its read starts (the "
                            "runner's start-up does not count): the read ends, every window and timer "
                            "fires, the job finishes (demos, tests, replays). 0 = run until stopped.")
        g.add_argument("--sink", default="cassandra", choices=["cassandra", "jsonl"],
                       help="Where results go. jsonl (bounded runs only) writes --output_dir.")
        g.add_argument("--output_dir", default=None, help="Directory of the JSON Lines export.")
        g.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                       help="Log level. Per-record logs only at DEBUG.")


class MonitoringOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        g = parser.add_argument_group("monitoring (streaming job)")
        g.add_argument("--status_interval_s", type=float, default=10.0,
                       help="Print a status line (read rate, consumer lag, rows written, dead letters, "
                            "alerts) on stderr every this many seconds. 0 = off. Default 10.")
        g.add_argument("--metrics_port", type=int, default=0,
                       help="Serve the job's metrics for Prometheus on http://127.0.0.1:PORT/metrics. "
                            "0 = off (default).")


def _collect(errors: list[str], label: str, build):
    try:
        return build()
    except (ValueError, TypeError) as err:
        errors.append(f"{label}: {err}")
        return None


def kafka_config(options: PipelineOptions, *, bounded: bool | None = None) -> KafkaReadConfig:
    k = options.view_as(KafkaOptions)
    a = options.view_as(AnalyticsOptions)
    errors: list[str] = []
    start_ms = _collect(errors, "--start_timestamp", lambda: parse_time_ms(k.start_timestamp))
    stop_ms = _collect(errors, "--stop_timestamp", lambda: parse_time_ms(k.stop_timestamp))
    is_bounded = k.bounded if bounded is None else bounded
    cfg = _collect(errors, "kafka", lambda: KafkaReadConfig(
        bootstrap_servers=options.view_as(KafkaStreamsRunnerOptions).bootstrap_servers,
        topic=k.topic,
        group_id=k.group_id or None,
        start=k.start_position,
        start_timestamp_ms=start_ms,
        bounded=is_bounded or stop_ms is not None,
        stop_timestamp_ms=stop_ms,
        max_events_per_second=k.max_events_per_second,
        out_of_orderness_ms=int(k.out_of_orderness_s * 1000),
        allowed_lateness_ms=a.allowed_lateness_s * 1000,
        idle_timeout_ms=int(k.idle_timeout_s * 1000),
        max_record_bytes=a.max_record_bytes,
        resume_replay_ms=-1 if k.resume_replay_s < 0 else int(k.resume_replay_s * 1000),
        wall_clock_idle=k.wall_clock_idle,
        dedup_ttl_ms=a.dedup_ttl_s * 1000,
    ))
    if errors:
        raise OptionsError("\n".join(errors))
    return cfg


def dead_letter_topic_config(options: PipelineOptions) -> DeadLetterTopicConfig | None:
    """The Kafka dead-letter topic (same cluster as the read), or None without --dead_letter_topic."""
    topic = options.view_as(KafkaOptions).dead_letter_topic
    if not topic:
        return None
    return DeadLetterTopicConfig(options.view_as(KafkaStreamsRunnerOptions).bootstrap_servers, topic)


def analytics_config(options: PipelineOptions) -> AnalyticsConfig:
    a = options.view_as(AnalyticsOptions)
    reasons = tuple(r.strip() for r in (a.failure_reasons or "").split(",") if r.strip())
    try:
        return AnalyticsConfig(
            window_size_s=a.window_size_s,
            allowed_lateness_s=a.allowed_lateness_s,
            dedup_ttl_s=a.dedup_ttl_s,
            profile_ttl_s=a.profile_ttl_s,
            failure_count=a.failure_count,
            pattern_within_s=a.pattern_within_s,
            failure_reasons=reasons,
            max_record_bytes=a.max_record_bytes,
        )
    except ValueError as err:
        raise OptionsError(str(err)) from None


def cassandra_config(options: PipelineOptions) -> CassandraConfig:
    c = options.view_as(CassandraOptions)
    try:
        return CassandraConfig(
            hosts=tuple(h.strip() for h in c.cassandra_hosts.split(",") if h.strip()),
            port=c.cassandra_port,
            keyspace=c.cassandra_keyspace,
            consistency=c.cassandra_consistency,
            max_in_flight=c.cassandra_max_in_flight,
            tls=c.cassandra_tls,
            ca_file=c.cassandra_ca_file,
            replication={"class": "SimpleStrategy",
                         "replication_factor": c.cassandra_replication_factor},
        )
    except ValueError as err:
        raise OptionsError(f"cassandra: {err}") from None


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """What one job reads, computes and writes: the typed form of its command line."""

    analytics: AnalyticsConfig
    sink: SinkConfig
    kafka: KafkaReadConfig | None  # None: a backfill over files
    dead_letter_topic: DeadLetterTopicConfig | None


def job_settings(options: PipelineOptions, *, kafka: bool = True,
                 bounded: bool | None = None) -> JobSettings:
    """The job's configs (the Kafka read unless `kafka` is False: files), every invalid option
    reported in one OptionsError, one problem per line."""
    from beam_cxone.pipelines.jobs import SinkConfig

    job = options.view_as(JobOptions)
    errors: list[str] = []
    built: dict[str, Any] = {}
    steps = (("kafka", kafka, lambda: kafka_config(options, bounded=bounded)),
             ("analytics", True, lambda: analytics_config(options)),
             ("cassandra", job.sink == "cassandra", lambda: cassandra_config(options)))
    for name, wanted, build in steps:
        built[name] = None
        if wanted:
            try:
                built[name] = build()
            except OptionsError as err:
                errors.append(str(err))
    try:
        sink = SinkConfig(kind=job.sink, cassandra=built["cassandra"], output_dir=job.output_dir)
    except ValueError as err:
        if built["cassandra"] is not None or job.sink != "cassandra":  # else: already reported
            errors.append(str(err))
    if errors:
        raise OptionsError("\n".join(errors))
    return JobSettings(analytics=built["analytics"], sink=sink, kafka=built["kafka"],
                       dead_letter_topic=dead_letter_topic_config(options))
