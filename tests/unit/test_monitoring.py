"""Watching a job (beam_cxone.monitoring) without servers: human units, the status line, the stall
detector, the Prometheus names and one poll of the monitor, all with injected clocks (no sleeps)."""

from __future__ import annotations

import io
import logging
import socket
import types

import pytest
from apache_beam.metrics.cells import DistributionData
from apache_beam.metrics.cells import DistributionResult
from apache_beam.metrics.execution import MetricKey
from apache_beam.metrics.execution import MetricResult
from apache_beam.metrics.metricbase import MetricName
from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest

from beam_cxone import commands
from beam_cxone.commands import run as run_command
from beam_cxone.io.kafka.lag import PartitionLag
from beam_cxone.monitoring import BeamMetrics
from beam_cxone.monitoring import JobMonitor
from beam_cxone.monitoring import MetricsCollector
from beam_cxone.monitoring import MonitorError
from beam_cxone.monitoring import MonitorSettings
from beam_cxone.monitoring import Snapshot
from beam_cxone.monitoring import StallDetector
from beam_cxone.monitoring import beam_metrics
from beam_cxone.monitoring import format_status
from beam_cxone.monitoring import human_count
from beam_cxone.monitoring import human_duration
from beam_cxone.monitoring import human_rate
from beam_cxone.monitoring import record_time_lag_s
from beam_cxone.monitoring import stall_message
from beam_cxone.monitoring import start_metrics_server
from beam_cxone.options import OptionsError

# ----- human units ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "text"), [
    (0, "0"), (7, "7"), (999, "999"), (1000, "1.00k"), (1234, "1.23k"), (12_345, "12.3k"),
    (123_456, "123k"), (999_999, "1.00M"), (4_560_000, "4.56M"), (2_000_000_000, "2.00G"), (None, "?"),
])
def test_counts_have_three_significant_digits_from_a_thousand(n, text):
    assert human_count(n) == text


@pytest.mark.parametrize(("rate", "text"), [
    (0, "0 rec/s"), (0.25, "0.2 rec/s"), (2.5, "2.5 rec/s"), (48.4, "48 rec/s"), (1234, "1.23k rec/s"),
    (None, "? rec/s"),
])
def test_rates(rate, text):
    assert human_rate(rate) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0.4, "<1 s"), (1, "1 s"), (59.9, "59 s"), (60, "1 min 00 s"), (125, "2 min 05 s"),
    (7380, "2 h 03 min"), (100_000, "1 d 3 h"), (None, "?"),
])
def test_durations(seconds, text):
    assert human_duration(seconds) == text


# ----- settings ------------------------------------------------------------------------------------


def test_the_stall_window_is_two_status_intervals_and_at_least_30_s():
    assert MonitorSettings(status_interval_s=10).stall_window_s == 30
    assert MonitorSettings(status_interval_s=2).stall_window_s == 30
    assert MonitorSettings(status_interval_s=60).stall_window_s == 120
    assert MonitorSettings(status_interval_s=0).stall_window_s == 30  # status line off: still watched


def test_polls_at_most_every_5_s_and_with_the_status_line():
    assert MonitorSettings(status_interval_s=2).poll_s == 2
    assert MonitorSettings(status_interval_s=60).poll_s == 5
    assert MonitorSettings(status_interval_s=0).poll_s == 5


def test_invalid_monitoring_options_are_option_errors():
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_cxone.monitoring import monitor_settings

    with pytest.raises(OptionsError, match="status_interval_s must be >= 0.*metrics_port"):
        monitor_settings(PipelineOptions(["--status_interval_s=-1", "--metrics_port=70000"]))
    settings = monitor_settings(PipelineOptions([]))
    assert settings == MonitorSettings(status_interval_s=10.0, metrics_port=0)


# ----- the status line -----------------------------------------------------------------------------


def _beam(read=0, written=0, dead=0, alerts=0) -> BeamMetrics:
    return BeamMetrics(counters={"kafka_read/records_read": read, "cassandra_write/rows_written": written,
                                 "parse/dead_letters": dead, "patterns/alerts": alerts})


def _parts(*lags: tuple[int, int | None]) -> tuple[PartitionLag, ...]:
    return tuple(PartitionLag(i, 0, end, committed) for i, (end, committed) in enumerate(lags))


