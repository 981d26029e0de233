"""tests/reference.py against expectations written by hand, and against the product's row format.

The reference is what the pipeline tests compare the pipeline with, so it must not lean on the code
under test: one test checks it imports nothing from `beam_cxone`. The rest state rows by hand for a
tiny trace (a pattern match, a near miss at exactly `within`, a temporal join on an (eventTime,
eventId) tie, a duplicate, three dead-letter reasons) and a few contract rules one by one.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os

import pytest

from tests import reference as ref

T0 = 1796000000000  # 2026-11-30T00:53:20.000Z, on a 10 s window boundary


def line(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def interaction(event_id, t, contact, customer, event_type, **extra) -> bytes:
    return line({"eventId": event_id, "eventTime": t, "contactId": contact, "customerId": customer,
                 "eventType": event_type, **extra})


def update(event_id, t, customer, **fields) -> bytes:
    return line({"recordType": "customer_update", "eventId": event_id, "eventTime": t,
                 "customerId": customer, **fields})


BAD_JSON = b'{"eventId": "x1", "eventTime": '
NO_OFFSET = line({"eventId": "x2", "eventTime": "2026-11-30T00:53:25", "contactId": "300",
                  "channel": "voice", "eventType": "CONTACT_STARTED"})
FAX = line({"eventId": "x3", "eventTime": T0 + 5000, "contactId": "301", "channel": "fax",
            "eventType": "CONTACT_STARTED"})

TRACE = [
    update("u1", T0, "C1", tier="gold", region="emea"),
    update("u2", "2026-11-30T00:53:40Z", "C1", tier="platinum", region="apac"),
    # Same eventTime as u2, greater eventId: u3 is the profile at 00:53:40 whatever the file order.
    line({"recordType": "customer_update", "eventId": "u3", "updatedAt": T0 + 20000,
          "customerId": "C1", "tier": "silver", "region": "amer"}),
    update("u4", T0 + 20001, "C1", tier="bronze"),  # 1 ms after the callback: not joined
    # C1: three failures, then a callback 19 s after the first: a match.
    interaction("e1", T0 + 1000, "100", "C1", "CONTACT_FAILED", channel="voice"),
    interaction("e2", "2026-11-30T00:53:22Z", 101, "C1", "CONTACT_ENDED", channel="voice",
                abandoned=True),
    # 02:53:23.0009+02:00 is 00:53:23.000Z: digits past the millisecond are cut, not rounded.
    interaction("e3", "2026-11-30T02:53:23.0009+02:00", "102", "C1", "CONTACT_ENDED",
                mediaTypeId=3, endReason="Busy"),
    b"",
    interaction("e4", "2026-11-30T00:53:40Z", "103", "C1", "CALLBACK_REQUESTED", channel="voice"),
    # C2: the callback exactly 30 s after the first failure: no match (strictly less).
    interaction("g1", T0, "200", "C2", "CONTACT_FAILED", channel="voice"),
    interaction("g2", T0 + 10000, "201", "C2", "CONTACT_FAILED", channel="voice"),
    interaction("g3", T0 + 20000, "202", "C2", "CONTACT_ENDED", channel="voice", isRefused=True),
    line({"eventId": "g4", "interactionId": 203, "timestamp": T0 + 30000,
          "status": "CALLBACK_REQUEST", "customerId": "C2", "mediaTypeId": 9,
          "mediaSubTypeName": "SMS"}),
    # A second copy of e2 (another contact, channel and type): the first copy counts.
    interaction("e2", T0 + 2000, "999", "C1", "CONTACT_STARTED", channel="email"),
    BAD_JSON,
    NO_OFFSET,
    FAX,
]


def window(channel: str, start: int, interactions: int, events: int) -> dict:
    return {"channel": channel, "day": "2026-11-30", "window_start": ref.iso(start),
            "window_end": ref.iso(start + 10_000), "interactions": interactions, "events": events}


def sha32(*parts: bytes) -> str:
    return hashlib.sha256(b"".join(parts)).hexdigest()[:32]


@pytest.fixture(scope="module")
def result() -> dict:
    return ref.reference(ref.raw_lines(TRACE, name="t.jsonl"))


def test_volumes_count_the_first_copy_of_each_event(result):
    assert result["interaction_volumes"] == [
        window("chat", T0, 1, 1),  # e3, its channel from mediaTypeId 3
        window("sms", T0 + 30_000, 1, 1),  # g4: a derived digital with mediaSubTypeName SMS
        window("voice", T0, 3, 3),  # e1, e2 (not the email copy), g1
        window("voice", T0 + 10_000, 1, 1),  # g2
        window("voice", T0 + 20_000, 2, 2),  # e4, g3
    ]
    assert result["valid_distinct_records"] == 12  # u1..u4, e1..e4, g1..g4


def test_one_match_and_no_alert_at_exactly_within(result):
    assert result["pattern_alerts"] == [{
        "customer_id": "C1",
        "alert_time": "2026-11-30T00:53:40.000Z",
        "alert_type": "REPEATED_FAILURE_CALLBACK",
        "channel": "voice",
        "failure_count": 3,
        "first_failure_time": "2026-11-30T00:53:21.000Z",
        "failure_event_ids": ["e1", "e2", "e3"],
        "callback_event_id": "e4",
        # u2 and u3 share 00:53:40 (= the callback): the greater eventId, u3; u4 is 1 ms after.
        "tier": "silver",
        "region": "amer",
    }]
    alert = result["pattern_alerts"][0]
    assert ref.alert_id_of(alert) == sha32(b"C1\x1fREPEATED_FAILURE_CALLBACK\x1fe4\x1fe1\x1fe2\x1fe3")


def test_the_profile_is_the_greatest_update(result):
    assert result["customer_profiles"] == [
        {"customer_id": "C1", "tier": "bronze", "region": "UNKNOWN",
         "updated_at": "2026-11-30T00:53:40.001Z"},
    ]


def test_three_dead_letter_reasons(result):
    rows = [ref.dead_letter_row(d) for d in result["dead_letters"]]
    expected = []
    for number, stage, reason, payload in (
        (15, "parse", "invalid_json", BAD_JSON),
        (16, "validate", "bad_time", NO_OFFSET),
        (17, "validate", "unknown_channel", FAX),
    ):
        source = f"t.jsonl:{number}"  # 1-based lines; the blank line 8 is skipped, not renumbered
        expected.append({
            "day": "1970-01-01",
            "recorded_at": 0,
            "dead_letter_id": sha32(*(p + b"\x1f" for p in (
                source.encode(), stage.encode(), reason.encode(), payload))),
            "stage": stage,
            "reason": reason,
            "payload": payload.decode(),
            "source": source,
        })
    assert rows == expected


def test_the_reference_uses_the_product_row_format():
    """The id columns must equal the product's for rows to compare one for one."""
    from beam_cxone.parse import parse_record
    from beam_cxone.pipelines.analytics import dead_letter_row
    from beam_cxone.records import RawRecord
    from beam_cxone.transforms.patterns import alert_id

    raw = RawRecord(b"\xff{" + "é".encode() * 40_000, "topic/0/7", T0)
    mine = ref.classify(ref.Raw(raw.payload, raw.source, raw.source_time_ms))
    assert ref.dead_letter_row(mine) == dead_letter_row(parse_record(raw))
    assert len(mine.payload.encode()) == 65_535  # 4 escape bytes, '{', then whole 2-byte 'é's
    assert ref.alert_id("C", "T", "cb", ["f1", "f2"]) == alert_id("C", "T", "cb", ["f1", "f2"])


