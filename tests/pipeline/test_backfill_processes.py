"""The backfill's batch graph on every core gives the rows of one process, and the reference's.

A generated trace in four gzip files runs through the resumable file backfill
(`pipelines/file_backfill.py`) on the FnApiRunner in one process and with two SDK worker processes
(`--direct_running_mode=multi_processing`, the default for bounded runs), and through the plain
batch graph over the file source with two processes; the JSON Lines of each equal tests/reference.py.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone.config import AnalyticsConfig
from beam_cxone.generator import GeneratorConfig
from beam_cxone.generator import generate
from beam_cxone.pipelines.file_backfill import FileBackfillPlan
from beam_cxone.pipelines.file_backfill import list_input_files
from beam_cxone.pipelines.jobs import SinkConfig
from beam_cxone.pipelines.jobs import build_backfill
from tests.integration.test_backfill import assert_rows_match
from tests.integration.test_backfill import read_jsonl_dir
from tests.integration.test_backfill import without
from tests.pipeline.harness import FN_API
from tests.reference import raw_lines

TWO_PROCESSES = [*FN_API, "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
STAMPS = {"interaction_volumes": "updated_at", "pattern_alerts": "detected_at"}


def _trace(directory: Path) -> tuple[str, list]:
    lines = [r.value for r in generate(GeneratorConfig(count=12_000, seed=31))]
    raws = []
    for i in range(4):
        path = directory / f"part-{i}.jsonl.gz"
        part = lines[i::4]  # interleaved: duplicates and customers span files
        path.write_bytes(gzip.compress(b"\n".join(part) + b"\n", compresslevel=1))
        mtime_ms = int(os.path.getmtime(path) * 1000)
        raws += [dataclasses.replace(r, source_time_ms=mtime_ms)
                 for r in raw_lines(part, name=str(path))]
    return str(directory / "part-*.jsonl.gz"), raws


def _run(options: list[str], out: Path, *, pattern: str | None = None,
         plan: FileBackfillPlan | None = None) -> dict[str, list[dict]]:
    p = beam.Pipeline(options=PipelineOptions(options))
    build_backfill(p, AnalyticsConfig(), SinkConfig(kind="jsonl", output_dir=str(out)),
                   input_pattern=pattern, plan=plan)
    p.run().wait_until_finish()
    rows = read_jsonl_dir(out)
    return {name: sorted(without(r, STAMPS.get(name)), key=repr) for name, r in rows.items()}


def test_every_core_gives_the_rows_of_one_process_and_the_reference(tmp_path):
    pattern, raws = _trace(tmp_path)
    files = tuple(list_input_files(pattern))
    one = _run(FN_API, tmp_path / "one",
               plan=FileBackfillPlan(files, str(tmp_path / "ck-one")))
    two = _run(TWO_PROCESSES, tmp_path / "two",
               plan=FileBackfillPlan(files, str(tmp_path / "ck-two")))
    plain = _run(TWO_PROCESSES, tmp_path / "plain", pattern=pattern)
    assert two == one
    assert plain == one
    assert_rows_match(read_jsonl_dir(tmp_path / "two"), raws)