def test_the_status_line_shows_rate_lag_record_time_and_results_in_human_units():
    prev = Snapshot(at=100.0, beam=_beam(read=10_000), partitions=_parts((9_000, 8_000), (9_000, 8_000)))
    cur = Snapshot(at=110.0, beam=_beam(read=14_820, written=3_712, dead=3, alerts=1),
                   partitions=_parts((12_000, 11_000), (12_000, 11_234)), record_lag_s=4.2)
    assert format_status(prev, cur) == (
        "status | read 482 rec/s, 14.8k total | lag 1.77k rec | 4 s behind (record time) "
        "| written 3.71k rows | dead letters 3 | alerts 1")


def test_the_first_line_has_no_rate_and_a_caught_up_job_says_so():
    cur = Snapshot(at=5.0, beam=_beam(read=1, written=1), partitions=_parts((5, 5)), record_lag_s=0.0)
    assert format_status(None, cur, draining=True) == (
        "status (draining) | read -, 1 total | lag 0 rec (caught up) | written 1 row | dead letters 0 "
        "| alerts 0")


def test_without_runner_metrics_the_rate_comes_from_the_committed_offsets():
    prev = Snapshot(at=0.0, beam_error="_InactiveRpcError", partitions=_parts((100, 40)))
    cur = Snapshot(at=2.0, beam_error="_InactiveRpcError", partitions=_parts((100, 60)))
    line = format_status(prev, cur)
    assert line.startswith("status | committed 10 rec/s | lag 40 rec |")
    assert line.endswith("written ? | dead letters ? | alerts ? (runner metrics: _InactiveRpcError)")


def test_kafka_away_is_a_question_mark_not_a_failure():
    cur = Snapshot(at=2.0, beam=_beam(read=5), kafka_error="KafkaTimeoutError")
    assert "| lag ? (KafkaTimeoutError) |" in format_status(None, cur)


def test_a_partition_never_committed_counts_every_retained_record():
    assert PartitionLag(0, begin=10, end=25, committed=None).lag == 15
    assert PartitionLag(0, begin=10, end=25, committed=3).lag == 15  # committed below retention
    assert PartitionLag(0, begin=10, end=25, committed=25).lag == 0


def test_record_time_lag_is_the_newest_committed_records_age_on_the_worst_waiting_partition():
    times = {(0, 7): 1_000_000, (1, 0): 1_020_000, (2, 4): 1_000}  # partition 2 is caught up
    asked = []

    def record_time(partition, offset):
        asked.append((partition, offset))
        return times.get((partition, offset))

    parts = (PartitionLag(0, 0, 20, 8), PartitionLag(1, 0, 5, None), PartitionLag(2, 0, 5, 5))
    assert record_time_lag_s(parts, record_time, now_ms=1_030_000) == 30.0
    assert asked == [(0, 7), (1, 0)]
    assert record_time_lag_s(parts[2:], record_time, now_ms=1_030_000) == 0.0
    assert record_time_lag_s(parts[:1], lambda p, o: None, now_ms=1_030_000) is None


# ----- the stall detector --------------------------------------------------------------------------


def test_no_progress_while_records_wait_warns_after_the_window_then_once_a_minute():
    stall = StallDetector(window_s=30)
    committed = ((0, 100),)
    assert stall.observe(0, committed, lag=50) is None
    assert stall.observe(29.9, committed, lag=50) is None
    event = stall.observe(30, committed, lag=50)
    assert event is not None and event.stalled and event.for_s == 30 and event.waiting == 50
    assert stall.observe(35, committed, lag=60) is None
    assert stall.observe(89.9, committed, lag=60) is None
    again = stall.observe(90, committed, lag=60)
    assert again is not None and again.stalled and again.for_s == 90


def test_progress_after_a_warning_is_reported_once_and_restarts_the_window():
    stall = StallDetector(window_s=30)
    stall.observe(0, ((0, 1),), lag=5)
    assert stall.observe(40, ((0, 1),), lag=5).stalled
    resumed = stall.observe(45, ((0, 3),), lag=3)
    assert resumed is not None and not resumed.stalled and resumed.for_s == 45
    assert stall_message(resumed, "t", "g") == "progress again on topic 't' (none for 45 s)"
    assert stall.observe(50, ((0, 3),), lag=3) is None
    assert stall.observe(74, ((0, 3),), lag=3) is None
    assert stall.observe(75, ((0, 3),), lag=3).stalled


def test_a_caught_up_job_is_never_stalled():
    stall = StallDetector(window_s=30)
    for t in range(0, 600, 5):
        assert stall.observe(t, ((0, 7),), lag=0) is None
    # records arrive: the window starts when nothing last waited (595 s), not at the last commit
    assert stall.observe(600, ((0, 7),), lag=10) is None
    assert stall.observe(624, ((0, 7),), lag=10) is None
    assert stall.observe(625, ((0, 7),), lag=10).stalled


