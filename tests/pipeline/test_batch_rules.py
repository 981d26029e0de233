"""Tier 3: the batch path (streaming=False) on the scenarios of the streaming rules and on the
worked example of the spec, on the FnApiRunner and the BundleBasedDirectRunner, and the scenarios on
Prism too (integration tier).

Batch has no watermark: the scripts' watermark steps are ignored, records flagged late stay dead
letters, and "first seen" is the first copy in source order (the arrival number of the script).
Expected rows are the scenarios' hand-written ones and tests/reference.py's, for every table.
"""

from __future__ import annotations

import json
import os

import pytest

from beam_cxone.config import AnalyticsConfig
from beam_cxone.io.files import ReadJsonLines
from tests.pipeline.harness import BUNDLE_BATCH
from tests.pipeline.harness import FN_API
from tests.pipeline.harness import Run
from tests.pipeline.harness import prism_options
from tests.pipeline.harness import raw_records
from tests.pipeline.harness import reference_rows
from tests.pipeline.harness import run_batch
from tests.pipeline.harness import run_graph
from tests.pipeline.harness import sorted_rows
from tests.pipeline.scenarios import MIXED_EXPECTED
from tests.pipeline.scenarios import SCENARIOS
from tests.pipeline.scenarios import Scenario
from tests.pipeline.scenarios import mixed_in_order
from tests.pipeline.scenarios import mixed_out_of_order
from tests.reference import raw_lines
from tests.reference import reference

# The worked example lives in the repository (tests/data/worked_example/README.md): it always runs.
EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "worked_example")
TRACE_SMALL = os.path.normpath(os.path.join(EXAMPLE, "trace_small.jsonl"))
EXPECTED_SMALL = os.path.normpath(os.path.join(EXAMPLE, "expected_small"))
RUNNERS = pytest.mark.parametrize("options", [
    pytest.param(FN_API, id="fnapi"),
    pytest.param(BUNDLE_BATCH, id="bundle"),
    pytest.param(prism_options(), id="prism", marks=pytest.mark.integration),  # needs the binary
])


def dead_triples(run: Run) -> list[tuple[int, str, str]]:
    return sorted(
        (int(row["source"].split(":")[1]), row["stage"], row["reason"])
        for row in run.versions["dead_letters"]
    )


@RUNNERS
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_rule_in_batch(scenario: Scenario, options: list[str]):
    raws = raw_records(scenario.script)
    run = run_batch(raws, scenario.cfg, options)
    for table, rows in scenario.expected.items():
        assert run.final(table) == rows, table
    cfg = scenario.cfg
    assert run.finals() == reference_rows(
        raws,
        window_ms=cfg.window_size_s * 1000,
        failure_count=cfg.failure_count,
        within_ms=round(cfg.pattern_within_s * 1000),
    )
    assert dead_triples(run) == sorted(scenario.dead)
    # batch writes every row once: no panes, one profile row per customer
    for table in ("interaction_volumes", "customer_profiles", "pattern_alerts"):
        assert len(run.versions[table]) == len(run.final(table)), table


@RUNNERS
def test_both_arrival_orders_in_batch(options: list[str]):
    for script in (mixed_in_order(), mixed_out_of_order()):
        assert run_batch(raw_records(script), options=options).finals() == MIXED_EXPECTED


def _expected_small(table: str) -> list[dict]:
    with open(os.path.join(EXPECTED_SMALL, f"{table}.jsonl"), encoding="utf-8") as f:
        return sorted_rows(json.loads(line) for line in f if line.strip())


def _counts() -> dict:
    with open(os.path.join(EXPECTED_SMALL, "counts.json"), encoding="utf-8") as f:
        return json.load(f)


def _check_example(run: Run) -> None:
    for table in ("interaction_volumes", "customer_profiles", "pattern_alerts"):
        want = _expected_small(table)
        columns = set(want[0])
        got = sorted_rows(
            {k: v for k, v in row.items() if k in columns} for row in run.final(table)
        )
        assert got == want, table
    counts = _counts()
    dead = run.versions["dead_letters"]
    assert counts["distinct_dead_letter_payloads"] <= len(dead) <= counts["dead_letter_lines"]
    assert len({row["dead_letter_id"] for row in dead}) == len(dead)


def test_example_trace_from_the_file_source_equals_the_expected_rows():
    run = run_graph(FN_API, ReadJsonLines(TRACE_SMALL), AnalyticsConfig(), streaming=False)
    _check_example(run)
    assert {row["source"].rsplit(":", 1)[0] for row in run.versions["dead_letters"]} == {
        TRACE_SMALL
    }


def test_example_trace_on_the_bundle_runner_equals_the_expected_rows():
    with open(TRACE_SMALL, "rb") as f:
        raws = raw_lines(f.read().split(b"\n"))
    _check_example(run_batch(raws, options=BUNDLE_BATCH))


def test_the_reference_agrees_with_the_worked_example():
    """No pipeline: tests/reference.py and the example's independent implementation agree."""
    with open(TRACE_SMALL, "rb") as f:
        raws = raw_lines(f.read().split(b"\n"))
    ref = reference(raws)
    for table in ("interaction_volumes", "customer_profiles", "pattern_alerts"):
        assert sorted_rows(ref[table]) == _expected_small(table), table
    counts = _counts()
    assert ref["valid_distinct_records"] == counts["valid_distinct_records"]
    assert len(ref["dead_letters"]) == counts["dead_letter_lines"]
