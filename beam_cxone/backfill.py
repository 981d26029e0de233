"""`python -m beam_cxone backfill`: re-computes history in batch with the streaming job's composites.

  backfill --template templates/files_to_cassandra.yaml --param input='archive/*.jsonl.gz'
  backfill --template kafka_range_to_cassandra --param start=2026-11-30T08:00:00Z \
           --param stop=2026-11-30T09:00:00Z --param topic=cxone-data-actions
  backfill --list-templates [--templates_dir=DIR]
  backfill --input='data/*.jsonl.gz' --sink=cassandra|jsonl [--output_dir=DIR]      (no template)
  backfill --start_timestamp=... --stop_timestamp=... --topic=...                   (a Kafka range)

A template (`beam_cxone.templates`) only resolves its parameters into the plain command line above,
so both take one path: the same options validation, all problems reported at once, before anything
runs (unknown options included: Beam would silently drop them).

Kafka range: start and stop timestamps become per-partition offsets (`offsets_for_times`: the first
record at or after each), read in the Kafka read's bounded mode. A backfill never commits offsets to
a consumer group unless `--group_id` is given: the streaming job's group must not move.

Runners: the FnApiRunner by default (the fastest of the DirectRunner family that runs the splittable
Kafka read; the BundleBasedDirectRunner cannot, see docs/STACK.md). `--runner=FlinkRunner` (batch: no
`--streaming`) needs Beam's Flink job-server jar (`beam_cxone.runners.profiles` says where it is
looked for and fails with that message when it is missing).

Progress goes to stderr while the pipeline runs in this process: records read (of the total, counted
up front: non-blank lines of the input files, or the offsets of the Kafka range), rate, elapsed and
remaining time, and the result rows produced so far. A separately labelled counting branch on the
read's output feeds it; it changes no result.

Idempotent: the rows are full-key upserts of deterministic values, so a rerun, or a backfill over a
range the streaming job already covered, leaves the same rows (only the wall-clock stamps
`updated_at` of a volume and `detected_at` of an alert are new).

Resumable (files): each input file's parse is saved in a checkpoint directory once it is complete
(`beam_cxone.io.checkpoint`); a rerun of the same command parses only the files not saved yet, then
computes every table from all the saved parses (`--resume`, the default). A finished run leaves a done
marker, and the same command then has nothing left to do; `--fresh` forgets the checkpoint first.
The checkpoint is `--checkpoint_dir`, by default `<output_dir>/_checkpoint` for JSON Lines and
`<cache>/backfill-checkpoints/<keyspace>` for Cassandra. A finished run deletes its saved parses.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import PipelineVisitor
from tqdm import tqdm

from beam_cxone import options as opts
from beam_cxone import templates
from beam_cxone.io.checkpoint import Checkpoint
from beam_cxone.io.checkpoint import InputFile
from beam_cxone.io.checkpoint import ParsedFile
from beam_cxone.io.checkpoint import run_key
from beam_cxone.io.kafka import KafkaReadConfig
from beam_cxone.metrics_report import format_metrics
from beam_cxone.pipelines.file_backfill import READ_SLOT
from beam_cxone.pipelines.file_backfill import FileBackfillPlan
from beam_cxone.pipelines.file_backfill import list_input_files
from beam_cxone.pipelines.jobs import SinkConfig
from beam_cxone.progress_board import BoardCounter
from beam_cxone.progress_board import read_board
from beam_cxone.runners.profiles import RunnerSetupError
from beam_cxone.runners.profiles import cache_dir
from beam_cxone.runners.profiles import runner_args

__all__ = [
    "BackfillProgress",
    "checkpoint_dir_for",
    "count_input_records",
    "kafka_range_records",
    "option_errors",
    "run_backfill_command",
]

_LOG = logging.getLogger(__name__)
# Labels of the sources in `build_backfill`: the progress branch hangs off their output.
_READ_LABELS = ("ReadFiles", "ReadKafkaRange")
# Namespaces of their `records_read` counters (beam_cxone.io.files, beam_cxone.io.kafka.read).
_READ_METRIC_NAMESPACES = ("files", "kafka_read")
# Elements a counting DoFn collects before publishing them: keeps the lock off the per-record path.
_COUNT_BATCH = 256
ROWS_SLOT = "rows"  # progress board slot of result rows (beam_cxone.progress_board)
_SLOTS = (READ_SLOT, ROWS_SLOT)


def _own_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m beam_cxone backfill",
        allow_abbrev=False,
        description="Batch re-computation of the result tables from files or a Kafka time range. "
        "Other options are the pipeline's (python -m beam_cxone --help).",
    )
    parser.add_argument("--input", default=None, help="File glob of JSON Lines (.gz too).")
    parser.add_argument(
        "--template",
        default=None,
        help="A backfill template: templates/NAME.yaml or NAME (in --templates_dir).",
    )
    parser.add_argument(
        "--param",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="A template parameter; repeat it or list several.",
    )
    parser.add_argument(
        "--list-templates",
        "--list_templates",
        dest="list_templates",
        action="store_true",
        help="Print every template with its parameters.",
    )
    parser.add_argument(
        "--templates_dir",
        default=None,
        help="Where templates are looked up. Default: templates/ of the repository.",
    )
    parser.add_argument("--no_progress", action="store_true", help="No progress output on stderr.")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        dest="fresh",
        action="store_false",
        help="Files: reuse the parses a stopped run saved, parse only the rest (the default); a "
        "finished run is not done again.",
    )
    resume.add_argument(
        "--fresh",
        dest="fresh",
        action="store_true",
        help="Files: forget the checkpoint (saved parses, done markers) and start over.",
    )
    parser.set_defaults(fresh=False)
    parser.add_argument(
        "--checkpoint_dir",
        default=None,
        help="Files: where parses are saved for a resume. Default: OUTPUT_DIR/_checkpoint (jsonl), "
        "<cache>/backfill-checkpoints/KEYSPACE (cassandra). Every worker must see it.",
    )
    return parser.parse_known_args(argv)


def _fail(message: str) -> int:
    print(f"beam_cxone backfill: {message}", file=sys.stderr)
    return 2


def _option_names(args: list[str]) -> list[str]:
    return [a[2:].split("=", 1)[0] for a in args if a.startswith("--")]


def _option_groups(args: list[str]) -> list[list[str]]:
    """`--name=value`, `--name value` and `--flag` groups of a command line."""
    groups: list[list[str]] = []
    for arg in args:
        if arg.startswith("--") or not groups:
            groups.append([arg])
        else:
            groups[-1].append(arg)
    return groups


def option_errors(args: list[str]) -> list[str]:
    """Every unknown option and every invalid value of a pipeline command line (Beam's own parse
    drops unknown options with a warning and exits on the first invalid value)."""
    parsers = []

    def capture(parser: argparse.ArgumentParser) -> None:
        parser.exit_on_error = False  # raise ArgumentError instead of exiting
        parsers.append(parser)

    try:
        PipelineOptions([]).get_all_options(add_extra_args_fn=capture)
    except argparse.ArgumentError as err:  # pragma: no cover - no flags were given
        return [str(err)]
    parser = parsers[0]
    errors = []
    for group in _option_groups(args):
        try:
            _, unknown = parser.parse_known_args(group)
        except argparse.ArgumentError as err:
            errors.append(str(err))
            continue
        if unknown:
            errors.append(f"unknown option {' '.join(group)}")
    return errors


def _with_backfill_defaults(args: list[str]) -> list[str]:
    """A range start means start there; no consumer group unless one is asked for."""
    names = _option_names(args)
    out = list(args)
    if "start_timestamp" in names and "start_position" not in names:
        out.append("--start_position=timestamp")
    if "group_id" not in names:
        out.append("--group_id=")  # empty = none: never move the streaming job's committed offsets
    return out


# ----- totals, counted before the run -------------------------------------------------------------


def _non_blank_lines(handle) -> int:
    count, tail = 0, b""
    while chunk := handle.read(1 << 20):
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        count += sum(1 for line in lines if line.strip())
    return count + (1 if tail.strip() else 0)


def count_input_records(pattern: str, *, count_lines: bool = True) -> tuple[int, int | None]:
    """(files, records) a file glob holds: records are non-blank lines, as the file source reads
    them (one pass over the files; None without `count_lines`). ValueError when the glob matches
    no file."""
    matched = FileSystems.match([pattern])[0].metadata_list
    if not matched:
        raise ValueError(f"--input {pattern!r} matches no file")
    if not count_lines:
        return len(matched), None
    records = 0
    for meta in matched:
        with FileSystems.open(meta.path, compression_type=CompressionTypes.AUTO) as handle:
            records += _non_blank_lines(handle)
    return len(matched), records


def kafka_range_records(cfg: KafkaReadConfig) -> dict[int, tuple[int, int]]:
    """Per partition, the [start, stop) offsets a bounded read of cfg covers (records, control
    records included). ValueError when the topic does not exist."""
    # The read's own restriction provider: the very offsets the pipeline will read.
    from beam_cxone.io.kafka import PartitionOffsets
    from beam_cxone.io.kafka import partitions_of

    offsets = PartitionOffsets(cfg)
    ranges = {}
    for partition in partitions_of(cfg):
        r = offsets.initial_restriction(partition)
        ranges[partition.partition] = (r.start, r.stop)
    return ranges


# ----- progress -----------------------------------------------------------------------------------

# Counts of the runs in this process, by run token: [records read, result rows produced].
_COUNTS: dict[str, list[int]] = {}
_COUNTS_LOCK = threading.Lock()


class _CountElements(beam.DoFn):
    """Counts elements into this process's progress registry; emits nothing.

    A side branch, no part of any result. Slot 0 counts records read, slot 1 result rows. On a
    runner whose workers are other processes, the token is unknown there and nothing is counted.
    """

    def __init__(self, token: str, slot: int, board: str | None = None):
        self._token = token
        self._slot = slot
        self._board = board

    def setup(self) -> None:
        self._counter: BoardCounter | None = None
        with _COUNTS_LOCK:
            here = self._token in _COUNTS
        if not here:  # a worker process: count on the launcher's board instead
            self._counter = BoardCounter(self._board, _SLOTS[self._slot])

    def start_bundle(self) -> None:
        self._pending = 0

    def process(self, element: Any) -> None:
        self._pending += 1
        if self._pending >= _COUNT_BATCH:
            self._publish()

    def finish_bundle(self) -> None:
        self._publish()
        if self._counter is not None:
            self._counter.flush()

    def _publish(self) -> None:
        if self._counter is not None:
            self._counter.add(self._pending)
        else:
            with _COUNTS_LOCK:
                counts = _COUNTS.get(self._token)
                if counts is not None:
                    counts[self._slot] += self._pending
        self._pending = 0


class _LineWriter:
    """A file for tqdm when stderr is not a terminal: each refresh becomes one line (no `\\r`)."""

    def __init__(self, stream):
        self._stream = stream
        self._last = ""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text and text != self._last:
            self._stream.write(text + "\n")
            self._last = text

    def flush(self) -> None:
        self._stream.flush()


class BackfillProgress:
    """A tqdm bar of records read (of `total` when known) with rate, elapsed and remaining time,
    and the result rows produced so far; refreshed from a ticker thread, since the in-process
    runner blocks the main thread for the whole run.

    Use: `progress.attach(pipeline, results)` after building, then `with progress: p.run()`.
    """

    def __init__(
        self,
        total: int | None,
        *,
        stream=None,
        enabled: bool = True,
        interval_s: float | None = None,
    ):
        self.token = uuid.uuid4().hex
        self.total = total
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        tty = hasattr(self._stream, "isatty") and self._stream.isatty()
        self._interval_s = interval_s if interval_s is not None else (0.5 if tty else 5.0)
        self._file = self._stream if tty else _LineWriter(self._stream)
        self._stop = threading.Event()
        self._bar: tqdm | None = None
        self._thread: threading.Thread | None = None
        self.started = 0.0
        self.elapsed_s = 0.0
        self.read = self.rows = 0  # the final counts, once the run has ended
        # Counts from worker processes (beam_cxone.progress_board); removed when the run ends.
        self.board: str | None = tempfile.mkdtemp(prefix="beam-cxone-progress-")

    def attach(self, pipeline: beam.Pipeline, results, *, read_counted: bool = False) -> None:
        """Adds the counting branches: on the source's output (unless the source counts on the
        board itself: `read_counted`), and on each table's rows."""
        if not read_counted:
            read = _find_outputs(pipeline, _READ_LABELS)
            if read is None:
                _LOG.warning(
                    "progress: no %s step in the pipeline; records are not counted",
                    " or ".join(_READ_LABELS),
                )
            else:
                read | "ProgressRecordsRead" >> beam.ParDo(
                    _CountElements(self.token, 0, self.board))
        for table, rows in results.by_table().items():
            rows | f"ProgressRows_{table.name}" >> beam.ParDo(
                _CountElements(self.token, 1, self.board))

    def counts(self) -> tuple[int, int]:
        with _COUNTS_LOCK:
            read, rows = _COUNTS.get(self.token, (0, 0))
        return read + read_board(self.board, READ_SLOT), rows + read_board(self.board, ROWS_SLOT)

    def __enter__(self) -> BackfillProgress:
        with _COUNTS_LOCK:
            _COUNTS[self.token] = [0, 0]
        self.started = time.monotonic()
        if self._enabled:
            self._bar = tqdm(
                total=self.total,
                desc="backfill",
                unit=" records",
                file=self._file,
                mininterval=0,
                dynamic_ncols=True,
                smoothing=0.3,
            )
            self._thread = threading.Thread(
                target=self._tick, name="backfill-progress", daemon=True
            )
            self._thread.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._refresh()

    def _refresh(self, display: bool = True) -> None:
        read, rows = self.counts()
        bar = self._bar
        bar.set_postfix_str(f"rows out {rows:,}", refresh=False)
        bar.update(read - bar.n)
        if display:
            bar.refresh()

    def __exit__(self, *exc) -> None:
        self.elapsed_s = time.monotonic() - self.started
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._refresh(display=False)
            self._bar.close()  # displays the final state
        read, rows = self.counts()
        with _COUNTS_LOCK:
            _COUNTS.pop(self.token, None)
        self.read, self.rows = read, rows
        if self.board is not None:
            shutil.rmtree(self.board, ignore_errors=True)
            self.board = None


