"""What every benchmark of bench/ shares: the machine's figures, the local services, a fresh topic and a
scratch keyspace per benchmark, the streaming job as a subprocess, resident memory from /proc, and the
rows the spec expects (tests/reference.py, independent of the pipeline).

Nothing here asserts a time: benchmarks print figures and write JSON, tests never time anything.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from beam_cxone.io.cassandra_schema import create_schema  # noqa: E402
from beam_cxone.io.cassandra_schema import drop_keyspace  # noqa: E402
from beam_cxone.io.cassandra_write import CassandraConfig  # noqa: E402
from beam_cxone.io.cassandra_write import open_session  # noqa: E402
from beam_cxone.io.cassandra_write import row_from_cql  # noqa: E402
from beam_cxone.io.kafka import create_topic  # noqa: E402
from beam_cxone.tables import TABLES  # noqa: E402

KAFKA = "127.0.0.1:9092"
CASSANDRA_HOST = "127.0.0.1"
RESULTS_DIR = REPO / "bench" / "results"
# Columns the pipeline stamps with the wall clock; left out when rows are compared with the reference.
STAMPS = {"interaction_volumes": {"updated_at"}, "pattern_alerts": {"detected_at", "alert_id"}}
COMPARED_TABLES = ("interaction_volumes", "pattern_alerts", "customer_profiles")


# ---- the machine ----------------------------------------------------------------------------------


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """CPUs, memory, versions: printed with every figure, the machine is shared."""
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    import apache_beam
    import cassandra
    import kafka

    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "apache_beam": apache_beam.__version__,
        "kafka_python": kafka.__version__,
        "cassandra_driver": cassandra.__version__,
        "loadavg_at_start": loadavg(),
        "commit": _git_head(),
    }


def _git_head() -> str:
    """The checkout's commit (and whether files differ from it): the code the figures belong to."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+modified" if dirty else "")


def now_ms() -> int:
    return int(time.time() * 1000)


def stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_results(figures: dict, name: str | None = None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name or stamp()}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")
    return path


# ---- services, topics, keyspaces ------------------------------------------------------------------


def ensure_services() -> None:
    """Kafka and Cassandra of stack/ (idempotent: returns at once when they run)."""
    for service in ("kafka", "cassandra"):
        subprocess.run(
            ["bash", str(REPO / "stack" / f"{service}.sh"), "start"],
            cwd=REPO,
            check=True,
            timeout=300,
            stdout=subprocess.DEVNULL,
        )


def service_pids() -> dict[str, int]:
    """Pids of the stack's JVMs, from their pid files (the scripts' own bookkeeping)."""
    out = {}
    for service in ("kafka", "cassandra"):
        for candidate in (
            REPO / ".stack" / service / f"{service}.pid",
            REPO / ".stack" / f"{service}.pid",
        ):
            if candidate.exists():
                with contextlib.suppress(ValueError):
                    out[service] = int(candidate.read_text().split()[0])
                break
    if len(out) < 2:  # fall back to the command lines of this checkout's stack JVMs
        for pid in _all_pids():
            text = " ".join(_cmdline(pid))
            if "java" not in text or str(REPO) not in text:
                continue
            if "kafka.Kafka" in text:
                out.setdefault("kafka", pid)
            if "CassandraDaemon" in text:
                out.setdefault("cassandra", pid)
    return out


@contextlib.contextmanager
def fresh_topic(prefix: str, partitions: int) -> Iterator[str]:
    """A new topic for one benchmark, deleted afterwards."""
    name = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
    create_topic(KAFKA, name, partitions)
    try:
        yield name
    finally:
        from kafka.admin import KafkaAdminClient

        with contextlib.suppress(Exception):
            admin = KafkaAdminClient(bootstrap_servers=[KAFKA])
            try:
                admin.delete_topics([name])
            finally:
                admin.close()


