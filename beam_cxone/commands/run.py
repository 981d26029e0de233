"""`python -m beam_cxone [run] ...`: the job, Kafka -> analytics -> Cassandra.

  python -m beam_cxone --bootstrap_servers=127.0.0.1:9092 --topic=cxone-data-actions   # Prism, streaming
  python -m beam_cxone --runner=FlinkRunner --flink_master=HOST:8081 ...                # Flink cluster
  python -m beam_cxone --topic=cxone-data-actions --run_seconds=60                      # stream, then drain
  python -m beam_cxone --bounded ...  (or --stop_timestamp=...)                         # a bounded run

Unbounded, it streams until stopped (or drains `--run_seconds` after its read starts). A bounded run
(`--bounded`: up to the end offsets seen at start; `--stop_timestamp`: up to a time) is a Kafka
range backfill: the same command as `backfill` without `--input` (`beam_cxone.commands.backfill`),
one implementation for both spellings.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import apache_beam as beam

from beam_cxone import options as opts
from beam_cxone.commands import cmdline
from beam_cxone.commands import common
from beam_cxone.console import fail
from beam_cxone.io.kafka.config import Drain
from beam_cxone.monitoring import JobMonitor
from beam_cxone.monitoring import MonitorError
from beam_cxone.monitoring import monitor_settings
from beam_cxone.pipelines.jobs import build_streaming
from beam_cxone.runners.profiles import RunnerSetupError

__all__ = ["DESCRIPTION", "PROG", "main"]

_LOG = logging.getLogger("beam_cxone")
PROG = "beam_cxone"
DRAIN_GRACE_S = 120  # after the drain starts: time for the last windows and timers to fire
DESCRIPTION = (
    "Contact-center analytics on Apache Beam: Kafka -> volumes per channel, customer patterns -> "
    "Cassandra.\n\ncommands (python -m beam_cxone COMMAND --help for each):\n"
    + "\n".join(f"  {name:<9} {text}" for name, text in cmdline.COMMANDS.items())
    + "\n\nWithout a command: run. Its options follow (pipeline options; secrets come from the "
    "environment, never from flags)."
)


def _wait(result, run_seconds: float) -> None:
    """Waits for the job. With `run_seconds`, the read drains that long after it started (every
    window and timer fires, the job finishes by itself); a job still running well after that (the
    runner's start-up plus the grace period) is cancelled."""
    if run_seconds <= 0:
        result.wait_until_finish()
        return
    result.wait_until_finish(duration=int((run_seconds + DRAIN_GRACE_S) * 1000))
    if str(result.state) in ("DONE", "FAILED", "CANCELLED"):
        return
    _LOG.warning("job still running %s s after the drain: cancelling it", DRAIN_GRACE_S)
    try:
        result.cancel()
    except Exception as err:  # noqa: BLE001 - a job that already ended cannot be cancelled
        _LOG.info("cancel: %s", type(err).__name__)


def main(argv: list[str]) -> int:
    """The streaming job; a bounded command line goes to the Kafka range backfill."""
    if cmdline.wants_help(argv):
        cmdline.help_parser("python -m beam_cxone [run]", DESCRIPTION).print_help()
        return 0
    if cmdline.is_bounded(cmdline.parse_pipeline_args(argv)):
        from beam_cxone.commands import backfill

        return backfill.kafka_range(argv, prog=PROG)
    try:
        options = cmdline.pipeline_options(argv, streaming=True)
        settings = opts.job_settings(options)
        watch = monitor_settings(options)
    except RunnerSetupError as err:
        return fail(PROG, str(err))
    except opts.OptionsError as err:
        return common.invalid_options(PROG, str(err))
    refused = common.check_before_submitting(PROG, options, settings)
    if refused is not None:
        return refused
    kafka = settings.kafka
    run_seconds = options.view_as(opts.JobOptions).run_seconds
    if run_seconds > 0:
        # The read drains this long after its own first call: neither the checks (CXone's retries
        # can take a minute) nor the runner's start-up count.
        kafka = dataclasses.replace(kafka, drain=Drain(after_ms=int(run_seconds * 1000)))
    _LOG.info("streaming %s from %s to %s (%s)", kafka.topic, kafka.bootstrap_servers,
              settings.sink.kind, options.get_all_options()["runner"])
    p = beam.Pipeline(options=options)
    try:
        build_streaming(p, kafka, settings.analytics, settings.sink, settings.dead_letter_topic)
    except ValueError as err:  # e.g. the topic does not exist: nothing was submitted
        return fail(PROG, str(err))
    try:  # status line, stall warning, metrics endpoint: the port is bound before submitting
        # The monitor's "(draining)": the read's drain comes at the earliest this long from now.
        drain_from = int((time.time() + run_seconds) * 1000) if run_seconds > 0 else None
        monitor = JobMonitor.for_job(watch, kafka, drain_from).start()
    except MonitorError as err:
        return fail(PROG, str(err))
    try:
        result = p.run()
        monitor.attach(result)
        _wait(result, run_seconds)
    finally:
        monitor.close()
    _LOG.info("job state: %s", result.state)
    common.print_metrics(result)
    return 0

