"""The unit tier runs without servers: the CLI's start-up check of Kafka and Cassandra
(`beam_cxone.preflight`, which connects to them) is replaced by a pass here; its own unit tests
(tests/unit/test_preflight.py) call the real one against local stand-ins, and the secured
integration tests run it against the real services.

The log redaction net (`beam_cxone.redact`), which `beam_cxone.commands.main` installs for the whole process, is
removed after each test, so a test that checks that a secret is never logged checks the code, not
the net."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from beam_cxone import redact
from beam_cxone.commands import common


@pytest.fixture(autouse=True)
def _no_preflight_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "preflight_message", lambda **_: None)


@pytest.fixture(autouse=True)
def _no_redaction_net() -> Iterator[None]:
    redact.uninstall()
    yield
    redact.uninstall()
