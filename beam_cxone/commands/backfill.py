"""`python -m beam_cxone backfill`: re-computes history in batch with the streaming job's composites.

  backfill --template templates/files_to_cassandra.yaml --param input='archive/*.jsonl.gz'
  backfill --template kafka_range_to_cassandra --param start=2026-11-30T08:00:00Z \\
           --param stop=2026-11-30T09:00:00Z --param topic=cxone-data-actions
  backfill --list-templates [--templates_dir=DIR]
  backfill --input='data/*.jsonl.gz' --sink=cassandra|jsonl [--output_dir=DIR]      (no template)
  backfill --start_timestamp=... --stop_timestamp=... --topic=...                   (a Kafka range)

`run --bounded` and `run --stop_timestamp=...` are the same Kafka range backfill (`kafka_range`):
one implementation, two spellings.

A template (`beam_cxone.templates`) only resolves its parameters into the plain command line above,
so both take one path: the same options validation (`cmdline.pipeline_options`), all problems
reported at once, before anything runs; then the configs (`options.job_settings`, as the streaming
job), then the connections (`preflight`), then the inputs (files and their checkpoint, or the
offsets of the Kafka range), then the run.

Kafka range: start and stop timestamps become per-partition offsets (`offsets_for_times`: the first
record at or after each), read in the Kafka read's bounded mode; without a start, from
`--start_position` (earliest by default); without a stop, up to the end offsets seen at start. A
backfill never commits offsets to a consumer group unless `--group_id` is given: the streaming job's
group must not move.

Runners: the FnApiRunner on every core by default; `--runner=FlinkRunner` (batch) needs Beam's Flink
job-server jar (`beam_cxone.runners.profiles`). Progress, totals and the checkpoint of a file backfill
are `beam_cxone.backfill`'s.
"""

from __future__ import annotations

import argparse
import logging
import sys

import apache_beam as beam
from kafka.errors import KafkaError

from beam_cxone import backfill as lib
from beam_cxone import options as opts
from beam_cxone import templates
from beam_cxone.commands import cmdline
from beam_cxone.commands import common
from beam_cxone.console import fail
from beam_cxone.console import held_logs
from beam_cxone.pipelines.file_backfill import FileBackfillPlan
from beam_cxone.pipelines.jobs import build_backfill
from beam_cxone.runners.profiles import RunnerSetupError

__all__ = ["DESCRIPTION", "PROG", "kafka_range", "main"]

_LOG = logging.getLogger(__name__)
PROG = "beam_cxone backfill"
DESCRIPTION = (
    "Batch re-computation of the four tables from JSON Lines files (--input) or a Kafka time range "
    "(--start_timestamp, --stop_timestamp), with the streaming job's composites; from a template "
    "(--template, --param) or plain options. `run --bounded` is the same Kafka range backfill."
)
_RANGE_OPTIONS = ("start_timestamp", "stop_timestamp")


def main(argv: list[str]) -> int:
    """Parses, validates everything, then runs one backfill in this process; the exit code."""
    if cmdline.wants_help(argv):
        cmdline.help_parser("python -m beam_cxone backfill", DESCRIPTION,
                            own=cmdline.backfill_parser(), streaming=False).print_help()
        return 0
    own, rest = cmdline.backfill_args(argv)
    directory = own.templates_dir or str(templates.default_templates_dir())
    if own.list_templates:
        return _list_templates(directory)
    usage = ""
    if own.template:
        try:
            args, usage = _resolve_template(own, rest, directory)
        except templates.TemplateError as err:
            return fail(PROG, str(err))
        resolved, rest = cmdline.backfill_args(args)
        own.input = resolved.input
    elif own.param:
        return fail(PROG, "--param needs --template (see --list-templates)")
    return _run(own.input, rest, prog=PROG, usage=usage, progress=not own.no_progress,
                fresh=own.fresh, checkpoint_dir=own.checkpoint_dir)


def kafka_range(argv: list[str], *, prog: str = PROG) -> int:
    """A bounded Kafka read of a pipeline command line (`run --bounded`, `run --stop_timestamp`)."""
    return _run(None, argv, prog=prog, usage="", progress=True)


def _list_templates(directory: str) -> int:
    found, problems = templates.load_templates(directory)
    if found:
        print(templates.format_listing(found))
    elif not problems:
        print(f"no templates in {directory}")
    for problem in problems:
        print(f"{PROG}: invalid template: {problem}", file=sys.stderr)
    return 2 if problems else 0


def _resolve_template(own: argparse.Namespace, rest: list[str], directory: str) -> tuple[list[str], str]:
    """The template's command line plus the caller's other options, and its usage for errors."""
    template = templates.find_template(own.template, directory)
    try:
        values = templates.parse_param_args(own.param)
    except templates.TemplateError as err:
        raise templates.TemplateError(f"{err}\n{template.usage()}") from None
    resolved = template.resolve(values)
    fixed = set(cmdline.option_names(resolved))
    clashes = sorted(fixed.intersection(cmdline.option_names(rest) + (["input"] if own.input else [])))
    if clashes:
        raise templates.TemplateError(
            f"template {template.name} sets {', '.join('--' + c for c in clashes)} itself; give its "
            f"parameters with --param\n{template.usage()}"
        )
    return resolved + rest, template.usage()


