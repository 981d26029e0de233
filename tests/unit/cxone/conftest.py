"""Fixtures: the CXone stand-in, a sleep recorder and a clean token cache per test."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest

from beam_cxone.cxone.client import CxoneClient
from beam_cxone.cxone.credentials import load_credentials
from beam_cxone.cxone.token import TOKEN_CACHE
from beam_cxone.cxone.transport import RetryPolicy
from tests.support.cxone_stub import CxoneStub


class SleepRecorder(list[float]):
    """Injected as the retry sleep: records each wait instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def _clean_token_cache() -> Iterator[None]:
    # The cache is process-wide by design; tests must not see each other's tokens.
    TOKEN_CACHE.clear()
    yield
    TOKEN_CACHE.clear()


@pytest.fixture
def cxone_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[CxoneStub]:
    """A running stand-in; oauthlib refuses http token URLs unless told this is a local test."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    with CxoneStub() as stub:
        yield stub


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make_client(
    cxone_stub: CxoneStub, sleeps: SleepRecorder
) -> Iterator[Callable[..., CxoneClient]]:
    """Builds clients on the stub with a recorded sleep; closes them after the test."""
    clients: list[CxoneClient] = []

    def build(
        *,
        grant: str = "password",
        attempts: int = 5,
        timeout_s: float = RetryPolicy.timeout_s,
        **kwargs: Any,
    ) -> CxoneClient:
        """The policy's own timeout unless a test of timeouts sets one (TIMEOUT_UNDER_TEST_S)."""
        creds = load_credentials(grant, None, cxone_stub.env())
        policy = RetryPolicy(attempts=attempts, timeout_s=timeout_s, sleep=sleeps)
        client = CxoneClient(cxone_stub.url, creds, grant=grant, policy=policy, **kwargs)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
