"""Retry policy and response helpers, without a server."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from beam_cxone.cxone.errors import CxoneHttpError
from beam_cxone.cxone.errors import CxoneProtocolError
from beam_cxone.cxone.errors import CxoneUnavailableError
from beam_cxone.cxone.transport import RetryPolicy
from beam_cxone.cxone.transport import require_field
from beam_cxone.cxone.transport import retry_after_seconds


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        ("nan", None),
        ("soon", None),
        ("Wed, 01 Jan 2025 00:00:07 GMT", 7.0),  # HTTP-date, 7 s after `now`
        ("Tue, 31 Dec 2024 23:59:00 GMT", 0.0),  # already past
    ],
)
def test_retry_after_seconds(header, expected):
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds(header, now=now) == expected


class Flaky:
    """Fails with the given errors, then returns "ok"."""

    def __init__(self, *errors: Exception):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def busy(retry_after: float | None = None) -> CxoneUnavailableError:
    return CxoneUnavailableError("skill 1: HTTP 503", status=503, retry_after=retry_after)


def test_backoff_is_exponential_with_bounded_jitter(sleeps):
    policy = RetryPolicy(attempts=5, backoff_s=1.0, jitter_s=1.0, backoff_max_s=30, sleep=sleeps)
    fn = Flaky(busy(), busy(), busy(), busy())
    assert policy.run(fn, "skill 1") == "ok"
    assert fn.calls == 5
    # n-th wait in [2**(n-1), 2**(n-1) + jitter]
    for n, wait in enumerate(sleeps, start=1):
        assert 2 ** (n - 1) <= wait <= 2 ** (n - 1) + 1.0


def test_backoff_is_capped(sleeps):
    policy = RetryPolicy(attempts=4, backoff_s=10.0, jitter_s=0.0, backoff_max_s=15, sleep=sleeps)
    policy.run(Flaky(busy(), busy(), busy()), "x")
    assert sleeps == [10.0, 15.0, 15.0]


def test_retry_after_is_honoured_exactly_and_capped(sleeps):
    policy = RetryPolicy(attempts=4, retry_after_max_s=60, sleep=sleeps)
    policy.run(Flaky(busy(3.0), busy(0.0), busy(3600.0)), "x")
    assert sleeps == [3.0, 0.0, 60.0]


def test_gives_up_after_the_attempts_with_the_count_in_the_reason(sleeps):
    fn = Flaky(*[busy()] * 10)
    with pytest.raises(CxoneUnavailableError) as info:
        RetryPolicy(attempts=3, sleep=sleeps).run(fn, "skill 1")
    assert fn.calls == 3 and len(sleeps) == 2
    assert info.value.reason == "skill 1: HTTP 503 (gave up after 3 attempts)"
    assert info.value.status == 503


def test_final_errors_are_not_retried(sleeps):
    fn = Flaky(CxoneHttpError("skill 1: HTTP 400", status=400))
    with pytest.raises(CxoneHttpError):
        RetryPolicy(sleep=sleeps).run(fn, "skill 1")
    assert fn.calls == 1 and sleeps == []


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"timeout_s": 0}])
def test_policy_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_require_field():
    assert require_field({"api_endpoint": "https://api"}, "api_endpoint", "x") == "https://api"
    for doc in ({}, {"api_endpoint": ""}, {"api_endpoint": 3}):
        with pytest.raises(CxoneProtocolError) as info:
            require_field(doc, "api_endpoint", "tenant API discovery")
        assert info.value.reason == "tenant API discovery: the answer has no api_endpoint"
        assert info.value.field == "api_endpoint"


def test_error_reason_is_one_line():
    assert CxoneHttpError("a\nb  c").reason == "a b c"
