"""The start-up check against local stand-ins (the real secured services: tests/integration/
test_secured.py): what it checks for which command line, one-line errors, unreachable is a warning."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from beam_cxone import preflight
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.kafka.config import consumer_config_from_env
from beam_cxone.secret_files import SecretFileError
from tests.support.tcp import tcp_server

KAFKA_ENV = ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_PLAIN_USERNAME",
             "KAFKA_SASL_PLAIN_PASSWORD", "KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE",
             "CASSANDRA_USERNAME", "CASSANDRA_PASSWORD")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in KAFKA_ENV:
        monkeypatch.delenv(name, raising=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def answering(reply: bytes | None, hold: bool = False) -> Iterator[int]:
    """A TCP server on a free port that reads what comes, sends `reply` (None: nothing) and closes
    (with `hold`, keeps the connection open and silent until the test ends)."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(2)
        conn.recv(4096)
        if reply:
            conn.sendall(reply)
        if hold:
            stop.wait(10)

    with tcp_server(handle) as port:
        yield port


TLS_ALERT = b"\x15\x03\x03\x00\x02\x02\x50"  # what a Kafka TLS listener answers to plaintext


# ----- outcomes --------------------------------------------------------------------------------------


def test_an_unreachable_service_is_a_warning_not_an_error(caplog):
    kafka_port, cassandra_port = free_port(), free_port()
    cfg = CassandraConfig(hosts=("127.0.0.1",), port=cassandra_port)
    with caplog.at_level(logging.WARNING, logger="beam_cxone.preflight"):
        message = preflight.preflight_message(kafka_bootstrap=f"127.0.0.1:{kafka_port}", cassandra=cfg)
    assert message is None
    assert f"Kafka 127.0.0.1:{kafka_port}: cannot connect (Connection refused); starting anyway" \
        in caplog.text
    assert f"Cassandra 127.0.0.1:{cassandra_port}: cannot connect" in caplog.text


def test_a_service_that_does_not_answer_in_time_is_a_warning(caplog, monkeypatch):
    with answering(None, hold=True) as port, caplog.at_level(logging.WARNING, "beam_cxone.preflight"):
        assert preflight.preflight_message(kafka_bootstrap=f"127.0.0.1:{port}", timeout_s=0.3) is None
        monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
        assert preflight.preflight_message(kafka_bootstrap=f"127.0.0.1:{port}", timeout_s=0.3) is None
    assert f"Kafka 127.0.0.1:{port}: no answer within 0.3 s; starting anyway" in caplog.text
    assert f"Kafka 127.0.0.1:{port}: no TLS handshake within 0.3 s; starting anyway" in caplog.text


def test_plaintext_kafka_client_on_a_tls_port():
    with answering(TLS_ALERT) as port:
        message = preflight.preflight_message(kafka_bootstrap=f"127.0.0.1:{port}")
    assert message == (
        f"Kafka 127.0.0.1:{port}: the port speaks TLS (it answered with a TLS alert to plaintext) but "
        "KAFKA_SECURITY_PROTOCOL=PLAINTEXT: set SASL_SSL or SSL and KAFKA_SSL_CAFILE"
    )


def test_tls_kafka_client_on_a_plaintext_port(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    with answering(None) as port:
        message = preflight.preflight_message(kafka_bootstrap=f"127.0.0.1:{port}")
    assert message.startswith(f"Kafka 127.0.0.1:{port}: the port does not speak TLS (")
    assert message.endswith("it is a plaintext port; KAFKA_SECURITY_PROTOCOL=SSL expects a TLS listener")


def test_plaintext_cassandra_client_on_a_tls_port():
    with answering(None) as port:
        cfg = CassandraConfig(hosts=("127.0.0.1",), port=port)
        message = preflight.preflight_message(cassandra=cfg)
    assert message == (
        f"Cassandra 127.0.0.1:{port}: the node closed the connection on a plaintext CQL request: it "
        "expects TLS; add --cassandra_tls and --cassandra_ca_file"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_TLS"},
         "Kafka: KAFKA_SECURITY_PROTOCOL=SASL_TLS is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
         "Kafka: KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs KAFKA_SASL_MECHANISM (PLAIN, "
         "SCRAM-SHA-256, SCRAM-SHA-512, ...)"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
          "KAFKA_SASL_PLAIN_USERNAME": "app"},
         "Kafka: KAFKA_SECURITY_PROTOCOL=SASL_SSL with SCRAM-SHA-512 needs KAFKA_SASL_PLAIN_USERNAME "
         "and KAFKA_SASL_PLAIN_PASSWORD"),
    ],
)
def test_kafka_settings_that_cannot_work(monkeypatch, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert preflight.preflight_message(kafka_bootstrap=f"127.0.0.1:{free_port()}") == expected


def test_a_cassandra_login_needs_both_variables(monkeypatch):
    monkeypatch.setenv("CASSANDRA_USERNAME", "app")
    with answering(b"\x84\x00\x00\x00\x06\x00\x00\x00\x00") as port:  # a plaintext CQL answer
        message = preflight.preflight_message(
            cassandra=CassandraConfig(hosts=("127.0.0.1",), port=port))
    assert message == "Cassandra: set both CASSANDRA_USERNAME and CASSANDRA_PASSWORD, or neither"


# ----- a client key others can read ------------------------------------------------------------------


def test_a_kafka_client_key_others_can_read_is_refused_in_one_line(tmp_path, monkeypatch):
    key = tmp_path / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n")
    key.chmod(0o644)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", str(key))
    expected = (f"Kafka client key (KAFKA_SSL_KEYFILE) {key} is open to group or others (mode 0644, "
                f"must be 0600 or narrower): refusing to use it; run chmod 600 {key}")
    with pytest.raises(SecretFileError) as info:
        consumer_config_from_env()
    assert str(info.value) == expected
    assert preflight.preflight_message(kafka_bootstrap="127.0.0.1:9") == f"Kafka: {expected}"
    key.chmod(0o600)
    assert dict(consumer_config_from_env())["ssl_keyfile"] == str(key)
