"""Token request (both grants), token cache (expiry, margin, invalidation, threads)."""

from __future__ import annotations

import threading

import pytest

from beam_cxone.cxone.client import CxoneClient
from beam_cxone.cxone.credentials import CxoneCredentials
from beam_cxone.cxone.errors import CxoneAuthError
from beam_cxone.cxone.errors import CxoneConfigError
from beam_cxone.cxone.errors import CxoneProtocolError
from beam_cxone.cxone.token import TOKEN_CACHE
from beam_cxone.cxone.token import TokenCache
from beam_cxone.cxone.transport import RetryPolicy
from tests.support.cxone_stub import CxoneStub
from tests.support.cxone_stub import Reply


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_password_grant_request(cxone_stub, make_client):
    token = make_client().access_token()
    (seen,) = cxone_stub.requests_to("token")
    # Values with '+', '&', '/' and '=' arrive intact: oauthlib URL-encoded them.
    assert seen.form == {
        "grant_type": ["password"],
        "username": [CxoneStub.ACCESS_KEY_ID],
        "password": [CxoneStub.ACCESS_KEY_SECRET],
    }
    assert seen.headers["authorization"].startswith("Basic ")  # checked by the stub
    assert seen.headers["accept"] == "application/json"
    assert token.value == cxone_stub.issued[0]["access_token"]
    assert token.expires_in == 3600


def test_client_credentials_grant_request(cxone_stub, make_client):
    cxone_stub.grant = "client_credentials"
    make_client(grant="client_credentials").access_token()
    (seen,) = cxone_stub.requests_to("token")
    assert seen.form == {"grant_type": ["client_credentials"]}


def test_token_endpoint_is_discovered(cxone_stub, make_client):
    client = make_client()
    assert client.token_endpoint() == f"{cxone_stub.url}/auth/token"
    client.access_token()
    assert cxone_stub.hits["discovery"] == 1


def test_wrong_client_secret_is_rejected_without_retry(cxone_stub, sleeps):
    creds = CxoneCredentials(
        CxoneStub.CLIENT_ID, "wrong", CxoneStub.ACCESS_KEY_ID, CxoneStub.ACCESS_KEY_SECRET
    )
    with CxoneClient(cxone_stub.url, creds, policy=RetryPolicy(sleep=sleeps)) as client:
        with pytest.raises(CxoneAuthError) as info:
            client.access_token()
    assert info.value.reason == (
        "token request rejected (HTTP 401 invalid_client): check CXONE_CLIENT_ID/"
        "CXONE_CLIENT_SECRET, that the access key is active, and --cxone_grant"
    )
    assert cxone_stub.hits["token"] == 1 and sleeps == []


def test_grant_mismatch(cxone_stub, make_client):
    cxone_stub.grant = "client_credentials"
    with pytest.raises(CxoneAuthError, match=r"HTTP 400 unsupported_grant_type"):
        make_client().access_token()


def test_token_endpoint_throttling_is_retried(cxone_stub, make_client, sleeps):
    cxone_stub.script("token", Reply(429, headers={"Retry-After": "2"}), Reply(503))
    make_client().access_token()
    assert cxone_stub.hits["token"] == 3
    assert sleeps[0] == 2.0
    assert 2.0 <= sleeps[1] <= 3.0  # second backoff: 1 * 2**1 + jitter(0..1)


@pytest.mark.parametrize(
    "reply, error, reason",
    [
        (
            Reply(200, "{not json"),
            CxoneProtocolError,
            "token request: malformed JSON in the answer",
        ),
        (
            Reply(200, {"token_type": "Bearer", "expires_in": 3600}),
            CxoneProtocolError,
            "token request: the answer has no access_token",
        ),
        (
            Reply(500, {"error": "server_error"}),
            Exception,
            "token request: HTTP 500 at {url}/auth/token",
        ),
    ],
)
def test_bad_token_answers(cxone_stub, make_client, reply, error, reason):
    cxone_stub.always("token", reply)
    with pytest.raises(error) as info:
        make_client().access_token()
    assert info.value.reason == reason.format(url=cxone_stub.url)
    assert cxone_stub.hits["token"] == 1


