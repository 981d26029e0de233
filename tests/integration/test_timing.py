"""Results that do not depend on timing, on the real Kafka, Cassandra and Prism (issue 11).

The streaming job's rows must equal the independent reference's (tests/reference.py) whatever happens
around it: the job killed with SIGKILL at several moments and restarted on its consumer group, a pause in
the feed, a backlog at start. Late records through the real read become dead letters, and a partition
that still has records to read holds the others' windows back.
"""

from __future__ import annotations

import json
import time

import pytest

from beam_cxone.generator import GeneratorConfig
from beam_cxone.io.cassandra_schema import read_rows
from beam_cxone.tables import TABLES
from tests.integration.streaming_support import PARTITIONS
from tests.integration.streaming_support import Job
from tests.integration.streaming_support import advance_records
from tests.integration.streaming_support import assert_rows
from tests.integration.streaming_support import end_offsets
from tests.integration.streaming_support import expected_dead_letters
from tests.integration.streaming_support import expected_rows
from tests.integration.streaming_support import group_offsets
from tests.integration.streaming_support import job_args
from tests.integration.streaming_support import publish
from tests.integration.streaming_support import trace
from tests.integration.streaming_support import wait_for

pytestmark = pytest.mark.integration


def _dead_letters(cfg) -> list[tuple[str, str]]:
    return sorted((r["reason"], r["payload"]) for r in read_rows(cfg, TABLES["dead_letters"]))


def _volume_rows(cfg) -> int:
    return len(read_rows(cfg, TABLES["interaction_volumes"]))


def test_sigkill_at_several_moments_then_a_committed_restart_gives_the_uninterrupted_rows(
    kafka_bootstrap, fresh_topic, fresh_keyspace, tmp_path
):
    """kill -9 (job and Prism) during the backlog's burst while writes are in flight, again once windows
    fire, then a restart on the consumer group: the rows of an uninterrupted run."""
    records, advance_ms = trace(count=1500, seed=5)
    values = [v for _, v in records]
    expected = expected_rows(values)
    topic = fresh_topic(partitions=PARTITIONS)
    group = f"it-kill-{topic}"
    args = job_args(kafka_bootstrap, topic, fresh_keyspace.keyspace, f"--group_id={group}",
                    "--start_position=committed")
    publish(kafka_bootstrap, topic, records)

    burst = Job(args, tmp_path / "burst.log")
    reading = wait_for(lambda: any(group_offsets(kafka_bootstrap, topic, group).values()), 90, burst,
                       interval_s=0.2)
    assert reading, "the first job committed no offset"
    burst.kill()  # mid-burst: offsets committed, windows and patterns in flight, writes pending

    firing = Job(args, tmp_path / "firing.log")
    fired = wait_for(lambda: _volume_rows(fresh_keyspace) > 20, 120, firing, interval_s=0.5)
    assert fired, "the second job wrote no window"
    firing.kill()  # while windows fire and rows are written

    last = Job(args, tmp_path / "last.log")
    try:
        publish(kafka_bootstrap, topic, by_partition=advance_records(advance_ms))
        assert_rows(fresh_keyspace, expected, advance_ms - 60_000, last, timeout_s=180)
        assert _dead_letters(fresh_keyspace) == expected_dead_letters(values)
    finally:
        last.stop()


def test_a_pause_in_the_feed_turns_nothing_late(kafka_bootstrap, fresh_topic, fresh_keyspace, tmp_path):
    """60 s without a record once every partition is caught up (and idle after 2 s): what comes after
    the pause is counted as if there had been none."""
    records, advance_ms = trace(count=1200, seed=8)
    values = [v for _, v in records]
    expected = expected_rows(values)
    topic = fresh_topic(partitions=PARTITIONS)
    group = f"it-pause-{topic}"
    job = Job(job_args(kafka_bootstrap, topic, fresh_keyspace.keyspace, f"--group_id={group}",
                       "--run_seconds=240"), tmp_path / "job.log")
    try:
        half = len(records) // 2
        publish(kafka_bootstrap, topic, records[:half])
        ends = end_offsets(kafka_bootstrap, topic)
        assert wait_for(lambda: group_offsets(kafka_bootstrap, topic, group) == ends, 90, job)
        time.sleep(60)  # the pause itself: the scenario under test, not a wait for a condition
        publish(kafka_bootstrap, topic, records[half:], advance_records(advance_ms))
        assert_rows(fresh_keyspace, expected, advance_ms - 60_000, job, timeout_s=120)
        assert _dead_letters(fresh_keyspace) == expected_dead_letters(values)
        assert "late" not in {reason for reason, _ in _dead_letters(fresh_keyspace)}
    finally:
        job.stop()


