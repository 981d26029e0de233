"""Issue 16: everything end to end on the SECURED twins of the stack - Kafka over SASL_SSL
(SCRAM-SHA-512, a throwaway CA) and Cassandra with a password over client TLS - started by
stack/kafka-secure.sh and stack/cassandra-secure.sh (the `secured_stack` fixture).

  * `schema`, `generate`, the streaming job (exact rows of tests/reference.py, dead letters also on a
    dead-letter topic, CXone validated against the local stand-in with a 0600 credentials file), a
    Kafka-range `backfill` into another keyspace (the same rows) and `report`, every one through the
    real command line with the credentials in its environment only;
  * no secret (SASL and Cassandra passwords, CXone secrets, bearer and refresh tokens) in any output at
    DEBUG, in the dead letters, in the metrics, on any command line seen by `ps` during the run, or in
    the job's pipeline proto (its pickled DoFns decoded);
  * each wrong setting stops the command before anything is submitted, in one line naming the service
    and the cause: wrong passwords, an unknown CA, plaintext to a TLS port, an expired certificate.
"""

from __future__ import annotations

import base64
import bz2
import contextlib
import json
import re
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from kafka import KafkaConsumer

from beam_cxone import options as opts
from beam_cxone.commands import backfill as backfill_command
from beam_cxone.commands import run as run_command
from beam_cxone.commands.cmdline import runner_args
from beam_cxone.io.cassandra_schema import create_schema
from beam_cxone.io.cassandra_schema import drop_keyspace
from beam_cxone.io.cassandra_schema import read_rows
from beam_cxone.io.kafka import create_topic
from beam_cxone.pipelines.jobs import build_streaming
from beam_cxone.redact import REDACT_OFF_ENV
from beam_cxone.tables import DEAD_LETTERS
from tests.integration.conftest import SecuredStack
from tests.integration.streaming_support import PARTITIONS
from tests.integration.streaming_support import REPO
from tests.integration.streaming_support import Job
from tests.integration.streaming_support import expected_dead_letters
from tests.integration.streaming_support import expected_rows
from tests.integration.streaming_support import job_args
from tests.integration.streaming_support import table_rows
from tests.integration.streaming_support import trace
from tests.support.cxone_stub import CxoneStub
from tests.support.tcp import tcp_server

pytestmark = pytest.mark.integration

COUNT, SEED = 600, 16  # `generate --count --seed` publishes exactly trace(COUNT, SEED)
EVERY_WINDOW = 1 << 62  # after a drain every window is final: compare them all
RUN_SECONDS = 20


# ----- helpers ------------------------------------------------------------------------------------


