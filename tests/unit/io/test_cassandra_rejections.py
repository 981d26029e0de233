"""Rows the sink refuses for good, without a server: which errors count as a refused row, the dead
letter row made of it, the retry loop handing refused rows out, and the write DoFn called directly
(refused rows become tagged dead letter rows; refused dead letter rows are dropped and counted)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import apache_beam as beam
import pytest
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import GlobalWindow
from apache_beam.transforms.window import IntervalWindow
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import WindowedValue
from cassandra import InvalidRequest
from cassandra import Unauthorized

from beam_cxone.io import cassandra_write as cw
from beam_cxone.io.cassandra_write import DEAD_LETTER_PAYLOAD_CAP_BYTES
from beam_cxone.io.cassandra_write import REJECTED_TAG
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.cassandra_write import RejectedRowsError
from beam_cxone.io.cassandra_write import WriteToCassandra
from beam_cxone.io.cassandra_write import _CassandraWriteFn
from beam_cxone.io.cassandra_write import dead_letter_of_row
from beam_cxone.io.cassandra_write import is_row_rejection
from beam_cxone.io.cassandra_write import is_transient
from beam_cxone.io.cassandra_write import write_with_retries
from beam_cxone.tables import CUSTOMER_PROFILES
from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.tables import PATTERN_ALERTS
from tests.support.cassandra_doubles import FakeExecute
from tests.support.cassandra_doubles import direct_counters

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
CFG = CassandraConfig(hosts=("127.0.0.1",))
FAST = CassandraConfig(
    hosts=("h",), max_attempts=3, retry_budget_s=0.5, initial_backoff_s=0.005, max_backoff_s=0.02
)
# What Cassandra 5.0 answers for a customer_id of 65,536 bytes and for an empty one.
KEY_TOO_LONG = InvalidRequest(
    'Error from server: code=2200 [Invalid query] message="Key length of 65536 is longer than '
    'maximum of 65535"'
)
EMPTY_KEY = InvalidRequest(
    'Error from server: code=2200 [Invalid query] message="Key may not be empty"'
)
PROFILE = {"customer_id": "c1", "tier": "GOLD", "region": "EU", "updated_at": T0}


def expected_id(table: str, key: list) -> str:
    """The documented recipe: sha256 of table, stage, reason, key JSON, each followed by 0x1f."""
    digest = hashlib.sha256()
    for part in (table, "write", "rejected_by_sink", json.dumps(key, ensure_ascii=False)):
        digest.update(part.encode() + b"\x1f")
    return digest.hexdigest()[:32]


# ---- the dead letter row ------------------------------------------------------------------------


def test_dead_letter_of_row_is_the_exact_row():
    assert dead_letter_of_row(CUSTOMER_PROFILES, {**PROFILE, "customer_id": ""}) == {
        "day": "2023-11-14",
        "recorded_at": T0,  # the row's own time: a retried bundle writes the same row again
        "dead_letter_id": expected_id("customer_profiles", [""]),
        "stage": "write",
        "reason": "rejected_by_sink",
        "payload": '{"customer_id": "", "tier": "GOLD", "region": "EU", "updated_at": 1700000000000}',
        "source": "customer_profiles",
    }


def test_the_id_is_the_table_and_primary_key():
    a = dead_letter_of_row(CUSTOMER_PROFILES, PROFILE)
    a_later = dead_letter_of_row(CUSTOMER_PROFILES, {**PROFILE, "tier": "SILVER"})
    b = dead_letter_of_row(CUSTOMER_PROFILES, {**PROFILE, "customer_id": "c2"})
    assert a["dead_letter_id"] == a_later["dead_letter_id"] != b["dead_letter_id"]
    assert a["payload"] != a_later["payload"]


def test_the_payload_is_capped_at_64_kib_on_a_character_boundary():
    long_key = dead_letter_of_row(CUSTOMER_PROFILES, {**PROFILE, "customer_id": "c" * 65_536})
    assert long_key["payload"] == ('{"customer_id": "' + "c" * 65_536)[:DEAD_LETTER_PAYLOAD_CAP_BYTES]
    assert long_key["dead_letter_id"] == expected_id("customer_profiles", ["c" * 65_536])
    wide = dead_letter_of_row(CUSTOMER_PROFILES, {**PROFILE, "customer_id": "ä" * 40_000})
    payload = wide["payload"].encode()
    assert len(payload) == DEAD_LETTER_PAYLOAD_CAP_BYTES - 1  # 17 ASCII bytes, then 2-byte chars
    assert wide["payload"] == '{"customer_id": "' + "ä" * ((DEAD_LETTER_PAYLOAD_CAP_BYTES - 17) // 2)


def test_recorded_at_prefers_a_key_timestamp():
    alert = {
        "customer_id": "c1", "alert_time": T0 + 5, "alert_type": "X", "alert_id": "a" * 70_000,
        "channel": "voice", "failure_count": 3, "first_failure_time": T0 - 100_000_000,
        "failure_event_ids": ["e1"], "callback_event_id": "e4", "tier": "GOLD", "region": "EU",
        "detected_at": T0 + 9,
    }
    row = dead_letter_of_row(PATTERN_ALERTS, alert)
    assert (row["recorded_at"], row["day"]) == (T0 + 5, "2023-11-14")
    assert row["dead_letter_id"] == expected_id(
        "pattern_alerts", ["c1", T0 + 5, "X", "a" * 70_000]
    )


def test_recorded_at_falls_back_to_the_clock_when_no_timestamp_is_usable(monkeypatch):
    monkeypatch.setattr(cw.time, "time", lambda: 1_800_000_000.25)
    row = dead_letter_of_row(CUSTOMER_PROFILES, {**PROFILE, "updated_at": 2**62})
    assert (row["recorded_at"], row["day"]) == (1_800_000_000_250, "2027-01-15")
    assert '"updated_at": 4611686018427387904' in row["payload"]


# ---- which errors are a refused row -------------------------------------------------------------


@pytest.mark.parametrize(
    "err",
    [
        KEY_TOO_LONG,
        EMPTY_KEY,
        InvalidRequest("Invalid null value in condition for column dead_letter_id"),
        TypeError('Received an argument of invalid type for column "failure_count"'),
        UnicodeEncodeError("utf-8", "x\ud800", 1, 2, "surrogates not allowed"),
        OverflowError("date value out of range"),
        cw.struct.error("'i' format requires -2147483648 <= number <= 2147483647"),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e)[-25:],
)
def test_row_rejections(err):
    assert is_row_rejection(err) and not is_transient(err)


@pytest.mark.parametrize(
    "err",
    [
        InvalidRequest("Error from server: code=2200 [Invalid query] message=\"unconfigured table x\""),
        InvalidRequest('message="Keyspace cxone_x does not exist"'),
        Unauthorized("User writer has no MODIFY permission"),
        cw.WriteTimeout("t", write_type=0),
        cw.NoHostAvailable("down", {}),
        RejectedRowsError("rejected"),
        RuntimeError("unknown"),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e)[-25:],
)
def test_not_row_rejections(err):
    assert not is_row_rejection(err)


# ---- the retry loop hands refused rows out --------------------------------------------------------


def test_a_refused_row_is_handed_out_once_and_never_retried():
    execute = FakeExecute({"poison": [EMPTY_KEY] * 9, "slow": [cw.WriteTimeout("t", write_type=0)]})
    refused, written = [], []
    write_with_retries(
        execute,
        ["a", "poison", "slow"],
        FAST,
        "ks.t",
        on_written=written.append,
        on_rejected=lambda p, e: refused.append((p, e)),
    )
    assert refused == [("poison", EMPTY_KEY)]
    assert execute.calls == [["a", "poison", "slow"], ["slow"]]
    assert sum(written) == 2


def test_other_permanent_errors_still_fail_the_bundle():
    execute = FakeExecute({"b": [Unauthorized("no MODIFY permission")], "c": [EMPTY_KEY]})
    refused = []
    with pytest.raises(RejectedRowsError, match=r"^1 row\(s\) rejected writing ks.t: Unauthorized"):
        write_with_retries(
            execute, ["a", "b", "c"], FAST, "ks.t", on_rejected=lambda p, e: refused.append(p)
        )
    assert refused == ["c"] and len(execute.calls) == 1


# ---- the write DoFn, called directly ------------------------------------------------------------


def refusing(fn: _CassandraWriteFn, refuse: dict[str, BaseException]) -> list:
    """Replaces fn's driver call: rows whose first bind value is in `refuse` fail with its error."""
    written: list = []

    def execute(params):
        out = []
        for p in params:
            if p[0] in refuse:
                out.append((False, refuse[p[0]]))
            else:
                written.append(p)
                out.append((True, None))
        return out

    fn._execute = execute
    return written


