"""The cases the synthetic stream injects, each with what the spec says must come of it.

Kept apart from the stream machinery in `beam_cxone.generator` (draws, encodings, emission order)
so every case is in one place for whoever reviews or adds one, and the draw logic does not drown in
tables:

- `SCENARIOS`: the REPEATED_FAILURE_CALLBACK bursts, each a list of steps on both sides of a rule
  boundary, with the number of alerts the spec expects for the burst's customer
  (`PATTERN_SCENARIOS`, which the tests check the pipeline against);
- `malformed_value`: the malformed-record catalogue; each entry turns a valid interaction into a
  record that must become a dead letter under docs/RECORDS.md.

Randomness comes only from the `r` the stream passes in (`random.Random(seed).random`), and the order
of every table is part of the generator's output: append to a table, never reorder it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = [
    "PATTERN_SCENARIOS",
    "SCENARIOS",
    "SCENARIO_NAMES",
    "ScenarioBuilder",
    "Step",
    "dumps",
    "malformed_value",
]


def dumps(obj: Any) -> bytes:
    """A record's value as the stream writes it: JSON in raw UTF-8, default separators."""
    # json.dumps escapes control characters, so never a newline.
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


# -- pattern scenarios: REPEATED_FAILURE_CALLBACK bursts on both sides of every boundary ---------

# Kinds: F failure, S success, C callback request, N a new contact's start or state change (no
# outcome), D a producer retry of the step before (the same bytes again).
Step = tuple[int, str]  # (offset from the first failure in ms, kind: F S C N D)
# Builds a scenario's steps, drawing from `r` (the stream's `random.Random(seed).random`) only.
ScenarioBuilder = Callable[[Callable[[], float]], list[Step]]


def _scenario_match(r: Callable[[], float]) -> list[Step]:
    a = 500 + int(r() * 8000)
    b = a + 500 + int(r() * 8000)
    return [(0, "F"), (a, "F"), (b, "F"), (b + 1 + int(r() * (29_999 - b)), "C")]


def _scenario_fixed(*steps: Step) -> ScenarioBuilder:
    return lambda r: list(steps)


def _scenario_just_outside(r: Callable[[], float]) -> list[Step]:
    return [(0, "F"), (10_000, "F"), (20_000, "F"), (30_001 + int(r() * 5000), "C")]


def _scenario_between(kind: str) -> ScenarioBuilder:
    def build(r: Callable[[], float]) -> list[Step]:
        a = 1000 + int(r() * 5000)
        return [
            (0, "F"),
            (a, "F"),
            (a + 3000, kind),
            (a + 6000, "F"),
            (a + 9000 + int(r() * 10_000), "C"),
        ]

    return build


def _scenario_two_failures(r: Callable[[], float]) -> list[Step]:
    a = 1000 + int(r() * 10_000)
    return [(0, "F"), (a, "F"), (a + 1000 + int(r() * 10_000), "C")]


# name -> (builder, REPEATED_FAILURE_CALLBACK alerts the spec expects for the burst's customer).
# Steps are listed in eventId allocation order: equal event times are ordered by eventId.
SCENARIOS: dict[str, tuple[ScenarioBuilder, int]] = {
    "match": (_scenario_match, 1),
    "edge_inside": (_scenario_fixed((0, "F"), (10_000, "F"), (20_000, "F"), (29_999, "C")), 1),
    "edge_exact": (_scenario_fixed((0, "F"), (10_000, "F"), (20_000, "F"), (30_000, "C")), 0),
    "just_outside": (_scenario_just_outside, 0),
    "success_between": (_scenario_between("S"), 0),
    "started_between": (_scenario_between("N"), 1),
    # Four failures: the last three start the 30 s, not the first (34 s before the callback).
    "four_failures": (
        _scenario_fixed((0, "F"), (6000, "F"), (15_000, "F"), (25_000, "F"), (34_000, "C")),
        1,
    ),
    "two_failures": (_scenario_two_failures, 0),
    "tie_after": (_scenario_fixed((0, "F"), (5000, "F"), (10_000, "F"), (10_000, "C")), 1),
    "tie_before": (_scenario_fixed((0, "F"), (5000, "F"), (10_000, "C"), (10_000, "F")), 0),
    "double_callback": (
        _scenario_fixed((0, "F"), (4000, "F"), (8000, "F"), (12_000, "C"), (13_000, "C")),
        1,
    ),
    # A retried failure is one event: two failures, not three.
    "retried_failure": (_scenario_fixed((0, "F"), (5000, "F"), (5000, "D"), (9000, "C")), 0),
}
PATTERN_SCENARIOS: dict[str, int] = {name: expected for name, (_, expected) in SCENARIOS.items()}
SCENARIO_NAMES = tuple(SCENARIOS)


# -- malformed material: each one is a dead letter under docs/RECORDS.md -------------------------

