"""Start-up validation: fail before the pipeline is submitted, naming the cause.

Steps, in order, each failing with its own message: OIDC discovery, the token request, the
tenantId claim and tenant API discovery, then every configured skill and point of contact. All
missing resources are reported together (one line), so one run fixes every wrong id.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from collections.abc import Mapping

from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone.cxone.client import POINT_OF_CONTACT
from beam_cxone.cxone.client import SKILL
from beam_cxone.cxone.client import CxoneClient
from beam_cxone.cxone.credentials import CxoneCredentials
from beam_cxone.cxone.credentials import load_credentials
from beam_cxone.cxone.errors import CxoneNotFoundError
from beam_cxone.cxone.options import CxoneConfig
from beam_cxone.cxone.options import CxoneOptions
from beam_cxone.cxone.token import TokenCache
from beam_cxone.cxone.transport import RetryPolicy

__all__ = [
    "ValidationReport",
    "retry_policy_for",
    "validate",
    "validate_config",
    "validate_if_requested",
    "validate_or_raise",
]

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ValidationReport:
    """What a successful validation established (no secrets)."""

    issuer: str
    grant: str
    token_endpoint: str
    tenant_id: str
    api_endpoint: str
    api_version: int
    skill_ids: tuple[str, ...]
    point_of_contact_ids: tuple[str, ...]

    def summary(self) -> str:
        """A few lines for the `validate` command's stdout."""
        return "\n".join(
            [
                "CXone configuration is valid",
                f"  token endpoint:    {self.token_endpoint} ({self.grant} grant)",
                f"  tenant:            {self.tenant_id}",
                f"  API:               {self.api_endpoint} (v{self.api_version}.0)",
                f"  skills:            {_ids(self.skill_ids)}",
                f"  points of contact: {_ids(self.point_of_contact_ids)}",
            ]
        )


def _ids(ids: tuple[str, ...]) -> str:
    return ", ".join(ids) if ids else "none configured"


def retry_policy_for(
    config: CxoneConfig, sleep: Callable[[float], None] | None = None
) -> RetryPolicy:
    """The default policy with the configured timeout (and an injected sleep in tests)."""
    if sleep is None:
        return RetryPolicy(timeout_s=config.timeout_s)
    return RetryPolicy(timeout_s=config.timeout_s, sleep=sleep)


def validate(
    config: CxoneConfig,
    credentials: CxoneCredentials,
    *,
    policy: RetryPolicy | None = None,
    cache: TokenCache | None = None,
) -> ValidationReport:
    """Runs every step against CXone; raises the first CxoneError (404s are collected)."""
    with CxoneClient(
        config.issuer,
        credentials,
        grant=config.grant,
        api_version=config.api_version,
        policy=policy or retry_policy_for(config),
        cache=cache,
    ) as client:
        token_endpoint = client.token_endpoint()
        client.access_token()
        tenant_id = client.tenant_id()
        api_endpoint = client.api_endpoint()
        missing: list[CxoneNotFoundError] = []
        for resource, ids in (
            (SKILL, config.skill_ids),
            (POINT_OF_CONTACT, config.point_of_contact_ids),
        ):
            for resource_id in ids:
                try:
                    client.get_resource(resource, resource_id)
                except CxoneNotFoundError as err:
                    missing.append(err)
        if missing:
            raise CxoneNotFoundError(
                "; ".join(err.reason for err in missing),
                kind=missing[0].kind,
                resource_id=missing[0].resource_id,
            )
    report = ValidationReport(
        issuer=config.issuer,
        grant=config.grant,
        token_endpoint=token_endpoint,
        tenant_id=tenant_id,
        api_endpoint=api_endpoint,
        api_version=config.api_version,
        skill_ids=config.skill_ids,
        point_of_contact_ids=config.point_of_contact_ids,
    )
    _log.info(
        "CXone validation passed: tenant %s, %d skill(s), %d point(s) of contact",
        tenant_id,
        len(config.skill_ids),
        len(config.point_of_contact_ids),
    )
    return report


def validate_or_raise(
    options: PipelineOptions,
    *,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] | None = None,
    cache: TokenCache | None = None,
) -> ValidationReport:
    """For the pipeline before submit: options -> config + credentials -> validate().

    Raises CxoneError (its `.reason` is one line) on any problem.
    """
    return validate_config(
        CxoneConfig.from_options(options), environ=environ, sleep=sleep, cache=cache
    )


def validate_config(
    config: CxoneConfig,
    *,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] | None = None,
    cache: TokenCache | None = None,
) -> ValidationReport:
    """Like validate_or_raise, from an already parsed CxoneConfig."""
    credentials = load_credentials(config.grant, config.credentials_file, environ)
    return validate(config, credentials, policy=retry_policy_for(config, sleep), cache=cache)


def validate_if_requested(options: PipelineOptions) -> ValidationReport | None:
    """Runs validate_or_raise only when `--cxone_validate` is set (the streaming job's hook)."""
    if not options.view_as(CxoneOptions).cxone_validate:
        return None
    return validate_or_raise(options)
