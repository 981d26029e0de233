"""An independent, brute-force reference of what the pipeline must compute, for tests.

It imports nothing from `beam_cxone`: the record contract (decoding, routing, dead-letter reasons,
event ids, event times, channels, outcomes) and the semantics (dedup, volumes, the temporal profile
join, the REPEATED_FAILURE_CALLBACK pattern, profiles) are implemented here a second time, in plain
Python, from the record contract and the pipeline semantics (docs/RECORDS.md, docs/SEMANTICS.md).
Whole-trace sorts and scans replace state, timers and windows, so a test can state expected rows
without asking the code under test.

Where the contract leaves a choice to the implementation (the reason codes and stage names of dead
letters, which broken rule wins when a record breaks several, the id hashes, the payload cap, the
`source` and `recorded_at` of a dead letter), this file follows the product's documented row format
so that rows can be compared one for one; those places say so.

Public API (used by tests/ and bench/): `iso`, `day`, `raw_lines`, `reference`; also `dead_letter_row`
and `alert_id` for tests that compare the id columns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

UNKNOWN = "UNKNOWN"
ALERT_TYPE = "REPEATED_FAILURE_CALLBACK"
FAILURE_REASONS = ("Abandoned", "Refused", "Failed", "Busy", "No Answer")

# -- the product's documented row format (not part of the record contract; kept equal on purpose) --
PAYLOAD_CAP = 64 * 1024  # bytes of UTF-8 a dead letter's payload keeps, cut at a character boundary
MAX_RECORD_BYTES = 1024 * 1024  # larger records are dead letters before any decoding
PARSE, VALIDATE, WATERMARK = "parse", "validate", "watermark"  # dead-letter stages

_CHANNELS = ("voice", "chat", "email", "sms", "digital", "voicemail", "work_item")
_BY_MEDIA_ID = {1: "email", 3: "chat", 4: "voice", 5: "voicemail", 6: "work_item", 9: "digital"}
_BY_MEDIA_NAME = {
    "Email": "email",
    "Chat": "chat",
    "Phone Call": "voice",
    "Voice Mail": "voicemail",
    "Work Item": "work_item",
    "Digital": "digital",
}
_EVENT_TYPES = (
    "CONTACT_STARTED",
    "CONTACT_STATE_CHANGED",
    "CONTACT_ENDED",
    "CONTACT_FAILED",
    "CALLBACK_REQUESTED",
)
PATTERN_OUTCOMES = ("FAILURE", "SUCCESS", "CALLBACK")


# -- inputs ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Raw:
    """One undecoded record, with the attributes the pipeline's sources give theirs (so a test can
    feed the same objects to the pipeline): payload bytes (None: a Kafka tombstone), `source`
    (`file:line` or `topic/partition/offset`), `source_time_ms` (the dead letter's `recorded_at`),
    `order` (source order), `late` (the streaming read found it behind the allowed lateness) and
    `duplicate` (the streaming read saw its event id before)."""

    payload: bytes | None
    source: str
    source_time_ms: int
    order: tuple[str, int] = ("", 0)
    late: bool = False
    duplicate: bool = False


@dataclasses.dataclass(frozen=True)
class ParseSettings:
    """The configurable parts of the contract. Any object with these two attributes will do (the
    product's own settings object too)."""

    failure_reasons: frozenset[str] = frozenset(FAILURE_REASONS)
    max_record_bytes: int = MAX_RECORD_BYTES

    @classmethod
    def of(cls, failure_reasons: Iterable[str] = FAILURE_REASONS, **kw: Any) -> ParseSettings:
        return cls(failure_reasons=frozenset(failure_reasons), **kw)


# -- what a record becomes ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Event:
    """A valid record: an interaction (kind "interaction") or a customer update."""

    kind: str
    event_id: str
    event_time_ms: int
    customer_id: str | None
    contact_id: str | None = None
    channel: str | None = None
    event_type: str | None = None
    outcome: str | None = None
    tier: str = UNKNOWN
    region: str = UNKNOWN


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A record no rule accepts. Same attribute names as the pipeline's dead letters."""

    stage: str
    reason: str
    payload: str
    source: str
    recorded_at_ms: int

    @property
    def dead_letter_id(self) -> str:
        """The product's documented id: the first 32 hex digits of the SHA-256 over `source`,
        `stage`, `reason` and `payload`, each one followed by the unit separator 0x1f."""
        h = hashlib.sha256()
        for text in (self.source, self.stage, self.reason, self.payload):
            h.update(text.encode("utf-8", "surrogatepass") + b"\x1f")
        return h.hexdigest()[:32]


def dead_letter_row(letter: DeadLetter) -> dict:
    """The `dead_letters` row of a dead letter, in the pipeline's in-memory form (timestamps as
    epoch ms, `day` the UTC date of `recorded_at`): the product's documented row format."""
    return {
        "day": day(letter.recorded_at_ms),
        "recorded_at": letter.recorded_at_ms,
        "dead_letter_id": letter.dead_letter_id,
        "stage": letter.stage,
        "reason": letter.reason,
        "payload": letter.payload,
        "source": letter.source,
    }


def alert_id(customer_id: str, alert_type: str, callback_event_id: str, failure_ids: list[str]) -> str:
    """The product's documented alert id: the first 32 hex digits of the SHA-256 of the customer,
    the alert type, the callback's event id and the failure event ids, joined by 0x1f."""
    joined = "\x1f".join((customer_id, alert_type, callback_event_id, *failure_ids))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def alert_id_of(row: dict) -> str:
    """`alert_id` of one of this module's `pattern_alerts` rows."""
    return alert_id(row["customer_id"], row["alert_type"], row["callback_event_id"],
                    row["failure_event_ids"])


def _payload_text(payload: bytes | None) -> str:
    """The raw record as text for a dead letter: bytes that are not UTF-8 as `\\xNN` escapes, then
    at most PAYLOAD_CAP bytes of UTF-8, never half a character."""
    text = (payload or b"").decode("utf-8", "backslashreplace")
    data = text.encode("utf-8")
    if len(data) <= PAYLOAD_CAP:
        return text
    cut = PAYLOAD_CAP
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # data[cut] continues a character: step back
        cut -= 1
    return data[:cut].decode("utf-8")


# -- event times ----------------------------------------------------------------------------------

_TIME = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[Tt]"
    r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})(?:\.(?P<frac>[0-9]+))?"
    r"(?P<off>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# Event times the tables can hold: 0001-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z.
