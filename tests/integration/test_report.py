"""`report` against the real local Cassandra: known rows written by the project's own writer (a Beam
pipeline on the BundleBasedDirectRunner), then the exact printed aggregates, the day-partition and
full-scan reads agreeing, and the PNG (signature, IHDR size, real content).

Another test may stop Cassandra for ~40 s meanwhile: every step here is retried for a while.
Run: .venv/bin/python -m pytest tests/integration/test_report.py -q  (starts Cassandra if needed)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone.commands.report import main as run_report_command
from beam_cxone.io.cassandra_schema import create_schema
from beam_cxone.io.cassandra_schema import drop_keyspace
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.cassandra_write import WriteToCassandra
from beam_cxone.report import TimeRange
from beam_cxone.report import read_report_data
from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.tables import INTERACTION_VOLUMES
from beam_cxone.tables import PATTERN_ALERTS

pytestmark = pytest.mark.integration

T = TypeVar("T")
REPO_DIR = Path(__file__).resolve().parents[2]
S = 1000
RETRY_FOR_S = 180.0  # longer than another test's Cassandra outage (~40 s) plus its restart


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


T0 = ms("2031-03-14T23:59:40")  # the range starts here; midnight (a new day partition) at T0 + 20 s
SINCE, UNTIL = "2031-03-14T23:59:40Z", "2031-03-15T00:00:20Z"  # [T0, T0 + 40 s)


def vol(channel: str, start: int, interactions: int, events: int) -> dict:
    day = dt.datetime.fromtimestamp(start / 1000, dt.UTC).date().isoformat()
    return {
        "channel": channel,
        "day": day,
        "window_start": start,
        "window_end": start + 10 * S,
        "interactions": interactions,
        "events": events,
        "updated_at": start + 11 * S,
    }


def alert(customer: str, at: int, tier: str, region: str, channel: str = "voice") -> dict:
    return {
        "customer_id": customer,
        "alert_time": at,
        "alert_type": "REPEATED_FAILURE_CALLBACK",
        "alert_id": f"{customer}-{at}",
        "channel": channel,
        "failure_count": 3,
        "first_failure_time": at - 20 * S,
        "failure_event_ids": ["f1", "f2", "f3"],
        "callback_event_id": f"cb-{at}",
        "tier": tier,
        "region": region,
        "detected_at": at + S,
    }


def dead(at: int, reason: str, stage: str, n: int) -> dict:
    day = dt.datetime.fromtimestamp(at / 1000, dt.UTC).date().isoformat()
    return {
        "day": day,
        "recorded_at": at,
        "dead_letter_id": f"d{n}",
        "stage": stage,
        "reason": reason,
        "payload": "x" * 2000,
        "source": f"topic/0/{n}",
    }


VOLUMES = [
    vol("voice", T0 - 10 * S, 50, 50),  # before the range (same day partition): left out
    vol("voice", T0, 4, 6),
    vol("voice", T0 + 10 * S, 2, 2),
    vol("voice", T0 + 20 * S, 5, 7),  # 2031-03-15: the second day partition
    vol("chat", T0, 1, 1),
    vol("chat", T0 + 30 * S, 3, 4),
    vol("chat", T0 + 40 * S, 70, 70),  # at --until: left out
    vol("email", T0 + 20 * S, 4, 4),
]
# in range: voice 3 windows, 11 interactions, 15 events, max 5; chat 2, 4, 5, 3; email 1, 4, 4, 4
ALERTS = [
    alert("c1", T0 + 5 * S, "gold", "EMEA"),
    alert("c0", T0 + 1 * S, "bronze", "APAC", "chat"),
    alert("c1", T0 + 15 * S, "gold", "EMEA"),
    alert("c2", T0 + 21 * S, "silver", "NA"),
    alert("c1", T0 + 25 * S, "platinum", "EMEA"),
    alert("c1", T0 + 40 * S, "platinum", "EMEA"),  # at --until: left out
    alert("c9", T0 - 86_400 * S, "gold", "NA"),  # a day before: left out
]
# in range: c1 3 (latest platinum), c0 1, c2 1
DEAD = [
    dead(T0, "invalid_json", "parse", 1),
    dead(T0 + 1, "bad_time", "validate", 2),
    dead(T0 + 2, "invalid_json", "parse", 3),
    dead(T0 + 3, "late", "watermark", 4),
    dead(T0 + 25 * S, "bad_time", "validate", 5),  # 2031-03-15
    dead(T0 + 26 * S, "invalid_json", "parse", 6),  # 2031-03-15
    dead(T0 - 60 * S, "unknown_channel", "validate", 7),  # before: left out
    dead(T0 + 40 * S, "unknown_channel", "validate", 8),  # at --until: left out
]
# in range: invalid_json 3 (50.0 %), bad_time 2 (33.3 %), late 1 (16.7 %)

EXPECTED_IN_RANGE = """\
6 volume rows, 5 alerts, 6 dead letters

interaction volumes per channel (interactions: distinct contacts per window, summed)
  channel  windows  interactions  events  max/window
  voice          3            11      15           5
  chat           2             4       5           3
  email          1             4       4           4
  total          6            19      24           5

customers with most alerts (top 3 of 3)
  customer  alerts  first_alert               last_alert                tier      region
  c1             3  2031-03-14T23:59:45.000Z  2031-03-15T00:00:05.000Z  platinum  EMEA
  c0             1  2031-03-14T23:59:41.000Z  2031-03-14T23:59:41.000Z  bronze    APAC
  c2             1  2031-03-15T00:00:01.000Z  2031-03-15T00:00:01.000Z  silver    NA

dead letters by reason (top 3 of 3)
  reason        count  share  stage
  invalid_json      3  50.0%  parse
  bad_time          2  33.3%  validate
  late              1  16.7%  watermark
