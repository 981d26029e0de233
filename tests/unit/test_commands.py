"""The command line's own decisions, without servers: validation stops a job before anything starts,
`--help` is the project's, one argv reader (`beam_cxone.commands.cmdline`), one bounded Kafka job."""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from beam_cxone import commands
from beam_cxone.commands import backfill as backfill_command
from beam_cxone.commands import cmdline
from beam_cxone.commands import common
from beam_cxone.commands import run as run_command
from beam_cxone.console import BEAM_IMPORT_NOISE
from beam_cxone.console import silence_beam_import_noise

REPO_DIR = Path(__file__).resolve().parents[2]
NO_PRISM = ["--runner=PrismRunner", "--prism_location=/nonexistent/prism"]

CXONE_ENV = ("CXONE_CLIENT_ID", "CXONE_CLIENT_SECRET", "CXONE_ACCESS_KEY_ID", "CXONE_ACCESS_KEY_SECRET")


@pytest.fixture
def no_cxone_env(monkeypatch):
    for name in CXONE_ENV:
        monkeypatch.delenv(name, raising=False)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "beam_cxone", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_DIR)


# ----- the streaming job's checks ------------------------------------------------------------------


def test_failed_cxone_validation_stops_the_job_before_it_is_built(no_cxone_env, capsys, monkeypatch):
    built = []
    monkeypatch.setattr(run_command, "build_streaming", lambda *a, **k: built.append(a))
    code = commands.main([*NO_PRISM, "--topic=t", "--cxone_validate", "--cxone_issuer=http://127.0.0.1:9"])
    assert code == 2
    assert built == []
    err = capsys.readouterr().err
    assert err.startswith("beam_cxone: CXone validation failed: missing CXone credentials")


