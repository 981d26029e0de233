"""A file backfill killed halfway resumes where it stopped, and gives the reference's rows.

`python -m beam_cxone backfill` runs as a subprocess (its own process group: the launcher and its
SDK worker processes) on the default runner set-up (every core); once a few input files' parses are
saved in the checkpoint, the whole group gets SIGKILL. The same command then parses only the files
not saved yet, computes every table from all the saved parses, and the rows equal tests/reference.py.

Run: .venv/bin/python -m pytest tests/integration/test_backfill_resume.py -q
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beam_cxone.generator import GeneratorConfig
from beam_cxone.generator import generate
from tests.integration.test_backfill import assert_rows_match
from tests.integration.test_backfill import read_jsonl_dir
from tests.reference import raw_lines

REPO = Path(__file__).resolve().parents[2]
FILES = 16
PER_FILE = 3000
KILL_AFTER = 3  # saved parses seen before the kill


def _write_files(directory: Path) -> tuple[str, list]:
    lines = [r.value for r in generate(GeneratorConfig(count=FILES * PER_FILE, seed=23))]
    raws = []
    for i in range(FILES):
        path = directory / f"part-{i:02d}.jsonl.gz"
        part = lines[i * PER_FILE:(i + 1) * PER_FILE]
        path.write_bytes(gzip.compress(b"\n".join(part) + b"\n", compresslevel=1))
        mtime_ms = int(os.path.getmtime(path) * 1000)
        raws += [dataclasses.replace(r, source_time_ms=mtime_ms)
                 for r in raw_lines(part, name=str(path))]
    return str(directory / "part-*.jsonl.gz"), raws


def _command(pattern: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "beam_cxone", "backfill", f"--input={pattern}", "--sink=jsonl",
            f"--output_dir={out}", "--no_progress"]


def _saved(out: Path) -> list[Path]:
    folder = out / "_checkpoint" / "parsed"
    return sorted(folder.glob("*.bcx")) if folder.is_dir() else []


def _counter(stderr: str, name: str) -> int:
    found = re.search(rf"^\s*{re.escape(name)}\s+([0-9,]+)\s*$", stderr, re.MULTILINE)
    return int(found.group(1).replace(",", "")) if found else 0


@pytest.mark.integration
def test_a_killed_file_backfill_resumes_and_gives_the_reference_rows(tmp_path):
    pattern, raws = _write_files(tmp_path)
    out = tmp_path / "out"
    job = subprocess.Popen(_command(pattern, out), cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(_saved(out)) < KILL_AFTER:
            assert job.poll() is None, job.stderr.read().decode(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "no parse was saved within 120 s"
            time.sleep(0.01)
    finally:
        with_os_error = (ProcessLookupError, PermissionError)
        try:
            os.killpg(job.pid, signal.SIGKILL)  # the launcher and its worker processes
        except with_os_error:
            pass
        job.wait(timeout=30)
        job.stderr.close()
    saved = len(_saved(out))
    assert KILL_AFTER <= saved < FILES, f"killed too late to test a resume: {saved} of {FILES}"
    assert not list(out.glob("*.jsonl")), "no table may be written before every file is parsed"
    assert not list((out / "_checkpoint").glob("done/*.json"))

    resumed = subprocess.run(_command(pattern, out), cwd=REPO, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{saved} of {FILES} file(s) already parsed, resuming" in resumed.stderr
    # Only what was left: the saved files are reused, the others parsed now.
    assert _counter(resumed.stderr, "checkpoint/files_reused") == saved
    assert _counter(resumed.stderr, "checkpoint/files_parsed") == FILES - saved
    assert _counter(resumed.stderr, "files/records_read") == (FILES - saved) * PER_FILE
    assert_rows_match(read_jsonl_dir(out), raws)
    assert _saved(out) == [], "a finished run deletes its saved parses"
    assert list((out / "_checkpoint" / "parsed").iterdir()) == [], "and what the killed run left"
    assert len(list((out / "_checkpoint").glob("done/*.json"))) == 1

    again = subprocess.run(_command(pattern, out), cwd=REPO, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr[-2000:]
