"""An independent, brute-force reference of docs/SEMANTICS.md for tests.

It shares nothing with the pipeline's transforms: whole-trace sorts and scans instead of state,
timers and windows, so a test can state expected rows without asking the code under test.
Parsing reuses `beam_cxone.parse.parse_record`, which has its own table tests.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from beam_cxone.parse import ParseSettings
from beam_cxone.parse import parse_record
from beam_cxone.records import UNKNOWN
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import DeadLetter
from beam_cxone.records import Interaction
from beam_cxone.records import RawRecord


def iso(ms: int) -> str:
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def day(ms: int) -> str:
    return iso(ms)[:10]


def raw_lines(lines: list[bytes], name: str = "trace") -> list[RawRecord]:
    """Records of a JSON Lines file, blank lines skipped, as the file source numbers them."""
    out = []
    for number, line in enumerate(lines, start=1):
        body = line.rstrip(b"\r\n")
        if not body.strip():
            continue
        out.append(RawRecord(body, f"{name}:{number}", 0, (name, number)))
    return out


def reference(
    raws: list[RawRecord],
    window_ms: int = 10_000,
    failure_count: int = 3,
    within_ms: int = 30_000,
    settings: ParseSettings = ParseSettings(),
) -> dict:
    """All rows the spec requires for a bounded trace (no late data in batch)."""
    first: dict[str, Interaction | CustomerUpdate] = {}
    dead: list[DeadLetter] = []
    for raw in raws:  # file order: the first copy of an eventId counts
        rec = parse_record(raw, settings)
        if isinstance(rec, DeadLetter):
            dead.append(rec)
        elif rec.event_id not in first:
            first[rec.event_id] = rec
    interactions = [r for r in first.values() if isinstance(r, Interaction)]
    updates = [r for r in first.values() if isinstance(r, CustomerUpdate)]

    contacts: dict[tuple, set] = defaultdict(set)
    events: dict[tuple, set] = defaultdict(set)
    for i in interactions:
        start = i.event_time_ms - (i.event_time_ms % window_ms)
        contacts[(i.channel, start)].add(i.contact_id)
        events[(i.channel, start)].add(i.event_id)
    volumes = [
        {
            "channel": ch,
            "day": day(start),
            "window_start": iso(start),
            "window_end": iso(start + window_ms),
            "interactions": len(contacts[(ch, start)]),
            "events": len(events[(ch, start)]),
        }
        for (ch, start) in sorted(contacts)
    ]

    by_customer: dict[str, list[CustomerUpdate]] = defaultdict(list)
    for u in updates:
        by_customer[u.customer_id].append(u)
    profiles = []
    for cid in sorted(by_customer):
        best = max(by_customer[cid], key=lambda u: (u.event_time_ms, u.event_id))
        profiles.append(
            {"customer_id": cid, "tier": best.tier, "region": best.region,
             "updated_at": iso(best.event_time_ms)}
        )

    def profile_at(cid: str, t: int) -> tuple[str, str]:
        known = [u for u in by_customer.get(cid, []) if u.event_time_ms <= t]
        if not known:
            return UNKNOWN, UNKNOWN
        best = max(known, key=lambda u: (u.event_time_ms, u.event_id))
        return best.tier, best.region

    alerts = []
    seqs: dict[str, list[Interaction]] = defaultdict(list)
    for i in interactions:
        if i.customer_id and i.outcome in ("FAILURE", "SUCCESS", "CALLBACK"):
            seqs[i.customer_id].append(i)
    for cid, seq in sorted(seqs.items()):
        seq.sort(key=lambda i: (i.event_time_ms, i.event_id))
        for k, c in enumerate(seq):
            if c.outcome != "CALLBACK" or k < failure_count:
                continue
            run = seq[k - failure_count:k]
            if all(f.outcome == "FAILURE" for f in run) and c.event_time_ms - run[0].event_time_ms < within_ms:
                tier, region = profile_at(cid, c.event_time_ms)
                alerts.append({
                    "customer_id": cid,
                    "alert_time": iso(c.event_time_ms),
                    "alert_type": "REPEATED_FAILURE_CALLBACK",
                    "channel": c.channel,
                    "failure_count": failure_count,
                    "first_failure_time": iso(run[0].event_time_ms),
                    "failure_event_ids": [f.event_id for f in run],
                    "callback_event_id": c.event_id,
                    "tier": tier,
                    "region": region,
                })
    return {
        "interaction_volumes": volumes,
        "customer_profiles": profiles,
        "pattern_alerts": alerts,
        "dead_letters": dead,
        "valid_distinct_records": len(first),
    }