def _records_read_metric(result) -> int:
    """The sources' own `records_read` counters (any runner that reports metrics), else 0."""
    try:
        found = result.metrics().query(MetricsFilter().with_name("records_read"))["counters"]
    except Exception:  # noqa: BLE001 - metrics are optional on some runners
        return 0
    return sum(
        (c.committed or c.attempted or 0)
        for c in found
        if c.key.metric.namespace in _READ_METRIC_NAMESPACES
    )


def _find_outputs(pipeline: beam.Pipeline, labels: tuple[str, ...]) -> beam.PCollection | None:
    """The main output of the first top-level transform with one of these labels."""

    class Finder(PipelineVisitor):
        found = None

        def enter_composite_transform(self, node) -> None:
            if self.found is None and node.full_label in labels:
                self.found = node.outputs.get(None)

        def visit_transform(self, node) -> None:
            self.enter_composite_transform(node)

    finder = Finder()
    pipeline.visit(finder)
    return finder.found


# ----- the command --------------------------------------------------------------------------------


def _list_templates(directory: str) -> int:
    found, problems = templates.load_templates(directory)
    if found:
        print(templates.format_listing(found))
    elif not problems:
        print(f"no templates in {directory}")
    for problem in problems:
        print(f"beam_cxone backfill: invalid template: {problem}", file=sys.stderr)
    return 2 if problems else 0


