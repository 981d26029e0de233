"""The worked example of the spec (tests/data/worked_example/README.md): its small trace and the rows
an independent implementation computed for it. It lives in the repository, so it always runs."""

from __future__ import annotations

import json
from pathlib import Path

from beam_cxone.records import RawRecord
from tests.pipeline.harness import ROW_TABLES
from tests.pipeline.harness import Run
from tests.pipeline.harness import sorted_rows
from tests.reference import raw_lines

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "worked_example"
TRACE_SMALL = str(EXAMPLE / "trace_small.jsonl")
EXPECTED_SMALL = EXAMPLE / "expected_small"


def trace_records() -> list[RawRecord]:
    """The trace's lines numbered as the file source numbers them (source `trace:<line>`)."""
    with open(TRACE_SMALL, "rb") as f:
        return raw_lines(f.read().split(b"\n"))


def expected_rows(table: str) -> list[dict]:
    with open(EXPECTED_SMALL / f"{table}.jsonl", encoding="utf-8") as f:
        return sorted_rows(json.loads(line) for line in f if line.strip())


def counts() -> dict:
    with open(EXPECTED_SMALL / "counts.json", encoding="utf-8") as f:
        return json.load(f)


def check_run(run: Run) -> None:
    """The run's final rows are the expected ones (in the expected files' columns: no wall-clock
    stamps); its dead letters lie between the distinct payloads and the lines, one id each."""
    for table in ROW_TABLES:
        want = expected_rows(table)
        columns = set(want[0])
        got = sorted_rows(
            {k: v for k, v in row.items() if k in columns} for row in run.final(table)
        )
        assert got == want, table
    expected = counts()
    dead = run.versions["dead_letters"]
    assert expected["distinct_dead_letter_payloads"] <= len(dead) <= expected["dead_letter_lines"]
    assert len({row["dead_letter_id"] for row in dead}) == len(dead)
