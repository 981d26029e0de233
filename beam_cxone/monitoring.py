"""Watching a running streaming job from the process that launched it: a status line on stderr, a
stall warning, and a Prometheus endpoint.

One thread polls, every `min(--status_interval_s, 5)` seconds (5 when the status line is off):
- the job's Beam metrics, live, from the runner's job service (`GetJobMetrics`; on Prism the
  "committed" values are those of every finished bundle and grow while the job runs; the "attempted"
  ones are only the bundles in flight);
- the consumer group's committed offsets and the end offsets of the topic (`beam_cxone.io.kafka.lag`);
- for the record-time lag, the Kafka timestamp of the last record the group committed.

and from what it saw:
- prints a status line every `--status_interval_s` (0 = off):

    06:40:12 status | read 480 rec/s, 12.3k total | lag 1.2k rec | 4 s behind (record time)
    | written 370 rows | dead letters 3 | alerts 0            (one line)

- logs a WARNING when records wait (lag > 0) and neither the group's committed offsets nor the
  read counter moved for `2 x --status_interval_s` (at least 30 s), at most once a minute, and an
  INFO line when progress resumes. Independent of the status line; quiet once the drain started;
- serves the latest poll on `--metrics_port` (127.0.0.1, Prometheus text format).

"Behind (record time)" is not the event-time watermark, which lives in the workers and which no
runner's job API reports: it is the wall clock minus the Kafka timestamp (the producer's CreateTime)
of the newest record the group has committed (the first waiting one when it committed nothing yet),
the worst over the partitions that have records waiting; 0 when every partition is caught up.

Nothing here may fail the job: every poll error becomes a `?` on the status line and a debug log.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any
from typing import TextIO

from beam_cxone.io.kafka.lag import PartitionLag

__all__ = [
    "BeamMetrics",
    "JobMonitor",
    "MetricsCollector",
    "MonitorError",
    "MonitorSettings",
    "Snapshot",
    "StallDetector",
    "StallEvent",
    "beam_metrics",
    "format_status",
    "human_count",
    "human_duration",
    "human_rate",
    "live_metrics_query",
    "monitor_settings",
    "record_time_lag_s",
    "start_metrics_server",
    "stall_message",
]

_LOG = logging.getLogger(__name__)

STALL_WINDOW_MIN_S = 30.0
STALL_REPEAT_S = 60.0
POLL_MAX_S = 5.0
METRICS_HOST = "127.0.0.1"

READ = "kafka_read/records_read"
WRITTEN = "cassandra_write/rows_written"
DEAD_LETTERS = "parse/dead_letters"
ALERTS = "patterns/alerts"


class MonitorError(Exception):
    """The monitoring cannot start as asked (e.g. the metrics port is taken): nothing was submitted."""


# ----- settings ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MonitorSettings:
    status_interval_s: float = 10.0  # 0 = no status line
    metrics_port: int = 0  # 0 = no Prometheus endpoint

    def __post_init__(self) -> None:
        errors = []
        if not (self.status_interval_s >= 0 and math.isfinite(self.status_interval_s)):
            errors.append(f"--status_interval_s must be >= 0, got {self.status_interval_s}")
        if not 0 <= self.metrics_port <= 65535:
            errors.append(f"--metrics_port must be 0 (off) or a port 1-65535, got {self.metrics_port}")
        if errors:
            raise ValueError("; ".join(errors))

    @property
    def stall_window_s(self) -> float:
        """No progress for this long while records wait is a stall: 2 status intervals, >= 30 s."""
        return max(STALL_WINDOW_MIN_S, 2 * self.status_interval_s)

    @property
    def poll_s(self) -> float:
        if self.status_interval_s <= 0:
            return POLL_MAX_S
        return min(self.status_interval_s, POLL_MAX_S)


def monitor_settings(options) -> MonitorSettings:
    """From `--status_interval_s` and `--metrics_port`; raises `OptionsError` for invalid values."""
    from beam_cxone import options as opts

    job = options.view_as(opts.MonitoringOptions)
    try:
        return MonitorSettings(status_interval_s=float(job.status_interval_s),
                               metrics_port=int(job.metrics_port))
    except ValueError as err:
        raise opts.OptionsError(str(err)) from None


# ----- human units ---------------------------------------------------------------------------------


def human_count(n: float | None) -> str:
    """12 -> '12', 12_345 -> '12.3k', 4_560_000 -> '4.56M' (3 significant digits from 1,000 up)."""
    if n is None:
        return "?"
    if abs(n) < 1000:
        return str(int(round(n)))
    for divisor, unit in ((1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T")):
        scaled = n / divisor
        if abs(round(scaled, 2)) < 1000 or unit == "T":
            digits = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
            text = f"{scaled:.{digits}f}"
            if float(text) >= 1000 and unit != "T":
                continue  # 999.96k rounds to 1000k: the next unit says it better
            return text + unit
    raise AssertionError("unreachable")


def human_rate(per_s: float | None, unit: str = "rec/s") -> str:
    """0.25 -> '0.2 rec/s', 48.4 -> '48 rec/s', 1234 -> '1.23k rec/s'."""
    if per_s is None:
        return f"? {unit}"
    if per_s < 10 and per_s != int(per_s):
        return f"{per_s:.1f} {unit}"
    return f"{human_count(per_s)} {unit}"


def human_duration(seconds: float | None) -> str:
    """0.4 -> '<1 s', 42 -> '42 s', 125 -> '2 min 05 s', 7380 -> '2 h 03 min', 100_000 -> '1 d 3 h'."""
    if seconds is None:
        return "?"
    s = int(seconds)
    if seconds < 1:
        return "<1 s"
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


# ----- the job's Beam metrics ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BeamMetrics:
    """User metrics summed over the steps that report them (`namespace/name` keys).
    Distributions are (count, sum, min, max); gauges their latest value."""

    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    distributions: dict[str, tuple[int, float, float | None, float | None]] = dataclasses.field(
        default_factory=dict)
    gauges: dict[str, float] = dataclasses.field(default_factory=dict)

    def counter(self, name: str) -> int:
        """A counter the job has not incremented yet is not reported by the runner: 0."""
        return self.counters.get(name, 0)


def _is_user(result: Any) -> bool:
    metric = result.key.metric
    return bool(metric.namespace) and not (
        metric.namespace == "beam" and str(metric.name).startswith("metric:"))


def _key(result: Any) -> str:
    return f"{result.key.metric.namespace}/{result.key.metric.name}"


def _counter_value(result: Any) -> int:
    """The larger of committed and attempted: Prism's committed values are the finished bundles'
    (its attempted ones only the bundles in flight); other runners' attempted include everything."""
    values = [v for v in (getattr(result, "committed", None), getattr(result, "attempted", None))
              if v is not None]
    return max(values) if values else 0


