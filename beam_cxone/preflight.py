"""Start-up check of the connections a job is about to use: Kafka and Cassandra are reached with the
configured security (TLS, SASL, a login) before anything is submitted, and a wrong setting is reported
in one line that names the service, the address and the cause, instead of a client that retries it
for half a minute and then times out.

What is checked, in order, per address:

  Kafka (every bootstrap server until one passes; settings of `consumer_config_from_env`):
    TCP connect -> TLS handshake (SSL, SASL_SSL: the CA of KAFKA_SSL_CAFILE, the host name, the dates)
    -> SASL handshake and authentication (PLAIN, SCRAM-SHA-256/512) -> an authenticated Metadata
    request. With PLAINTEXT/SASL_PLAINTEXT, a port that answers TLS is named as such.
  Cassandra (every contact point until one passes; `CassandraConfig`, CASSANDRA_USERNAME/PASSWORD):
    TCP connect -> TLS handshake (--cassandra_tls, --cassandra_ca_file) or a plaintext CQL OPTIONS
    request -> a driver session with the login -> the keyspace exists (a warning only).

A wrong setting (password, CA, protocol, certificate, a secrets file others can read) fails the
command. An address that cannot be reached at all is only a warning: the job starts and waits for the
service, as it does for an outage while it runs. Messages name users and files, never a secret.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import ssl
import struct
from collections.abc import Iterator
from typing import Any

from beam_cxone.io.cassandra_write import PASSWORD_ENV
from beam_cxone.io.cassandra_write import USERNAME_ENV
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.kafka.config import consumer_config_from_env
from beam_cxone.secret_files import SecretFileError

__all__ = [
    "PreflightError",
    "Unreachable",
    "check_cassandra",
    "check_kafka",
    "preflight",
    "preflight_message",
]

_LOG = logging.getLogger(__name__)

TIMEOUT_S = 5.0  # per connect, handshake and answer
KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# SASL mechanisms checked here; others (GSSAPI, OAUTHBEARER) get the TCP and TLS checks only.
_CHECKED_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# OpenSSL verify codes (X509_V_ERR_*) by cause.
_EXPIRED, _NOT_YET_VALID, _HOSTNAME_MISMATCH = 10, 9, 62
_UNKNOWN_CA = (2, 18, 19, 20, 21)
_TLS_ALERT = b"\x15\x03"  # a TLS alert record: what a TLS port answers to plaintext bytes


class PreflightError(RuntimeError):
    """A setting that cannot work: one line naming the service, the address and the cause."""


class Unreachable(PreflightError):
    """No address of the service could be reached (down, or a wrong host or port): not fatal."""


# ---- the whole check --------------------------------------------------------------------------------


def preflight(
    *,
    kafka_bootstrap: str | None = None,
    cassandra: CassandraConfig | None = None,
    timeout_s: float = TIMEOUT_S,
) -> list[str]:
    """Checks the services a command is about to use; returns one summary line per service.

    Raises PreflightError for a setting that cannot work; an unreachable service is logged as a
    warning (the job waits for it) and reported in the summary.
    """
    lines = []
    for name, check, target in (
        ("Kafka", check_kafka, kafka_bootstrap),
        ("Cassandra", check_cassandra, cassandra),
    ):
        if not target:
            continue
        try:
            lines.append(check(target, timeout_s=timeout_s))
        except Unreachable as err:
            _LOG.warning("preflight: %s; starting anyway, the job waits for it", err)
            lines.append(f"{err} (not checked)")
        except SecretFileError as err:
            raise PreflightError(f"{name}: {err}") from None
    return lines


def preflight_message(
    *,
    kafka_bootstrap: str | None = None,
    cassandra: CassandraConfig | None = None,
    timeout_s: float = TIMEOUT_S,
) -> str | None:
    """`preflight` for a command line: the one-line error, or None when the command may go on."""
    try:
        for line in preflight(kafka_bootstrap=kafka_bootstrap, cassandra=cassandra,
                              timeout_s=timeout_s):
            _LOG.info("preflight: %s", line)
    except PreflightError as err:
        return str(err)
    return None


def _first_passing(label: str, addresses: list[tuple[str, int]], probe) -> str:
    """Probes each address until one passes. Every address unreachable: Unreachable; otherwise the
    first real failure is the error (one reachable address with a wrong setting is enough to tell)."""
    unreachable: list[str] = []
    for host, port in addresses:
        try:
            return probe(host, port)
        except Unreachable as err:
            unreachable.append(str(err))
    raise Unreachable("; ".join(unreachable) if unreachable else f"{label}: no address configured")


# ---- TLS, shared ------------------------------------------------------------------------------------


def _connect(service: str, host: str, port: int, timeout_s: float) -> socket.socket:
    try:
        return socket.create_connection((host, port), timeout=timeout_s)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        if isinstance(err, TimeoutError):
            reason = f"no answer within {timeout_s:g} s"
        raise Unreachable(f"{service} {host}:{port}: cannot connect ({reason})") from None


def _tls(
    service: str,
    host: str,
    port: int,
    sock: socket.socket,
    context: ssl.SSLContext,
    ca_setting: str,
    protocol_hint: str,
    timeout_s: float,
) -> ssl.SSLSocket:
    """The TLS handshake, with each way it fails as one sentence."""
    where = f"{service} {host}:{port}"
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as err:
        sock.close()
        code, text = err.verify_code, err.verify_message
        if code == _EXPIRED:
            raise PreflightError(
                f"{where}: its TLS certificate has expired{_validity(host, port, timeout_s)}: "
                "the server needs a new certificate"
            ) from None
        if code == _NOT_YET_VALID:
            raise PreflightError(
                f"{where}: its TLS certificate is not valid yet{_validity(host, port, timeout_s)}: "
                "check the clocks"
            ) from None
        if code in _UNKNOWN_CA:
            raise PreflightError(
                f"{where}: its TLS certificate is signed by an unknown CA ({text}): {ca_setting}"
            ) from None
        if code == _HOSTNAME_MISMATCH:
            raise PreflightError(
                f"{where}: its TLS certificate is not valid for host {host!r} ({text})"
            ) from None
        raise PreflightError(f"{where}: its TLS certificate was refused ({text})") from None
    except (ssl.SSLError, ConnectionError, TimeoutError) as err:
        sock.close()
        reason = getattr(err, "reason", None) or type(err).__name__
        if isinstance(err, TimeoutError):  # slow, not wrong: the job waits for it
            raise Unreachable(f"{where}: no TLS handshake within {timeout_s:g} s") from None
        if reason in ("WRONG_VERSION_NUMBER", "UNEXPECTED_EOF_WHILE_READING", "RECORD_LAYER_FAILURE",
                      "ConnectionResetError", "SSLEOFError", "PACKET_LENGTH_TOO_LONG",
                      "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "SSLZeroReturnError"):
            raise PreflightError(
                f"{where}: the port does not speak TLS ({reason}): it is a plaintext port; "
                f"{protocol_hint}"
            ) from None
        if reason in ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_HANDSHAKE_FAILURE"):
            raise PreflightError(
                f"{where}: TLS handshake refused ({reason}): the server may require a client "
                "certificate"
            ) from None
        raise PreflightError(f"{where}: TLS handshake failed ({reason})") from None


def _validity(host: str, port: int, timeout_s: float) -> str:
    """' (valid 2020-01-01 00:00 UTC to 2020-01-03 00:00 UTC, CN=localhost)' of the server's
    certificate, fetched again without verification; '' when that fails."""
    try:
        from cryptography import x509

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection((host, port), timeout=timeout_s) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                der = tls.getpeercert(binary_form=True)
        cert = x509.load_der_x509_certificate(der)
        start = cert.not_valid_before_utc.strftime("%Y-%m-%d %H:%M")
        end = cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M")
        return f" (valid {start} UTC to {end} UTC, {cert.subject.rfc4514_string()})"
    except Exception:  # noqa: BLE001 - the dates only add detail to the message
        return ""


def _recv_some(sock: socket.socket) -> bytes:
    """Up to 64 KiB, b'' when the peer closed the connection (or reset it)."""
    try:
        return sock.recv(65536)
    except (ConnectionResetError, ssl.SSLError):
        return b""


# ---- Kafka ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _KafkaSettings:
    protocol: str
    mechanism: str | None
    username: str | None
    password: str | None = dataclasses.field(repr=False)
    cafile: str | None
    certfile: str | None
    keyfile: str | None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def describe(self) -> str:
        if not self.sasl:
            return self.protocol
        return f"{self.protocol} {self.mechanism} as {self.username!r}"


def _kafka_settings() -> _KafkaSettings:
    env: dict[str, Any] = dict(consumer_config_from_env())  # SecretFileError: a readable key file
    protocol = str(env.get("security_protocol") or "PLAINTEXT").upper()
    if protocol not in KAFKA_PROTOCOLS:
        raise PreflightError(
            f"Kafka: KAFKA_SECURITY_PROTOCOL={protocol} is not one of {', '.join(KAFKA_PROTOCOLS)}"
        )
    mechanism = env.get("sasl_mechanism")
    if protocol.startswith("SASL_") and not mechanism:
        raise PreflightError(
            f"Kafka: KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM "
            f"({', '.join(_CHECKED_MECHANISMS)}, ...)"
        )
    settings = _KafkaSettings(
        protocol=protocol,
        mechanism=mechanism,
        username=env.get("sasl_plain_username"),
        password=env.get("sasl_plain_password"),
        cafile=env.get("ssl_cafile"),
        certfile=env.get("ssl_certfile"),
        keyfile=env.get("ssl_keyfile"),
    )
    if settings.sasl and settings.mechanism in _CHECKED_MECHANISMS:
        if not settings.username or not settings.password:
            raise PreflightError(
                f"Kafka: KAFKA_SECURITY_PROTOCOL={protocol} with {settings.mechanism} needs "
                "KAFKA_SASL_PLAIN_USERNAME and KAFKA_SASL_PLAIN_PASSWORD"
            )
    elif not settings.sasl and (settings.username or settings.password):
        _LOG.warning("preflight: KAFKA_SASL_PLAIN_* are set but KAFKA_SECURITY_PROTOCOL=%s does not "
                     "use them", protocol)
    return settings


def _kafka_tls_context(settings: _KafkaSettings) -> ssl.SSLContext:
    """As kafka-python builds it: the CA file (or the system CAs), host name checked, client cert."""
    try:
        context = ssl.create_default_context(cafile=settings.cafile)
        if settings.certfile:
            context.load_cert_chain(settings.certfile, settings.keyfile)
    except (OSError, ssl.SSLError) as err:
        reason = getattr(err, "strerror", None) or getattr(err, "reason", None) or type(err).__name__
        raise PreflightError(
            f"Kafka: cannot load KAFKA_SSL_CAFILE/KAFKA_SSL_CERTFILE/KAFKA_SSL_KEYFILE ({reason})"
        ) from None
    return context


class _KafkaWire:
    """Requests and responses over one socket, encoded by kafka-python's own protocol classes."""

    def __init__(self, sock: socket.socket):
        from kafka.protocol.parser import KafkaProtocol

        self._sock = sock
        self._protocol = KafkaProtocol(client_id="beam-cxone-preflight")

    def call(self, request) -> Any | None:
        """The response, or None when the broker closed the connection instead."""
        self._protocol.send_request(request)
        self._sock.sendall(self._protocol.send_bytes())
        while True:
            data = _recv_some(self._sock)
            if not data:
                return None
            responses = self._protocol.receive_bytes(data)
            if responses:
                return responses[0][1]


