"""The resumable file backfill's pieces without a pipeline: the checkpoint format and its keys, the
markers and what a rerun decides from them, the per-file parse (against `parse.parse_record`, line
by line), block reading, the batch reducers, the cross-process progress board."""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
from pathlib import Path

import pytest

from beam_cxone import backfill
from beam_cxone.config import AnalyticsConfig
from beam_cxone.generator import GeneratorConfig
from beam_cxone.generator import generate
from beam_cxone.io import checkpoint as ck
from beam_cxone.io.checkpoint import Checkpoint
from beam_cxone.io.checkpoint import InputFile
from beam_cxone.io.checkpoint import ParsedFile
from beam_cxone.io.checkpoint import file_key
from beam_cxone.io.checkpoint import run_key
from beam_cxone.io.checkpoint import write_parsed
from beam_cxone.io.files import numbered_lines
from beam_cxone.io.files import records_of_lines
from beam_cxone.parse import ParseSettings
from beam_cxone.parse import parse_record
from beam_cxone.pipelines.file_backfill import list_input_files
from beam_cxone.pipelines.file_backfill import parse_file
from beam_cxone.pipelines.jobs import SinkConfig
from beam_cxone.progress_board import BoardCounter
from beam_cxone.progress_board import read_board
from beam_cxone.records import DeadLetter
from beam_cxone.transforms.batch import bucket_partials
from beam_cxone.transforms.batch import compact
from beam_cxone.transforms.batch import dedup_bucket
from beam_cxone.transforms.batch import expand
from beam_cxone.transforms.batch import first_copies
from beam_cxone.transforms.batch import merge_volume_partials

SETTINGS = ParseSettings()
FILE = InputFile("/data/a.jsonl.gz", 1234, 1_796_000_000_000)


# ----- keys ---------------------------------------------------------------------------------------


def test_file_key_names_everything_the_parse_depends_on():
    key = file_key(FILE, SETTINGS, 64)
    assert key == file_key(InputFile(FILE.path, FILE.size, FILE.mtime_ms), ParseSettings(), 64)
    others = [
        file_key(dataclasses.replace(FILE, path="/data/b.jsonl.gz"), SETTINGS, 64),
        file_key(dataclasses.replace(FILE, size=1235), SETTINGS, 64),  # the file changed
        file_key(dataclasses.replace(FILE, mtime_ms=FILE.mtime_ms + 1), SETTINGS, 64),
        file_key(FILE, ParseSettings.of(["Busy"]), 64),  # other failure reasons
        file_key(FILE, ParseSettings(max_record_bytes=10), 64),
        file_key(FILE, SETTINGS, 32),
    ]
    assert len({key, *others}) == len(others) + 1


def test_run_key_names_the_files_and_the_rest():
    other = dataclasses.replace(FILE, path="/data/b.jsonl.gz")
    key = run_key([FILE, other], {"x": 1})
    assert key == run_key([other, FILE], {"x": 1})  # the order of the glob's matches is no part
    assert key != run_key([FILE], {"x": 1})
    assert key != run_key([FILE, other], {"x": 2})


# ----- the parsed-file format ---------------------------------------------------------------------


def _sections() -> list[tuple[list, list]]:
    return [([(1, ("e1", 5, "c", "c", None, "voice", "CONTACT_STARTED", "NONE", None, None))], []),
            ([], [("parse", "invalid_json", "x\udcff", "f:2", 7)]),
            ([(3, ("e3", 6, "cust", "gold", "emea"))], [])]


def test_parsed_file_round_trip(tmp_path):
    path = tmp_path / "p.bcx"
    write_parsed(path, _sections(), {"path": "f", "records": 3})
    parsed = ParsedFile(path)
    assert parsed.meta == {"path": "f", "records": 3}
    assert parsed.buckets == 3
    assert [parsed.section(b) for b in (2, 0, 1)] == [_sections()[b] for b in (2, 0, 1)]
    assert [p.name for p in tmp_path.iterdir()] == ["p.bcx"]  # no temporary file left


def test_a_parsed_file_is_complete_or_absent(tmp_path):
    path = tmp_path / "parsed" / "p.bcx"

    def failing():
        yield b"half of it"
        raise OSError("disk full")

    with pytest.raises(OSError):
        ck._write_atomically(path, failing())
    assert list(path.parent.iterdir()) == []


@pytest.mark.parametrize("cut", [0, 5, 16, 40])
def test_a_damaged_parsed_file_is_refused(tmp_path, cut):
    path = tmp_path / "p.bcx"
    write_parsed(path, _sections(), {"path": "f"})
    path.write_bytes(path.read_bytes()[: -cut or None][:-1])
    with pytest.raises(ValueError, match="not a parsed file"):
        ParsedFile(path)


