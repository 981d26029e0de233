"""Idempotent upserts of result rows into Apache Cassandra: with `cassandra_schema`, the only modules
that import the cassandra-driver.

Every write is a full-row INSERT on the full primary key (no counters, list appends or LWT), so a
bundle the runner retries after a failure writes exactly the same rows again. Rows arrive as the
pipeline's dicts (`beam_cxone.tables`); timestamps (int epoch ms) and dates ('YYYY-MM-DD') are
converted here, at the edge, and nowhere else.

Ordering: within one flush, rows with the same primary key collapse to the last one to arrive, and a
flush waits for all of its writes, so two writes of one key are never in flight together. A write that
the driver gave up on but the server applies late carries an older client timestamp, so it cannot
overwrite a newer version either.

A row Cassandra refuses for good (InvalidRequest: a key over 64 KiB, an empty partition key) or that
the driver cannot encode is not retried and does not fail the bundle: it becomes a dead letter
(`dead_letter_of_row`: stage `write`, reason `rejected_by_sink`) that WriteToCassandra writes to the
dead_letters table itself. A dead letter row refused in turn is logged and counted, never re-sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import ssl
import struct
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any
from typing import NamedTuple

import apache_beam as beam
import tenacity
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue
from cassandra import AuthenticationFailed
from cassandra import ConsistencyLevel
from cassandra import InvalidRequest
from cassandra import OperationTimedOut
from cassandra import Unavailable
from cassandra import WriteTimeout
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT
from cassandra.cluster import Cluster
from cassandra.cluster import ExecutionProfile
from cassandra.cluster import NoHostAvailable
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.connection import ConnectionException
from cassandra.policies import DCAwareRoundRobinPolicy
from cassandra.policies import ExponentialReconnectionPolicy
from cassandra.policies import TokenAwarePolicy
from cassandra.protocol import IsBootstrappingErrorMessage
from cassandra.protocol import OverloadedErrorMessage
from cassandra.query import PreparedStatement

from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.tables import KEYSPACE
from beam_cxone.tables import Table
from beam_cxone.tables import iso_date

__all__ = [
    "METRICS_NAMESPACE",
    "PASSWORD_ENV",
    "USERNAME_ENV",
    "CassandraConfig",
    "CassandraWriteError",
    "DEAD_LETTER_PAYLOAD_CAP_BYTES",
    "REJECTED_REASON",
    "REJECTED_TAG",
    "RejectedRowsError",
    "UnwritableValueError",
    "TransientWriteError",
    "WriteToCassandra",
    "collapse_last",
    "dead_letter_of_row",
    "execute_upserts",
    "from_cql_value",
    "insert_cql",
    "is_row_rejection",
    "is_transient",
    "is_unreachable",
    "open_session",
    "row_from_cql",
    "row_to_params",
    "to_cql_value",
    "write_with_retries",
]

_LOG = logging.getLogger(__name__)

METRICS_NAMESPACE = "cassandra_write"
# Credentials come from the worker's environment, read in setup(): never a flag, never in the
# pickled pipeline graph, never in a repr or a log line.
USERNAME_ENV = "CASSANDRA_USERNAME"
PASSWORD_ENV = "CASSANDRA_PASSWORD"

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)

# A row the sink refused for good: the dead letter's stage and reason (a code, never a value).
REJECTED_STAGE = "write"
REJECTED_REASON = "rejected_by_sink"
REJECTED_TAG = "rejected"  # the write DoFn's output of dead letter rows for refused rows
# The same cap as a parse dead letter's payload (beam_cxone.parse.PAYLOAD_CAP_BYTES).
DEAD_LETTER_PAYLOAD_CAP_BYTES = 64 * 1024
# What a client-side encoding failure of one statement raises (the driver's bind, our conversion).
_UNENCODABLE = (TypeError, ValueError, OverflowError, struct.error)
# InvalidRequest texts that mean the schema, not the row, is wrong: every row would fail alike.
_SCHEMA_GONE = ("unconfigured table", "does not exist")

# The cluster is away (down, restarting, network): nothing was written, so waiting it out is safe.
_UNREACHABLE = (NoHostAvailable, ConnectionException)
# The cluster answered but could not complete the write now: retry a bounded number of times.
_TRANSIENT = _UNREACHABLE + (
    WriteTimeout,
    Unavailable,
    OperationTimedOut,
    OverloadedErrorMessage,
    IsBootstrappingErrorMessage,
)


def _default_replication() -> dict[str, Any]:
    return {"class": "SimpleStrategy", "replication_factor": 1}


@dataclasses.dataclass(frozen=True)
class CassandraConfig:
    """Where and how to write. Times are seconds.

    Retries: a failed write is retried with exponential backoff and jitter (`initial_backoff_s`
    doubling up to `max_backoff_s`) at most `max_attempts` times in all; while the cluster is
    unreachable (NoHostAvailable, connection errors) attempts go on until `retry_budget_s`, so a
    restart of Cassandra (30 s here) does not fail the bundle. Nothing retries past the budget.
    """

    hosts: tuple[str, ...]
    port: int = 9042
    # 5 for Cassandra 4.0 and later (4 for 3.x); fixed, so the driver does not probe and downgrade.
    protocol_version: int = 5
    keyspace: str = KEYSPACE
    consistency: str = "LOCAL_QUORUM"  # a name of cassandra.ConsistencyLevel; 1 of 1 on one node
    local_dc: str | None = None  # None: the data centre of the first contact point
    tls: bool = False
    ca_file: str | None = None  # PEM bundle to verify the server with; None: the system CAs
    max_in_flight: int = 100
    batch_rows: int = 1000  # rows buffered before a flush inside a bundle (bounds memory)
    max_attempts: int = 5
    retry_budget_s: float = 90.0
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    connect_timeout_s: float = 5.0  # per TCP connect and control-connection query
    request_timeout_s: float = 12.0  # above the server's 10 s write timeout, so it answers first
    replication: dict[str, Any] = dataclasses.field(default_factory=_default_replication)

    def __post_init__(self) -> None:
        if isinstance(self.hosts, str) or not isinstance(self.hosts, Sequence):
            raise ValueError(f"hosts must be a sequence of host names, got {self.hosts!r}")
        object.__setattr__(self, "hosts", tuple(self.hosts))
        errors = []
        if not self.hosts or not all(self.hosts):
            errors.append("hosts is empty")
        if not _IDENTIFIER.match(self.keyspace or ""):
            errors.append(f"keyspace must be a lower-case CQL identifier, got {self.keyspace!r}")
        if self.consistency not in ConsistencyLevel.name_to_value:
            errors.append(f"unknown consistency {self.consistency!r}")
        if self.protocol_version not in (3, 4, 5):
            errors.append(f"protocol_version must be 3, 4 or 5, got {self.protocol_version}")
        if self.ca_file and not self.tls:
            errors.append("ca_file needs tls=True")
        for name in ("max_in_flight", "batch_rows", "max_attempts"):
            if getattr(self, name) < 1:
                errors.append(f"{name} must be >= 1")
        for name in (
            "retry_budget_s",
            "initial_backoff_s",
            "max_backoff_s",
            "connect_timeout_s",
            "request_timeout_s",
        ):
            if getattr(self, name) <= 0:
                errors.append(f"{name} must be > 0")
        if "class" not in self.replication:
            errors.append("replication needs a 'class'")
        if errors:
            raise ValueError("invalid Cassandra config: " + "; ".join(errors))

    @staticmethod
    def credentials() -> tuple[str, str] | None:
        """User and password from the environment at call time (on the worker), or None."""
        user, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
        if not user and not password:
            return None
        if not user or not password:
            raise ValueError(f"set both {USERNAME_ENV} and {PASSWORD_ENV}, or neither")
        return user, password


class CassandraWriteError(RuntimeError):
    """Rows not written. Messages name the table and the driver's error, never row contents."""


