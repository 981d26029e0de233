"""Deterministic synthetic CXone envelope-v1 streams (docs/RECORDS.md) for tests, benchmarks and demos.

Why synthetic: every rule of the record contract can be exercised at volume without a CXone tenant.
The stream mixes every encoding docs/RECORDS.md accepts (RFC 3339 with `Z`, a numeric offset, micro- and
nanoseconds, epoch milliseconds; explicit channels, media type ids and names, digital + SMS; the
original tutorial's records), malformed records, producer-retry duplicates, bounded event-time
disorder, and injected REPEATED_FAILURE_CALLBACK bursts on both sides of every boundary.

Pure Python and Kafka-free: it yields `GeneratedRecord`s; whoever publishes them owns the client.
This module is the stream machinery, one class per concern: `_Draws` (the one random source),
`_Ids` (eventIds, contact numbers), `_Encodings` (time and channel encodings), `_Emission` (bounded
disorder, producer-retry duplicates), `_Customers` (the pool and profile updates), `_Interactions`
(contacts, outcomes, the tutorial's shape), `_Bursts` (pattern bursts), `_Faults` (malformed
records), and `_Stream` (the mix of kinds and the event-time gaps). The cases it injects (the pattern
scenarios and the malformed-record catalogue) live in `beam_cxone.generator_cases`.

Determinism: only `random.Random(seed).random()` is drawn (the one method whose sequence Python
promises to keep across versions), so a config always yields the same bytes, and a smaller `count`
yields a prefix of a larger one.

A trace to a file: `python -m beam_cxone generate --count 100000 --seed 7 --output trace.jsonl.gz`
(`beam_cxone.commands.generate`, which also publishes to Kafka).
"""

from __future__ import annotations

import bisect
import dataclasses
import gzip
import heapq
import math
import os
import random
import time
from collections.abc import Iterator
from typing import Any

from beam_cxone.generator_cases import PATTERN_SCENARIOS
from beam_cxone.generator_cases import SCENARIO_NAMES
from beam_cxone.generator_cases import SCENARIOS
from beam_cxone.generator_cases import dumps
from beam_cxone.generator_cases import malformed_value
from beam_cxone.records import Channel

__all__ = [
    "ALL_CHANNELS",
    "PATTERN_SCENARIOS",
    "GeneratedRecord",
    "GeneratorConfig",
    "generate",
    "write_jsonl",
]

ALL_CHANNELS = tuple(channel.value for channel in Channel)  # docs/RECORDS.md, in its order
# Realistic contact-centre mix; every channel stays frequent enough to appear in small traces.
_CHANNEL_WEIGHTS = {
    "voice": 35,
    "chat": 20,
    "email": 12,
    "sms": 10,
    "digital": 10,
    "voicemail": 5,
    "work_item": 8,
}
_MEDIA_TYPE_ID = {"voice": 4, "chat": 3, "email": 1, "voicemail": 5, "work_item": 6, "digital": 9}
_MEDIA_TYPE_NAME = {
    "voice": "Phone Call",
    "chat": "Chat",
    "email": "Email",
    "voicemail": "Voice Mail",
    "work_item": "Work Item",
    "digital": "Digital",
}
_FAILURE_REASONS = ("Abandoned", "Refused", "Failed", "Busy", "No Answer")
_SUCCESS_REASONS = ("Contact Hung Up", "Agent Hung Up", "Transferred", "Resolved")
_STATES = ("Inbound", "Active", "Holding", "Routing", "Interrupted")
# Non-ASCII names keep UTF-8 (not \u escapes) on the wire, as real skill names do.
_SKILLS = ((101, "Support"), (102, "Ventas España"), (103, "Kundendienst Süd"), (104, "サポート"))
_TIERS = ("bronze", "silver", "gold", "platinum")
_REGIONS = ("amer", "emea", "apac", "latam")
# Minutes east of UTC, including half-hour and the extreme +14:00/-12:00 zones.
_OFFSETS = (0, 60, 120, 330, 345, 540, 840, -180, -210, -300, -480, -720)

# Shapes of a normal contact; the expected record count per contact follows from them.
_P_COMPLETED_ONLY = 0.2  # a contacts/completed-style publisher sends only the end
_P_STATE_CHANGE = 0.5
_MAX_CONTACT_MS = 120_000
_P_BURST_UPDATE = 0.5  # a burst customer's profile update, placed on a join boundary