def test_checkpoint_markers_and_clear(tmp_path):
    cp = Checkpoint(tmp_path)
    assert not cp.has_parsed("k1") and cp.done("r") is None and cp.parsed_keys() == set()
    write_parsed(cp.parsed_path("k1"), _sections(), {})
    write_parsed(cp.parsed_path("k2"), _sections(), {})
    cp.mark_done("r", {"records": 3})
    (tmp_path / "parsed" / ".k3.bcx.abc.tmp").write_bytes(b"left by a killed run")
    (tmp_path / "notes.txt").write_text("not ours")
    assert cp.has_parsed("k1") and cp.parsed_keys() == {"k1", "k2"}
    assert cp.done("r") == {"records": 3}
    (tmp_path / "parsed" / ".k1.bcx.0123.tmp").write_bytes(b"left by a killed writer of k1")
    cp.remove_parsed(["k1", "k9"])
    assert cp.parsed_keys() == {"k2"}
    assert sorted(p.name for p in (tmp_path / "parsed").iterdir()) == [".k3.bcx.abc.tmp", "k2.bcx"]
    cp.clear()
    assert cp.parsed_keys() == set() and cp.done("r") is None
    assert list((tmp_path / "parsed").iterdir()) == []
    assert (tmp_path / "notes.txt").exists()


# ----- reading files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"a", b"a\n", b"a\nb", b"a\r\nb\r\n", b"\n\n  \nx\n", b"a\r\r\n\rb\n" * 7, b"x" * 50],
)
@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
def test_block_reading_numbers_lines_as_readline_does(data, block):
    by_readline = list(enumerate(iter(io.BytesIO(data).readline, b""), start=1))
    assert [(n, line) for n, line in numbered_lines(io.BytesIO(data), block)] == [
        (n, line[:-1] if line.endswith(b"\n") else line) for n, line in by_readline
    ]


def _write_trace(tmp_path: Path, name: str, lines: list[bytes]) -> InputFile:
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    (f,) = list_input_files(str(path))
    return f


def test_parse_file_is_parse_record_per_line(tmp_path):
    lines = [r.value for r in generate(GeneratorConfig(count=3000, seed=5))]
    lines.insert(7, b"   ")  # a blank line keeps its number, makes no record
    f = _write_trace(tmp_path, "t.jsonl.gz", lines)
    assert f.mtime_ms == int(os.path.getmtime(f.path) * 1000) and f.size > 0
    sections, meta = parse_file(f, SETTINGS, 8)
    expected_valid, expected_dead = {}, []
    for raw in records_of_lines(iter(lines), f.path, f.mtime_ms):
        out = parse_record(raw, SETTINGS)
        if isinstance(out, DeadLetter):
            expected_dead.append(out)
        else:
            expected_valid[raw.order[1]] = out
    got_valid = {line: expand(fields) for records, _ in sections for line, fields in records}
    assert got_valid == expected_valid
    assert sorted((DeadLetter(*d) for _, dead in sections for d in dead),
                  key=lambda d: d.source) == sorted(expected_dead, key=lambda d: d.source)
    for b, (records, _) in enumerate(sections):
        assert all(dedup_bucket(fields[0], 8) == b for _, fields in records)
    assert meta["records"] == 3000 and meta["valid"] == len(expected_valid)
    assert meta["dead_letters"] == len(expected_dead) > 0


def test_list_input_files_sorted_and_a_glob_matching_nothing(tmp_path):
    b = _write_trace(tmp_path, "b.jsonl.gz", [b"{}"])
    a = _write_trace(tmp_path, "a.jsonl.gz", [b"{}"])
    assert list_input_files(str(tmp_path / "*.gz")) == [a, b]
    with pytest.raises(ValueError, match="matches no file"):
        list_input_files(str(tmp_path / "*.txt"))


# ----- the batch reducers -------------------------------------------------------------------------


def test_first_copies_keeps_the_first_in_source_order():
    a1 = (("b.jsonl", 1), ("e1", 1, "x"))
    a0 = (("a.jsonl", 9), ("e1", 2, "y"))  # an earlier file: first in source order
    b = (("b.jsonl", 2), ("e2", 3, "z"))
    first, seen = first_copies([a1, b, a0])
    assert seen == 3 and first == {"e1": a0, "e2": b}


def test_volume_partials_of_buckets_merge_to_the_whole():
    recs = [parse_record(r, SETTINGS) for r in records_of_lines(
        iter(r.value for r in generate(GeneratorConfig(count=2000, seed=3))), "t", 0)]
    unique = {r.event_id: compact(r) for r in recs if not isinstance(r, DeadLetter)}
    by_bucket: dict[int, list] = {}
    for fields in unique.values():
        by_bucket.setdefault(dedup_bucket(fields[0], 4), []).append(fields)
    partials: dict[tuple, list] = {}
    for fields in by_bucket.values():
        for key, value in bucket_partials(fields, 10_000, 3):
            partials.setdefault(key, []).append(value)
    rows = [r for (kind, _), ps in partials.items() if kind == "v"
            for r in merge_volume_partials(ps, 10_000, 0)]
    whole = merge_volume_partials([p for _, p in bucket_partials(unique.values(), 10_000, 1)
                                   if isinstance(p, dict)], 10_000, 0)
    assert sorted(rows, key=str) == sorted(whole, key=str) and len(whole) > 10


