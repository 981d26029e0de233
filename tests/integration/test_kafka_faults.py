"""The Kafka read under faults, on the real broker, Cassandra and Prism (issue 4).

Each test runs the streaming job (`python -m beam_cxone` on Prism) as a subprocess while a generated
trace is published, breaks something in the middle, then publishes the rest and one far-later record
per partition (it moves the event-time watermark past the whole trace). The rows in Cassandra must
then equal the independent reference of tests/reference.py: nothing lost, nothing counted twice.

- broker restart mid-stream (the read rides out the outage);
- job stopped and started again on the same consumer group (`--start_position=committed` with a
  replay margin);
- malformed, truncated, binary and huge records among valid ones (dead letters, also on a Kafka
  dead-letter topic; the job keeps running);
- a rate cap (`--max_events_per_second`): it waits, never drops.
"""

from __future__ import annotations

import json
import random
import socket
import time

import pytest
from kafka import KafkaConsumer

from beam_cxone.generator import GeneratorConfig
from beam_cxone.io.cassandra_schema import read_rows
from beam_cxone.io.kafka import KafkaPartition
from beam_cxone.io.kafka import KafkaReadConfig
from beam_cxone.io.kafka import PartitionOffsets
from beam_cxone.tables import TABLES
from tests.integration.streaming_support import PARTITIONS
from tests.integration.streaming_support import Job
from tests.integration.streaming_support import advance_records
from tests.integration.streaming_support import assert_rows
from tests.integration.streaming_support import end_offsets
from tests.integration.streaming_support import expected_dead_letters
from tests.integration.streaming_support import expected_rows
from tests.integration.streaming_support import export
from tests.integration.streaming_support import group_offsets
from tests.integration.streaming_support import job_args
from tests.integration.streaming_support import publish
from tests.integration.streaming_support import table_rows
from tests.integration.streaming_support import trace
from tests.integration.streaming_support import wait_for

pytestmark = pytest.mark.integration


def _broker_listening(port: int = 9092) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# ----- the tests ---------------------------------------------------------------------------------


def test_broker_restart_mid_stream_loses_nothing_and_counts_nothing_twice(
    kafka_bootstrap, fresh_topic, fresh_keyspace, kafka_sh, tmp_path
):
    records, advance_ms = trace(count=400, seed=41)
    expected = expected_rows([v for _, v in records])
    topic = fresh_topic(partitions=PARTITIONS)
    job = Job(job_args(kafka_bootstrap, topic, fresh_keyspace.keyspace), tmp_path / "job.log")
    try:
        time.sleep(5)  # the job is up and reading before the stream starts
        half = len(records) // 2
        publish(kafka_bootstrap, topic, records[:half])
        read_half = wait_for(
            lambda: table_rows(fresh_keyspace, advance_ms)["interaction_volumes"], 60, job
        )
        assert read_half, "the first half produced no rows before the restart"
        down = time.monotonic()
        kafka_sh("stop")
        try:
            assert not _broker_listening(), "the broker did not stop"
            time.sleep(3)
            job.check_alive()
        finally:
            kafka_sh("start")
        up = time.monotonic()
        print(f"broker unavailable for {up - down:.1f} s (stop, 3 s, start)")
        publish(kafka_bootstrap, topic, records[half:], advance_records(advance_ms))
        assert_rows(fresh_keyspace, expected, advance_ms - 60_000, job)
        print(f"rows equal the reference {time.monotonic() - up:.1f} s after the broker was back")
        job.check_alive()
    finally:
        job.stop()


def _old_records(start_ms: int, count: int) -> list[tuple[int, bytes]]:
    """Interactions without a customer (volumes only), half an hour of event time before the trace."""
    out = []
    for i in range(count):
        record = {
            "eventId": f"old-{i}",
            "eventTime": start_ms - 1_800_000 + i * 1_500,
            "contactId": f"old-c{i % 7}",
            "channel": ("voice", "chat")[i % 2],
            "eventType": "CONTACT_STARTED",
        }
        out.append((i % PARTITIONS, json.dumps(record).encode()))
    return out


