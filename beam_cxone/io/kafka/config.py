"""What a Kafka read is configured with, and which broker errors it waits out: shared by the read,
its offsets, the dead-letter producer and the command line, without the read's machinery."""

from __future__ import annotations

import dataclasses
import os
import threading
import uuid
from typing import Any

from kafka.errors import KafkaError

from beam_cxone.secret_files import check_secret_file

START_POSITIONS = ("earliest", "latest", "committed", "timestamp")


@dataclasses.dataclass(frozen=True)
class KafkaPartition:
    topic: str
    partition: int


# Per worker process, the wall time (epoch ms) of each drained job's first read call, by Drain.run.
_FIRST_READ_MS: dict[str, int] = {}
_FIRST_READ_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Drain:
    """The read ends `after_ms` of wall time after its first call in a worker process: the runner's
    start-up (Prism, the SDK worker) does not count. `run` names the job, so that two jobs in one
    process count apart. A worker process that starts later (a restart) counts from its own first
    call."""

    after_ms: int
    run: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)

    def due(self, now_ms: int) -> bool:
        with _FIRST_READ_LOCK:
            first = _FIRST_READ_MS.setdefault(self.run, now_ms)
        return now_ms - first >= self.after_ms


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
    # Streaming only: when every partition's read ends, so the watermark goes to the end of time and
    # every window and timer fires before the job finishes (a drain, not a cancel).
    drain: Drain | None = None
    consumer_config: tuple[tuple[str, Any], ...] = ()  # non-secret pass-through consumer settings
    # start=committed: rewind by this much Kafka record time; -1 replays everything retained (exact).
    resume_replay_ms: int = -1
    # An idle partition's watermark follows the wall clock (opt-in; see beam_cxone.watermarks).
    wall_clock_idle: bool = False
    # Streaming: copies of an event id within this much event time are flagged as duplicates.
    dedup_ttl_ms: int = 600_000

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
        if self.resume_replay_ms < -1:
            errors.append("resume_replay_ms must be >= 0, or -1 to replay everything retained")
        if self.dedup_ttl_ms <= 0:
            errors.append("dedup_ttl_ms must be > 0")
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
    """SASL/SSL settings from the environment (never the command line), e.g. KAFKA_SASL_PLAIN_PASSWORD.

    Every Kafka client of the project takes these (read, dead-letter producer, lag monitor, topic
    admin, generator). A KAFKA_SSL_KEYFILE that group or others can read raises SecretFileError."""
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
    keyfile = dict(found).get("ssl_keyfile")
    if keyfile:  # a client private key others can read is refused (ValueError, one line)
        check_secret_file(keyfile, f"Kafka client key ({prefix}SSL_KEYFILE)")
    return tuple(found)


def is_transient(err: BaseException) -> bool:
    """A Kafka error worth waiting out (broker down, leader moving, a timeout); others are permanent."""
    return isinstance(err, KafkaError) and bool(getattr(err, "retriable", False))
