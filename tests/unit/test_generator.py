"""The synthetic stream generator: determinism, shape, and the properties other tests rely on.

Every check reads the records back through `parse_record`, so the generator is judged by the
contract (docs/RECORDS.md) and never by its own idea of what it wrote.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections import Counter
from collections import defaultdict

import pytest

from beam_cxone.generator import ALL_CHANNELS
from beam_cxone.generator import PATTERN_SCENARIOS
from beam_cxone.generator import GeneratedRecord
from beam_cxone.generator import GeneratorConfig
from beam_cxone.generator import generate
from beam_cxone.generator import write_jsonl
from beam_cxone.parse import parse_record
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import DeadLetter
from beam_cxone.records import Interaction
from beam_cxone.records import RawRecord

BIG = GeneratorConfig(count=20_000, seed=11)


def _parse(records: list[GeneratedRecord]) -> list[Interaction | CustomerUpdate | DeadLetter]:
    return [parse_record(RawRecord(r.value, f"gen:{i}", 0)) for i, r in enumerate(records)]


@pytest.fixture(scope="module")
def big() -> tuple[list[GeneratedRecord], list]:
    records = list(generate(BIG))
    return records, _parse(records)


def _matches(parsed: list) -> dict[str, int]:
    """Brute-force REPEATED_FAILURE_CALLBACK (docs/SEMANTICS.md): alerts per customer, first copy counts."""
    first: dict[str, Interaction] = {}
    for rec in parsed:
        if isinstance(rec, Interaction) and rec.event_id not in first:
            first[rec.event_id] = rec
    seqs = defaultdict(list)
    for rec in first.values():
        if rec.customer_id and rec.outcome in ("FAILURE", "SUCCESS", "CALLBACK"):
            seqs[rec.customer_id].append(rec)
    alerts: Counter[str] = Counter()
    for customer, seq in seqs.items():
        seq.sort(key=lambda i: (i.event_time_ms, i.event_id))
        for k in range(3, len(seq)):
            run = seq[k - 3 : k]
            if (
                seq[k].outcome == "CALLBACK"
                and all(f.outcome == "FAILURE" for f in run)
                and seq[k].event_time_ms - run[0].event_time_ms < 30_000
            ):
                alerts[customer] += 1
    return alerts


def test_same_seed_same_bytes():
    cfg = GeneratorConfig(count=3000, seed=5)
    assert list(generate(cfg)) == list(generate(cfg))


def test_different_seed_different_bytes():
    a = [r.value for r in generate(GeneratorConfig(count=500, seed=1))]
    b = [r.value for r in generate(GeneratorConfig(count=500, seed=2))]
    assert a != b
    assert len(set(a) & set(b)) < 10  # eventIds carry the seed, so records hardly ever coincide


def test_smaller_count_is_a_prefix():
    long = list(generate(GeneratorConfig(count=3000, seed=3)))
    assert list(generate(GeneratorConfig(count=700, seed=3))) == long[:700]


@pytest.mark.parametrize("count", [0, 1, 2, 17, 1000])
def test_count_respected(count):
    assert sum(1 for _ in generate(GeneratorConfig(count=count, seed=count))) == count


@pytest.mark.parametrize("name", ["trace.jsonl", "trace.jsonl.gz"])
def test_write_jsonl_one_line_per_record(tmp_path, name):
    cfg = GeneratorConfig(count=5000, seed=9, malformed_rate=0.2)
    path = tmp_path / name
    assert write_jsonl(cfg, path) == 5000
    data = path.read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    lines = data.split(b"\n")
    assert lines[-1] == b""  # the last record ends with a newline too
    assert lines[:-1] == [r.value for r in generate(cfg)]
    assert all(line.strip() and b"\r" not in line for line in lines[:-1])


def test_write_jsonl_gzip_bytes_are_reproducible(tmp_path):
    cfg = GeneratorConfig(count=2000, seed=4)
    write_jsonl(cfg, tmp_path / "a.jsonl.gz")
    write_jsonl(cfg, tmp_path / "b.jsonl.gz")
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def test_dead_letter_share_within_bounds(big):
    _, parsed = big
    dead = sum(isinstance(p, DeadLetter) for p in parsed)
    # ~1 % malformed (duplicates of malformed records are malformed too); 20k records: sd ~ 0.07 %.
    assert 0.006 * len(parsed) <= dead <= 0.015 * len(parsed)


def test_no_malformed_rate_no_dead_letters():
    parsed = _parse(list(generate(GeneratorConfig(count=5000, seed=2, malformed_rate=0.0))))
    assert [p for p in parsed if isinstance(p, DeadLetter)] == []


def test_every_malformed_variant_is_a_dead_letter():
    cfg = GeneratorConfig(
        count=3000,
        seed=8,
        malformed_rate=1.0,
        customer_update_rate=0.0,
        pattern_rate=0.0,
        tutorial_rate=0.0,
    )
    parsed = _parse(list(generate(cfg)))
    assert all(isinstance(p, DeadLetter) for p in parsed)
    reasons = Counter(p.reason for p in parsed)
    assert {
        "invalid_json",
        "invalid_utf8",
        "not_an_object",
        "wrong_type",
        "unknown_channel",
        "bad_time",
        "unsupported_schema",
        "unknown_event_type",
        "unknown_record_type",
        "missing_field",
    } <= set(reasons)


@pytest.mark.parametrize("disorder_s", [0.0, 0.5, 3.0, 10.0])
def test_disorder_never_exceeds_bound(disorder_s):
    cfg = GeneratorConfig(count=8000, seed=6, disorder_s=disorder_s)
    parsed = [p for p in _parse(list(generate(cfg))) if not isinstance(p, DeadLetter)]
    bound_ms = int(disorder_s * 1000)
    high, worst = None, 0
    for p in parsed:
        if high is not None:
            assert p.event_time_ms >= high - bound_ms
            worst = max(worst, high - p.event_time_ms)
        high = p.event_time_ms if high is None else max(high, p.event_time_ms)
    if bound_ms:
        assert worst > bound_ms // 2  # the disorder is really there, not just allowed
    else:
        assert worst == 0


def test_duplicates_are_exact_retries(big):
    records, parsed = big
    by_id = defaultdict(set)
    for rec, p in zip(records, parsed, strict=True):
        if not isinstance(p, DeadLetter):
            by_id[p.event_id].add(rec.value)
    copies = Counter(
        p.event_id for p in parsed if not isinstance(p, DeadLetter)
    )  # same eventId, seen more than once
    duplicated = [eid for eid, n in copies.items() if n > 1]
    assert 0.01 * len(records) <= len(duplicated) <= 0.03 * len(records)
    assert all(len(values) == 1 for values in by_id.values())  # one eventId, one set of bytes


def test_pattern_bursts_match_their_scenario(big):
    _, parsed = big
    alerts = _matches(parsed)
    assert sum(alerts.values()) >= 1
    times = [p.event_time_ms for p in parsed if not isinstance(p, DeadLetter)]
    complete_before = max(times) - 60_000  # the last bursts may be cut off by `count`
    first_seen: dict[str, int] = {}
    for p in parsed:
        if isinstance(p, Interaction) and (p.customer_id or "").startswith("PAT-"):
            first_seen.setdefault(p.customer_id, p.event_time_ms)
            first_seen[p.customer_id] = min(first_seen[p.customer_id], p.event_time_ms)
    checked = Counter()
    for customer, start in first_seen.items():
        if start < complete_before:
            scenario = customer.split("-", 2)[2]
            assert alerts[customer] == PATTERN_SCENARIOS[scenario], customer
            checked[scenario] += 1
    assert set(checked) == set(PATTERN_SCENARIOS)  # every boundary case occurs, matches and misses


def test_all_channels_appear(big):
    _, parsed = big
    assert {p.channel for p in parsed if isinstance(p, Interaction)} == set(ALL_CHANNELS)


def test_channels_can_be_restricted():
    cfg = GeneratorConfig(count=2000, seed=1, channels=("voice", "sms"), malformed_rate=0.0)
    channels = {p.channel for p in _parse(list(generate(cfg))) if isinstance(p, Interaction)}
    assert channels == {"voice", "sms"}


def test_keys_follow_the_contract(big):
    records, parsed = big
    for rec, p in zip(records, parsed, strict=True):
        if isinstance(p, Interaction):
            assert rec.key == p.master_contact_id.encode()
        elif isinstance(p, CustomerUpdate):
            assert rec.key == p.customer_id.encode()


def test_event_time_rate(big):
    _, parsed = big
    times = [p.event_time_ms for p in parsed if not isinstance(p, DeadLetter)]
    span_s = (max(times) - BIG.start_ms) / 1000
    assert abs(span_s - BIG.count / BIG.events_per_second_event_time) < 0.1 * span_s


def test_encodings_are_mixed(big):
    records, parsed = big
    times = Counter()
    for rec, p in zip(records, parsed, strict=True):
        if isinstance(p, DeadLetter):
            continue
        obj = json.loads(rec.value)
        value = obj.get("eventTime", obj.get("timestamp", obj.get("updatedAt")))
        if isinstance(value, int):
            times["epoch_ms"] += 1
        elif re.search(r"\.\d{6,}", value):
            times["sub_ms"] += 1
        elif value.endswith("Z"):
            times["z"] += 1
        else:
            times["offset"] += 1
        if "interactionId" in obj:
            times["tutorial_with_id" if "eventId" in obj else "tutorial_without_id"] += 1
        if "updatedAt" in obj:
            times["updated_at_alias"] += 1
        if "channel" not in obj and "mediaSubTypeName" in obj and p.channel == "sms":
            times["digital_sms"] += 1
        if "channel" not in obj and "mediaTypeId" in obj:
            times["media_type_id"] += 1
        if "channel" not in obj and "mediaTypeId" not in obj and "mediaTypeName" in obj:
            times["media_type_name"] += 1
    assert all(times[k] >= 20 for k in ("epoch_ms", "sub_ms", "z", "offset")), times
    assert all(
        times[k] >= 20
        for k in (
            "tutorial_with_id",
            "tutorial_without_id",
            "updated_at_alias",
            "digital_sms",
            "media_type_id",
            "media_type_name",
        )
    ), times


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": -1},
        {"count": 1, "events_per_second_event_time": 0},
        {"count": 1, "customers": 0},
        {"count": 1, "channels": ()},
        {"count": 1, "channels": ("fax",)},
        {"count": 1, "disorder_s": -1},
        {"count": 1, "duplicate_rate": 1.0},
        {"count": 1, "malformed_rate": 1.5},
        {"count": 1, "pattern_rate": 0.5},  # bursts alone would need more than every record
    ],
)
def test_invalid_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        GeneratorConfig(**kwargs)


# The bytes of small traces, pinned: a refactor of the generator must not change one byte for a given
# seed and arguments (benchmarks and saved traces depend on it). A deliberate change of the output
# updates these hashes in the same commit, with the reason.
PINNED_TRACES = [
    ({"count": 3000, "seed": 0},
     "f356ac3ef9e1a09504bb5f4309d961fc5efc3087242b90f9af81256b7ac62590"),
    ({"count": 3000, "seed": 7},
     "c0d9f91f21bf746eecf95b45b89d4bc585a373d3a76b47d10f6830ab761e356b"),
    ({"count": 3000, "seed": 2024, "disorder_s": 0.0},
     "76f81cdcd713c833cccdcaab510acd1de0783172c2e6295c59d33f6dfc0fc090"),
    ({"count": 3000, "seed": 11, "disorder_s": 10.0, "customers": 5, "duplicate_rate": 0.2,
      "malformed_rate": 0.1, "pattern_rate": 0.05},
     "d7da104e157a4afdc7c375323b0b2dce1169504c064519b587793377f176d860"),
    ({"count": 3000, "seed": 3, "channels": ("sms", "digital"), "tutorial_rate": 0.2,
      "customer_update_rate": 0.2},
     "003b6eb02fcc516d06ddcb800c049012c69f18eac9bc3a42255708ef02713f5a"),
]


@pytest.mark.parametrize("kwargs,digest", PINNED_TRACES, ids=lambda v: str(v)[:40])
def test_trace_bytes_are_pinned(kwargs, digest):
    h = hashlib.sha256()
    for record in generate(GeneratorConfig(**kwargs)):
        h.update(repr(record.key).encode())
        h.update(b"\0")
        h.update(record.value)
        h.update(b"\n")
    assert h.hexdigest() == digest
