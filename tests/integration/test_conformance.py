"""Runner conformance (issue 13): the same traces through every runner and mode the project offers, and
every row of all four tables equal to the independent reference (tests/reference.py), wall-clock
stamps aside (`updated_at` of a volume, `detected_at` and `alert_id` of an alert).

Cells, each run on every seed of SEEDS (README "What runs where" shows the matrix):
- `prism-streaming`: the streaming job (`python -m beam_cxone`, Prism) reading the trace from the
  real Kafka and writing the real Cassandra;
- `fnapi-batch`, `fnapi-multiprocess-batch` (`--direct_num_workers=2`,
  `--direct_running_mode=multi_processing`), `prism-batch`: the three backfill graphs in one pipeline,
  each into the JSON Lines export: the resumable file backfill through its checkpoint (`backfill`'s
  default), the file read straight into BatchAnalytics, and a bounded Kafka range (the trace
  published once per seed) into BatchAnalytics;
- `direct-teststream`: the streaming graph on the BundleBasedDirectRunner, the trace as a TestStream
  (tests/pipeline/harness.py), the watermark held until every record is in, then stepped on;
- `flink-batch`, `flink-streaming`: only where Beam's Flink job-server jar is on this machine. There
  is no such cell otherwise (not a skipped one): the jar cannot be had here (README says why).

A trace: the generator's records (interactions in every form, customer updates, tutorial records,
pattern bursts, producer retries, disorder, malformed records), two records the generator cannot
make (a lone surrogate, `"\\ud800"`, in an eventId and in a tier: `invalid_json` dead letters) and
one it does not (an astral character written as an escaped surrogate pair: valid), then one record
per partition an hour behind the rest, which the streaming read must find late (a batch has no
lateness: there they count). Streaming publishes each record to a partition of its own key's hash,
so a retry meets its original in one partition, as the real producers' keying does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
import zlib
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone.config import AnalyticsConfig
from beam_cxone.generator import GeneratorConfig
from beam_cxone.generator import generate
from beam_cxone.io.kafka import create_topic
from beam_cxone.io.kafka.config import KafkaReadConfig
from beam_cxone.pipelines.file_backfill import FileBackfillPlan
from beam_cxone.pipelines.file_backfill import list_input_files
from beam_cxone.pipelines.jobs import SinkConfig
from beam_cxone.pipelines.jobs import build_backfill
from beam_cxone.runners.profiles import flink_job_server_jar
from beam_cxone.runners.profiles import prism_binary
from beam_cxone.tables import TABLES
from tests.integration.streaming_support import PARTITIONS
from tests.integration.streaming_support import Job
from tests.integration.streaming_support import export
from tests.integration.streaming_support import job_args
from tests.integration.streaming_support import publish
from tests.pipeline.harness import SOURCE_TIME_MS
from tests.pipeline.harness import Late
from tests.pipeline.harness import make_stream
from tests.pipeline.harness import run_graph
from tests.reference import Raw
from tests.reference import dead_letter_row
from tests.reference import iso
from tests.reference import reference
from tests.support.prism import stop_prism_job_server

pytestmark = pytest.mark.integration

SEEDS = (3, 11, 29)
COUNT = 400
GENERATOR = dict(duplicate_rate=0.04, malformed_rate=0.05, disorder_s=3.0, customer_update_rate=0.06,
                 pattern_rate=0.03, tutorial_rate=0.04)
START_MS = GeneratorConfig(count=0).start_ms
LATE_MS = START_MS - 3_600_000  # an hour behind the trace: late for any watermark the trace moved
ADVANCE_MS = START_MS + 3_600_000  # the streaming job's last records: every window before it is final
# The Kafka record timestamp of every published record, so a dead letter's recorded_at is known.
KAFKA_TIMESTAMP_MS = START_MS + 7_200_000
FILE_MTIME_S = START_MS // 1000 + 7_200  # a whole second: the export's recorded_at of a file record
STAMPS = {"interaction_volumes": {"updated_at"}, "pattern_alerts": {"detected_at", "alert_id"}}
FN_API = "--runner=apache_beam.runners.portability.fn_api_runner.fn_runner.FnApiRunner"
PRISM = ["--runner=PrismRunner", f"--prism_location={prism_binary()}"]


def _flink_jar() -> Path | None:
    """Beam's Flink job-server jar, where it is on this machine (the local cache, Beam's cache)."""
    from apache_beam.utils.subprocess_server import JavaJarServer as Jars

    ours = flink_job_server_jar()
    for jar in (ours, Path(Jars.JAR_CACHE) / ours.name):
        if jar.is_file():
            return jar
    return None


FLINK_JAR = _flink_jar()
FLINK = ["--runner=FlinkRunner", f"--flink_job_server_jar={FLINK_JAR}", "--flink_version=1.20",
         "--environment_type=LOOPBACK"]

BATCH_CELLS = {
    "fnapi-batch": [FN_API],
    "fnapi-multiprocess-batch": [FN_API, "--direct_num_workers=2",
                                 "--direct_running_mode=multi_processing"],
    "prism-batch": PRISM,
}
STREAMING_CELLS = {"prism-streaming": []}
if FLINK_JAR is not None:  # no cell at all otherwise: a skip would fire on every CI run
    BATCH_CELLS["flink-batch"] = FLINK
    STREAMING_CELLS["flink-streaming"] = ["--runner=FlinkRunner", f"--flink_job_server_jar={FLINK_JAR}"]


@pytest.fixture(scope="module", autouse=True)
def _stop_prism_job_server():
    """The in-process PrismRunner (prism-batch) keeps its job server, a Prism process, for later
    pipelines until this process exits: stop it once this module's pipelines are done."""
    yield
    stop_prism_job_server()


