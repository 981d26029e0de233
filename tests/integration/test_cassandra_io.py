"""The Cassandra writer against the real local Cassandra: schema, pipeline writes of every table,
idempotent replays, last-version-wins, a poison row kept as a dead letter, and a 30 s outage in the middle of a bundle.

Run: .venv/bin/python -m pytest tests/integration/test_cassandra_io.py -q  (starts Cassandra if needed)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter

import beam_cxone.io.cassandra_schema as schema
from beam_cxone.io.cassandra_schema import SchemaMismatchError
from beam_cxone.io.cassandra_schema import create_schema
from beam_cxone.io.cassandra_schema import describe_schema
from beam_cxone.io.cassandra_schema import drop_keyspace
from beam_cxone.io.cassandra_schema import read_rows
from beam_cxone.io.cassandra_schema import schema_ddl
from beam_cxone.io.cassandra_schema import truncate
from beam_cxone.io.cassandra_write import METRICS_NAMESPACE
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.cassandra_write import RejectedRowsError
from beam_cxone.io.cassandra_write import WriteToCassandra
from beam_cxone.io.cassandra_write import _CassandraWriteFn
from beam_cxone.io.cassandra_write import execute_upserts
from beam_cxone.io.cassandra_write import insert_cql
from beam_cxone.io.cassandra_write import is_transient
from beam_cxone.io.cassandra_write import open_session
from beam_cxone.io.cassandra_write import row_to_params
from beam_cxone.io.cassandra_write import write_with_retries
from beam_cxone.tables import CUSTOMER_PROFILES
from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.tables import INTERACTION_VOLUMES
from beam_cxone.tables import PATTERN_ALERTS
from beam_cxone.tables import TABLES
from beam_cxone.tables import Table
from tests.support.cassandra_doubles import direct_counters

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z

VOLUMES = [
    {
        "channel": "CHAT",
        "day": "2023-11-14",
        "window_start": T0,
        "window_end": T0 + 10_000,
        "interactions": 1,
        "events": 1,
        "updated_at": T0 + 10_500,
    },
    {
        "channel": "VOICE",
        "day": "2023-11-14",
        "window_start": T0,
        "window_end": T0 + 10_000,
        "interactions": 2,
        "events": 3,
        "updated_at": T0 + 10_500,
    },
    {
        "channel": "VOICE",
        "day": "2023-11-14",
        "window_start": T0 + 10_000,
        "window_end": T0 + 20_000,
        "interactions": 1,
        "events": 2,
        "updated_at": T0 + 20_001,
    },
]
ALERTS = [
    {
        "customer_id": "c1",
        "alert_time": T0 + 25_000,
        "alert_type": "REPEATED_FAILURE_CALLBACK",
        "alert_id": "a-7f3e",
        "channel": "VOICE",
        "failure_count": 3,
        "first_failure_time": T0,
        "failure_event_ids": ["e1", "e2", "e3"],
        "callback_event_id": "e4",
        "tier": "GOLD",
        "region": "EU",
        "detected_at": T0 + 40_000,
    },
    {
        "customer_id": "c2",
        "alert_time": T0 + 5_000,
        "alert_type": "REPEATED_FAILURE_CALLBACK",
        "alert_id": "a-0b11",
        "channel": "CHAT",
        "failure_count": 3,
        "first_failure_time": T0 - 1,
        "failure_event_ids": ["e9", "e10", "e11"],
        "callback_event_id": "e12",
        "tier": "UNKNOWN",
        "region": "UNKNOWN",
        "detected_at": T0 + 35_000,
    },
]
PROFILES = [
    {"customer_id": "c1", "tier": "GOLD", "region": "EU", "updated_at": T0 - 60_000},
    {"customer_id": "c2", "tier": None, "region": "US", "updated_at": T0 - 1},
]
DEAD = [
    {
        "day": "2023-11-14",
        "recorded_at": T0 + 1,
        "dead_letter_id": "d-01",
        "stage": "parse",
        "reason": "invalid_json",
        "payload": '{"eventId": "x",\n "ä": 1',
        "source": "interactions/0@42",
    },
    {
        "day": "2023-11-15",
        "recorded_at": T0 + 86_400_000,
        "dead_letter_id": "d-02",
        "stage": "late",
        "reason": "late",
        "payload": "{}",
        "source": "interactions/1@7",
    },
]
ALL_ROWS = {
    INTERACTION_VOLUMES: VOLUMES,
    PATTERN_ALERTS: ALERTS,
    CUSTOMER_PROFILES: PROFILES,
    DEAD_LETTERS: DEAD,
}


@pytest.fixture
def cfg(cassandra_cfg: CassandraConfig) -> CassandraConfig:
    """The session keyspace with its four tables emptied."""
    for table in TABLES.values():
        truncate(cassandra_cfg, table)
    return cassandra_cfg


def run_writes(cfg: CassandraConfig, rows: dict[Table, list[dict]]) -> dict[str, int]:
    """Runs Create | WriteToCassandra per table in one pipeline; returns the writer's counters."""
    p = beam.Pipeline(runner="BundleBasedDirectRunner")
    for table, table_rows in rows.items():
        _ = (
            p
            | f"Create{table.name}"
            >> beam.Create(table_rows, reshuffle=False)  # one bundle, in order
            | f"Write{table.name}" >> WriteToCassandra(cfg, table)
        )
    result = p.run()
    result.wait_until_finish()
    found: dict[str, int] = {}
    query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    for counter in query["counters"]:
        found[counter.key.metric.name] = found.get(counter.key.metric.name, 0) + counter.committed
    return found