_RECORDS_PER_BURST = (
    sum(len(build(random.Random(0).random)) for build, _ in SCENARIOS.values()) / len(SCENARIOS)
    + _P_BURST_UPDATE
)
_RECORDS_PER_CONTACT = _P_COMPLETED_ONLY + (1 - _P_COMPLETED_ONLY) * (2 + _P_STATE_CHANGE)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. Rates are shares of all emitted records (`pattern_rate`: burst starts)."""

    count: int
    seed: int = 0
    start_ms: int = 1796000000000
    events_per_second_event_time: float = 20.0
    customers: int = 50
    channels: tuple[str, ...] = ALL_CHANNELS
    duplicate_rate: float = 0.02
    malformed_rate: float = 0.01
    disorder_s: float = 3.0
    customer_update_rate: float = 0.05
    pattern_rate: float = 0.02
    tutorial_rate: float = 0.03

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        errors = []
        if self.count < 0:
            errors.append("count must be >= 0")
        if not self.events_per_second_event_time > 0:
            errors.append("events_per_second_event_time must be > 0")
        if self.customers < 1:
            errors.append("customers must be >= 1")
        if not self.channels or not set(self.channels) <= set(ALL_CHANNELS):
            errors.append(f"channels must be a non-empty subset of {ALL_CHANNELS}")
        if not self.disorder_s >= 0:
            errors.append("disorder_s must be >= 0")
        if not 0 <= self.duplicate_rate < 1:
            errors.append("duplicate_rate must be in [0, 1)")
        rates = ("malformed_rate", "customer_update_rate", "pattern_rate", "tutorial_rate")
        for name in rates:
            if not 0 <= getattr(self, name) <= 1:
                errors.append(f"{name} must be in [0, 1]")
        if self._special_records() > 1 + 1e-9:
            errors.append("the rates leave no room: a burst is several records")
        if errors:
            raise ValueError("Invalid GeneratorConfig:\n  " + "\n  ".join(errors))

    def _special_records(self) -> float:
        """Share of records the non-contact kinds take (a burst start brings a whole burst)."""
        return (
            self.malformed_rate
            + self.customer_update_rate
            + self.tutorial_rate
            + self.pattern_rate * _RECORDS_PER_BURST
        )


@dataclasses.dataclass(frozen=True, slots=True)
class GeneratedRecord:
    """One Kafka record: key (masterContactId or customerId, docs/RECORDS.md) and the raw value."""

    key: bytes | None
    value: bytes


def _rfc3339(ms: int, offset_min: int | None, extra_digits: str = "") -> str:
    """RFC 3339 with `Z` (offset None) or a numeric offset; extra digits after the millisecond."""
    sec, milli = divmod(ms, 1000)
    local = sec + (offset_min or 0) * 60
    tm = time.gmtime(local)
    text = (
        f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T"
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    )
    if milli or extra_digits:
        text += f".{milli:03d}{extra_digits}"
    if offset_min is None:
        return text + "Z"
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


class _Draws:
    """The run's one random source and the small draws every kind of record makes from it.

    Every draw goes through `r` (`random.Random(seed).random`), in a fixed order: the order of the
    calls below is part of the output."""

    def __init__(self, cfg: GeneratorConfig):
        self.r = random.Random(cfg.seed).random
        self._channels = cfg.channels
        cumulative, total = [], 0
        for channel in cfg.channels:
            total += _CHANNEL_WEIGHTS[channel]
            cumulative.append(total)
        self._channel_cum, self._channel_total = cumulative, total

    def pick(self, seq: tuple | list) -> Any:
        return seq[int(self.r() * len(seq))]

    def channel(self) -> str:
        i = bisect.bisect_right(self._channel_cum, self.r() * self._channel_total)
        return self._channels[min(i, len(self._channels) - 1)]


class _Ids:
    """eventIds (string, numeric or absent) and contact numbers, distinct per seed."""

    def __init__(self, cfg: GeneratorConfig, draws: _Draws):
        self._draws = draws
        self._event_no = 0
        self._contact_no = 0
        tag = cfg.seed & 0xFFFFFFFF
        self._prefix = f"ev-{tag:08x}-"
        # Numeric eventIds (taken as decimal strings) in their own range, distinct per seed.
        self._int_base = 10**15 + (tag % 100_000) * 10**9

    def next_contact(self) -> int:
        self._contact_no += 1
        return 100_000_000 + self._contact_no

    def event_id(self, variants: bool) -> str | int | None:
        """A fresh eventId; with `variants`, sometimes numeric or absent (then a content hash)."""
        self._event_no += 1
        if variants:
            u = self._draws.r()
            if u < 0.03:
                return None
            if u < 0.08:
                return self._int_base + self._event_no
        return f"{self._prefix}{self._event_no:09d}"


class _Encodings:
    """The encodings docs/RECORDS.md accepts for a record's time and channel, mixed."""

    def __init__(self, draws: _Draws):
        self._draws = draws

    def time(self, ms: int) -> int | str:
        """Epoch ms, or RFC 3339 with `Z` or an offset, with milli-, micro- or nanoseconds."""
        r, pick = self._draws.r, self._draws.pick
        u = r()
        if u < 0.30:
            return ms
        if u < 0.60:
            return _rfc3339(ms, None)
        if u < 0.80:
            return _rfc3339(ms, pick(_OFFSETS))
        offset = None if r() < 0.5 else pick(_OFFSETS)
        if u < 0.93:
            return _rfc3339(ms, offset, f"{int(r() * 1000):03d}")
        return _rfc3339(ms, offset, f"{int(r() * 1_000_000):06d}")

    def channel_fields(self, obj: dict, channel: str) -> None:
        """The channel, explicit or through CXone's media fields (an explicit one always wins)."""
        u = self._draws.r()
        if channel == "sms":
            if u < 0.5:
                obj["channel"] = "sms"
            elif u < 0.75:
                obj["mediaTypeId"] = 9
                obj["mediaSubTypeName"] = "SMS"
            else:
                obj["mediaTypeName"] = "Digital"
                obj["mediaSubTypeName"] = "SMS"
            return
        if u < 0.40:
            obj["channel"] = channel
        elif u < 0.65:
            obj["mediaTypeId"] = _MEDIA_TYPE_ID[channel]
        elif u < 0.85:
            obj["mediaTypeName"] = _MEDIA_TYPE_NAME[channel]
        elif u < 0.92:
            obj["mediaTypeId"] = _MEDIA_TYPE_ID[channel]
            obj["mediaTypeName"] = _MEDIA_TYPE_NAME[channel]
        else:
            obj["channel"] = channel
            obj["mediaTypeId"] = 9  # contradicts the channel on purpose
            obj["mediaSubTypeName"] = "SMS"
            return
        if channel == "digital" and self._draws.r() < 0.3:
            obj["mediaSubTypeName"] = self._draws.pick(("WhatsApp", "Facebook Messenger"))