def beam_cxone(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    """`python -m beam_cxone ARGS` with exactly `env`; stdout and stderr as text."""
    return subprocess.run([sys.executable, "-m", "beam_cxone", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def consume_all(stack: SecuredStack, topic: str) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000,
                             **stack.kafka_kwargs())
    try:
        return [(m.key, m.value) for m in consumer]
    finally:
        consumer.close()


class ProcessListWatch:
    """Samples every process's command line (`ps -eo args`) until stopped: what `ps` would show."""

    def __init__(self, interval_s: float = 0.5):
        self.lines: set[str] = set()
        self.samples = 0
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcessListWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["ps", "-eww", "-o", "args="], capture_output=True, text=True).stdout
            self.lines.update(out.splitlines())
            self.samples += 1
            self._stop.wait(self._interval_s)

    def text(self) -> str:
        return "\n".join(sorted(self.lines))


def decoded_payloads(blob: bytes, depth: int = 3) -> list[bytes]:
    """`blob` plus every base64 run in it decoded, and decompressed when it is bz2 or zlib (how Beam
    stores pickled DoFns and coders inside the pipeline proto), recursively."""
    found = [blob]
    if depth == 0:
        return found
    for match in re.finditer(rb"[A-Za-z0-9+/]{24,}={0,2}", blob):
        try:
            raw = base64.b64decode(match.group(0), validate=True)
        except ValueError:
            continue
        for unpack in (bz2.decompress, zlib.decompress, lambda b: b):
            try:
                found.extend(decoded_payloads(unpack(raw), depth - 1))
                break
            except (OSError, ValueError, zlib.error):
                continue
    return found


def leaks(text: str, secrets_: list[str]) -> list[str]:
    """The secrets found in `text`, shown by their first 3 characters only."""
    return [s[:3] + "..." for s in secrets_ if s and s in text]


@contextlib.contextmanager
def cxone_credentials(tmp_path: Path) -> Iterator[tuple[CxoneStub, Path]]:
    """The CXone stand-in and a 0600 credentials file for it."""
    with CxoneStub() as stub:
        path = tmp_path / "cxone.json"
        path.write_text(json.dumps(stub.env()))
        path.chmod(0o600)
        yield stub, path


@contextlib.contextmanager
def expired_tls_endpoint(stack: SecuredStack) -> Iterator[int]:
    """A TLS endpoint on a free port presenting the stack's EXPIRED certificate (signed by the trusted
    CA, name 127.0.0.1): what a Cassandra node with an expired certificate looks like to a client up
    to the end of the handshake, where the client stops. The port it listens on is yielded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(stack.tls_dir / "expired.pem"), str(stack.tls_dir / "server.key"))

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(5)
        context.wrap_socket(conn, server_side=True).close()  # the client refuses it

    with tcp_server(handle) as port:
        yield port


@pytest.fixture
def keyspaces(secured_stack: SecuredStack) -> Iterator[list[str]]:
    """Names for keyspaces of this test on the secured node; those created are dropped afterwards."""
    names: list[str] = []
    yield names
    with secured_stack.login():
        for name in names:
            with contextlib.suppress(Exception):
                drop_keyspace(secured_stack.cassandra_config(name))


# ----- end to end --------------------------------------------------------------------------------


def test_every_command_end_to_end_over_sasl_ssl_and_tls_without_leaking_a_secret(
    secured_stack, keyspaces, tmp_path
):
    stack = secured_stack
    stream_ks, backfill_ks = f"cxone_sec_{secrets.token_hex(3)}", f"cxone_secbf_{secrets.token_hex(3)}"
    keyspaces.extend([stream_ks, backfill_ks])
    topic, dead_topic = f"sec-{secrets.token_hex(4)}", f"sec-dead-{secrets.token_hex(4)}"
    records, _ = trace(count=COUNT, seed=SEED)
    values = [v for _, v in records]
    expected, expected_dead = expected_rows(values), expected_dead_letters(values)
    assert expected_dead, "the trace should hold malformed records"
    outputs: dict[str, str] = {}

    with cxone_credentials(tmp_path) as (stub, credentials_file):
        # The log redaction net off: the code itself must leak nothing (the net: test_redact.py).
        env = stack.process_env(OAUTHLIB_INSECURE_TRANSPORT="1", HTTP_PROXY=None, HTTPS_PROXY=None,
                                http_proxy=None, https_proxy=None, NO_PROXY="127.0.0.1",
                                **{REDACT_OFF_ENV: "0"})
        with ProcessListWatch() as ps:
            # schema: the keyspace and tables, logged in over TLS.
            done = beam_cxone(["schema", f"--cassandra_keyspace={stream_ks}", *stack.cassandra_flags(),
                               "--log_level=DEBUG"], env)
            outputs["schema"] = done.stdout + done.stderr
            assert done.returncode == 0, outputs["schema"][-3000:]
            with stack.login():
                create_schema(stack.cassandra_config(backfill_ks))
                create_topic(stack.bootstrap, dead_topic, 1)

            # generate: the trace onto a new topic of the secured broker.
            done = beam_cxone(["generate", f"--bootstrap_servers={stack.bootstrap}", f"--topic={topic}",
                               f"--partitions={PARTITIONS}", f"--count={COUNT}", f"--seed={SEED}",
                               "--quiet"], env)
            outputs["generate"] = done.stdout + done.stderr
            assert done.returncode == 0, outputs["generate"][-3000:]
            assert f"published {COUNT} records to {topic}" in done.stdout

            # The streaming job on Prism, DEBUG logs, CXone checked first; it drains by itself.
            job = Job(job_args(stack.bootstrap, topic, stream_ks, *stack.cassandra_flags(),
                               f"--run_seconds={RUN_SECONDS}", f"--dead_letter_topic={dead_topic}",
                               "--log_level=DEBUG", "--status_interval_s=2", "--cxone_validate",
                               f"--cxone_issuer={stub.url}", f"--cxone_credentials_file={credentials_file}"),
                      tmp_path / "job.log", env=env)
            try:
                job.proc.wait(timeout=RUN_SECONDS + 150)
            finally:
                job.stop()
            outputs["job"] = job.output()
            assert job.proc.returncode == 0, outputs["job"][-4000:]
            assert "job state: DONE" in outputs["job"], outputs["job"][-4000:]
            assert "preflight: Kafka 127.0.0.1:" in outputs["job"]  # it did check, and passed
            assert stub.hits["token"] >= 1  # CXone was validated with the file's credentials

            # backfill: the same topic as a Kafka range, into the other keyspace.
            done = beam_cxone(["backfill", f"--bootstrap_servers={stack.bootstrap}", f"--topic={topic}",
                               f"--cassandra_keyspace={backfill_ks}", *stack.cassandra_flags(),
                               "--no_progress", "--log_level=DEBUG"], env, timeout=300)
            outputs["backfill"] = done.stdout + done.stderr
            assert done.returncode == 0, outputs["backfill"][-4000:]

            # report: read back over TLS with the password.
            done = beam_cxone(["report", f"--cassandra_keyspace={stream_ks}", *stack.cassandra_flags()],
                              env)
            outputs["report"] = done.stdout + done.stderr
            assert done.returncode == 0, outputs["report"][-3000:]
        cxone_secrets = stub.secrets()

    with stack.login():
        assert table_rows(stack.cassandra_config(stream_ks), EVERY_WINDOW) == expected
        assert table_rows(stack.cassandra_config(backfill_ks), EVERY_WINDOW) == expected
        dead_rows = read_rows(stack.cassandra_config(stream_ks), DEAD_LETTERS)
    assert sorted((r["reason"], r["payload"]) for r in dead_rows) == expected_dead
    on_topic = consume_all(stack, dead_topic)
    assert sorted((json.loads(v)["reason"], json.loads(v)["payload"]) for _, v in on_topic) == expected_dead
    assert stream_ks in outputs["report"]

    # No secret anywhere: outputs at DEBUG (metrics included), dead letters, command lines.
    every_secret = stack.secrets() + cxone_secrets
    assert len(cxone_secrets) >= 4  # client secret, access key secret, Basic header, issued tokens
    assert ps.samples > 10 and any("beam_cxone" in line for line in ps.lines)
    places = {**outputs, "ps": ps.text(), "dead letter rows": json.dumps(dead_rows, default=str),
              "dead letter topic": repr(on_topic)}
    found = {place: leaks(text, every_secret) for place, text in places.items()}
    assert not any(found.values()), found


def test_the_pipeline_graph_holds_no_secret(secured_stack, keyspaces, monkeypatch):
    """The job's graph, built as the command line builds it with the credentials in the environment:
    every pickled DoFn and coder in its proto decoded; none holds a secret (they are read on the
    worker), while the graph does hold the settings that are not secret."""
    stack = secured_stack
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    keyspace = f"cxone_graph_{secrets.token_hex(3)}"
    topic = f"sec-graph-{secrets.token_hex(4)}"
    create_topic(stack.bootstrap, topic, 2)
    argv = [f"--bootstrap_servers={stack.bootstrap}", f"--topic={topic}", f"--cassandra_keyspace={keyspace}",
            *stack.cassandra_flags(), f"--dead_letter_topic={topic}", "--runner=PrismRunner",
            "--prism_location=/nonexistent/prism"]
    options = PipelineOptions(runner_args(argv, streaming=True))
    settings = opts.job_settings(options)
    p = beam.Pipeline(options=options)
    build_streaming(p, settings.kafka, settings.analytics, settings.sink, settings.dead_letter_topic)
    proto = p.to_runner_api().SerializeToString()
    decoded = decoded_payloads(proto)
    assert any(keyspace.encode() in blob for blob in decoded[1:]), "the decoder saw no DoFn"
    assert any(stack.ca_file.encode() in blob for blob in decoded[1:])
    for secret in stack.secrets():
        assert not any(secret.encode() in blob for blob in decoded)
    options_text = json.dumps(options.get_all_options(), default=str)
    assert not leaks(options_text, stack.secrets())


# ----- wrong settings: one line, before anything is submitted --------------------------------------


def _expired_cassandra(stack: SecuredStack, port: int) -> list[str]:
    return [f"--cassandra_port={port}", "--cassandra_tls", f"--cassandra_ca_file={stack.ca_file}"]


FAILURES = {
    # case: (environment changes, bootstrap, cassandra flags, expected start of the message)
    "kafka_wrong_password": (
        {"KAFKA_SASL_PLAIN_PASSWORD": "not-the-password"}, "ok", "ok",
        "Kafka {bootstrap}: SASL authentication failed for user 'beam-cxone' (SCRAM-SHA-512): "
        "Authentication failed during authentication due to invalid credentials with SASL mechanism "
        "SCRAM-SHA-512; check KAFKA_SASL_PLAIN_USERNAME and KAFKA_SASL_PLAIN_PASSWORD"),
    "cassandra_wrong_password": (
        {"CASSANDRA_PASSWORD": "not-the-password"}, "ok", "ok",
        "Cassandra 127.0.0.1:{cassandra_port}: authentication failed for user 'beam_cxone' (Provided "
        "username beam_cxone and/or password are incorrect); check CASSANDRA_USERNAME and "
        "CASSANDRA_PASSWORD"),
    "kafka_unknown_ca": (
        {"KAFKA_SSL_CAFILE": "{other_ca}"}, "ok", "ok",
        "Kafka {bootstrap}: its TLS certificate is signed by an unknown CA (self-signed certificate in "
        "certificate chain): KAFKA_SSL_CAFILE={other_ca} does not hold the CA that signed it"),
    "cassandra_unknown_ca": (
        {}, "ok", "other_ca",
        "Cassandra 127.0.0.1:{cassandra_port}: its TLS certificate is signed by an unknown CA "
        "(self-signed certificate in certificate chain): --cassandra_ca_file={other_ca} does not hold "
        "the CA that signed it"),
    "kafka_plaintext_to_tls": (
        {"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}, "ok", "ok",
        "Kafka {bootstrap}: the port speaks TLS (it answered with a TLS alert to plaintext) but "
        "KAFKA_SECURITY_PROTOCOL=PLAINTEXT: set SASL_SSL or SSL and KAFKA_SSL_CAFILE"),
    "cassandra_plaintext_to_tls": (
        {}, "ok", "plaintext",
        "Cassandra 127.0.0.1:{cassandra_port}: the node closed the connection on a plaintext CQL "
        "request: it expects TLS; add --cassandra_tls and --cassandra_ca_file"),
    "kafka_expired_certificate": (
        {}, "expired", "ok",
        "Kafka {expired}: its TLS certificate has expired (valid 20"),
    "cassandra_expired_certificate": (
        {}, "ok", "expired",
        "Cassandra 127.0.0.1:{expired_port}: its TLS certificate has expired (valid 20"),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_a_wrong_setting_is_one_line_before_the_job_is_built(secured_stack, case, monkeypatch, capsys):
    stack = secured_stack
    env_changes, kafka_which, cassandra_which, expected = FAILURES[case]
    with expired_tls_endpoint(stack) as expired_port:
        fill = {"bootstrap": stack.bootstrap, "cassandra_port": stack.cassandra_port,
                "other_ca": stack.other_ca_file, "expired": stack.expired_bootstrap,
                "expired_port": expired_port}
        for name, value in stack.process_env(**{k: v.format(**fill) for k, v in env_changes.items()}).items():
            monkeypatch.setenv(name, value)
        bootstrap = stack.expired_bootstrap if kafka_which == "expired" else stack.bootstrap
        cassandra = {
            "ok": stack.cassandra_flags(),
            "other_ca": [f"--cassandra_port={stack.cassandra_port}", "--cassandra_tls",
                         f"--cassandra_ca_file={stack.other_ca_file}"],
            "plaintext": [f"--cassandra_port={stack.cassandra_port}"],
            "expired": _expired_cassandra(stack, expired_port),
        }[cassandra_which]
        built = []
        monkeypatch.setattr(run_command, "build_streaming", lambda *a, **k: built.append(a))
        monkeypatch.setattr(run_command.beam.Pipeline, "run", lambda *a, **k: built.append(a))
        code = run_command.main(["--runner=PrismRunner", "--prism_location=/nonexistent/prism",
                                  f"--bootstrap_servers={bootstrap}", "--topic=never-read",
                                  "--cassandra_keyspace=never_written", *cassandra])
        err = capsys.readouterr().err
        assert code == 2 and built == [], err
        assert err.count("\n") == 1, err
        assert err.startswith("beam_cxone: " + expected.format(**fill)), err
        assert not leaks(err, stack.secrets() + ["not-the-password"])


def test_the_command_line_reports_a_wrong_password_at_once(secured_stack, tmp_path):
    """The real `python -m beam_cxone` process: exit 2 with the broker's own refusal, found by the
    check before the job starts (the Kafka client alone would retry for 30 s and then report a
    timeout), one line on stderr, no traceback. No clock: the message says which path answered."""
    stack = secured_stack
    env = stack.process_env(KAFKA_SASL_PLAIN_PASSWORD="not-the-password")
    done = beam_cxone([f"--bootstrap_servers={stack.bootstrap}", "--topic=never-read",
                       "--cassandra_keyspace=never_written", *stack.cassandra_flags()], env, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"beam_cxone: Kafka {stack.bootstrap}: SASL authentication failed for user "
                           "'beam-cxone'"), done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "timed out" not in done.stderr.lower() and "timeout" not in last.lower()
    assert not leaks(done.stdout + done.stderr, stack.secrets() + ["not-the-password"])


def test_a_backfill_checks_before_it_reads(secured_stack, monkeypatch, capsys, tmp_path):
    """A Kafka-range backfill with a wrong Cassandra password, and one with a wrong Kafka password:
    each stops with one line before the backfill looks at offsets or builds anything."""
    stack = secured_stack
    for name, value in stack.process_env(CASSANDRA_PASSWORD="not-the-password").items():
        monkeypatch.setenv(name, value)
    ran = []
    monkeypatch.setattr(backfill_command, "_execute", lambda *a, **k: ran.append(a) or 0)
    args = ["--bootstrap_servers=" + stack.bootstrap, "--topic=never-read",
            "--cassandra_keyspace=never_written", *stack.cassandra_flags()]
    assert backfill_command.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"beam_cxone backfill: Cassandra 127.0.0.1:{stack.cassandra_port}: authentication "
                          "failed for user 'beam_cxone'") and err.count("\n") == 1, err
    monkeypatch.setenv("CASSANDRA_PASSWORD", stack.env["CASSANDRA_PASSWORD"])
    monkeypatch.setenv("KAFKA_SASL_PLAIN_PASSWORD", "not-the-password")
    assert backfill_command.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"beam_cxone backfill: Kafka {stack.bootstrap}: SASL authentication failed") \
        and err.count("\n") == 1, err
    # Files into Cassandra: Kafka is not used, so not checked (a wrong Kafka password is no error).
    path = tmp_path / "in.jsonl"
    path.write_text("{}\n")
    assert backfill_command.main([f"--input={path}", "--cassandra_keyspace=never_written",
                             *stack.cassandra_flags()]) == 0
    assert ran and "beam_cxone backfill:" not in capsys.readouterr().err


def test_generate_checks_before_it_publishes(secured_stack, monkeypatch, capsys):
    from beam_cxone.commands.generate import main as run_generate_command

    stack = secured_stack
    for name, value in stack.process_env(KAFKA_SASL_PLAIN_PASSWORD="not-the-password").items():
        monkeypatch.setenv(name, value)
    code = run_generate_command([f"--bootstrap_servers={stack.bootstrap}", "--topic=never-written",
                                 "--count=10", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"beam_cxone generate: Kafka {stack.bootstrap}: SASL authentication failed "
                          "for user 'beam-cxone'"), err