def test_token_without_tenant_id_claim(cxone_stub, make_client):
    cxone_stub.tenant_claim = None
    with pytest.raises(CxoneProtocolError) as info:
        make_client().tenant_id()
    assert info.value.reason == "token response: the access token has no tenantId claim"
    assert info.value.field == "tenantId"


def test_http_token_endpoint_is_refused_outside_tests(cxone_stub, make_client, monkeypatch):
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT")
    with pytest.raises(
        CxoneConfigError, match=r"token endpoint http://127\.0\.0\.1:\d+/auth/token"
    ):
        make_client().access_token()


def test_token_is_cached_across_clients(cxone_stub, make_client):
    first = make_client().access_token()
    second = make_client().access_token()
    assert first is second
    assert cxone_stub.hits["token"] == 1


def test_token_expiring_mid_run_is_refreshed_before_expiry(cxone_stub, make_client):
    cxone_stub.expires_in = 200  # refreshed from t+140 on (margin 60 s)
    clock = FakeClock()
    client = make_client(cache=TokenCache(clock=clock))
    client.get_skill("101")
    clock.now += 139
    client.get_skill("102")
    assert cxone_stub.hits["token"] == 1
    clock.now += 2  # t+141: within the margin
    client.get_skill("101")
    assert cxone_stub.hits["token"] == 2
    bearers = [seen.bearer for seen in cxone_stub.requests_to("skill")]
    first, second = (t["access_token"] for t in cxone_stub.issued)
    assert bearers == [first, first, second]
    assert cxone_stub.hits["tenant"] == 1  # the API host is not rediscovered


def test_short_lived_token_uses_half_its_lifetime_as_margin():
    clock = FakeClock()
    cache = TokenCache(clock=clock)
    fetches = []

    def fetch():
        fetches.append(clock.now)
        return f"token-{len(fetches)}", 10.0

    cache.get(("k",), fetch, margin_s=60)
    clock.now += 4.9
    cache.get(("k",), fetch, margin_s=60)
    assert len(fetches) == 1
    clock.now += 0.2
    assert cache.get(("k",), fetch, margin_s=60).value == "token-2"


def test_invalidate_only_drops_the_token_that_failed():
    cache = TokenCache(clock=FakeClock())
    values = iter(["a", "b", "c"])
    stale = cache.get(("k",), lambda: (next(values), 3600))
    cache.invalidate(("k",), stale)
    fresh = cache.get(("k",), lambda: (next(values), 3600))
    cache.invalidate(("k",), stale)  # a late thread that also saw a 401 with the old token
    assert cache.get(("k",), lambda: (next(values), 3600)) is fresh
    assert fresh.value == "b"


def test_access_token_repr_masks_the_value():
    token = TokenCache(clock=FakeClock()).get(("k",), lambda: ("eyJ.secret.sig", 3600))
    assert "secret" not in repr(token) and "secret" not in str(token)


def test_concurrent_callers_share_one_token_request(cxone_stub, make_client):
    cxone_stub.token_delay_s = 0.2  # every thread arrives while the first request is in flight
    clients = [make_client() for _ in range(8)]
    for client in clients:
        client.token_endpoint()
    barrier = threading.Barrier(len(clients))
    tokens, errors = [], []

    def worker(client):
        barrier.wait()
        try:
            tokens.append(client.access_token())
        except Exception as err:  # surfaced by the assert below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    assert cxone_stub.hits["token"] == 1
    assert len(tokens) == 8 and len({id(t) for t in tokens}) == 1
    assert TOKEN_CACHE.get(clients[0]._tokens.key, lambda: pytest.fail("refetched")) is tokens[0]
