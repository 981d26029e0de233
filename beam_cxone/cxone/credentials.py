"""CXone credentials: loaded from the environment or a secrets file, never from the command line.

A command line ends up in shell history, `ps` output and the runner's job description, so the
options only take the *path* of a secrets file. Values are masked in every repr.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping

from beam_cxone import redact
from beam_cxone.cxone.errors import CxoneConfigError
from beam_cxone.secret_files import SecretFileError
from beam_cxone.secret_files import check_secret_file

__all__ = [
    "ENV_NAMES",
    "GRANTS",
    "GRANT_CLIENT_CREDENTIALS",
    "GRANT_PASSWORD",
    "CxoneCredentials",
    "load_credentials",
]

# The documented back-end flow: access key id/secret as username/password.
GRANT_PASSWORD = "password"
# Kept for gateways in front of CXone that only issue app tokens.
GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANTS = (GRANT_PASSWORD, GRANT_CLIENT_CREDENTIALS)

_CLIENT_ID = "CXONE_CLIENT_ID"
_CLIENT_SECRET = "CXONE_CLIENT_SECRET"
_ACCESS_KEY_ID = "CXONE_ACCESS_KEY_ID"
_ACCESS_KEY_SECRET = "CXONE_ACCESS_KEY_SECRET"
ENV_NAMES = (_CLIENT_ID, _CLIENT_SECRET, _ACCESS_KEY_ID, _ACCESS_KEY_SECRET)

_MASK = "***"


@dataclasses.dataclass(frozen=True)
class CxoneCredentials:
    """The registered app (client id/secret) and, for the password grant, a user's access key."""

    client_id: str
    client_secret: str
    access_key_id: str | None = None
    access_key_secret: str | None = None

    def __repr__(self) -> str:
        secret = _MASK if self.access_key_secret else None
        return (
            f"CxoneCredentials(client_id={self.client_id!r}, client_secret={_MASK!r}, "
            f"access_key_id={self.access_key_id!r}, access_key_secret={secret!r})"
        )

    __str__ = __repr__


def load_credentials(
    grant: str = GRANT_PASSWORD,
    credentials_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> CxoneCredentials:
    """Reads the four `CXONE_*` values; the file, when given, wins over the environment.

    Raises CxoneConfigError naming the missing variables (never their values).
    """
    if grant not in GRANTS:
        raise CxoneConfigError(
            f"unknown CXone grant {grant!r}; expected one of {', '.join(GRANTS)}"
        )
    env = os.environ if environ is None else environ
    values = {name: env[name] for name in ENV_NAMES if env.get(name)}
    if credentials_file:
        values.update({k: v for k, v in _read_file(credentials_file).items() if v})
    required = [_CLIENT_ID, _CLIENT_SECRET]
    if grant == GRANT_PASSWORD:
        required += [_ACCESS_KEY_ID, _ACCESS_KEY_SECRET]
    missing = [name for name in required if not values.get(name)]
    if missing:
        source = "the environment" + (f" or {credentials_file}" if credentials_file else "")
        raise CxoneConfigError(
            f"missing CXone credentials for the {grant} grant: {', '.join(missing)} "
            f"(looked in {source}; use --cxone_credentials_file or the environment)"
        )
    redact.register(values[_CLIENT_SECRET], values.get(_ACCESS_KEY_SECRET))  # never in a log line
    return CxoneCredentials(
        client_id=values[_CLIENT_ID],
        client_secret=values[_CLIENT_SECRET],
        access_key_id=values.get(_ACCESS_KEY_ID),
        access_key_secret=values.get(_ACCESS_KEY_SECRET),
    )


def _read_file(path: str) -> dict[str, str]:
    """A JSON object or KEY=VALUE lines; errors cite line numbers, never line contents. A file that
    group or others can read is refused (mode wider than 0600)."""
    try:
        check_secret_file(path, "credentials file")
    except SecretFileError as err:
        raise CxoneConfigError(str(err)) from None
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as err:
        raise CxoneConfigError(
            f"cannot read credentials file {path}: {err.strerror or type(err).__name__}"
        ) from None
    if text.lstrip().startswith("{"):
        return _parse_json(text, path)
    return _parse_lines(text, path)


def _parse_json(text: str, path: str) -> dict[str, str]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        # from None: the decode error keeps the whole document (secrets) in its `.doc`.
        raise CxoneConfigError(
            f"credentials file {path} is not valid JSON (line {err.lineno})"
        ) from None
    if not isinstance(doc, dict):
        raise CxoneConfigError(f"credentials file {path} must hold a JSON object")
    bad = sorted(name for name in ENV_NAMES if name in doc and not isinstance(doc[name], str))
    if bad:
        raise CxoneConfigError(f"credentials file {path}: {', '.join(bad)} must be strings")
    return {name: doc[name] for name in ENV_NAMES if name in doc}


def _parse_lines(text: str, path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        # A secret pasted alone ends in '=' too: only a variable name counts as a key.
        if not sep or not key.isidentifier():
            raise CxoneConfigError(f"credentials file {path}, line {number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return {name: values[name] for name in ENV_NAMES if name in values}
