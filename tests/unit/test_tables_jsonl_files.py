"""Result tables (docs/SEMANTICS.md), the JSON Lines export format and the JSON Lines file reader (tier 1).

Anchors (checked with `date -u -d @SECONDS`):
  1_795_860_000_000 ms = 2026-11-28T10:00:00Z
  1_795_910_400_000 ms = 2026-11-29T00:00:00Z (the next UTC midnight)
"""

from __future__ import annotations

import pytest

from beam_cxone.io.files import records_of_lines
from beam_cxone.io.jsonl import to_json_line
from beam_cxone.parse import parse_record
from beam_cxone.records import DeadLetter
from beam_cxone.records import RawRecord
from beam_cxone.tables import CUSTOMER_PROFILES
from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.tables import INTERACTION_VOLUMES
from beam_cxone.tables import KEYSPACE
from beam_cxone.tables import PATTERN_ALERTS
from beam_cxone.tables import TABLES
from beam_cxone.tables import iso_date
from beam_cxone.tables import iso_millis

T0 = 1_795_860_000_000  # 2026-11-28T10:00:00Z
MIDNIGHT = 1_795_910_400_000  # 2026-11-29T00:00:00Z


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        pytest.param(0, "1970-01-01T00:00:00.000Z", id="epoch"),
        pytest.param(1, "1970-01-01T00:00:00.001Z", id="one-ms"),
        pytest.param(-1, "1969-12-31T23:59:59.999Z", id="minus-one-ms"),  # negative: day before
        pytest.param(-86_400_000, "1969-12-31T00:00:00.000Z", id="minus-one-day"),
        pytest.param(-1_500, "1969-12-31T23:59:58.500Z", id="minus-1.5s"),
        pytest.param(T0 + 123, "2026-11-28T10:00:00.123Z", id="t0-123"),
        pytest.param(MIDNIGHT - 1, "2026-11-28T23:59:59.999Z", id="last-ms-of-day"),
        pytest.param(MIDNIGHT, "2026-11-29T00:00:00.000Z", id="midnight"),
        pytest.param(253_402_300_799_999, "9999-12-31T23:59:59.999Z", id="max"),
    ],
)
def test_iso_millis(ms, text):
    assert iso_millis(ms) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        pytest.param(-62_135_596_800_000, "0001-01-01T00:00:00.000Z", id="year-1"),
        pytest.param(-30_610_310_400_000, "0999-12-31T00:00:00.000Z", id="year-999"),
    ],
)
def test_iso_millis_four_digit_year(ms, text):
    # ISO-8601 needs four year digits; parse_event_time accepts 0001-01-01T00:00:00Z.
    assert parse_record(
        RawRecord(('{"eventId":"e","eventTime":"' + text + '","contactId":"c","channel":"voice",'
                   '"eventType":"CONTACT_STARTED"}').encode(), "s", 0)
    ).event_time_ms == ms  # fmt: skip
    assert iso_millis(ms) == text


@pytest.mark.parametrize(
    ("ms", "day"),
    [
        pytest.param(0, "1970-01-01", id="epoch"),
        pytest.param(-1, "1969-12-31", id="negative"),  # one ms before the epoch
        pytest.param(T0, "2026-11-28", id="t0"),
        pytest.param(MIDNIGHT - 1, "2026-11-28", id="last-ms-of-day"),  # still the 28th
        pytest.param(MIDNIGHT, "2026-11-29", id="midnight"),  # the 29th starts
        pytest.param(-62_135_596_800_000, "0001-01-01", id="year-1"),
    ],
)
def test_iso_date(ms, day):
    assert iso_date(ms) == day


# ---------------------------------------------------------------------------------------------
# Table descriptions against the DDL of docs/SEMANTICS.md
# ---------------------------------------------------------------------------------------------