class RejectedRowsError(CassandraWriteError):
    """Rows Cassandra refused (InvalidRequest for a bad row, a schema mismatch): never retried."""


class UnwritableValueError(ValueError):
    """A row value that cannot become its column's CQL value (a row problem, not a schema one)."""


class TransientWriteError(CassandraWriteError):
    """Rows that still failed transiently when the retries ran out; the runner retries the bundle."""

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


# ---- values at the edge -------------------------------------------------------------------------


def to_cql_value(cql_type: str, value: Any) -> Any:
    """A pipeline value as the driver binds it: int ms -> aware UTC datetime, 'YYYY-MM-DD' -> date."""
    if value is None:
        return None
    if cql_type == "timestamp":
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"timestamp must be int epoch ms, got {type(value).__name__}")
        return _EPOCH + dt.timedelta(milliseconds=value)
    if cql_type == "date":
        if not isinstance(value, str):
            raise TypeError(f"date must be a 'YYYY-MM-DD' string, got {type(value).__name__}")
        return dt.date.fromisoformat(value)
    if cql_type.startswith("list<"):
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise TypeError(f"{cql_type} must be a list, got {type(value).__name__}")
        return list(value)
    return value


def from_cql_value(cql_type: str, value: Any) -> Any:
    """The inverse of `to_cql_value` for what the driver returns; an empty list reads back as null."""
    if cql_type.startswith("list<"):
        return list(value) if value is not None else []
    if value is None:
        return None
    if cql_type == "timestamp":
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return (aware - _EPOCH) // _ONE_MS
    if cql_type == "date":
        day = value if isinstance(value, dt.date) else value.date()  # cassandra.util.Date
        return day.isoformat()
    return value


