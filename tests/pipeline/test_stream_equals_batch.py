"""Tier 4: streaming and batch compute the same rows (docs/SEMANTICS.md: identical in both).

A generated trace (every encoding, duplicates, malformed records, pattern bursts on every boundary)
goes (a) through the batch path in its source order and (b) through a TestStream in a seeded random
arrival order with a watermark that follows the data; the final rows of all three tables must be
identical, and equal to tests/reference.py's. The worked example of the spec runs on a stream too.
"""

from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.testing import test_stream

from beam_cxone.config import AnalyticsConfig
from beam_cxone.generator import GeneratorConfig
from beam_cxone.generator import generate
from beam_cxone.parse import parse_record
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import DeadLetter
from beam_cxone.records import Interaction
from beam_cxone.records import RawRecord
from tests.pipeline import worked_example
from tests.pipeline.harness import DRAIN_STEP_S
from tests.pipeline.harness import SOURCE_TIME_MS
from tests.pipeline.harness import reference_rows
from tests.pipeline.harness import run_batch
from tests.pipeline.harness import run_graph
from tests.pipeline.harness import streaming_options

CFG = AnalyticsConfig()
JITTER_MS = 8_000  # how far (event time) a record may move in the arrival order
WATERMARK_LAG_MS = 2_000  # watermark = newest event time seen - this
WATERMARK_STEP_MS = 5_000  # the watermark moves in steps of at least this (fewer steps: faster)


def event_ms(raw: RawRecord) -> int | None:
    """Event time of a valid record, for the TestStream's element timestamps only."""
    record = parse_record(raw)
    return record.event_time_ms if isinstance(record, Interaction | CustomerUpdate) else None


def shuffled_stream(raws: list[RawRecord], seed: int) -> tuple[test_stream.TestStream, int]:
    """A TestStream of `raws` in a random order within JITTER_MS of event time.

    Returns the stream and how many records arrived behind the watermark (late panes, join and
    pattern buffers see those); all are within the allowed lateness, so none is flagged late.
    """
    rng = random.Random(seed)
    keyed, last = [], None
    for n, raw in enumerate(raws):
        t = event_ms(raw)
        last = t if t is not None else last
        base = t if t is not None else (last or 0)
        keyed.append((base + rng.uniform(0, JITTER_MS), n, t, raw))
    keyed.sort(key=lambda k: (k[0], k[1]))
    stream, batch = test_stream.TestStream(), []
    newest = watermark = None
    behind = 0
    for _, _, t, raw in keyed:
        stamp = t if t is not None else (watermark or newest or 0)
        if t is not None and watermark is not None and t < watermark:
            behind += 1
            assert t >= watermark - CFG.allowed_lateness_s * 1000, "test bug: a late record"
        batch.append(beam.window.TimestampedValue(raw, stamp / 1000))
        if t is not None:
            newest = t if newest is None else max(newest, t)
            candidate = newest - WATERMARK_LAG_MS
            if watermark is None or candidate >= watermark + WATERMARK_STEP_MS:
                stream = stream.add_elements(batch)
                batch = []
                watermark = candidate
                stream = stream.advance_watermark_to(watermark / 1000)
    if batch:
        stream = stream.add_elements(batch)
    # Drain as a live stream would, in small steps, until every event is final, then the end of
    # time (the streaming rules test the jump too).
    drain_to = newest + (CFG.allowed_lateness_s + CFG.pattern_within_s + DRAIN_STEP_S) * 1000
    while watermark < drain_to:
        watermark += DRAIN_STEP_S * 1000
        stream = stream.advance_watermark_to(watermark / 1000)
    return stream.advance_watermark_to_infinity(), behind


def generated(seed: int, count: int) -> list[RawRecord]:
    cfg = GeneratorConfig(count=count, seed=seed, disorder_s=3, customers=10)
    return [
        RawRecord(r.value, f"gen:{n}", SOURCE_TIME_MS, ("gen", n))
        for n, r in enumerate(generate(cfg), start=1)
    ]


@pytest.mark.parametrize("seed", [3, 17, 2024])
def test_a_shuffled_stream_equals_batch_and_the_reference(seed: int):
    raws = generated(seed, count=1500)
    stream, behind = shuffled_stream(raws, seed)
    assert behind > 100  # the disorder really reaches behind the watermark
    streamed = run_graph(streaming_options(), stream, CFG, streaming=True)
    streamed.assert_versions_only_grow()
    batch = run_batch(raws)
    expected = reference_rows(raws)
    assert expected["pattern_alerts"], "the trace should hold pattern matches"
    assert expected["customer_profiles"]
    assert batch.finals() == expected
    assert streamed.finals() == expected
    assert streamed.alert_ids() == batch.alert_ids()
    assert streamed.dead_letters() == batch.dead_letters()
    assert len(batch.dead_letters()) == sum(isinstance(parse_record(r), DeadLetter) for r in raws)


def test_the_worked_example_on_a_shuffled_stream():
    stream, _ = shuffled_stream(worked_example.trace_records(), seed=5)
    worked_example.check_run(run_graph(streaming_options(), stream, CFG, streaming=True))