def test_tables_match_pipeline_ddl():
    # Column names and types in DDL order, and the primary keys, copied from docs/SEMANTICS.md.
    assert KEYSPACE == "cxone_analytics"
    assert set(TABLES) == {
        "interaction_volumes",
        "pattern_alerts",
        "customer_profiles",
        "dead_letters",
    }
    assert INTERACTION_VOLUMES.columns == (
        ("channel", "text"), ("day", "date"), ("window_start", "timestamp"),
        ("window_end", "timestamp"), ("interactions", "bigint"), ("events", "bigint"),
        ("updated_at", "timestamp"),
    )  # fmt: skip
    assert INTERACTION_VOLUMES.primary_key == ("channel", "day", "window_start")
    assert INTERACTION_VOLUMES.partition_key == ("channel", "day")
    assert PATTERN_ALERTS.columns == (
        ("customer_id", "text"), ("alert_time", "timestamp"), ("alert_type", "text"),
        ("alert_id", "text"), ("channel", "text"), ("failure_count", "int"),
        ("first_failure_time", "timestamp"), ("failure_event_ids", "list<text>"),
        ("callback_event_id", "text"), ("tier", "text"), ("region", "text"),
        ("detected_at", "timestamp"),
    )  # fmt: skip
    assert PATTERN_ALERTS.primary_key == ("customer_id", "alert_time", "alert_type", "alert_id")
    assert PATTERN_ALERTS.partition_key == ("customer_id",)
    assert CUSTOMER_PROFILES.columns == (
        ("customer_id", "text"), ("tier", "text"), ("region", "text"), ("updated_at", "timestamp"),
    )  # fmt: skip
    assert CUSTOMER_PROFILES.primary_key == ("customer_id",)
    assert DEAD_LETTERS.columns == (
        ("day", "date"), ("recorded_at", "timestamp"), ("dead_letter_id", "text"),
        ("stage", "text"), ("reason", "text"), ("payload", "text"), ("source", "text"),
    )  # fmt: skip
    assert DEAD_LETTERS.primary_key == ("day", "recorded_at", "dead_letter_id")
    assert DEAD_LETTERS.partition_key == ("day",)


VOLUME_ROW = {
    "channel": "voice",
    "day": "2026-11-28",
    "window_start": T0,
    "window_end": T0 + 10_000,
    "interactions": 2,
    "events": 3,
    "updated_at": T0 + 12_345,
}
ALERT_ROW = {
    "customer_id": "cust-1",
    "alert_time": T0 + 20_000,
    "alert_type": "REPEATED_FAILURE_CALLBACK",
    "alert_id": "0123456789abcdef0123456789abcdef",
    "channel": "chat",
    "failure_count": 3,
    "first_failure_time": T0,
    "failure_event_ids": ["f1", "f2", "f3"],
    "callback_event_id": "cb",
    "tier": "gold",
    "region": "EU",
    "detected_at": T0 + 80_001,
}
PROFILE_ROW = {"customer_id": "cust-1", "tier": "gold", "region": "EU", "updated_at": T0 + 1}
DEAD_ROW = {
    "day": "2026-11-28",
    "recorded_at": T0 + 5_000,
    "dead_letter_id": "fedcba9876543210fedcba9876543210",
    "stage": "parse",
    "reason": "invalid_json",
    "payload": '{"agent":"Zoë", "x":\n',
    "source": "cxone-data-actions/3/42",
}


@pytest.mark.parametrize(
    ("table", "row", "key"),
    [
        pytest.param(INTERACTION_VOLUMES, VOLUME_ROW, ("voice", "2026-11-28", T0), id="volumes"),
        pytest.param(
            PATTERN_ALERTS,
            ALERT_ROW,
            (
                "cust-1",
                T0 + 20_000,
                "REPEATED_FAILURE_CALLBACK",
                "0123456789abcdef0123456789abcdef",
            ),
            id="alerts",
        ),
        pytest.param(CUSTOMER_PROFILES, PROFILE_ROW, ("cust-1",), id="profiles"),
        pytest.param(
            DEAD_LETTERS,
            DEAD_ROW,
            ("2026-11-28", T0 + 5_000, "fedcba9876543210fedcba9876543210"),
            id="dead-letters",
        ),
    ],
)
def test_key_of(table, row, key):
    # The full primary key, partition key first, then clustering columns.
    assert table.key_of(row) == key


def test_key_of_missing_key_column_raises():
    # A row without a key column has no key: an error, not a silent None.
    with pytest.raises(KeyError):
        CUSTOMER_PROFILES.key_of({"tier": "gold"})