def _preferred(result: Any) -> Any:
    committed = getattr(result, "committed", None)
    return committed if committed is not None else getattr(result, "attempted", None)


def beam_metrics(query: dict) -> BeamMetrics:
    """A `MetricResults.query()` answer, runner-internal metrics left out, summed over steps."""
    counters: dict[str, int] = {}
    for r in filter(_is_user, query.get("counters", [])):
        counters[_key(r)] = counters.get(_key(r), 0) + _counter_value(r)
    distributions: dict[str, tuple] = {}
    for r in filter(_is_user, query.get("distributions", [])):
        d = _preferred(r)
        if d is None or not (d.count or 0):
            continue
        count, total, lo, hi = distributions.get(_key(r), (0, 0, None, None))
        distributions[_key(r)] = (
            count + d.count, total + (d.sum or 0),
            d.min if lo is None else min(lo, d.min), d.max if hi is None else max(hi, d.max))
    gauges: dict[str, tuple[int, float]] = {}
    for r in filter(_is_user, query.get("gauges", [])):
        g = _preferred(r)
        if g is None or getattr(g, "value", None) is None:
            continue
        stamp = getattr(g, "timestamp", None) or 0
        if _key(r) not in gauges or stamp >= gauges[_key(r)][0]:
            gauges[_key(r)] = (stamp, g.value)
    return BeamMetrics(counters, distributions, {k: v for k, (_, v) in gauges.items()})


