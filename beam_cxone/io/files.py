"""JSON Lines files as a bounded source of RawRecords (backfills): one record per line, `.gz` too.

Blank lines are skipped; every other line is a record or, downstream, a dead letter. Each record keeps
its file and line number (for dead letters and "first seen" order) and the file's modification time as
the deterministic `recorded_at` of a dead letter, so a rerun writes the very same rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics

from beam_cxone.records import RawRecord

__all__ = ["ReadJsonLines", "records_of_lines"]


def records_of_lines(lines: Iterator[bytes], path: str, mtime_ms: int) -> Iterator[RawRecord]:
    """Numbered records of a file's lines (1-based), blank lines skipped."""
    for number, line in enumerate(lines, start=1):
        body = line.rstrip(b"\n").rstrip(b"\r")
        if not body.strip():
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
        with readable.open(compression_type=CompressionTypes.AUTO) as handle:
            # Beam's CompressedFile (.gz) is not iterable; readline works for every file kind.
            for record in records_of_lines(iter(handle.readline, b""), path, mtime_ms):
                self._records.inc()
                yield record


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
                | "OpenFiles" >> fileio.ReadMatches()
                | "ReadLines" >> beam.ParDo(_ReadLinesFn()))
