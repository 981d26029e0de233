"""parse_fields (the batch parse: a record's fields as a tuple) against parse_object, and the flat
object shortcut of decode_object against the standard library's decoder."""

import json

import pytest

from beam_cxone.generator import GeneratorConfig
from beam_cxone.generator import generate
from beam_cxone.parse import ParseSettings
from beam_cxone.parse import Rejected
from beam_cxone.parse import decode_object
from beam_cxone.parse import parse_fields
from beam_cxone.parse import parse_object
from beam_cxone.transforms.batch import compact

SETTINGS = ParseSettings()


def _outcome(parse, payload):
    try:
        return parse(decode_object(payload), SETTINGS)
    except Rejected as rejected:
        return (rejected.stage, rejected.reason)


def test_parse_fields_is_compact_parse_object_on_a_generated_trace():
    payloads = [r.value for r in generate(GeneratorConfig(count=4000, seed=21))]
    valid = 0
    for payload in payloads:
        record, fields = _outcome(parse_object, payload), _outcome(parse_fields, payload)
        if isinstance(record, tuple):  # (stage, reason) of a dead letter
            assert fields == record
        else:
            valid += 1
            assert fields == compact(record) and len(fields) in (5, 10)
    assert 3000 < valid < 4000  # both kinds of outcome were compared


@pytest.mark.parametrize("obj, expected", [
    ({"eventTime": 1, "contactId": "c", "channel": "voice", "eventType": "CONTACT_FAILED"},
     ("sha256:", 1, "c", "c", None, "voice", "CONTACT_FAILED", "FAILURE", None, None)),
    ({"eventId": "e", "eventTime": 1, "contactId": 7, "masterContactId": 0, "customerId": "",
      "mediaTypeId": 9, "mediaSubTypeName": "SMS", "eventType": "CONTACT_ENDED", "abandoned": True,
      "tenantId": "t", "businessUnitId": "b"},
     ("e", 1, "7", "0", None, "sms", "CONTACT_ENDED", "FAILURE", "t", "b")),
    ({"eventId": "u", "recordType": "customer_update", "updatedAt": 5, "customerId": "C"},
     ("u", 5, "C", "UNKNOWN", "UNKNOWN")),
    ({"eventId": "e", "eventTime": True, "contactId": "c", "channel": "voice"}, ("validate", "bad_time")),
    ({"eventId": "e", "eventTime": 1, "contactId": "c", "channel": 3}, ("validate", "unknown_channel")),
    ({"eventId": "e", "eventTime": 1, "contactId": "", "channel": "voice"}, ("validate", "missing_field")),
    ({"eventId": "e", "eventTime": 1, "contactId": "c", "customerId": 1, "channel": "voice"},
     ("validate", "wrong_type")),
    ({"eventId": "e", "recordType": 1, "eventTime": 1}, ("validate", "unknown_record_type")),
    ({"eventId": "e", "schemaVersion": True, "eventTime": 1}, ("validate", "unsupported_schema")),
])
def test_parse_fields_by_hand(obj, expected):
    payload = json.dumps(obj).encode()
    got = _outcome(parse_fields, payload)
    assert got[1:] == expected[1:] and (got[0].startswith("sha256:") if expected[0] == "sha256:"
                                        else got[0] == expected[0])
    record = _outcome(parse_object, payload)
    assert got == (record if isinstance(record, tuple) else compact(record))


@pytest.mark.parametrize("text", [
    '{"a": 18446744073709551616}',  # beyond 64 bits: orjson would give a float
    '{"a": -9223372036854775809}',
    '{"a": 18446744073709551615, "b": 9223372036854775807}',  # 64-bit edges: both give the integer
    '{"a": 1234567890123456789012345678901234567890}',
    '{"a": 1.5, "b": 12345678901234567890}',
    '{"a": [12345678901234567890123]}',
    '{"a": {"b": 12345678901234567890123}}',
    '{"a": "12345678901234567890123", "b": true, "c": null, "d": -0}',
    '{"a": 1, "a": 2}',
    '{"a": "\\u00e9\\n\\"", "b": "é"}',
])
def test_decode_object_equals_the_standard_library(text):
    got = decode_object(text.encode())
    want = json.loads(text)
    assert got == want
    assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


@pytest.mark.parametrize("text, expected", [
    ("2026-11-30T10:00:05.123Z", 1_796_032_805_123),
    ("2026-11-30T10:00:59.9+01:00", 1_796_029_259_900),  # same first 16 characters, another offset
    ("2026-11-30t10:00:00z", 1_796_032_800_000),
    ("2026-11-30T10:00:60Z", "bad_time"),  # a cached minute does not excuse a bad second
    ("2026-02-30T10:00:00Z", "bad_time"),
    ("2026-11-30T10:00:00+24:00", "bad_time"),
])
def test_event_time_twice_gives_the_same(text, expected):
    from beam_cxone.parse import parse_event_time

    def once():
        try:
            return parse_event_time(text)
        except Rejected as rejected:
            return rejected.reason

    assert once() == expected and once() == expected  # the second from the minute cache
