"""The record contract of docs/RECORDS.md as pure functions: raw bytes in, one typed record or one dead letter out.

No Beam here: every rule is table-tested directly, and the same function serves the streaming read
(event time for watermarks), the router and the batch path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

import orjson

from beam_cxone.records import UNKNOWN
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import DeadLetter
from beam_cxone.records import Interaction
from beam_cxone.records import Outcome
from beam_cxone.records import RawRecord

__all__ = [
    "DEFAULT_FAILURE_REASONS",
    "DEFAULT_MAX_RECORD_BYTES",
    "PAYLOAD_CAP_BYTES",
    "ParseSettings",
    "Rejected",
    "canonical_event_id",
    "dead_letter_for",
    "event_time_of",
    "parse_event_time",
    "parse_fields",
    "parse_record",
]

DEFAULT_FAILURE_REASONS = ("Abandoned", "Refused", "Failed", "Busy", "No Answer")
# A dead letter keeps at most this much of the raw text (docs/RECORDS.md).
PAYLOAD_CAP_BYTES = 64 * 1024
# Larger records are dead letters before any decoding: one huge value must not stall a reader.
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024

CHANNELS = frozenset({"voice", "chat", "email", "sms", "digital", "voicemail", "work_item"})
MEDIA_TYPE_IDS = {4: "voice", 3: "chat", 1: "email", 5: "voicemail", 6: "work_item", 9: "digital"}
MEDIA_TYPE_NAMES = {
    "Phone Call": "voice",
    "Chat": "chat",
    "Email": "email",
    "Voice Mail": "voicemail",
    "Work Item": "work_item",
    "Digital": "digital",
}
EVENT_TYPES = frozenset(
    {
        "CONTACT_STARTED",
        "CONTACT_STATE_CHANGED",
        "CONTACT_ENDED",
        "CONTACT_FAILED",
        "CALLBACK_REQUESTED",
    }
)
# The original tutorial's `status`, read only when `eventType` is absent: (eventType, forced outcome).
TUTORIAL_STATUS = {
    "FAILURE": ("CONTACT_ENDED", Outcome.FAILURE.value),
    "CALLBACK_REQUEST": ("CALLBACK_REQUESTED", Outcome.CALLBACK.value),
    "SUCCESS": ("CONTACT_ENDED", Outcome.SUCCESS.value),
}

# RFC 3339 date-time with a mandatory offset; fraction digits past the millisecond are truncated.
# ASCII digits only ([0-9], not \d, which matches any Unicode digit).
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_MIN_MS = -62135596800000  # 0001-01-01T00:00:00Z
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z


class Rejected(Exception):
    """A permanent rule violation: the record becomes a dead letter with this stage and reason."""

    def __init__(self, stage: str, reason: str):
        super().__init__(f"{stage}:{reason}")
        self.stage = stage
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class ParseSettings:
    """The configurable parts of the contract."""

    failure_reasons: frozenset[str] = frozenset(DEFAULT_FAILURE_REASONS)
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES

    @classmethod
    def of(cls, failure_reasons: Iterable[str] = DEFAULT_FAILURE_REASONS, **kw: Any) -> ParseSettings:
        return cls(failure_reasons=frozenset(failure_reasons), **kw)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# The reference decoder: the standard library's, NaN/Infinity refused. One instance (json.loads
# with a keyword builds a decoder per call).
_JSON = json.JSONDecoder(parse_constant=_reject_constant)
# orjson decodes ~3x faster and, where it succeeds, gives the very same object, except: integers
# beyond 64 bits become floats (so a payload with 19 digits in a row goes to the reference), and
# it nests up to 1024 levels where the reference runs out of stack earlier (so a payload with many
# brackets goes to the reference). Anything orjson refuses is decided by the reference, so every
# dead-letter reason is the reference's. tests/unit/test_parse.py compares the two.
_ALL_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19  # a run of 19 digits, once every digit reads 0 (faster than a regex)
_MAX_FAST_BRACKETS = 256


def _fast_path(payload: bytes) -> bool:
    return (payload.count(b"[") + payload.count(b"{") < _MAX_FAST_BRACKETS
            and _LONG_DIGITS not in payload.translate(_ALL_DIGITS_TO_ZERO))


def _has_lone_surrogate(value: Any) -> bool:
    """True when a string of the decoded value (a key too, at any depth) holds half a surrogate
    pair: a JSON `\\uD800`-`\\uDFFF` escape without its other half. Such text is not Unicode, and no
    UTF-8 table, id hash or file can hold it (I-JSON, RFC 7493, refuses it): `invalid_json`."""
    pending = [value]
    while pending:  # iterative: the decoder nests deeper than a recursion would go
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


# Value types of a flat object, for which orjson's result is the reference's whatever the text: no
# float (a big integer would have become one), no nesting (so no depth beyond the reference's).
_FLAT_TYPES = frozenset({str, int, bool, type(None)})


def decode_object(payload: bytes | None, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> dict:
    """Strict UTF-8 JSON object, or Rejected (NaN/Infinity are not JSON and are refused too)."""
    if payload is None:
        raise Rejected("parse", "empty_record")
    if len(payload) > max_record_bytes:
        raise Rejected("parse", "too_large")
    try:
        obj = orjson.loads(payload)  # refuses invalid UTF-8, so a result means the bytes were valid
    except orjson.JSONDecodeError:
        obj = None  # the reference decides (and names the reason)
    else:
        if type(obj) is dict:
            for value in obj.values():
                if type(value) not in _FLAT_TYPES:
                    break
            else:
                return obj  # a flat object: the very object the reference decodes
        if not _fast_path(payload):
            obj = None
    if obj is None:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected("parse", "invalid_utf8") from None
        try:
            obj = _JSON.decode(text)
        except (ValueError, RecursionError):
            raise Rejected("parse", "invalid_json") from None
        if _has_lone_surrogate(obj):  # orjson refuses them, so only this path can meet one
            raise Rejected("parse", "invalid_json")
    if not isinstance(obj, dict):
        raise Rejected("parse", "not_an_object")
    return obj


def parse_event_time(value: Any) -> int:
    """RFC 3339 with an offset, or integer epoch milliseconds, to epoch ms (truncated), or Rejected."""
    if isinstance(value, bool) or value is None:
        raise Rejected("validate", "bad_time")
    if isinstance(value, int):
        if not _MIN_MS <= value <= _MAX_MS:
            raise Rejected("validate", "bad_time")
        return value
    if not isinstance(value, str):
        raise Rejected("validate", "bad_time")
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise Rejected("validate", "bad_time")
    g = m.groups()
    # The date, hour, minute and offset (the text without seconds and fraction) name the minute's
    # start in UTC: computed once per distinct minute and offset, as times of a trace repeat them.
    key = value[:16] + (g[7] or value[-6:])
    base = _MINUTE_STARTS.get(key, _UNSEEN)
    if base is _UNSEEN:
        base = _minute_start(g)
        if len(_MINUTE_STARTS) >= _MINUTE_STARTS_MAX:
            _MINUTE_STARTS.clear()
        _MINUTE_STARTS[key] = base
    second = int(g[5])
    if base is None or second > 59:
        raise Rejected("validate", "bad_time")
    frac = g[6]
    ms = base + second * 1000 + (int(frac[:3].ljust(3, "0")) if frac else 0)
    if not _MIN_MS <= ms <= _MAX_MS:
        raise Rejected("validate", "bad_time")
    return ms


# key (the text's first 16 characters, then `Z`/`z` or its `+hh:mm` offset) -> the minute's start
# in UTC ms, None for an invalid date, hour, minute or offset; bounded: cleared when full.
_MINUTE_STARTS: dict[str, int | None] = {}
_MINUTE_STARTS_MAX = 1 << 17
_UNSEEN = object()


def _minute_start(g: tuple) -> int | None:
    """UTC epoch ms of the minute the RFC 3339 groups `g` name (offset applied), or None."""
    days = _epoch_day(g[0], g[1], g[2])
    hour, minute = int(g[3]), int(g[4])
    if days is None or hour > 23 or minute > 59:
        return None
    offset_min = 0
    if g[8]:
        off_h, off_m = int(g[9]), int(g[10])
        if off_h > 23 or off_m > 59:
            return None
        offset_min = (off_h * 60 + off_m) * (1 if g[8] == "+" else -1)
    return (days * 86400 + hour * 3600 + minute * 60 - offset_min * 60) * 1000


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
# Days since 1970-01-01 of the (year, month, day) digit strings seen, None for an invalid date:
# dates repeat across a trace, so each is computed once (bounded: cleared when full).
_EPOCH_DAYS: dict[tuple[str, str, str], int | None] = {}
_EPOCH_DAYS_MAX = 1 << 16


def _epoch_day(year: str, month: str, day: str) -> int | None:
    """Proleptic Gregorian days since the epoch (as `calendar.timegm` counts them) of a date with
    year 1-9999, month 1-12 and a day of that month; None for any other."""
    key = (year, month, day)
    try:
        return _EPOCH_DAYS[key]
    except KeyError:
        pass
    try:
        days = dt.date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:  # year 0, month 0 or 13+, a day past the month's end
        days = None
    if len(_EPOCH_DAYS) >= _EPOCH_DAYS_MAX:
        _EPOCH_DAYS.clear()
    _EPOCH_DAYS[key] = days
    return days


def canonical_event_id(obj: dict) -> str:
    """`sha256:<hex>` of the canonical JSON: sorted keys, no whitespace, UTF-8 unescaped."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _event_id(obj: dict) -> str:
    value = obj.get("eventId")
    if value is None or value == "":
        return canonical_event_id(obj)
    if isinstance(value, bool):
        raise Rejected("validate", "wrong_type")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise Rejected("validate", "wrong_type")


