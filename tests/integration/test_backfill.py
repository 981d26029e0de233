"""Backfills end to end against the real local Kafka and Cassandra: every shipped template with the
exact rows of tests/reference.py, reruns that change nothing, a Kafka time range that selects exactly
its records, a streaming run followed by a backfill of the same records, each kind of bad parameter
(failing before anything runs), and the progress meter.

Run: .venv/bin/python -m pytest tests/integration/test_backfill.py -q   (starts Kafka and Cassandra)
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from kafka import KafkaProducer

from beam_cxone import commands
from beam_cxone.backfill import BackfillProgress
from beam_cxone.backfill import count_input_records
from beam_cxone.generator import GeneratorConfig
from beam_cxone.generator import generate
from beam_cxone.io.cassandra_schema import create_schema
from beam_cxone.io.cassandra_schema import drop_keyspace
from beam_cxone.io.cassandra_schema import read_rows
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.pipelines.analytics import dead_letter_row
from beam_cxone.records import RawRecord
from beam_cxone.tables import TABLES
from tests.reference import iso
from tests.reference import raw_lines
from tests.reference import reference

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
# Wall-clock stamps the pipeline sets when it writes: the only columns a rerun may change.
STAMPS = {"interaction_volumes": "updated_at", "pattern_alerts": "detected_at"}
# Columns the reference does not compute (ids and stamps the pipeline derives itself).
NOT_IN_REFERENCE = {
    "interaction_volumes": {"updated_at"},
    "pattern_alerts": {"alert_id", "detected_at"},
}
# Another test may stop Cassandra for ~40 s: reads and DDL retry for longer than that.
CASSANDRA_PATIENCE_S = 90


# ----- helpers ----------------------------------------------------------------------------------


def patiently(fn: Callable, *args):
    deadline = time.monotonic() + CASSANDRA_PATIENCE_S
    while True:
        try:
            return fn(*args)
        except Exception:  # noqa: BLE001 - any driver error during an outage: try again
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


@pytest.fixture
def keyspace(cassandra_cfg: CassandraConfig):
    """A keyspace of this test's own (the session keyspace is shared with other test files)."""
    cfg = dataclasses.replace(
        cassandra_cfg, keyspace=f"{cassandra_cfg.keyspace}_bf{secrets.token_hex(3)}"
    )
    patiently(create_schema, cfg)
    yield cfg
    patiently(drop_keyspace, cfg)


def backfill(capsys, *args: str) -> tuple[int, str]:
    """`python -m beam_cxone backfill ARGS` in this process: exit code and stderr."""
    capsys.readouterr()
    code = commands.main(["backfill", *map(str, args)])
    return code, capsys.readouterr().err


def tables(cfg: CassandraConfig) -> dict[str, list[dict]]:
    return {name: patiently(read_rows, cfg, table) for name, table in TABLES.items()}


def without(rows: list[dict], columns: set[str] | str | None) -> list[dict]:
    drop = {columns} if isinstance(columns, str) else (columns or set())
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def comparable(name: str, rows: list[dict]) -> list[dict]:
    """Rows in the reference's terms: no pipeline-made columns, timestamps as ISO text, sorted."""
    table = TABLES[name]
    out = []
    for row in without(rows, NOT_IN_REFERENCE.get(name)):
        out.append(
            {
                k: iso(v) if table.column_type(k) == "timestamp" and isinstance(v, int) else v
                for k, v in row.items()
            }
        )
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))


def expected_rows(raws: list[RawRecord]) -> dict[str, list[dict]]:
    ref = reference(sorted(raws, key=lambda r: r.order))  # batch: the first by source order counts
    rows = {
        name: ref[name] for name in ("interaction_volumes", "pattern_alerts", "customer_profiles")
    }
    rows["dead_letters"] = [dead_letter_row(d) for d in ref["dead_letters"]]
    return {name: comparable(name, r) for name, r in rows.items()}


