"""The log redaction net: known secrets never reach a handler, from any logger at any level."""

from __future__ import annotations

import logging

import pytest

from beam_cxone import redact

SECRET = "s3cret-Pa55word=="
TOKEN = "eyJhbGciOi.token-value.sig"


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def collect():
    handler = Collect()
    logger = logging.getLogger("kafka.admin.client")  # a third-party logger, at DEBUG
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger, handler
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def test_environment_secrets_are_masked_in_messages_arguments_and_tracebacks(collect):
    logger, handler = collect
    redact.install({"KAFKA_SASL_PLAIN_PASSWORD": SECRET, "CASSANDRA_PASSWORD": "short"})
    logger.debug("Starting KafkaAdminClient with configuration: %s", {"sasl_plain_password": SECRET})
    logger.info(f"plain {SECRET}")
    try:
        raise RuntimeError(f"bad password {SECRET}")
    except RuntimeError:
        logger.exception("failed")
    text = "\n".join(handler.lines)
    assert SECRET not in text
    assert "'sasl_plain_password': '***'" in text and "plain ***" in text
    assert "RuntimeError: bad password ***" in text
    assert "short" not in redact._SECRETS  # too short to mask safely: never a real secret


def test_registered_values_are_masked_too(collect):
    logger, handler = collect
    redact.install({})
    redact.register(TOKEN, None, "")
    logger.warning("Authorization: Bearer %s", TOKEN)
    assert handler.lines == ["WARNING kafka.admin.client Authorization: Bearer ***"]


def test_off_switch_and_uninstall(collect):
    logger, handler = collect
    redact.install({"CASSANDRA_PASSWORD": SECRET, redact.REDACT_OFF_ENV: "0"})
    logger.info("pw %s", SECRET)
    redact.install({"CASSANDRA_PASSWORD": SECRET})
    redact.uninstall()
    logger.info("pw %s", SECRET)
    assert handler.lines == [f"INFO kafka.admin.client pw {SECRET}"] * 2


def test_the_command_line_installs_the_net(monkeypatch):
    from beam_cxone import commands

    installed = []
    monkeypatch.setattr(commands, "install_log_redaction", lambda: installed.append(True))
    level = logging.getLogger().level
    try:
        commands.configure_logging("INFO")  # what main() does first, for every command
    finally:
        logging.getLogger().setLevel(level)
    assert installed == [True]