def row_to_params(table: Table, row: dict) -> tuple:
    """The INSERT's bind values in column order; a row must have exactly the table's columns."""
    names = table.column_names
    if len(row) != len(names) or not all(c in row for c in names):
        missing = [c for c in names if c not in row]
        unknown = sorted(set(row) - set(names))
        raise ValueError(f"{table.name} row: missing columns {missing}, unknown columns {unknown}")
    params = []
    for column, cql_type in table.columns:
        try:
            params.append(to_cql_value(cql_type, row[column]))
        except (TypeError, ValueError, OverflowError) as err:
            raise UnwritableValueError(f"{table.name}.{column}: {err}") from None
    return tuple(params)


def row_from_cql(table: Table, values: Sequence) -> dict:
    """A driver row (values in table column order) as a pipeline row dict."""
    return {c: from_cql_value(t, v) for (c, t), v in zip(table.columns, values, strict=True)}


def collapse_last(keyed: Iterable[tuple[tuple, Any]]) -> list:
    """One value per key, the last to arrive; keys keep the position of their first arrival."""
    latest: dict[tuple, Any] = {}
    for key, value in keyed:
        latest[key] = value
    return list(latest.values())


def _cap_utf8(text: str, cap: int) -> str:
    """At most `cap` bytes of UTF-8, cut on a character boundary (lone surrogates dropped)."""
    return text.encode("utf-8", "surrogatepass")[:cap].decode("utf-8", "ignore")


def _valid_ms(value: Any) -> bool:
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    try:
        _EPOCH + dt.timedelta(milliseconds=value)
    except OverflowError:
        return False
    return True


def _row_time_ms(table: Table, row: dict) -> int:
    """The row's own time: its first usable timestamp, key columns first; else the wall clock.

    Deterministic for any row with a valid timestamp, so a retried bundle writes the same dead
    letter row again instead of a second one.
    """
    timestamps = [c for c, t in table.columns if t == "timestamp"]
    ordered = [c for c in table.primary_key if c in timestamps]
    ordered += [c for c in timestamps if c not in ordered]
    for column in ordered:
        if _valid_ms(row.get(column)):
            return row[column]
    return int(time.time() * 1000)


