"""API calls against the stand-in: discovery, 401/403/404, throttling, timeouts, bad bodies."""

from __future__ import annotations

import socket

import pytest

from beam_cxone.cxone.client import CxoneClient
from beam_cxone.cxone.credentials import load_credentials
from beam_cxone.cxone.errors import CxoneAuthError
from beam_cxone.cxone.errors import CxoneHttpError
from beam_cxone.cxone.errors import CxoneNotFoundError
from beam_cxone.cxone.errors import CxonePermissionError
from beam_cxone.cxone.errors import CxoneProtocolError
from beam_cxone.cxone.errors import CxoneUnavailableError
from beam_cxone.cxone.transport import RetryPolicy
from tests.support.cxone_stub import NO_ANSWER
from tests.support.cxone_stub import TIMEOUT_UNDER_TEST_S
from tests.support.cxone_stub import CxoneStub
from tests.support.cxone_stub import Reply

# -- discovery ------------------------------------------------------------------------------------


def test_discovery_chain(cxone_stub, make_client):
    client = make_client()
    assert client.api_endpoint() == cxone_stub.url
    assert client.tenant_id() == CxoneStub.TENANT_ID
    (tenant,) = cxone_stub.requests_to("tenant")
    assert tenant.query == {"tenantId": [CxoneStub.TENANT_ID]}
    assert tenant.headers["accept"] == "application/json"
    assert [s.route for s in cxone_stub.seen] == ["discovery", "token", "tenant"]


@pytest.mark.parametrize(
    "route, reply, call, error, reason",
    [
        (
            "discovery",
            Reply(200, {"issuer": "x"}),
            "token_endpoint",
            CxoneProtocolError,
            "OIDC discovery: the answer has no token_endpoint",
        ),
        (
            "discovery",
            Reply(200, "<html>maintenance</html>"),
            "token_endpoint",
            CxoneProtocolError,
            "OIDC discovery: malformed JSON in the answer",
        ),
        (
            "discovery",
            Reply(404, {}),
            "token_endpoint",
            CxoneNotFoundError,
            "OIDC discovery: HTTP 404 at {url}/.well-known/openid-configuration; "
            "check --cxone_issuer",
        ),
        (
            "tenant",
            Reply(200, {"tenantId": CxoneStub.TENANT_ID}),
            "api_endpoint",
            CxoneProtocolError,
            f"tenant API discovery for tenant {CxoneStub.TENANT_ID}: the answer has no api_endpoint",
        ),
        (
            "tenant",
            Reply(200, '{"api_endpoint": '),
            "api_endpoint",
            CxoneProtocolError,
            f"tenant API discovery for tenant {CxoneStub.TENANT_ID}: malformed JSON in the answer",
        ),
    ],
    ids=[
        "no-token-endpoint",
        "discovery-not-json",
        "wrong-issuer",
        "no-api-endpoint",
        "tenant-bad",
    ],
)
def test_discovery_failures(cxone_stub, make_client, route, reply, call, error, reason):
    cxone_stub.always(route, reply)
    with pytest.raises(error) as info:
        getattr(make_client(), call)()
    assert info.value.reason == reason.format(url=cxone_stub.url)
    assert cxone_stub.hits[route] == 1


# -- resources ------------------------------------------------------------------------------------


def test_resource_requests_carry_bearer_and_accept(cxone_stub, make_client):
    client = make_client()
    assert client.get_skill("101") == {"skills": [{"skillId": 101, "skillName": "Sales"}]}
    assert client.get_point_of_contact("5001") == {
        "pointsOfContact": [{"pointOfContactId": "5001"}]
    }
    skill, poc = cxone_stub.requests_to("skill") + cxone_stub.requests_to("point_of_contact")
    assert skill.path == "/inContactAPI/services/v32.0/skills/101"
    assert poc.path == "/inContactAPI/services/v32.0/points-of-contact/5001"
    for seen in (skill, poc):
        assert seen.bearer == cxone_stub.issued[0]["access_token"]
        assert seen.headers["accept"] == "application/json"


def test_api_version_option(cxone_stub, make_client):
    cxone_stub.api_version = 31
    make_client(api_version=31).get_skill("101")
    (seen,) = cxone_stub.requests_to("skill")
    assert seen.path == "/inContactAPI/services/v31.0/skills/101"


def test_401_once_reauthenticates_and_retries_once(cxone_stub, make_client, sleeps):
    cxone_stub.script("skill:101", Reply(401, {"error": "invalid_token"}))
    make_client().get_skill("101")
    assert cxone_stub.hits["skill:101"] == 2
    assert cxone_stub.hits["token"] == 2
    first, second = (t["access_token"] for t in cxone_stub.issued)
    assert [s.bearer for s in cxone_stub.requests_to("skill")] == [first, second]
    assert sleeps == []


def test_token_revoked_server_side_is_replaced(cxone_stub, make_client):
    client = make_client()
    client.get_skill("101")
    cxone_stub.revoke_tokens()  # e.g. expired early on CXone's side
    client.get_skill("102")
    assert cxone_stub.hits["token"] == 2
    assert cxone_stub.hits["skill:102"] == 2


def test_401_twice_stops(cxone_stub, make_client):
    cxone_stub.always("skill:101", Reply(401, {"error": "invalid_token"}))
    with pytest.raises(CxoneAuthError) as info:
        make_client().get_skill("101")
    assert info.value.reason == (
        "skill 101: CXone rejected a freshly issued access token (HTTP 401); "
        "check that the access key and its user are active"
    )
    assert cxone_stub.hits["skill:101"] == 2
    assert cxone_stub.hits["token"] == 2