def _kafka_error(code: int) -> str:
    from kafka.errors import for_code

    return for_code(code).__name__


def _kafka_probe(settings: _KafkaSettings, host: str, port: int, timeout_s: float) -> str:
    from kafka.protocol.metadata import ApiVersionsRequest
    from kafka.protocol.metadata import MetadataRequest

    where = f"Kafka {host}:{port}"
    sock = _connect("Kafka", host, port, timeout_s)
    try:
        if settings.tls:
            sock = _tls("Kafka", host, port, sock, _kafka_tls_context(settings), _kafka_ca(settings),
                        f"KAFKA_SECURITY_PROTOCOL={settings.protocol} expects a TLS listener", timeout_s)
        wire = _KafkaWire(sock)
        if not settings.tls:
            sock.sendall(_api_versions_v0())
            first = _recv_some(sock)
            if not first or first.startswith(_TLS_ALERT):
                raise PreflightError(
                    f"{where}: the port speaks TLS (it {'answered with a TLS alert' if first else 'closed the connection'} "
                    f"to plaintext) but KAFKA_SECURITY_PROTOCOL={settings.protocol}: set SASL_SSL or SSL "
                    "and KAFKA_SSL_CAFILE"
                )
            sock.close()  # that answer was not read through `wire`: start over on a new connection
            sock = _connect("Kafka", host, port, timeout_s)
            wire = _KafkaWire(sock)
        if settings.sasl and settings.mechanism in _CHECKED_MECHANISMS:
            _kafka_sasl(wire, settings, host, port)
        versions = wire.call(ApiVersionsRequest(version=0))
        if versions is None:
            raise PreflightError(f"{where}: the broker closed the connection on an ApiVersions request")
        metadata_max = {k.api_key: k.max_version for k in versions.api_keys}.get(MetadataRequest.API_KEY)
        if metadata_max is None:
            raise PreflightError(f"{where}: the broker does not answer Metadata requests")
        version = min(metadata_max, MetadataRequest.max_version)
        metadata = wire.call(MetadataRequest(topics=[], allow_auto_topic_creation=False, version=version))
        if metadata is None:
            if not settings.sasl:
                raise PreflightError(
                    f"{where}: the broker closed the connection before authentication: the listener "
                    f"expects SASL but KAFKA_SECURITY_PROTOCOL={settings.protocol} (set SASL_SSL or "
                    "SASL_PLAINTEXT, KAFKA_SASL_MECHANISM and the KAFKA_SASL_PLAIN_* credentials)"
                )
            raise PreflightError(f"{where}: the broker closed the connection on a Metadata request")
        if not metadata.brokers:
            raise PreflightError(f"{where}: the broker answered Metadata without brokers")
        return f"Kafka {host}:{port}: {settings.describe()}, {len(metadata.brokers)} broker(s)"
    except TimeoutError:  # slow, not wrong: the job waits for it
        raise Unreachable(f"{where}: no answer within {timeout_s:g} s") from None
    except OSError as err:  # a reset in the middle: the broker is there but misbehaves
        reason = err.strerror or type(err).__name__
        raise PreflightError(f"{where}: connection failed during the check ({reason})") from None
    finally:
        sock.close()


