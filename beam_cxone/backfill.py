"""What a backfill needs besides its command line (`beam_cxone.commands.backfill`): the totals counted
before the run, the progress meter while it runs, and the checkpoint of a file backfill.

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

import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.pipeline import PipelineVisitor
from tqdm import tqdm

from beam_cxone.io.checkpoint import Checkpoint
from beam_cxone.io.checkpoint import InputFile
from beam_cxone.io.checkpoint import ParsedFile
from beam_cxone.io.checkpoint import run_key
from beam_cxone.io.kafka import KafkaReadConfig
from beam_cxone.pipelines.file_backfill import READ_SLOT
from beam_cxone.pipelines.file_backfill import FileBackfillPlan
from beam_cxone.pipelines.file_backfill import list_input_files
from beam_cxone.pipelines.jobs import SinkConfig
from beam_cxone.progress_board import BoardCounter
from beam_cxone.progress_board import read_board
from beam_cxone.runners.profiles import cache_dir

__all__ = [
    "BackfillProgress",
    "FileRun",
    "checkpoint_dir_for",
    "count_input_records",
    "count_records",
    "finish_file_run",
    "kafka_range_records",
    "plan_file_run",
    "records_read_metric",
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


def records_read_metric(result) -> int:
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


# ----- the checkpoint of a file backfill -----------------------------------------------------


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
class FileRun:
    """A file backfill's checkpoint: what is saved, and this run's identity."""

    checkpoint: Checkpoint
    files: list[InputFile]
    keys: list[str]
    run: str  # run key: its done marker's name

    def saved(self) -> list[tuple[InputFile, str]]:
        return [(f, k) for f, k in zip(self.files, self.keys, strict=True)
                if self.checkpoint.has_parsed(k)]


def plan_file_run(pattern: str, analytics, sink: SinkConfig, directory: str,
                   fresh: bool) -> FileRun:
    files = list_input_files(pattern)
    checkpoint = Checkpoint(directory)
    if fresh:
        checkpoint.clear()
    keys = FileBackfillPlan(tuple(files), directory).keys(analytics.parse_settings)
    run = run_key(files, {"analytics": dataclasses.asdict(analytics), "sink": _sink_identity(sink)})
    return FileRun(checkpoint, files, keys, run)


def count_records(file_run: FileRun) -> int:
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


def finish_file_run(file_run: FileRun, sink: SinkConfig, read: int,
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