def test_a_refused_row_becomes_a_tagged_dead_letter_and_the_rest_is_written():
    fn = _CassandraWriteFn(CFG, CUSTOMER_PROFILES)
    poison = {**PROFILE, "customer_id": ""}
    written = refusing(fn, {"": EMPTY_KEY})
    window = IntervalWindow(Timestamp(1_700_000_000), Timestamp(1_700_000_010))
    with direct_counters() as counter:
        fn.start_bundle()
        assert fn.process(PROFILE) == []
        assert fn.process(poison, WindowedValue(poison, Timestamp(1_700_000_005), (window,))) == []
        out = fn.finish_bundle()
        assert (counter("rows_written"), counter("rows_rejected"), counter("rows_dropped")) == (1, 1, 0)
    assert [p[0] for p in written] == ["c1"]
    assert len(out) == 1 and isinstance(out[0], TaggedOutput) and out[0].tag == REJECTED_TAG
    dead = out[0].value
    # In the refused row's window, at its timestamp.
    assert (dead.timestamp, dead.windows) == (Timestamp(1_700_000_005), (window,))
    assert dead.value == dead_letter_of_row(CUSTOMER_PROFILES, poison)


def test_a_row_the_edge_cannot_convert_is_a_dead_letter_at_once():
    fn = _CassandraWriteFn(CFG, CUSTOMER_PROFILES)
    written = refusing(fn, {})
    fn.start_bundle()
    with direct_counters() as counter:
        out = fn.process({**PROFILE, "updated_at": "2023-11-14T22:13:20Z"})
        assert counter("rows_rejected") == 1
    assert [o.tag for o in out] == [REJECTED_TAG]
    assert out[0].value.windows == (GlobalWindow(),)  # a direct call has no window
    assert fn.finish_bundle() == [] and written == []
    with pytest.raises(ValueError, match="missing columns"):  # the pipeline's bug: not a row's
        fn.process({"customer_id": "c1"})