def _retry(fn, what: str, attempts: int = 12, wait_s: float = 10):
    """Other developers' tests stop and restart the shared Cassandra and Kafka: wait for them."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - retried, then raised
            if attempt == attempts:
                raise
            # Only wait: a neighbour's outage test stops a service on purpose; never restart it here.
            log(f"{what}: {type(err).__name__}; retrying in {wait_s:g} s ({attempt}/{attempts})")
            time.sleep(wait_s)


@contextlib.contextmanager
def scratch_keyspace(prefix: str) -> Iterator[CassandraConfig]:
    """A keyspace of one benchmark with the four tables (never the default keyspace), dropped after."""
    cfg = CassandraConfig(
        hosts=(CASSANDRA_HOST,), keyspace=f"bench_{prefix}_{secrets.token_hex(3)}"
    )
    _retry(lambda: create_schema(cfg), "create_schema")
    try:
        yield cfg
    finally:
        with contextlib.suppress(Exception):
            drop_keyspace(cfg)


def publish(
    topic: str, records: Iterable[tuple[bytes | None, bytes]], *, partition: int | None = None
) -> int:
    """Publishes as fast as the producer goes (a stream published beforehand)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=[KAFKA],
        linger_ms=20,
        batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    count = 0
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value, partition=partition)
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count


def advance_records(partitions: int, event_ms: int) -> list[tuple[int, bytes]]:
    """One valid record per partition far later in event time: it moves every partition's watermark
    past everything before it, so every window and every customer's buffered event becomes final."""
    out = []
    for p in range(partitions):
        record = {
            "eventId": f"advance-{p}-{event_ms}",
            "eventTime": event_ms,
            "contactId": f"adv-{p}",
            "channel": "voice",
            "eventType": "CONTACT_STARTED",
        }
        out.append((p, json.dumps(record).encode()))
    return out


