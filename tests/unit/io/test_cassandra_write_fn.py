"""The Cassandra writer's pure parts, without a server: value conversion at the edge, collapsing rows
per primary key, the DDL and INSERT text, error classification and the retry loop."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

from beam_cxone.io import cassandra_write as cw
from beam_cxone.io.cassandra_schema import keyspace_ddl
from beam_cxone.io.cassandra_schema import schema_ddl
from beam_cxone.io.cassandra_schema import table_ddl
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.cassandra_write import CassandraWriteError
from beam_cxone.io.cassandra_write import RejectedRowsError
from beam_cxone.io.cassandra_write import TransientWriteError
from beam_cxone.io.cassandra_write import WriteToCassandra
from beam_cxone.io.cassandra_write import _CassandraWriteFn
from beam_cxone.io.cassandra_write import collapse_last
from beam_cxone.io.cassandra_write import from_cql_value
from beam_cxone.io.cassandra_write import insert_cql
from beam_cxone.io.cassandra_write import is_transient
from beam_cxone.io.cassandra_write import is_unreachable
from beam_cxone.io.cassandra_write import row_from_cql
from beam_cxone.io.cassandra_write import row_to_params
from beam_cxone.io.cassandra_write import to_cql_value
from beam_cxone.io.cassandra_write import write_with_retries
from beam_cxone.tables import CUSTOMER_PROFILES
from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.tables import INTERACTION_VOLUMES
from beam_cxone.tables import PATTERN_ALERTS
from tests.support.cassandra_doubles import FakeExecute

UTC = dt.UTC
CFG = CassandraConfig(hosts=("127.0.0.1",))

# ---- value conversion ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cql_type", "value", "expected"),
    [
        # 1_700_000_000 s is 2023-11-14T22:13:20Z; the 123 ms survive as 123000 µs.
        ("timestamp", 1_700_000_000_123, dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)),
        ("timestamp", 0, dt.datetime(1970, 1, 1, tzinfo=UTC)),
        ("timestamp", -1, dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
        ("date", "2024-02-29", dt.date(2024, 2, 29)),
        ("list<text>", ("e1", "e2"), ["e1", "e2"]),
        ("list<text>", [], []),
        ("text", "VOICE", "VOICE"),
        ("bigint", 7, 7),
        ("timestamp", None, None),
        ("date", None, None),
    ],
)
def test_to_cql_value(cql_type, value, expected):
    assert to_cql_value(cql_type, value) == expected


@pytest.mark.parametrize(
    ("cql_type", "value"),
    [
        ("timestamp", 1.5),
        ("timestamp", "2024-01-01T00:00:00Z"),
        ("timestamp", True),
        ("date", 19000),
        ("date", "2024-13-01"),
        ("list<text>", "e1"),
    ],
)
def test_to_cql_value_rejects_other_representations(cql_type, value):
    with pytest.raises((TypeError, ValueError)):
        to_cql_value(cql_type, value)


@pytest.mark.parametrize(
    ("cql_type", "driver_value", "expected"),
    [
        # The driver returns naive UTC datetimes; aware ones convert the same way.
        ("timestamp", dt.datetime(2023, 11, 14, 22, 13, 20, 123000), 1_700_000_000_123),
        (
            "timestamp",
            dt.datetime(
                2023, 11, 14, 23, 13, 20, 123000, tzinfo=dt.timezone(dt.timedelta(hours=1))
            ),
            1_700_000_000_123,
        ),
        ("timestamp", dt.datetime(1969, 12, 31, 23, 59, 59, 999000), -1),
        ("date", dt.date(2024, 2, 29), "2024-02-29"),
        ("list<text>", ["e1"], ["e1"]),
        ("list<text>", None, []),  # Cassandra stores an empty list as null
        ("text", None, None),
        ("timestamp", None, None),
    ],
)
def test_from_cql_value(cql_type, driver_value, expected):
    assert from_cql_value(cql_type, driver_value) == expected


def test_from_cql_value_reads_the_drivers_date_type():
    class DriverDate:  # the shape of cassandra.util.Date: .date() gives a datetime.date
        def date(self):
            return dt.date(2024, 1, 2)

    assert from_cql_value("date", DriverDate()) == "2024-01-02"


VOLUME_ROW = {
    "channel": "VOICE",
    "day": "2023-11-14",
    "window_start": 1_700_000_000_000,
    "window_end": 1_700_000_010_000,
    "interactions": 2,
    "events": 3,
    "updated_at": 1_700_000_012_345,
}


def test_row_to_params_in_column_order_and_back():
    params = row_to_params(INTERACTION_VOLUMES, VOLUME_ROW)
    assert params == (
        "VOICE",
        dt.date(2023, 11, 14),
        dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        dt.datetime(2023, 11, 14, 22, 13, 30, tzinfo=UTC),
        2,
        3,
        dt.datetime(2023, 11, 14, 22, 13, 32, 345000, tzinfo=UTC),
    )
    assert row_from_cql(INTERACTION_VOLUMES, params) == VOLUME_ROW


def test_row_to_params_needs_exactly_the_columns():
    with pytest.raises(
        ValueError, match=r"missing columns \['events'\], unknown columns \['evnts'\]"
    ):
        row_to_params(
            INTERACTION_VOLUMES,
            {**{k: v for k, v in VOLUME_ROW.items() if k != "events"}, "evnts": 3},
        )


def test_row_to_params_rejects_a_timestamp_out_of_range():
    with pytest.raises(ValueError, match=r"^customer_profiles\.updated_at: "):
        row_to_params(
            CUSTOMER_PROFILES,
            {"customer_id": "c", "tier": None, "region": None, "updated_at": 10**18},
        )


def test_row_to_params_names_the_bad_column_not_the_value():
    with pytest.raises(
        ValueError, match=r"^interaction_volumes\.window_start: timestamp must be int"
    ):
        row_to_params(INTERACTION_VOLUMES, {**VOLUME_ROW, "window_start": "secret-ish text"})


# ---- collapsing per primary key -----------------------------------------------------------------


def test_collapse_last_keeps_the_last_version_of_each_key():
    keyed = [(("a",), "a1"), (("b",), "b1"), (("a",), "a2"), (("c",), "c1"), (("a",), "a3")]
    # a's last version wins, in a's first position; b and c are untouched.
    assert collapse_last(keyed) == ["a3", "b1", "c1"]


def test_collapse_last_uses_the_full_primary_key():
    rows = [
        VOLUME_ROW,
        {**VOLUME_ROW, "window_start": 1_700_000_010_000, "events": 9},
        {**VOLUME_ROW, "events": 4},
    ]
    collapsed = collapse_last((INTERACTION_VOLUMES.key_of(r), r["events"]) for r in rows)
    assert collapsed == [4, 9]  # same (channel, day, window_start) -> the later events=4


def test_collapse_last_of_nothing():
    assert collapse_last([]) == []


def test_the_dofn_collapses_before_writing():
    fn = _CassandraWriteFn(CFG, CUSTOMER_PROFILES)
    written = []
    fn._execute = lambda params: written.extend(params) or [(True, None)] * len(params)
    fn.start_bundle()
    for tier, ts in (("GOLD", 1), ("SILVER", 2), ("BRONZE", 3)):
        fn.process({"customer_id": "c1", "tier": tier, "region": "EU", "updated_at": ts})
    fn.process({"customer_id": "c2", "tier": "GOLD", "region": "US", "updated_at": 4})
    assert written == []  # buffered until the bundle ends
    fn.finish_bundle()
    assert [(p[0], p[1]) for p in written] == [("c1", "BRONZE"), ("c2", "GOLD")]


# ---- CQL text -----------------------------------------------------------------------------------


def test_keyspace_ddl():
    assert keyspace_ddl(
        "cxone_analytics", {"class": "SimpleStrategy", "replication_factor": 1}
    ) == (
        "CREATE KEYSPACE IF NOT EXISTS cxone_analytics WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    assert keyspace_ddl("ks", {"class": "NetworkTopologyStrategy", "dc1": 3, "dc2": 2}) == (
        "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = "
        "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            INTERACTION_VOLUMES,
            "CREATE TABLE IF NOT EXISTS cxone_analytics.interaction_volumes (channel text, day date, "
            "window_start timestamp, window_end timestamp, interactions bigint, events bigint, "
            "updated_at timestamp, PRIMARY KEY ((channel, day), window_start))",
        ),
        (
            PATTERN_ALERTS,
            "CREATE TABLE IF NOT EXISTS cxone_analytics.pattern_alerts (customer_id text, "
            "alert_time timestamp, alert_type text, alert_id text, channel text, failure_count int, "
            "first_failure_time timestamp, failure_event_ids list<text>, callback_event_id text, "
            "tier text, region text, detected_at timestamp, "
            "PRIMARY KEY ((customer_id), alert_time, alert_type, alert_id))",
        ),
        (
            CUSTOMER_PROFILES,
            "CREATE TABLE IF NOT EXISTS cxone_analytics.customer_profiles (customer_id text, "
            "tier text, region text, updated_at timestamp, PRIMARY KEY ((customer_id)))",
        ),
        (
            DEAD_LETTERS,
            "CREATE TABLE IF NOT EXISTS cxone_analytics.dead_letters (day date, "
            "recorded_at timestamp, dead_letter_id text, stage text, reason text, payload text, "
            "source text, PRIMARY KEY ((day), recorded_at, dead_letter_id))",
        ),
    ],
)
def test_table_ddl(table, expected):
    assert table_ddl("cxone_analytics", table) == expected


def test_schema_ddl_is_the_keyspace_then_the_four_tables():
    ddl = schema_ddl(CassandraConfig(hosts=("h",), keyspace="cxone_x"))
    assert [d.split(" (")[0].split(" WITH")[0] for d in ddl] == [
        "CREATE KEYSPACE IF NOT EXISTS cxone_x",
        "CREATE TABLE IF NOT EXISTS cxone_x.interaction_volumes",
        "CREATE TABLE IF NOT EXISTS cxone_x.pattern_alerts",
        "CREATE TABLE IF NOT EXISTS cxone_x.customer_profiles",
        "CREATE TABLE IF NOT EXISTS cxone_x.dead_letters",
    ]


def test_insert_cql_is_a_full_row_upsert():
    assert insert_cql("cxone_analytics", CUSTOMER_PROFILES) == (
        "INSERT INTO cxone_analytics.customer_profiles (customer_id, tier, region, updated_at) "
        "VALUES (?, ?, ?, ?)"
    )
    assert insert_cql("ks", DEAD_LETTERS) == (
        "INSERT INTO ks.dead_letters (day, recorded_at, dead_letter_id, stage, reason, payload, "
        "source) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )


# ---- error classification -----------------------------------------------------------------------


UNREACHABLE = [
    cw.NoHostAvailable("Unable to connect to any servers", {"127.0.0.1:9042": OSError("refused")}),
    cw.ConnectionException("Connection reset"),
]
TRANSIENT_ON_A_LIVE_CLUSTER = [
    cw.WriteTimeout(
        "Coordinator node timed out waiting for replica nodes' responses", write_type=0
    ),  # 0: WriteType.SIMPLE
    cw.Unavailable("Cannot achieve consistency level LOCAL_QUORUM"),
    cw.OperationTimedOut(errors=None, last_host="127.0.0.1:9042"),
    cw.OverloadedErrorMessage(0x1001, "overloaded", None),
    cw.IsBootstrappingErrorMessage(0x1002, "bootstrapping", None),
]
PERMANENT = [
    cw.NoHostAvailable(
        "Unable to connect to any servers",
        {
            "127.0.0.1:9042": cw.AuthenticationFailed(
                "Provided username and/or password are incorrect"
            )
        },
    ),
    TypeError("Received an argument of invalid type for column day"),  # binding a bad row
    ValueError("bad value"),
    RuntimeError("anything unknown is not retried"),
    RejectedRowsError("rejected"),
    CassandraWriteError("not written"),
]


@pytest.mark.parametrize("err", UNREACHABLE, ids=lambda e: type(e).__name__)
def test_unreachable_errors_are_transient(err):
    assert is_transient(err) and is_unreachable(err)


@pytest.mark.parametrize("err", TRANSIENT_ON_A_LIVE_CLUSTER, ids=lambda e: type(e).__name__)
def test_request_errors_are_transient_but_bounded_by_attempts(err):
    assert is_transient(err) and not is_unreachable(err)


@pytest.mark.parametrize("err", PERMANENT, ids=lambda e: type(e).__name__)
def test_permanent_errors(err):
    assert not is_transient(err) and not is_unreachable(err)


# ---- the retry loop -------------------------------------------------------------------------------

FAST = CassandraConfig(
    hosts=("h",), max_attempts=3, retry_budget_s=0.5, initial_backoff_s=0.005, max_backoff_s=0.02
)


def test_retries_only_the_failed_rows():
    execute = FakeExecute(
        {"b": [cw.WriteTimeout("t", write_type=0)], "c": [cw.WriteTimeout("t", write_type=0)] * 2}
    )
    retries, written = [], []
    write_with_retries(
        execute,
        ["a", "b", "c"],
        FAST,
        "ks.t",
        on_retry=lambda n, e, w: retries.append(n),
        on_written=written.append,
    )
    assert execute.calls == [["a", "b", "c"], ["b", "c"], ["c"]]
    assert retries == [1, 2] and sum(written) == 3


def test_a_permanent_error_is_raised_at_once_without_row_contents():
    execute = FakeExecute({"secret-payload": [ValueError("invalid type")]})
    with pytest.raises(RejectedRowsError) as info:
        write_with_retries(execute, ["ok", "secret-payload"], FAST, "ks.dead_letters")
    assert str(info.value) == "1 row(s) rejected writing ks.dead_letters: ValueError: invalid type"
    assert len(execute.calls) == 1
    assert isinstance(info.value.__cause__, ValueError)


def test_request_errors_give_up_after_max_attempts():
    execute = FakeExecute({"a": [cw.WriteTimeout("slow", write_type=0)] * 100})
    with pytest.raises(TransientWriteError, match=r"1 row\(s\) not written to ks.t: WriteTimeout"):
        write_with_retries(execute, ["a"], FAST, "ks.t")
    assert len(execute.calls) == FAST.max_attempts


def test_an_unreachable_cluster_is_retried_past_max_attempts_until_the_budget():
    down = cw.NoHostAvailable("down", {})
    execute = FakeExecute({"a": [down] * 10})  # back after 10 failed attempts
    write_with_retries(execute, ["a"], FAST, "ks.t")
    assert len(execute.calls) == 11 > FAST.max_attempts


def test_an_unreachable_cluster_fails_when_the_budget_is_spent():
    execute = FakeExecute({"a": [cw.NoHostAvailable("down", {})] * 10_000})
    with pytest.raises(TransientWriteError) as info:
        write_with_retries(execute, ["a"], FAST, "ks.t")
    assert info.value.unreachable
    assert FAST.max_attempts < len(execute.calls) < 10_000


# ---- config and transform -------------------------------------------------------------------------


def test_config_defaults_and_validation():
    cfg = CassandraConfig(hosts=["10.0.0.1", "10.0.0.2"])
    assert cfg.hosts == ("10.0.0.1", "10.0.0.2")
    assert (cfg.port, cfg.keyspace, cfg.consistency, cfg.max_in_flight, cfg.max_attempts) == (
        9042,
        "cxone_analytics",
        "LOCAL_QUORUM",
        100,
        5,
    )
    assert cfg.replication == {"class": "SimpleStrategy", "replication_factor": 1}
    with pytest.raises(ValueError) as info:
        CassandraConfig(
            hosts=(), keyspace="Bad-Name", consistency="MOST", ca_file="/ca.pem", max_in_flight=0
        )
    for part in (
        "hosts is empty",
        "keyspace must be",
        "unknown consistency 'MOST'",
        "ca_file needs tls=True",
        "max_in_flight must be >= 1",
    ):
        assert part in str(info.value)
    with pytest.raises(ValueError, match="hosts must be a sequence"):
        CassandraConfig(hosts="127.0.0.1")


def test_credentials_come_from_the_environment_and_stay_out_of_reprs(monkeypatch):
    monkeypatch.delenv(cw.USERNAME_ENV, raising=False)
    monkeypatch.delenv(cw.PASSWORD_ENV, raising=False)
    assert CassandraConfig.credentials() is None
    monkeypatch.setenv(cw.USERNAME_ENV, "writer")
    with pytest.raises(ValueError, match="set both"):
        CassandraConfig.credentials()
    monkeypatch.setenv(cw.PASSWORD_ENV, "s3cr3t-pw")
    assert CassandraConfig.credentials() == ("writer", "s3cr3t-pw")
    fn = _CassandraWriteFn(CFG, INTERACTION_VOLUMES)
    assert b"s3cr3t-pw" not in pickle.dumps(fn) and "s3cr3t-pw" not in repr(CFG)


def test_write_to_cassandra_validates_its_arguments():
    with pytest.raises(TypeError, match="CassandraConfig"):
        WriteToCassandra({"hosts": ["h"]}, INTERACTION_VOLUMES)
    with pytest.raises(TypeError, match="tables.Table"):
        WriteToCassandra(CFG, "interaction_volumes")


class _Cluster:
    def __init__(self):
        self.shutdowns = 0

    def shutdown(self):
        self.shutdowns += 1


def test_writers_of_one_process_share_one_session_until_the_last_releases_it():
    cfg = CassandraConfig(hosts=("10.0.0.1",), port=19042)
    other = CassandraConfig(hosts=("10.0.0.1",), port=19042, keyspace="other_keyspace")
    clusters = []

    def connect():
        clusters.append(_Cluster())
        return clusters[-1], f"session-{len(clusters)}"

    assert cw._SharedSessions.acquire(cfg, connect) == "session-1"
    assert cw._SharedSessions.acquire(other, connect) == "session-1"  # the keyspace is per statement
    cw._SharedSessions.release(cfg)
    assert clusters[0].shutdowns == 0
    cw._SharedSessions.release(other)
    assert clusters[0].shutdowns == 1
    assert cw._SharedSessions.acquire(cfg, connect) == "session-2"  # a new one after the last left
    cw._SharedSessions.release(cfg)
    assert [c.shutdowns for c in clusters] == [1, 1]