def by_key(table: Table, rows: list[dict]) -> list[dict]:
    return sorted(rows, key=table.key_of)


def test_create_schema_twice_changes_nothing(cfg):
    run_writes(cfg, {CUSTOMER_PROFILES: PROFILES})
    before = describe_schema(cfg)
    assert create_schema(cfg) == schema_ddl(cfg)
    assert describe_schema(cfg) == before
    assert sorted(before) == [
        "customer_profiles",
        "dead_letters",
        "interaction_volumes",
        "pattern_alerts",
    ]
    assert before["customer_profiles"] == {
        "columns": {
            "customer_id": "text",
            "region": "text",
            "tier": "text",
            "updated_at": "timestamp",
        },
        "partition_key": ("customer_id",),
        "clustering_key": (),
    }
    assert before["interaction_volumes"]["partition_key"] == ("channel", "day")
    assert before["pattern_alerts"]["clustering_key"] == ("alert_time", "alert_type", "alert_id")
    assert read_rows(cfg, CUSTOMER_PROFILES) == PROFILES  # data untouched


def test_create_schema_detects_a_table_that_differs(cassandra_cfg, monkeypatch):
    other = dataclasses.replace(cassandra_cfg, keyspace=cassandra_cfg.keyspace + "_drift")
    old_profiles = Table(
        "customer_profiles",
        (("customer_id", "text"), ("tier", "text")),
        partition_key=("customer_id",),
    )
    try:
        monkeypatch.setitem(schema.TABLES, "customer_profiles", old_profiles)
        create_schema(other)  # an older description of the table
        monkeypatch.undo()
        # IF NOT EXISTS keeps the old table; the check names it instead of passing silently.
        with pytest.raises(SchemaMismatchError, match=r"differ from tables.py: customer_profiles$"):
            create_schema(other)
    finally:
        drop_keyspace(other)


def test_pipeline_writes_every_table_and_a_replay_changes_nothing(cfg):
    first = run_writes(cfg, ALL_ROWS)
    for table, rows in ALL_ROWS.items():
        assert read_rows(cfg, table) == by_key(table, rows), table.name
    assert first["rows_written"] == 3 + 2 + 2 + 2
    assert first["batches"] == 4 and first.get("write_retries", 0) == 0

    run_writes(cfg, ALL_ROWS)  # at-least-once delivery: the same rows again
    for table, rows in ALL_ROWS.items():
        assert read_rows(cfg, table) == by_key(table, rows), table.name