def test_a_backlog_of_20k_records_at_start(kafka_bootstrap, fresh_topic, fresh_keyspace, tmp_path):
    records, advance_ms = trace(count=20_000, seed=13)
    values = [v for _, v in records]
    expected = expected_rows(values)
    topic = fresh_topic(partitions=PARTITIONS)
    publish(kafka_bootstrap, topic, records, advance_records(advance_ms))
    job = Job(job_args(kafka_bootstrap, topic, fresh_keyspace.keyspace, "--run_seconds=400"),
              tmp_path / "job.log")
    try:
        assert_rows(fresh_keyspace, expected, advance_ms - 60_000, job, timeout_s=300)
        assert _dead_letters(fresh_keyspace) == expected_dead_letters(values)
    finally:
        job.stop()


def _record(event_id: str, t_ms: int, contact: str) -> bytes:
    return json.dumps({"eventId": event_id, "eventTime": t_ms, "contactId": contact, "channel": "voice",
                       "eventType": "CONTACT_STARTED"}).encode()


def _volumes(cfg) -> dict[int, tuple[int, int]]:
    return {r["window_start"]: (r["interactions"], r["events"])
            for r in read_rows(cfg, TABLES["interaction_volumes"])}


def test_late_records_and_a_partition_behind_through_the_real_read(
    kafka_bootstrap, fresh_topic, fresh_keyspace, tmp_path
):
    """Partition 0 runs 90 s of event time ahead of partition 1, which still reads (not idle: a long idle
    timeout): no window after partition 1's watermark closes, and partition 1's records there count.
    Then a record 40 s behind its own partition's watermark (lateness 30 s + out-of-orderness 5 s) is a
    `late` dead letter, and one 30 s behind is counted in place."""
    t0 = (GeneratorConfig(count=1).start_ms // 10_000) * 10_000
    topic = fresh_topic(partitions=2)
    group = f"it-late-{topic}"
    job = Job(job_args(kafka_bootstrap, topic, fresh_keyspace.keyspace, "--idle_timeout_s=600",
                       f"--group_id={group}", "--run_seconds=150"), tmp_path / "job.log")
    try:
        ahead = [(0, _record(f"a{s}", t0 + s * 1000, f"ca{s}")) for s in range(0, 100, 2)]
        publish(kafka_bootstrap, topic, by_partition=ahead + [(1, _record("b0", t0 + 1_000, "cb0"))])
        # Partition 1's watermark is t0 - 4 s: nothing may close; wait until both are all read.
        ends = end_offsets(kafka_bootstrap, topic, partitions=2)
        assert wait_for(lambda: group_offsets(kafka_bootstrap, topic, group, partitions=2) == ends, 60, job)
        time.sleep(5)  # several more read calls: a window closing now would be wrong
        assert _volumes(fresh_keyspace) == {}
        # Partition 1 catches up: its records in [20 s, 30 s) count in a window that was held open.
        publish(kafka_bootstrap, topic, by_partition=[(1, _record("b25", t0 + 25_000, "cb25")),
                                                      (1, _record("b60", t0 + 60_000, "cb60"))])
        held = wait_for(lambda: _volumes(fresh_keyspace).get(t0 + 20_000) == (6, 6), 60, job)
        assert held, _volumes(fresh_keyspace)
        # Partition 1's watermark is now 55 s: 14 s is 41 s behind it (late), 25.5 s within it. Prism
        # keeps what arrives within the lateness and writes it with the window's closing pane (once
        # the watermark passes its end + the lateness, 60 s): b70 moves the watermark to 65 s.
        publish(kafka_bootstrap, topic, by_partition=[(1, _record("late14", t0 + 14_000, "cl")),
                                                      (1, _record("ok25", t0 + 25_500, "co")),
                                                      (1, _record("b70", t0 + 70_000, "cb70"))])
        counted = wait_for(lambda: _volumes(fresh_keyspace).get(t0 + 20_000) == (7, 7), 60, job)
        assert counted, _volumes(fresh_keyspace)
        assert wait_for(lambda: [r for r, _ in _dead_letters(fresh_keyspace)] == ["late"], 60, job)
        assert _volumes(fresh_keyspace)[t0 + 10_000] == (5, 5)  # 10,12,..,18 s: late14 not in it
    finally:
        job.stop()
