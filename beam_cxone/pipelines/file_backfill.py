"""A resumable backfill over files: parse each input file once into a checkpoint, then compute every
table from the saved parses (`beam_cxone.io.checkpoint` says why a resumed run gives exact rows).

```
Create(input files) ─(reshuffled: one file per worker at a time)─► ParseFiles
    read in 4 MiB blocks, parse every line, save the file's parse (valid records by dedup
    bucket, dead letters) atomically under the checkpoint; a file already saved is skipped
                                                 │ the saved parses' keys (a side input: phase 2
Create(dedup buckets 0..63) ─► ReduceParsed ◄────┘  starts once every file is saved)
    bucket b of every saved parse -> dedup (first in source order) -> partials; dead letter rows
                                                 │
                       GroupResults -> ToRows (transforms/batch.py) -> the four tables' rows
```

Phase 2 reads the saved parses instead of shuffling every record through the runner: the records
cross process boundaries as compressed sections of files, and only small partials are shuffled.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_cxone.config import AnalyticsConfig
from beam_cxone.io.checkpoint import Checkpoint
from beam_cxone.io.checkpoint import InputFile
from beam_cxone.io.checkpoint import ParsedFile
from beam_cxone.io.checkpoint import file_key
from beam_cxone.io.checkpoint import write_parsed
from beam_cxone.io.files import numbered_lines
from beam_cxone.parse import ParseSettings
from beam_cxone.parse import Rejected
from beam_cxone.parse import dead_letter_for
from beam_cxone.parse import decode_object
from beam_cxone.parse import parse_fields
from beam_cxone.pipelines.analytics import Results
from beam_cxone.pipelines.analytics import dead_letter_row
from beam_cxone.progress_board import BoardCounter
from beam_cxone.records import DeadLetter
from beam_cxone.records import RawRecord
from beam_cxone.transforms.batch import DEDUP_BUCKETS
from beam_cxone.transforms.batch import ParseCounters
from beam_cxone.transforms.batch import ReduceBucketFn
from beam_cxone.transforms.batch import result_rows
from beam_cxone.transforms.gc_pause import GcPausedBundles

__all__ = ["FileBackfillPlan", "ReadParsedAndAnalyse", "list_input_files", "parse_file"]

_LOG = logging.getLogger(__name__)
READ_SLOT = "read"  # progress board slot: records read (parsed now, or found saved)
DEAD = "dead_letters"


@dataclasses.dataclass(frozen=True)
class FileBackfillPlan:
    """What a resumable file backfill reads and where it saves its parses."""

    files: tuple[InputFile, ...]
    checkpoint_dir: str
    progress_dir: str | None = None  # a progress board (beam_cxone.progress_board), if any

    def keys(self, settings: ParseSettings) -> list[str]:
        return [file_key(f, settings, DEDUP_BUCKETS) for f in self.files]


def list_input_files(pattern: str) -> list[InputFile]:
    """The files a glob matches now, with the size and modification time that name their parse.
    ValueError when it matches none."""
    matched = FileSystems.match([pattern])[0].metadata_list
    if not matched:
        raise ValueError(f"--input {pattern!r} matches no file")
    return sorted(
        InputFile(m.path, m.size_in_bytes, int((m.last_updated_in_seconds or 0) * 1000))
        for m in matched
    )


def parse_file(f: InputFile, settings: ParseSettings, buckets: int = DEDUP_BUCKETS,
               on_records=lambda n: None) -> tuple[list[tuple[list, list]], dict[str, Any]]:
    """One input file's parse: per dedup bucket, (valid records as (line, compact record), dead
    letters as (stage, reason, payload, source, recorded_at_ms)); and a summary.

    The rules of `parse.parse_record` for a file's record (never late): decode, then the contract,
    else a dead letter of the line's bytes, `source` = `path:line`, `recorded_at` = the file's
    modification time. A dead letter goes to section `line % buckets`."""
    sections: list[tuple[list, list]] = [([], []) for _ in range(buckets)]
    valid_sections = [section[0] for section in sections]
    records = valid = 0
    max_bytes = settings.max_record_bytes
    crc32 = zlib.crc32
    with FileSystems.open(f.path, compression_type=CompressionTypes.AUTO) as handle:
        for number, line in numbered_lines(handle):
            body = line.rstrip(b"\r")  # record_body's rule: the line holds no "\n"
            if not body or body.isspace():
                continue
            records += 1
            if records % 4096 == 0:
                on_records(4096)
            try:
                fields = parse_fields(decode_object(body, max_bytes), settings)
            except Rejected as rejected:
                raw = RawRecord(body, f"{f.path}:{number}", f.mtime_ms, (f.path, number))
                letter = dead_letter_for(raw, rejected.stage, rejected.reason)
                sections[number % buckets][1].append(
                    (letter.stage, letter.reason, letter.payload, letter.source,
                     letter.recorded_at_ms))
                continue
            valid += 1
            # dedup_bucket(event id), inline: the hot loop of a backfill
            valid_sections[crc32(fields[0].encode("utf-8", "surrogatepass")) % buckets].append(
                (number, fields))
    on_records(records % 4096)
    meta = {"path": f.path, "size": f.size, "mtime_ms": f.mtime_ms, "records": records,
            "valid": valid, "dead_letters": records - valid}
    return sections, meta


class _ParseFilesFn(GcPausedBundles, beam.DoFn):
    """InputFile -> the key of its saved parse, after saving it (or finding it saved)."""

    def __init__(self, checkpoint_dir: str, settings: ParseSettings, progress_dir: str | None):
        self._checkpoint_dir = checkpoint_dir
        self._settings = settings
        self._progress_dir = progress_dir
        self._files_parsed = Metrics.counter("checkpoint", "files_parsed")
        self._files_reused = Metrics.counter("checkpoint", "files_reused")
        self._records_read = Metrics.counter("files", "records_read")
        self._files_read = Metrics.counter("files", "files_read")

    def setup(self) -> None:
        self._checkpoint = Checkpoint(self._checkpoint_dir)
        self._progress = BoardCounter(self._progress_dir, READ_SLOT)

    def process(self, f: InputFile):
        key = file_key(f, self._settings, DEDUP_BUCKETS)
        path = self._checkpoint.parsed_path(key)
        if path.is_file():
            try:
                records = ParsedFile(path).meta["records"]
            except (ValueError, KeyError) as err:  # damaged on disk since: parse the file again
                _LOG.warning("checkpoint: %s; parsing %s again", err, f.path)
            else:
                self._files_reused.inc()
                self._progress.add(records)
                self._progress.flush()
                yield key
                return
        sections, meta = parse_file(f, self._settings, DEDUP_BUCKETS, self._progress.add)
        now = list_input_files(f.path)
        if now != [f]:  # the parse would be saved under the name of content it did not read
            raise ValueError(f"input file {f.path} changed during the backfill ({f} -> {now}); "
                             "run the backfill again")
        write_parsed(path, sections, meta)
        self._files_read.inc()
        self._files_parsed.inc()
        self._records_read.inc(meta["records"])
        self._progress.flush()
        yield key

    def finish_bundle(self) -> None:
        self._progress.flush()
        super().finish_bundle()


class _ReduceParsedFn(GcPausedBundles, beam.DoFn):
    """Dedup bucket b -> partials for the result step (`ReduceBucketFn`), from section b of every
    saved parse; tag DEAD: the dead letter rows saved in section b."""

    def __init__(self, checkpoint_dir: str, window_ms: int):
        self._checkpoint_dir = checkpoint_dir
        self._reducer = ReduceBucketFn(window_ms)
        self._counters = ParseCounters()

    def setup(self) -> None:
        self._checkpoint = Checkpoint(self._checkpoint_dir)
        self._files: dict[str, ParsedFile] = {}

    def _parsed(self, key: str) -> ParsedFile:
        parsed = self._files.get(key)
        if parsed is None:
            parsed = self._files[key] = ParsedFile(self._checkpoint.parsed_path(key))
        return parsed

    def process(self, bucket: int, keys: list[str]):
        entries: list[tuple[tuple[str, int], tuple]] = []
        dead_by_reason: dict[str, int] = {}
        for key in sorted(set(keys)):
            parsed = self._parsed(key)
            records, dead = parsed.section(bucket)
            path = parsed.meta["path"]
            entries.extend(((path, line), fields) for line, fields in records)
            for letter in dead:
                dead_by_reason[letter[1]] = dead_by_reason.get(letter[1], 0) + 1
                yield pvalue.TaggedOutput(DEAD, dead_letter_row(DeadLetter(*letter)))
        self._counters.parsed.inc(len(entries))
        for reason, count in dead_by_reason.items():
            self._counters.dead(reason, count)
        yield from self._reducer.reduce(entries)


class ReadParsedAndAnalyse(beam.PTransform):
    """PBegin -> Results: phase 1 (parse and save each file) and phase 2 (the tables' rows)."""

    def __init__(self, plan: FileBackfillPlan, cfg: AnalyticsConfig):
        super().__init__()
        if not plan.files:
            raise ValueError("a file backfill needs at least one input file")
        self._plan = plan
        self._cfg = cfg

    def expand(self, pbegin) -> Results:
        plan, cfg = self._plan, self._cfg
        window_ms = cfg.window_size_s * 1000
        # Largest first: with files spread over workers, a big one last would leave a core idle.
        files = sorted(plan.files, key=lambda f: (-f.size, f.path))
        keys = (pbegin
                | "ListFiles" >> beam.Create(files)
                | "ParseFiles" >> beam.ParDo(
                    _ParseFilesFn(plan.checkpoint_dir, cfg.parse_settings, plan.progress_dir)))
        reduced = (pbegin
                   | "Buckets" >> beam.Create(list(range(DEDUP_BUCKETS)))
                   | "ReduceParsed" >> beam.ParDo(
                       _ReduceParsedFn(plan.checkpoint_dir, window_ms),
                       keys=beam.pvalue.AsList(keys)).with_outputs(DEAD, main="partials"))
        volumes, alerts, profiles = result_rows(reduced.partials, window_ms, cfg.pattern_spec)
        return Results(volumes, alerts, profiles, reduced[DEAD])
