"""Where to talk to: the token endpoint (OIDC discovery) and the tenant's API host.

NICE moves hosts between `*.niceincontact.com` and `*.nicecxone.com`, so nothing but the issuer is
configured: the token endpoint comes from the issuer's OIDC document, the API host from the
tenant configuration, looked up with the `tenantId` claim of the access token.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from beam_cxone.cxone.errors import CxoneHttpError
from beam_cxone.cxone.errors import CxoneProtocolError
from beam_cxone.cxone.transport import Transport
from beam_cxone.cxone.transport import require_field

__all__ = [
    "decode_claims",
    "discover_api_endpoint",
    "discover_token_endpoint",
    "tenant_id_from_token",
]

_OIDC_PATH = "/.well-known/openid-configuration"
_TENANT_PATH = "/.well-known/cxone-configuration"


def discover_token_endpoint(transport: Transport, issuer: str) -> str:
    """`token_endpoint` of `{issuer}/.well-known/openid-configuration`."""
    what = "OIDC discovery"
    url = issuer.rstrip("/") + _OIDC_PATH
    try:
        doc = transport.get_json(url, what=what)
    except CxoneHttpError as err:
        raise type(err)(f"{err.reason} at {url}; check --cxone_issuer", status=err.status) from None
    return require_field(doc, "token_endpoint", what).rstrip("/")


def discover_api_endpoint(transport: Transport, issuer: str, tenant_id: str) -> str:
    """`api_endpoint` of `{issuer}/.well-known/cxone-configuration?tenantId=...`."""
    what = f"tenant API discovery for tenant {tenant_id}"
    url = issuer.rstrip("/") + _TENANT_PATH
    doc = transport.get_json(url, what=what, params={"tenantId": tenant_id})
    return require_field(doc, "api_endpoint", what).rstrip("/")


def decode_claims(access_token: str) -> dict[str, Any]:
    """The JWT payload, unverified: the token came straight from the token endpoint over TLS."""
    parts = access_token.split(".")
    if len(parts) != 3:
        raise CxoneProtocolError(
            "token response: the access_token is not a JWT, cannot read its claims",
            field="tenantId",
        )
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CxoneProtocolError(
            "token response: the access_token payload is not base64url JSON", field="tenantId"
        ) from None
    if not isinstance(claims, dict):
        raise CxoneProtocolError(
            "token response: the access_token payload is not a JSON object", field="tenantId"
        )
    return claims


def tenant_id_from_token(access_token: str) -> str:
    """The `tenantId` claim, which selects the tenant configuration (and so the API host)."""
    tenant_id = decode_claims(access_token).get("tenantId")
    if not isinstance(tenant_id, str) or not tenant_id:
        raise CxoneProtocolError(
            "token response: the access token has no tenantId claim", field="tenantId"
        )
    return tenant_id
