"""Access tokens: fetched with requests-oauthlib, cached per process, refreshed before expiry.

Every DoFn instance and thread of a worker shares one token per (issuer, client, access key): the
cache is module-level and each key has a lock, so concurrent callers wait for a single token
request instead of all hitting the token endpoint. A token is replaced `margin_s` before
`expires_in`, so no request leaves with a token about to lapse.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from oauthlib.oauth2 import BackendApplicationClient
from oauthlib.oauth2 import InsecureTransportError
from oauthlib.oauth2 import LegacyApplicationClient
from oauthlib.oauth2 import OAuth2Error
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from beam_cxone import redact
from beam_cxone.cxone.credentials import GRANT_PASSWORD
from beam_cxone.cxone.credentials import CxoneCredentials
from beam_cxone.cxone.discovery import discover_token_endpoint
from beam_cxone.cxone.errors import CxoneAuthError
from beam_cxone.cxone.errors import CxoneConfigError
from beam_cxone.cxone.errors import CxoneHttpError
from beam_cxone.cxone.errors import CxoneProtocolError
from beam_cxone.cxone.transport import Transport
from beam_cxone.cxone.transport import guard_network
from beam_cxone.cxone.transport import parse_json
from beam_cxone.cxone.transport import raise_for_status

__all__ = [
    "DEFAULT_MARGIN_S",
    "TOKEN_CACHE",
    "AccessToken",
    "TokenCache",
    "TokenProvider",
    "fetch_access_token",
]

_log = logging.getLogger(__name__)

# Refresh a minute early: covers clock skew and a request still in flight when the token lapses.
DEFAULT_MARGIN_S = 60.0
# CXone's documented lifetime, used only if a token response omits `expires_in`.
_DEFAULT_EXPIRES_IN_S = 3600.0
_WHAT = "token request"
# How a token endpoint says "wrong credentials" (RFC 6749 section 5.2 uses 400 and 401).
_REJECTED = frozenset({400, 401, 403})


def _drop_oauth_session_debug(record: logging.LogRecord) -> bool:
    """requests-oauthlib logs request headers (Basic auth), bodies (the access key secret) and
    the token response at DEBUG; none of that may reach a log."""
    return record.levelno > logging.DEBUG


# A logger's filters only see records logged on that logger, hence the module logger by name.
logging.getLogger("requests_oauthlib.oauth2_session").addFilter(_drop_oauth_session_debug)


@dataclasses.dataclass(frozen=True)
class AccessToken:
    """A bearer token and when it was obtained, on the cache's (monotonic) clock."""

    value: str
    expires_in: float
    obtained_at: float

    def __repr__(self) -> str:
        return f"AccessToken(value='***', expires_in={self.expires_in:g})"

    def fresh(self, now: float, margin_s: float) -> bool:
        """False once within the margin of expiry; a margin over half the lifetime is halved,
        or a short-lived token would be stale on arrival and fetched on every call."""
        margin = min(margin_s, self.expires_in / 2)
        return now < self.obtained_at + self.expires_in - margin


CacheKey = tuple[str, ...]