def test_read_rows_where(cfg):
    run_writes(cfg, {INTERACTION_VOLUMES: VOLUMES})
    assert (
        read_rows(cfg, INTERACTION_VOLUMES, where={"channel": "VOICE", "day": "2023-11-14"})
        == (VOLUMES[1:])
    )
    assert read_rows(cfg, INTERACTION_VOLUMES, where={"window_start": T0 + 10_000}) == [VOLUMES[2]]


def test_the_last_version_of_a_key_in_a_bundle_wins(cfg):
    pane = VOLUMES[1]
    panes = [
        pane,
        {**pane, "interactions": 3, "events": 5, "updated_at": T0 + 15_000},
        {**pane, "interactions": 4, "events": 6, "updated_at": T0 + 29_000},
    ]
    profiles = [{**PROFILES[0], "tier": tier} for tier in ("SILVER", "PLATINUM", "BRONZE")]
    found = run_writes(cfg, {INTERACTION_VOLUMES: panes, CUSTOMER_PROFILES: profiles})
    assert read_rows(cfg, INTERACTION_VOLUMES) == [panes[-1]]
    assert read_rows(cfg, CUSTOMER_PROFILES) == [profiles[-1]]
    assert found["rows_written"] == 2  # one write per key: versions cannot race each other

    # The same through direct calls, one bundle: a later version replaces an earlier one.
    fn = _CassandraWriteFn(cfg, CUSTOMER_PROFILES)
    fn.setup()
    try:
        fn.start_bundle()
        for row in [{**PROFILES[1], "region": r} for r in ("APAC", "EU", "LATAM")]:
            fn.process(row)
        fn.finish_bundle()
    finally:
        fn.teardown()
    assert read_rows(cfg, CUSTOMER_PROFILES, where={"customer_id": "c2"}) == [
        {**PROFILES[1], "region": "LATAM"}
    ]


# A real row Cassandra 5.0 refuses for good: a partition key one byte over its 65,535-byte limit.
POISON = {"customer_id": "c" * 65_536, "tier": "GOLD", "region": "EU", "updated_at": T0 - 5}
CASSANDRA_SAYS = "Key length of 65536 is longer than maximum of 65535"


def test_a_poison_row_becomes_a_dead_letter_and_the_job_goes_on(cfg, caplog):
    caplog.set_level(logging.WARNING, logger="beam_cxone.io.cassandra_write")
    found = run_writes(cfg, {CUSTOMER_PROFILES: [PROFILES[0], POISON, PROFILES[1]]})  # no raise

    assert read_rows(cfg, CUSTOMER_PROFILES) == by_key(CUSTOMER_PROFILES, PROFILES)
    key_hash = hashlib.sha256()
    for part in ("customer_profiles", "write", "rejected_by_sink", json.dumps(["c" * 65_536])):
        key_hash.update(part.encode() + b"\x1f")
    assert read_rows(cfg, DEAD_LETTERS) == [
        {
            "day": "2023-11-14",
            "recorded_at": T0 - 5,  # the refused row's own time
            "dead_letter_id": key_hash.hexdigest()[:32],
            "stage": "write",
            "reason": "rejected_by_sink",
            # The row as JSON, cut at 64 KiB: here inside the key, so nothing after it is kept.
            "payload": ('{"customer_id": "' + "c" * 65_536)[: 64 * 1024],
            "source": "customer_profiles",
        }
    ]
    assert found["rows_rejected"] == 1 and found.get("rows_dropped", 0) == 0
    assert found["rows_written"] == 2 + 1  # the good rows and the dead letter
    assert found.get("write_retries", 0) == 0  # refused for good: never retried
    assert CASSANDRA_SAYS in caplog.text and "c" * 100 not in caplog.text

    run_writes(cfg, {CUSTOMER_PROFILES: [POISON]})  # a replay keeps one dead letter, not two
    assert len(read_rows(cfg, DEAD_LETTERS)) == 1


