"""Typed records that flow through the pipeline once a raw line or Kafka value has been parsed.

Times are integer epoch milliseconds (event time) everywhere: the spec truncates to the millisecond,
and integers compare and hash exactly, unlike floats of seconds.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib

__all__ = [
    "Channel",
    "CustomerUpdate",
    "DeadLetter",
    "EnrichedInteraction",
    "Interaction",
    "Outcome",
    "RawRecord",
    "UNKNOWN",
    "event_order",
]

UNKNOWN = "UNKNOWN"


class Channel(str, enum.Enum):
    """The channels of docs/RECORDS.md; their values are what the tables store."""

    VOICE = "voice"
    CHAT = "chat"
    EMAIL = "email"
    SMS = "sms"
    DIGITAL = "digital"
    VOICEMAIL = "voicemail"
    WORK_ITEM = "work_item"


class Outcome(str, enum.Enum):
    """What an interaction record means to the pattern detector (docs/RECORDS.md, "Outcome")."""

    CALLBACK = "CALLBACK"
    FAILURE = "FAILURE"
    SUCCESS = "SUCCESS"
    NONE = "NONE"


@dataclasses.dataclass(frozen=True, slots=True)
class RawRecord:
    """One undecoded record as a source delivered it.

    `source` names where it came from (`topic/partition/offset` or `file:line`) for dead letters;
    `order` ranks records of one source for "first seen wins" in batch; `source_time_ms` is the
    Kafka record timestamp or the file's modification time, the deterministic `recorded_at` of a
    dead letter; `late` is set by the streaming read when the record is behind its watermark by
    more than the allowed lateness; `duplicate` when the read saw its event id before in the same
    partition (`beam_cxone.first_seen`). `parsed`: (the ParseSettings, the valid record) when the
    streaming read already parsed it for its watermark, so the parse step does not parse it twice.
    """

    payload: bytes | None
    source: str
    source_time_ms: int
    order: tuple[str, int] = ("", 0)
    late: bool = False
    duplicate: bool = False
    parsed: tuple | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Interaction:
    """A valid interaction record (docs/RECORDS.md), after aliases and defaults are resolved."""

    event_id: str
    event_time_ms: int
    contact_id: str
    master_contact_id: str
    customer_id: str | None
    channel: str
    event_type: str
    outcome: str
    tenant_id: str | None = None
    business_unit_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CustomerUpdate:
    """Static customer data: the profile a customer has from `event_time_ms` on."""

    event_id: str
    event_time_ms: int
    customer_id: str
    tier: str
    region: str


@dataclasses.dataclass(frozen=True, slots=True)
class EnrichedInteraction:
    """An interaction of a known customer with the profile valid at its event time."""

    interaction: Interaction
    tier: str
    region: str


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record the pipeline could not use, kept with why and where (never silently dropped).

    `payload` is the raw text capped at 64 KiB (undecodable bytes escaped); `reason` is a short code
    and never holds a field's value, so personal data cannot leak through it.
    """

    stage: str
    reason: str
    payload: str
    source: str
    recorded_at_ms: int

    @property
    def dead_letter_id(self) -> str:
        """Deterministic id: a replay of the same record yields the same row."""
        digest = hashlib.sha256()
        for part in (self.source, self.stage, self.reason, self.payload):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\x1f")
        return digest.hexdigest()[:32]


def event_order(record: Interaction | CustomerUpdate) -> tuple[int, str]:
    """The total order of the spec: event time, then event id for equal times."""
    return (record.event_time_ms, record.event_id)