@pytest.mark.parametrize(("value", "ms"), [
    (T0, T0),
    ("2026-11-30T00:53:20Z", T0),
    ("2026-11-30t00:53:20.1239z", T0 + 123),
    ("2026-11-30T06:23:20.5+05:30", T0 + 500),
    ("2026-11-29T12:53:20.999999-12:00", T0 + 999),
    ("1969-12-31T23:59:59.999Z", -1),
    ("2024-02-29T00:00:00Z", 1709164800000),
])
def test_event_times(value, ms):
    assert ref.event_time_ms(value) == ms


@pytest.mark.parametrize("value", [
    "2026-11-30T00:53:20", "2026-11-30 00:53:20Z", "2026-02-29T00:00:00Z", "2026-11-30T24:00:00Z",
    "2026-11-30T00:53:20+24:00", "2026-11-30T00:53:20.Z", "1796000000000", 1796000000000.0, True,
    None, 10**16,
])
def test_bad_event_times(value):
    with pytest.raises(Exception, match="bad_time"):
        ref.event_time_ms(value)


def reason(payload: bytes, **kw) -> str:
    out = ref.classify(ref.Raw(payload, "s:1", 0, **kw))
    return out.reason if isinstance(out, ref.DeadLetter) else out.outcome or out.kind


BASE = {"eventTime": T0, "contactId": "1", "channel": "voice", "eventType": "CONTACT_ENDED"}


@pytest.mark.parametrize(("change", "expected"), [
    ({}, "SUCCESS"),
    ({"endReason": "No Answer"}, "FAILURE"),
    ({"endReason": "no answer"}, "SUCCESS"),
    ({"abandoned": False, "isRefused": False}, "SUCCESS"),
    ({"eventType": "CONTACT_STATE_CHANGED", "abandoned": True}, "NONE"),
    ({"eventType": None, "status": "FAILURE", "abandoned": False}, "FAILURE"),
    ({"status": "FAILURE"}, "SUCCESS"),  # eventType present: status is not read
    ({"eventType": None, "status": "PENDING"}, "unknown_event_type"),
    ({"eventType": "contact_ended"}, "unknown_event_type"),
    ({"abandoned": "yes"}, "wrong_type"),
    ({"schemaVersion": 1}, "SUCCESS"),
    ({"schemaVersion": "1"}, "unsupported_schema"),
    ({"schemaVersion": True}, "unsupported_schema"),
    ({"recordType": "agent_update"}, "unknown_record_type"),
    ({"eventId": False}, "wrong_type"),
    ({"contactId": ""}, "missing_field"),
    ({"contactId": 1.5}, "wrong_type"),
    ({"customerId": 7}, "wrong_type"),
    ({"tenantId": 7}, "wrong_type"),
    ({"channel": None, "mediaTypeId": 99, "mediaTypeName": "Chat"}, "unknown_channel"),
    ({"channel": None, "mediaTypeName": "Carrier Pigeon"}, "unknown_channel"),
    ({"channel": None}, "unknown_channel"),
    ({"eventTime": None, "timestamp": T0}, "SUCCESS"),
    ({"eventTime": None, "updatedAt": T0}, "bad_time"),  # updatedAt is the customer updates' alias
])
def test_rules(change, expected):
    assert reason(line({**BASE, **change})) == expected


