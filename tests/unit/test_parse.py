"""docs/RECORDS.md, rule by rule, against `parse_record` (tier 1: pure functions, no Beam).

Every expected value is written by hand here. Time anchors (checked with `date -u -d @SECONDS`):
  T0 = 1_795_860_000_000 ms = 2026-11-28T10:00:00Z
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from beam_cxone.parse import ParseSettings
from beam_cxone.parse import parse_record
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import DeadLetter
from beam_cxone.records import Interaction
from beam_cxone.records import RawRecord

T0 = 1_795_860_000_000  # 2026-11-28T10:00:00Z
SOURCE = "cxone-data-actions/3/42"
RECORDED_AT = 1_795_860_005_000  # the Kafka record timestamp: 2026-11-28T10:00:05Z
DROP = object()  # an override that removes the field

BASE = {
    "eventId": "e1",
    "eventTime": "2026-11-28T10:00:00Z",
    "contactId": "c1",
    "channel": "voice",
    "eventType": "CONTACT_STARTED",
}
UPDATE = {
    "recordType": "customer_update",
    "eventId": "u1",
    "eventTime": "2026-11-28T10:00:00Z",
    "customerId": "cust-1",
    "tier": "gold",
    "region": "EU",
}


def _obj(base: dict, overrides: dict) -> dict:
    obj = dict(base)
    for key, value in overrides.items():
        if value is DROP:
            obj.pop(key, None)
        else:
            obj[key] = value
    return obj


def _bytes(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def parse(payload: bytes | None, settings: ParseSettings = ParseSettings(), *, late: bool = False):
    return parse_record(RawRecord(payload, SOURCE, RECORDED_AT, late=late), settings)


def interaction(**overrides) -> Interaction:
    out = parse(_bytes(_obj(BASE, overrides)))
    assert isinstance(out, Interaction), out
    return out


def update(**overrides) -> CustomerUpdate:
    out = parse(_bytes(_obj(UPDATE, overrides)))
    assert isinstance(out, CustomerUpdate), out
    return out


def dead(base: dict, overrides: dict, settings: ParseSettings = ParseSettings()) -> DeadLetter:
    out = parse(_bytes(_obj(base, overrides)), settings)
    assert isinstance(out, DeadLetter), out
    return out


# ---------------------------------------------------------------------------------------------
# Whole records
# ---------------------------------------------------------------------------------------------


def test_full_interaction_record():
    # Every field of an Interaction, resolved by hand from the record.
    payload = _bytes(
        {
            "schemaVersion": 1,
            "eventId": "evt-77",
            "recordType": "interaction",
            "eventTime": "2026-11-28T10:00:00.123Z",
            "tenantId": "tenant-9",
            "businessUnitId": "bu-4",
            "contactId": 1001,
            "masterContactId": 1000,
            "customerId": "cust-1",
            "mediaTypeId": 3,
            "eventType": "CONTACT_ENDED",
            "abandoned": False,
            "isRefused": False,
            "endReason": "Contact Hung Up",
            "skillName": "Sales",
        }
    )
    assert parse(payload) == Interaction(
        event_id="evt-77",
        event_time_ms=T0 + 123,
        contact_id="1001",
        master_contact_id="1000",
        customer_id="cust-1",
        channel="chat",
        event_type="CONTACT_ENDED",
        outcome="SUCCESS",
        tenant_id="tenant-9",
        business_unit_id="bu-4",
    )


def test_full_customer_update_record():
    # A customer update: no contactId, channel or eventType needed.
    assert parse(_bytes(UPDATE)) == CustomerUpdate(
        event_id="u1", event_time_ms=T0, customer_id="cust-1", tier="gold", region="EU"
    )


# ---------------------------------------------------------------------------------------------
# schemaVersion
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(DROP, id="absent"),  # optional, default 1
        pytest.param(1, id="one"),  # the only version
        pytest.param(None, id="null"),  # JSON null reads as absent
    ],
)
def test_schema_version_accepted(value):
    assert interaction(schemaVersion=value).event_id == "e1"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(2, id="two"),  # another version
        pytest.param("1", id="string-1"),  # a string, even "1"
        pytest.param(True, id="true"),  # a boolean is not the int 1
        pytest.param(1.0, id="float-1.0"),  # the field is an int; 1.0 is refused (see report)
        pytest.param(0, id="zero"),  # another version
    ],
)
def test_schema_version_unsupported(value):
    letter = dead(BASE, {"schemaVersion": value})
    assert (letter.stage, letter.reason) == ("validate", "unsupported_schema")


# ---------------------------------------------------------------------------------------------
# eventId
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("abc-1", "abc-1", id="string"),  # a string is kept as is
        pytest.param(123, "123", id="integer"),  # a number is taken as its decimal string
        pytest.param(0, "0", id="zero"),  # zero is a number, not "missing"
        pytest.param(123.0, "123", id="integral-float"),  # the decimal string of 123.0
    ],
)
def test_event_id_values(value, expected):
    assert interaction(eventId=value).event_id == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(True, id="bool"),  # a boolean is not a number here
        pytest.param({"id": 1}, id="object"),  # wrong type
        pytest.param(["e1"], id="array"),  # wrong type
    ],
)
def test_event_id_wrong_type(value):
    letter = dead(BASE, {"eventId": value})
    assert (letter.stage, letter.reason) == ("validate", "wrong_type")


# A small record without eventId, written with whitespace, unsorted keys and an escaped non-ASCII
# character; its canonical JSON (sorted keys, no whitespace, UTF-8 unescaped) is written by hand.
NO_ID_PAYLOAD = (
    b'{ "contactId": "c1",  "eventTime": 1795860000000, "eventType": "CONTACT_STARTED",\n'
    b'  "channel": "voice", "agentName": "Zo\\u00eb" }'
)
NO_ID_CANONICAL = (
    '{"agentName":"Zoë","channel":"voice","contactId":"c1",'
    '"eventTime":1795860000000,"eventType":"CONTACT_STARTED"}'
)
NULL_ID_CANONICAL = (
    '{"agentName":"Zoë","channel":"voice","contactId":"c1","eventId":null,'
    '"eventTime":1795860000000,"eventType":"CONTACT_STARTED"}'
)


def test_event_id_missing_is_sha256_of_canonical_json():
    # Missing: sha256 of keys sorted, no whitespace, non-ASCII as UTF-8 (the ë is 2 bytes, unescaped).
    assert "ë" in NO_ID_CANONICAL and "\\u" not in NO_ID_CANONICAL
    expected = "sha256:" + hashlib.sha256(NO_ID_CANONICAL.encode("utf-8")).hexdigest()
    out = parse(NO_ID_PAYLOAD)
    assert isinstance(out, Interaction)
    assert out.event_id == expected


def test_event_id_missing_same_object_written_differently_same_id():
    # The canonical form does not depend on key order, spacing or escaping of the source text.
    other = '{"eventType":"CONTACT_STARTED","agentName":"Zoë","eventTime":1795860000000,"channel":"voice","contactId":"c1"}'
    assert parse(other.encode("utf-8")).event_id == parse(NO_ID_PAYLOAD).event_id


def test_event_id_null_hashes_record_including_the_null():
    # "eventId": null reads as missing; the record hashed is the record as received (with the null).
    payload = NO_ID_PAYLOAD.replace(b'"contactId"', b'"eventId": null, "contactId"')
    expected = "sha256:" + hashlib.sha256(NULL_ID_CANONICAL.encode("utf-8")).hexdigest()
    assert parse(payload).event_id == expected


def test_event_id_empty_string_reads_as_missing():
    # The implementation treats "" as missing (docs/RECORDS.md, "Common fields").
    canonical = (
        '{"agentName":"Zoë","channel":"voice","contactId":"c1","eventId":"",'
        '"eventTime":1795860000000,"eventType":"CONTACT_STARTED"}'
    )
    payload = NO_ID_PAYLOAD.replace(b'"contactId"', b'"eventId": "", "contactId"')
    assert parse(payload).event_id == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# recordType
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        pytest.param(DROP, Interaction, id="absent"),  # default interaction
        pytest.param(None, Interaction, id="null"),  # null reads as absent
        pytest.param("interaction", Interaction, id="interaction"),  # explicit
    ],
)
def test_record_type_interaction(value, kind):
    assert type(parse(_bytes(_obj(BASE, {"recordType": value})))) is kind


def test_record_type_customer_update():
    # customer_update routes to CustomerUpdate.
    assert type(parse(_bytes(UPDATE))) is CustomerUpdate


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("agent_state", id="other"),  # anything else is a dead letter
        pytest.param("CUSTOMER_UPDATE", id="wrong-case"),  # values are case-sensitive
        pytest.param("", id="empty"),  # not one of the two
        pytest.param(7, id="number"),  # not a string
    ],
)
def test_record_type_unknown(value):
    letter = dead(BASE, {"recordType": value})
    assert (letter.stage, letter.reason) == ("validate", "unknown_record_type")


# ---------------------------------------------------------------------------------------------
# eventTime
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected_ms"),
    [
        pytest.param("2026-11-28T10:00:00Z", T0, id="Z"),  # RFC 3339 with Z
        pytest.param("2026-11-28t10:00:00z", T0, id="lowercase-t-z"),  # RFC 3339 allows t and z
        pytest.param("2026-11-28T12:00:00+02:00", T0, id="plus-02"),  # 12:00+02:00 = 10:00Z
        pytest.param("2026-11-28T05:00:00-05:00", T0, id="minus-05"),  # 05:00-05:00 = 10:00Z
        pytest.param("2026-11-28T10:00:00+00:00", T0, id="plus-00"),  # a zero offset
        pytest.param(
            "2026-11-27T23:30:00-10:30", T0, id="neg-offset-crosses-midnight"
        ),  # 27th local
        pytest.param(
            "2026-11-29T00:00:00+14:00", T0, id="pos-offset-crosses-midnight"
        ),  # 29th local
        pytest.param(
            "2027-01-01T00:30:00+01:00", 1_798_759_800_000, id="offset-crosses-year"
        ),  # = 2026-12-31T23:30:00Z
        pytest.param("2026-11-28T10:00:00.1Z", T0 + 100, id="frac-1"),  # .1 = 100 ms
        pytest.param("2026-11-28T10:00:00.12Z", T0 + 120, id="frac-2"),  # .12 = 120 ms
        pytest.param("2026-11-28T10:00:00.123Z", T0 + 123, id="frac-3"),  # exact ms
        pytest.param("2026-11-28T10:00:00.1239Z", T0 + 123, id="frac-4"),  # truncated, not 124
        pytest.param("2026-11-28T10:00:00.12399Z", T0 + 123, id="frac-5"),  # truncated
        pytest.param("2026-11-28T10:00:00.123999Z", T0 + 123, id="frac-6"),  # truncated
        pytest.param("2026-11-28T10:00:00.1239999Z", T0 + 123, id="frac-7"),  # truncated
        pytest.param("2026-11-28T10:00:00.12399999Z", T0 + 123, id="frac-8"),  # truncated
        pytest.param("2026-11-28T10:00:00.123999999Z", T0 + 123, id="frac-9"),  # truncated
        pytest.param("2026-11-28T10:00:59.9999Z", T0 + 59_999, id="59.9999-not-rounded-up"),
        pytest.param("2026-11-28T10:00:00.0009Z", T0, id="sub-ms-truncated-to-0"),  # .0009 -> .000
        pytest.param("2026-11-28T12:00:00.5+02:00", T0 + 500, id="frac-with-offset"),
        pytest.param(T0 + 123, T0 + 123, id="epoch-ms-int"),  # integer epoch milliseconds
        pytest.param(0, 0, id="epoch-zero"),  # the epoch itself
        pytest.param(-1, -1, id="epoch-negative"),  # before 1970, still an integer
        pytest.param(
            253_402_300_799_999, 253_402_300_799_999, id="epoch-max"
        ),  # 9999-12-31T23:59:59.999Z
        pytest.param("0001-01-01T00:00:00Z", -62_135_596_800_000, id="year-1"),  # the earliest
        pytest.param("1969-12-31T23:59:59.999Z", -1, id="rfc-before-epoch"),  # -1 ms
    ],
)
def test_event_time_accepted(value, expected_ms):
    assert interaction(eventTime=value).event_time_ms == expected_ms


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-11-28T10:00:00", id="no-offset"),  # a time without offset
        pytest.param("2026-11-28T10:00:00.123", id="no-offset-frac"),  # same, with a fraction
        pytest.param("2026-11-28", id="date-only"),  # no time at all
        pytest.param("2026-11-28 10:00:00Z", id="space-separator"),  # not the RFC 3339 grammar
        pytest.param("2026-11-28T10:00Z", id="no-seconds"),  # seconds are required
        pytest.param("2026-11-28T10:00:00.Z", id="empty-fraction"),  # a dot needs digits
        pytest.param("2026-11-28T10:00:00+0200", id="offset-no-colon"),  # RFC 3339 offset has ':'
        pytest.param("2026-02-30T10:00:00Z", id="feb-30"),  # no such day
        pytest.param("2026-11-28T24:00:00Z", id="hour-24"),  # out of range
        pytest.param("2026-11-28T10:00:00+24:00", id="offset-24h"),  # out of range
        pytest.param(1_795_860_000_000.0, id="float-epoch-integral"),  # epoch ms must be an integer
        pytest.param(1_795_860_000_000.5, id="float-epoch"),  # epoch ms must be an integer
        pytest.param(True, id="boolean"),  # not a time
        pytest.param("1795860000000", id="numeric-string"),  # epoch ms as a string is not allowed
        pytest.param("", id="empty-string"),  # not a time
        pytest.param(None, id="null"),  # null reads as missing: required
        pytest.param(DROP, id="missing"),  # required
        pytest.param({"ms": T0}, id="object"),  # wrong type
        pytest.param(253_402_300_800_000, id="epoch-after-9999"),  # past 9999-12-31T23:59:59.999Z
        pytest.param("0000-01-01T00:00:00Z", id="year-0"),  # before 0001-01-01
        pytest.param("2026-11-28T10:00:60Z", id="second-60"),  # no leap seconds (see report)
    ],
)
def test_event_time_bad(value):
    letter = dead(BASE, {"eventTime": value})
    assert (letter.stage, letter.reason) == ("validate", "bad_time")


@pytest.mark.parametrize(
    "value",
    [
        # RFC 3339 DIGIT is %x30-39 (ASCII only); these read as 2026-11-28T10:00:00Z today.
        pytest.param("\u0662\u0660\u0662\u0666-11-28T10:00:00Z", id="arabic-indic-year"),
        pytest.param("\uff12\uff10\uff12\uff16-11-28T10:00:00Z", id="fullwidth-year"),
        pytest.param("2026-11-28T10:00:00.\uff11\uff12\uff13Z", id="fullwidth-fraction"),
    ],
)
def test_event_time_non_ascii_digits_are_bad_time(value):
    out = parse(_bytes(_obj(BASE, {"eventTime": value})))
    assert isinstance(out, DeadLetter)
    assert out.reason == "bad_time"


@pytest.mark.parametrize(
    ("overrides", "expected_ms"),
    [
        # `timestamp` is the tutorial's alias of eventTime for interactions (same forms).
        pytest.param({"eventTime": DROP, "timestamp": "2026-11-28T10:00:01Z"}, T0 + 1000, id="ts"),
        pytest.param({"eventTime": DROP, "timestamp": T0 + 7}, T0 + 7, id="ts-epoch-ms"),
        # eventTime wins when both are present.
        pytest.param({"timestamp": "2026-11-28T11:00:00Z"}, T0, id="eventTime-wins"),
        # eventTime null reads as absent, so the alias is used.
        pytest.param({"eventTime": None, "timestamp": T0 + 9}, T0 + 9, id="null-eventTime"),
    ],
)
def test_interaction_timestamp_alias(overrides, expected_ms):
    assert interaction(**overrides).event_time_ms == expected_ms


@pytest.mark.parametrize(
    "overrides",
    [
        # eventTime wins even when it is bad: no fallback to the alias.
        pytest.param({"eventTime": "2026-11-28T10:00:00", "timestamp": T0}, id="bad-eventTime"),
        # updatedAt is the customer-update alias, not an interaction one.
        pytest.param({"eventTime": DROP, "updatedAt": T0}, id="updatedAt-on-interaction"),
        # a bad alias is a bad time.
        pytest.param({"eventTime": DROP, "timestamp": "yesterday"}, id="bad-alias"),
    ],
)
def test_interaction_time_alias_dead_letters(overrides):
    assert dead(BASE, overrides).reason == "bad_time"


@pytest.mark.parametrize(
    ("overrides", "expected_ms"),
    [
        # `updatedAt` is accepted as the alias of eventTime for customer updates.
        pytest.param({"eventTime": DROP, "updatedAt": "2026-11-28T10:00:02Z"}, T0 + 2000, id="ua"),
        pytest.param({"eventTime": DROP, "updatedAt": T0 + 3}, T0 + 3, id="ua-epoch"),
        # eventTime wins when both are present.
        pytest.param({"updatedAt": "2026-11-28T11:00:00Z"}, T0, id="eventTime-wins"),
    ],
)
def test_customer_update_updated_at_alias(overrides, expected_ms):
    assert update(**overrides).event_time_ms == expected_ms


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"eventTime": DROP}, id="missing"),  # required
        # `timestamp` is the interaction alias only.
        pytest.param({"eventTime": DROP, "timestamp": T0}, id="timestamp-on-update"),
        pytest.param({"eventTime": "2026-11-28T10:00:00"}, id="no-offset"),  # no offset
    ],
)
def test_customer_update_bad_time(overrides):
    assert dead(UPDATE, overrides).reason == "bad_time"


# ---------------------------------------------------------------------------------------------
# contactId, masterContactId, customerId, tenantId, businessUnitId
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"contactId": "c9"}, "c9", id="string"),  # kept
        pytest.param({"contactId": 42}, "42", id="int"),  # integers are turned into strings
        pytest.param({"contactId": DROP, "interactionId": "i9"}, "i9", id="interactionId-alias"),
        pytest.param({"contactId": DROP, "interactionId": 77}, "77", id="interactionId-int"),
        pytest.param({"interactionId": "i9"}, "c1", id="contactId-wins-over-alias"),
    ],
)
def test_contact_id(overrides, expected):
    assert interaction(**overrides).contact_id == expected


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param({"contactId": DROP}, "missing_field", id="missing"),  # required
        pytest.param({"contactId": None}, "missing_field", id="null"),  # null reads as missing
        pytest.param({"contactId": ""}, "missing_field", id="empty"),  # empty is missing
        pytest.param({"contactId": True}, "wrong_type", id="bool"),  # not an id
        pytest.param({"contactId": 1.5}, "wrong_type", id="float"),  # not an id
        pytest.param({"contactId": ["c1"]}, "wrong_type", id="array"),  # not an id
    ],
)
def test_contact_id_dead_letters(overrides, reason):
    letter = dead(BASE, overrides)
    assert (letter.stage, letter.reason) == ("validate", reason)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, "c1", id="default-contactId"),  # defaults to contactId
        pytest.param({"masterContactId": "m1"}, "m1", id="string"),  # kept
        pytest.param({"masterContactId": 5}, "5", id="int"),  # integers become strings
        pytest.param({"masterContactId": ""}, "c1", id="empty-is-absent"),  # default
        pytest.param({"masterContactId": None}, "c1", id="null-is-absent"),  # default
        # The default follows the alias too.
        pytest.param({"contactId": DROP, "interactionId": 31}, "31", id="default-from-alias"),
    ],
)
def test_master_contact_id(overrides, expected):
    assert interaction(**overrides).master_contact_id == expected


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"customerId": "cust-1"}, "cust-1", id="string"),  # kept
        pytest.param({}, None, id="absent"),  # optional
        pytest.param({"customerId": ""}, None, id="empty-is-absent"),  # "" counts as absent
        pytest.param({"customerId": None}, None, id="null-is-absent"),  # null reads as absent
    ],
)
def test_customer_id_of_interaction(overrides, expected):
    assert interaction(**overrides).customer_id == expected


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"customerId": 12}, id="customerId-int"),  # a string field (see report)
        pytest.param({"tenantId": 5}, id="tenantId-int"),  # a string field
        pytest.param({"businessUnitId": False}, id="businessUnitId-bool"),  # a string field
    ],
)
def test_string_fields_of_wrong_type(overrides):
    letter = dead(BASE, overrides)
    assert (letter.stage, letter.reason) == ("validate", "wrong_type")


def test_tenant_and_business_unit_carried():
    # Optional, carried through.
    out = interaction(tenantId="t-1", businessUnitId="bu-2")
    assert (out.tenant_id, out.business_unit_id) == ("t-1", "bu-2")


def test_unknown_extra_fields_are_accepted():
    # Unknown extra fields are kept, never rejected (nor any of the carried-through ones).
    out = interaction(
        somethingNew={"nested": [1, 2, {"x": None}]},
        skillId=17,
        skillName="Sales",
        agentId=99,
        campaignId="camp",
        pointOfContactId=5,
        disconnectCode="1",
        stateName="Active",
        totalDurationSeconds=12.5,
        fromAddress="+15551234567",
        toAddress="alice@example.com",
    )
    assert out.event_id == "e1"


# ---------------------------------------------------------------------------------------------
# channel
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["voice", "chat", "email", "sms", "digital", "voicemail", "work_item"]
)
def test_channel_explicit_values(value):
    # Each of the seven channels is accepted as given.
    assert interaction(channel=value).channel == value


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # An explicit channel wins over the media fields.
        pytest.param({"channel": "voice", "mediaTypeId": 3}, "voice", id="explicit-over-id"),
        pytest.param(
            {"channel": "email", "mediaTypeName": "Chat"}, "email", id="explicit-over-name"
        ),
        # An explicit "digital" is never turned into sms (only a derived digital is).
        pytest.param(
            {"channel": "digital", "mediaSubTypeName": "SMS"}, "digital", id="explicit-digital-sms"
        ),
        # mediaTypeId (an integer) when channel is absent.
        pytest.param({"channel": DROP, "mediaTypeId": 4}, "voice", id="id-4"),
        pytest.param({"channel": DROP, "mediaTypeId": 3}, "chat", id="id-3"),
        pytest.param({"channel": DROP, "mediaTypeId": 1}, "email", id="id-1"),
        pytest.param({"channel": DROP, "mediaTypeId": 5}, "voicemail", id="id-5"),
        pytest.param({"channel": DROP, "mediaTypeId": 6}, "work_item", id="id-6"),
        pytest.param({"channel": DROP, "mediaTypeId": 9}, "digital", id="id-9"),
        # null channel reads as absent.
        pytest.param({"channel": None, "mediaTypeId": 4}, "voice", id="null-channel"),
        # mediaTypeId wins over mediaTypeName.
        pytest.param(
            {"channel": DROP, "mediaTypeId": 1, "mediaTypeName": "Chat"}, "email", id="id-over-name"
        ),
        # mediaTypeName when mediaTypeId is absent.
        pytest.param({"channel": DROP, "mediaTypeName": "Phone Call"}, "voice", id="name-phone"),
        pytest.param({"channel": DROP, "mediaTypeName": "Chat"}, "chat", id="name-chat"),
        pytest.param({"channel": DROP, "mediaTypeName": "Email"}, "email", id="name-email"),
        pytest.param({"channel": DROP, "mediaTypeName": "Voice Mail"}, "voicemail", id="name-vm"),
        pytest.param({"channel": DROP, "mediaTypeName": "Work Item"}, "work_item", id="name-wi"),
        pytest.param({"channel": DROP, "mediaTypeName": "Digital"}, "digital", id="name-digital"),
        # A derived digital with mediaSubTypeName "SMS" is sms (from the id and from the name).
        pytest.param(
            {"channel": DROP, "mediaTypeId": 9, "mediaSubTypeName": "SMS"}, "sms", id="id-9-sms"
        ),
        pytest.param(
            {"channel": DROP, "mediaTypeName": "Digital", "mediaSubTypeName": "SMS"},
            "sms",
            id="name-digital-sms",
        ),
        # Another sub type stays digital; SMS on a non-digital media type changes nothing.
        pytest.param(
            {"channel": DROP, "mediaTypeId": 9, "mediaSubTypeName": "WhatsApp"},
            "digital",
            id="digital-whatsapp",
        ),
        pytest.param(
            {"channel": DROP, "mediaTypeId": 4, "mediaSubTypeName": "SMS"}, "voice", id="voice-sms"
        ),
    ],
)
def test_channel_resolution(overrides, expected):
    assert interaction(**overrides).channel == expected


@pytest.mark.parametrize(
    "overrides",
    [
        # An invalid explicit channel is a dead letter: no fallback to the media fields.
        pytest.param({"channel": "fax", "mediaTypeId": 4}, id="unknown-explicit-no-fallback"),
        pytest.param({"channel": "Voice"}, id="explicit-wrong-case"),
        pytest.param({"channel": ""}, id="explicit-empty"),
        pytest.param({"channel": 4}, id="explicit-number"),
        # Nothing usable.
        pytest.param({"channel": DROP}, id="nothing"),
        # An unknown mediaTypeId is an unknown value: no fallback to mediaTypeName.
        pytest.param({"channel": DROP, "mediaTypeId": 2}, id="id-2"),
        pytest.param({"channel": DROP, "mediaTypeId": 99}, id="id-99"),
        pytest.param({"channel": DROP, "mediaTypeId": 7, "mediaTypeName": "Chat"}, id="id-7-name"),
        pytest.param({"channel": DROP, "mediaTypeId": "4"}, id="id-string"),  # must be an integer
        pytest.param({"channel": DROP, "mediaTypeId": True}, id="id-bool"),  # not an integer
        pytest.param({"channel": DROP, "mediaTypeName": "phone call"}, id="name-wrong-case"),
        pytest.param({"channel": DROP, "mediaTypeName": "Fax"}, id="name-unknown"),
    ],
)
def test_channel_unknown(overrides):
    letter = dead(BASE, overrides)
    assert (letter.stage, letter.reason) == ("validate", "unknown_channel")


# ---------------------------------------------------------------------------------------------
# eventType, tutorial status, outcome
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "event_type", "outcome"),
    [
        # The five event types and their outcomes.
        pytest.param({"eventType": "CONTACT_STARTED"}, "CONTACT_STARTED", "NONE", id="started"),
        pytest.param(
            {"eventType": "CONTACT_STATE_CHANGED"}, "CONTACT_STATE_CHANGED", "NONE", id="changed"
        ),
        pytest.param({"eventType": "CONTACT_ENDED"}, "CONTACT_ENDED", "SUCCESS", id="ended"),
        pytest.param({"eventType": "CONTACT_FAILED"}, "CONTACT_FAILED", "FAILURE", id="failed"),
        pytest.param(
            {"eventType": "CALLBACK_REQUESTED"}, "CALLBACK_REQUESTED", "CALLBACK", id="callback"
        ),
        # CONTACT_ENDED is a FAILURE when abandoned, refused or with a failure endReason.
        pytest.param({"eventType": "CONTACT_ENDED", "abandoned": True}, "CONTACT_ENDED", "FAILURE",
                     id="ended-abandoned"),
        pytest.param({"eventType": "CONTACT_ENDED", "isRefused": True}, "CONTACT_ENDED", "FAILURE",
                     id="ended-refused"),
        pytest.param({"eventType": "CONTACT_ENDED", "endReason": "Abandoned"}, "CONTACT_ENDED",
                     "FAILURE", id="reason-Abandoned"),
        pytest.param({"eventType": "CONTACT_ENDED", "endReason": "Refused"}, "CONTACT_ENDED",
                     "FAILURE", id="reason-Refused"),
        pytest.param({"eventType": "CONTACT_ENDED", "endReason": "Failed"}, "CONTACT_ENDED",
                     "FAILURE", id="reason-Failed"),
        pytest.param({"eventType": "CONTACT_ENDED", "endReason": "Busy"}, "CONTACT_ENDED",
                     "FAILURE", id="reason-Busy"),
        pytest.param({"eventType": "CONTACT_ENDED", "endReason": "No Answer"}, "CONTACT_ENDED",
                     "FAILURE", id="reason-No-Answer"),
        # Any other CONTACT_ENDED is a SUCCESS.
        pytest.param({"eventType": "CONTACT_ENDED", "abandoned": False, "isRefused": False},
                     "CONTACT_ENDED", "SUCCESS", id="ended-explicit-false"),
        pytest.param({"eventType": "CONTACT_ENDED", "endReason": "Contact Hung Up"},
                     "CONTACT_ENDED", "SUCCESS", id="reason-other"),
        pytest.param({"eventType": "CONTACT_ENDED", "endReason": "busy"}, "CONTACT_ENDED",
                     "SUCCESS", id="reason-case-sensitive"),
        # CONTACT_FAILED is a FAILURE whatever the flags say.
        pytest.param({"eventType": "CONTACT_FAILED", "abandoned": False}, "CONTACT_FAILED",
                     "FAILURE", id="failed-not-abandoned"),
        # STARTED/STATE_CHANGED are NONE even with failure flags.
        pytest.param({"eventType": "CONTACT_STARTED", "abandoned": True}, "CONTACT_STARTED",
                     "NONE", id="started-abandoned"),
        pytest.param({"eventType": "CONTACT_STATE_CHANGED", "endReason": "Busy"},
                     "CONTACT_STATE_CHANGED", "NONE", id="changed-busy"),
        # The tutorial's status when eventType is absent.
        pytest.param({"eventType": DROP, "status": "FAILURE"}, "CONTACT_ENDED", "FAILURE",
                     id="status-FAILURE"),
        pytest.param({"eventType": DROP, "status": "CALLBACK_REQUEST"}, "CALLBACK_REQUESTED",
                     "CALLBACK", id="status-CALLBACK_REQUEST"),
        pytest.param({"eventType": DROP, "status": "SUCCESS"}, "CONTACT_ENDED", "SUCCESS",
                     id="status-SUCCESS"),
        # status SUCCESS stands for outcome SUCCESS even with abandoned/isRefused/failure reason.
        pytest.param({"eventType": DROP, "status": "SUCCESS", "abandoned": True}, "CONTACT_ENDED",
                     "SUCCESS", id="status-SUCCESS-abandoned"),
        pytest.param({"eventType": DROP, "status": "SUCCESS", "endReason": "Busy"},
                     "CONTACT_ENDED", "SUCCESS", id="status-SUCCESS-busy"),
        # status FAILURE is a FAILURE even with a non-failure endReason.
        pytest.param({"eventType": DROP, "status": "FAILURE", "endReason": "Contact Hung Up"},
                     "CONTACT_ENDED", "FAILURE", id="status-FAILURE-other-reason"),
        # eventType null reads as absent: status decides.
        pytest.param({"eventType": None, "status": "FAILURE"}, "CONTACT_ENDED", "FAILURE",
                     id="eventType-null-status"),
        # When eventType is present, it decides and status is carried through unread.
        pytest.param({"eventType": "CONTACT_STARTED", "status": "FAILURE"}, "CONTACT_STARTED",
                     "NONE", id="eventType-wins-started"),
        pytest.param({"eventType": "CONTACT_ENDED", "status": "FAILURE"}, "CONTACT_ENDED",
                     "SUCCESS", id="eventType-wins-ended"),
        pytest.param({"eventType": "CONTACT_ENDED", "status": "CALLBACK_REQUEST"},
                     "CONTACT_ENDED", "SUCCESS", id="eventType-wins-callback-status"),
        pytest.param({"eventType": "CONTACT_FAILED", "status": 42}, "CONTACT_FAILED", "FAILURE",
                     id="status-unread-wrong-type"),
    ],
)  # fmt: skip
def test_event_type_and_outcome(overrides, event_type, outcome):
    out = interaction(**overrides)
    assert (out.event_type, out.outcome) == (event_type, outcome)


@pytest.mark.parametrize(
    ("end_reason", "outcome"),
    [
        pytest.param("Voicemail Full", "FAILURE", id="configured-reason"),  # in the configured list
        pytest.param("Busy", "SUCCESS", id="default-reason-not-configured"),  # defaults replaced
        pytest.param(None, "SUCCESS", id="no-reason"),  # no endReason: SUCCESS
    ],
)
def test_configured_failure_reasons(end_reason, outcome):
    settings = ParseSettings.of(["Voicemail Full", "Timeout"])
    payload = _bytes(_obj(BASE, {"eventType": "CONTACT_ENDED", "endReason": end_reason}))
    out = parse(payload, settings)
    assert isinstance(out, Interaction)
    assert out.outcome == outcome


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"eventType": DROP}, id="missing"),  # required outside tutorial records
        pytest.param({"eventType": "CONTACT_ABANDONED"}, id="unknown-value"),  # not one of five
        pytest.param({"eventType": "contact_ended"}, id="wrong-case"),  # case-sensitive
        pytest.param({"eventType": ""}, id="empty"),  # not one of five
        pytest.param({"eventType": 3}, id="number"),  # wrong type
        pytest.param({"eventType": DROP, "status": "PENDING"}, id="unknown-status"),  # no mapping
        pytest.param({"eventType": DROP, "status": "failure"}, id="status-wrong-case"),
        pytest.param({"eventType": DROP, "status": 1}, id="status-number"),
    ],
)
def test_event_type_unknown(overrides):
    letter = dead(BASE, overrides)
    assert (letter.stage, letter.reason) == ("validate", "unknown_event_type")


@pytest.mark.parametrize(
    "overrides",
    [
        # abandoned and isRefused are booleans: a string "true" is the wrong type.
        pytest.param({"eventType": "CONTACT_ENDED", "abandoned": "true"}, id="abandoned-string"),
        pytest.param({"eventType": "CONTACT_ENDED", "abandoned": 1}, id="abandoned-int"),
        pytest.param({"eventType": "CONTACT_ENDED", "isRefused": "false"}, id="refused-string"),
        pytest.param({"eventType": "CONTACT_ENDED", "endReason": 5}, id="endReason-int"),
        # The type is checked whatever the eventType.
        pytest.param({"eventType": "CALLBACK_REQUESTED", "abandoned": "true"}, id="callback"),
        pytest.param({"eventType": "CONTACT_STARTED", "isRefused": 0}, id="started"),
    ],
)
def test_flags_of_wrong_type(overrides):
    letter = dead(BASE, overrides)
    assert (letter.stage, letter.reason) == ("validate", "wrong_type")


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"eventType": DROP, "status": "FAILURE", "abandoned": "true"}, id="abandoned"),
        pytest.param({"eventType": DROP, "status": "SUCCESS", "isRefused": "yes"}, id="isRefused"),
        pytest.param({"eventType": DROP, "status": "SUCCESS", "endReason": 5}, id="endReason"),
    ],
)
def test_tutorial_record_with_wrong_typed_flag_is_dead_letter(overrides):
    # docs/RECORDS.md: a checked field of the wrong type is a dead letter (tutorial records too;
    # the same record with eventType CONTACT_ENDED is a wrong_type dead letter).
    out = parse(_bytes(_obj(BASE, overrides)))
    assert isinstance(out, DeadLetter)
    assert (out.stage, out.reason) == ("validate", "wrong_type")


# ---------------------------------------------------------------------------------------------
# Customer updates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "tier", "region"),
    [
        pytest.param({}, "gold", "EU", id="both"),  # as given
        pytest.param({"tier": DROP}, "UNKNOWN", "EU", id="tier-missing"),  # missing reads UNKNOWN
        pytest.param({"region": DROP}, "gold", "UNKNOWN", id="region-missing"),  # same
        pytest.param({"tier": DROP, "region": DROP}, "UNKNOWN", "UNKNOWN", id="both-missing"),
        pytest.param({"tier": None}, "UNKNOWN", "EU", id="tier-null"),  # null reads as missing
    ],
)
def test_customer_update_tier_region(overrides, tier, region):
    out = update(**overrides)
    assert (out.tier, out.region) == (tier, region)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param({"customerId": DROP}, "missing_field", id="customerId-missing"),  # required
        pytest.param({"customerId": ""}, "missing_field", id="customerId-empty"),  # non-empty
        pytest.param({"customerId": None}, "missing_field", id="customerId-null"),  # required
        pytest.param({"customerId": 12}, "wrong_type", id="customerId-int"),  # a string
        pytest.param({"tier": 3}, "wrong_type", id="tier-int"),  # a string
        pytest.param({"region": ["EU"]}, "wrong_type", id="region-array"),  # a string
        pytest.param({"schemaVersion": 2}, "unsupported_schema", id="schema"),  # common rule
    ],
)
def test_customer_update_dead_letters(overrides, reason):
    letter = dead(UPDATE, overrides)
    assert (letter.stage, letter.reason) == ("validate", reason)


def test_customer_update_event_id_rules_apply():
    # eventId: an integer becomes its decimal string for updates too.
    assert update(eventId=555).event_id == "555"


# ---------------------------------------------------------------------------------------------
# Dead letters: decoding, shape, payload cap, PII, lateness
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason", "stored"),
    [
        # Not valid UTF-8: the undecodable byte is kept escaped in the payload.
        pytest.param(b'{"a":"\xff"}', "invalid_utf8", '{"a":"\\xff"}', id="invalid-utf8"),
        pytest.param(b"hello", "invalid_json", "hello", id="not-json"),
        pytest.param(b'{"eventId": NaN}', "invalid_json", '{"eventId": NaN}', id="NaN"),
        pytest.param(b'{"x": Infinity}', "invalid_json", '{"x": Infinity}', id="Infinity"),
        pytest.param(b'{"x": -Infinity}', "invalid_json", '{"x": -Infinity}', id="-Infinity"),
        pytest.param(b'{"a":1', "invalid_json", '{"a":1', id="truncated"),
        pytest.param(b'{"a":1} {"b":2}', "invalid_json", '{"a":1} {"b":2}', id="two-objects"),
        pytest.param(b"", "invalid_json", "", id="empty-payload"),  # b"" is not JSON
        pytest.param(b"[1, 2]", "not_an_object", "[1, 2]", id="array"),
        pytest.param(b'"x"', "not_an_object", '"x"', id="string"),
        pytest.param(b"null", "not_an_object", "null", id="json-null"),
        pytest.param(b"42", "not_an_object", "42", id="number"),
        pytest.param(None, "empty_record", "", id="null-payload"),  # a Kafka tombstone
        # Half a surrogate pair (a JSON escape, the bytes are ASCII): not Unicode, no UTF-8 column
        # or id hash can hold it. Anywhere in the object: eventId, a key, a nested unknown field.
        pytest.param(rb'{"eventId":"\ud800"}', "invalid_json", r'{"eventId":"\ud800"}', id="lone-high"),
        pytest.param(rb'{"eventId":"a\uDC00b"}', "invalid_json", r'{"eventId":"a\uDC00b"}', id="lone-low"),
        pytest.param(rb'{"\ud83d":1}', "invalid_json", r'{"\ud83d":1}', id="lone-in-key"),
        pytest.param(rb'{"x":[{"y":"\udfff"}]}', "invalid_json", r'{"x":[{"y":"\udfff"}]}', id="nested"),
        pytest.param(rb'{"x":"\ude00\ud83d"}', "invalid_json", r'{"x":"\ude00\ud83d"}', id="pair-reversed"),
    ],
)
def test_undecodable_payloads(payload, reason, stored):
    assert parse(payload) == DeadLetter(
        stage="parse", reason=reason, payload=stored, source=SOURCE, recorded_at_ms=RECORDED_AT
    )


def test_lone_surrogate_event_id_of_a_whole_record_is_a_dead_letter():
    # A valid interaction but for its eventId, half a surrogate pair: alert_id and the tables could
    # not encode it, so the record stops at the parse (where streaming and batch both see it).
    payload = (b'{"eventId":"\\ud800","eventTime":"2026-11-28T10:00:00Z","contactId":"c1",'
               b'"customerId":"cust-1","channel":"voice","eventType":"CALLBACK_REQUESTED"}')
    assert parse(payload) == DeadLetter(
        stage="parse", reason="invalid_json", payload=payload.decode("ascii"), source=SOURCE,
        recorded_at_ms=RECORDED_AT)


@pytest.mark.parametrize(
    ("event_id", "expected"),
    [
        pytest.param(r"\ud83d\ude00", "\U0001F600", id="escaped-pair"),  # a whole pair is one character
        pytest.param("\U0001F600", "\U0001F600", id="raw-utf8"),
        pytest.param(r"\u00e9t\u00e9", "\u00e9t\u00e9", id="bmp-escapes"),
    ],
)
def test_surrogate_pairs_and_escapes_are_accepted(event_id, expected):
    text = '{"eventId":"%s","eventTime":1,"contactId":"c1","channel":"voice","eventType":"CONTACT_STARTED"}'
    out = parse((text % event_id).encode("utf-8"))
    assert isinstance(out, Interaction), out
    assert out.event_id == expected


def test_dead_letter_carries_source_recorded_at_and_raw_text():
    # source and recorded_at come from the raw record; payload is the raw text, unchanged.
    text = '{"eventId":"e1","eventTime":"2026-11-28T10:00:00","contactId":"c1"}'
    out = parse_record(RawRecord(text.encode(), "in/day1.jsonl:17", 1_700_000_000_000))
    assert out == DeadLetter(
        stage="validate",
        reason="bad_time",
        payload=text,
        source="in/day1.jsonl:17",
        recorded_at_ms=1_700_000_000_000,
    )


def test_dead_letter_id_is_deterministic():
    # Same record, same source: same id (a replay writes the same row); another source: another id.
    a = parse_record(RawRecord(b"oops", "t/0/1", 5))
    b = parse_record(RawRecord(b"oops", "t/0/1", 5))
    c = parse_record(RawRecord(b"oops", "t/0/2", 5))
    assert a.dead_letter_id == b.dead_letter_id
    assert a.dead_letter_id != c.dead_letter_id
    assert re.fullmatch(r"[0-9a-f]{32}", a.dead_letter_id)


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        pytest.param(10, "bad_time", id="exactly-max-is-decoded"),  # 10 bytes <= 10: decoded
        pytest.param(11, "too_large", id="one-byte-over"),  # 11 bytes > 10: too_large
    ],
)
def test_max_record_bytes(size, reason):
    # {"a":1234} is 10 bytes; {"a":12345} 11 bytes. The decoded one lacks eventTime.
    payload = b'{"a":1234}' if size == 10 else b'{"a":12345}'
    assert len(payload) == size
    out = parse(payload, ParseSettings(max_record_bytes=10))
    assert isinstance(out, DeadLetter)
    assert out.reason == reason
    assert out.stage == ("parse" if reason == "too_large" else "validate")


def test_too_large_under_default_limit():
    # Default max_record_bytes is 1 MiB: 1 MiB + 1 byte is too_large, and its payload is capped.
    payload = b'{"x":"' + b"a" * (1024 * 1024 - 7) + b'"}'
    assert len(payload) == 1024 * 1024 + 1
    out = parse(payload)
    assert (out.stage, out.reason) == ("parse", "too_large")
    assert out.payload == '{"x":"' + "a" * (65536 - 6)  # first 64 KiB of the raw text


def test_payload_capped_at_64_kib():
    # A 100 000-byte ASCII record that is a dead letter keeps its first 65 536 bytes.
    body = '{"schemaVersion":2,"note":"' + "n" * 100_000 + '"}'
    out = parse(body.encode())
    assert out.reason == "unsupported_schema"
    assert len(out.payload) == 65536
    assert out.payload == body[:65536]


@pytest.mark.parametrize(
    "payload",
    [
        # '{"schemaVersion":2,"note":"' is 27 bytes; 65 536 - 27 = 65 509 = 3 * 21 836 + 1, so the
        # cut leaves 1 byte of a 3-byte euro sign, stored as the 4 characters "\xe2": 65 539 bytes.
        pytest.param(
            ('{"schemaVersion":2,"note":"' + "€" * 30_000 + '"}').encode("utf-8"), id="euro-cut"
        ),
        # 70 000 undecodable bytes: each escapes to 4 characters, 262 144 bytes stored.
        pytest.param(b"\xff" * 70_000, id="invalid-utf8"),
    ],
)
def test_capped_payload_never_exceeds_64_kib(payload):
    out = parse(payload)
    assert isinstance(out, DeadLetter)
    assert len(out.payload.encode("utf-8")) <= 65536


PII_FROM = "+15551234567"
PII_TO = "alice@example.com"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"channel": "fax"}, id="unknown_channel"),
        pytest.param({"eventTime": "2026-11-28T10:00:00"}, id="bad_time"),
        pytest.param({"eventType": "NOPE"}, id="unknown_event_type"),
        pytest.param({"contactId": DROP}, id="missing_field"),
        pytest.param({"abandoned": "true"}, id="wrong_type"),
        pytest.param({"schemaVersion": 9}, id="unsupported_schema"),
        pytest.param({"recordType": "x"}, id="unknown_record_type"),
        # The address fields themselves carrying odd values.
        pytest.param({"channel": PII_FROM}, id="address-as-channel"),
        pytest.param({"eventType": PII_TO}, id="address-as-eventType"),
    ],
)
def test_addresses_never_in_reason(overrides):
    # fromAddress/toAddress are personal data: never in a dead letter's reason (a short code).
    letter = dead(BASE, {"fromAddress": PII_FROM, "toAddress": PII_TO, **overrides})
    assert PII_FROM not in letter.reason and PII_TO not in letter.reason
    assert "alice" not in letter.reason and "5551234567" not in letter.reason
    assert re.fullmatch(r"[a-z_]+", letter.reason)


def test_addresses_never_in_reason_when_not_json():
    # A broken record holding addresses: the reason is still only the code.
    payload = ('{"fromAddress":"' + PII_FROM + '","toAddress":"' + PII_TO + '",').encode()
    letter = parse(payload)
    assert letter.reason == "invalid_json"


@pytest.mark.parametrize(
    ("base", "overrides"),
    [
        pytest.param(BASE, {}, id="interaction"),  # a valid interaction behind the watermark
        pytest.param(UPDATE, {}, id="customer-update"),  # a valid update behind the watermark
    ],
)
def test_late_valid_record_is_late_dead_letter(base, overrides):
    payload = _bytes(_obj(base, overrides))
    out = parse(payload, late=True)
    assert out == DeadLetter(
        stage="watermark",
        reason="late",
        payload=payload.decode(),
        source=SOURCE,
        recorded_at_ms=RECORDED_AT,
    )


@pytest.mark.parametrize(
    ("payload", "stage", "reason"),
    [
        # A malformed late record keeps its parse reason.
        pytest.param(b"not json", "parse", "invalid_json", id="invalid_json"),
        pytest.param(None, "parse", "empty_record", id="empty_record"),
        pytest.param(_bytes(_obj(BASE, {"channel": "fax"})), "validate", "unknown_channel",
                     id="unknown_channel"),
        pytest.param(_bytes(_obj(BASE, {"eventTime": True})), "validate", "bad_time",
                     id="bad_time"),
    ],
)  # fmt: skip
def test_late_malformed_record_keeps_its_reason(payload, stage, reason):
    out = parse(payload, late=True)
    assert (out.stage, out.reason) == (stage, reason)


def test_not_late_valid_record_is_not_a_dead_letter():
    # late=False (the default) with a valid record: an interaction.
    assert isinstance(parse(_bytes(BASE), late=False), Interaction)


# ----- the fast decoder (orjson) gives the reference decoder's result ------------------------------

DECODER_CASES = [
    b'{"a":1,"a":2}', b'{"a":"\\ud800"}', b'{"a":"\\udc00\\ud800"}', b'\xef\xbb\xbf{"a":1}',
    b'{"a":1e400}', b'{"a":-1e400}', b'{"a":123456789012345678901234567890}',
    b'{"a":18446744073709551615}', b'{"a":18446744073709551616}', b'{"a":-9223372036854775809}',
    b'{"a":-9223372036854775808}', b'{"eventId":12345678901234567890}', b'{"a":-0}', b'{"a":-0.0}',
    b'{"a":1.0}', b'{"a":1E2}', b'{"a":0.1e-400}', b'{"a":NaN}', b'{"a":-Infinity}',
    b'{"a":"\xed\xa0\x80"}', b'{"a":"\xc0\xaf"}', b'{"a":"\xf4\x90\x80\x80"}', b'{"a":"x\x01"}',
    b'{"a":"x\x7f"}', b'{"a":"\xef\xbf\xbf"}', b' {"a":1} ', b'\t{"a":1}\r\n', b'{"a":1}\x00',
    b'{"a":1}\x0c', b'{"a":01}', b'{"a":1.}', b'{"a":.5}', b'{"a":+1}', b'{"\\u0000":1}',
    b'{"a":[' + b"[" * 1100 + b"]" * 1100 + b"]}", b'{"a":' + b"[" * 300 + b"]" * 300 + b"}",
    b'{"a":' + b"[" * 200 + b"]" * 200 + b"}", b'{"a":1}{"b":2}', b"[1]", b'"x"', b"null", b"",
    b'{"a":"\\ud83d\\ude00"}', b'{"a":"\\ud83dx"}', b'{"a":"\\x"}', b'{"a":1,}', b"\xff",
    b'{"a":5e-324}', b'{"a":2.2250738585072011e-308}', b'{"a":9007199254740993.0}',
    b'{"a":1.7976931348623157e308}', b'{"a":0.30000000000000004}', b'{"a":1e23}',
]


def _reference_decode(payload: bytes):
    """The standard library's verdict (and docs/RECORDS.md on lone surrogates): the object, or the
    dead-letter reason."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        obj = json.loads(text, parse_constant=lambda name: float("nan") / 0)
    except (ValueError, RecursionError, ZeroDivisionError):
        return "invalid_json"
    try:  # the contract's one addition: half a surrogate pair is no Unicode text
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "invalid_json"
    return obj if isinstance(obj, dict) else "not_an_object"