def _kafka_ca(settings: _KafkaSettings) -> str:
    if settings.cafile:
        return f"KAFKA_SSL_CAFILE={settings.cafile} does not hold the CA that signed it"
    return "no CA of the system store signed it; set KAFKA_SSL_CAFILE to the cluster's CA"


def _api_versions_v0() -> bytes:
    """A framed ApiVersions v0 request: any Kafka listener answers it, before any authentication."""
    client = b"beam-cxone-preflight"
    body = struct.pack(">hhih", 18, 0, 1, len(client)) + client
    return struct.pack(">i", len(body)) + body


def _kafka_sasl(wire: _KafkaWire, settings: _KafkaSettings, host: str, port: int) -> None:
    from kafka.net.sasl import get_sasl_mechanism
    from kafka.protocol.sasl import SaslAuthenticateRequest
    from kafka.protocol.sasl import SaslHandshakeRequest

    where = f"Kafka {host}:{port}"
    handshake = wire.call(SaslHandshakeRequest(mechanism=settings.mechanism, version=1))
    if handshake is None:
        raise PreflightError(f"{where}: the broker closed the connection on the SASL handshake: "
                             "not a SASL listener? check KAFKA_SECURITY_PROTOCOL and the port")
    if handshake.error_code or settings.mechanism not in handshake.mechanisms:
        offered = ", ".join(handshake.mechanisms) or "none"
        raise PreflightError(
            f"{where}: the broker does not accept SASL mechanism {settings.mechanism} (it offers "
            f"{offered}); check KAFKA_SASL_MECHANISM"
        )
    mechanism = get_sasl_mechanism(settings.mechanism)(
        host=host,
        security_protocol=settings.protocol,
        sasl_mechanism=settings.mechanism,
        sasl_plain_username=settings.username,
        sasl_plain_password=settings.password,
    )
    while not mechanism.is_done():
        answer = wire.call(SaslAuthenticateRequest(auth_bytes=mechanism.auth_bytes(), version=1))
        if answer is None:
            raise PreflightError(f"{where}: the broker closed the connection during SASL authentication")
        if answer.error_code:
            detail = (answer.error_message or _kafka_error(answer.error_code)).replace("\n", " ")
            raise PreflightError(
                f"{where}: SASL authentication failed for user {settings.username!r} "
                f"({settings.mechanism}): {detail[:200]}; check KAFKA_SASL_PLAIN_USERNAME and "
                "KAFKA_SASL_PLAIN_PASSWORD"
            )
        try:
            mechanism.receive(answer.auth_bytes)
        except Exception as err:  # noqa: BLE001 - a server proof that does not match, say
            raise PreflightError(
                f"{where}: SASL authentication failed for user {settings.username!r} "
                f"({settings.mechanism}): the broker's answer did not verify ({type(err).__name__})"
            ) from None
    if not mechanism.is_authenticated():
        raise PreflightError(f"{where}: SASL authentication failed for user {settings.username!r}")


