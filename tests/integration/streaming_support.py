"""Running the streaming job against the real stack, for integration tests: a generated trace, its
expected rows from the independent reference, the job as a subprocess, publishing, reading rows back.

Shared by the streaming, fault and stream-equals-backfill tests, so each states only its scenario.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka import KafkaProducer
from kafka import TopicPartition

from beam_cxone.generator import GeneratorConfig
from beam_cxone.generator import generate
from beam_cxone.io.cassandra_schema import read_rows
from beam_cxone.tables import TABLES
from tests.reference import iso
from tests.reference import raw_lines
from tests.reference import reference

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 3
RESULT_TABLES = ("interaction_volumes", "pattern_alerts", "customer_profiles")
# Columns the pipeline stamps with the wall clock are left out of the comparison.
STAMPS = {"interaction_volumes": {"updated_at"}, "pattern_alerts": {"detected_at", "alert_id"}}
ADVANCE_OFFSET_MS = 10 * 60 * 1000


# ----- the trace and its expected rows -----------------------------------------------------------


def trace(count: int, seed: int) -> tuple[list[tuple[bytes | None, bytes]], int]:
    """(key, value) pairs of a generated trace and the event time of its advance records."""
    cfg = GeneratorConfig(count=count, seed=seed)
    records = [(r.key, r.value) for r in generate(cfg)]
    last_ms = cfg.start_ms + int(cfg.count / cfg.events_per_second_event_time * 1000) + 60_000
    return records, last_ms + ADVANCE_OFFSET_MS


def advance_records(advance_ms: int) -> list[tuple[int, bytes]]:
    """One valid record per partition far later than the trace: the watermark passes everything."""
    out = []
    for p in range(PARTITIONS):
        advance = {
            "eventId": f"advance-{p}",
            "eventTime": advance_ms,
            "contactId": f"adv-{p}",
            "channel": "voice",
            "eventType": "CONTACT_STARTED",
        }
        out.append((p, json.dumps(advance).encode()))
    return out


def expected_rows(values: list[bytes]) -> dict[str, list[str]]:
    ref = reference(raw_lines(values))
    out = {}
    for table in RESULT_TABLES:
        out[table] = sorted(
            json.dumps(
                {k: v for k, v in r.items() if k not in STAMPS.get(table, ())}, sort_keys=True
            )
            for r in ref[table]
        )
    return out


def expected_dead_letters(values: list[bytes]) -> list[tuple[str, str]]:
    """(reason, payload) of every dead letter the reference finds (sources differ: file vs Kafka)."""
    return sorted((d.reason, d.payload) for d in reference(raw_lines(values))["dead_letters"])


def export(table: str, row: dict) -> dict:
    out = {}
    for name, cql_type in TABLES[table].columns:
        if name in STAMPS.get(table, ()):
            continue
        value = row[name]
        out[name] = iso(value) if cql_type == "timestamp" else value
    return out


def table_rows(cfg, before_ms: int) -> dict[str, list[str]]:
    got = {}
    for table in RESULT_TABLES:
        rows = read_rows(cfg, TABLES[table])
        if table == "interaction_volumes":
            rows = [r for r in rows if r["window_start"] < before_ms]
        got[table] = sorted(json.dumps(export(table, r), sort_keys=True) for r in rows)
    return got


# ----- the job and the broker --------------------------------------------------------------------


class Job:
    """The streaming job as a subprocess; its output goes to a file (a pipe nobody reads can fill
    up and stall the job while the broker is down and the client logs its retries)."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None):
        """`env`: the job's whole environment (default: this process's), e.g. with credentials."""
        self.log_path = log_path
        self._log = log_path.open("ab")
        # A session of its own: stopping the job also stops the Prism process it started.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "beam_cxone", *args],
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"job exited with {self.proc.returncode}:\n{self.output()[-4000:]}")

    def kill(self) -> None:
        """kill -9 of the job's Python process and the Prism it started (its process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        """Stops the job the hard way (SIGTERM to its process group: no drain, no final metrics)."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._log.close()


# ----- waiting on conditions ------------------------------------------------------------------------


def group_offsets(bootstrap: str, topic: str, group: str, partitions: int = PARTITIONS,
                  client_config: dict | None = None) -> dict[int, int | None]:
    """`client_config`: extra kafka-python settings (SASL/SSL of a secured broker)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                             **(client_config or {}))
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str, partitions: int = PARTITIONS,
                client_config: dict | None = None) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, **(client_config or {}))
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def wait_for(predicate, timeout_s: float, job: Job, interval_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    value = predicate()
    while not value and time.monotonic() < deadline:
        job.check_alive()
        time.sleep(interval_s)
        value = predicate()
    return value


def assert_rows(
    cfg, expected: dict[str, list[str]], before_ms: int, job: Job, timeout_s: float = 90
) -> None:
    got = wait_for(lambda: table_rows(cfg, before_ms) == expected, timeout_s, job, 2.0)
    if not got:
        rows = table_rows(cfg, before_ms)
        for table in RESULT_TABLES:
            missing = sorted(set(expected[table]) - set(rows[table]))[:5]
            extra = sorted(set(rows[table]) - set(expected[table]))[:5]
            assert rows[table] == expected[table], (
                f"{table}: {len(rows[table])} rows, expected {len(expected[table])}; "
                f"missing {missing}; unexpected {extra}\n{job.output()[-3000:]}"
            )


def job_args(bootstrap: str, topic: str, keyspace: str, *extra: str) -> list[str]:
    return [
        f"--bootstrap_servers={bootstrap}",
        f"--topic={topic}",
        f"--cassandra_keyspace={keyspace}",
        "--run_seconds=170",
        "--idle_timeout_s=2",
        *extra,
    ]


def publish(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]] = (),
    by_partition: Iterable[tuple[int, bytes]] = (),
    timestamp_ms: int | None = None,
    client_config: dict | None = None,
) -> None:
    """`client_config`: extra kafka-python settings (SASL/SSL of a secured broker)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_request_size=4 * 1024 * 1024,
        **(client_config or {}),
    )
    for key, value in records:
        producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms)
    for partition, value in by_partition:
        producer.send(topic, value=value, partition=partition, timestamp_ms=timestamp_ms)
    producer.flush(timeout=60)
    producer.close()