def assert_rows_match(actual: dict[str, list[dict]], raws: list[RawRecord]) -> None:
    expected = expected_rows(raws)
    for name in TABLES:
        assert comparable(name, actual[name]) == expected[name], name
        assert expected[name], f"the trace must exercise {name}"


def assert_unchanged(before: dict[str, list[dict]], after: dict[str, list[dict]]) -> None:
    for name in TABLES:
        assert len(after[name]) == len(before[name]), name
        assert without(after[name], STAMPS.get(name)) == without(before[name], STAMPS.get(name)), (
            name
        )


def trace(count: int, seed: int) -> list[bytes]:
    return [r.value for r in generate(GeneratorConfig(count=count, seed=seed))]


def write_files(directory: Path, lines: list[bytes]) -> tuple[str, list[RawRecord]]:
    """Two files (a blank line in the second) and the records the file source makes of them."""
    half = len(lines) // 2
    parts = {
        directory / "part-1.jsonl": lines[:half],
        directory / "part-2.jsonl": lines[half : half + 5] + [b"  "] + lines[half + 5 :],
    }
    raws = []
    for path, part in parts.items():
        path.write_bytes(b"\n".join(part) + b"\n")
        mtime_ms = int(os.path.getmtime(path) * 1000)
        raws += [
            dataclasses.replace(r, source_time_ms=mtime_ms) for r in raw_lines(part, name=str(path))
        ]
    return str(directory / "part-*.jsonl"), raws


def publish_at(
    bootstrap: str,
    topic: str,
    lines: list[bytes],
    t0_ms: int,
    step_ms: int,
) -> list[RawRecord]:
    """Publishes line i with Kafka timestamp t0 + i*step; the records as the Kafka read sees them."""
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), linger_ms=5)
    try:
        futures = [
            (
                producer.send(topic, value=line, partition=i % 2, timestamp_ms=t0_ms + i * step_ms),
                line,
            )
            for i, line in enumerate(lines)
        ]
        producer.flush()
        metas = [(f.get(timeout=30), line) for f, line in futures]
    finally:
        producer.close()
    return [
        RawRecord(
            line,
            f"{topic}/{m.partition}/{m.offset}",
            m.timestamp,
            (f"{topic}/{m.partition}", m.offset),
        )
        for m, line in metas
    ]


def read_jsonl_dir(directory: Path) -> dict[str, list[dict]]:
    out = {}
    for name in TABLES:
        files = sorted(directory.glob(f"{name}-*.jsonl"))
        assert len(files) == 1, files
        out[name] = [json.loads(line) for line in files[0].read_text().splitlines() if line]
    return out


# ----- every shipped template, end to end -------------------------------------------------------


@pytest.mark.integration
def test_files_to_cassandra_exact_rows_and_a_rerun_changes_nothing(tmp_path, keyspace, capsys):
    pattern, raws = write_files(tmp_path, trace(3000, seed=11))
    args = [
        "--template",
        TEMPLATES / "files_to_cassandra.yaml",
        "--param",
        f"input={pattern}",
        "--param",
        f"keyspace={keyspace.keyspace}",
    ]
    code, err = backfill(capsys, *args)
    assert code == 0, err
    assert "3000/3000" in err and "records/s" in err  # progress: of the total, with the rate
    first = tables(keyspace)
    assert_rows_match(first, raws)

    code, err = backfill(capsys, *args)  # the same command: its done marker says it finished
    assert code == 0 and "nothing to do" in err, err
    code, err = backfill(capsys, *args, "--fresh")  # computed and written again
    assert code == 0 and "0 of 2 file(s) already parsed" in err, err
    assert_unchanged(first, tables(keyspace))