def dead_letter_of_row(
    table: Table, row: dict, stage: str = REJECTED_STAGE, reason: str = REJECTED_REASON
) -> dict:
    """The dead_letters row that keeps a result row the sink refused.

    `source` is the table's name; `payload` the row as JSON (columns in table order, values as the
    pipeline holds them) capped at 64 KiB; `dead_letter_id` hashes table, stage, reason and the
    row's primary key the way `records.DeadLetter` hashes its parts, so every version of one key
    maps to one id; `recorded_at` is the row's own time (`_row_time_ms`), `day` its UTC date.
    """
    ordered = {c: row.get(c) for c in table.column_names}
    ordered.update({c: v for c, v in row.items() if c not in ordered})
    payload = json.dumps(ordered, ensure_ascii=False, default=str)
    key = json.dumps([row.get(c) for c in table.primary_key], ensure_ascii=False, default=str)
    digest = hashlib.sha256()
    for part in (table.name, stage, reason, key):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    recorded_at = _row_time_ms(table, row)
    return {
        "day": iso_date(recorded_at),
        "recorded_at": recorded_at,
        "dead_letter_id": digest.hexdigest()[:32],
        "stage": stage,
        "reason": reason,
        "payload": _cap_utf8(payload, DEAD_LETTER_PAYLOAD_CAP_BYTES),
        "source": table.name,
    }


def insert_cql(keyspace: str, table: Table) -> str:
    """The full-row upsert: an INSERT replaces every column of the row with this primary key."""
    columns = table.column_names
    return (
        f"INSERT INTO {keyspace}.{table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )


# ---- errors and retries -------------------------------------------------------------------------


def _refused_everywhere(err: BaseException) -> bool:
    """NoHostAvailable because every node refused the credentials: a retry cannot succeed."""
    errors = getattr(err, "errors", None) or {}
    return bool(errors) and all(isinstance(e, AuthenticationFailed) for e in errors.values())


def is_transient(err: BaseException) -> bool:
    """A retry may succeed: a timeout, an unavailable replica, the cluster away or overloaded."""
    if isinstance(err, TransientWriteError):
        return True
    return isinstance(err, _TRANSIENT) and not _refused_everywhere(err)


def is_row_rejection(err: BaseException) -> bool:
    """This one statement can never be written, whatever the retries: Cassandra refused it
    (InvalidRequest: a key over 64 KiB, an empty partition key, a null key column) or its values
    could not be encoded. Not when the table itself is gone: that fails every row alike."""
    if isinstance(err, InvalidRequest):
        text = str(err).lower()
        return not any(marker in text for marker in _SCHEMA_GONE)
    return isinstance(err, _UNENCODABLE)


def is_unreachable(err: BaseException) -> bool:
    """No node could be reached, so no write happened: retried until the budget, not by count."""
    if isinstance(err, TransientWriteError):
        return err.unreachable
    return isinstance(err, _UNREACHABLE) and not _refused_everywhere(err)


def _describe(err: BaseException) -> str:
    """Error type and message, shortened: the driver's messages name hosts, never credentials."""
    text = str(err).replace("\n", " ")
    return f"{type(err).__name__}: {text[:300]}"


def _describe_rejection(err: BaseException) -> str:
    """Cassandra's own text for a refused statement (it names columns and sizes, not values); only
    the type for a client-side encoding error, whose text may quote the value."""
    return _describe(err) if isinstance(err, InvalidRequest) else type(err).__name__


def _retrying(
    cfg: CassandraConfig, on_retry: Callable[[int, BaseException, float], None]
) -> tenacity.Retrying:
    def stop(state: tenacity.RetryCallState) -> bool:
        err = state.outcome.exception() if state.outcome else None
        if state.seconds_since_start + (state.upcoming_sleep or 0) >= cfg.retry_budget_s:
            return True
        return state.attempt_number >= cfg.max_attempts and not (err and is_unreachable(err))

    def before_sleep(state: tenacity.RetryCallState) -> None:
        on_retry(state.attempt_number, state.outcome.exception(), state.upcoming_sleep)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        # Jitter on top of the capped exponential, so writers that failed together spread out.
        wait=tenacity.wait_exponential(multiplier=cfg.initial_backoff_s, max=cfg.max_backoff_s)
        + tenacity.wait_random(0, cfg.initial_backoff_s),
        stop=stop,
        before_sleep=before_sleep,
        reraise=True,
    )


