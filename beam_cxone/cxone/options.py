"""`--cxone_*` pipeline options and their typed, validated form `CxoneConfig`.

Only the path of a secrets file is an option: credentials themselves never go on a command line
(see credentials.py). Code below the entry points takes a CxoneConfig, never PipelineOptions.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any
from urllib.parse import urlsplit

from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone.cxone.client import DEFAULT_API_VERSION
from beam_cxone.cxone.credentials import ENV_NAMES
from beam_cxone.cxone.credentials import GRANT_PASSWORD
from beam_cxone.cxone.credentials import GRANTS
from beam_cxone.cxone.errors import CxoneConfigError

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_TIMEOUT_S",
    "CxoneConfig",
    "CxoneOptions",
    "add_cxone_arguments",
]

# NICE's global issuer; the token endpoint and API hosts are discovered from it.
DEFAULT_ISSUER = "https://cxone.niceincontact.com"
DEFAULT_TIMEOUT_S = 10.0


def add_cxone_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--cxone_*` flags, shared by CxoneOptions and the `validate` command."""
    group = parser.add_argument_group("cxone")
    group.add_argument(
        "--cxone_issuer",
        default=DEFAULT_ISSUER,
        help=f"CXone OIDC issuer URL; endpoints are discovered from it. Default {DEFAULT_ISSUER}.",
    )
    group.add_argument(
        "--cxone_grant",
        choices=GRANTS,
        default=GRANT_PASSWORD,
        help="OAuth2 grant: password (access key id/secret, the documented default) or "
        "client_credentials (for gateways that require it).",
    )
    group.add_argument(
        "--cxone_skill_ids",
        default=None,
        help="Comma-separated CXone skill ids that must exist. Default: none.",
    )
    group.add_argument(
        "--cxone_point_of_contact_ids",
        default=None,
        help="Comma-separated CXone point-of-contact ids that must exist. Default: none.",
    )
    group.add_argument(
        "--cxone_api_version",
        type=int,
        default=DEFAULT_API_VERSION,
        help=f"Admin API version N of /inContactAPI/services/vN.0. Default {DEFAULT_API_VERSION}.",
    )
    group.add_argument(
        "--cxone_credentials_file",
        default=None,
        help=f"Secrets file (JSON or KEY=VALUE lines) with {', '.join(ENV_NAMES)}; "
        "overrides the environment. Default: environment only.",
    )
    group.add_argument(
        "--cxone_timeout_s",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"Timeout of every CXone request, seconds. Default {DEFAULT_TIMEOUT_S:g}.",
    )
    group.add_argument(
        "--cxone_validate",
        action="store_true",
        default=False,
        help="Check CXone auth and the configured resources before submitting the job.",
    )


class CxoneOptions(PipelineOptions):
    """Pipeline options of the CXone connection (see add_cxone_arguments)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        add_cxone_arguments(parser)


@dataclasses.dataclass(frozen=True)
class CxoneConfig:
    """Validated CXone settings; holds no secret (those come from load_credentials)."""

    issuer: str = DEFAULT_ISSUER
    grant: str = GRANT_PASSWORD
    skill_ids: tuple[str, ...] = ()
    point_of_contact_ids: tuple[str, ...] = ()
    api_version: int = DEFAULT_API_VERSION
    credentials_file: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    validate: bool = False

    @classmethod
    def from_options(cls, options: PipelineOptions) -> CxoneConfig:
        """From a PipelineOptions (any view)."""
        return cls.from_namespace(options.view_as(CxoneOptions))

    @classmethod
    def from_namespace(cls, ns: Any) -> CxoneConfig:
        """From anything with the `cxone_*` attributes; all problems reported in one error."""
        errors = []
        issuer = (ns.cxone_issuer or "").strip().rstrip("/")
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            errors.append(f"--cxone_issuer must be an https URL, got {issuer!r}")
        if ns.cxone_grant not in GRANTS:
            errors.append(f"--cxone_grant must be one of {', '.join(GRANTS)}")
        if ns.cxone_api_version is None or ns.cxone_api_version < 1:
            errors.append(f"--cxone_api_version must be >= 1, got {ns.cxone_api_version}")
        if ns.cxone_timeout_s is None or not ns.cxone_timeout_s > 0:
            errors.append(f"--cxone_timeout_s must be > 0, got {ns.cxone_timeout_s}")
        if errors:
            raise CxoneConfigError("invalid CXone options: " + "; ".join(errors))
        return cls(
            issuer=issuer,
            grant=ns.cxone_grant,
            skill_ids=_split_ids(ns.cxone_skill_ids),
            point_of_contact_ids=_split_ids(ns.cxone_point_of_contact_ids),
            api_version=ns.cxone_api_version,
            credentials_file=ns.cxone_credentials_file or None,
            timeout_s=float(ns.cxone_timeout_s),
            validate=bool(ns.cxone_validate),
        )


def _split_ids(value: str | None) -> tuple[str, ...]:
    """'1, 2,,2' -> ('1', '2'): blanks dropped, duplicates checked once, order kept."""
    ids = (part.strip() for part in (value or "").split(","))
    return tuple(dict.fromkeys(i for i in ids if i))