@pytest.mark.integration
def test_files_to_jsonl_is_the_same_rows_as_files(tmp_path, capsys):
    pattern, raws = write_files(tmp_path, trace(3000, seed=11))
    out = tmp_path / "out"
    args = ["--template", "files_to_jsonl", "--param", f"input={pattern}", f"output_dir={out}"]
    code, err = backfill(capsys, *args)
    assert code == 0, err
    first = read_jsonl_dir(out)
    assert_rows_match(first, raws)
    assert first["interaction_volumes"][0]["window_start"].endswith("Z")  # the export's ISO times

    code, err = backfill(capsys, *args, "--fresh")
    assert code == 0, err
    assert_unchanged(first, read_jsonl_dir(out))


@pytest.mark.integration
def test_kafka_range_selects_exactly_its_records(kafka_bootstrap, fresh_topic, keyspace, capsys):
    topic = fresh_topic(partitions=2)
    t0 = int(time.time() * 1000) - 3_600_000
    published = publish_at(kafka_bootstrap, topic, trace(2000, seed=23), t0, step_ms=100)
    start, stop = t0 + 500 * 100, t0 + 1500 * 100  # records 500 .. 1499 (stop is exclusive)
    in_range = [r for r in published if start <= r.source_time_ms < stop]
    assert len(in_range) == 1000
    args = [
        "--template",
        "kafka_range_to_cassandra",
        "--param",
        f"start={iso(start)}",
        f"stop={stop}",
        f"topic={topic}",
        f"bootstrap_servers={kafka_bootstrap}",
        f"keyspace={keyspace.keyspace}",
    ]
    code, err = backfill(capsys, *args)
    assert code == 0, err
    assert "1000/1000" in err
    first = tables(keyspace)
    assert_rows_match(first, in_range)
    sources = {r["source"] for r in first["dead_letters"]}
    assert sources <= {r.source for r in in_range}

    code, err = backfill(capsys, *args)
    assert code == 0, err
    assert_unchanged(first, tables(keyspace))


