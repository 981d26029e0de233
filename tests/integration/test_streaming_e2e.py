"""The walking skeleton on the real stack: Kafka -> the job -> Cassandra, streaming on the embedded runner
(Prism) while records are published, and a bounded run (end offsets) on the DirectRunner family.

The records: two channels, three 10 s windows, a duplicate, malformed lines, disorder within 5 s, spread
over two partitions. Expected rows are computed by hand below.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from beam_cxone.io.cassandra_schema import read_rows
from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.tables import INTERACTION_VOLUMES

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BASE = 1_796_000_000_000  # 2026-11-30T00:53:20Z, a multiple of 10 s


def _interaction(event_id: str, offset_ms: int, contact: str, **fields) -> bytes:
    record = {"eventId": event_id, "eventTime": BASE + offset_ms, "contactId": contact,
              "eventType": "CONTACT_STARTED", **fields}
    if "channel" not in record and "mediaTypeId" not in record:
        record["channel"] = "voice"
    return json.dumps(record).encode()


# Arrival order, as published. Event times in ms after BASE; disorder never exceeds 5 s.
RECORDS: list[tuple[int, bytes]] = [  # (partition, value)
    (0, _interaction("e1", 1_000, "c1")),
    (1, _interaction("e2", 2_000, "c2")),
    (0, _interaction("e4", 4_000, "c3", channel="chat")),
    (1, _interaction("e3", 3_000, "c1")),  # 1 s behind
    (0, b"not json at all"),  # dead letter: invalid_json
    (1, _interaction("e5", 12_000, "c4")),
    (0, _interaction("e2", 2_000, "c2")),  # duplicate of e2 (a producer retry): changes nothing
    (1, _interaction("e7", 16_000, "c5", channel="chat")),
    (0, _interaction("e6", 15_000, "c5", channel="chat")),  # 1 s behind
    (1, _interaction("e8", 21_000, "c6")),
    (0, b'{"eventId": "bad", "eventTime": "2026-11-30T00:53:41", "contactId": "c9"}'),  # bad_time
    (1, _interaction("e10", 25_000, "c8", mediaTypeId=3)),  # channel from mediaTypeId: chat
    (0, _interaction("e9", 29_999, "c7")),
]
# Valid records far later, one per partition: they move the event-time watermark past the three
# windows, as a live stream does. Their own window is not final, so it is left out of the check.
ADVANCE = [(p, _interaction(f"advance-{p}", 120_000, f"c-adv-{p}")) for p in (0, 1)]

W0, W1, W2 = BASE, BASE + 10_000, BASE + 20_000
# (channel, window_start) -> (interactions = distinct contacts, events = distinct event ids)
EXPECTED = {
    ("voice", W0): (2, 3),  # c1 (e1, e3), c2 (e2; its duplicate ignored)
    ("chat", W0): (1, 1),  # c3 (e4)
    ("voice", W1): (1, 1),  # c4 (e5)
    ("chat", W1): (1, 2),  # c5 (e6, e7)
    ("voice", W2): (2, 2),  # c6 (e8), c7 (e9 at 29.999 s)
    ("chat", W2): (1, 1),  # c8 (e10)
}


def _publish(bootstrap: str, topic: str, records: list[tuple[int, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for partition, value in records:
        producer.send(topic, value=value, partition=partition)
    producer.flush()
    producer.close()


def _volumes(cfg) -> dict:
    rows = read_rows(cfg, INTERACTION_VOLUMES)
    return {(r["channel"], r["window_start"]): (r["interactions"], r["events"])
            for r in rows if r["window_start"] < BASE + 100_000}


def _job(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "beam_cxone", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(predicate, timeout_s: float, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"job exited with {proc.returncode}:\n{proc.stdout.read()[-4000:]}")
        time.sleep(1)
    return predicate()


def test_streaming_on_embedded_runner_writes_exact_volumes_while_live(
        kafka_bootstrap, fresh_topic, fresh_keyspace):
    topic = fresh_topic(partitions=2)
    job = _job([f"--bootstrap_servers={kafka_bootstrap}", f"--topic={topic}",
                f"--cassandra_keyspace={fresh_keyspace.keyspace}", "--run_seconds=150",
                "--idle_timeout_s=2", "--out_of_orderness_s=5"])
    try:
        time.sleep(5)  # the job is up and reading before the stream starts
        _publish(kafka_bootstrap, topic, RECORDS[:7])
        time.sleep(2)
        _publish(kafka_bootstrap, topic, RECORDS[7:])
        _publish(kafka_bootstrap, topic, ADVANCE)
        volumes = _wait_for(lambda: _volumes(fresh_keyspace) == EXPECTED and EXPECTED, 120, job)
        assert job.poll() is None, "rows must appear while the stream is live"
        assert _volumes(fresh_keyspace) == EXPECTED, volumes
        dead = _wait_for(lambda: len(read_rows(fresh_keyspace, DEAD_LETTERS)) >= 2, 30)
        assert dead
        reasons = sorted(r["reason"] for r in read_rows(fresh_keyspace, DEAD_LETTERS))
        assert reasons == ["bad_time", "invalid_json"]
    finally:
        job.terminate()
        try:
            job.wait(timeout=30)
        except subprocess.TimeoutExpired:
            job.kill()


def test_bounded_run_on_direct_runner_stops_at_end_offsets(kafka_bootstrap, fresh_topic, fresh_keyspace):
    topic = fresh_topic(partitions=2)
    _publish(kafka_bootstrap, topic, RECORDS)
    job = _job([f"--bootstrap_servers={kafka_bootstrap}", f"--topic={topic}", "--bounded",
                f"--cassandra_keyspace={fresh_keyspace.keyspace}"])
    out, _ = job.communicate(timeout=300)
    assert job.returncode == 0, out[-4000:]
    # Batch: every window is complete at the end of the bounded input.
    assert _volumes(fresh_keyspace) == EXPECTED
    reasons = sorted(r["reason"] for r in read_rows(fresh_keyspace, DEAD_LETTERS))
    assert reasons == ["bad_time", "invalid_json"]


def test_run_seconds_drains_the_stream_so_every_window_is_written(kafka_bootstrap, fresh_topic,
                                                                  fresh_keyspace):
    # No far-later record this time: the drain itself moves the watermark to the end of time.
    topic = fresh_topic(partitions=2)
    _publish(kafka_bootstrap, topic, RECORDS)
    job = _job([f"--bootstrap_servers={kafka_bootstrap}", f"--topic={topic}", "--run_seconds=12",
                f"--cassandra_keyspace={fresh_keyspace.keyspace}"])
    out, _ = job.communicate(timeout=240)
    assert job.returncode == 0, out[-4000:]
    assert "job state: DONE" in out  # finished by itself, not cancelled
    assert _volumes(fresh_keyspace) == EXPECTED
