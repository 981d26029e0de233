"""`beam_cxone validate` end to end against the stand-in: exit codes, output, no secret leaks."""

from __future__ import annotations

import functools
import json
import logging
from urllib.parse import quote
from urllib.parse import quote_plus

import pytest

from beam_cxone.commands.validate import main as run_validate
from beam_cxone.cxone import validation
from beam_cxone.cxone.token import _drop_oauth_session_debug
from beam_cxone.cxone.transport import RetryPolicy
from tests.support.cxone_stub import NO_ANSWER
from tests.support.cxone_stub import TIMEOUT_UNDER_TEST_S
from tests.support.cxone_stub import CxoneStub
from tests.support.cxone_stub import Reply

TENANT = CxoneStub.TENANT_ID


def argv(stub: CxoneStub, *extra: str) -> list[str]:
    return [
        f"--cxone_issuer={stub.url}",
        "--cxone_skill_ids=101,102",
        "--cxone_point_of_contact_ids=5001",
        *extra,
    ]


def test_valid_exits_0_with_a_summary(cxone_stub, sleeps, capsys):
    code = run_validate(argv(cxone_stub), environ=cxone_stub.env(), sleep=sleeps)
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "CXone configuration is valid",
        f"  token endpoint:    {cxone_stub.url}/auth/token (password grant)",
        f"  tenant:            {TENANT}",
        f"  API:               {cxone_stub.url} (v32.0)",
        "  skills:            101, 102",
        "  points of contact: 5001",
    ]


def test_credentials_file(cxone_stub, tmp_path, capsys):
    path = tmp_path / "cxone.json"
    path.write_text(json.dumps(cxone_stub.env()))
    path.chmod(0o600)  # a secrets file others can read is refused
    assert run_validate(argv(cxone_stub, f"--cxone_credentials_file={path}"), environ={}) == 0


def test_throttling_then_success_exits_0(cxone_stub, sleeps, capsys):
    cxone_stub.script("tenant", Reply(429, headers={"Retry-After": "4"}))
    cxone_stub.script("skill:102", Reply(503))
    assert run_validate(argv(cxone_stub), environ=cxone_stub.env(), sleep=sleeps) == 0
    assert sleeps[0] == 4.0 and 1 <= sleeps[1] <= 2
    assert cxone_stub.hits["tenant"] == 2 and cxone_stub.hits["skill:102"] == 2


FAILURES = {
    "403": (
        lambda s: s.always("skill:101", Reply(403)),
        [],
        "CXone refused to read skill 101 (HTTP 403): the role of the access key's user lacks "
        "the permission to view skills",
    ),
    "404": (
        lambda s: s.skills.discard("102"),
        [],
        f"skill 102 does not exist in CXone tenant {TENANT} (HTTP 404); check --cxone_skill_ids",
    ),
    "401-twice": (
        lambda s: s.always("point_of_contact", Reply(401)),
        [],
        "point of contact 5001: CXone rejected a freshly issued access token (HTTP 401); "
        "check that the access key and its user are active",
    ),
    "503-exhausted": (
        lambda s: s.always("discovery", Reply(503)),
        [],
        "OIDC discovery: HTTP 503 (gave up after 5 attempts)",
    ),
    "malformed-json": (
        lambda s: s.always("tenant", Reply(200, "not json")),
        [],
        f"tenant API discovery for tenant {TENANT}: malformed JSON in the answer",
    ),
    "no-tenant-claim": (
        lambda s: setattr(s, "tenant_claim", None),
        [],
        "token response: the access token has no tenantId claim",
    ),
    "wrong-grant": (
        lambda s: None,
        ["--cxone_grant=client_credentials"],
        "token request rejected (HTTP 400 unsupported_grant_type): check CXONE_CLIENT_ID/"
        "CXONE_CLIENT_SECRET, that the access key is active, and --cxone_grant",
    ),
    "bad-option": (
        lambda s: None,
        ["--cxone_api_version=0"],
        "invalid CXone options: --cxone_api_version must be >= 1, got 0",
    ),
}


@pytest.mark.parametrize("setup, extra, reason", FAILURES.values(), ids=FAILURES.keys())
def test_failures_exit_2_with_one_line(cxone_stub, sleeps, capsys, setup, extra, reason):
    setup(cxone_stub)
    code = run_validate(argv(cxone_stub, *extra), environ=cxone_stub.env(), sleep=sleeps)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == f"beam_cxone validate: {reason}\n"


