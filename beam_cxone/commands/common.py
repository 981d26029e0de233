"""What the commands share besides argv (`cmdline`): the checks before a job is submitted, and the
end-of-run metrics. Every refusal is one line `PROG: message` on stderr and exit code 2
(`beam_cxone.console.fail`)."""

from __future__ import annotations

import sys

from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone import options as opts
from beam_cxone.console import fail
from beam_cxone.metrics_report import format_metrics
from beam_cxone.preflight import preflight_message

__all__ = ["check_before_submitting", "invalid_options", "preflight_message", "print_metrics"]


def invalid_options(prog: str, problems: str | list[str], usage: str = "") -> int:
    """`PROG: invalid options:` and every problem on its own indented line (and a usage)."""
    lines = problems.splitlines() if isinstance(problems, str) else problems
    return fail(prog, "invalid options:\n  " + "\n  ".join(line.strip() for line in lines)
                + (f"\n{usage}" if usage else ""))


def check_before_submitting(prog: str, options: PipelineOptions, settings: opts.JobSettings) -> int | None:
    """CXone (with --cxone_validate), then the Kafka and Cassandra connections the job is about to
    use (`beam_cxone.preflight`): the exit code of the refusal, or None when the job may go on."""
    from beam_cxone.cxone.errors import CxoneError
    from beam_cxone.cxone.validation import validate_if_requested

    try:
        validate_if_requested(options)
    except CxoneError as err:
        return fail(prog, f"CXone validation failed: {err.reason}")
    kafka = settings.kafka or settings.dead_letter_topic
    failed = preflight_message(
        kafka_bootstrap=kafka.bootstrap_servers if kafka is not None else None,
        cassandra=settings.sink.cassandra)
    if failed:  # a wrong password, CA or protocol: one line, before anything is submitted
        return fail(prog, failed)
    return None


def print_metrics(result) -> None:
    print(format_metrics(result), file=sys.stderr)