_FIRST_MS = -62_135_596_800_000
_LAST_MS = 253_402_300_799_999


def _days_before(year: int, month: int, mday: int) -> int:
    """Days from 1970-01-01 to the given proleptic Gregorian date."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + mday - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _month_length(year: int, month: int) -> int:
    if month == 2:
        return 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28
    return 30 if month in (4, 6, 9, 11) else 31


class _Broken(Exception):
    """A rule the record breaks: it becomes a dead letter with this stage and reason."""

    def __init__(self, stage: str, reason: str):
        super().__init__(reason)
        self.stage, self.reason = stage, reason


def _bad_time() -> _Broken:
    return _Broken(VALIDATE, "bad_time")


def event_time_ms(value: Any) -> int:
    """RFC 3339 with `Z` or a numeric offset, or integer epoch milliseconds, to epoch ms; digits
    past the millisecond are cut off, never rounded."""
    if type(value) is int:
        ms = value
    elif isinstance(value, str):
        m = _TIME.fullmatch(value)
        if not m:
            raise _bad_time()
        year, month, mday = int(m["y"]), int(m["mo"]), int(m["d"])
        hour, minute, second = int(m["h"]), int(m["mi"]), int(m["s"])
        if year < 1 or not 1 <= month <= 12 or not 1 <= mday <= _month_length(year, month):
            raise _bad_time()
        if hour > 23 or minute > 59 or second > 59:
            raise _bad_time()
        shift = 0
        if m["off"] not in ("Z", "z"):
            oh, om = int(m["off"][1:3]), int(m["off"][4:6])
            if oh > 23 or om > 59:
                raise _bad_time()
            shift = (oh * 60 + om) * 60_000 * (1 if m["off"][0] == "+" else -1)
        millis = int(((m["frac"] or "") + "000")[:3])
        ms = (_days_before(year, month, mday) * 86_400 + hour * 3600 + minute * 60 + second) * 1000
        ms += millis - shift
    else:  # absent, a float, a boolean, an object...
        raise _bad_time()
    if not _FIRST_MS <= ms <= _LAST_MS:
        raise _bad_time()
    return ms


# -- parsing --------------------------------------------------------------------------------------


def _no_constants(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity and -Infinity are not JSON


def _decode(payload: bytes | None, max_bytes: int) -> dict:
    if payload is None:
        raise _Broken(PARSE, "empty_record")
    if len(payload) > max_bytes:
        raise _Broken(PARSE, "too_large")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise _Broken(PARSE, "invalid_utf8") from None
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise _Broken(PARSE, "invalid_json") from None
    if _holds_a_surrogate(value):  # half a pair: not Unicode, no UTF-8 text can hold it
        raise _Broken(PARSE, "invalid_json")
    if type(value) is not dict:
        raise _Broken(PARSE, "not_an_object")
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads joins a whole pair into one character


def _holds_a_surrogate(value: Any) -> bool:
    """A string anywhere in the decoded JSON (keys too) with a code point U+D800..U+DFFF."""
    todo = [value]  # a list to walk, not recursion: the decoder nests deeper than Python recurses
    while todo:
        v = todo.pop()
        if isinstance(v, str) and _SURROGATE.search(v):
            return True
        if isinstance(v, dict):
            todo += [*v, *v.values()]
        elif isinstance(v, list):
            todo += v
    return False


def _get(obj: dict, *names: str) -> Any:
    """The first of the fields that is present; JSON null counts as absent."""
    for name in names:
        if obj.get(name) is not None:
            return obj[name]
    return None


def _text(obj: dict, name: str) -> str | None:
    """An optional string field (null: absent); any other type breaks the record."""
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise _Broken(VALIDATE, "wrong_type")
    return value


def _flag(obj: dict, name: str) -> bool:
    value = obj.get(name)
    if value is None:
        return False
    if value is True or value is False:
        return value
    raise _Broken(VALIDATE, "wrong_type")


def _ident(value: Any) -> str | None:
    """contactId-like: a string, an integer taken as its decimal string; "" or null: absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if type(value) is int:
        return f"{value:d}"
    raise _Broken(VALIDATE, "wrong_type")