# ----- the trace -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Trace:
    seed: int
    records: list[tuple[int, bytes]]  # (partition, value) in arrival order
    late: list[tuple[int, bytes]]  # sent after everything else in their partition

    def values(self) -> list[bytes]:
        """What a batch reads, in source order: nothing is late in a batch."""
        return [v for _, v in self.sends()]

    def sends(self) -> list[tuple[int, bytes]]:
        """(partition, value) in the order they are published."""
        return self.records + self.late


def _partition(key: bytes | None, n: int) -> int:
    return zlib.crc32(key) % PARTITIONS if key else n % PARTITIONS


def _interaction(event_id: str, t_ms: int, **fields) -> bytes:
    obj = {"eventId": event_id, "eventTime": t_ms, "contactId": f"c-{event_id}", "channel": "voice",
           "eventType": "CONTACT_STARTED", **fields}
    return json.dumps(obj).encode()


def conformance_trace(seed: int) -> Trace:
    records = [(_partition(r.key, n), r.value)
               for n, r in enumerate(generate(GeneratorConfig(count=COUNT, seed=seed, **GENERATOR)))]
    t = START_MS + 5_000
    customer = f"CUST-00{seed % 50 + 1:02d}"
    # Written by hand: json.dumps would escape the backslash; these are the JSON escapes themselves.
    lone_in_event_id = (b'{"eventId":"\\ud800","eventTime":%d,"contactId":"c-lone","channel":"voice",'
                        b'"eventType":"CALLBACK_REQUESTED","customerId":"%s"}' % (t, customer.encode()))
    lone_in_tier = (b'{"recordType":"customer_update","eventId":"u-lone-%d","eventTime":%d,'
                    b'"customerId":"%s","tier":"gold\\udc00"}' % (seed, t, customer.encode()))
    astral = (b'{"eventId":"astral-%d-\\ud83d\\ude00","eventTime":%d,"contactId":"c-astral",'
              b'"channel":"chat","eventType":"CONTACT_STARTED"}' % (seed, t + 1))
    for position, value in ((len(records) // 4, lone_in_event_id), (len(records) // 2, lone_in_tier),
                            (3 * len(records) // 4, astral)):
        records.insert(position, (seed % PARTITIONS, value))
    late = [(p, _interaction(f"late-{seed}-{p}", LATE_MS + p * 1000, customerId=customer,
                             eventType="CONTACT_FAILED"))
            for p in range(PARTITIONS)]
    late.append((0, json.dumps({"recordType": "customer_update", "eventId": f"late-u-{seed}",
                                "eventTime": LATE_MS, "customerId": customer, "tier": "platinum",
                                "region": "emea"}).encode()))
    return Trace(seed, records, late)


# ----- rows in one comparable form ---------------------------------------------------------------------


def _line(table: str, row: dict) -> str:
    return json.dumps({k: v for k, v in row.items() if k not in STAMPS.get(table, ())}, sort_keys=True)


def expected(raws: list[Raw]) -> dict[str, list[str]]:
    """Every table's rows the reference gives for these raw records (export form, stamps left out)."""
    ref = reference(raws)
    out = {table: sorted(_line(table, r) for r in ref[table])
           for table in ("interaction_volumes", "pattern_alerts", "customer_profiles")}
    letters = ({**row, "recorded_at": iso(row["recorded_at"])}
               for row in map(dead_letter_row, ref["dead_letters"]))
    out["dead_letters"] = sorted(_line("dead_letters", r) for r in letters)
    return out


def assert_tables(got: dict[str, list[str]], want: dict[str, list[str]], cell: str) -> None:
    assert sorted(got) == sorted(want)
    for table in want:
        missing = sorted(set(want[table]) - set(got[table]))[:3]
        extra = sorted(set(got[table]) - set(want[table]))[:3]
        assert got[table] == want[table], (
            f"{cell} {table}: {len(got[table])} rows, expected {len(want[table])}; "
            f"missing {missing}; unexpected {extra}")


def read_export(directory: Path) -> dict[str, list[str]]:
    return {name: sorted(_line(name, json.loads(line))
                         for f in sorted(directory.glob(f"{name}-*")) for line in f.open())
            for name in TABLES}


# ----- batch: both backfill graphs, one pipeline per runner and seed ------------------------------------


class _Backfill(beam.PTransform):
    """`build_backfill` of a file plan (the checkpointed backfill), a file pattern or a Kafka range
    (both straight into BatchAnalytics), into the JSON Lines export."""

    def __init__(self, output_dir: str, **source):
        super().__init__()
        self._output_dir, self._source = output_dir, source

    def expand(self, pbegin):
        build_backfill(pbegin.pipeline, AnalyticsConfig(), SinkConfig("jsonl", output_dir=self._output_dir),
                       **self._source)
        return pbegin.pipeline | "Done" >> beam.Create([])


GRAPHS = ("resumable", "files", "kafka")


def run_batch(options: list[str], trace: Trace, kafka: KafkaReadConfig, tmp_path: Path) -> dict[str, dict]:
    """The trace through the three backfill graphs in one pipeline: graph -> the export's tables."""
    path = trace_file(trace, tmp_path)
    plan = FileBackfillPlan(tuple(list_input_files(path)), str(tmp_path / "checkpoint"))
    with beam.Pipeline(options=PipelineOptions(options)) as p:
        _ = p | "Resumable" >> _Backfill(str(tmp_path / "resumable"), plan=plan)
        _ = p | "Files" >> _Backfill(str(tmp_path / "files"), input_pattern=path)
        _ = p | "Kafka" >> _Backfill(str(tmp_path / "kafka"), kafka=kafka)
    return {graph: read_export(tmp_path / graph) for graph in GRAPHS}


def trace_file(trace: Trace, tmp_path: Path) -> str:
    """The trace as a JSON Lines file (FILE_MTIME_S its modification time)."""
    path = tmp_path / f"trace-{trace.seed}.jsonl"
    if not path.exists():
        path.write_bytes(b"".join(v + b"\n" for v in trace.values()))
        os.utime(path, (FILE_MTIME_S, FILE_MTIME_S))
    return str(path)


def batch_raws(trace: Trace, path: str) -> list[Raw]:
    mtime_ms = int(FileSystems.match([path])[0].metadata_list[0].last_updated_in_seconds * 1000)
    assert mtime_ms == FILE_MTIME_S * 1000
    return [Raw(v, f"{path}:{n}", mtime_ms, (path, n)) for n, v in enumerate(trace.values(), start=1)]


@pytest.fixture(scope="module")
def kafka_topics(kafka_bootstrap) -> tuple[str, dict[int, str]]:
    """The broker, and seed -> a topic holding its trace (a bounded read flags nothing late)."""
    topics = {}
    for seed in SEEDS:
        topic = topics[seed] = f"conformance-range-{uuid.uuid4().hex[:10]}"
        create_topic(kafka_bootstrap, topic, PARTITIONS)
        publish(kafka_bootstrap, topic, by_partition=conformance_trace(seed).sends(),
                timestamp_ms=KAFKA_TIMESTAMP_MS)
    return kafka_bootstrap, topics


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cell", sorted(BATCH_CELLS))
def test_batch(cell, seed, kafka_topics, tmp_path):
    """The three backfill graphs in one pipeline; every export is checked, and any that differ
    are reported together."""
    trace = conformance_trace(seed)
    bootstrap, topics = kafka_topics
    got = run_batch(BATCH_CELLS[cell], trace, KafkaReadConfig(bootstrap, topics[seed], bounded=True),
                    tmp_path)
    from_file = expected(batch_raws(trace, trace_file(trace, tmp_path)))
    raws, _ = kafka_raws(trace, topics[seed])
    want = {"resumable": from_file, "files": from_file,
            "kafka": expected([dataclasses.replace(r, late=False) for r in raws])}
    failures = []
    for graph in GRAPHS:
        try:
            assert_tables(got[graph], want[graph], f"{cell}/{graph}/seed {seed}")
        except AssertionError as err:
            failures.append(str(err).splitlines()[0])
    assert not failures, "\n".join(failures)


# ----- streaming: TestStream on the DirectRunner family -----------------------------------------------


def stream_script_raws(trace: Trace, name: str) -> list[Raw]:
    """What the harness makes of the script: numbered in arrival order, the late ones flagged."""
    values = [(v, False) for _, v in trace.records] + [(v, True) for _, v in trace.late]
    return [Raw(v, f"{name}:{n}", SOURCE_TIME_MS, (name, n), late)
            for n, (v, late) in enumerate(values, start=1)]


@pytest.mark.parametrize("seed", SEEDS)
def test_direct_teststream(seed):
    trace = conformance_trace(seed)
    script = [v for _, v in trace.records] + [Late(v) for _, v in trace.late]
    want = expected(stream_script_raws(trace, "trace"))
    # The watermark stays at the trace's start until every record is in, then steps on past every
    # window, evaluation and pattern expiry (the trace spans COUNT / 20 s of event time).
    stream = make_stream(script, "trace", drain_to_ms=START_MS + COUNT * 1000 // 20 + 120_000)
    run = run_graph(["--runner=BundleBasedDirectRunner", "--streaming"], stream, AnalyticsConfig(),
                    streaming=True)
    got = {table: sorted(_line(table, row) for row in run.final(table))
           for table in ("interaction_volumes", "pattern_alerts", "customer_profiles")}
    got["dead_letters"] = sorted(_line("dead_letters", {**r, "recorded_at": iso(r["recorded_at"])})
                                 for r in run.versions["dead_letters"])
    assert_tables(got, want, "direct-teststream")


# ----- streaming: the job on the real Kafka and Cassandra -------------------------------------------------


def kafka_raws(trace: Trace, topic: str) -> tuple[list[Raw], list[tuple[int, bytes]]]:
    """The records as the read will see them (source topic/partition/offset, the late ones flagged),
    and the (partition, value) sends in order, the advance records last."""
    sends = trace.sends()
    offsets = [0] * PARTITIONS
    raws = []
    late_from = len(trace.records)
    for i, (p, value) in enumerate(sends):
        raws.append(Raw(value, f"{topic}/{p}/{offsets[p]}", KAFKA_TIMESTAMP_MS,
                        (f"{topic}/{p:06d}", offsets[p]), late=i >= late_from))
        offsets[p] += 1
    advance = [(p, _interaction(f"advance-{p}", ADVANCE_MS)) for p in range(PARTITIONS)]
    return raws, sends + advance


def cassandra_tables(cfg) -> dict[str, list[str]]:
    from beam_cxone.io.cassandra_schema import read_rows

    out = {}
    for name, table in TABLES.items():
        rows = read_rows(cfg, table)
        if name == "interaction_volumes":  # the advance records' windows never close
            rows = [r for r in rows if r["window_start"] < ADVANCE_MS - 60_000]
        out[name] = sorted(_line(name, export(name, r)) for r in rows)
    return out


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cell", sorted(STREAMING_CELLS))
def test_streaming(cell, seed, kafka_bootstrap, fresh_topic, fresh_keyspace, tmp_path):
    trace = conformance_trace(seed)
    topic = fresh_topic(partitions=PARTITIONS, prefix="conformance")
    raws, sends = kafka_raws(trace, topic)
    want = expected(raws)
    job = Job(job_args(kafka_bootstrap, topic, fresh_keyspace.keyspace, *STREAMING_CELLS[cell]),
              tmp_path / "job.log")
    try:
        publish(kafka_bootstrap, topic, by_partition=sends, timestamp_ms=KAFKA_TIMESTAMP_MS)
        deadline = time.monotonic() + 150
        got = cassandra_tables(fresh_keyspace)
        while got != want and time.monotonic() < deadline:
            job.check_alive()
            time.sleep(2)
            got = cassandra_tables(fresh_keyspace)
        assert_tables(got, want, cell)
    finally:
        job.stop()