_DROP = object()  # as a break's value: the field is removed
_GARBAGE = (
    b"\xff\xfe not json at all",
    b"<html><body>502 Bad Gateway</body></html>",
    b'\x80{"eventId": 1}',
    b"null",
    b"42",
    b'"CONTACT_STARTED"',
    b"true",
    b"{}",
)
_BAD_UTF8 = (b'"t-\xff1"', b'"t-\xed\xa0\x80"', b'"t-\xc3\x28"')  # stray, surrogate, bad tail
_FRAMINGS: tuple[Callable[[bytes], bytes], ...] = (
    lambda data: b"[" + data + b"]",
    lambda data: b"\xef\xbb\xbf" + data,  # a BOM mid-stream is not JSON
    lambda data: data + b" " + data,
    lambda data: data + b" trailing",
    lambda data: data.replace(b'"tenantId"', b'"totalDurationSeconds": NaN, "tenantId"', 1),
)
# (field, value) breaks, applied after every channel field is removed.
_CHANNEL_BREAKS = (
    ("channel", "fax"),
    ("channel", "Voice"),
    ("mediaTypeId", "4"),
    ("mediaTypeId", 99),
    ("mediaTypeId", True),
    ("mediaTypeName", "Carrier Pigeon"),
    ("channel", _DROP),
)
# (field, value) breaks of an otherwise valid interaction.
_FIELD_BREAKS = (
    ("abandoned", "yes"),
    ("isRefused", 1),
    ("contactId", 1.5),
    ("contactId", [1]),
    ("contactId", ""),
    ("contactId", _DROP),
    ("customerId", 123),
    ("eventId", True),
    ("eventId", {"id": 1}),
    ("tenantId", 7),
    ("businessUnitId", 4600),
    ("endReason", 5),
    ("masterContactId", {"id": 2}),
    ("eventTime", _DROP),
    ("eventTime", "2026-11-30T00:53:22.976"),  # no offset
    ("eventTime", "yesterday at noon"),
    ("eventTime", 1796000000000.5),
    ("eventTime", "1796000000"),
    ("eventTime", "2026-02-30T10:00:00Z"),
    ("eventTime", "2026-11-30T00:53:22+24:00"),
    ("eventTime", True),
    ("eventTime", 10**16),
    ("schemaVersion", 2),
    ("schemaVersion", 0),
    ("schemaVersion", "1"),
    ("schemaVersion", 1.5),
    ("schemaVersion", True),
    ("eventType", "CONTACT_TELEPORTED"),
    ("eventType", "contact_started"),
    ("eventType", 7),
    ("eventType", _DROP),  # and no tutorial `status` to stand for it
    ("recordType", "agent_update"),
    ("recordType", "INTERACTION"),
    ("recordType", 1),
)
# Valid JSON objects that are still no record; built from the valid `obj` being broken.
_OTHER_SHAPES: tuple[Callable[[dict], dict], ...] = (
    # A customer update without its customer, then tutorial records with no usable status.
    lambda obj: {"recordType": "customer_update", "customerId": "", "eventTime": 1},
    lambda obj: {"recordType": "customer_update", "tier": "gold", "updatedAt": 1},
    lambda obj: {"interactionId": "seed-1", "timestamp": 1, "channel": "voice"},
    lambda obj: {
        "interactionId": obj["contactId"],
        "timestamp": obj["eventTime"],
        "status": "PENDING",
    },
)


def _with(obj: dict, field: str, value: Any) -> dict:
    """Set `field` to `value` in `obj` (remove it for `DROP`); returns `obj`, changed in place."""
    if value is _DROP:
        obj.pop(field, None)
    else:
        obj[field] = value
    return obj


def _pick(r: Callable[[], float], seq: tuple) -> Any:
    return seq[int(r() * len(seq))]


def malformed_value(
    obj: dict, key: bytes | None, r: Callable[[], float]
) -> tuple[bytes | None, bytes]:
    """Break the valid interaction `obj` (keyed `key`) with one entry of the catalogue, drawn from
    `r`: the (key, value) of a record that must become a dead letter. `obj` is changed in place."""
    data = dumps(obj)
    u = r()
    if u < 0.1:
        value = data[: 1 + int(r() * (len(data) - 2))]  # a truncated object
    elif u < 0.2:
        value, key = _pick(r, _GARBAGE), None
    elif u < 0.3:
        value = data.replace(b'"t-1"', _pick(r, _BAD_UTF8), 1)
    elif u < 0.45:
        value = _pick(r, _FRAMINGS)(data)
    elif u < 0.55:
        for field in ("channel", "mediaTypeId", "mediaTypeName", "mediaSubTypeName"):
            obj.pop(field, None)
        value = dumps(_with(obj, *_pick(r, _CHANNEL_BREAKS)))
    elif u < 0.9:
        value = dumps(_with(obj, *_pick(r, _FIELD_BREAKS)))
    else:
        value = dumps(_pick(r, _OTHER_SHAPES)(obj))
    return key, value