def live_metrics_query(result: Any, timeout_s: float = 5.0) -> dict:
    """The job's metrics now. A portable runner's (Prism, Flink) `result.metrics()` asks the job
    service once and then caches the answer forever, so this asks the job service itself each time
    and leaves the cache alone (the final report reads it after the job ended)."""
    service = getattr(result, "_job_service", None)
    job_id = getattr(result, "_job_id", None)
    if service is None or job_id is None:
        return result.metrics().query()
    from apache_beam.portability.api import beam_job_api_pb2
    from apache_beam.runners.portability.portable_runner import PortableMetrics

    request = beam_job_api_pb2.GetJobMetricsRequest(job_id=job_id)
    try:
        response = service.GetJobMetrics(request, timeout=timeout_s)
    except TypeError:  # a handle without the gRPC keyword
        response = service.GetJobMetrics(request)
    return PortableMetrics(response).query()


# ----- one poll ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What one poll saw. `beam` None: the runner's metrics could not be read (`beam_error` says
    why); `partitions` None: Kafka could not be asked (`kafka_error`)."""

    at: float  # monotonic seconds
    beam: BeamMetrics | None = None
    beam_error: str | None = None
    partitions: tuple[PartitionLag, ...] | None = None
    kafka_error: str | None = None
    record_lag_s: float | None = None

    @property
    def lag(self) -> int | None:
        return None if self.partitions is None else sum(p.lag for p in self.partitions)

    @property
    def committed(self) -> tuple[tuple[int, int | None], ...] | None:
        if self.partitions is None:
            return None
        return tuple((p.partition, p.committed) for p in self.partitions)

    @property
    def committed_total(self) -> int | None:
        if self.partitions is None:
            return None
        return sum(p.committed for p in self.partitions if p.committed is not None)

    @property
    def records_read(self) -> int | None:
        return None if self.beam is None else self.beam.counter(READ)


def record_time_lag_s(partitions: Sequence[PartitionLag], record_time_ms: Callable[[int, int], int | None],
                      now_ms: int) -> float | None:
    """Wall clock minus the Kafka timestamp of the newest committed record (offset committed - 1; the
    first waiting record when the group committed nothing past the oldest retained offset), worst
    over the partitions with records waiting. 0.0 when none waits; None when no timestamp is known."""
    worst = None
    waiting = False
    for p in partitions:
        if p.lag <= 0:
            continue
        waiting = True
        anchor = p.committed - 1 if p.committed is not None and p.committed > p.begin else p.begin
        ts = record_time_ms(p.partition, anchor)
        if ts is None:
            continue
        behind = max(0.0, (now_ms - ts) / 1000)
        worst = behind if worst is None else max(worst, behind)
    return 0.0 if not waiting else worst


def format_status(prev: Snapshot | None, cur: Snapshot, *, draining: bool = False) -> str:
    """The status line (without its time stamp): read rate and total, consumer lag, record-time lag,
    rows written, dead letters, alerts. The rate is over the time since `prev` (the previous line)."""
    parts = ["status (draining)" if draining else "status"]
    elapsed = None if prev is None else cur.at - prev.at
    rate = None
    if cur.beam is not None:
        if prev is not None and prev.beam is not None and elapsed and elapsed > 0:
            rate = max(0, cur.records_read - prev.records_read) / elapsed
        parts.append(f"read {human_rate(rate) if rate is not None else '-'}, "
                     f"{human_count(cur.records_read)} total")
    else:
        # No runner metrics: what the group committed is the next best measure of what was read.
        if (prev is not None and elapsed and elapsed > 0 and prev.committed_total is not None
                and cur.committed_total is not None):
            rate = max(0, cur.committed_total - prev.committed_total) / elapsed
        parts.append(f"committed {human_rate(rate) if rate is not None else '-'}")
    if cur.partitions is not None and not cur.lag:
        parts.append("lag 0 rec (caught up)")
    elif cur.partitions is not None:
        parts.append(f"lag {human_count(cur.lag)} rec")
        if cur.record_lag_s is not None:
            parts.append(f"{human_duration(cur.record_lag_s)} behind (record time)")
    else:
        parts.append(f"lag ? ({cur.kafka_error or 'unknown'})")
    if cur.beam is not None:
        written = cur.beam.counter(WRITTEN)
        parts.append(f"written {human_count(written)} row{'' if written == 1 else 's'}")
        parts.append(f"dead letters {human_count(cur.beam.counter(DEAD_LETTERS))}")
        parts.append(f"alerts {human_count(cur.beam.counter(ALERTS))}")
    else:
        parts.append(f"written ? | dead letters ? | alerts ? (runner metrics: {cur.beam_error or 'none'})")
    return " | ".join(parts)


# ----- the stall detector --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StallEvent:
    stalled: bool  # True: no progress (warn); False: progress again after a warning
    for_s: float  # how long without progress
    waiting: int  # records waiting (lag) when observed


class StallDetector:
    """No progress while records wait. Progress = the committed offsets moved, or the read counter
    moved (a job replaying after a committed resume reads without committing). Pure: the caller
    passes the time; the first warning comes `window_s` after the last progress (or the last time
    nothing waited), the next ones at most every `repeat_s`."""

    def __init__(self, window_s: float, repeat_s: float = STALL_REPEAT_S):
        self.window_s = window_s
        self.repeat_s = repeat_s
        self._since: float | None = None  # last progress, or last time nothing waited
        self._committed: Any = None
        self._read: int | None = None
        self._warned_at: float | None = None

    def observe(self, now: float, committed: Any, lag: int | None,
                records_read: int | None = None) -> StallEvent | None:
        if committed is None or lag is None:
            return None  # Kafka not answering: nothing is known, nothing changes
        moved = (committed != self._committed
                 or (records_read is not None and self._read is not None and records_read != self._read))
        first = self._since is None
        self._committed = committed
        if records_read is not None:
            self._read = records_read
        if first or lag <= 0 or moved:
            event = None
            if self._warned_at is not None and moved and self._since is not None:
                event = StallEvent(False, now - self._since, lag)
            self._since = now
            self._warned_at = None
            return event
        stalled_for = now - self._since
        if stalled_for < self.window_s:
            return None
        if self._warned_at is not None and now - self._warned_at < self.repeat_s:
            return None
        self._warned_at = now
        return StallEvent(True, stalled_for, lag)


def stall_message(event: StallEvent, topic: str, group: str) -> str:
    if event.stalled:
        return (f"no progress for {human_duration(event.for_s)}: the job read nothing and group {group!r} "
                f"committed nothing on topic {topic!r} while {event.waiting:,} records wait")
    return f"progress again on topic {topic!r} (none for {human_duration(event.for_s)})"


# ----- Prometheus ----------------------------------------------------------------------------------


def prometheus_name(*parts: str) -> str:
    name = "_".join(p for p in parts if p)
    name = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return re.sub(r"_+", "_", name).strip("_")


class MetricsCollector:
    """A prometheus_client collector serving the latest poll: every Beam counter
    (`beam_cxone_<namespace>_<name>_total`), distribution (a summary `..._count`/`..._sum`, with
    gauges `..._min` and `..._max`) and gauge (`beam_cxone_<namespace>_<name>`), per-partition
    consumer lag, records read, and the record-time lag."""

    def __init__(self, topic: str):
        self.topic = topic
        self._snapshot: Snapshot | None = None

    def update(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily
        from prometheus_client.core import GaugeMetricFamily
        from prometheus_client.core import SummaryMetricFamily

        snap = self._snapshot
        if snap is None:
            return
        seen: set[str] = set()

        def fresh(name: str) -> bool:
            if name in seen:
                return False
            seen.add(name)
            return True

        if snap.beam is not None:
            read = CounterMetricFamily("beam_cxone_records_read_total",
                                       "Records read from Kafka by the job (Beam counter kafka_read/records_read).")
            read.add_metric([], snap.beam.counter(READ))
            seen.add("beam_cxone_records_read")
            yield read
            for key, value in sorted(snap.beam.counters.items()):
                name = prometheus_name("beam_cxone", *key.split("/", 1))
                if fresh(name):
                    yield CounterMetricFamily(name + "_total", f"Beam counter {key}, summed over steps.",
                                              value=value)
            for key, (count, total, lo, hi) in sorted(snap.beam.distributions.items()):
                name = prometheus_name("beam_cxone", *key.split("/", 1))
                if fresh(name):
                    yield SummaryMetricFamily(name, f"Beam distribution {key}, merged over steps.",
                                              count_value=count, sum_value=total)
                for suffix, value in (("min", lo), ("max", hi)):
                    if value is not None and fresh(f"{name}_{suffix}"):
                        yield GaugeMetricFamily(f"{name}_{suffix}", f"Beam distribution {key}: {suffix}.",
                                                value=value)
            for key, value in sorted(snap.beam.gauges.items()):
                name = prometheus_name("beam_cxone", *key.split("/", 1))
                if fresh(name):
                    yield GaugeMetricFamily(name, f"Beam gauge {key} (latest).", value=value)
        if snap.partitions is not None:
            lag = GaugeMetricFamily("beam_cxone_consumer_lag_records",
                                    "End offset minus the group's committed offset, per partition.",
                                    labels=["topic", "partition"])
            for p in snap.partitions:
                lag.add_metric([self.topic, str(p.partition)], p.lag)
            yield lag
            if snap.record_lag_s is not None:
                yield GaugeMetricFamily(
                    "beam_cxone_consumer_lag_seconds",
                    "Wall clock minus the Kafka timestamp of the newest committed record, worst partition "
                    "with records waiting (record time, not the event-time watermark); 0 when caught up.",
                    value=snap.record_lag_s)


def start_metrics_server(port: int, collector: MetricsCollector):
    """Serves `collector` on http://127.0.0.1:PORT/metrics; returns the server (`shutdown()` it).
    Raises `MonitorError` when the port cannot be bound (in use, not allowed)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        server, _thread = start_http_server(port, addr=METRICS_HOST, registry=registry)
    except OSError as err:
        why = "already in use" if err.errno == errno.EADDRINUSE else (err.strerror or str(err))
        raise MonitorError(f"--metrics_port={port}: {METRICS_HOST}:{port} {why} "
                           "(pick another port, or 0 for no metrics endpoint)") from None
    return server