def test_a_flush_inside_process_outputs_the_dead_letters():
    fn = _CassandraWriteFn(CassandraConfig(hosts=("h",), batch_rows=2), CUSTOMER_PROFILES)
    refusing(fn, {"x" * 65_536: KEY_TOO_LONG})
    fn.start_bundle()
    assert fn.process({**PROFILE, "customer_id": "x" * 65_536}) == []
    out = fn.process(PROFILE)  # the second row fills the batch
    assert [o.value.value["source"] for o in out] == ["customer_profiles"]


def test_a_refused_dead_letter_is_dropped_and_counted_not_looped(caplog):
    fn = _CassandraWriteFn(CFG, DEAD_LETTERS, keep_rejected=False)
    letter = dead_letter_of_row(CUSTOMER_PROFILES, {**PROFILE, "region": "private-ish"})
    refusing(fn, {dt.date(2023, 11, 14): InvalidRequest('message="Key may not be empty"')})
    fn.start_bundle()
    with direct_counters() as counter:
        fn.process(letter)
        assert fn.finish_bundle() == []
        assert (counter("rows_rejected"), counter("rows_dropped")) == (1, 1)
    assert letter["dead_letter_id"] in caplog.text and "private-ish" not in caplog.text


def test_write_to_cassandra_writes_refused_rows_to_dead_letters_itself():
    p = beam.Pipeline()
    rows = p | beam.Create([PROFILE])
    _ = rows | "Profiles" >> WriteToCassandra(CFG, CUSTOMER_PROFILES)
    _ = rows | "Dead" >> WriteToCassandra(CFG, DEAD_LETTERS)
    labels = {t.unique_name for t in p.to_runner_api().components.transforms.values()}
    assert {"Profiles/UpsertRows", "Profiles/WriteRejectedRows", "Dead/UpsertRows"} <= labels
    assert "Dead/WriteRejectedRows" not in labels  # dead letters refused are not sent anywhere
