"""The one exception hierarchy of the CXone client.

Every failure reaching a caller is a `CxoneError` whose `.reason` is a single line naming the cause,
so the `validate` command and the pipeline's pre-submit check can print it as is. Reasons are built
from ids, URLs and status codes only: no secret, token or response body is ever put in one.
"""

from __future__ import annotations

__all__ = [
    "CxoneAuthError",
    "CxoneConfigError",
    "CxoneError",
    "CxoneHttpError",
    "CxoneNotFoundError",
    "CxonePermissionError",
    "CxoneProtocolError",
    "CxoneUnavailableError",
]


class CxoneError(Exception):
    """Base class; `reason` is the one-line message shown to the operator."""

    def __init__(self, reason: str):
        # Newlines would break the one-line contract of the CLI and of log parsers.
        self.reason = " ".join(str(reason).split())
        super().__init__(self.reason)

    def __str__(self) -> str:
        return self.reason


class CxoneConfigError(CxoneError):
    """Missing or invalid options or credentials: fixable before anything is sent."""


class CxoneProtocolError(CxoneError):
    """CXone answered 2xx but the body is malformed JSON or lacks a required field."""

    def __init__(self, reason: str, *, field: str | None = None):
        super().__init__(reason)
        self.field = field


class CxoneUnavailableError(CxoneError):
    """Transient: 429, 5xx gateway errors, a timeout or a refused connection.

    Raised per attempt inside the retry loop (`retry_after` carries the server's hint), and once
    more, with the attempt count in the reason, when the attempts are used up.
    """

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


class CxoneHttpError(CxoneError):
    """A final (never retried) HTTP status."""

    def __init__(self, reason: str, *, status: int | None = None):
        super().__init__(reason)
        self.status = status


class CxoneAuthError(CxoneHttpError):
    """The token endpoint refused the credentials, or the API refused a freshly issued token."""


class CxonePermissionError(CxoneHttpError):
    """HTTP 403: the role of the access key's user lacks a permission. Never retried."""


class CxoneNotFoundError(CxoneHttpError):
    """HTTP 404 on a configured resource: the id is wrong for this tenant."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = 404,
        kind: str | None = None,
        resource_id: str | None = None,
    ):
        super().__init__(reason, status=status)
        self.kind = kind
        self.resource_id = resource_id