@pytest.mark.integration
def test_backfill_after_the_streaming_job_changes_none_of_its_rows(
    kafka_bootstrap, fresh_topic, keyspace, capsys
):
    topic = fresh_topic(partitions=2)
    start = int(time.time() * 1000) - 1000
    published = publish_at(kafka_bootstrap, topic, trace(1500, seed=5), start, step_ms=1)
    stop = start + len(published) + 1000
    streaming = subprocess.run(
        [
            sys.executable,
            "-m",
            "beam_cxone",
            f"--bootstrap_servers={kafka_bootstrap}",
            f"--topic={topic}",
            f"--cassandra_keyspace={keyspace.keyspace}",
            "--run_seconds=12",
            "--idle_timeout_s=1",
            "--group_id=",
            "--log_level=WARNING",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert streaming.returncode == 0, streaming.stderr[-3000:]
    streamed = tables(keyspace)
    for name in ("interaction_volumes", "customer_profiles", "dead_letters"):
        assert streamed[name], f"the streaming job wrote no {name}"

    code, err = backfill(
        capsys,
        "--template",
        "kafka_range_to_cassandra",
        "--param",
        f"start={start}",
        f"stop={stop}",
        f"topic={topic}",
        f"bootstrap_servers={kafka_bootstrap}",
        f"keyspace={keyspace.keyspace}",
    )
    assert code == 0, err
    after = tables(keyspace)
    for name, table in TABLES.items():
        backfilled = {table.key_of(r): r for r in without(after[name], STAMPS.get(name))}
        for row in without(streamed[name], STAMPS.get(name)):
            assert backfilled.get(table.key_of(row)) == row, (name, row)
    assert_rows_match(after, published)  # and what the stream had not finished is complete


# ----- bad parameters: each fails before anything runs, naming the valid ones -------------------


@pytest.fixture
def jsonl_job(tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(trace(50, seed=1)) + b"\n")
    return tmp_path / "in.jsonl", tmp_path / "out"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("params", "extra", "message"),
    [
        (["input={in}", "output_dir={out}", "outptu_dir=x"], [], "unknown parameter 'outptu_dir'"),
        (["input={in}"], [], "missing required parameter 'output_dir'"),
        (["input={in}", "output_dir= "], [], "parameter output_dir: ' ' is not a path"),
        (["input={in}", "output_dir"], [], "--param 'output_dir' is not NAME=VALUE"),
        (["input={in}.missing", "output_dir={out}"], [], "matches no file"),
        (["input={in}", "output_dir={out}"], ["--input={in}"], "sets --input itself"),
        (["input={in}", "output_dir={out}"], ["--output_dir=/tmp/x"], "sets --output_dir itself"),
        (
            ["input={in}", "output_dir={out}"],
            ["--windw_size_s=5"],
            "unknown option --windw_size_s=5",
        ),
        (
            ["input={in}", "output_dir={out}"],
            ["--window_size_s=ten"],
            "argument --window_size_s: invalid int value: 'ten'",
        ),
        (["input={in}", "output_dir={out}"], ["--window_size_s=0"], "window_size_s"),
    ],
)
def test_bad_parameters_fail_before_anything_runs(jsonl_job, capsys, params, extra, message):
    source, out = jsonl_job
    fill = {"in": source, "out": out}
    code, err = backfill(
        capsys,
        "--template",
        "files_to_jsonl",
        "--param",
        *[p.format(**fill) for p in params],
        *[e.format(**fill) for e in extra],
    )
    assert code == 2
    assert message in err
    assert "parameters of template files_to_jsonl" in err and "output_dir" in err
    assert not out.exists()  # nothing ran


@pytest.mark.integration
@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            ["start=2026-11-30T09:00:00Z", "stop=2026-11-30T08:00:00Z"],
            "--stop_timestamp must be after --start_timestamp",
        ),
        (
            ["start=2026-11-30T08:00:00", "stop=1796000000000"],
            "parameter start: '2026-11-30T08:00:00' is not RFC 3339 with an offset",
        ),
        (["start=1", "stop=2", "topic=has space"], "'has space' does not match the pattern"),
        (["start=1", "stop=2", "cassandra_port=port"], "'port' is not an integer"),
        (["start=1", "stop=2", "topic=no-such-topic-bf"], "'no-such-topic-bf' does not exist"),
    ],
)
def test_bad_kafka_range_parameters(kafka_bootstrap, capsys, params, message):
    code, err = backfill(
        capsys,
        "--template",
        "kafka_range_to_cassandra",
        "--param",
        *params,
        f"bootstrap_servers={kafka_bootstrap}",
        "keyspace=never_created",
    )
    assert code == 2
    assert message in err
    assert "parameters of template kafka_range_to_cassandra" in err


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--template", "no_such_template"], "no template 'no_such_template'"),
        (["--param", "a=1"], "--param needs --template"),
        (
            ["--input=/nowhere/*.jsonl", "--sink=jsonl", "--output_dir=/tmp/never"],
            "matches no file",
        ),
        (["--input=x", "--sink=xml"], "argument --sink: invalid choice: 'xml'"),
        (["--input=x", "--inptu=y"], "unknown option --inptu=y"),
        (["--input=x", "--stop_timestamp=5"], "--stop_timestamp belong to a Kafka range backfill"),
    ],
)
def test_bad_plain_backfill_arguments(capsys, args, message):
    code, err = backfill(capsys, *args)
    assert code == 2
    assert message in err


def test_a_template_option_goes_through_the_same_options_checks(tmp_path, jsonl_job, capsys):
    source, out = jsonl_job
    template = (TEMPLATES / "files_to_jsonl.yaml").read_text()
    template = template.replace("name: files_to_jsonl", "name: typo")
    template = template.replace(
        'output_dir: "{output_dir}"', 'output_dir: "{output_dir}"\n    window_sise_s: 5'
    )
    (tmp_path / "typo.yaml").write_text(template)
    code, err = backfill(
        capsys,
        "--template",
        "typo",
        f"--templates_dir={tmp_path}",
        "--param",
        f"input={source}",
        f"output_dir={out}",
    )
    assert code == 2
    assert "unknown option --window_sise_s=5" in err and "parameters of template typo" in err
    assert not out.exists()