def test_invalid_options_are_reported_together_before_anything_runs(capsys):
    code = commands.main([*NO_PRISM, "--topic=", "--start_position=timestamp", "--window_size_s=0"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("beam_cxone: invalid options:\n")
    assert "window_size_s must be > 0, got 0" in err
    assert "topic is empty" in err and "start=timestamp needs start_timestamp_ms" in err


def test_unknown_options_and_bad_values_stop_the_job_all_at_once(capsys, monkeypatch):
    # Beam's own parse would drop --window_size=5 with a warning and run with the default window.
    monkeypatch.setattr(run_command, "build_streaming", lambda *a, **k: pytest.fail("must not build"))
    code = commands.main([*NO_PRISM, "--topic=t", "--window_size=5", "--sink", "xml", "--run_seconds=x"])
    assert code == 2
    assert capsys.readouterr().err == (
        "beam_cxone: invalid options:\n"
        "  unknown option --window_size=5\n"
        "  argument --sink: invalid choice: 'xml' (choose from 'cassandra', 'jsonl')\n"
        "  argument --run_seconds: invalid float value: 'x'\n"
    )


def test_unknown_command_is_rejected(capsys):
    assert commands.main(["frobnicate"]) == 2
    assert capsys.readouterr().err == (
        "beam_cxone: unknown command 'frobnicate' (choose from run, backfill, schema, generate, "
        "validate, report; --help lists them)\n")


def test_run_seconds_count_from_the_reads_first_call(monkeypatch):
    # The job carries the drain as a duration; the read starts the clock at its first call
    # (tests/unit/test_drain.py), so neither the checks (CXone's retries can take a minute) nor the
    # runner's start-up eat the budget.
    built = []

    def build(p, kafka, *rest):
        built.append(kafka)
        raise ValueError("stop here")

    monkeypatch.setattr(run_command, "build_streaming", build)
    assert commands.main([*NO_PRISM, "--topic=t", "--run_seconds=12"]) == 2
    assert built[0].drain.after_ms == 12_000
    assert commands.main([*NO_PRISM, "--topic=t"]) == 2
    assert built[1].drain is None


# ----- one bounded Kafka job ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "bounded"),
    [
        (["--topic=t"], False),
        (["--bounded"], True),
        (["--stop_timestamp=2026-11-30T00:00:00Z"], True),
        (["--stop_timestamp", "1796000000000"], True),
        (["--stop_timestamp="], False),  # empty: no stop
    ],
)
def test_a_stop_makes_the_run_bounded(argv, bounded):
    assert cmdline.is_bounded(cmdline.parse_pipeline_args(argv)) is bounded


@pytest.mark.parametrize("command", [[], ["run"]])
def test_a_bounded_run_is_the_kafka_range_backfill(command, monkeypatch):
    # `run --bounded` and `backfill` (no --input) run one implementation with one set of defaults:
    # the FnApiRunner, and no consumer group unless one is given.
    ran = []

    def execute(options, settings, input_pattern, **kwargs):
        ran.append((options.get_all_options()["runner"], settings.kafka, input_pattern, kwargs["prog"]))
        return 0

    monkeypatch.setattr(backfill_command, "_execute", execute)
    monkeypatch.setattr(run_command, "build_streaming", lambda *a, **k: pytest.fail("not streaming"))
    assert commands.main([*command, "--bounded", "--topic=t", "--start_timestamp=1796000000000",
                          "--sink=jsonl", "--output_dir=/tmp/x"]) == 0
    assert commands.main(["backfill", "--bounded", "--topic=t", "--start_timestamp=1796000000000",
                          "--sink=jsonl", "--output_dir=/tmp/x"]) == 0
    (runner, kafka, files, prog), (runner2, kafka2, files2, prog2) = ran
    assert kafka == kafka2 and (runner, files) == (runner2, files2)
    assert runner == "apache_beam.runners.portability.fn_api_runner.FnApiRunner" and files is None
    assert kafka.bounded and kafka.group_id is None  # the streaming job's group never moves
    assert (kafka.start, kafka.start_timestamp_ms, kafka.stop_timestamp_ms) == (
        "timestamp", 1_796_000_000_000, None)
    assert (prog, prog2) == ("beam_cxone", "beam_cxone backfill")


def test_a_bounded_run_reports_its_errors_as_the_run_command(capsys):
    assert commands.main(["--stop_timestamp=1", "--start_timestamp=2", "--topic=t"]) == 2
    assert capsys.readouterr().err == (
        "beam_cxone: invalid options:\n  --stop_timestamp must be after --start_timestamp\n")


# ----- which services a command checks before it starts -------------------------------------------


@pytest.fixture
def checked(monkeypatch):
    """The services each command checks (its preflight arguments); the check refuses, so nothing
    runs after it."""
    calls = []

    def record(**targets):
        calls.append(targets)
        return "stop here"

    monkeypatch.setattr(common, "preflight_message", record)
    return calls


def test_a_file_backfill_into_cassandra_checks_cassandra_only(checked, tmp_path):
    assert commands.main(["backfill", f"--input={tmp_path}/a/*.jsonl", "--cassandra_port=9142",
                          "--cassandra_tls", "--cassandra_ca_file=/ca.pem", "--no_progress"]) == 2
    [targets] = checked
    assert targets["kafka_bootstrap"] is None
    cfg = targets["cassandra"]
    assert (cfg.port, cfg.tls, cfg.ca_file) == (9142, True, "/ca.pem")


def test_a_kafka_range_backfill_checks_its_brokers(checked):
    assert commands.main(["backfill", "--bootstrap_servers=k1:9093,k2:9093", "--topic=t",
                          "--sink=jsonl", "--output_dir=/tmp/x"]) == 2
    assert checked == [{"kafka_bootstrap": "k1:9093,k2:9093", "cassandra": None}]


def test_a_file_backfill_with_a_dead_letter_topic_checks_kafka_too(checked):
    assert commands.main(["backfill", "--input", "a.jsonl", "--dead_letter_topic=dead",
                          "--bootstrap_servers=k:9092"]) == 2
    assert checked[0]["kafka_bootstrap"] == "k:9092"


def test_a_template_resolves_to_what_it_runs(checked):
    assert commands.main(["backfill", "--template", "kafka_range_to_cassandra", "--param",
                          "start=2026-11-30T00:00:00Z", "stop=2026-11-30T01:00:00Z",
                          "bootstrap_servers=kb:9192", "topic=t", "cassandra_port=9142"]) == 2
    [targets] = checked
    assert targets["kafka_bootstrap"] == "kb:9192"
    assert targets["cassandra"].port == 9142


@pytest.mark.parametrize("argv", [["--list-templates"], ["--template=no-such-template"],
                                  ["--cassandra_port=abc"], ["--help"]])
def test_nothing_is_checked_when_the_backfill_will_refuse_or_only_list(argv, checked, capsys):
    commands.main(["backfill", *argv])
    assert checked == []


def test_the_streaming_job_checks_its_brokers_and_cassandra(checked, capsys):
    assert commands.main([*NO_PRISM, "--bootstrap_servers=k:9", "--topic=t", "--cassandra_port=9142"]) == 2
    [targets] = checked
    assert targets["kafka_bootstrap"] == "k:9" and targets["cassandra"].port == 9142
    assert capsys.readouterr().err == "beam_cxone: stop here\n"


# ----- argv: one reader -----------------------------------------------------------------------------


def test_pipeline_args_know_what_was_given_even_at_its_default():
    parsed = cmdline.parse_pipeline_args(["--direct_num_workers=1", "--topic", "t", "--streaming",
                                          "--checkpointing_interval=5000"])
    assert parsed.given == {"direct_num_workers": 1, "topic": "t", "streaming": True,
                            "checkpointing_interval": "5000"}
    assert parsed.errors() == ["unknown option --checkpointing_interval=5000"]
    assert parsed.errors("FlinkRunner") == []  # Beam hands it to the Flink job server


def test_option_errors_lists_every_problem_in_command_line_order():
    assert cmdline.option_errors(
        ["--window_size_s=x", "--nope", "--sink", "xml", "--topic", "t", "--bounded", "--runner=X"]
    ) == [
        "argument --window_size_s: invalid int value: 'x'",
        "unknown option --nope",
        "argument --sink: invalid choice: 'xml' (choose from 'cassandra', 'jsonl')",
    ]


@pytest.mark.parametrize(
    ("argv", "command", "args"),
    [
        ([], "run", []),
        (["--topic=t"], "run", ["--topic=t"]),
        (["run", "--topic=t"], "run", ["--topic=t"]),
        (["backfill", "--input=x"], "backfill", ["--input=x"]),
        (["frobnicate", "--x"], None, ["frobnicate", "--x"]),
    ],
)
def test_split_command(argv, command, args):
    assert cmdline.split_command(argv) == (command, args)


@pytest.mark.parametrize(("argv", "level"), [([], "INFO"), (["--log_level=DEBUG"], "DEBUG"),
                                             (["--topic", "t", "--log_level", "ERROR"], "ERROR"),
                                             (["--log_level"], "INFO")])
def test_log_level(argv, level):
    assert cmdline.log_level(argv) == level


# ----- help and a quiet command line ----------------------------------------------------------------


def test_help_is_the_projects_usage_for_every_command(capsys):
    top = _cli("--help")  # the real process: nothing foreign on stderr either
    assert top.returncode == 0, top.stderr
    assert top.stdout.startswith("usage: python -m beam_cxone [run]")
    for name in cmdline.COMMANDS:  # every command, with its one line
        assert f"\n  {name:<9} " in top.stdout
    for option in ("--topic", "--bootstrap_servers", "--runner", "--window_size_s", "--cassandra_hosts",
                   "--run_seconds", "--status_interval_s", "--cxone_validate", "--bounded"):
        assert option in top.stdout
    assert top.stderr == ""
    for name, options in (("run", ["--topic"]), ("backfill", ["--template", "--input", "--topic"]),
                          ("schema", ["--cassandra_keyspace"]), ("generate", ["--count", "--seed"]),
                          ("validate", ["--cxone_skill_ids"]), ("report", ["--since", "--png"])):
        assert commands.main([name, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: python -m beam_cxone {'[run]' if name == 'run' else name}"), out
        assert all(option in out for option in options), (name, out)


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


def test_foreign_noise_is_dropped_at_the_handler_and_shown_at_debug():
    root = logging.getLogger()
    level = root.level
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        commands.configure_logging("INFO")
        commands.configure_logging("INFO")  # one filter however often it is called
        assert sum(type(f).__name__ == "_ForeignNoise" for f in handler.filters) == 1

        def shown(name: str, msg: str) -> bool:
            record = logging.LogRecord(name, logging.WARNING, __file__, 1, msg, None, None)
            return bool(handler.filter(record))

        assert not shown("apache_beam.utils.subprocess_server",
                         "Really starting service at localhost:1 with cmd: ('prism',)")
        assert not shown("apache_beam.utils.subprocess_server", "Really destroying service at localhost:1")
        assert not shown("PrismRunner", "empty transform, with payload and identical input and output "
                                        "pcollection (urn='beam:transform:pickled_python:v1')")
        assert shown("apache_beam.utils.subprocess_server", "Error bringing up service (attempt 1 of 3)")
        assert shown("PrismRunner", "job failed")
        assert shown("beam_cxone", "Really starting service at")  # only the named loggers
        commands.configure_logging("DEBUG")
        assert shown("apache_beam.utils.subprocess_server", "Really starting service at localhost:1")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _closed_port() -> int:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_schema_against_an_unreachable_cassandra_is_one_line(capsys):
    port = _closed_port()
    assert commands.main(["schema", f"--cassandra_port={port}", "--cassandra_keyspace=ks"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"beam_cxone schema: cannot create the schema in ks on 127.0.0.1:{port}: "
                          "NoHostAvailable")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "first"),
    [
        (["schema", "--cassandra_port={port}"], "beam_cxone schema: cannot create the schema"),
        (["report", "--cassandra_port={port}"], "beam_cxone report: cannot read cxone_analytics"),
        (["backfill", "--input=/nonexistent/*.jsonl", "--sink=jsonl", "--output_dir=/nonexistent"],
         "beam_cxone backfill: invalid options:"),
        (["validate", "--cxone_issuer=http://127.0.0.1:{port}"], "beam_cxone validate: "),
    ],
)
def test_a_refusal_is_its_own_lines_and_nothing_foreign(argv, first, no_cxone_env):
    # The real process: no Beam import warning, no driver traceback, the refusal alone on stderr.
    port = _closed_port()
    done = _cli(*[a.format(port=port) for a in argv], "--log_level=ERROR")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(first.format(port=port)), done.stderr
    assert "Traceback" not in done.stderr and "apitools" not in done.stderr
    assert "WARNING" not in done.stderr, done.stderr


def test_a_bounded_run_without_its_brokers_is_one_line(capsys, caplog, monkeypatch):
    # The range's offsets are needed before anything runs; the client's own connection errors
    # (logged at ERROR, several a second, until it gives up) are held back.
    from kafka.errors import KafkaTimeoutError

    from beam_cxone import backfill as lib

    def unreachable(cfg):
        logging.getLogger("kafka.net.manager").error("Connection failed: 111 ECONNREFUSED")
        raise KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:9']")

    monkeypatch.setattr(lib, "kafka_range_records", unreachable)
    assert commands.main(["--bounded", "--bootstrap_servers=127.0.0.1:9", "--topic=t", "--sink=jsonl",
                          "--output_dir=/nonexistent", "--log_level=ERROR"]) == 2
    assert capsys.readouterr().err == (
        "beam_cxone: cannot read the offsets of t from 127.0.0.1:9: KafkaTimeoutError: "
        "KafkaTimeoutError: Unable to bootstrap from ['127.0.0.1:9']\n")
    assert "ECONNREFUSED" not in caplog.text