def _decode(payload: bytes):
    from beam_cxone.parse import Rejected
    from beam_cxone.parse import decode_object

    try:
        return decode_object(payload)
    except Rejected as rejected:
        return rejected.reason


@pytest.mark.parametrize("payload", DECODER_CASES, ids=lambda p: repr(p[:30]))
def test_decode_object_is_the_standard_librarys(payload):
    got, expected = _decode(payload), _reference_decode(payload)
    assert repr(got) == repr(expected)  # repr: 1 vs 1.0 and -0.0 vs 0.0 differ
    if isinstance(expected, dict):
        canonical = json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert json.dumps(got, sort_keys=True, separators=(",", ":"), ensure_ascii=False) == canonical


def test_decode_object_numbers_fuzz():
    import random

    rnd = random.Random(7)
    digits = "0123456789"
    for _ in range(3000):
        mantissa = "".join(rnd.choice(digits) for _ in range(rnd.randint(1, 25))).lstrip("0") or "0"
        frac = "".join(rnd.choice(digits) for _ in range(rnd.randint(0, 20)))
        number = ("-" if rnd.random() < 0.3 else "") + mantissa + (f".{frac}" if frac else "")
        if rnd.random() < 0.4:
            number += f"e{rnd.choice(['', '+', '-'])}{rnd.randint(0, 330)}"
        payload = f'{{"eventId":{number},"n":[{number}]}}'.encode()
        assert repr(_decode(payload)) == repr(_reference_decode(payload)), payload
