"""The same generated trace through Kafka into the streaming job (Prism) and through `backfill` over a file
gives identical rows, both equal to the independent reference (issue 3's "done when")."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.integration.streaming_support import PARTITIONS
from tests.integration.streaming_support import REPO
from tests.integration.streaming_support import STAMPS
from tests.integration.streaming_support import Job
from tests.integration.streaming_support import advance_records
from tests.integration.streaming_support import expected_rows
from tests.integration.streaming_support import job_args
from tests.integration.streaming_support import publish
from tests.integration.streaming_support import table_rows
from tests.integration.streaming_support import trace

pytestmark = pytest.mark.integration


def test_streaming_and_backfill_give_identical_rows(kafka_bootstrap, fresh_topic, fresh_keyspace,
                                                    tmp_path):
    records, advance_ms = trace(count=800, seed=11)
    values = [v for _, v in records]
    expected = expected_rows(values)

    # Streaming: publish while the job runs on Prism; a later record per partition closes it all.
    topic = fresh_topic(partitions=PARTITIONS)
    job = Job(job_args(kafka_bootstrap, topic, fresh_keyspace.keyspace), tmp_path / "job.log")
    try:
        publish(kafka_bootstrap, topic, records, advance_records(advance_ms))
        deadline = time.monotonic() + 200
        got = table_rows(fresh_keyspace, advance_ms - 60_000)
        while got != expected and time.monotonic() < deadline:
            if job.proc.poll() is not None:  # drained at --run_seconds: every row is final now
                assert job.proc.returncode == 0, job.output()[-4000:]
                got = table_rows(fresh_keyspace, advance_ms - 60_000)
                break
            time.sleep(2)
            got = table_rows(fresh_keyspace, advance_ms - 60_000)
        for table in expected:
            assert got[table] == expected[table], table
    finally:
        job.stop()

    # Batch: the same records as a file, into the JSON Lines export.
    path = tmp_path / "trace.jsonl"
    path.write_bytes(b"".join(v + b"\n" for v in values))
    out_dir = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "beam_cxone", "backfill", f"--input={path}",
                           "--sink=jsonl", f"--output_dir={out_dir}", "--no_progress"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for table in expected:
        lines = [json.loads(line) for f in sorted(out_dir.glob(f"{table}-*")) for line in f.open()]
        exported = sorted(json.dumps({k: v for k, v in r.items() if k not in STAMPS.get(table, ())},
                                     sort_keys=True) for r in lines)
        assert exported == expected[table], table
