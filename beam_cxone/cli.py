"""Command line: `python -m beam_cxone [run] ...` (the streaming job) and its helper commands.

  python -m beam_cxone --bootstrap_servers=127.0.0.1:9092 --topic=cxone-data-actions   # Prism, streaming
  python -m beam_cxone --runner=FlinkRunner --flink_master=HOST:8081 ...                # Flink cluster
  python -m beam_cxone --bounded --runner=BundleBasedDirectRunner ...                   # stop at end offsets
  python -m beam_cxone schema | generate | backfill | validate | report ...

Options are Beam `PipelineOptions` (see `beam_cxone.options`); `--help` on each command lists them.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone import options as opts
from beam_cxone.console import held_logs
from beam_cxone.io.kafka.config import Drain
from beam_cxone.io.cassandra_schema import create_schema
from beam_cxone.metrics_report import format_metrics
from beam_cxone.monitoring import JobMonitor
from beam_cxone.monitoring import MonitorError
from beam_cxone.monitoring import monitor_settings
from beam_cxone.pipelines.jobs import SinkConfig
from beam_cxone.pipelines.jobs import build_backfill
from beam_cxone.pipelines.jobs import build_streaming
from beam_cxone.preflight import backfill_targets
from beam_cxone.preflight import preflight_message
from beam_cxone.redact import install as install_log_redaction
from beam_cxone.runners.profiles import RunnerSetupError
from beam_cxone.runners.profiles import runner_args

__all__ = ["main"]

_LOG = logging.getLogger("beam_cxone")
COMMANDS = ("run", "schema", "generate", "backfill", "validate", "report")


def _configure_logging(level: str) -> None:
    # Beam's import already gave the root logger a stderr handler at WARNING, which makes basicConfig a
    # no-op: set the level on the root logger itself, and the format on its handlers.
    install_log_redaction()  # no known secret in any record, whoever logs it (beam_cxone.redact)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    root.setLevel(getattr(logging, level, logging.INFO))
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Beam and the drivers are chatty at INFO; their warnings still show.
    for noisy in ("apache_beam", "cassandra", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _log_level(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg.startswith("--log_level="):
            return arg.split("=", 1)[1]
        if arg == "--log_level" and i + 1 < len(argv):
            return argv[i + 1]
    return "INFO"


def _fail(message: str) -> int:
    print(f"beam_cxone: {message}", file=sys.stderr)
    return 2


DRAIN_GRACE_S = 120  # after the drain starts: time for the last windows and timers to fire


def _wait(result, run_seconds: float) -> None:
    """Waits for the job. With `run_seconds`, the read drains at that time (every window and timer
    fires, the job finishes by itself); a job still running after the grace period is cancelled."""
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


def _is_bounded(argv: list[str]) -> bool:
    return any(a == "--bounded" or a.startswith("--stop_timestamp") for a in argv)


def run_streaming(argv: list[str]) -> int:
    """The job: Kafka -> analytics -> Cassandra. Unbounded on Prism by default; with --bounded (stop at
    the end offsets seen at start, or --stop_timestamp) the batch graph on the DirectRunner family."""
    bounded = _is_bounded(argv)
    try:
        args = runner_args(argv, streaming=not bounded)
    except RunnerSetupError as err:
        return _fail(str(err))
    options = PipelineOptions(args)
    job = options.view_as(opts.JobOptions)
    try:
        kafka, analytics, cassandra = opts.job_configs(options, cassandra=job.sink == "cassandra")
        sink = SinkConfig(kind=job.sink, cassandra=cassandra, output_dir=job.output_dir)
        dead_letter_topic = opts.dead_letter_topic_config(options)
        watch = monitor_settings(options)
    except (opts.OptionsError, ValueError) as err:
        return _fail(f"invalid options:\n  {err}")
    if _cxone_validation_failed(options):
        return 2
    failed = preflight_message(kafka_bootstrap=kafka.bootstrap_servers, cassandra=sink.cassandra)
    if failed:  # a wrong password, CA or protocol: one line, before anything is submitted
        return _fail(failed)
    if job.run_seconds > 0 and not bounded:
        # The read drains this long after its own first call: neither the checks (CXone's retries
        # can take a minute) nor the runner's start-up count.
        kafka = dataclasses.replace(kafka, drain=Drain(after_ms=int(job.run_seconds * 1000)))
    _LOG.info("%s %s from %s to %s (%s)", "reading" if bounded else "streaming", kafka.topic,
              kafka.bootstrap_servers, sink.kind, options.get_all_options()["runner"])
    p = beam.Pipeline(options=options)
    try:
        if bounded:
            build_backfill(p, analytics, sink, kafka=kafka, dead_letter_topic=dead_letter_topic)
        else:
            build_streaming(p, kafka, analytics, sink, dead_letter_topic)
    except ValueError as err:  # e.g. the topic does not exist: nothing was submitted
        return _fail(str(err))
    monitor = None
    if not bounded:  # status line, stall warning, metrics endpoint: the port is bound before submitting
        try:
            # The monitor's "(draining)": the read's drain comes at the earliest this long from now.
            drain_from = int((time.time() + job.run_seconds) * 1000) if kafka.drain else None
            monitor = JobMonitor.for_job(watch, kafka, drain_from).start()
        except MonitorError as err:
            return _fail(str(err))
    try:
        result = p.run()
        if monitor is not None:
            monitor.attach(result)
        _wait(result, job.run_seconds)
    finally:
        if monitor is not None:
            monitor.close()
    _LOG.info("job state: %s", result.state)
    print(format_metrics(result), file=sys.stderr)
    return 0


def _cxone_validation_failed(options: PipelineOptions) -> bool:
    """Runs the CXone start-up validation when --cxone_validate is set; True when it failed."""
    from beam_cxone.cxone.errors import CxoneError
    from beam_cxone.cxone.validation import validate_if_requested

    try:
        validate_if_requested(options)
    except CxoneError as err:
        _fail(f"CXone validation failed: {err.reason}")
        return True
    return False


def run_schema(argv: list[str]) -> int:
    """Creates the keyspace and the four tables; running it twice changes nothing."""
    options = PipelineOptions(argv)
    try:
        cfg = opts.cassandra_config(options)
    except opts.OptionsError as err:
        return _fail(str(err))
    try:
        with held_logs("cassandra"):  # a failed connect is the one line below, not a traceback
            statements = create_schema(cfg)
    except Exception as err:  # noqa: BLE001 - any driver or schema error ends the command with its name
        return _fail(f"cannot create the schema in {cfg.keyspace} on {','.join(cfg.hosts)}:{cfg.port}: "
                     f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
    for statement in statements:
        _LOG.info("schema: %s", statement.split("(")[0].strip())
    print(f"schema ready in keyspace {cfg.keyspace}")
    return 0


def run_backfill(argv: list[str]) -> int:
    """Batch over files (--input) or a Kafka time range, with the streaming job's composites."""
    from beam_cxone.backfill import run_backfill_command

    failed = preflight_message(**backfill_targets(argv))
    if failed:
        return _fail(failed)
    return run_backfill_command(argv, build_backfill)


def run_generate(argv: list[str]) -> int:
    from beam_cxone.publish import run_generate_command

    return run_generate_command(argv)


def run_validate(argv: list[str]) -> int:
    from beam_cxone.cxone.cli import run_validate as validate

    return validate(argv)


def run_report(argv: list[str]) -> int:
    from beam_cxone.report import run_report_command

    return run_report_command(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "run"
    if argv and argv[0] in COMMANDS:
        command, argv = argv[0], argv[1:]
    elif argv and not argv[0].startswith("-"):
        parser = argparse.ArgumentParser(prog="python -m beam_cxone")
        parser.add_argument("command", choices=COMMANDS)
        parser.parse_args(argv[:1])
    _configure_logging(_log_level(argv))
    handlers = {
        "run": run_streaming,
        "schema": run_schema,
        "generate": run_generate,
        "backfill": run_backfill,
        "validate": run_validate,
        "report": run_report,
    }
    return handlers[command](argv)
