"""Tier 3: the batch path (streaming=False) on the scenarios of the streaming rules and on the
worked example of the spec, on the FnApiRunner and the BundleBasedDirectRunner, and the scenarios on
Prism too (integration tier).

Batch has no watermark: the scripts' watermark steps are ignored, records flagged late stay dead
letters, and "first seen" is the first copy in source order (the arrival number of the script).
Expected rows are the scenarios' hand-written ones and tests/reference.py's, for every table.
"""

from __future__ import annotations

import pytest

from beam_cxone.config import AnalyticsConfig
from beam_cxone.io.files import ReadJsonLines
from tests.pipeline import worked_example
from tests.pipeline.harness import BUNDLE_BATCH
from tests.pipeline.harness import FN_API
from tests.pipeline.harness import ROW_TABLES
from tests.pipeline.harness import prism_options
from tests.pipeline.harness import raw_records
from tests.pipeline.harness import run_batch
from tests.pipeline.harness import run_graph
from tests.pipeline.harness import sorted_rows
from tests.pipeline.scenarios import MIXED_EXPECTED
from tests.pipeline.scenarios import SCENARIOS
from tests.pipeline.scenarios import Scenario
from tests.pipeline.scenarios import mixed_in_order
from tests.pipeline.scenarios import mixed_out_of_order
from tests.reference import reference

RUNNERS = pytest.mark.parametrize("options", [
    pytest.param(FN_API, id="fnapi"),
    pytest.param(BUNDLE_BATCH, id="bundle"),
    pytest.param(prism_options(), id="prism", marks=pytest.mark.integration),  # needs the binary
])


@RUNNERS
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_rule_in_batch(scenario: Scenario, options: list[str]):
    raws = raw_records(scenario.script)
    run = run_batch(raws, scenario.cfg, options)
    for table, rows in scenario.expected.items():
        assert run.final(table) == rows, table
    assert run.finals() == scenario.reference()
    assert run.dead_triples() == sorted(scenario.dead)
    # batch writes every row once: no panes, one profile row per customer
    for table in ("interaction_volumes", "customer_profiles", "pattern_alerts"):
        assert len(run.versions[table]) == len(run.final(table)), table


@RUNNERS
def test_both_arrival_orders_in_batch(options: list[str]):
    for script in (mixed_in_order(), mixed_out_of_order()):
        assert run_batch(raw_records(script), options=options).finals() == MIXED_EXPECTED


def test_example_trace_from_the_file_source_equals_the_expected_rows():
    run = run_graph(FN_API, ReadJsonLines(worked_example.TRACE_SMALL), AnalyticsConfig(), streaming=False)
    worked_example.check_run(run)
    assert {row["source"].rsplit(":", 1)[0] for row in run.versions["dead_letters"]} == {
        worked_example.TRACE_SMALL
    }


def test_example_trace_on_the_bundle_runner_equals_the_expected_rows():
    worked_example.check_run(run_batch(worked_example.trace_records(), options=BUNDLE_BATCH))


def test_the_reference_agrees_with_the_worked_example():
    """No pipeline: tests/reference.py and the example's independent implementation agree."""
    ref = reference(worked_example.trace_records())
    for table in ROW_TABLES:
        assert sorted_rows(ref[table]) == worked_example.expected_rows(table), table
    counts = worked_example.counts()
    assert ref["valid_distinct_records"] == counts["valid_distinct_records"]
    assert len(ref["dead_letters"]) == counts["dead_letter_lines"]