@pytest.mark.integration
def test_flink_runner_says_what_is_missing(jsonl_job, capsys):
    source, out = jsonl_job
    code, err = backfill(
        capsys,
        "--template",
        "files_to_jsonl",
        "--param",
        f"input={source}",
        f"output_dir={out}",
        "--runner=FlinkRunner",
        "--flink_master=127.0.0.1:8081",
    )
    assert code == 2
    assert "Flink job server jar" in err and "--flink_job_server_jar" in err
    assert not out.exists()


def test_list_templates(capsys):
    code = commands.main(["backfill", "--list-templates"])
    listing = capsys.readouterr().out
    assert code == 0
    for name in ("files_to_cassandra", "files_to_jsonl", "kafka_range_to_cassandra"):
        assert f"{name}  (" in listing
    assert "runs: kafka_range -> cassandra" in listing
    assert "input                glob      required" in listing


def test_list_templates_reports_a_broken_one(tmp_path, capsys):
    (tmp_path / "broken.yaml").write_text("name: broken\n")
    code = commands.main(["backfill", "--list-templates", f"--templates_dir={tmp_path}"])
    assert code == 2
    assert "invalid template" in capsys.readouterr().err


# ----- pieces: option checks, totals, the progress meter ----------------------------------------


def test_count_input_records_skips_blank_lines(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b'{"a":1}\n\n  \n{"b":2}\n{"c":3}')  # no final newline
    (tmp_path / "b.jsonl").write_bytes(b"x\n" * 5)
    assert count_input_records(str(tmp_path / "*.jsonl")) == (2, 8)
    assert count_input_records(str(tmp_path / "*.jsonl"), count_lines=False) == (2, None)
    with pytest.raises(ValueError, match="matches no file"):
        count_input_records(str(tmp_path / "*.gz"))


class _Results:
    def __init__(self, rows):
        self._rows = rows

    def by_table(self):
        return {TABLES["customer_profiles"]: self._rows}


def test_progress_counts_the_read_and_the_rows_on_the_fn_api_runner():
    stream = io.StringIO()
    p = beam.Pipeline(
        options=PipelineOptions(
            ["--runner=apache_beam.runners.portability.fn_api_runner.FnApiRunner"]
        )
    )
    raw = p | "ReadFiles" >> beam.Create(range(1000))
    rows = raw | "Rows" >> beam.Filter(lambda x: x % 10 == 0)
    meter = BackfillProgress(1000, stream=stream, interval_s=0.05)
    meter.attach(p, _Results(rows))
    with meter:
        p.run().wait_until_finish()
    assert (meter.read, meter.rows) == (1000, 100)
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("backfill: 100%") and "1000/1000" in lines[-1]
    assert "records/s" in lines[-1] and "rows out 100" in lines[-1]
    assert "\r" not in stream.getvalue()  # not a terminal: one line per refresh


def _line_with(stream: io.StringIO, text: str, timeout_s: float = 60.0) -> str:
    """The first line holding `text`, once the meter's ticker has written it (the timeout only
    guards against a hang; a loaded machine just takes longer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        line = next((ln for ln in stream.getvalue().splitlines() if text in ln), None)
        if line is not None:
            return line
        assert time.monotonic() < deadline, f"no line with {text!r} in {timeout_s} s"
        time.sleep(0.02)


def test_progress_shows_remaining_time_while_it_runs():
    stream = io.StringIO()
    meter = BackfillProgress(1000, stream=stream, interval_s=0.05)
    with meter:
        from beam_cxone.backfill import _COUNTS

        _COUNTS[meter.token][0] = 250
        first = _line_with(stream, "250/1000")
    assert " 25%" in first
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d, ", first), first  # elapsed<remaining, an estimate
