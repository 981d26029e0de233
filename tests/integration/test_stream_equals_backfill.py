"""The same generated trace through Kafka into the streaming job (Prism) and through `backfill` over a file
gives identical rows, both equal to the independent reference (issue 3's "done when")."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from beam_cxone.generator import GeneratorConfig
from beam_cxone.generator import generate
from beam_cxone.io.cassandra_schema import read_rows
from beam_cxone.tables import TABLES
from tests.reference import iso
from tests.reference import raw_lines
from tests.reference import reference

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 3
CFG = GeneratorConfig(count=800, seed=11)
# Columns the pipeline stamps with the wall clock are left out of the comparison.
STAMPS = {"interaction_volumes": {"updated_at"}, "pattern_alerts": {"detected_at", "alert_id"}}
ADVANCE_OFFSET_MS = 10 * 60 * 1000


def _export(table: str, row: dict) -> dict:
    """A Cassandra row in the export format of tests/reference.py, stamps left out."""
    out = {}
    for name, cql_type in TABLES[table].columns:
        if name in STAMPS.get(table, ()) or (table == "dead_letters"):
            continue
        value = row[name]
        out[name] = iso(value) if cql_type == "timestamp" else value
    return out


def _rows(cfg, table: str, before_ms: int) -> list[str]:
    rows = read_rows(cfg, TABLES[table])
    if table == "interaction_volumes":
        rows = [r for r in rows if r["window_start"] < before_ms]
    return sorted(json.dumps(_export(table, r), sort_keys=True) for r in rows)


def _expected(records: list[bytes]) -> dict[str, list[str]]:
    ref = reference(raw_lines(records))
    out = {}
    for table in ("interaction_volumes", "pattern_alerts", "customer_profiles"):
        out[table] = sorted(json.dumps({k: v for k, v in r.items() if k not in STAMPS.get(table, ())},
                                       sort_keys=True) for r in ref[table])
    return out


def _run(args: list[str], timeout: float) -> None:
    proc = subprocess.run([sys.executable, "-m", "beam_cxone", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_streaming_and_backfill_give_identical_rows(kafka_bootstrap, fresh_topic, fresh_keyspace,
                                                    tmp_path):
    records = list(generate(CFG))
    values = [r.value for r in records]
    expected = _expected(values)
    last_ms = CFG.start_ms + int(CFG.count / CFG.events_per_second_event_time * 1000) + 60_000
    advance_ms = last_ms + ADVANCE_OFFSET_MS

    # Streaming: publish while the job runs on Prism; a late-enough record per partition closes it all.
    topic = fresh_topic(partitions=PARTITIONS)
    job = subprocess.Popen(
        [sys.executable, "-m", "beam_cxone", f"--bootstrap_servers={kafka_bootstrap}", f"--topic={topic}",
         f"--cassandra_keyspace={fresh_keyspace.keyspace}", "--run_seconds=240", "--idle_timeout_s=2"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        for r in records:
            producer.send(topic, key=r.key, value=r.value)
        for p in range(PARTITIONS):
            advance = {"eventId": f"advance-{p}", "eventTime": advance_ms, "contactId": f"adv-{p}",
                       "channel": "voice", "eventType": "CONTACT_STARTED"}
            producer.send(topic, value=json.dumps(advance).encode(), partition=p)
        producer.flush()
        producer.close()
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline:
            got = {t: _rows(fresh_keyspace, t, advance_ms - 60_000) for t in expected}
            if got == expected:
                break
            assert job.poll() is None, job.stdout.read()[-4000:]
            time.sleep(2)
        for table in expected:
            assert got[table] == expected[table], table
    finally:
        job.terminate()
        try:
            job.wait(timeout=30)
        except subprocess.TimeoutExpired:
            job.kill()

    # Batch: the same records as a file, into the JSON Lines export.
    trace = tmp_path / "trace.jsonl"
    trace.write_bytes(b"".join(v + b"\n" for v in values))
    out_dir = tmp_path / "out"
    _run(["backfill", f"--input={trace}", "--sink=jsonl", f"--output_dir={out_dir}"], 300)
    for table in expected:
        rows = [json.loads(line) for f in sorted(out_dir.glob(f"{table}-*")) for line in f.open()]
        exported = sorted(json.dumps({k: v for k, v in r.items() if k not in STAMPS.get(table, ())},
                                     sort_keys=True) for r in rows)
        assert exported == expected[table], table
