"""The report's pure parts (range, aggregates, text, chart) and the metrics table, no Cassandra.

Rows are hand-written; every expected aggregate is computed by hand in the comments.
Run: .venv/bin/python -m pytest tests/unit/test_report.py -q
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import struct
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.metrics import Metrics
from apache_beam.metrics.cells import DistributionData
from apache_beam.metrics.cells import DistributionResult
from apache_beam.metrics.cells import GaugeData
from apache_beam.metrics.cells import GaugeResult
from apache_beam.metrics.execution import MetricKey
from apache_beam.metrics.execution import MetricResult
from apache_beam.metrics.metricbase import MetricName
from apache_beam.options.pipeline_options import PipelineOptions

import beam_cxone.report as report
from beam_cxone.commands.report import main as run_report_command
from beam_cxone.console import held_logs
from beam_cxone.metrics_report import format_metrics
from beam_cxone.metrics_report import metric_values
from beam_cxone.report import ChannelVolume
from beam_cxone.report import CustomerAlerts
from beam_cxone.report import ReasonCount
from beam_cxone.report import ReportData
from beam_cxone.report import TimeRange
from beam_cxone.report import dead_letters_by_reason
from beam_cxone.report import format_report
from beam_cxone.report import format_table
from beam_cxone.report import render_png
from beam_cxone.report import top_customers
from beam_cxone.report import volume_series
from beam_cxone.report import volumes_by_channel


def ms(text: str) -> int:
    """'2031-03-14T23:59:40' (UTC) -> epoch ms, independent of the code under test."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


S = 1000
T0 = ms("2031-03-14T23:59:40")  # 1931299180000; midnight (the day partition edge) is T0 + 20 s
MIDNIGHT = ms("2031-03-15T00:00:00")


def vol(channel: str, start: int, interactions: int, events: int, size: int = 10 * S) -> dict:
    return {
        "channel": channel,
        "window_start": start,
        "window_end": start + size,
        "interactions": interactions,
        "events": events,
    }


def alert(customer: str, at: int, tier: str, region: str, channel: str = "voice") -> dict:
    return {
        "customer_id": customer,
        "alert_time": at,
        "alert_type": "REPEATED_FAILURE_CALLBACK",
        "channel": channel,
        "tier": tier,
        "region": region,
    }


def dead(at: int, reason: str, stage: str = "parse") -> dict:
    return {"recorded_at": at, "stage": stage, "reason": reason}


VOLUMES = [
    vol("voice", T0, 4, 6),
    vol("voice", T0 + 10 * S, 2, 2),
    vol("voice", T0 + 20 * S, 5, 7),
    vol("chat", T0, 1, 1),
    vol("chat", T0 + 30 * S, 3, 4),
    vol("email", T0 + 20 * S, 4, 4),
]
# voice: 3 windows, 4+2+5 = 11 interactions, 6+2+7 = 15 events, busiest window 5
# chat:  2 windows, 1+3 = 4, 1+4 = 5, busiest 3;  email: 1 window, 4, 4, 4
# chat and email tie on 4 interactions: by channel name.  total: 6, 19, 24, max 5
ALERTS = [
    alert("c1", T0 + 5 * S, "gold", "EMEA"),
    alert("c0", T0 + 1 * S, "bronze", "APAC", "chat"),
    alert("c1", T0 + 15 * S, "gold", "EMEA"),
    alert("c2", T0 + 21 * S, "silver", "NA"),
    alert("c1", T0 + 25 * S, "platinum", "EMEA"),  # c1's latest: its tier is shown
]
# c1: 3 alerts (first T0+5 s, last T0+25 s, platinum); c0 and c2 tie on 1: by customer id
DEAD = [
    dead(T0, "invalid_json"),
    dead(T0 + 1, "bad_time", "validate"),
    dead(T0 + 2, "invalid_json"),
    dead(T0 + 3, "late", "watermark"),
    dead(T0 + 4, "bad_time", "validate"),
    dead(T0 + 5, "invalid_json"),
]
# invalid_json 3 (50.0 %), bad_time 2 (33.3 %), late 1 (16.7 %)
DATA = ReportData(VOLUMES, ALERTS, DEAD)
RANGE = TimeRange(T0, T0 + 40 * S)