def content_id(obj: dict) -> str:
    """`sha256:<hex>` of the canonical JSON: keys sorted, no whitespace, non-ASCII as UTF-8."""
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _event_id(obj: dict) -> str:
    value = obj.get("eventId")
    if value is None or value == "":
        return content_id(obj)
    if isinstance(value, str):
        return value
    if type(value) is int:
        return f"{value:d}"
    if type(value) is float:  # the product's documented form: integral -> digits, else repr
        return f"{int(value):d}" if value.is_integer() else repr(value)
    raise _Broken(VALIDATE, "wrong_type")  # a boolean, an array, an object


def _channel(obj: dict) -> str:
    if obj.get("channel") is not None:
        if obj["channel"] in _CHANNELS:  # a non-string is never in the tuple of strings
            return obj["channel"]
        raise _Broken(VALIDATE, "unknown_channel")
    media_id = obj.get("mediaTypeId")
    if media_id is not None:
        derived = _BY_MEDIA_ID.get(media_id) if type(media_id) is int else None
    else:
        name = obj.get("mediaTypeName")
        derived = _BY_MEDIA_NAME.get(name) if isinstance(name, str) else None
    if derived is None:
        raise _Broken(VALIDATE, "unknown_channel")
    if derived == "digital" and _text(obj, "mediaSubTypeName") == "SMS":
        return "sms"
    return derived


