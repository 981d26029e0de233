"""Doubles for testing `beam_cxone.io.cassandra_write` without a runner or a cluster: Beam counters
of DoFn methods called directly, and an `execute` that fails chosen rows a chosen number of times."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from collections.abc import Iterator

from apache_beam.metrics.execution import MetricsContainer
from apache_beam.metrics.metricbase import MetricName
from apache_beam.runners.worker import statesampler
from apache_beam.utils import counters

from beam_cxone.io.cassandra_write import METRICS_NAMESPACE

__all__ = ["FakeExecute", "direct_counters"]


@contextlib.contextmanager
def direct_counters() -> Iterator[Callable[[str], int]]:
    """Beam counters of DoFn methods called directly on this thread (no runner installs them)."""
    container = MetricsContainer("direct")
    sampler = statesampler.StateSampler("", counters.CounterFactory())
    statesampler.set_current_tracker(sampler)
    sampler.start()
    try:
        with sampler.scoped_state("direct", "process", metrics_container=container):
            yield lambda name: container.get_counter(
                MetricName(METRICS_NAMESPACE, name)
            ).get_cumulative()
    finally:
        sampler.stop()
        statesampler.set_current_tracker(None)


class FakeExecute:
    """Fails each params item with the queued outcomes of its own, then succeeds."""

    def __init__(self, outcomes: dict):
        self.outcomes = {k: list(v) for k, v in outcomes.items()}
        self.calls: list[list] = []

    def __call__(self, params):
        self.calls.append(list(params))
        results = []
        for p in params:
            queue = self.outcomes.get(p, [])
            err = queue.pop(0) if queue else None
            results.append((False, err) if err else (True, None))
        return results