# ---- the range ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "since, until, expected",
    [
        ("2031-03-14T23:59:40Z", "2031-03-15T00:00:20Z", (T0, T0 + 40 * S)),
        ("2031-03-15T01:59:40+02:00", "2031-03-15T00:00:20.000Z", (T0, T0 + 40 * S)),
        (str(T0), str(T0 + 1), (T0, T0 + 1)),
        (None, "1931299220000", (None, T0 + 40 * S)),
        ("2031-03-14T23:59:40Z", None, (T0, None)),
        (None, None, (None, None)),
    ],
)
def test_time_range_parses_rfc3339_and_epoch_ms(since, until, expected):
    rng = TimeRange.parse(since, until)
    assert (rng.since_ms, rng.until_ms) == expected


@pytest.mark.parametrize(
    "since, until, message",
    [
        # the wording of a bad time is time_args.parse_time_ms's; the report names the flag
        ("2031-03-14T23:59:40", None, "--since: time '2031-03-14T23:59:40' "),
        (None, "yesterday", "--until: "),
        (
            str(T0),
            str(T0),
            "--since (2031-03-14T23:59:40.000Z) must be before --until (2031-03-14T23:59:40.000Z)",
        ),
    ],
)
def test_time_range_rejects_bad_bounds(since, until, message):
    with pytest.raises(ValueError) as err:
        TimeRange.parse(since, until)
    assert str(err.value).startswith(message)
    assert "yesterday" in str(err.value) or until != "yesterday"