def _type_and_outcome(obj: dict, failure_reasons: Iterable[str]) -> tuple[str, str]:
    abandoned = _flag(obj, "abandoned")
    refused = _flag(obj, "isRefused")
    end_reason = _text(obj, "endReason")
    event_type = obj.get("eventType")
    if event_type is None:  # the original tutorial's records: `status` stands for it
        status = obj.get("status")
        if status == "FAILURE":
            return "CONTACT_ENDED", "FAILURE"
        if status == "SUCCESS":
            return "CONTACT_ENDED", "SUCCESS"
        if status == "CALLBACK_REQUEST":
            return "CALLBACK_REQUESTED", "CALLBACK"
        raise _Broken(VALIDATE, "unknown_event_type")
    if not isinstance(event_type, str) or event_type not in _EVENT_TYPES:
        raise _Broken(VALIDATE, "unknown_event_type")
    if event_type == "CALLBACK_REQUESTED":
        return event_type, "CALLBACK"
    if event_type == "CONTACT_FAILED":
        return event_type, "FAILURE"
    if event_type == "CONTACT_ENDED":
        failed = abandoned or refused or (end_reason is not None and end_reason in failure_reasons)
        return event_type, "FAILURE" if failed else "SUCCESS"
    return event_type, "NONE"


def read_record(payload: bytes | None, settings: Any = ParseSettings()) -> Event:
    """One record's meaning, or `_Broken`. When a record breaks several rules, the first in the
    product's documented order decides the reason: schemaVersion, recordType, eventId, the event
    time, then the record type's own fields."""
    obj = _decode(payload, settings.max_record_bytes)
    version = obj.get("schemaVersion")
    if version is not None and not (type(version) is int and version == 1):
        raise _Broken(VALIDATE, "unsupported_schema")
    kind = obj.get("recordType")
    if kind is None:
        kind = "interaction"
    if not (isinstance(kind, str) and kind in ("interaction", "customer_update")):
        raise _Broken(VALIDATE, "unknown_record_type")
    event_id = _event_id(obj)
    if kind == "customer_update":
        t = event_time_ms(_get(obj, "eventTime", "updatedAt"))
        customer = _text(obj, "customerId")
        if not customer:
            raise _Broken(VALIDATE, "missing_field")
        _text(obj, "tenantId")
        _text(obj, "businessUnitId")
        return Event(kind, event_id, t, customer,
                     tier=_text(obj, "tier") or UNKNOWN, region=_text(obj, "region") or UNKNOWN)
    t = event_time_ms(_get(obj, "eventTime", "timestamp"))
    _text(obj, "tenantId")
    _text(obj, "businessUnitId")
    contact = _ident(_get(obj, "contactId", "interactionId"))
    if contact is None:
        raise _Broken(VALIDATE, "missing_field")
    _ident(obj.get("masterContactId"))  # optional; only its type is checked (it counts nowhere)
    customer = _text(obj, "customerId") or None
    channel = _channel(obj)
    event_type, outcome = _type_and_outcome(obj, settings.failure_reasons)
    return Event(kind, event_id, t, customer, contact_id=contact, channel=channel,
                 event_type=event_type, outcome=outcome)


def classify(raw: Any, settings: Any = ParseSettings()) -> Event | DeadLetter:
    """A raw record to a valid event or a dead letter. Only a valid record can be late: a late
    invalid one keeps its own reason."""
    try:
        event = read_record(raw.payload, settings)
    except _Broken as broken:
        stage, reason = broken.stage, broken.reason
    else:
        if not getattr(raw, "late", False):
            return event
        stage, reason = WATERMARK, "late"
    return DeadLetter(stage, reason, _payload_text(raw.payload), raw.source, raw.source_time_ms)


# -- formats --------------------------------------------------------------------------------------


def iso(ms: int) -> str:
    """ISO-8601 UTC with milliseconds and `Z` (the export's timestamp format)."""
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:"
            f"{t.second:02d}.{t.microsecond // 1000:03d}Z")


def day(ms: int) -> str:
    return iso(ms)[:10]


def raw_lines(lines: list[bytes], name: str = "trace") -> list[Raw]:
    """Records of a JSON Lines file, blank lines skipped, numbered from 1 as the file source
    numbers them (`source` is `name:line`, `order` is `(name, line)`, `recorded_at` 0)."""
    out = []
    for number, line in enumerate(lines, start=1):
        body = line.rstrip(b"\r\n")
        if body.strip():
            out.append(Raw(body, f"{name}:{number}", 0, (name, number)))
    return out


