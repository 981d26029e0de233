"""A local stand-in for NICE CXone, scriptable to fail in each documented way.

The real CXone cannot be reached from tests, so this server implements the endpoints the client
uses, on 127.0.0.1 with an ephemeral port, and checks the requests as CXone would:

  GET  /.well-known/openid-configuration           -> token_endpoint
  POST /auth/token                                 grant type, Basic auth, form fields -> JWT
  GET  /.well-known/cxone-configuration?tenantId=  -> api_endpoint (this same server)
  GET  /inContactAPI/services/vNN.0/skills/{id}    Bearer + Accept checked; 404 unknown ids
  GET  /inContactAPI/services/vNN.0/points-of-contact/{id}

Routes are named "discovery", "token", "tenant", "skill:<id>", "point_of_contact:<id>" (and
"skill" / "point_of_contact" for any id). `script(route, *replies)` queues replies used before the
normal behaviour; `always(route, reply)` replaces it. `hits[route]` counts requests per route.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import itertools
import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

__all__ = ["NO_ANSWER", "TIMEOUT_UNDER_TEST_S", "CxoneStub", "Reply", "Seen"]

# `Reply(delay_s=NO_ANSWER)`: the request gets no answer while the stub runs, so a client timeout of
# any length expires, whatever the machine's load.
NO_ANSWER = math.inf
# The client timeout of the tests that test timeouts (and only of those): every other request the
# stub answers within milliseconds, so a spurious expiry needs a stall 100s of times that long.
TIMEOUT_UNDER_TEST_S = 1.0

_API = re.compile(r"^/inContactAPI/services/v(\d+)\.0/(skills|points-of-contact)/([^/]+)$")
_KINDS = {"skills": "skill", "points-of-contact": "point_of_contact"}


@dataclasses.dataclass(frozen=True)
class Reply:
    """A scripted answer: dict/list bodies are sent as JSON, str/bytes as is."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class Seen:
    """One request as the stub received it."""

    route: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    form: dict[str, list[str]]

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[len("Bearer ") :] if value.startswith("Bearer ") else None