class _Emission:
    """Bounded disorder and producer-retry duplicates: records wait in a heap until they are due.

    Every record gets an emission key `event_time + u` with `0 <= u <= disorder`; records leave in
    key order. Any record emitted after another then has an event time at most `disorder` earlier,
    which is the bound the spec's watermark tests rely on. A record is only emitted once no base
    event still to be drawn can produce a smaller key (base events come in event-time order and
    produce only later or equal event times): `due(now)` with the time of the next base event.
    """

    def __init__(self, cfg: GeneratorConfig, draws: _Draws):
        self._draws = draws
        self._heap: list[tuple[int, int, bytes | None, bytes]] = []
        self._seq = 0
        self._disorder_ms = int(cfg.disorder_s * 1000)
        # A retry's probability per original, so that retries are `duplicate_rate` of all records.
        self.dup_p = cfg.duplicate_rate / (1 - cfg.duplicate_rate)

    def push(self, t: int, key: bytes | None, value: bytes, may_repeat: bool = True) -> None:
        """Schedule a record; sometimes also a producer retry of it, a little later, same bytes."""
        r, d = self._draws.r, self._disorder_ms
        u = int(r() * (d + 1))
        self._seq += 1
        heapq.heappush(self._heap, (t + u, self._seq, key, value))
        if may_repeat and self.dup_p and r() < self.dup_p:
            self._seq += 1
            later = u + int(r() * (d - u + 1))
            heapq.heappush(self._heap, (t + later, self._seq, key, value))

    def due(self, now: int) -> Iterator[GeneratedRecord]:
        """The scheduled records whose emission key is at most `now`, in key order."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, key, value = heapq.heappop(heap)
            yield GeneratedRecord(key, value)


class _Customers:
    """The customer pool and its profile updates (customer_update records)."""

    def __init__(self, cfg: GeneratorConfig, draws: _Draws, ids: _Ids, enc: _Encodings,
                 out: _Emission):
        self._draws, self._ids, self._enc, self._out = draws, ids, enc, out
        self._pool = [f"CUST-{i:04d}" for i in range(cfg.customers)]

    def pick(self) -> str:
        return self._pool[int(self._draws.r() * len(self._pool))]

    def update(self, t: int, customer: str) -> None:
        r, pick = self._draws.r, self._draws.pick
        obj: dict[str, Any] = {}
        if r() < 0.3:
            obj["schemaVersion"] = 1
        obj["recordType"] = "customer_update"
        obj["eventId"] = self._ids.event_id(False)
        obj["customerId"] = customer
        if r() < 0.95:
            obj["tier"] = pick(_TIERS)
        if r() < 0.95:
            obj["region"] = pick(_REGIONS)
        obj["updatedAt" if r() < 0.3 else "eventTime"] = self._enc.time(t)
        self._out.push(t, customer.encode(), dumps(obj))


class _Interactions:
    """Interaction records: envelope-v1 objects, normal contacts and their outcomes, and the
    original tutorial's shape."""

    def __init__(self, draws: _Draws, ids: _Ids, enc: _Encodings, out: _Emission,
                 customers: _Customers):
        self._draws, self._ids, self._enc, self._out = draws, ids, enc, out
        self._customers = customers
        self._last_contact: int | None = None

    def obj(
        self,
        t: int,
        contact: int,
        master: int | None,
        customer: str | None,
        channel: str,
        event_type: str,
        extra: dict | None = None,
        id_variants: bool = True,
    ) -> dict:
        """An envelope-v1 interaction, optional fields present or not."""
        r = self._draws.r
        obj: dict[str, Any] = {}
        if r() < 0.7:
            obj["schemaVersion"] = 1
        event_id = self._ids.event_id(id_variants)
        if event_id is not None:
            obj["eventId"] = event_id
        if r() < 0.6:
            obj["recordType"] = "interaction"
        obj["eventTime"] = self._enc.time(t)
        obj["contactId"] = contact if r() < 0.4 else str(contact)
        if master is not None:
            obj["masterContactId"] = str(master)
        obj["eventType"] = event_type
        obj["tenantId"] = "t-1"
        if r() < 0.5:
            obj["businessUnitId"] = "4600123"
        self._enc.channel_fields(obj, channel)
        if customer is not None:
            obj["customerId"] = customer
        elif r() < 0.2:
            obj["customerId"] = ""  # reads as absent
        skill_id, skill_name = self._draws.pick(_SKILLS)
        obj["skillId"] = skill_id
        obj["skillName"] = skill_name
        if channel in ("voice", "sms", "voicemail"):
            obj["fromAddress"] = f"+1555{contact % 10_000_000:07d}"
        elif channel == "email":
            obj["fromAddress"] = f"user{contact % 100_000}@example.com"
        if extra:
            obj.update(extra)
        return obj

    def emit(self, t: int, obj: dict) -> tuple[bytes, bytes]:
        """Schedule an interaction at `t`, keyed by its master contact (or its own)."""
        key, value = (obj.get("masterContactId") or str(obj["contactId"])).encode(), dumps(obj)
        self._out.push(t, key, value)
        return key, value

    def outcome_extra(self, outcome: str) -> tuple[str, dict | None]:
        """eventType and fields for an outcome, in one of the encodings docs/RECORDS.md accepts."""
        r, pick = self._draws.r, self._draws.pick
        if outcome == "C":
            return "CALLBACK_REQUESTED", None
        if outcome == "S":
            if r() < 0.7:
                return "CONTACT_ENDED", {"endReason": pick(_SUCCESS_REASONS)}
            return "CONTACT_ENDED", {"abandoned": False, "totalDurationSeconds": int(r() * 900)}
        u = r()
        if u < 0.25:
            return "CONTACT_FAILED", {"disconnectCode": "NETWORK"}
        if u < 0.5:
            return "CONTACT_ENDED", {"abandoned": True, "endReason": "Contact Hung Up"}
        if u < 0.65:
            return "CONTACT_ENDED", {"isRefused": True}
        return "CONTACT_ENDED", {"endReason": pick(_FAILURE_REASONS)}

    def contact(self, t: int) -> None:
        """A normal contact: STARTED, maybe STATE_CHANGED, then its end (or only the end)."""
        r = self._draws.r
        contact = self._ids.next_contact()
        master = None
        if self._last_contact is not None and r() < 0.1:
            master = self._last_contact  # a transfer: a child contact of the previous one
        self._last_contact = contact
        customer = self._customers.pick() if r() < 0.9 else None
        channel = self._draws.channel()
        end = t
        if r() >= _P_COMPLETED_ONLY:
            self.emit(t, self.obj(t, contact, master, customer, channel, "CONTACT_STARTED"))
            duration = 2000 + int(r() * (_MAX_CONTACT_MS - 2000))
            end = t + duration
            if r() < _P_STATE_CHANGE:
                extra = {"stateName": self._draws.pick(_STATES)}
                at = t + int(r() * duration)
                self.emit(at, self.obj(at, contact, master, customer, channel,
                                       "CONTACT_STATE_CHANGED", extra))
        u = r()
        outcome = "S" if u < 0.78 else "F" if u < 0.96 else "C"
        event_type, extra = self.outcome_extra(outcome)
        self.emit(end, self.obj(end, contact, master, customer, channel, event_type, extra))

    def tutorial_obj(self, t: int, customer: str | None, status: str, id_variants: bool) -> dict:
        contact = self._ids.next_contact()
        obj: dict[str, Any] = {
            "interactionId": f"seed-{contact}",
            "timestamp": self._enc.time(t),
            "channel": self._draws.channel(),
            "status": status,
        }
        if customer is not None:
            obj["customerId"] = customer
        if not id_variants or self._draws.r() < 0.5:
            obj["eventId"] = self._ids.event_id(False)
        return obj

    def tutorial(self, t: int) -> None:
        """The original tutorial's shape: interactionId/timestamp/status, half without eventId."""
        r = self._draws.r
        u = r()
        status = "SUCCESS" if u < 0.7 else "FAILURE" if u < 0.9 else "CALLBACK_REQUEST"
        customer = self._customers.pick() if r() < 0.7 else None
        obj = self.tutorial_obj(t, customer, status, True)
        if r() < 0.1:
            obj["eventType"] = "CONTACT_ENDED"  # present: it decides, `status` is carried unread
        self._out.push(t, obj["interactionId"].encode(), dumps(obj))


