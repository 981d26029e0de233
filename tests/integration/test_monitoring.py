"""Watching the streaming job on the real stack: the Prometheus endpoint shows the consumer lag fall to 0
and the records-read counter reach the number published while the job runs on Prism; the status line
is printed every --status_interval_s."""

from __future__ import annotations

import re
import socket
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.streaming_support import Job
from tests.integration.streaming_support import publish
from tests.integration.streaming_support import trace

pytestmark = pytest.mark.integration

STATUS = re.compile(r"^\d\d:\d\d:\d\d status( \(draining\))? \| read .* \| lag .* \| written .* "
                    r"\| dead letters \d+ \| alerts \d+$", re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_lines(output: str) -> list[str]:
    return [m.group(0) for m in STATUS.finditer(output)]


def _scrape(port: int) -> dict[str, list[tuple[dict, float]]]:
    """name -> [(labels, value)] of every sample on /metrics ({} while the endpoint has nothing yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    samples: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_metrics_endpoint_shows_lag_falling_to_zero_and_every_record_read(
        kafka_bootstrap, fresh_topic, fresh_keyspace, tmp_path):
    topic = fresh_topic(partitions=2, prefix="it-mon")
    records, _ = trace(300, seed=15)
    publish(kafka_bootstrap, topic, records)  # waiting before the job starts: the lag starts at 300
    port = _free_port()
    job = Job([f"--bootstrap_servers={kafka_bootstrap}", f"--topic={topic}", f"--group_id={topic}",
               f"--cassandra_keyspace={fresh_keyspace.keyspace}", "--idle_timeout_s=2",
               "--run_seconds=25", "--status_interval_s=2", f"--metrics_port={port}"],
              tmp_path / "job.log")
    try:
        lags_seen: list[float] = []
        read = lag = None
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            job.check_alive()
            samples = _scrape(port)
            partitions = samples.get("beam_cxone_consumer_lag_records", [])
            if partitions:
                assert {labels["topic"] for labels, _ in partitions} == {topic}
                assert sorted(labels["partition"] for labels, _ in partitions) == ["0", "1"]
                lag = sum(value for _, value in partitions)
                lags_seen.append(lag)
                read = next((v for _, v in samples.get("beam_cxone_records_read_total", [])), None)
                if lag == 0 and read == len(records):
                    break
            time.sleep(0.5)
        assert lags_seen and max(lags_seen) > 0, "the records published before the start were waiting"
        assert (lag, read) == (0, len(records))
        job.proc.wait(timeout=60)  # the drain at --run_seconds ends the job by itself
        out = job.output()
        assert job.proc.returncode == 0, out[-4000:]
        lines = _status_lines(out)
        assert len(lines) >= 5, out[-4000:]  # every 2 s of a 25 s run
        assert any(f"{len(records)} total | lag 0 rec (caught up) |" in line for line in lines), lines
        assert "no progress for" not in out
    finally:
        job.stop()