def _with_backfill_defaults(args: list[str]) -> list[str]:
    """A range start means start there; no consumer group unless one is asked for."""
    names = cmdline.option_names(args)
    out = list(args)
    if "start_timestamp" in names and "start_position" not in names:
        out.append("--start_position=timestamp")
    if "group_id" not in names:
        out.append("--group_id=")  # empty = none: never move the streaming job's committed offsets
    return out


def _run(input_pattern: str | None, rest: list[str], *, prog: str, usage: str, progress: bool,
         fresh: bool = False, checkpoint_dir: str | None = None) -> int:
    """Validates the options, the configs and the connections, then runs (`_execute`)."""
    args = _with_backfill_defaults(rest)
    try:
        options = cmdline.pipeline_options(args, streaming=False)
    except RunnerSetupError as err:
        return fail(prog, str(err))
    except opts.OptionsError as err:
        return common.invalid_options(prog, str(err), usage)
    errors: list[str] = []
    settings = None
    try:
        settings = opts.job_settings(options, kafka=not input_pattern, bounded=True)
    except opts.OptionsError as err:
        errors += str(err).splitlines()
    given_range = [o for o in _RANGE_OPTIONS if o in cmdline.option_names(args)]
    if input_pattern and given_range:
        errors.append(f"--input reads files; {', '.join('--' + o for o in given_range)} belong to "
                      "a Kafka range backfill: give one or the other")
    elif settings is not None and settings.kafka is not None:
        start, stop = settings.kafka.start_timestamp_ms, settings.kafka.stop_timestamp_ms
        if start is not None and stop is not None and start >= stop:
            errors.append("--stop_timestamp must be after --start_timestamp")
    if errors:
        return common.invalid_options(prog, errors, usage)
    refused = common.check_before_submitting(prog, options, settings)
    if refused is not None:
        return refused
    return _execute(options, settings, input_pattern, prog=prog, usage=usage, progress=progress,
                    fresh=fresh, checkpoint_dir=checkpoint_dir)


def _execute(options, settings: opts.JobSettings, input_pattern: str | None, *, prog: str,
             usage: str, progress: bool, fresh: bool, checkpoint_dir: str | None) -> int:
    """Looks at the inputs (the files and their checkpoint, or the range's offsets), then builds and
    runs the backfill in this process with a progress meter."""
    sink, analytics = settings.sink, settings.analytics
    file_run = None
    total = None
    try:
        if input_pattern:
            file_run = lib.plan_file_run(input_pattern, analytics, sink,
                                         lib.checkpoint_dir_for(sink, checkpoint_dir), fresh)
        else:
            with held_logs("kafka"):  # a client that cannot connect: the one line below, no log storm
                ranges = lib.kafka_range_records(settings.kafka)
            total = sum(stop - start for start, stop in ranges.values())
            _LOG.info("backfill range of %s: offsets %s, %d records", settings.kafka.topic,
                      {p: list(r) for p, r in ranges.items()}, total)
    except (ValueError, OSError) as err:  # no file matches, the topic does not exist
        return common.invalid_options(prog, [str(err)], usage)
    except KafkaError as err:  # the brokers cannot be reached: the offsets are needed now
        return fail(prog, f"cannot read the offsets of {settings.kafka.topic} from "
                          f"{settings.kafka.bootstrap_servers}: {type(err).__name__}: "
                          f"{' '.join(str(err).split())[:300]}")
    runner = options.get_all_options()["runner"]
    _LOG.info("backfill from %s to %s on %s",
              input_pattern or f"Kafka {settings.kafka.topic}", sink.kind, runner)
    if file_run is not None:
        done = file_run.checkpoint.done(file_run.run)
        if done is not None:
            print(f"backfill: nothing to do: this backfill ({len(file_run.files)} file(s) into "
                  f"{sink.kind}) finished at {done.get('finished_at', '?')} "
                  f"({file_run.checkpoint.done_path(file_run.run)}); --fresh runs it again",
                  file=sys.stderr)
            return 0
        saved = file_run.saved()
        print(f"backfill: checkpoint {file_run.checkpoint.directory}: {len(saved)} of "
              f"{len(file_run.files)} file(s) already parsed" + (", resuming" if saved else ""),
              file=sys.stderr)
        total = lib.count_records(file_run) if progress else None
    meter = lib.BackfillProgress(total, enabled=progress)
    p = beam.Pipeline(options=options)
    if file_run is not None:
        plan = FileBackfillPlan(tuple(file_run.files), str(file_run.checkpoint.directory),
                                meter.board)
        results = build_backfill(p, analytics, sink, plan=plan,
                                 dead_letter_topic=settings.dead_letter_topic)
    else:
        results = build_backfill(p, analytics, sink, kafka=settings.kafka,
                                 dead_letter_topic=settings.dead_letter_topic)
    meter.attach(p, results, read_counted=file_run is not None)
    with meter:
        result = p.run()
        result.wait_until_finish()
    read = max(meter.read, lib.records_read_metric(result))
    rate = read / meter.elapsed_s if meter.elapsed_s else 0.0
    if meter.read or not read:
        rows = f", {meter.rows:,} rows to {sink.kind}"
    else:
        rows = f" to {sink.kind} (no live counts: the workers ran elsewhere)"
    print(f"backfill {str(result.state).lower()}: {read:,} records read in "
          f"{meter.elapsed_s:.1f} s ({rate:,.0f} records/s){rows}", file=sys.stderr)
    common.print_metrics(result)
    if file_run is not None and str(result.state).upper().endswith("DONE"):
        lib.finish_file_run(file_run, sink, read, meter)
    return 0
