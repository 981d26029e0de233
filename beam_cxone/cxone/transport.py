"""HTTP to CXone: a timeout on every request, one status classification, one retry policy.

Discovery, the token request and the API calls all go through here, so they agree on what is
transient (429, 502-504, a timeout, a refused connection: retried with exponential backoff and
jitter, honouring `Retry-After`) and what is final (any other status, raised at once).
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import math
import time
from collections.abc import Callable
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import TypeVar
from urllib.parse import urlsplit

import requests
import tenacity

from beam_cxone.cxone.errors import CxoneAuthError
from beam_cxone.cxone.errors import CxoneHttpError
from beam_cxone.cxone.errors import CxoneNotFoundError
from beam_cxone.cxone.errors import CxonePermissionError
from beam_cxone.cxone.errors import CxoneProtocolError
from beam_cxone.cxone.errors import CxoneUnavailableError

__all__ = [
    "RETRY_STATUSES",
    "RetryPolicy",
    "Transport",
    "guard_network",
    "parse_json",
    "raise_for_status",
    "require_field",
    "retry_after_seconds",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")

# 429 and 503 are CXone's documented throttling answers; 502/504 come from its gateways and are
# just as transient.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
_USER_AGENT = "beam_cxone"


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of transient failures; `sleep` is injectable so tests record the waits.

    Without `Retry-After` the n-th wait is `backoff_s * 2**(n-1) + uniform(0, jitter_s)`, capped at
    `backoff_max_s`. A `Retry-After` is honoured exactly, up to `retry_after_max_s` so a confused
    server cannot park start-up for hours.
    """

    attempts: int = 5
    timeout_s: float = 10.0
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    jitter_s: float = 1.0
    retry_after_max_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")

    def run(self, fn: Callable[[], T], what: str) -> T:
        """Calls `fn` until it returns, raises a final error, or the attempts are used up."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(CxoneUnavailableError),
            sleep=self.sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            return retrying(fn)
        except CxoneUnavailableError as err:
            raise CxoneUnavailableError(
                f"{err.reason} (gave up after {self.attempts} attempts)",
                status=err.status,
                retry_after=err.retry_after,
            ) from None

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        assert retry_state.outcome is not None
        hint = getattr(retry_state.outcome.exception(), "retry_after", None)
        if hint is not None:
            return min(hint, self.retry_after_max_s)
        backoff = tenacity.wait_exponential_jitter(
            multiplier=self.backoff_s, max=self.backoff_max_s, jitter=self.jitter_s
        )
        return backoff(retry_state)


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    assert retry_state.outcome is not None and retry_state.next_action is not None
    _log.info(
        "%s; retrying in %.2f s (attempt %d failed)",
        retry_state.outcome.exception(),
        retry_state.next_action.sleep,
        retry_state.attempt_number,
    )


class Transport:
    """A requests session with CXone's headers and the retry policy; one per client."""

    def __init__(self, policy: RetryPolicy | None = None, session: requests.Session | None = None):
        self.policy = policy or RetryPolicy()
        self._session = session or requests.Session()
        self._session.headers.update({"Accept": "application/json", "User-Agent": _USER_AGENT})

    def get_json(
        self,
        url: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """GET `url` with retries; returns the JSON object or raises a CxoneError about `what`."""

        def once() -> dict[str, Any]:
            response = guard_network(
                lambda: self._session.get(
                    url, params=params, headers=headers, timeout=self.policy.timeout_s
                ),
                what=what,
                url=url,
                timeout_s=self.policy.timeout_s,
            )
            _log.debug("%s: GET %s -> HTTP %d", what, url, response.status_code)
            raise_for_status(response, what)
            return parse_json(response, what)

        return self.policy.run(once, what)

    def close(self) -> None:
        """Releases pooled connections."""
        self._session.close()


def guard_network(fn: Callable[[], T], *, what: str, url: str, timeout_s: float) -> T:
    """Turns timeouts and connection failures into transient errors (requests' text is dropped)."""
    try:
        return fn()
    except requests.Timeout:  # before ConnectionError: ConnectTimeout is both
        raise CxoneUnavailableError(f"{what}: no answer within {timeout_s:g} s") from None
    except requests.ConnectionError:
        host = urlsplit(url).netloc or url
        raise CxoneUnavailableError(f"{what}: cannot connect to {host}") from None


def raise_for_status(response: requests.Response, what: str) -> None:
    """Maps a non-2xx status to its error class; the caller adds resource-specific wording."""
    status = response.status_code
    if 200 <= status < 300:
        return
    label = f"{what}: HTTP {status}"
    if status in RETRY_STATUSES:
        raise CxoneUnavailableError(
            label,
            status=status,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    if status == 401:
        raise CxoneAuthError(label, status=status)
    if status == 403:
        raise CxonePermissionError(label, status=status)
    if status == 404:
        raise CxoneNotFoundError(label, status=status)
    raise CxoneHttpError(label, status=status)


def parse_json(response: requests.Response, what: str) -> dict[str, Any]:
    """The body as a JSON object, or CxoneProtocolError (the body itself is never quoted)."""
    try:
        doc = response.json()
    except ValueError:
        # from None: the decode error keeps the whole body, which may hold a token.
        raise CxoneProtocolError(f"{what}: malformed JSON in the answer") from None
    if not isinstance(doc, dict):
        raise CxoneProtocolError(f"{what}: expected a JSON object, got {type(doc).__name__}")
    return doc


def require_field(doc: Mapping[str, Any], field: str, what: str) -> str:
    """A non-empty string field, or CxoneProtocolError naming it."""
    value = doc.get(field)
    if not isinstance(value, str) or not value:
        raise CxoneProtocolError(f"{what}: the answer has no {field}", field=field)
    return value


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