class _Bursts:
    """REPEATED_FAILURE_CALLBACK bursts: a generator_cases scenario for a fresh PAT- customer."""

    def __init__(self, draws: _Draws, ids: _Ids, out: _Emission, customers: _Customers,
                 interactions: _Interactions):
        self._draws, self._ids, self._out = draws, ids, out
        self._customers, self._interactions = customers, interactions
        self._burst_no = 0

    def burst(self, t: int) -> None:
        """Failures then a callback for a fresh PAT- customer, named after its scenario."""
        r, pick, inter = self._draws.r, self._draws.pick, self._interactions
        if r() < 0.5:
            t += -t % 1000  # whole seconds, as hand-written traces have them
        name = pick(SCENARIO_NAMES)
        steps = SCENARIOS[name][0](r)
        self._burst_no += 1
        customer = f"PAT-{self._burst_no:05d}-{name}"
        if r() < _P_BURST_UPDATE:
            callback = next(off for off, kind in steps if kind == "C")
            # On the join's boundary: before, at, or just after the callback's event time.
            self._customers.update(t + pick((0, callback, callback + 1)), customer)
        last: tuple[bytes, bytes] | None = None
        for offset, kind in steps:
            at = t + offset
            if kind == "D" and last is not None:
                self._out.push(at, *last, may_repeat=False)
            elif kind == "N":
                event_type = "CONTACT_STARTED" if r() < 0.5 else "CONTACT_STATE_CHANGED"
                contact = self._ids.next_contact()
                last = inter.emit(at, inter.obj(at, contact, None, customer, self._draws.channel(),
                                                event_type, None, False))
            elif r() < 0.25:
                status = {"F": "FAILURE", "S": "SUCCESS", "C": "CALLBACK_REQUEST"}[kind]
                obj = inter.tutorial_obj(at, customer, status, False)
                last = (obj["interactionId"].encode(), dumps(obj))
                self._out.push(at, *last)
            else:
                event_type, extra = inter.outcome_extra(kind)
                contact = self._ids.next_contact()
                last = inter.emit(at, inter.obj(at, contact, None, customer, self._draws.channel(),
                                                event_type, extra, False))