def _id_string(value: Any, *, required: bool) -> str | None:
    """contactId-like ids: strings, with integers turned into strings."""
    if value is None or value == "":
        if required:
            raise Rejected("validate", "missing_field")
        return None
    if isinstance(value, bool):
        raise Rejected("validate", "wrong_type")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise Rejected("validate", "wrong_type")


def _optional_str(obj: dict, key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Rejected("validate", "wrong_type")
    return value


def _optional_bool(obj: dict, key: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Rejected("validate", "wrong_type")
    return value


def _channel(obj: dict) -> str:
    """`channel` wins; else `mediaTypeId`, else `mediaTypeName`; a derived digital SMS is `sms`."""
    explicit = obj.get("channel")
    if explicit is not None:
        if isinstance(explicit, str) and explicit in CHANNELS:
            return explicit
        raise Rejected("validate", "unknown_channel")
    media_id = obj.get("mediaTypeId")
    if media_id is not None:
        if isinstance(media_id, bool) or not isinstance(media_id, int):
            raise Rejected("validate", "unknown_channel")
        derived = MEDIA_TYPE_IDS.get(media_id)
    else:
        media_name = obj.get("mediaTypeName")
        derived = MEDIA_TYPE_NAMES.get(media_name) if isinstance(media_name, str) else None
    if derived is None:
        raise Rejected("validate", "unknown_channel")
    if derived == "digital" and _optional_str(obj, "mediaSubTypeName") == "SMS":
        return "sms"
    return derived


def _event_type_and_outcome(obj: dict, failure_reasons: frozenset[str]) -> tuple[str, str]:
    # Typed fields are checked whatever decides the outcome (a tutorial record too).
    abandoned = _optional_bool(obj, "abandoned")
    refused = _optional_bool(obj, "isRefused")
    end_reason = _optional_str(obj, "endReason")
    event_type = obj.get("eventType")
    if event_type is None:
        status = obj.get("status")
        if isinstance(status, str) and status in TUTORIAL_STATUS:
            return TUTORIAL_STATUS[status]
        raise Rejected("validate", "unknown_event_type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise Rejected("validate", "unknown_event_type")
    event_type = _EVENT_TYPE_OF[event_type]
    if event_type == "CALLBACK_REQUESTED":
        return event_type, _CALLBACK
    if event_type == "CONTACT_FAILED":
        return event_type, _FAILURE
    if event_type == "CONTACT_ENDED":
        failed = abandoned or refused or (end_reason is not None and end_reason in failure_reasons)
        return event_type, _FAILURE if failed else _SUCCESS
    return event_type, _NONE


def event_time_of(obj: dict) -> int:
    """The event time of a decoded object, by its record type's field and alias."""
    value = obj.get("eventTime")
    if value is None:  # JSON null reads as absent: the alias, by record type
        value = obj.get("updatedAt" if obj.get("recordType") == "customer_update" else "timestamp")
    return parse_event_time(value)


# The vocabulary's own string objects: a record holds these, not its decoder's copies, so a batch of
# records pickles or marshals each value once (and compares it by identity first).
_CHANNEL_OF = {c: c for c in CHANNELS}
_EVENT_TYPE_OF = {t: t for t in EVENT_TYPES}
_CALLBACK = Outcome.CALLBACK.value
_FAILURE = Outcome.FAILURE.value
_SUCCESS = Outcome.SUCCESS.value
_NONE = Outcome.NONE.value


def _fields(*fields: Any) -> tuple:
    return fields


def _parse(obj: dict, settings: ParseSettings, interaction, customer_update):
    """`parse_object`'s rules, in their order, the common cases inline; a valid record is built by
    `interaction(...)` or `customer_update(...)` from its fields in the dataclass's order."""
    get = obj.get
    value = get("schemaVersion")
    if value is not None and (type(value) is not int or value != 1):
        raise Rejected("validate", "unsupported_schema")
    record_type = get("recordType")
    if record_type is None or record_type == "interaction":
        update = False
    elif record_type == "customer_update":
        update = True
    else:
        raise Rejected("validate", "unknown_record_type")
    event_id = get("eventId")
    if type(event_id) is not str or not event_id:
        event_id = _event_id(obj)
    value = get("eventTime")
    if value is None:  # JSON null reads as absent: the alias, by record type
        value = get("updatedAt" if update else "timestamp")
    if type(value) is int:
        if not _MIN_MS <= value <= _MAX_MS:
            raise Rejected("validate", "bad_time")
        event_time_ms = value
    else:
        event_time_ms = parse_event_time(value)
    if update:
        return _customer_update(obj, event_id, event_time_ms, customer_update)
    tenant_id = get("tenantId")  # checked before the interaction's own fields
    if tenant_id is not None and type(tenant_id) is not str:
        raise Rejected("validate", "wrong_type")
    business_unit_id = get("businessUnitId")
    if business_unit_id is not None and type(business_unit_id) is not str:
        raise Rejected("validate", "wrong_type")
    contact = get("contactId")
    if contact is None:
        contact = get("interactionId")
    contact_id = contact if type(contact) is str and contact else _id_string(contact, required=True)
    master = get("masterContactId")
    master = (master if type(master) is str and master
              else _id_string(master, required=False) or contact_id)
    customer_id = get("customerId")
    if customer_id is not None and type(customer_id) is not str:
        raise Rejected("validate", "wrong_type")
    channel = get("channel")
    if channel is None or type(channel) is not str:
        channel = _channel(obj)
    else:
        channel = _CHANNEL_OF.get(channel)
        if channel is None:
            raise Rejected("validate", "unknown_channel")
    event_type, outcome = _event_type_and_outcome(obj, settings.failure_reasons)
    return interaction(event_id, event_time_ms, contact_id, master, customer_id or None, channel,
                       event_type, outcome, tenant_id, business_unit_id)


def _customer_update(obj: dict, event_id: str, event_time_ms: int, make=CustomerUpdate):
    customer_id = _optional_str(obj, "customerId")
    if not customer_id:
        raise Rejected("validate", "missing_field")
    _optional_str(obj, "tenantId")
    _optional_str(obj, "businessUnitId")
    return make(event_id, event_time_ms, customer_id, _optional_str(obj, "tier") or UNKNOWN,
                _optional_str(obj, "region") or UNKNOWN)


def parse_object(obj: dict, settings: ParseSettings) -> Interaction | CustomerUpdate:
    """Apply every rule of docs/RECORDS.md to a decoded object; raises Rejected on the first broken rule."""
    return _parse(obj, settings, Interaction, CustomerUpdate)


def parse_fields(obj: dict, settings: ParseSettings) -> tuple:
    """`parse_object` as the tuple of the record's fields, in its dataclass's order (10 for an
    interaction, 5 for a customer update): the same rules, without building the record."""
    return _parse(obj, settings, _fields, _fields)


def valid_record(payload: bytes | None, settings: ParseSettings) -> Interaction | CustomerUpdate | None:
    """The record a payload holds, None for one that will be a dead letter: the streaming read needs
    its event id and time for the watermark, lateness and duplicate checks, and hands it on in
    `RawRecord.parsed`."""
    try:
        return parse_object(decode_object(payload, settings.max_record_bytes), settings)
    except Rejected:
        return None


def record_identity(payload: bytes | None, settings: ParseSettings) -> tuple[str, int] | None:
    """(event id, event time ms) of a valid record, None for one that will be a dead letter."""
    record = valid_record(payload, settings)
    return None if record is None else (record.event_id, record.event_time_ms)


def dead_letter_for(raw: RawRecord, stage: str, reason: str) -> DeadLetter:
    """A dead letter for a raw record: the payload capped, undecodable bytes escaped."""
    payload = raw.payload or b""
    text = payload[: PAYLOAD_CAP_BYTES * 4].decode("utf-8", "backslashreplace")
    # The cap is on the stored text: escapes make it longer than the bytes it came from.
    text = text.encode("utf-8", "surrogatepass")[:PAYLOAD_CAP_BYTES].decode("utf-8", "ignore")
    return DeadLetter(
        stage=stage,
        reason=reason,
        payload=text,
        source=raw.source,
        recorded_at_ms=raw.source_time_ms,
    )


def parse_record(
    raw: RawRecord, settings: ParseSettings = ParseSettings()
) -> Interaction | CustomerUpdate | DeadLetter:
    """One raw record to exactly one of: an interaction, a customer update, a dead letter."""
    parsed = getattr(raw, "parsed", None)  # only the streaming read sets it
    if parsed is not None and parsed[0] == settings:
        record = parsed[1]
    else:
        try:
            record = parse_object(decode_object(raw.payload, settings.max_record_bytes), settings)
        except Rejected as rejected:
            return dead_letter_for(raw, rejected.stage, rejected.reason)
    if raw.late:
        return dead_letter_for(raw, "watermark", "late")
    return record