def write_with_retries(
    execute: Callable[[list], Sequence[tuple[bool, Any]]],
    params: list,
    cfg: CassandraConfig,
    target: str,
    on_retry: Callable[[int, BaseException, float], None] = lambda *_: None,
    on_written: Callable[[int], None] = lambda _: None,
    on_rejected: Callable[[Any, BaseException], None] | None = None,
) -> None:
    """Writes `params` with `execute` (one (success, result) per item), retrying only the failures.

    With `on_rejected`, an item that fails with a row rejection (`is_row_rejection`) is handed to
    it, once, and never retried. Any other permanent failure raises RejectedRowsError at once;
    transient ones are retried per `cfg` and then raise TransientWriteError. Messages name `target`
    and the error, never row contents.
    """
    remaining = list(params)

    def attempt() -> None:
        nonlocal remaining
        results = execute(remaining)
        failed = [(p, res) for p, (ok, res) in zip(remaining, results, strict=True) if not ok]
        on_written(len(remaining) - len(failed))
        if on_rejected is not None:
            for p, res in failed:
                if is_row_rejection(res):
                    on_rejected(p, res)
            failed = [(p, res) for p, res in failed if not is_row_rejection(res)]
        remaining = [p for p, _ in failed]
        if not failed:
            return
        permanent = [res for _, res in failed if not is_transient(res)]
        if permanent:
            raise RejectedRowsError(
                f"{len(permanent)} row(s) rejected writing {target}: {_describe(permanent[0])}"
            ) from permanent[0]
        errors = [res for _, res in failed]
        raise TransientWriteError(
            f"{len(failed)} row(s) not written to {target}: {_describe(errors[-1])}",
            unreachable=any(is_unreachable(e) for e in errors),
        )

    _retrying(cfg, on_retry)(attempt)


# ---- the driver -----------------------------------------------------------------------------------


def open_session(cfg: CassandraConfig) -> tuple[Cluster, Session]:
    """A connected cluster and session; the caller shuts the cluster down."""
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=cfg.local_dc)),
        consistency_level=ConsistencyLevel.name_to_value[cfg.consistency],
        request_timeout=cfg.request_timeout_s,
    )
    creds = cfg.credentials()
    cluster = Cluster(
        list(cfg.hosts),
        port=cfg.port,
        protocol_version=cfg.protocol_version,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        auth_provider=PlainTextAuthProvider(*creds) if creds else None,
        ssl_context=ssl.create_default_context(cafile=cfg.ca_file) if cfg.tls else None,
        connect_timeout=cfg.connect_timeout_s,
        control_connection_timeout=cfg.connect_timeout_s,
        # The default gives up after 64 attempts and waits up to 10 min between them; a node
        # back from a restart must be seen within one backoff step of the writer.
        reconnection_policy=ExponentialReconnectionPolicy(
            base_delay=min(0.5, cfg.max_backoff_s), max_delay=cfg.max_backoff_s, max_attempts=None
        ),
    )
    try:
        return cluster, cluster.connect()
    except Exception:
        cluster.shutdown()
        raise


def execute_upserts(
    session: Session, statement: PreparedStatement, params: list, concurrency: int
) -> list[tuple[bool, Any]]:
    """Runs one prepared statement per params tuple, at most `concurrency` in flight."""
    return execute_concurrent_with_args(
        session, statement, params, concurrency=concurrency, raise_on_first_error=False
    )


# ---- Beam ---------------------------------------------------------------------------------------


class _Pending(NamedTuple):
    """A buffered row: its bind values, the row itself and where it came from (for a dead letter)."""

    params: tuple
    row: dict
    windowed: WindowedValue | None