def test_timeout_exits_2_with_one_line(cxone_stub, sleeps, capsys, monkeypatch):
    cxone_stub.always("skill:101", Reply(200, {}, delay_s=NO_ANSWER))
    # Two attempts instead of the policy's five: each one waits the whole timeout.
    monkeypatch.setattr(validation, "RetryPolicy", functools.partial(RetryPolicy, attempts=2))
    extra = f"--cxone_timeout_s={TIMEOUT_UNDER_TEST_S}"
    code = run_validate(argv(cxone_stub, extra), environ=cxone_stub.env(), sleep=sleeps)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == (
        f"beam_cxone validate: skill 101: no answer within {TIMEOUT_UNDER_TEST_S:g} s "
        "(gave up after 2 attempts)\n"
    )
    assert cxone_stub.hits["skill:101"] == 2


def test_missing_credentials_exit_2(cxone_stub, capsys):
    env = {k: v for k, v in cxone_stub.env().items() if k != "CXONE_ACCESS_KEY_SECRET"}
    assert run_validate(argv(cxone_stub), environ=env) == 2
    assert capsys.readouterr().err == (
        "beam_cxone validate: missing CXone credentials for the password grant: "
        "CXONE_ACCESS_KEY_SECRET (looked in the environment; use --cxone_credentials_file or the "
        "environment)\n"
    )
    assert cxone_stub.seen == []


def test_secret_on_the_command_line_is_refused_without_echo(cxone_stub, capsys):
    code = run_validate(argv(cxone_stub, "--cxone_client_secret=hunter2==", "leftover"), environ={})
    err = capsys.readouterr().err
    assert code == 2 and "hunter2" not in err
    assert err == (
        "beam_cxone validate: unrecognized arguments: --cxone_client_secret <value> "
        "(credentials are read from the environment)\n"
    )


def test_usage_errors_exit_2_and_help_exits_0(capsys):
    assert run_validate(["--cxone_api_version=abc"]) == 2
    assert run_validate(["--help"]) == 0
    assert "--cxone_skill_ids" in capsys.readouterr().out


# -- no secret in any output --------------------------------------------------------------------


def leaked(stub: CxoneStub, text: str) -> list[str]:
    """Secrets, as is or encoded the ways they travel (form, Basic auth), found in `text`."""
    forms = {v for s in stub.secrets() for v in (s, quote_plus(s), quote(s, safe=""))}
    return sorted(s for s in forms if s in text)


def run_capturing(stub, sleeps, caplog, capsys, *extra) -> tuple[int, str]:
    caplog.set_level(logging.DEBUG)
    for name in ("requests_oauthlib", "oauthlib", "urllib3", "beam_cxone"):
        caplog.set_level(logging.DEBUG, logger=name)
    code = run_validate(argv(stub, *extra), environ=stub.env(), sleep=sleeps)
    out, err = capsys.readouterr()
    logs = "\n".join(
        [caplog.text] + [f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
    )
    return code, f"{out}\n{err}\n{logs}"


def test_no_secret_in_logs_or_output_of_a_successful_run(cxone_stub, sleeps, caplog, capsys):
    cxone_stub.script("skill:101", Reply(401))  # two tokens issued, one retried request
    cxone_stub.script("skill:102", Reply(429))
    code, text = run_capturing(cxone_stub, sleeps, caplog, capsys)
    assert code == 0
    assert len(cxone_stub.issued) == 2
    assert "GET " in text and "retrying" in text  # DEBUG and INFO lines were captured
    assert leaked(cxone_stub, text) == []


def test_no_secret_in_logs_or_output_of_a_failing_run(cxone_stub, sleeps, caplog, capsys):
    cxone_stub.script("skill:101", Reply(401))
    cxone_stub.always("point_of_contact", Reply(403))
    code, text = run_capturing(cxone_stub, sleeps, caplog, capsys)
    assert code == 2
    assert "HTTP 403" in text
    assert leaked(cxone_stub, text) == []


def test_leak_check_has_teeth(cxone_stub, sleeps, caplog, capsys):
    """Without the filter on requests-oauthlib's DEBUG lines, the secrets would be logged."""
    logger = logging.getLogger("requests_oauthlib.oauth2_session")
    logger.removeFilter(_drop_oauth_session_debug)
    try:
        code, text = run_capturing(cxone_stub, sleeps, caplog, capsys)
    finally:
        logger.addFilter(_drop_oauth_session_debug)
    assert code == 0
    found = leaked(cxone_stub, text)
    assert quote_plus(CxoneStub.ACCESS_KEY_SECRET) in found  # the form body
    assert cxone_stub.issued[0]["access_token"] in found  # the token response
