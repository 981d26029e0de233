"""CXone admin API calls with the retry policy, 401 re-authentication and resource-level errors.

On top of the transport's retries (429/5xx/timeouts), a 401 drops the cached token, authenticates
again and retries once: a token can be revoked or expire early server-side. 403 and 404 are final
and reported with the resource kind and id, because only the operator can fix them.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any
from urllib.parse import quote

from beam_cxone.cxone.credentials import GRANT_PASSWORD
from beam_cxone.cxone.credentials import CxoneCredentials
from beam_cxone.cxone.discovery import discover_api_endpoint
from beam_cxone.cxone.discovery import tenant_id_from_token
from beam_cxone.cxone.errors import CxoneAuthError
from beam_cxone.cxone.errors import CxoneNotFoundError
from beam_cxone.cxone.errors import CxonePermissionError
from beam_cxone.cxone.token import DEFAULT_MARGIN_S
from beam_cxone.cxone.token import AccessToken
from beam_cxone.cxone.token import TokenCache
from beam_cxone.cxone.token import TokenProvider
from beam_cxone.cxone.transport import RetryPolicy
from beam_cxone.cxone.transport import Transport

__all__ = [
    "DEFAULT_API_VERSION",
    "POINT_OF_CONTACT",
    "SKILL",
    "CxoneClient",
]

_log = logging.getLogger(__name__)

# v32.0 is the current admin API; older tenants may pin an earlier one via --cxone_api_version.
DEFAULT_API_VERSION = 32
# (kind shown in messages, path segment, option that lists the ids)
SKILL = ("skill", "skills", "--cxone_skill_ids")
POINT_OF_CONTACT = ("point of contact", "points-of-contact", "--cxone_point_of_contact_ids")


class CxoneClient:
    """One tenant's admin API: lazily discovers the token endpoint, tenant and API host.

    Create one per DoFn in `setup()` (or per validation run) and `close()` it; tokens are shared
    across clients through the process-wide TokenCache.
    """

    def __init__(
        self,
        issuer: str,
        credentials: CxoneCredentials,
        *,
        grant: str = GRANT_PASSWORD,
        api_version: int = DEFAULT_API_VERSION,
        policy: RetryPolicy | None = None,
        cache: TokenCache | None = None,
        margin_s: float = DEFAULT_MARGIN_S,
    ):
        if api_version < 1:
            raise ValueError(f"api_version must be >= 1, got {api_version}")
        self.issuer = issuer.rstrip("/")
        self.grant = grant
        self.api_version = api_version
        self._transport = Transport(policy)
        self._tokens = TokenProvider(
            self.issuer,
            credentials,
            grant=grant,
            transport=self._transport,
            cache=cache,
            margin_s=margin_s,
        )
        self._tenant_id: str | None = None
        self._api_endpoint: str | None = None

    def __enter__(self) -> CxoneClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Releases the HTTP session."""
        self._transport.close()

    def token_endpoint(self) -> str:
        """Step 1: OIDC discovery."""
        return self._tokens.token_endpoint()

    def access_token(self) -> AccessToken:
        """Step 2: a valid (cached or new) token."""
        return self._tokens.get()

    def tenant_id(self) -> str:
        """Step 3a: the tenantId claim of the token."""
        if self._tenant_id is None:
            self._tenant_id = tenant_id_from_token(self._tokens.get().value)
        return self._tenant_id

    def api_endpoint(self) -> str:
        """Step 3b: the tenant's API host."""
        if self._api_endpoint is None:
            self._api_endpoint = discover_api_endpoint(
                self._transport, self.issuer, self.tenant_id()
            )
        return self._api_endpoint

    def get_skill(self, skill_id: str) -> dict[str, Any]:
        """GET skills/{id}; CxoneNotFoundError names the skill if it does not exist."""
        return self.get_resource(SKILL, skill_id)

    def get_point_of_contact(self, point_of_contact_id: str) -> dict[str, Any]:
        """GET points-of-contact/{id}; CxoneNotFoundError names it if it does not exist."""
        return self.get_resource(POINT_OF_CONTACT, point_of_contact_id)

    def get_resource(self, resource: tuple[str, str, str], resource_id: str) -> dict[str, Any]:
        """GET one admin resource by id, translating 403/404 into resource-level messages."""
        kind, segment, option = resource
        what = f"{kind} {resource_id}"
        path = f"{segment}/{quote(str(resource_id), safe='')}"
        try:
            return self.get_api(path, what=what)
        except CxoneNotFoundError:
            raise CxoneNotFoundError(
                f"{kind} {resource_id} does not exist in CXone tenant {self.tenant_id()} "
                f"(HTTP 404); check {option}",
                kind=kind,
                resource_id=str(resource_id),
            ) from None
        except CxonePermissionError:
            whose = "access key's user" if self.grant == GRANT_PASSWORD else "client application"
            raise CxonePermissionError(
                f"CXone refused to read {kind} {resource_id} (HTTP 403): the role of the {whose} "
                f"lacks the permission to view {segment}",
                status=403,
            ) from None

    def get_api(self, path: str, *, what: str) -> dict[str, Any]:
        """GET `{api_endpoint}/inContactAPI/services/vNN.0/{path}` as JSON; one re-auth on 401."""
        url = f"{self.api_endpoint()}/inContactAPI/services/v{self.api_version}.0/{path}"
        for attempt in (1, 2):
            token = self._tokens.get()
            try:
                return self._transport.get_json(url, what=what, headers=_bearer(token))
            except CxoneAuthError:
                self._tokens.invalidate(token)
                if attempt == 2:
                    raise CxoneAuthError(
                        f"{what}: CXone rejected a freshly issued access token (HTTP 401); "
                        "check that the access key and its user are active",
                        status=401,
                    ) from None
                _log.info("%s: HTTP 401, authenticating again", what)
        raise AssertionError("unreachable")


def _bearer(token: AccessToken) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.value}"}
