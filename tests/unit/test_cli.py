"""The command line's own decisions, without servers: validation stops a job before anything starts."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from beam_cxone import cli
from beam_cxone.console import BEAM_IMPORT_NOISE
from beam_cxone.console import silence_beam_import_noise

REPO_DIR = Path(__file__).resolve().parents[2]

CXONE_ENV = ("CXONE_CLIENT_ID", "CXONE_CLIENT_SECRET", "CXONE_ACCESS_KEY_ID", "CXONE_ACCESS_KEY_SECRET")


@pytest.fixture
def no_cxone_env(monkeypatch):
    for name in CXONE_ENV:
        monkeypatch.delenv(name, raising=False)


def test_failed_cxone_validation_stops_the_job_before_it_is_built(no_cxone_env, capsys, monkeypatch):
    built = []
    monkeypatch.setattr(cli, "build_streaming", lambda *a, **k: built.append(a))
    code = cli.main(["--runner=PrismRunner", "--prism_location=/nonexistent/prism", "--topic=t",
                     "--cxone_validate", "--cxone_issuer=http://127.0.0.1:9"])
    assert code == 2
    assert built == []
    err = capsys.readouterr().err
    assert err.startswith("beam_cxone: CXone validation failed: missing CXone credentials")


def test_invalid_options_are_reported_together_before_anything_runs(capsys):
    code = cli.main(["--runner=PrismRunner", "--prism_location=/nonexistent/prism", "--topic=",
                     "--start_position=timestamp", "--window_size_s=0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "invalid options" in err
    assert "window_size_s must be > 0, got 0" in err


def test_unknown_command_is_rejected():
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("argv", "bounded"),
    [
        (["--topic=t"], False),
        (["--bounded"], True),
        (["--stop_timestamp=2026-11-30T00:00:00Z"], True),
        (["--stop_timestamp", "1796000000000"], True),
    ],
)
def test_a_stop_makes_the_run_bounded(argv, bounded):
    assert cli._is_bounded(argv) is bounded


def test_help_does_not_print_beams_import_warning():
    # Beam's GCP modules log "apitools not found ..." at import; the entry point filters that one line.
    done = subprocess.run([sys.executable, "-m", "beam_cxone", "schema", "--help"], capture_output=True,
                          text=True, timeout=120, cwd=REPO_DIR)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    assert BEAM_IMPORT_NOISE not in done.stderr and "apitools" not in done.stderr


def test_the_import_filter_drops_only_beams_message():
    silence_beam_import_noise()
    silence_beam_import_noise()  # installed once however often it is called
    root = logging.getLogger()
    assert sum(type(f).__name__ == "_BeamImportNoise" for f in root.filters) == 1

    def shown(logger: str, msg: str) -> bool:
        return bool(root.filter(logging.LogRecord(logger, logging.WARNING, __file__, 1, msg, None, None)))

    assert not shown("root", BEAM_IMPORT_NOISE + " despite the import not raising an ImportError.")
    assert shown("root", "apitools is fine; another warning")
    assert shown("apache_beam.io", BEAM_IMPORT_NOISE)  # only the root logger's own line is dropped


def test_schema_against_an_unreachable_cassandra_is_one_line(capsys):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert cli.main(["schema", f"--cassandra_port={port}", "--cassandra_keyspace=ks"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"beam_cxone: cannot create the schema in ks on 127.0.0.1:{port}: NoHostAvailable")
    assert err.count("\n") == 1


def test_run_seconds_count_from_the_reads_first_call(monkeypatch):
    # The job carries the drain as a duration; the read starts the clock at its first call
    # (tests/unit/test_drain.py), so neither the checks (CXone's retries can take a minute) nor the
    # runner's start-up eat the budget.
    built = []

    def build(p, kafka, *rest):
        built.append(kafka)
        raise ValueError("stop here")

    monkeypatch.setattr(cli, "build_streaming", build)
    code = cli.main(["--runner=PrismRunner", "--prism_location=/nonexistent/prism", "--topic=t",
                     "--run_seconds=12"])
    assert code == 2
    assert built[0].drain.after_ms == 12_000