# ----- the poller ----------------------------------------------------------------------------------


class JobMonitor:
    """Polls the job and Kafka on a thread of the launcher. `start()` binds the metrics port (so a
    taken port fails before the job is submitted); `attach(result)` starts polling; `close()` stops.

    `probe_factory` makes the Kafka lag probe (offsets(), record_time_ms(), close()); `metrics_source`
    returns a metrics query answer of the attached result. Both are injectable for tests, as are the
    clocks and the output stream.
    """

    def __init__(self, settings: MonitorSettings, topic: str, group_id: str | None,
                 probe_factory: Callable[[], Any] | None, *,
                 drain_at_wall_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 out: TextIO | None = None):
        self.settings = settings
        self.topic = topic
        self.group_id = group_id
        self._probe_factory = probe_factory if group_id else None
        self._probe = None
        self._drain_at = drain_at_wall_s
        self._clock = clock
        self._wall = wall
        self._out = out
        self.collector = MetricsCollector(topic)
        self.stall = StallDetector(settings.stall_window_s)
        self._metrics_source: Callable[[], dict] | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_status: Snapshot | None = None
        self._next_status_at: float | None = None
        self._errors_logged: set[str] = set()

    @classmethod
    def for_job(cls, settings: MonitorSettings, kafka_cfg, drain_at_wall_ms: int | None = None) -> JobMonitor:
        from beam_cxone.io.kafka.lag import GroupLagProbe

        def probe():
            return GroupLagProbe(kafka_cfg.bootstrap_servers, kafka_cfg.topic, kafka_cfg.group_id,
                                 kafka_cfg.consumer_config)

        return cls(settings, kafka_cfg.topic, kafka_cfg.group_id, probe,
                   drain_at_wall_s=None if drain_at_wall_ms is None else drain_at_wall_ms / 1000)

    # -- life cycle

    def start(self) -> JobMonitor:
        if self.settings.metrics_port:
            self._server = start_metrics_server(self.settings.metrics_port, self.collector)
            _LOG.info("metrics: http://%s:%d/metrics", METRICS_HOST, self.settings.metrics_port)
        if not self.group_id:
            _LOG.info("no --group_id: no consumer lag, no stall warning")
        return self

    def attach(self, result: Any) -> None:
        self.attach_source(lambda: live_metrics_query(result))

    def attach_source(self, metrics_source: Callable[[], dict]) -> None:
        self._metrics_source = metrics_source
        self._thread = threading.Thread(target=self._loop, name="beam_cxone-monitor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)  # a poll stuck on an unreachable broker is a daemon: left
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._probe is not None:
            try:
                self._probe.close()
            except Exception:  # noqa: BLE001 - closing a client of an unreachable broker
                pass
            self._probe = None

    def _loop(self) -> None:
        while True:
            started = self._clock()
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - watching must never take the job down
                _LOG.debug("monitor tick failed", exc_info=True)
            if self._stop.wait(max(0.1, self.settings.poll_s - (self._clock() - started))):
                return

    # -- one poll

    def draining(self) -> bool:
        return self._drain_at is not None and self._wall() >= self._drain_at

    def poll(self) -> Snapshot:
        now = self._clock()
        beam = beam_error = None
        if self._metrics_source is not None:
            try:
                beam = beam_metrics(self._metrics_source())
            except Exception as err:  # noqa: BLE001 - e.g. the job service already gone
                beam_error = type(err).__name__
                self._debug_once("runner metrics", err)
        partitions = kafka_error = record_lag = None
        if self._probe_factory is None:
            kafka_error = "no --group_id"
        else:
            try:
                if self._probe is None:
                    self._probe = self._probe_factory()
                partitions = tuple(self._probe.offsets())
                if self.settings.status_interval_s > 0 or self.settings.metrics_port:
                    record_lag = record_time_lag_s(partitions, self._probe.record_time_ms,
                                                   int(self._wall() * 1000))
            except Exception as err:  # noqa: BLE001 - broker away: the line shows '?'
                kafka_error = type(err).__name__
                self._debug_once("kafka offsets", err)
        return Snapshot(now, beam, beam_error, partitions, kafka_error, record_lag)

    def tick(self) -> Snapshot:
        snap = self.poll()
        self.collector.update(snap)
        draining = self.draining()
        event = self.stall.observe(snap.at, snap.committed, snap.lag, snap.records_read)
        if event is not None and not draining:
            message = stall_message(event, self.topic, self.group_id or "")
            (_LOG.warning if event.stalled else _LOG.info)(message)
        interval = self.settings.status_interval_s
        if interval > 0:
            if self._next_status_at is None:
                self._next_status_at = snap.at + interval
                self._last_status = snap
            elif snap.at >= self._next_status_at - 0.05:
                self._print(format_status(self._last_status, snap, draining=draining))
                self._last_status = snap
                self._next_status_at += interval
                if self._next_status_at <= snap.at:  # a slow poll: no burst of lines to catch up
                    self._next_status_at = snap.at + interval
        return snap

    def _print(self, line: str) -> None:
        out = self._out if self._out is not None else sys.stderr
        stamp = time.strftime("%H:%M:%S", time.localtime(self._wall()))
        print(f"{stamp} {line}", file=out, flush=True)

    def _debug_once(self, what: str, err: Exception) -> None:
        key = f"{what}:{type(err).__name__}"
        if key not in self._errors_logged:
            self._errors_logged.add(key)
            _LOG.debug("monitor: %s failed: %s", what, err)
