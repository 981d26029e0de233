"""`python -m beam_cxone backfill`: re-computes history in batch with the streaming job's composites.

  backfill --input='data/*.jsonl.gz' --sink=cassandra|jsonl [--output_dir=DIR]
  backfill --start_timestamp=... --stop_timestamp=...    (a Kafka time range, bounded read)

Idempotent: the rows are full-key upserts of deterministic values, so a rerun, or a backfill over a range
the streaming job already covered, leaves the same rows.
"""

from __future__ import annotations

import argparse
import logging

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone import options as opts
from beam_cxone.pipelines.jobs import SinkConfig
from beam_cxone.runners.profiles import RunnerSetupError
from beam_cxone.runners.profiles import runner_args

__all__ = ["run_backfill_command"]

_LOG = logging.getLogger(__name__)


def _own_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m beam_cxone backfill", add_help=False)
    parser.add_argument("--input", default=None, help="File glob of JSON Lines (.gz too).")
    return parser.parse_known_args(argv)


def run_backfill_command(argv: list[str], build_backfill) -> int:
    own, rest = _own_args(argv)
    try:
        args = runner_args(rest, streaming=False)
    except RunnerSetupError as err:
        print(f"beam_cxone: {err}")
        return 2
    options = PipelineOptions(args)
    try:
        analytics = opts.analytics_config(options)
        job = options.view_as(opts.JobOptions)
        cassandra = opts.cassandra_config(options) if job.sink == "cassandra" else None
        sink = SinkConfig(kind=job.sink, cassandra=cassandra, output_dir=job.output_dir)
        kafka = None if own.input else opts.kafka_config(options, bounded=True)
    except (opts.OptionsError, ValueError) as err:
        print(f"beam_cxone: invalid options:\n  {err}")
        return 2
    p = beam.Pipeline(options=options)
    build_backfill(p, analytics, sink, input_pattern=own.input, kafka=kafka)
    result = p.run()
    result.wait_until_finish()
    _LOG.info("backfill finished: %s", result.state)
    return 0