def test_a_refused_dead_letter_is_counted_and_dropped_without_raising(cfg):
    bad = {**DEAD[0], "dead_letter_id": None}  # a null clustering column: InvalidRequest
    fn = _CassandraWriteFn(cfg, DEAD_LETTERS, keep_rejected=False)
    fn.setup()
    try:
        with direct_counters() as counter:
            fn.start_bundle()
            fn.process(DEAD[1])
            fn.process(bad)
            assert fn.finish_bundle() == []
            assert counter("write_retries") == 0 and counter("rows_written") == 1
            assert counter("rows_rejected") == 1 and counter("rows_dropped") == 1
    finally:
        fn.teardown()
    assert read_rows(cfg, DEAD_LETTERS) == [DEAD[1]]  # the good row of the batch was written


def test_a_rejected_row_raises_without_a_rejection_handler(cfg):
    """The retry loop alone (no handler) still raises for a refused row, at once."""
    cluster, session = open_session(cfg)
    try:
        insert = session.prepare(insert_cql(cfg.keyspace, CUSTOMER_PROFILES))
        params = [row_to_params(CUSTOMER_PROFILES, r) for r in (PROFILES[0], POISON)]
        with pytest.raises(RejectedRowsError) as info:
            write_with_retries(
                lambda ps: execute_upserts(session, insert, ps, 10), params, cfg, "t"
            )
    finally:
        cluster.shutdown()
    err = info.value
    assert type(err.__cause__).__name__ == "InvalidRequest" and not is_transient(err.__cause__)
    assert str(err) == (
        "1 row(s) rejected writing t: InvalidRequest: Error from server: code=2200 "
        f'[Invalid query] message="{CASSANDRA_SAYS}"'
    )


def volume_row(i: int) -> dict:
    """Row i of a stream of distinct interaction_volumes keys (4 channels, 10 s windows)."""
    start = T0 + (i // 4) * 10_000
    return {
        "channel": ("CHAT", "EMAIL", "SMS", "VOICE")[i % 4],
        "day": "2023-11-14",
        "window_start": start,
        "window_end": start + 10_000,
        "interactions": i % 7,
        "events": i,
        "updated_at": start + 10_001,
    }


def test_a_30s_outage_in_the_middle_of_a_bundle_loses_nothing(cfg, cassandra_sh):
    outage_s = 30
    stopped, restarted = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def outage() -> None:
        try:
            cassandra_sh("stop")
            stopped.set()
            time.sleep(outage_s)
            cassandra_sh("start")
        except BaseException as err:  # surfaced by the main thread's assertion
            errors.append(err)
        finally:
            stopped.set()
            restarted.set()

    fn = _CassandraWriteFn(dataclasses.replace(cfg, batch_rows=200), INTERACTION_VOLUMES)
    fn.setup()
    n = 0
    t0 = time.monotonic()
    try:
        with direct_counters() as counter:
            fn.start_bundle()
            for _ in range(1_000):  # 5 flushes before the outage
                fn.process(volume_row(n))
                n += 1
            thread = threading.Thread(target=outage, name="cassandra-outage", daemon=True)
            thread.start()
            while not stopped.is_set():  # keep writing while Cassandra shuts down
                fn.process(volume_row(n))
                n += 1
                if n % 200 == 0:
                    time.sleep(0.05)
            for _ in range(1_000):  # written into the outage: the first flush waits it out
                fn.process(volume_row(n))
                n += 1
            fn.finish_bundle()
            retries, written = counter("write_retries"), counter("rows_written")
    finally:
        restarted.wait(timeout=outage_s + 200)
        fn.teardown()
    elapsed = time.monotonic() - t0
    assert not errors, errors
    assert retries > 0
    assert written == n  # every row acknowledged once: only failed rows are sent again
    assert elapsed >= outage_s
    assert read_rows(cfg, INTERACTION_VOLUMES) == by_key(
        INTERACTION_VOLUMES, [volume_row(i) for i in range(n)]
    )