def _resolve_template(own: argparse.Namespace, rest: list[str]) -> tuple[list[str], str]:
    """The template's command line plus the caller's other options, and its usage for errors."""
    directory = own.templates_dir or str(templates.default_templates_dir())
    template = templates.find_template(own.template, directory)
    try:
        values = templates.parse_param_args(own.param)
    except templates.TemplateError as err:
        raise templates.TemplateError(f"{err}\n{template.usage()}") from None
    resolved = template.resolve(values)
    fixed = set(_option_names(resolved))
    clashes = sorted(fixed.intersection(_option_names(rest) + (["input"] if own.input else [])))
    if clashes:
        raise templates.TemplateError(
            f"template {template.name} sets {', '.join('--' + c for c in clashes)} itself; give its "
            f"parameters with --param\n{template.usage()}"
        )
    return resolved + rest, template.usage()


def run_backfill_command(argv: list[str], build_backfill: Callable[..., Any]) -> int:
    """Parses, validates everything, then runs one backfill in this process; the exit code."""
    own, rest = _own_args(argv)
    if own.list_templates:
        return _list_templates(own.templates_dir or str(templates.default_templates_dir()))
    usage = ""
    if own.template:
        try:
            args, usage = _resolve_template(own, rest)
        except templates.TemplateError as err:
            return _fail(str(err))
        own_resolved, rest = _own_args(args)
        own.input = own_resolved.input
    elif own.param:
        return _fail("--param needs --template (see --list-templates)")
    return _run(own.input, rest, build_backfill, usage=usage, progress=not own.no_progress,
                fresh=own.fresh, checkpoint_dir=own.checkpoint_dir)