# ----- what a rerun decides -----------------------------------------------------------------------


def test_a_rerun_resumes_and_a_finished_run_is_not_done_again(tmp_path):
    for name in ("a", "b", "c"):
        _write_trace(tmp_path, f"{name}.jsonl.gz", [b'{"x": 1}'])
    pattern, out = str(tmp_path / "*.gz"), tmp_path / "out"
    sink = SinkConfig(kind="jsonl", output_dir=str(out))
    directory = backfill.checkpoint_dir_for(sink)
    assert directory == str(out / "_checkpoint")
    plan = backfill.plan_file_run(pattern, AnalyticsConfig(), sink, directory, fresh=False)
    assert plan.saved() == []
    f0, k0 = plan.files[0], plan.keys[0]
    write_parsed(plan.checkpoint.parsed_path(k0), [([], [])] * 64, {"records": 1})
    again = backfill.plan_file_run(pattern, AnalyticsConfig(), sink, directory, fresh=False)
    assert again.saved() == [(f0, k0)] and again.run == plan.run
    other = backfill.plan_file_run(pattern, AnalyticsConfig(window_size_s=60), sink, directory,
                                    fresh=False)
    assert other.run != plan.run and other.saved() == [(f0, k0)]  # parses do not depend on windows
    again.checkpoint.mark_done(again.run, {"finished_at": "x"})
    assert backfill.plan_file_run(pattern, AnalyticsConfig(), sink, directory,
                                   fresh=False).checkpoint.done(plan.run) is not None
    fresh = backfill.plan_file_run(pattern, AnalyticsConfig(), sink, directory, fresh=True)
    assert fresh.saved() == [] and fresh.checkpoint.done(plan.run) is None


def test_cassandra_checkpoint_is_per_keyspace_in_the_cache(monkeypatch, tmp_path):
    from beam_cxone.io.cassandra_write import CassandraConfig

    monkeypatch.setenv("BEAM_CXONE_CACHE", str(tmp_path))
    sink = SinkConfig(kind="cassandra", cassandra=CassandraConfig(hosts=("h",), keyspace="ks_a"))
    assert backfill.checkpoint_dir_for(sink) == str(tmp_path / "backfill-checkpoints" / "ks_a")
    assert backfill.checkpoint_dir_for(sink, "/elsewhere") == "/elsewhere"


# ----- the progress board -------------------------------------------------------------------------


def test_progress_board_sums_the_workers_counts(tmp_path):
    one, two = BoardCounter(str(tmp_path), "read", 0.0), BoardCounter(str(tmp_path), "read", 3600)
    one.add(5)
    two.add(7)  # not written yet: at most every interval
    assert read_board(str(tmp_path), "read") == 5
    two.flush()
    BoardCounter(str(tmp_path), "rows", 0.0).add(2)
    assert (read_board(str(tmp_path), "read"), read_board(str(tmp_path), "rows")) == (12, 2)
    assert read_board(None, "read") == 0
    gone = BoardCounter(str(tmp_path / "missing"), "read", 0.0)
    gone.add(1)  # a board that is gone counts nothing and raises nothing
    assert BoardCounter(None, "read").add(3) is None


def test_parse_step_saves_a_file_once_and_parses_a_damaged_save_again(tmp_path):
    from beam_cxone.pipelines.file_backfill import _ParseFilesFn

    f = _write_trace(tmp_path, "t.jsonl.gz", [r.value for r in generate(GeneratorConfig(count=50))])
    fn = _ParseFilesFn(str(tmp_path / "ck"), SETTINGS, None)
    fn.setup()
    (key,) = fn.process(f)
    saved = Checkpoint(tmp_path / "ck").parsed_path(key)
    assert ParsedFile(saved).meta["records"] == 50
    stamp = saved.stat().st_mtime_ns
    assert list(fn.process(f)) == [key] and saved.stat().st_mtime_ns == stamp  # reused, not rewritten
    saved.write_bytes(saved.read_bytes()[:-3])  # damaged on disk
    assert list(fn.process(f)) == [key]
    assert ParsedFile(saved).meta["records"] == 50


def test_a_file_changed_while_it_was_parsed_is_not_saved(tmp_path):
    from beam_cxone.pipelines.file_backfill import _ParseFilesFn

    f = _write_trace(tmp_path, "t.jsonl.gz", [b'{"x": 1}'])
    stale = dataclasses.replace(f, mtime_ms=f.mtime_ms - 1000)  # as listed before it changed
    fn = _ParseFilesFn(str(tmp_path / "ck"), SETTINGS, None)
    fn.setup()
    with pytest.raises(ValueError, match="changed during the backfill"):
        list(fn.process(stale))
    assert Checkpoint(tmp_path / "ck").parsed_keys() == set()
