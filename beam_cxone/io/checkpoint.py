"""The durable state of a resumable file backfill: each input file's parse, saved once, and markers.

A file backfill runs in two phases (`beam_cxone.pipelines.file_backfill`):

1. per input file, in parallel: read, parse (the record contract), and save the result here as one
   *parsed file*: the valid records split into the dedup buckets of `transforms/batch.py` (by a
   stable hash of the eventId) and the dead letters. It is written to a temporary name, flushed to
   disk (fsync) and renamed into place, so it exists complete or not at all: its presence is the
   file's completion marker.
2. per dedup bucket: the bucket's section of every parsed file -> dedup, volumes, customers -> the
   rows -> the sink. Then the launcher records a *done marker* for the whole run.

A parsed file is named by a key over everything its content depends on: the input file's path, size
and modification time, the parse settings, the bucket count and this format's version (and the
Python version, for `marshal`). A rerun reuses a parsed file only when all of them are equal, so it
never reads a stale parse: a changed input file, or other settings, are parsed again.

Why a resumed run is exact: phase 1 is a pure function of one input file, so a saved parse equals
what parsing the file again would give; phase 2 always runs over the parses of *every* input file,
and its rows are deterministic functions of them (dedup picks by source order, not by arrival).
Volumes, patterns and profiles span files, so phase 2 is never split by file: a resume re-runs it
whole, from the saved parses, and skips only the parsing of files already parsed.

Layout of a checkpoint directory:

  parsed/<key>.bcx         one per parsed input file (see `write_parsed`)
  done/<run key>.json      one per finished run: what it read and wrote
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import marshal
import os
import struct
import sys
import uuid
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from beam_cxone.parse import ParseSettings

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "InputFile",
    "ParsedFile",
    "file_key",
    "run_key",
    "write_parsed",
]

FORMAT_VERSION = 1
_MAGIC = b"BCXPARS1"
_FOOTER = struct.Struct("<Q8s")  # index length, magic
_COMPRESS_LEVEL = 1  # zlib: ~4x smaller for ~1 us per record


@dataclasses.dataclass(frozen=True, order=True)
class InputFile:
    """An input file as the backfill saw it when it started: its identity for the checkpoint.

    `mtime_ms` is also the `recorded_at` of its dead letters (the file source's rule)."""

    path: str
    size: int
    mtime_ms: int


def _digest(parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:40]


def file_key(f: InputFile, settings: ParseSettings, buckets: int) -> str:
    """Names the parse of `f` under these settings: equal keys, equal parsed content."""
    return _digest([
        "parsed", FORMAT_VERSION, list(sys.version_info[:2]), marshal.version, buckets, f.path,
        f.size, f.mtime_ms, sorted(settings.failure_reasons), settings.max_record_bytes,
    ])


def run_key(files: Iterable[InputFile], parts: Any) -> str:
    """Names a whole run: its input files and whatever else decides its rows (`parts`)."""
    return _digest(["run", FORMAT_VERSION, [dataclasses.astuple(f) for f in sorted(files)], parts])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - a filesystem without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_atomically(path: Path, chunks: Iterable[bytes]) -> None:
    """Written to a temporary name, synced, then renamed: `path` is complete or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_parsed(path: str | os.PathLike, sections: list[tuple[list, list]],
                 meta: dict[str, Any]) -> None:
    """One parsed input file: `sections[b]` = (records of dedup bucket b as (line, compact record),
    dead letters as (stage, reason, payload, source, recorded_at_ms)); `meta` (JSON) for reports.

    Layout: each section marshalled and zlib-compressed, back to back; then the index (JSON: the
    meta and each section's offset and length); then the index length and a magic number."""
    blobs = [zlib.compress(marshal.dumps(section), _COMPRESS_LEVEL) for section in sections]
    offsets, at = [], 0
    for blob in blobs:
        offsets.append([at, len(blob)])
        at += len(blob)
    index = json.dumps({"meta": meta, "sections": offsets}).encode("utf-8")
    _write_atomically(Path(path), [*blobs, index, _FOOTER.pack(len(index), _MAGIC)])


class ParsedFile:
    """Reads the sections of a parsed file (random access by bucket)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            if end < _FOOTER.size:
                raise ValueError(f"{self.path}: not a parsed file (too short)")
            f.seek(end - _FOOTER.size)
            length, magic = _FOOTER.unpack(f.read(_FOOTER.size))
            if magic != _MAGIC or length > end - _FOOTER.size:
                raise ValueError(f"{self.path}: not a parsed file (bad footer)")
            f.seek(end - _FOOTER.size - length)
            index = json.loads(f.read(length))
        self.meta: dict[str, Any] = index["meta"]
        self._sections: list[list[int]] = index["sections"]

    @property
    def buckets(self) -> int:
        return len(self._sections)

    def section(self, bucket: int) -> tuple[list, list]:
        """(records, dead letters) of one bucket."""
        offset, length = self._sections[bucket]
        with open(self.path, "rb") as f:
            f.seek(offset)
            blob = f.read(length)
        records, dead = marshal.loads(zlib.decompress(blob))
        return records, dead


class Checkpoint:
    """A checkpoint directory: parsed files and done markers (module docstring)."""

    PARSED = "parsed"
    DONE = "done"

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def parsed_path(self, key: str) -> Path:
        return self.directory / self.PARSED / f"{key}.bcx"

    def has_parsed(self, key: str) -> bool:
        return self.parsed_path(key).is_file()

    def parsed_keys(self) -> set[str]:
        folder = self.directory / self.PARSED
        if not folder.is_dir():
            return set()
        return {p.stem for p in folder.glob("*.bcx")}

    def done_path(self, key: str) -> Path:
        return self.directory / self.DONE / f"{key}.json"

    def done(self, key: str) -> dict | None:
        """The done marker of run `key`, or None."""
        try:
            return json.loads(self.done_path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def mark_done(self, key: str, summary: dict[str, Any]) -> None:
        body = json.dumps(summary, indent=1, sort_keys=True).encode("utf-8")
        _write_atomically(self.done_path(key), [body])

    def remove_parsed(self, keys: Iterable[str]) -> None:
        """Removes these keys' parsed files and any temporary file a killed writer left for them."""
        for key in keys:
            path = self.parsed_path(key)
            path.unlink(missing_ok=True)
            for leftover in path.parent.glob(f".{path.name}.*.tmp"):
                leftover.unlink(missing_ok=True)

    def clear(self) -> None:
        """Removes every parsed file, leftover temporary file and done marker (`--fresh`); other
        files in the directory are left alone."""
        for sub, pattern in ((self.PARSED, "*.bcx"), (self.PARSED, ".*.tmp"), (self.DONE, "*.json"),
                             (self.DONE, ".*.tmp")):
            folder = self.directory / sub
            if folder.is_dir():
                for path in folder.glob(pattern):
                    path.unlink(missing_ok=True)