class _SharedSessions:
    """One Cluster and Session per connection settings in a worker process, shared by every writer
    instance (a job has one per table and per concurrent bundle); shut down when the last releases
    it. A connect fetches the cluster's schema and topology: it cost about 5 % of the streaming job's
    Python time when each writer connected on its own. The driver's Session is thread-safe."""

    _lock = threading.Lock()
    _open: dict[tuple, list] = {}  # key -> [cluster, session, users]

    @staticmethod
    def key(cfg: CassandraConfig) -> tuple:
        return (tuple(cfg.hosts), cfg.port, cfg.protocol_version, cfg.consistency, cfg.local_dc, cfg.tls,
                cfg.ca_file, cfg.connect_timeout_s, cfg.request_timeout_s, cfg.max_backoff_s,
                cfg.credentials())

    @classmethod
    def acquire(cls, cfg: CassandraConfig, connect: Callable[[], tuple[Cluster, Session]]) -> Session:
        key = cls.key(cfg)
        with cls._lock:
            entry = cls._open.get(key)
            if entry is None:
                cluster, session = connect()
                entry = cls._open[key] = [cluster, session, 0]
            entry[2] += 1
            return entry[1]

    @classmethod
    def release(cls, cfg: CassandraConfig) -> None:
        key = cls.key(cfg)
        with cls._lock:
            entry = cls._open.get(key)
            if entry is None:
                return
            entry[2] -= 1
            if entry[2] <= 0:
                del cls._open[key]
                entry[0].shutdown()


class _CassandraWriteFn(beam.DoFn):
    """Buffers a bundle's rows, collapses them per primary key and upserts them concurrently.

    Input: row dicts of `table`. Main output: nothing. Output REJECTED_TAG: for each row the sink
    refused for good (`is_row_rejection`, or a value `row_to_params` cannot convert), its dead
    letter row (`dead_letter_of_row`) in the refused row's window and at its timestamp. With
    `keep_rejected=False` (the writer of dead_letters itself) refused rows are logged and counted
    as dropped instead, so nothing loops. One cluster and session per DoFn instance, opened in
    setup(), or at the first write when `lazy` (the dead letter writer, usually idle).
    Counters (namespace cassandra_write): rows_written, write_retries, batches, rows_rejected,
    rows_dropped.
    """

    def __init__(
        self, cfg: CassandraConfig, table: Table, keep_rejected: bool = True, lazy: bool = False
    ):
        self._cfg = cfg
        self._table = table
        self._keep_rejected = keep_rejected
        self._lazy = lazy
        self._target = f"{cfg.keyspace}.{table.name}"
        self._rows_written = Metrics.counter(METRICS_NAMESPACE, "rows_written")
        self._write_retries = Metrics.counter(METRICS_NAMESPACE, "write_retries")
        self._batches = Metrics.counter(METRICS_NAMESPACE, "batches")
        self._rows_rejected = Metrics.counter(METRICS_NAMESPACE, "rows_rejected")
        self._rows_dropped = Metrics.counter(METRICS_NAMESPACE, "rows_dropped")
        self._session: Session | None = None
        self._insert: PreparedStatement | None = None
        self._buffer: list[tuple[tuple, _Pending]] = []

    def setup(self) -> None:
        if not self._lazy:
            self._connect()

    def _connect(self) -> None:
        def connect() -> tuple[Session, PreparedStatement]:
            session = _SharedSessions.acquire(self._cfg, lambda: open_session(self._cfg))
            try:
                insert = session.prepare(insert_cql(self._cfg.keyspace, self._table))
            except Exception:
                _SharedSessions.release(self._cfg)
                raise
            insert.is_idempotent = True  # lets the driver retry it too
            return session, insert

        # Connecting while Cassandra restarts is the same transient condition as writing then.
        self._session, self._insert = _retrying(self._cfg, self._log_retry)(connect)

    def start_bundle(self) -> None:
        self._buffer = []

    def process(self, row: dict, windowed=beam.DoFn.WindowedValueParam) -> list:
        windowed = windowed if isinstance(windowed, WindowedValue) else None  # direct calls
        try:
            params = row_to_params(self._table, row)  # validates the columns first: clearer errors
        except UnwritableValueError as err:  # this row's value, not the pipeline's columns
            return self._rejected([(_Pending((), row, windowed), err)])
        self._buffer.append((self._table.key_of(row), _Pending(params, row, windowed)))
        if len(self._buffer) >= self._cfg.batch_rows:
            return self._flush()
        return []

    def finish_bundle(self) -> list:
        return self._flush()

    def teardown(self) -> None:
        if self._session is not None:
            _SharedSessions.release(self._cfg)
            self._session = self._insert = None

    def _flush(self) -> list:
        if not self._buffer:
            return []
        pending = collapse_last(self._buffer)
        self._buffer = []
        self._batches.inc()
        if self._lazy and self._session is None:
            self._connect()
        rejected: list[tuple[_Pending, BaseException]] = []
        write_with_retries(
            lambda items: self._execute([item.params for item in items]),
            pending,
            self._cfg,
            self._target,
            on_retry=self._on_retry,
            on_written=self._rows_written.inc,
            on_rejected=lambda item, err: rejected.append((item, err)),
        )
        return self._rejected(rejected)

    def _rejected(self, rejected: list[tuple[_Pending, BaseException]]) -> list:
        """Counts and logs refused rows; their dead letter rows as tagged outputs, if kept."""
        if not rejected:
            return []
        self._rows_rejected.inc(len(rejected))
        first_error = _describe_rejection(rejected[0][1])
        if not self._keep_rejected:
            self._rows_dropped.inc(len(rejected))
            _LOG.error(
                "cassandra %s: %d row(s) refused for good and dropped (%s); dead_letter_id %s",
                self._target,
                len(rejected),
                first_error,
                ", ".join(str(item.row.get("dead_letter_id"))[:40] for item, _ in rejected[:10]),
            )
            return []
        out = []
        for item, _ in rejected:
            dead = dead_letter_of_row(self._table, item.row)
            windowed = item.windowed or WindowedValue(None, MIN_TIMESTAMP, (GlobalWindow(),))
            out.append(TaggedOutput(REJECTED_TAG, windowed.with_value(dead)))
        _LOG.warning(
            "cassandra %s: %d row(s) refused for good (%s); kept in %s as dead_letter_id %s",
            self._target,
            len(rejected),
            first_error,
            DEAD_LETTERS.name,
            ", ".join(o.value.value["dead_letter_id"] for o in out[:10]),
        )
        return out

    def _execute(self, params: list) -> list[tuple[bool, Any]]:
        return execute_upserts(self._session, self._insert, params, self._cfg.max_in_flight)

    def _on_retry(self, attempt: int, err: BaseException, wait_s: float) -> None:
        self._write_retries.inc()
        self._log_retry(attempt, err, wait_s)

    def _log_retry(self, attempt: int, err: BaseException, wait_s: float) -> None:
        _LOG.warning(
            "cassandra %s: attempt %d failed (%s); retrying in %.1f s",
            self._target,
            attempt,
            _describe(err),
            wait_s,
        )