def checkpoint_dir_for(sink: SinkConfig, given: str | None = None) -> str:
    """Where a file backfill into `sink` saves its parses: `given`, else next to the JSON Lines
    output, else per Cassandra keyspace in the local cache."""
    if given:
        return given
    if sink.kind == "jsonl":
        return os.path.join(sink.output_dir, "_checkpoint")
    return str(cache_dir() / "backfill-checkpoints" / sink.cassandra.keyspace)


def _sink_identity(sink: SinkConfig) -> dict[str, Any]:
    if sink.kind == "jsonl":
        return {"kind": "jsonl", "output_dir": os.path.abspath(sink.output_dir)}
    c = sink.cassandra
    return {"kind": "cassandra", "hosts": list(c.hosts), "port": c.port, "keyspace": c.keyspace}


@dataclasses.dataclass
class _FileRun:
    """A file backfill's checkpoint: what is saved, and this run's identity."""

    checkpoint: Checkpoint
    files: list[InputFile]
    keys: list[str]
    run: str  # run key: its done marker's name

    def saved(self) -> list[tuple[InputFile, str]]:
        return [(f, k) for f, k in zip(self.files, self.keys, strict=True)
                if self.checkpoint.has_parsed(k)]


def _plan_file_run(pattern: str, analytics, sink: SinkConfig, directory: str,
                   fresh: bool) -> _FileRun:
    files = list_input_files(pattern)
    checkpoint = Checkpoint(directory)
    if fresh:
        checkpoint.clear()
    keys = FileBackfillPlan(tuple(files), directory).keys(analytics.parse_settings)
    run = run_key(files, {"analytics": dataclasses.asdict(analytics), "sink": _sink_identity(sink)})
    return _FileRun(checkpoint, files, keys, run)