def publish_to_partitions(topic: str, items: list[tuple[int, bytes]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=[KAFKA])
    try:
        for p, value in items:
            producer.send(topic, value=value, partition=p)
        producer.flush()
    finally:
        producer.close()


class GroupOffsets:
    """The consumer group's committed offsets, summed over partitions (the job commits the offset a
    partition's read resumes from, so this trails the read by about one bundle)."""

    def __init__(self, group_id: str, topic: str, partitions: int):
        from kafka import KafkaConsumer
        from kafka import TopicPartition

        self._consumer = KafkaConsumer(
            bootstrap_servers=[KAFKA], group_id=group_id, enable_auto_commit=False
        )
        self._tps = [TopicPartition(topic, p) for p in range(partitions)]

    def total(self) -> int:
        try:
            return sum(self._consumer.committed(tp) or 0 for tp in self._tps)
        except Exception:  # noqa: BLE001 - a broker hiccup only loses one progress sample
            return -1

    def close(self) -> None:
        self._consumer.close()


# ---- processes and memory -------------------------------------------------------------------------


def _all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _ppid(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text.rsplit(")", 1)[1].split()[1])


def process_tree(root: int) -> list[int]:
    """root and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        ppid = _ppid(pid)
        if ppid is not None:
            children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int) -> float:
    return round(_status_kb(pid, "VmRSS") / 1024, 1)


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the peak resident set since the process started (Linux)."""
    return round(_status_kb(pid, "VmHWM") / 1024, 1)


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def describe(pid: int) -> str:
    cmd = _cmdline(pid)
    if not cmd:
        return "?"
    name = Path(cmd[0]).name
    if name.startswith("python"):
        return "python " + " ".join(a for a in cmd[1:3])
    return name


class MemorySampler:
    """Samples the RSS of named processes every `interval_s` in a thread (the job's tree is re-listed
    each time, so the Prism child is found once it has started)."""

    def __init__(
        self, interval_s: float, job_pid: int | None = None, services: dict[str, int] | None = None
    ):
        self.interval_s = interval_s
        self.job_pid = job_pid
        self.services = dict(services or {})
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._t0 = time.monotonic()

    def sample(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "t_s": round(time.monotonic() - self._t0, 1),
            "loadavg_1m": loadavg()[0],
        }
        if self.job_pid:
            tree = process_tree(self.job_pid)
            row["job_python_mb"] = rss_mb(self.job_pid)
            others = [p for p in tree if p != self.job_pid]
            row["job_children_mb"] = round(sum(rss_mb(p) for p in others), 1)
            row["job_children"] = sorted({describe(p) for p in others})
            row["job_total_mb"] = round(row["job_python_mb"] + row["job_children_mb"], 1)
            row["job_peak_mb"] = {str(p): peak_rss_mb(p) for p in tree}
        for name, pid in self.services.items():
            tree = process_tree(pid)  # a pid file may name the script that runs the JVM
            row[f"{name}_mb"] = round(sum(rss_mb(p) for p in tree), 1)
            row[f"{name}_peak_mb"] = max(peak_rss_mb(p) for p in tree)
        return row

    def _run(self) -> None:
        while True:
            self.samples.append(self.sample())
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> MemorySampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ---- the streaming job ----------------------------------------------------------------------------


class StreamingJob:
    """`python -m beam_cxone` (Prism, streaming) as a subprocess; output to a log file."""

    def __init__(
        self,
        args: list[str],
        log_path: Path,
        *,
        python: str = sys.executable,
        prefix: list[str] | None = None,
    ):
        self.args = args
        self.log_path = log_path
        self.cmd = [*(prefix or []), python, "-m", "beam_cxone", *args]
        self.proc: subprocess.Popen | None = None
        self.started_wall = 0.0

    def __enter__(self) -> StreamingJob:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.started_wall = time.time()
        self.lines: list[
            tuple[float, str]
        ] = []  # (wall time read, line): the job's own log has no times
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            errors="replace",
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name="job-log", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            now = time.time()
            self.lines.append((now, line.rstrip("\n")))
            self._log.write(f"{now:.3f} {line}")
            self._log.flush()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(text for _, text in self.lines[-lines:])

    def first_line_time(self, pattern: str) -> float | None:
        """Wall time (epoch s) at which the first output line matching pattern was read."""
        for t, text in list(self.lines):
            if re.search(pattern, text):
                return t
        return None

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the job's own process group (the job and the Prism child it started)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, 0)  # anything left in the group (a Prism child)?
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._reader.join(timeout=10)
        self._log.close()


# Beam's PortableRunner opens the job's state and message streams with --job_server_timeout (default
# 300 s) as their gRPC deadline, so a Prism job waited on for longer dies with DEADLINE_EXCEEDED after
# 5 minutes (found by the soak; see docs/PERFORMANCE.md). The benchmarks' jobs get a day.
JOB_SERVER_TIMEOUT = "--job_server_timeout=86400"


def job_args(topic: str, keyspace: str, group_id: str, *extra: str) -> list[str]:
    return [
        f"--bootstrap_servers={KAFKA}",
        f"--topic={topic}",
        f"--group_id={group_id}",
        f"--cassandra_hosts={CASSANDRA_HOST}",
        f"--cassandra_keyspace={keyspace}",
        JOB_SERVER_TIMEOUT,
        *extra,
    ]


# ---- Cassandra rows -------------------------------------------------------------------------------


class Rows:
    """One open session on a scratch keyspace, for polling rows while a job writes them."""

    def __init__(self, cfg: CassandraConfig):
        self.cfg = cfg
        self._cluster, self._session = open_session(cfg)
        self._select = {
            name: self._session.prepare(
                f"SELECT {', '.join(t.column_names)} FROM {cfg.keyspace}.{name}"
            )
            for name, t in TABLES.items()
        }

    def rows(self, table: str) -> list[dict]:
        t = TABLES[table]
        return [row_from_cql(t, r) for r in self._session.execute(self._select[table], timeout=30)]

    def execute(self, cql: str, params: tuple = ()):
        return self._session.execute(cql, params, timeout=30)

    def close(self) -> None:
        self._cluster.shutdown()

    def __enter__(self) -> Rows:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _iso(ms: int) -> str:
    from tests.reference import iso

    return iso(ms)


def normalized(table: str, row: dict) -> str:
    """A Cassandra row in the reference's export format, wall-clock stamps left out."""
    out = {}
    for name, cql_type in TABLES[table].columns:
        if name in STAMPS.get(table, ()):
            continue
        value = row[name]
        out[name] = _iso(value) if cql_type == "timestamp" and value is not None else value
    return json.dumps(out, sort_keys=True)


def expected_rows(values: list[bytes]) -> dict[str, list[str]]:
    """What the spec requires for this trace (tests/reference.py), per compared table, plus the
    dead-letter count."""
    from tests.reference import raw_lines
    from tests.reference import reference

    ref = reference(raw_lines(values))
    out: dict[str, Any] = {}
    for table in COMPARED_TABLES:
        out[table] = sorted(
            json.dumps(
                {k: v for k, v in r.items() if k not in STAMPS.get(table, ())}, sort_keys=True
            )
            for r in ref[table]
        )
    out["dead_letters"] = len(ref["dead_letters"])
    return out


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 100)) - 1))
    return ordered[k]