class TokenCache:
    """Thread-safe token cache; one lock per key so one slow tenant does not block another."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._guard = threading.Lock()
        self._locks: dict[CacheKey, threading.Lock] = {}
        self._tokens: dict[CacheKey, AccessToken] = {}

    def get(
        self,
        key: CacheKey,
        fetch: Callable[[], tuple[str, float]],
        margin_s: float = DEFAULT_MARGIN_S,
    ) -> AccessToken:
        """The cached token if fresh, else the result of `fetch()` (value, expires_in)."""
        with self._lock_for(key):
            token = self._tokens.get(key)
            if token is not None and token.fresh(self._clock(), margin_s):
                return token
            value, expires_in = fetch()
            token = AccessToken(value=value, expires_in=expires_in, obtained_at=self._clock())
            self._tokens[key] = token
            _log.debug("new CXone access token, expires in %g s", expires_in)
            return token

    def invalidate(self, key: CacheKey, token: AccessToken | None = None) -> None:
        """Drops the cached token; with `token`, only if it is still that one, so threads that
        all saw the same 401 cause a single new token request."""
        with self._lock_for(key):
            if token is None or self._tokens.get(key) is token:
                self._tokens.pop(key, None)

    def clear(self) -> None:
        """Forgets every token (tests, credential rotation)."""
        with self._guard:
            self._tokens.clear()

    def _lock_for(self, key: CacheKey) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


TOKEN_CACHE = TokenCache()


class TokenProvider:
    """Valid tokens for one issuer and set of credentials, through a shared TokenCache."""

    def __init__(
        self,
        issuer: str,
        credentials: CxoneCredentials,
        *,
        grant: str = GRANT_PASSWORD,
        transport: Transport,
        cache: TokenCache | None = None,
        margin_s: float = DEFAULT_MARGIN_S,
    ):
        self._issuer = issuer.rstrip("/")
        self._credentials = credentials
        self._grant = grant
        self._transport = transport
        self._cache = TOKEN_CACHE if cache is None else cache
        self._margin_s = margin_s
        self._token_endpoint: str | None = None
        self.key: CacheKey = (self._issuer, credentials.client_id, credentials.access_key_id or "")

    def token_endpoint(self) -> str:
        """Discovered once per provider."""
        if self._token_endpoint is None:
            self._token_endpoint = discover_token_endpoint(self._transport, self._issuer)
        return self._token_endpoint

    def get(self) -> AccessToken:
        """A token valid for at least the margin."""
        return self._cache.get(self.key, self._fetch, self._margin_s)

    def invalidate(self, token: AccessToken) -> None:
        """Called after a 401: the next get() authenticates again."""
        self._cache.invalidate(self.key, token)

    def _fetch(self) -> tuple[str, float]:
        url = self.token_endpoint()
        return self._transport.policy.run(
            lambda: fetch_access_token(
                url, self._credentials, self._grant, self._transport.policy.timeout_s
            ),
            _WHAT,
        )


def fetch_access_token(
    token_url: str, credentials: CxoneCredentials, grant: str, timeout_s: float
) -> tuple[str, float]:
    """One token request (no retry): returns (access_token, expires_in).

    Password grant: username/password are the access key id/secret (form-encoded by oauthlib);
    the app's client id/secret always go in HTTP Basic auth.
    """
    basic = HTTPBasicAuth(credentials.client_id, credentials.client_secret)
    if grant == GRANT_PASSWORD:
        client = LegacyApplicationClient(client_id=credentials.client_id)
        grant_args = {
            "username": credentials.access_key_id,
            "password": credentials.access_key_secret,
        }
    else:
        client = BackendApplicationClient(client_id=credentials.client_id)
        grant_args = {}
    with OAuth2Session(client=client) as oauth:
        oauth.register_compliance_hook("access_token_response", _check_token_response)
        try:
            token = guard_network(
                lambda: oauth.fetch_token(token_url, auth=basic, timeout=timeout_s, **grant_args),
                what=_WHAT,
                url=token_url,
                timeout_s=timeout_s,
            )
        except InsecureTransportError:
            raise CxoneConfigError(
                f"token endpoint {token_url} is not https (OAUTHLIB_INSECURE_TRANSPORT=1 "
                "allows http, for a local stand-in only)"
            ) from None
        except OAuth2Error as err:
            # oauthlib's own checks (e.g. a missing access_token); its text holds no secret.
            raise _oauth_error(err) from None
    redact.register(token.get("access_token"), token.get("refresh_token"), token.get("id_token"))
    return token["access_token"], _expires_in(token)


def _check_token_response(response: requests.Response) -> requests.Response:
    """Runs before oauthlib parses the body: classify the status, insist on JSON."""
    try:
        raise_for_status(response, _WHAT)
    except CxoneHttpError as err:
        if err.status not in _REJECTED:
            raise type(err)(f"{err.reason} at {response.url}", status=err.status) from None
        code = _oauth_error_code(response)
        raise CxoneAuthError(
            f"{_WHAT} rejected (HTTP {err.status}{' ' + code if code else ''}): check "
            "CXONE_CLIENT_ID/CXONE_CLIENT_SECRET, that the access key is active, "
            "and --cxone_grant",
            status=err.status,
        ) from None
    parse_json(response, _WHAT)
    return response


def _oauth_error_code(response: requests.Response) -> str:
    """The RFC 6749 `error` code when it is a plain token (it is echoed in a message)."""
    try:
        code = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    if isinstance(code, str) and len(code) <= 40 and code.replace("_", "").isalpha():
        return code
    return ""


def _oauth_error(err: OAuth2Error) -> CxoneProtocolError | CxoneAuthError:
    if err.error == "missing_token":
        return CxoneProtocolError(f"{_WHAT}: the answer has no access_token", field="access_token")
    return CxoneAuthError(f"{_WHAT} rejected: {err.error}", status=err.status_code)


def _expires_in(token: dict[str, Any]) -> float:
    value = token.get("expires_in")
    if isinstance(value, int | float) and value > 0:
        return float(value)
    _log.warning("token response has no usable expires_in; assuming %g s", _DEFAULT_EXPIRES_IN_S)
    return _DEFAULT_EXPIRES_IN_S