def _count_records(file_run: _FileRun) -> int:
    """Records in the input: saved parses know theirs, the other files are counted."""
    saved = dict((f.path, k) for f, k in file_run.saved())
    total = 0
    for f in file_run.files:
        key = saved.get(f.path)
        if key is not None:
            try:
                total += ParsedFile(file_run.checkpoint.parsed_path(key)).meta["records"]
                continue
            except (OSError, ValueError, KeyError):
                pass
        total += count_input_records(f.path)[1]
    return total


def _run(
    input_pattern: str | None,
    rest: list[str],
    build_backfill: Callable[..., Any],
    *,
    usage: str,
    progress: bool,
    fresh: bool = False,
    checkpoint_dir: str | None = None,
) -> int:
    suffix = f"\n{usage}" if usage else ""
    try:
        args = runner_args(_with_backfill_defaults(rest), streaming=False)
    except RunnerSetupError as err:
        return _fail(str(err))
    errors = option_errors(args)
    if errors:
        return _fail("invalid options:\n  " + "\n  ".join(errors) + suffix)
    options = PipelineOptions(args)
    errors = []
    analytics = sink = kafka = file_run = None
    total = None
    try:
        analytics = opts.analytics_config(options)
    except opts.OptionsError as err:
        errors.append(str(err))
    try:
        job = options.view_as(opts.JobOptions)
        cassandra = opts.cassandra_config(options) if job.sink == "cassandra" else None
        sink = SinkConfig(kind=job.sink, cassandra=cassandra, output_dir=job.output_dir)
    except (opts.OptionsError, ValueError) as err:
        errors.append(str(err))
    range_options = {"start_timestamp", "stop_timestamp"}.intersection(_option_names(args))
    if input_pattern and range_options:
        errors.append(
            f"--input reads files; {', '.join(sorted('--' + o for o in range_options))} belong to "
            "a Kafka range backfill: give one or the other"
        )
    elif input_pattern and analytics is not None and sink is not None:
        try:
            file_run = _plan_file_run(input_pattern, analytics, sink,
                                      checkpoint_dir_for(sink, checkpoint_dir), fresh)
        except (ValueError, OSError) as err:
            errors.append(str(err))
    elif input_pattern:
        pass  # the options' own errors are reported
    else:
        try:
            kafka = opts.kafka_config(options, bounded=True)
            start, stop = kafka.start_timestamp_ms, kafka.stop_timestamp_ms
            if start is not None and stop is not None and start >= stop:
                errors.append("--stop_timestamp must be after --start_timestamp")
            else:
                ranges = kafka_range_records(kafka)
                total = sum(stop - start for start, stop in ranges.values())
                _LOG.info(
                    "backfill range of %s: offsets %s, %d records",
                    kafka.topic,
                    {p: list(r) for p, r in ranges.items()},
                    total,
                )
        except (opts.OptionsError, ValueError) as err:
            errors.append(str(err))
    if errors:
        return _fail("invalid options:\n  " + "\n  ".join(errors) + suffix)

    runner = options.get_all_options()["runner"]
    _LOG.info(
        "backfill from %s to %s on %s", input_pattern or f"Kafka {kafka.topic}", sink.kind, runner
    )
    if file_run is not None:
        done = file_run.checkpoint.done(file_run.run)
        if done is not None:
            print(
                f"backfill: nothing to do: this backfill ({len(file_run.files)} file(s) into "
                f"{sink.kind}) finished at {done.get('finished_at', '?')} "
                f"({file_run.checkpoint.done_path(file_run.run)}); --fresh runs it again",
                file=sys.stderr,
            )
            return 0
        saved = file_run.saved()
        print(
            f"backfill: checkpoint {file_run.checkpoint.directory}: {len(saved)} of "
            f"{len(file_run.files)} file(s) already parsed"
            + (", resuming" if saved else ""),
            file=sys.stderr,
        )
        total = _count_records(file_run) if progress else None
    meter = BackfillProgress(total, enabled=progress)
    p = beam.Pipeline(options=options)
    if file_run is not None:
        plan = FileBackfillPlan(tuple(file_run.files), str(file_run.checkpoint.directory),
                                meter.board)
        results = build_backfill(p, analytics, sink, plan=plan)
    else:
        results = build_backfill(p, analytics, sink, input_pattern=input_pattern, kafka=kafka)
    meter.attach(p, results, read_counted=file_run is not None)
    with meter:
        result = p.run()
        result.wait_until_finish()
    read = max(meter.read, _records_read_metric(result))
    rate = read / meter.elapsed_s if meter.elapsed_s else 0.0
    if meter.read or not read:
        rows = f", {meter.rows:,} rows to {sink.kind}"
    else:
        rows = f" to {sink.kind} (no live counts: the workers ran elsewhere)"
    print(
        f"backfill {str(result.state).lower()}: {read:,} records read in "
        f"{meter.elapsed_s:.1f} s ({rate:,.0f} records/s){rows}",
        file=sys.stderr,
    )
    print(format_metrics(result), file=sys.stderr)
    if file_run is not None and str(result.state).upper().endswith("DONE"):
        _finish_file_run(file_run, sink, read, meter)
    return 0


def _finish_file_run(file_run: _FileRun, sink: SinkConfig, read: int,
                     meter: BackfillProgress) -> None:
    """Every row is written: the done marker, then the saved parses go (they served this run)."""
    file_run.checkpoint.mark_done(file_run.run, {
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": [f.path for f in file_run.files],
        "records": read,
        "rows": meter.rows,
        "sink": _sink_identity(sink),
        "elapsed_s": round(meter.elapsed_s, 1),
    })
    file_run.checkpoint.remove_parsed(file_run.keys)