def test_job_restarted_on_its_consumer_group_resumes_with_a_replay_margin(
    kafka_bootstrap, fresh_topic, fresh_keyspace, tmp_path
):
    records, advance_ms = trace(count=400, seed=42)
    old = _old_records(GeneratorConfig(count=1).start_ms, 24)
    expected = expected_rows([v for _, v in old] + [v for _, v in records])
    topic = fresh_topic(partitions=PARTITIONS)
    group = f"it-resume-{topic}"
    args = job_args(
        kafka_bootstrap,
        topic,
        fresh_keyspace.keyspace,
        f"--group_id={group}",
        "--start_position=committed",
        "--resume_replay_s=120",
    )
    # Older than the replay margin in Kafka record time: the restarted job must not read them again,
    # and their rows (written by the first job) must stay.
    publish(
        kafka_bootstrap, topic, by_partition=old, timestamp_ms=int(time.time() * 1000) - 1_200_000
    )
    half = len(records) // 2
    first = Job(args, tmp_path / "first.log")
    try:
        publish(kafka_bootstrap, topic, records[:half])
        ends = end_offsets(kafka_bootstrap, topic)
        caught_up = wait_for(
            lambda: group_offsets(kafka_bootstrap, topic, group) == ends, 60, first
        )
        assert caught_up, (group_offsets(kafka_bootstrap, topic, group), ends)
        old_windows = wait_for(
            lambda: table_rows(fresh_keyspace, advance_ms)["interaction_volumes"], 60, first
        )
        assert old_windows, "the first job wrote no rows"
        time.sleep(2)  # part of the trace is in flight: windows open, patterns pending
    finally:
        first.stop()
    committed = group_offsets(kafka_bootstrap, topic, group)
    # Where the second job will start: the read's own restriction provider, on the same group.
    cfg = KafkaReadConfig(
        bootstrap_servers=kafka_bootstrap,
        topic=topic,
        group_id=group,
        start="committed",
        resume_replay_ms=120_000,
    )
    starts = {
        p: PartitionOffsets(cfg).initial_restriction(KafkaPartition(topic, p)).start
        for p in range(PARTITIONS)
    }
    old_per_partition = {p: sum(1 for q, _ in old if q == p) for p in range(PARTITIONS)}
    assert starts == old_per_partition, (starts, committed)  # the whole trace, none of the old ones
    assert all(committed[p] > starts[p] for p in range(PARTITIONS)), (starts, committed)

    second = Job(args, tmp_path / "second.log")
    restarted = time.monotonic()
    try:
        time.sleep(3)
        publish(kafka_bootstrap, topic, records[half:], advance_records(advance_ms))
        assert_rows(fresh_keyspace, expected, advance_ms - 60_000, second)
        print(
            f"replayed {sum(committed.values()) - sum(starts.values())} records; rows equal the "
            f"reference {time.monotonic() - restarted:.1f} s after the restart"
        )
        after = group_offsets(kafka_bootstrap, topic, group)
        assert all(after[p] >= committed[p] for p in range(PARTITIONS)), (committed, after)
    finally:
        second.stop()


def _bad_records() -> list[tuple[int, bytes]]:
    """Malformed, truncated, binary and huge records, one of each kind per partition."""
    rng = random.Random(7)
    huge = json.dumps(
        {
            "eventId": "huge",
            "eventTime": GeneratorConfig(count=1).start_ms + 5_000,
            "contactId": "h1",
            "channel": "voice",
            "eventType": "CONTACT_STARTED",
            "notes": "x" * (1536 * 1024),
        }
    ).encode()
    bad = []
    for p in range(PARTITIONS):
        bad.append((p, b'{"eventId": "m%d", "eventTime": ' % p))  # truncated
        bad.append((p, b"{'single': 'quotes'}"))  # malformed
        # Random bytes; framed by 0xff so that the reference's line reading strips nothing.
        bad.append((p, b"\xff" + bytes(rng.randrange(256) for _ in range(200)) + b"\xff"))
    bad.append((1, huge))
    return bad