def test_403_names_the_permission_problem_and_is_not_retried(cxone_stub, make_client, sleeps):
    cxone_stub.always("point_of_contact", Reply(403, {"error": "forbidden"}))
    with pytest.raises(CxonePermissionError) as info:
        make_client().get_point_of_contact("5001")
    assert info.value.reason == (
        "CXone refused to read point of contact 5001 (HTTP 403): the role of the access key's "
        "user lacks the permission to view points-of-contact"
    )
    assert info.value.status == 403
    assert cxone_stub.hits["point_of_contact"] == 1 and cxone_stub.hits["token"] == 1
    assert sleeps == []


def test_404_names_kind_and_id(cxone_stub, make_client, sleeps):
    with pytest.raises(CxoneNotFoundError) as info:
        make_client().get_skill("999")
    assert info.value.reason == (
        f"skill 999 does not exist in CXone tenant {CxoneStub.TENANT_ID} (HTTP 404); "
        "check --cxone_skill_ids"
    )
    assert (info.value.kind, info.value.resource_id) == ("skill", "999")
    assert cxone_stub.hits["skill:999"] == 1 and sleeps == []


def test_ids_are_path_quoted(cxone_stub, make_client):
    with pytest.raises(CxoneNotFoundError, match=r"^skill \.\./tenants does not exist"):
        make_client().get_skill("../tenants")
    (seen,) = cxone_stub.requests_to("skill")
    assert seen.path == "/inContactAPI/services/v32.0/skills/..%2Ftenants"


def test_429_honours_retry_after_exactly(cxone_stub, make_client, sleeps):
    cxone_stub.script(
        "skill:101",
        Reply(429, headers={"Retry-After": "7"}),
        Reply(429, headers={"Retry-After": "0.25"}),
    )
    make_client().get_skill("101")
    assert sleeps == [7.0, 0.25]
    assert cxone_stub.hits["skill:101"] == 3


def test_429_without_retry_after_backs_off_exponentially_with_jitter(
    cxone_stub, make_client, sleeps
):
    cxone_stub.script("skill:101", Reply(429), Reply(429), Reply(429))
    make_client().get_skill("101")
    assert cxone_stub.hits["skill:101"] == 4
    assert len(sleeps) == 3
    for n, wait in enumerate(sleeps, start=1):  # 1 s * 2**(n-1) + uniform(0, 1 s)
        assert 2 ** (n - 1) <= wait <= 2 ** (n - 1) + 1


def test_503_is_retried_a_bounded_number_of_times(cxone_stub, make_client, sleeps):
    cxone_stub.always("skill:101", Reply(503, {"error": "unavailable"}))
    with pytest.raises(CxoneUnavailableError) as info:
        make_client().get_skill("101")
    assert info.value.reason == "skill 101: HTTP 503 (gave up after 5 attempts)"
    assert cxone_stub.hits["skill:101"] == 5
    assert len(sleeps) == 4


def test_slow_answer_times_out_and_is_retried(cxone_stub, make_client, sleeps):
    cxone_stub.script("skill:101", Reply(200, {"late": True}, delay_s=NO_ANSWER))
    assert make_client(timeout_s=TIMEOUT_UNDER_TEST_S).get_skill("101")["skills"]
    assert cxone_stub.hits["skill:101"] == 2
    assert len(sleeps) == 1 and 1 <= sleeps[0] <= 2


def test_always_slow_gives_up_with_a_clear_message(cxone_stub, make_client, sleeps):
    cxone_stub.always("skill:101", Reply(200, {}, delay_s=NO_ANSWER))
    with pytest.raises(CxoneUnavailableError) as info:
        make_client(timeout_s=TIMEOUT_UNDER_TEST_S, attempts=2).get_skill("101")
    assert info.value.reason == (
        f"skill 101: no answer within {TIMEOUT_UNDER_TEST_S:g} s (gave up after 2 attempts)"
    )
    assert cxone_stub.hits["skill:101"] == 2 and len(sleeps) == 1


def test_slow_token_endpoint_times_out(cxone_stub, make_client):
    cxone_stub.always("token", Reply(200, {}, delay_s=NO_ANSWER))
    with pytest.raises(CxoneUnavailableError) as info:
        make_client(timeout_s=TIMEOUT_UNDER_TEST_S, attempts=2).access_token()
    assert info.value.reason == (
        f"token request: no answer within {TIMEOUT_UNDER_TEST_S:g} s (gave up after 2 attempts)"
    )
    assert cxone_stub.hits["token"] == 2


def test_connection_refused_is_retried_then_reported(sleeps, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    creds = load_credentials("password", None, CxoneStub().env())
    policy = RetryPolicy(attempts=3, sleep=sleeps)
    with CxoneClient(f"http://127.0.0.1:{port}", creds, policy=policy) as client:
        with pytest.raises(CxoneUnavailableError) as info:
            client.token_endpoint()
    assert info.value.reason == (
        f"OIDC discovery: cannot connect to 127.0.0.1:{port} (gave up after 3 attempts)"
    )
    assert len(sleeps) == 2


def test_malformed_resource_json(cxone_stub, make_client, sleeps):
    cxone_stub.always("skill:101", Reply(200, '{"skills": [ '))
    with pytest.raises(CxoneProtocolError) as info:
        make_client().get_skill("101")
    assert info.value.reason == "skill 101: malformed JSON in the answer"
    assert cxone_stub.hits["skill:101"] == 1 and sleeps == []


def test_other_statuses_are_final(cxone_stub, make_client, sleeps):
    cxone_stub.always("skill:101", Reply(500, {"error": "boom"}))
    with pytest.raises(CxoneHttpError) as info:
        make_client().get_skill("101")
    assert info.value.reason == "skill 101: HTTP 500"
    assert cxone_stub.hits["skill:101"] == 1 and sleeps == []
