"""The job's Beam metrics as a table for the end of a bounded run (DirectRunner family, Prism).

On Flink the same counters and distributions show in the web UI (the job, an operator, its
"Metrics" tab; the names carry the step, namespace and name). This table sums each metric over the
steps that report it:

  metrics (committed; counters summed over steps)
    cassandra_write/rows_written  1234
    dead_letters/invalid_json        3
    kafka_read/records_read       1250
    ...

The namespaces and names are those of the DoFns (`kafka_read/records_read`, `parse/dead_letters`,
`dead_letters/<reason>`, `dedup/duplicates_dropped`, `cassandra_write/write_retries`, ...): see
docs/OPERATIONS.md, "Metrics".
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["format_metrics", "metric_values"]

_LOG = logging.getLogger(__name__)


def _value(result: Any) -> Any:
    """Committed (what finished bundles reported) when the runner has it, else attempted."""
    committed = getattr(result, "committed", None)
    return committed if committed is not None else getattr(result, "attempted", None)


def _name(result: Any) -> str:
    metric = result.key.metric
    return f"{metric.namespace}/{metric.name}"


def _is_system(result: Any) -> bool:
    """Runner-internal metrics (Prism reports `beam/metric:element_count:v1` and the like)."""
    metric = result.key.metric
    return not metric.namespace or (
        metric.namespace == "beam" and str(metric.name).startswith("metric:")
    )


def _user(results: list) -> list:
    return [r for r in results if not _is_system(r)]


def _merge_distribution(acc: tuple | None, dist: Any) -> tuple:
    """(count, sum, min, max) of two distributions; an empty one (count 0) adds nothing."""
    count, total = dist.count or 0, dist.sum or 0
    if acc is None:
        return (count, total, dist.min, dist.max) if count else (0, 0, None, None)
    if not count:
        return acc
    lo = dist.min if acc[2] is None else min(acc[2], dist.min)
    hi = dist.max if acc[3] is None else max(acc[3], dist.max)
    return acc[0] + count, acc[1] + total, lo, hi


def _format_distribution(acc: tuple) -> str:
    count, total, lo, hi = acc
    if not count:
        return "count=0"
    return f"count={count} sum={total} min={lo} mean={total / count:.1f} max={hi}"


def metric_values(result: Any) -> dict[str, str]:
    """`namespace/name` -> rendered value, for every user counter, distribution and gauge the runner
    reports, each summed (counters) or merged (distributions) over the steps that report it.
    Runner-internal metrics (namespace `beam`, names `metric:...`) are left out."""
    query = result.metrics().query()
    counters: dict[str, int] = {}
    for r in _user(query.get("counters", [])):
        value = _value(r)
        counters[_name(r)] = counters.get(_name(r), 0) + (value or 0)
    distributions: dict[str, tuple] = {}
    for r in _user(query.get("distributions", [])):
        value = _value(r)
        if value is not None:
            distributions[_name(r)] = _merge_distribution(distributions.get(_name(r)), value)
    gauges: dict[str, tuple] = {}
    for r in _user(query.get("gauges", [])):
        value = _value(r)
        if value is None or getattr(value, "value", None) is None:
            continue
        latest = gauges.get(_name(r))
        stamp = getattr(value, "timestamp", None) or 0
        if latest is None or stamp >= latest[0]:
            gauges[_name(r)] = (stamp, value.value)
    rendered = {name: str(v) for name, v in counters.items()}
    rendered.update({name: _format_distribution(acc) for name, acc in distributions.items()})
    rendered.update({name: str(v) for name, (_, v) in gauges.items()})
    return dict(sorted(rendered.items()))


def format_metrics(
    result: Any, title: str = "metrics (committed; counters summed over steps)"
) -> str:
    """A sorted `namespace/name  value` table of a finished (or cancelled) run's metrics.

    Never raises: a runner that cannot report metrics gets a one-line note instead, because this
    runs after the job, whose outcome must not depend on it.
    """
    try:
        values = metric_values(result)
    except Exception as err:  # noqa: BLE001 - reporting must not fail a run that succeeded
        _LOG.debug("metrics query failed", exc_info=True)
        return f"metrics: not available from this runner ({type(err).__name__})"
    if not values:
        return "metrics: none reported"
    width = max(len(name) for name in values)
    numeric = [v for v in values.values() if v.lstrip("-").isdigit()]
    value_width = max((len(v) for v in numeric), default=0)
    lines = [title]
    for name, value in values.items():
        shown = value.rjust(value_width) if value.lstrip("-").isdigit() else value
        lines.append(f"  {name.ljust(width)}  {shown}")
    return "\n".join(lines)