def test_reading_without_committing_is_progress_and_kafka_unknown_changes_nothing():
    stall = StallDetector(window_s=30)
    stall.observe(0, ((0, 5),), lag=100, records_read=0)
    for t in range(5, 120, 5):  # a replay after a committed resume reads below the committed offset
        assert stall.observe(t, ((0, 5),), lag=100, records_read=t * 10) is None
    assert stall.observe(200, None, lag=None) is None  # broker away: no verdict
    assert stall.observe(205, ((0, 5),), lag=100, records_read=1150).stalled  # 115 ... 205: 90 s


# ----- Beam metrics and Prometheus ----------------------------------------------------------------


def _result(namespace, name, step="s1", committed=None, attempted=None):
    return MetricResult(MetricKey(step, MetricName(namespace, name)), committed, attempted)


def _dist(count, total, lo, hi):
    return DistributionResult(DistributionData(total, count, lo, hi))


def test_beam_metrics_sum_steps_take_the_larger_of_committed_and_attempted_and_drop_runner_ones():
    query = {
        "counters": [
            _result("kafka_read", "records_read", "read", committed=90, attempted=0),  # as Prism reports
            _result("kafka_read", "records_read", "read2", committed=None, attempted=10),
            _result("beam", "metric:element_count:v1", committed=5),
        ],
        "distributions": [
            _result("cassandra_write", "batch_rows", "a", committed=_dist(3, 30, 5, 15)),
            _result("cassandra_write", "batch_rows", "b", committed=_dist(1, 4, 4, 4)),
            _result("cassandra_write", "empty", "c", committed=_dist(0, 0, 0, 0)),
        ],
        "gauges": [],
    }
    got = beam_metrics(query)
    assert got.counters == {"kafka_read/records_read": 100}
    assert got.distributions == {"cassandra_write/batch_rows": (4, 34, 4, 15)}
    assert got.counter("patterns/alerts") == 0


def _scrape(collector: MetricsCollector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def test_prometheus_names_follow_the_conventions():
    collector = MetricsCollector("cxone-data-actions")
    assert _scrape(collector) == ""  # nothing polled yet: nothing served
    collector.update(Snapshot(
        at=0.0,
        beam=BeamMetrics(counters={"kafka_read/records_read": 12, "dead_letters/invalid-json": 2},
                         distributions={"cassandra_write/batch_rows": (4, 34, 4, 15)},
                         gauges={"kafka_read/queue": 3}),
        partitions=(PartitionLag(0, 0, 10, 4), PartitionLag(1, 0, 7, 7)), record_lag_s=2.5))
    text = _scrape(collector)
    assert "beam_cxone_records_read_total 12.0" in text
    assert "beam_cxone_kafka_read_records_read_total 12.0" in text
    assert "beam_cxone_dead_letters_invalid_json_total 2.0" in text
    assert "# TYPE beam_cxone_cassandra_write_batch_rows summary" in text
    assert "beam_cxone_cassandra_write_batch_rows_count 4.0" in text
    assert "beam_cxone_cassandra_write_batch_rows_sum 34.0" in text
    assert "beam_cxone_cassandra_write_batch_rows_max 15.0" in text
    assert "beam_cxone_kafka_read_queue 3.0" in text
    assert 'beam_cxone_consumer_lag_records{partition="0",topic="cxone-data-actions"} 6.0' in text
    assert 'beam_cxone_consumer_lag_records{partition="1",topic="cxone-data-actions"} 0.0' in text
    assert "beam_cxone_consumer_lag_seconds 2.5" in text


def test_a_taken_metrics_port_is_a_one_line_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(MonitorError, match=rf"^--metrics_port={port}: 127.0.0.1:{port} already in use"):
            start_metrics_server(port, MetricsCollector("t"))


def test_the_job_is_not_submitted_when_the_metrics_port_is_taken(capsys, monkeypatch):
    submitted = []
    monkeypatch.setattr(run_command, "build_streaming", lambda *a, **k: None)
    monkeypatch.setattr(run_command.beam.Pipeline, "run", lambda self, *a, **k: submitted.append(self))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = commands.main(["--runner=PrismRunner", "--prism_location=/nonexistent/prism", "--topic=t",
                         f"--metrics_port={port}"])
    assert code == 2
    assert submitted == []
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"beam_cxone: --metrics_port={port}: 127.0.0.1:{port} already in use "
                       "(pick another port, or 0 for no metrics endpoint)")