def test_the_reports_pure_part_imports_neither_beam_nor_the_drivers():
    code = ("import sys, beam_cxone.report_tables; "
            "print(sorted({'apache_beam', 'kafka', 'cassandra'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_time_range_is_half_open():
    assert not RANGE.contains(T0 - 1)
    assert RANGE.contains(T0)
    assert RANGE.contains(T0 + 40 * S - 1)
    assert not RANGE.contains(T0 + 40 * S)
    assert TimeRange(None, None).contains(0)
    assert RANGE.describe() == "[2031-03-14T23:59:40.000Z, 2031-03-15T00:00:20.000Z)"
    assert TimeRange(None, T0).describe() == "[-inf, 2031-03-14T23:59:40.000Z)"


def test_days_are_the_day_partitions_the_range_touches():
    assert RANGE.days() == ["2031-03-14", "2031-03-15"]
    # until is exclusive: a range ending at midnight does not touch the next day
    assert TimeRange(T0, MIDNIGHT).days() == ["2031-03-14"]
    assert TimeRange(MIDNIGHT, MIDNIGHT + 1).days() == ["2031-03-15"]
    assert TimeRange(MIDNIGHT - 3 * 86_400_000, MIDNIGHT).days() == [
        "2031-03-12",
        "2031-03-13",
        "2031-03-14",
    ]
    # open or too long: None, the tables are scanned
    assert TimeRange(T0, None).days() is None
    assert TimeRange(None, T0).days() is None
    assert TimeRange(MIDNIGHT - 3 * 86_400_000, MIDNIGHT).days(max_days=2) is None


# ---- aggregates ---------------------------------------------------------------------------------


def test_volumes_by_channel():
    assert volumes_by_channel(VOLUMES) == [
        ChannelVolume("voice", 3, 11, 15, 5),
        ChannelVolume("chat", 2, 4, 5, 3),
        ChannelVolume("email", 1, 4, 4, 4),
    ]
    assert volumes_by_channel([]) == []


def test_top_customers_most_alerts_first_then_id_with_latest_tier():
    assert top_customers(ALERTS) == [
        CustomerAlerts("c1", 3, T0 + 5 * S, T0 + 25 * S, "platinum", "EMEA"),
        CustomerAlerts("c0", 1, T0 + 1 * S, T0 + 1 * S, "bronze", "APAC"),
        CustomerAlerts("c2", 1, T0 + 21 * S, T0 + 21 * S, "silver", "NA"),
    ]
    assert [c.customer_id for c in top_customers(ALERTS, limit=2)] == ["c1", "c0"]


def test_dead_letters_by_reason():
    assert dead_letters_by_reason(DEAD) == [
        ReasonCount("invalid_json", 3, ("parse",)),
        ReasonCount("bad_time", 2, ("validate",)),
        ReasonCount("late", 1, ("watermark",)),
    ]
    two_stages = [dead(1, "too_large", "read"), dead(2, "too_large", "parse")]
    assert dead_letters_by_reason(two_stages) == [ReasonCount("too_large", 2, ("parse", "read"))]


# ---- text ---------------------------------------------------------------------------------------


def test_format_table_aligns_numbers_right_and_text_left():
    text = format_table(["name", "n", "note"], [["a", 5, ""], ["long", 123, "x"]], numeric=(1,))
    assert text == ("  name    n  note\n  a       5\n  long  123  x")


def test_format_report_exact_text():
    expected = """\
report of ks: window_start / alert_time / recorded_at in [2031-03-14T23:59:40.000Z, 2031-03-15T00:00:20.000Z)
6 volume rows, 5 alerts, 6 dead letters

interaction volumes per channel (interactions: distinct contacts per window, summed)
  channel  windows  interactions  events  max/window
  voice          3            11      15           5
  chat           2             4       5           3
  email          1             4       4           4
  total          6            19      24           5

customers with most alerts (top 2 of 3)
  customer  alerts  first_alert               last_alert                tier      region
  c1             3  2031-03-14T23:59:45.000Z  2031-03-15T00:00:05.000Z  platinum  EMEA
  c0             1  2031-03-14T23:59:41.000Z  2031-03-14T23:59:41.000Z  bronze    APAC

dead letters by reason (top 2 of 3)
  reason        count  share  stage
  invalid_json      3  50.0%  parse
  bad_time          2  33.3%  validate
"""
    assert format_report(DATA, RANGE, limit=2, keyspace="ks") == expected


def test_format_report_of_nothing():
    expected = """\
report: window_start / alert_time / recorded_at in [-inf, +inf)
0 volume rows, 0 alerts, 0 dead letters

interaction volumes per channel (interactions: distinct contacts per window, summed)
  (none)

customers with most alerts (top 0 of 0)
  (none)

dead letters by reason (top 0 of 0)
  (none)
"""
    assert format_report(ReportData([], [], []), TimeRange()) == expected


# ---- the chart ----------------------------------------------------------------------------------


def test_volume_series_sums_into_window_bins_with_zeros_where_no_row():
    series = volume_series(VOLUMES)
    # windows from T0 to T0 + 40 s: 4 bins of 10 s
    assert series.bin_ms == 10 * S
    assert series.starts_ms == [T0, T0 + 10 * S, T0 + 20 * S, T0 + 30 * S]
    assert series.by_channel == {
        "voice": [4, 2, 5, 0],
        "chat": [1, 0, 0, 3],
        "email": [0, 0, 4, 0],
    }
    assert list(series.by_channel) == ["voice", "chat", "email"]  # most interactions first


def test_volume_series_coarser_bins_for_long_ranges():
    # one 10 s window with 1 interaction every 10 s for an hour: 360 windows > 150 points
    rows = [vol("sms", T0 + i * 10 * S, 1, 1) for i in range(360)]
    series = volume_series(rows, max_points=150)
    # the smallest nice bin keeping 3600 s under 150 points: 30 s; 121 bins (T0 is not 30 s aligned)
    assert series.bin_ms == 30 * S
    assert series.starts_ms[0] == T0 - T0 % (30 * S)
    assert sum(series.by_channel["sms"]) == 360
    assert len(series.starts_ms) == 121
    assert volume_series([]) == (0, [], {})


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG signature and IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def colour_pixels(path: Path, hex_colour: str) -> int:
    """How many pixels are (almost exactly) this colour."""
    import matplotlib.image

    rgb = matplotlib.image.imread(str(path))[:, :, :3]
    target = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((np.abs(rgb - target).max(axis=2) < 0.02).sum())


def test_render_png_is_a_1200x700_chart_with_a_line_per_channel(tmp_path):
    path = tmp_path / "volumes.png"
    render_png(DATA, str(path), title="Interactions per channel")
    assert png_size(path) == (report.PNG_WIDTH_PX, report.PNG_HEIGHT_PX) == (1200, 700)
    assert path.stat().st_size > 30_000
    # each channel's fixed colour is drawn (lines, legend, alert ticks): voice, chat, email
    for colour in ("#1f77b4", "#ff7f0e", "#2ca02c"):
        assert colour_pixels(path, colour) > 200, colour
    assert colour_pixels(path, "#d62728") == 0  # sms: no data, no line


def test_render_png_of_nothing_still_draws(tmp_path):
    path = tmp_path / "empty.png"
    render_png(ReportData([], [], []), str(path), title="nothing")
    assert png_size(path) == (1200, 700)


# ---- reading (a fake session: which queries, which columns) --------------------------------------


class _FakeSession:
    """Answers a scan with every row of the table, and a partition query with the rows only for
    voice on 2031-03-14 (volumes) or for 2031-03-14 (dead letters): each row comes back once."""

    DAY = dt.date(2031, 3, 14)

    def __init__(self, rows_by_table: dict[str, list[tuple]]):
        self.rows_by_table = rows_by_table
        self.queries: list[tuple[str, list]] = []
        self.prepared: list[str] = []

    def prepare(self, cql: str) -> str:
        self.prepared.append(cql)
        return cql

    def execute(self, cql: str, params: list):
        self.queries.append((cql, params))
        table = cql.split(" FROM ")[1].split()[0].split(".")[1]
        rows = self.rows_by_table.get(table, [])
        if " WHERE " not in cql:
            return rows
        if table == "interaction_volumes":
            return rows if params[:2] == ["voice", self.DAY] else []
        return rows if params[0] == self.DAY else []


class _FakeCluster:
    def __init__(self):
        self.shut = False

    def shutdown(self):
        self.shut = True


def _utc(ms_: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms_)


@pytest.fixture
def fake_cassandra(monkeypatch):
    session = _FakeSession(
        {
            "interaction_volumes": [("voice", _utc(T0), _utc(T0 + 10 * S), 4, 6)],
            "pattern_alerts": [
                ("c1", _utc(T0 + 5 * S), "X", "voice", "gold", "EMEA"),
                ("c9", _utc(T0 - 1), "X", "voice", "gold", "EMEA"),
            ],
            "dead_letters": [(_utc(T0), "parse", "invalid_json")],
        }
    )
    cluster = _FakeCluster()
    monkeypatch.setattr(report, "open_session", lambda cfg: (cluster, session))
    return session, cluster


def test_read_by_day_partitions_when_both_bounds_are_given(fake_cassandra):
    from beam_cxone.io.cassandra_write import CassandraConfig

    session, cluster = fake_cassandra
    data = report.read_report_data(CassandraConfig(hosts=("h",), keyspace="ks"), RANGE)
    cql = [q for q, _ in session.queries]
    # 2 days x 7 channels of volumes, 2 days of dead letters, one scan of the alerts
    assert len([q for q in cql if "interaction_volumes" in q]) == 14
    assert all(
        "channel = ? AND day = ? AND window_start >= ? AND window_start < ?" in q
        for q in cql
        if "interaction_volumes" in q
    )
    assert len([q for q in cql if "dead_letters WHERE day = ?" in q]) == 2
    assert [q for q in cql if "pattern_alerts" in q] == [
        "SELECT customer_id, alert_time, alert_type, channel, tier, region FROM ks.pattern_alerts"
    ]
    assert not any("payload" in q for q in cql)  # dead letters' payloads are never read
    assert len(session.prepared) == len(set(cql)) == 3  # each query prepared once
    assert cluster.shut
    # c9's alert is before the range: filtered out here
    assert [r["customer_id"] for r in data.alerts] == ["c1"]
    assert data.volumes[0] == {
        "channel": "voice",
        "window_start": T0,
        "window_end": T0 + 10 * S,
        "interactions": 4,
        "events": 6,
    }
    assert data.dead_letters[0] == {"recorded_at": T0, "stage": "parse", "reason": "invalid_json"}


def test_read_scans_and_filters_when_a_bound_is_open(fake_cassandra):
    from beam_cxone.io.cassandra_write import CassandraConfig

    session, _ = fake_cassandra
    data = report.read_report_data(
        CassandraConfig(hosts=("h",), keyspace="ks"), TimeRange(T0, None)
    )
    assert [q for q, _ in session.queries] == [
        "SELECT channel, window_start, window_end, interactions, events FROM ks.interaction_volumes",
        "SELECT recorded_at, stage, reason FROM ks.dead_letters",
        "SELECT customer_id, alert_time, alert_type, channel, tier, region FROM ks.pattern_alerts",
    ]
    assert (len(data.volumes), len(data.alerts), len(data.dead_letters)) == (1, 1, 1)


# ---- the command --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--limit=0"], "--limit must be >= 1, got 0"),
        (["--since=2031-03-14T23:59:40"], "--since: time '2031-03-14T23:59:40' "),
        ([f"--since={T0}", f"--until={T0}"], "must be before --until"),
        (["--cassandra_keyspace=Bad-Name"], "keyspace must be a lower-case CQL identifier"),
    ],
)
def test_command_rejects_bad_arguments_before_connecting(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(report, "open_session", lambda cfg: pytest.fail("must not connect"))
    assert run_report_command(argv) == 2
    assert message in capsys.readouterr().err


def test_command_names_the_cause_when_cassandra_is_unreachable(capsys):
    assert run_report_command(["--cassandra_port=1", "--cassandra_keyspace=ks"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("beam_cxone report: cannot read ks from 127.0.0.1:1: NoHostAvailable")


def test_unreachable_cassandra_is_one_line_on_the_command_line():
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "beam_cxone", "report", "--cassandra_hosts=127.0.0.1",
         f"--cassandra_port={port}", "--cassandra_keyspace=ks"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"beam_cxone report: cannot read ks from 127.0.0.1:{port}: NoHostAvailable")
    assert done.stderr.count("\n") == 1, done.stderr  # no driver traceback before it


def test_driver_logs_of_a_connect_are_passed_on_once_connected_and_dropped_when_it_fails(caplog):
    driver = logging.getLogger("cassandra.cluster")
    with caplog.at_level(logging.WARNING):
        with held_logs("cassandra"):
            driver.warning("kept: logged while connecting")
            assert caplog.messages == []  # held back until the connect ends
        with pytest.raises(OSError), held_logs("cassandra"):
            driver.error("dropped: the failed connect's traceback", exc_info=True)
            raise OSError("refused")
        driver.warning("after the connect: as ever")
    assert caplog.messages == ["kept: logged while connecting", "after the connect: as ever"]
    assert logging.getLogger("cassandra").propagate


def test_command_prints_report_and_png(fake_cassandra, capsys, tmp_path):
    png = tmp_path / "out.png"
    argv = [
        f"--since={T0}",
        "--until=2031-03-15T00:00:20Z",
        "--limit=5",
        f"--png={png}",
        "--log_level=WARNING",
    ]
    assert run_report_command(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "report of cxone_analytics: window_start / alert_time / recorded_at in "
        "[2031-03-14T23:59:40.000Z, 2031-03-15T00:00:20.000Z)\n"
        "1 volume rows, 1 alerts, 1 dead letters\n"
    )
    assert out.endswith(f"\nchart written to {png} (1200x700 px)\n")
    assert png_size(png) == (1200, 700)


# ---- metrics ------------------------------------------------------------------------------------


def _counter(step: str, namespace: str, name: str, committed, attempted=None) -> MetricResult:
    key = MetricKey(step, MetricName(namespace, name))
    return MetricResult(key, committed, attempted if attempted is not None else committed)


def _distribution(step: str, namespace: str, name: str, total: int, count: int, lo: int, hi: int):
    value = DistributionResult(DistributionData(total, count, lo, hi))
    return MetricResult(MetricKey(step, MetricName(namespace, name)), value, value)


class _FakeResult:
    def __init__(self, query=None, error: Exception | None = None):
        self._query, self._error = query, error

    def metrics(self):
        if self._error:
            raise self._error
        return self

    def query(self, filter=None):
        return self._query


def test_format_metrics_sums_over_steps_and_sorts():
    result = _FakeResult(
        {
            "counters": [
                _counter("ReadKafka/ReadPartitions", "kafka_read", "records_read", 1250),
                _counter(
                    "WriteInteractionVolumes/UpsertRows", "cassandra_write", "rows_written", 200
                ),
                _counter("WritePatternAlerts/UpsertRows", "cassandra_write", "rows_written", 34),
                _counter("ParseAndRoute/ParseRecords", "dead_letters", "invalid_json", 3),
                _counter("ParseAndRoute/ParseRecords", "parse", "late_records", 0),
                _counter(
                    "x", "dedup", "duplicates_dropped", None, attempted=7
                ),  # no committed value
                _counter("x", "beam", "metric:element_count:v1", 99),  # runner-internal: left out
            ],
            "distributions": [
                _distribution("a", "cassandra_write", "batch_rows", 60, 3, 10, 30),
                _distribution("b", "cassandra_write", "batch_rows", 5, 1, 5, 5),
                _distribution("c", "kafka_read", "records_per_call", 0, 0, 0, 0),
            ],
            "gauges": [
                MetricResult(
                    MetricKey("a", MetricName("kafka_read", "lag")),
                    GaugeResult(GaugeData(5, 100)),
                    None,
                ),
                MetricResult(
                    MetricKey("b", MetricName("kafka_read", "lag")),
                    GaugeResult(GaugeData(2, 200)),
                    None,
                ),
            ],
        }
    )
    # rows_written 200 + 34; batch_rows: count 3 + 1, sum 65, min 5, max 30; lag: the latest gauge
    # names padded to the longest (28), numbers right-aligned to the widest (4)
    assert format_metrics(result) == (
        "metrics (committed; counters summed over steps)\n"
        "  cassandra_write/batch_rows    count=4 sum=65 min=5 mean=16.2 max=30\n"
        "  cassandra_write/rows_written   234\n"
        "  dead_letters/invalid_json        3\n"
        "  dedup/duplicates_dropped         7\n"
        "  kafka_read/lag                   2\n"
        "  kafka_read/records_per_call   count=0\n"
        "  kafka_read/records_read       1250\n"
        "  parse/late_records               0"
    )


def test_format_metrics_without_metrics_or_runner_support():
    assert (
        format_metrics(_FakeResult({"counters": [], "distributions": []}))
        == "metrics: none reported"
    )
    broken = _FakeResult(error=NotImplementedError("no metrics"))
    assert format_metrics(broken) == "metrics: not available from this runner (NotImplementedError)"


class _CountAndMeasure(beam.DoFn):
    def __init__(self):
        self._parsed = Metrics.counter("parse", "records_parsed")
        self._sizes = Metrics.distribution("parse", "record_bytes")

    def process(self, element):
        self._parsed.inc()
        self._sizes.update(len(element))
        yield element


def test_metric_values_of_a_real_direct_run():
    options = PipelineOptions(
        ["--runner=apache_beam.runners.portability.fn_api_runner.FnApiRunner"]
    )
    p = beam.Pipeline(options=options)
    words = p | beam.Create(["a", "bb", "cccc"])
    words | "First" >> beam.ParDo(_CountAndMeasure()) | "Second" >> beam.ParDo(_CountAndMeasure())
    result = p.run()
    result.wait_until_finish()
    # 3 elements through two steps: 6 counted; sizes 1, 2, 4 twice
    assert metric_values(result) == {
        "parse/record_bytes": "count=6 sum=14 min=1 mean=2.3 max=4",
        "parse/records_parsed": "6",
    }


# ---- the operations guide -----------------------------------------------------------------------


def test_operations_guide_lists_every_option_with_its_default():
    """docs/OPERATIONS.md's configuration reference must not drift from the options classes."""
    import argparse

    from beam_cxone import options as opts
    from beam_cxone.cxone.options import CxoneOptions

    guide = (Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md").read_text()
    rows = {
        line.split("|")[1].strip(): line for line in guide.splitlines() if line.startswith("| `--")
    }
    missing = []
    for cls in (
        opts.KafkaOptions,
        opts.AnalyticsOptions,
        opts.CassandraOptions,
        opts.JobOptions,
        CxoneOptions,
    ):
        parser = argparse.ArgumentParser()
        cls._add_argparse_args(parser)
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            flag = action.option_strings[0]
            row = next((line for key, line in rows.items() if f"`{flag}`" in key), None)
            default = action.default
            shown = {str(default)}
            if isinstance(default, float) and default.is_integer():
                shown.add(str(int(default)))  # 0.0 may read `0`
            tokens = set((row or "").replace("`", " ").replace("|", " ").split())
            if row is None:
                missing.append(f"{flag}: no row")
            elif isinstance(default, str) and default not in row:
                missing.append(f"{flag}: default {default!r} not in its row")
            elif isinstance(default, int | float) and not isinstance(default, bool):
                if not shown & tokens:  # numbers as whole words: `0` must not match `10`
                    missing.append(f"{flag}: default {default!r} not in its row")
    assert missing == []