class WriteToCassandra(beam.PTransform):
    """Upserts row dicts of one table into Cassandra; returns an empty PCollection.

    Must stay idempotent: bundles are retried. Only full-row upserts on the full primary key.
    A row Cassandra refuses for good becomes a dead letter row that this transform writes to the
    dead_letters table (step `WriteRejectedRows`); refused dead letter rows are logged and counted.
    """

    def __init__(self, cfg: CassandraConfig, table: Table):
        super().__init__()
        if not isinstance(cfg, CassandraConfig):
            raise TypeError(f"cfg must be a CassandraConfig, got {type(cfg).__name__}")
        if not isinstance(table, Table):
            raise TypeError(f"table must be a tables.Table, got {type(table).__name__}")
        self._cfg, self._table = cfg, table

    def expand(self, rows):
        is_dead_letters = self._table.name == DEAD_LETTERS.name
        results = rows | "UpsertRows" >> beam.ParDo(
            _CassandraWriteFn(self._cfg, self._table, keep_rejected=not is_dead_letters)
        ).with_input_types(dict).with_outputs(REJECTED_TAG, main="written")
        if not is_dead_letters:
            _ = results[REJECTED_TAG] | "WriteRejectedRows" >> beam.ParDo(
                _CassandraWriteFn(self._cfg, DEAD_LETTERS, keep_rejected=False, lazy=True)
            ).with_input_types(dict)
        return results.written