# ---------------------------------------------------------------------------------------------
# to_json_line
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "row", "line"),
    [
        # Columns in table order, timestamps ISO-8601 UTC with ms and Z, dates as text.
        pytest.param(
            INTERACTION_VOLUMES,
            VOLUME_ROW,
            '{"channel": "voice", "day": "2026-11-28", "window_start": "2026-11-28T10:00:00.000Z", '
            '"window_end": "2026-11-28T10:00:10.000Z", "interactions": 2, "events": 3, '
            '"updated_at": "2026-11-28T10:00:12.345Z"}',
            id="volumes",
        ),
        # Lists as JSON arrays.
        pytest.param(
            PATTERN_ALERTS,
            ALERT_ROW,
            '{"customer_id": "cust-1", "alert_time": "2026-11-28T10:00:20.000Z", '
            '"alert_type": "REPEATED_FAILURE_CALLBACK", "alert_id": "0123456789abcdef0123456789abcdef", '
            '"channel": "chat", "failure_count": 3, "first_failure_time": "2026-11-28T10:00:00.000Z", '
            '"failure_event_ids": ["f1", "f2", "f3"], "callback_event_id": "cb", "tier": "gold", '
            '"region": "EU", "detected_at": "2026-11-28T10:01:20.001Z"}',
            id="alerts",
        ),
        pytest.param(
            CUSTOMER_PROFILES,
            PROFILE_ROW,
            '{"customer_id": "cust-1", "tier": "gold", "region": "EU", '
            '"updated_at": "2026-11-28T10:00:00.001Z"}',
            id="profiles",
        ),
        # Non-ASCII unescaped; quotes and the newline of the payload escaped: one line.
        pytest.param(
            DEAD_LETTERS,
            DEAD_ROW,
            '{"day": "2026-11-28", "recorded_at": "2026-11-28T10:00:05.000Z", '
            '"dead_letter_id": "fedcba9876543210fedcba9876543210", "stage": "parse", '
            '"reason": "invalid_json", "payload": "{\\"agent\\":\\"Zoë\\", \\"x\\":\\n", '
            '"source": "cxone-data-actions/3/42"}',
            id="dead-letters",
        ),
    ],
)
def test_to_json_line(table, row, line):
    assert to_json_line(table, row) == line
    assert "\n" not in to_json_line(table, row)


def test_to_json_line_missing_and_extra_columns():
    # A missing column (or a None timestamp) is null; keys outside the table are not exported.
    row = {"customer_id": "c", "tier": None, "updated_at": None, "secret": "x"}
    assert to_json_line(CUSTOMER_PROFILES, row) == (
        '{"customer_id": "c", "tier": null, "region": null, "updated_at": null}'
    )


# ---------------------------------------------------------------------------------------------
# records_of_lines
# ---------------------------------------------------------------------------------------------

PATH = "in/day1.jsonl"
MTIME = 1_795_860_000_000


def rec(payload: bytes, line: int) -> RawRecord:
    return RawRecord(
        payload=payload, source=f"{PATH}:{line}", source_time_ms=MTIME, order=(PATH, line)
    )


def test_records_of_lines():
    lines = [
        b'{"a":1}\n',  # line 1: a record
        b"\n",  # line 2: blank, skipped
        b"   \t \r\n",  # line 3: whitespace only, skipped
        b'{"b":2}\r\n',  # line 4: CRLF stripped
        b"\xff\xfe{bad\n",  # line 5: invalid UTF-8, kept as bytes (a dead letter downstream)
        b"\r\n",  # line 6: blank CRLF line, skipped
        b'  {"c": 3}  \n',  # line 7: inner spaces kept
        b'{"d":4}',  # line 8: last line without a newline
    ]
    assert list(records_of_lines(iter(lines), PATH, MTIME)) == [
        rec(b'{"a":1}', 1),
        rec(b'{"b":2}', 4),
        rec(b"\xff\xfe{bad", 5),
        rec(b'  {"c": 3}  ', 7),
        rec(b'{"d":4}', 8),
    ]


def test_records_of_lines_empty_file():
    assert list(records_of_lines(iter([]), PATH, MTIME)) == []


def test_invalid_utf8_line_becomes_dead_letter_with_file_and_line():
    # The kept bytes reach parse_record and become a dead letter naming file:line and the mtime.
    (raw,) = records_of_lines(iter([b"\n", b"\xff\n"]), PATH, MTIME)
    assert parse_record(raw) == DeadLetter(
        stage="parse",
        reason="invalid_utf8",
        payload="\\xff",
        source="in/day1.jsonl:2",
        recorded_at_ms=MTIME,
    )