"""


def eventually(what: str, attempt: Callable[[], T]) -> T:
    """attempt() until it returns without raising, for up to RETRY_FOR_S (Cassandra may be away)."""
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            return attempt()
        except Exception as err:  # noqa: BLE001 - any failure while Cassandra is away
            if time.monotonic() > deadline:
                raise
            print(f"{what}: {type(err).__name__}, retrying", file=sys.stderr)
            time.sleep(3)


def write_rows(cfg: CassandraConfig) -> None:
    """The project's writer, in a tiny pipeline: the rows the report reads are real upserts."""
    p = beam.Pipeline(options=PipelineOptions(["--runner=BundleBasedDirectRunner"]))
    for name, table, rows in (
        ("Volumes", INTERACTION_VOLUMES, VOLUMES),
        ("Alerts", PATTERN_ALERTS, ALERTS),
        ("Dead", DEAD_LETTERS, DEAD),
    ):
        p | f"Create{name}" >> beam.Create(rows) | f"Write{name}" >> WriteToCassandra(cfg, table)
    p.run().wait_until_finish()


@pytest.fixture(scope="module")
def report_cfg(cassandra_cfg: CassandraConfig) -> Iterator[CassandraConfig]:
    """A keyspace of this module's own (next to the session's), holding exactly the rows above."""
    cfg = dataclasses.replace(cassandra_cfg, keyspace=f"{cassandra_cfg.keyspace}_report")
    eventually("create schema", lambda: create_schema(cfg))
    eventually("write rows", lambda: write_rows(cfg))
    yield cfg
    eventually("drop keyspace", lambda: drop_keyspace(cfg))


def cassandra_args(cfg: CassandraConfig) -> list[str]:
    return [
        f"--cassandra_hosts={','.join(cfg.hosts)}",
        f"--cassandra_port={cfg.port}",
        f"--cassandra_keyspace={cfg.keyspace}",
    ]


def run_report(capsys, argv: list[str]) -> str:
    """The command in this process; retried while it cannot read (exit 2), output of the last try."""

    def attempt() -> str:
        capsys.readouterr()
        code = run_report_command(argv)
        captured = capsys.readouterr()
        if code != 0:
            raise RuntimeError(captured.err.strip())
        return captured.out

    return eventually("report", attempt)


def test_report_prints_exact_aggregates_of_the_range(report_cfg, capsys):
    out = run_report(capsys, [*cassandra_args(report_cfg), f"--since={SINCE}", f"--until={UNTIL}"])
    assert out == (
        f"report of {report_cfg.keyspace}: window_start / alert_time / recorded_at in "
        "[2031-03-14T23:59:40.000Z, 2031-03-15T00:00:20.000Z)\n" + EXPECTED_IN_RANGE
    )


def test_day_partition_reads_equal_scans_filtered(report_cfg):
    rng = TimeRange.parse(SINCE, UNTIL)
    by_day = eventually("read by day", lambda: read_report_data(report_cfg, rng))
    scanned = eventually(
        "read by scan", lambda: read_report_data(report_cfg, rng, max_partition_days=0)
    )
    assert by_day == scanned
    assert (len(by_day.volumes), len(by_day.alerts), len(by_day.dead_letters)) == (6, 5, 6)


def test_report_limit_and_open_ranges(report_cfg, capsys):
    # everything: 8 volume rows (voice 4 windows 61, chat 3 windows 74, email 4), 7 alerts, 8 letters
    out = run_report(capsys, [*cassandra_args(report_cfg), "--limit=1"])
    lines = out.splitlines()
    assert lines[0].endswith("recorded_at in [-inf, +inf)")
    assert lines[1] == "8 volume rows, 7 alerts, 8 dead letters"
    assert lines[5:9] == [
        "  chat           3            74      75          70",
        "  voice          4            61      65          50",
        "  email          1             4       4           4",
        "  total          8           139     144          70",
    ]
    assert "customers with most alerts (top 1 of 4)" in lines
    assert (
        "  c1             4  2031-03-14T23:59:45.000Z  2031-03-15T00:00:20.000Z  platinum  EMEA"
        in lines
    )
    assert "dead letters by reason (top 1 of 4)" in lines
    assert "  invalid_json      3  37.5%  parse" in lines
    # only --until: a scan filtered on one side
    out = run_report(capsys, [*cassandra_args(report_cfg), f"--until={SINCE}"])
    assert "\n1 volume rows, 1 alerts, 1 dead letters\n" in out


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_cli_report_writes_a_1200x700_png(report_cfg, tmp_path):
    png = tmp_path / "volumes.png"
    argv = [
        sys.executable,
        "-m",
        "beam_cxone",
        "report",
        *cassandra_args(report_cfg),
        f"--since={SINCE}",
        f"--until={UNTIL}",
        f"--png={png}",
        "--log_level=WARNING",
    ]

    def attempt() -> str:
        done = subprocess.run(argv, cwd=REPO_DIR, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-500:])
        return done.stdout

    out = eventually("report --png", attempt)
    assert EXPECTED_IN_RANGE in out
    assert out.endswith(f"\nchart written to {png} (1200x700 px)\n")
    data = png.read_bytes()
    assert png_size(data) == (1200, 700)
    assert len(data) > 30_000  # lines, legend, ticks and labels; an empty chart is ~22 KB

    import matplotlib.image
    import numpy as np

    rgb = matplotlib.image.imread(str(png))[:, :, :3]
    for colour in ("#1f77b4", "#ff7f0e", "#2ca02c"):  # voice, chat, email
        target = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        assert int((abs(rgb - target).max(axis=2) < 0.02).sum()) > 200, colour