class _Faults:
    """Malformed records: a valid interaction broken by generator_cases' catalogue."""

    def __init__(self, draws: _Draws, ids: _Ids, out: _Emission, customers: _Customers,
                 interactions: _Interactions):
        self._draws, self._ids, self._out = draws, ids, out
        self._customers, self._interactions = customers, interactions

    def malformed(self, t: int) -> None:
        """A record that must become a dead letter, built by breaking a valid one."""
        contact = self._ids.next_contact()
        obj = self._interactions.obj(t, contact, None, self._customers.pick(),
                                     self._draws.channel(), "CONTACT_ENDED", None, False)
        key, value = malformed_value(obj, str(contact).encode(), self._draws.r)
        self._out.push(t, key, value)


class _Stream:
    """One generation run: the mix of kinds and the event-time gaps between base draws.

    Base events are drawn in event-time order, one kind each (malformed, customer update, tutorial
    record, pattern burst, normal contact) with probabilities that turn the configured shares of
    *records* into shares of *draws*; `_Emission` releases what is due before each draw.
    """

    def __init__(self, cfg: GeneratorConfig):
        self._cfg = cfg
        self._draws = draws = _Draws(cfg)
        ids, enc = _Ids(cfg, draws), _Encodings(draws)
        self._out = out = _Emission(cfg, draws)
        self._customers = customers = _Customers(cfg, draws, ids, enc, out)
        self._interactions = interactions = _Interactions(draws, ids, enc, out, customers)
        self._bursts = _Bursts(draws, ids, out, customers, interactions)
        self._faults = _Faults(draws, ids, out, customers, interactions)
        # Draw probabilities that turn the configured record shares into shares of base draws.
        n_c = _RECORDS_PER_CONTACT
        kinds = (
            (cfg.malformed_rate, 1.0),
            (cfg.customer_update_rate, 1.0),
            (cfg.tutorial_rate, 1.0),
            (cfg.pattern_rate, _RECORDS_PER_BURST),
        )
        records_per_draw = n_c / (1 + sum(rate * (n_c - n) for rate, n in kinds))
        self._kind_cum = []
        acc = 0.0
        for rate, _ in kinds:
            acc += rate * records_per_draw
            self._kind_cum.append(acc)
        self._mean_gap_ms = (
            1000.0 * records_per_draw * (1 + out.dup_p) / cfg.events_per_second_event_time
        )

    def records(self) -> Iterator[GeneratedRecord]:
        remaining = self._cfg.count
        if remaining <= 0:
            return
        r = self._draws.r
        t = float(self._cfg.start_ms)
        malformed, update, tutorial, burst = self._kind_cum
        while True:
            now = int(t)
            for record in self._out.due(now):
                yield record
                remaining -= 1
                if remaining == 0:
                    return
            u = r()
            if u < malformed:
                self._faults.malformed(now)
            elif u < update:
                self._customers.update(now, self._customers.pick())
            elif u < tutorial:
                self._interactions.tutorial(now)
            elif u < burst:
                self._bursts.burst(now)
            else:
                self._interactions.contact(now)
            t += -math.log(1.0 - r()) * self._mean_gap_ms


def generate(cfg: GeneratorConfig) -> Iterator[GeneratedRecord]:
    """Exactly `cfg.count` records in emission order, identical bytes for an identical config."""
    return _Stream(cfg).records()


def write_jsonl(cfg: GeneratorConfig, path: str | os.PathLike) -> int:
    """Write the values one per line (gzip for `.gz`, with a fixed header); returns the count.

    The gzip header carries no name or time, so the file's bytes are reproducible too.
    """
    path = os.fspath(path)
    written = 0
    with open(path, "wb") as raw:
        out = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
            if path.endswith(".gz")
            else raw
        )
        try:
            batch: list[bytes] = []
            for record in generate(cfg):
                batch.append(record.value)
                if len(batch) >= 4096:
                    out.write(b"\n".join(batch) + b"\n")
                    written += len(batch)
                    batch.clear()
            if batch:
                out.write(b"\n".join(batch) + b"\n")
                written += len(batch)
        finally:
            if out is not raw:
                out.close()
    return written