# -- the semantics --------------------------------------------------------------------------------


def _order(e: Event) -> tuple[int, str]:
    return e.event_time_ms, e.event_id


def reference(
    raws: list,
    window_ms: int = 10_000,
    failure_count: int = 3,
    within_ms: int = 30_000,
    settings: Any = ParseSettings(),
) -> dict:
    """All rows the spec requires for a bounded trace, the records in source order.

    Returns `interaction_volumes`, `customer_profiles` and `pattern_alerts` rows (timestamps as ISO
    text; no `updated_at` of volumes, no `alert_id`/`detected_at`: see `alert_id_of`), the
    `dead_letters` (DeadLetter objects; `dead_letter_row` makes rows) and `valid_distinct_records`.
    Late records (flagged by the streaming read) are dead letters and count nowhere else.
    """
    events: dict[str, Event] = {}  # eventId -> the first valid copy in source order
    dead: list[DeadLetter] = []
    for raw in raws:
        out = classify(raw, settings)
        if isinstance(out, DeadLetter):
            dead.append(out)
        else:
            events.setdefault(out.event_id, out)
    interactions = [e for e in events.values() if e.kind == "interaction"]
    updates = [e for e in events.values() if e.kind == "customer_update"]

    # Volumes: epoch-aligned [start, start + window) per channel.
    windows: dict[tuple[str, int], list[Event]] = defaultdict(list)
    for e in interactions:
        start = e.event_time_ms // window_ms * window_ms
        windows[(e.channel, start)].append(e)
    volumes = []
    for channel, start in sorted(windows):
        members = windows[(channel, start)]
        volumes.append({
            "channel": channel,
            "day": day(start),
            "window_start": iso(start),
            "window_end": iso(start + window_ms),
            "interactions": len({e.contact_id for e in members}),
            "events": len({e.event_id for e in members}),
        })

    # Profiles: each customer's update with the greatest (eventTime, eventId).
    history: dict[str, list[Event]] = defaultdict(list)
    for u in updates:
        history[u.customer_id].append(u)
    for seq in history.values():
        seq.sort(key=_order)
    profiles = [
        {"customer_id": cid, "tier": history[cid][-1].tier, "region": history[cid][-1].region,
         "updated_at": iso(history[cid][-1].event_time_ms)}
        for cid in sorted(history)
    ]

    def joined(cid: str, t: int) -> tuple[str, str]:
        """The profile of the update with the greatest (eventTime, eventId) not after t."""
        valid = [u for u in history.get(cid, ()) if u.event_time_ms <= t]
        return (valid[-1].tier, valid[-1].region) if valid else (UNKNOWN, UNKNOWN)

    # Pattern: N FAILUREs right before a CALLBACK (strict contiguity among FAILURE/SUCCESS/CALLBACK
    # outcomes of one customer in (eventTime, eventId) order), callback - first failure < within.
    per_customer: dict[str, list[Event]] = defaultdict(list)
    for e in interactions:
        if e.customer_id and e.outcome in PATTERN_OUTCOMES:
            per_customer[e.customer_id].append(e)
    alerts = []
    for cid in sorted(per_customer):
        seq = sorted(per_customer[cid], key=_order)
        for k in range(failure_count, len(seq)):
            callback, before = seq[k], seq[k - failure_count:k]
            if callback.outcome != "CALLBACK":
                continue
            if any(f.outcome != "FAILURE" for f in before):
                continue
            if not callback.event_time_ms - before[0].event_time_ms < within_ms:
                continue
            tier, region = joined(cid, callback.event_time_ms)
            alerts.append({
                "customer_id": cid,
                "alert_time": iso(callback.event_time_ms),
                "alert_type": ALERT_TYPE,
                "channel": callback.channel,
                "failure_count": failure_count,
                "first_failure_time": iso(before[0].event_time_ms),
                "failure_event_ids": [f.event_id for f in before],
                "callback_event_id": callback.event_id,
                "tier": tier,
                "region": region,
            })
    return {
        "interaction_volumes": volumes,
        "customer_profiles": profiles,
        "pattern_alerts": alerts,
        "dead_letters": dead,
        "valid_distinct_records": len(events),
    }
