"""JSON Lines files as a bounded source of RawRecords (backfills): one record per line, `.gz` too.

Blank lines are skipped; every other line is a record or, downstream, a dead letter. Each record keeps
its file and line number (for dead letters and "first seen" order) and the file's modification time as
the deterministic `recorded_at` of a dead letter, so a rerun writes the very same rows.

Files are read in blocks of 4 MiB (decompressed), split at `\n`: the same lines, numbered the same, as
reading line by line, with far fewer calls into Beam's compressed-file reader. The matched files are
reshuffled, so a runner with several workers reads different files in parallel.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics

from beam_cxone.records import RawRecord

__all__ = ["BLOCK_BYTES", "ReadJsonLines", "numbered_lines", "records_of_lines"]

BLOCK_BYTES = 4 << 20


def numbered_lines(handle, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its `\n`) of a binary file object, read in blocks; a last
    line without `\n` counts too, an empty tail does not (as `readline` returns them)."""
    number, tail = 0, b""
    while chunk := handle.read(block_bytes):
        lines = (tail + chunk).split(b"\n") if tail else chunk.split(b"\n")
        tail = lines.pop()
        for line in lines:
            number += 1
            yield number, line
    if tail:
        yield number + 1, tail


def record_body(line: bytes) -> bytes | None:
    """A line's record (line ends `\n` and `\r` cut off), or None for a blank line."""
    body = line.rstrip(b"\n").rstrip(b"\r")
    return body if body.strip() else None


def records_of_lines(lines: Iterator[bytes], path: str, mtime_ms: int) -> Iterator[RawRecord]:
    """Numbered records of a file's lines (1-based), blank lines skipped."""
    return _records(enumerate(lines, start=1), path, mtime_ms)


def _records(numbered: Iterator[tuple[int, bytes]], path: str, mtime_ms: int) -> Iterator[RawRecord]:
    for number, line in numbered:
        body = record_body(line)
        if body is None:
            continue
        yield RawRecord(payload=body, source=f"{path}:{number}", source_time_ms=mtime_ms,
                        order=(path, number))


class _ReadLinesFn(beam.DoFn):
    def __init__(self):
        self._files = Metrics.counter("files", "files_read")
        self._records = Metrics.counter("files", "records_read")

    def process(self, readable: fileio.ReadableFile):
        path = readable.metadata.path
        mtime_ms = int((readable.metadata.last_updated_in_seconds or 0) * 1000)
        self._files.inc()
        count = 0
        with readable.open(compression_type=CompressionTypes.AUTO) as handle:
            for record in _records(numbered_lines(handle), path, mtime_ms):
                count += 1
                yield record
        self._records.inc(count)


class ReadJsonLines(beam.PTransform):
    """File glob(s) -> PCollection[RawRecord]. Fails at once when a pattern matches nothing."""

    def __init__(self, pattern: str):
        super().__init__()
        if not pattern:
            raise ValueError("an input file pattern is required")
        self._pattern = pattern

    def expand(self, pbegin):
        return (pbegin
                | "MatchFiles" >> fileio.MatchFiles(self._pattern)
                | "SpreadFiles" >> beam.Reshuffle()
                | "OpenFiles" >> fileio.ReadMatches()
                | "ReadLines" >> beam.ParDo(_ReadLinesFn()))