def test_malformed_truncated_binary_and_huge_records_become_dead_letters_also_on_a_topic(
    kafka_bootstrap, fresh_topic, fresh_keyspace, tmp_path
):
    records, advance_ms = trace(count=300, seed=43)
    bad = _bad_records()
    assert len(bad[-1][1]) > 1536 * 1024
    topic = fresh_topic(partitions=PARTITIONS)
    dead_topic = fresh_topic(partitions=1, prefix="it-dead")
    # Interleaved: a third of the trace, the bad records, the rest.
    third = len(records) // 3
    values = [v for _, v in records[:third]] + [v for _, v in bad] + [v for _, v in records[third:]]
    expected = expected_rows(values)
    expected_dead = expected_dead_letters(values)
    assert {"too_large", "invalid_json", "invalid_utf8"} <= {r for r, _ in expected_dead}
    job = Job(
        job_args(
            kafka_bootstrap, topic, fresh_keyspace.keyspace, f"--dead_letter_topic={dead_topic}"
        ),
        tmp_path / "job.log",
    )
    try:
        time.sleep(4)
        publish(kafka_bootstrap, topic, records[:third])
        publish(kafka_bootstrap, topic, by_partition=bad)
        publish(kafka_bootstrap, topic, records[third:], advance_records(advance_ms))
        assert_rows(fresh_keyspace, expected, advance_ms - 60_000, job)
        stored = wait_for(lambda: _dead_rows(fresh_keyspace) == expected_dead, 30, job)
        assert stored, (len(_dead_rows(fresh_keyspace)), len(expected_dead))
        on_topic = wait_for(
            lambda: len(_consume(kafka_bootstrap, dead_topic)) >= len(expected_dead), 30, job
        )
        assert on_topic
        job.check_alive()
    finally:
        job.stop()
    messages = _consume(kafka_bootstrap, dead_topic)
    rows = {r["dead_letter_id"]: r for r in read_rows(fresh_keyspace, TABLES["dead_letters"])}
    by_id = {}
    for key, value in messages:
        obj = json.loads(value)
        assert key.decode() == obj["dead_letter_id"]
        by_id[obj["dead_letter_id"]] = obj
    assert set(by_id) == set(rows)
    for dead_id, obj in by_id.items():
        assert obj == export("dead_letters", rows[dead_id])
    assert list(obj) == [name for name, _ in TABLES["dead_letters"].columns]


def _dead_rows(cfg) -> list[tuple[str, str]]:
    return sorted((r["reason"], r["payload"]) for r in read_rows(cfg, TABLES["dead_letters"]))


def _consume(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    try:
        return [(m.key, m.value) for m in consumer]
    finally:
        consumer.close()


def test_a_rate_cap_waits_and_never_drops(kafka_bootstrap, fresh_topic, fresh_keyspace, tmp_path):
    records, advance_ms = trace(count=400, seed=44)
    expected = expected_rows([v for _, v in records])
    topic = fresh_topic(partitions=PARTITIONS)
    publish(kafka_bootstrap, topic, records, advance_records(advance_ms))  # a backlog at start
    started = time.monotonic()
    job = Job(
        job_args(kafka_bootstrap, topic, fresh_keyspace.keyspace, "--max_events_per_second=60"),
        tmp_path / "job.log",
    )
    try:
        assert_rows(fresh_keyspace, expected, advance_ms - 60_000, job)
        elapsed = time.monotonic() - started
        job.check_alive()
    finally:
        job.stop()
    # Not a timing assertion on the rate (bench/bench_throttle.py measures it), only that the cap
    # was in force: the bucket never holds more than one second's worth of tokens (60), so the 403
    # records take at least (403 - 60) / 60 s to read, job start-up not counted.
    assert elapsed > (len(records) + PARTITIONS - 60) / 60, elapsed