@pytest.mark.parametrize(("fields", "channel"), [
    ({"channel": "digital", "mediaSubTypeName": "SMS"}, "digital"),  # explicit: stays digital
    ({"mediaTypeName": "Digital", "mediaSubTypeName": "SMS"}, "sms"),
    ({"mediaTypeId": 4, "mediaTypeName": "Chat"}, "voice"),
    ({"channel": "work_item", "mediaTypeId": 4}, "work_item"),
    ({"mediaTypeName": "Voice Mail"}, "voicemail"),
])
def test_channels(fields, channel):
    obj = {"eventTime": T0, "contactId": "1", "eventType": "CONTACT_STARTED", **fields}
    assert ref.read_record(line(obj)).channel == channel


def test_parse_stage_reasons():
    assert reason(None) == "empty_record"
    assert reason(b"\xc3\x28") == "invalid_utf8"
    assert reason(b'{"a": NaN}') == "invalid_json"
    assert reason(b"[1]") == "not_an_object"
    assert reason(rb'{"eventId": "\ud800"}') == "invalid_json"  # half a surrogate pair
    assert reason(rb'{"k": [{"\udc00": 1}]}') == "invalid_json"  # anywhere, a key too
    assert ref.read_record(line({**BASE, "eventId": "\U0001F600"}).replace(
        "\U0001F600".encode(), rb"\ud83d\ude00")).event_id == "\U0001F600"  # a whole pair
    settings = ref.ParseSettings(max_record_bytes=10)
    assert ref.classify(ref.Raw(b"{" + b" " * 10 + b"}", "s:1", 0), settings).reason == "too_large"


def test_an_event_id_is_a_string_or_the_content_hash():
    assert ref.read_record(line({**BASE, "eventId": 42})).event_id == "42"
    obj = {**BASE, "skillName": "Ventas España"}
    canonical = ('{"channel":"voice","contactId":"1","eventTime":1796000000000,'
                 '"eventType":"CONTACT_ENDED","skillName":"Ventas España"}')
    want = "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert ref.read_record(line(obj)).event_id == want
    assert ref.read_record(json.dumps(obj, indent=2).encode()).event_id == want


def test_a_late_record_is_a_dead_letter_and_counts_nowhere():
    raws = [ref.Raw(interaction("a", T0, "1", "C", "CONTACT_FAILED", channel="voice"), "k/0/1", 5,
                    late=True),
            ref.Raw(b"{", "k/0/2", 5, late=True)]
    out = ref.reference(raws)
    assert [(d.stage, d.reason) for d in out["dead_letters"]] == [
        ("watermark", "late"), ("parse", "invalid_json")]  # an invalid record keeps its reason
    assert out["interaction_volumes"] == [] and out["valid_distinct_records"] == 0


def test_the_reference_imports_nothing_from_the_product():
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "reference.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    modules += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in modules if m.split(".")[0] == "beam_cxone"], modules


def test_every_generated_record_reads_as_the_product_reads_it():
    """A regression guard of the row format: both sides agree record by record."""
    from beam_cxone.generator import GeneratorConfig
    from beam_cxone.generator import generate
    from beam_cxone.parse import parse_record
    from beam_cxone.pipelines.analytics import dead_letter_row
    from beam_cxone.records import DeadLetter
    from beam_cxone.records import RawRecord

    cfg = GeneratorConfig(count=3000, seed=11, malformed_rate=0.2, tutorial_rate=0.1)
    for n, record in enumerate(generate(cfg), start=1):
        theirs = parse_record(RawRecord(record.value, f"g:{n}", T0))
        mine = ref.classify(ref.Raw(record.value, f"g:{n}", T0))
        if isinstance(theirs, DeadLetter):
            assert ref.dead_letter_row(mine) == dead_letter_row(theirs), record.value
        else:
            got = (mine.event_id, mine.event_time_ms, mine.customer_id, mine.channel, mine.outcome)
            want = (theirs.event_id, theirs.event_time_ms, theirs.customer_id,
                    getattr(theirs, "channel", None), getattr(theirs, "outcome", None))
            assert got == want, record.value