def _addresses(spec: str, default_port: int) -> list[tuple[str, int]]:
    out = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, str(default_port)
        out.append((host.strip("[]"), int(port)))
    return out


def check_kafka(bootstrap_servers: str, *, timeout_s: float = TIMEOUT_S) -> str:
    """Checks the Kafka cluster with the environment's security settings; the summary line."""
    settings = _kafka_settings()
    try:
        addresses = _addresses(bootstrap_servers, 9092)
    except ValueError:
        raise PreflightError(f"Kafka: bootstrap servers {bootstrap_servers!r} are not host:port") from None
    return _first_passing(
        "Kafka", addresses, lambda host, port: _kafka_probe(settings, host, port, timeout_s)
    )


# ---- Cassandra --------------------------------------------------------------------------------------

_CQL_OPTIONS_V4 = bytes([0x04, 0, 0, 0, 0x05, 0, 0, 0, 0])  # version 4 request, stream 0, OPTIONS


def _cassandra_probe(cfg: CassandraConfig, host: str, port: int, timeout_s: float) -> str:
    where = f"Cassandra {host}:{port}"
    sock = _connect("Cassandra", host, port, timeout_s)
    try:
        if cfg.tls:
            try:
                context = ssl.create_default_context(cafile=cfg.ca_file)  # as open_session
            except (OSError, ssl.SSLError) as err:
                reason = getattr(err, "strerror", None) or type(err).__name__
                raise PreflightError(f"Cassandra: cannot load --cassandra_ca_file ({reason})") from None
            ca = (f"--cassandra_ca_file={cfg.ca_file} does not hold the CA that signed it"
                  if cfg.ca_file else
                  "no CA of the system store signed it; set --cassandra_ca_file to the cluster's CA")
            sock = _tls("Cassandra", host, port, sock, context, ca,
                        "drop --cassandra_tls or use the node's TLS port", timeout_s)
        else:
            sock.sendall(_CQL_OPTIONS_V4)
            first = _recv_some(sock)
            if not first or first.startswith(_TLS_ALERT):
                raise PreflightError(
                    f"{where}: the node {'answered with a TLS alert' if first else 'closed the connection'} "
                    "on a plaintext CQL request: it expects TLS; add --cassandra_tls and "
                    "--cassandra_ca_file"
                )
    except TimeoutError:  # slow, not wrong: the job waits for it
        raise Unreachable(f"{where}: no answer within {timeout_s:g} s") from None
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise PreflightError(f"{where}: connection failed during the check ({reason})") from None
    finally:
        sock.close()
    return _cassandra_login(dataclasses.replace(cfg, hosts=(host,), port=port), timeout_s)


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """The driver logs each failed connection with a traceback: the check reports it once itself."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _cassandra_login(cfg: CassandraConfig, timeout_s: float) -> str:
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable

    from beam_cxone.io.cassandra_write import open_session

    host, port = cfg.hosts[0], cfg.port
    where = f"Cassandra {host}:{port}"
    try:
        creds = cfg.credentials()
    except ValueError as err:
        raise PreflightError(f"Cassandra: {err}") from None
    user = creds[0] if creds else None
    quick = dataclasses.replace(cfg, connect_timeout_s=timeout_s, request_timeout_s=max(timeout_s, 5.0))
    try:
        with _quiet("cassandra"):
            cluster, session = open_session(quick)
    except NoHostAvailable as err:
        errors = list((getattr(err, "errors", None) or {}).values())
        auth = [e for e in errors if isinstance(e, AuthenticationFailed)]
        if auth and user is None:
            raise PreflightError(
                f"{where}: the node requires a login; set {USERNAME_ENV} and {PASSWORD_ENV}"
            ) from None
        if auth:
            detail = _server_message(auth[0])
            raise PreflightError(
                f"{where}: authentication failed for user {user!r} ({detail}); check {USERNAME_ENV} "
                f"and {PASSWORD_ENV}"
            ) from None
        # Reachable, TLS fine, no refusal: slow or starting (timeouts) - the job waits for it.
        detail = " ".join((str(errors[0]) if errors else str(err)).split())
        raise Unreachable(f"{where}: no session within {timeout_s:g} s ({detail[:200]})") from None
    except Exception as err:  # noqa: BLE001 - anything else the driver raises: named, one line
        detail = " ".join(str(err).split())
        raise PreflightError(f"{where}: the driver could not connect ({type(err).__name__}: "
                             f"{detail[:200]})") from None
    try:
        if cfg.keyspace not in cluster.metadata.keyspaces:
            _LOG.warning("preflight: Cassandra keyspace %s does not exist (create it with "
                         "`python -m beam_cxone schema`)", cfg.keyspace)
        release = session.execute("SELECT release_version FROM system.local").one().release_version
    finally:
        with _quiet("cassandra"):
            cluster.shutdown()
    how = ("TLS" if cfg.tls else "plaintext") + (f" as {user!r}" if user else ", no login")
    return f"Cassandra {host}:{port}: {how}, release {release}"


def _server_message(err: Exception) -> str:
    """The server's reason of an AuthenticationFailed ('... and/or password are incorrect')."""
    text = str(err).replace("\n", " ")
    marker = 'message="'
    if marker in text:
        text = text.split(marker, 1)[1].rstrip('"')
    return text[:200]


def check_cassandra(cfg: CassandraConfig, *, timeout_s: float = TIMEOUT_S) -> str:
    """Checks the Cassandra cluster with the config's TLS and the environment's login."""
    return _first_passing(
        "Cassandra",
        [(host, cfg.port) for host in cfg.hosts],
        lambda host, port: _cassandra_probe(cfg, host, port, timeout_s),
    )