class CxoneStub:
    """The server plus its state; use as a context manager (the conftest fixture does)."""

    # Secrets shaped like CXone's (they end in '=') plus '+', '&' and '/' so that a value sent
    # without URL-encoding would arrive altered and be rejected.
    CLIENT_ID = "beam-cxone-app@example"
    CLIENT_SECRET = "cl1ent+S3cret/&Value=="
    ACCESS_KEY_ID = "AKIDX7Q2EXAMPLE=="
    ACCESS_KEY_SECRET = "ak+S3cr3t/&Key%Value=="
    TENANT_ID = "11eb4a5c-tenant-0001"

    def __init__(
        self,
        *,
        grant: str = "password",
        skills: tuple[str, ...] = ("101", "102"),
        points_of_contact: tuple[str, ...] = ("5001",),
        api_version: int = 32,
        expires_in: float = 3600,
    ):
        self.grant = grant
        self.skills = set(skills)
        self.points_of_contact = set(points_of_contact)
        self.api_version = api_version
        self.expires_in = expires_in
        self.tenant_claim: str | None = self.TENANT_ID
        self.token_delay_s = 0.0
        self.hits: collections.Counter[str] = collections.Counter()
        self.seen: list[Seen] = []
        self.issued: list[dict[str, Any]] = []
        self._valid_tokens: set[str] = set()
        self._scripts: dict[str, collections.deque[Reply]] = collections.defaultdict(
            collections.deque
        )
        self._always: dict[str, Reply] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> CxoneStub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.stub = self
        self._server = server
        # A short poll interval keeps shutdown() (once per test) from costing half a second.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._release.set()  # wakes handlers sleeping in a slow reply
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- scripting -----------------------------------------------------------------------------
    def script(self, route: str, *replies: Reply) -> None:
        """Answers the next requests on `route` with `replies`, in order, then as normal."""
        with self._lock:
            self._scripts[route].extend(replies)

    def always(self, route: str, reply: Reply) -> None:
        """Answers every request on `route` with `reply`."""
        with self._lock:
            self._always[route] = reply

    def revoke_tokens(self) -> None:
        """Every token issued so far is now rejected with 401 (server-side expiry)."""
        with self._lock:
            self._valid_tokens.clear()

    def secrets(self) -> list[str]:
        """Every secret value the client was given or issued, for leak checks."""
        with self._lock:
            issued = [
                t[k] for t in self.issued for k in ("access_token", "refresh_token", "id_token")
            ]
        basic = base64.b64encode(f"{self.CLIENT_ID}:{self.CLIENT_SECRET}".encode()).decode()
        return [self.CLIENT_SECRET, self.ACCESS_KEY_SECRET, basic, *issued]

    def env(self) -> dict[str, str]:
        """The CXONE_* variables matching this stub's credentials."""
        return {
            "CXONE_CLIENT_ID": self.CLIENT_ID,
            "CXONE_CLIENT_SECRET": self.CLIENT_SECRET,
            "CXONE_ACCESS_KEY_ID": self.ACCESS_KEY_ID,
            "CXONE_ACCESS_KEY_SECRET": self.ACCESS_KEY_SECRET,
        }

    def requests_to(self, route: str) -> list[Seen]:
        """The requests seen on `route` (a prefix like "skill" matches every skill)."""
        with self._lock:
            return [s for s in self.seen if s.route == route or s.route.startswith(route + ":")]

    # -- request handling (server threads) ---------------------------------------------------
    def _record(self, seen: Seen) -> Reply | None:
        with self._lock:
            self.seen.append(seen)
            self.hits[seen.route] += 1
            general = seen.route.split(":", 1)[0]
            if general != seen.route:
                self.hits[general] += 1
            for key in (seen.route, general):
                if self._scripts.get(key):
                    return self._scripts[key].popleft()
            for key in (seen.route, general):
                if key in self._always:
                    return self._always[key]
        return None

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._release.wait(None if math.isinf(seconds) else seconds)

    def _discovery(self) -> Reply:
        return Reply(
            body={
                "issuer": self.url,
                "token_endpoint": f"{self.url}/auth/token",
                "jwks_uri": f"{self.url}/auth/jwks",
                "grant_types_supported": ["password", "client_credentials", "refresh_token"],
            }
        )

    def _token(self, seen: Seen) -> Reply:
        self._wait(self.token_delay_s)
        if not seen.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return Reply(400, {"error": "invalid_request"})
        expected_basic = base64.b64encode(
            f"{self.CLIENT_ID}:{self.CLIENT_SECRET}".encode()
        ).decode()
        if seen.headers.get("authorization") != f"Basic {expected_basic}":
            return Reply(401, {"error": "invalid_client"})
        form = {k: v[0] for k, v in seen.form.items()}
        if form.get("grant_type") != self.grant:
            return Reply(400, {"error": "unsupported_grant_type"})
        if self.grant == "password" and (
            form.get("username") != self.ACCESS_KEY_ID
            or form.get("password") != self.ACCESS_KEY_SECRET
        ):
            return Reply(400, {"error": "invalid_grant"})
        return Reply(body=self._issue())

    def _issue(self) -> dict[str, Any]:
        n = next(self._ids)
        claims: dict[str, Any] = {
            "iss": self.url,
            "icBUId": 4600001,
            "icClusterId": "C32",
            "jti": n,
        }
        if self.tenant_claim is not None:
            claims["tenantId"] = self.tenant_claim
        token = {
            "access_token": _jwt(claims, n),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": f"refresh-{n}-Zm9vYmFy",
            "id_token": _jwt({"sub": "user", "n": n}, n + 1000),
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        }
        with self._lock:
            self.issued.append(token)
            self._valid_tokens.add(token["access_token"])
        return token

    def _tenant(self, seen: Seen) -> Reply:
        if seen.query.get("tenantId") != [self.TENANT_ID]:
            return Reply(404, {"error": "unknown tenant"})
        return Reply(body={"tenantId": self.TENANT_ID, "api_endpoint": self.url, "area": "na1"})

    def _api(self, seen: Seen, version: int, kind: str, resource_id: str) -> Reply:
        with self._lock:
            valid = seen.bearer in self._valid_tokens
        if not valid:
            return Reply(401, {"error": "invalid_token"})
        if seen.headers.get("accept") != "application/json":
            return Reply(406, {"error": "not acceptable"})
        known = self.skills if kind == "skill" else self.points_of_contact
        if version != self.api_version or resource_id not in known:
            return Reply(404, {"error": "not found"})
        if kind == "skill":
            return Reply(body={"skills": [{"skillId": int(resource_id), "skillName": "Sales"}]})
        return Reply(body={"pointsOfContact": [{"pointOfContactId": resource_id}]})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any], n: int) -> str:
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{_b64url(f'signature-{n}-not-checked'.encode())}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: CxoneStub

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out closed the socket; nothing to report."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines are not test output."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        stub = self.server.stub
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        api = _API.match(parts.path)
        route = {
            ("GET", "/.well-known/openid-configuration"): "discovery",
            ("POST", "/auth/token"): "token",
            ("GET", "/.well-known/cxone-configuration"): "tenant",
        }.get((self.command, parts.path))
        if api:
            route = f"{_KINDS[api.group(2)]}:{api.group(3)}"
        seen = Seen(
            route=route or "unknown",
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            form=parse_qs(body) if self.command == "POST" else {},
        )
        reply = stub._record(seen)
        if reply is None:
            if route == "discovery":
                reply = stub._discovery()
            elif route == "token":
                reply = stub._token(seen)
            elif route == "tenant":
                reply = stub._tenant(seen)
            elif api:
                kind, resource_id = _KINDS[api.group(2)], api.group(3)
                reply = stub._api(seen, int(api.group(1)), kind, resource_id)
            else:
                reply = Reply(404, {"error": "no such endpoint"})
        stub._wait(reply.delay_s)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if isinstance(reply.body, dict | list):
            data = json.dumps(reply.body).encode()
        elif isinstance(reply.body, str):
            data = reply.body.encode()
        else:
            data = reply.body or b""
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