# ---- live publishing ------------------------------------------------------------------------------


def valid_event_ms(value: bytes) -> int | None:
    """The event time of a record the pipeline will accept, else None (parse.py's own rules)."""
    from beam_cxone.parse import ParseSettings
    from beam_cxone.parse import Rejected
    from beam_cxone.parse import decode_object
    from beam_cxone.parse import parse_object

    try:
        return parse_object(decode_object(value), ParseSettings()).event_time_ms
    except Rejected:
        return None


class LivePublisher:
    """Publishes a generated stream live in a thread, event time ~ wall time.

    The generator emits in event-time order up to its bounded disorder; each record is sent once the
    wall clock reaches the greatest event time emitted so far, so a record is never published before
    its own event time and at most the generator's disorder (3 s) after it. For each record it keeps
    (partition, event time of a valid record or None, wall ms at send) for watermark arithmetic.
    """

    def __init__(self, topic: str, cfg, *, keep_sends: bool = True):
        self.topic = topic
        self.cfg = cfg
        self.keep_sends = keep_sends
        self.sends: list[tuple[int, int | None, int]] = []
        self.sent = 0
        self.behind_ms_max = (
            0  # how far the sender fell behind its schedule (the publisher's own lag)
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-publisher", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> LivePublisher:
        self._thread.start()
        return self

    def _run(self) -> None:
        from kafka import KafkaProducer

        from beam_cxone.generator import generate

        producer = KafkaProducer(bootstrap_servers=[KAFKA], linger_ms=2)
        high = None
        try:
            for record in generate(self.cfg):
                if self._stop.is_set():
                    break
                event_ms = valid_event_ms(record.value)
                if event_ms is not None and (high is None or event_ms > high):
                    high = event_ms
                if high is not None:
                    wait_s = (high - now_ms()) / 1000
                    if wait_s > 0:
                        if self._stop.wait(wait_s):
                            break
                    else:
                        self.behind_ms_max = max(self.behind_ms_max, int(-wait_s * 1000))
                sent_ms = now_ms()
                future = producer.send(self.topic, key=record.key, value=record.value)
                if self.keep_sends:
                    index = len(self.sends)
                    self.sends.append((-1, event_ms, sent_ms))
                    future.add_callback(self._on_sent, index)
                self.sent += 1
            producer.flush()
        except BaseException as err:  # noqa: BLE001 - reported by the benchmark
            self.error = err
        finally:
            producer.close()

    def _on_sent(self, index: int, metadata) -> None:
        _, event_ms, sent_ms = self.sends[index]
        self.sends[index] = (metadata.partition, event_ms, sent_ms)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()