# ----- one poll of the monitor ---------------------------------------------------------------------


class _FakeProbe:
    def __init__(self):
        self.parts = [PartitionLag(0, 0, 100, 40)]
        self.closed = False

    def offsets(self):
        return list(self.parts)

    def record_time_ms(self, partition, offset):
        return 1_000_000

    def close(self):
        self.closed = True


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _monitor(status_interval_s: float, probe: _FakeProbe, clock: _Clock, out: io.StringIO) -> JobMonitor:
    monitor = JobMonitor(MonitorSettings(status_interval_s=status_interval_s), "t", "g", lambda: probe,
                         clock=clock, wall=lambda: 1_010.0 + clock.now, out=out)
    monitor._metrics_source = lambda: {"counters": [
        _result("kafka_read", "records_read", committed=int(clock.now * 10))]}
    return monitor


def test_the_monitor_prints_a_line_each_interval(caplog):
    probe, clock, out = _FakeProbe(), _Clock(), io.StringIO()
    monitor = _monitor(2, probe, clock, out)
    for t in (0, 1, 2, 3, 4):
        clock.now = float(t)
        probe.parts = [PartitionLag(0, 0, 100, 40 + t)]
        monitor.tick()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # at 2 s and 4 s
    assert lines[0].endswith("status | read 10 rec/s, 20 total | lag 58 rec | 12 s behind (record time) "
                             "| written 0 rows | dead letters 0 | alerts 0")
    monitor.close()
    assert probe.closed


def test_the_stall_warning_comes_even_with_the_status_line_off(caplog):
    probe, clock, out = _FakeProbe(), _Clock(), io.StringIO()
    monitor = _monitor(0, probe, clock, out)
    monitor._metrics_source = lambda: {"counters": []}
    with caplog.at_level(logging.WARNING, logger="beam_cxone.monitoring"):
        for t in range(0, 100, 5):
            clock.now = float(t)
            monitor.tick()
    assert out.getvalue() == ""
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "no progress for 30 s: the job read nothing and group 'g' committed nothing on topic 't' "
        "while 60 records wait",
        "no progress for 1 min 30 s: the job read nothing and group 'g' committed nothing on topic 't' "
        "while 60 records wait",
    ]


def test_no_stall_warning_once_the_drain_started(caplog):
    probe, clock, out = _FakeProbe(), _Clock(), io.StringIO()
    monitor = _monitor(0, probe, clock, out)
    monitor._drain_at = 1_000.0  # before the monitor's first wall time
    monitor._metrics_source = lambda: {"counters": []}
    with caplog.at_level(logging.WARNING, logger="beam_cxone.monitoring"):
        for t in range(0, 100, 5):
            clock.now = float(t)
            monitor.tick()
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []


def test_poll_errors_become_question_marks():
    clock, out = _Clock(), io.StringIO()

    def broken_probe():
        raise OSError("no broker")

    monitor = JobMonitor(MonitorSettings(status_interval_s=1), "t", "g", broken_probe, clock=clock,
                         wall=lambda: 0.0, out=out)
    monitor._metrics_source = lambda: (_ for _ in ()).throw(RuntimeError("job service gone"))
    monitor.tick()
    clock.now = 1.0
    snap = monitor.tick()
    assert snap.beam is None and snap.beam_error == "RuntimeError"
    assert snap.partitions is None and snap.kafka_error == "OSError"
    assert "lag ? (OSError)" in out.getvalue()


def test_without_a_group_there_is_no_lag_and_no_probe():
    made = []
    monitor = JobMonitor(MonitorSettings(), "t", None, lambda: made.append(1), clock=_Clock(), out=io.StringIO())
    snap = monitor.poll()
    assert made == [] and snap.kafka_error == "no --group_id"


def test_live_metrics_ask_the_job_service_each_time_and_leave_the_result_cache_alone():
    from beam_cxone.monitoring import live_metrics_query

    calls = []

    class Service:
        def GetJobMetrics(self, request, timeout=None):  # noqa: N802 - the gRPC method's name
            calls.append((request.job_id, timeout))
            from apache_beam.portability.api import beam_job_api_pb2

            return beam_job_api_pb2.GetJobMetricsResponse()

    result = types.SimpleNamespace(_job_service=Service(), _job_id="job-1", _metrics=None)
    assert live_metrics_query(result)["counters"] == []
    live_metrics_query(result)
    assert calls == [("job-1", 5.0), ("job-1", 5.0)]
    assert result._metrics is None
