"""Direct DoFn / CombineFn calls (tier 2 of STYLE.md): no pipeline, `fn.process(element)` only.

Anchor: 1_795_860_000_000 ms = 2026-11-28T10:00:00Z; 1_795_910_400_000 ms = 2026-11-29T00:00:00Z.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import IntervalWindow
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import PaneInfo
from apache_beam.utils.windowed_value import PaneInfoTiming

from beam_cxone.parse import ParseSettings
from beam_cxone.records import CustomerUpdate
from beam_cxone.records import DeadLetter
from beam_cxone.records import Interaction
from beam_cxone.records import RawRecord
from beam_cxone.transforms.dedup import first_copies
from beam_cxone.transforms.parse_route import _ParseRecordFn
from beam_cxone.transforms.parse_route import _SplitByKindFn
from beam_cxone.transforms.volumes import DistinctCountsFn
from beam_cxone.transforms.volumes import _ToVolumeRowFn
from beam_cxone.transforms.volumes import volume_row

T0 = 1_795_860_000_000  # 2026-11-28T10:00:00Z
MIDNIGHT = 1_795_910_400_000  # 2026-11-29T00:00:00Z
ORDER = ("cxone-data-actions/3", 42)
SOURCE = "cxone-data-actions/3/42"


def raw(obj_or_bytes, *, late: bool = False) -> RawRecord:
    payload = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    return RawRecord(payload, SOURCE, T0 + 5_000, order=ORDER, late=late)


def run(fn, element) -> list:
    fn.setup()
    try:
        return list(fn.process(element))
    finally:
        fn.teardown()


INTERACTION = {
    "eventId": "e1",
    "eventTime": T0,
    "contactId": 7,
    "customerId": "cust-1",
    "mediaTypeId": 4,
    "eventType": "CONTACT_FAILED",
}
EXPECTED_INTERACTION = Interaction(
    event_id="e1",
    event_time_ms=T0,
    contact_id="7",
    master_contact_id="7",
    customer_id="cust-1",
    channel="voice",
    event_type="CONTACT_FAILED",
    outcome="FAILURE",
)


# ---------------------------------------------------------------------------------------------
# _ParseRecordFn
# ---------------------------------------------------------------------------------------------


def test_parse_fn_valid_interaction_is_stamped():
    # Main output: the record at its event time.
    (out,) = run(_ParseRecordFn(ParseSettings()), raw(INTERACTION))
    assert isinstance(out, TimestampedValue)
    assert out.value == EXPECTED_INTERACTION
    assert out.timestamp == Timestamp(micros=T0 * 1000)


def test_parse_fn_customer_update_goes_to_main_output():
    # Updates share the main output (SplitByKind splits them), stamped at their event time.
    update = {"recordType": "customer_update", "eventId": 9, "customerId": "cust-1",
              "updatedAt": "2026-11-28T10:00:01Z", "tier": "gold"}  # fmt: skip
    (out,) = run(_ParseRecordFn(ParseSettings()), raw(update))
    assert out.value == CustomerUpdate("9", T0 + 1_000, "cust-1", "gold", "UNKNOWN")
    assert out.timestamp == Timestamp(micros=(T0 + 1_000) * 1000)


@pytest.mark.parametrize(
    ("element", "stage", "reason"),
    [
        pytest.param(raw(b"{oops"), "parse", "invalid_json", id="invalid_json"),
        pytest.param(raw({**INTERACTION, "mediaTypeId": 2}), "validate", "unknown_channel",
                     id="unknown_channel"),
        pytest.param(raw(INTERACTION, late=True), "watermark", "late", id="late"),
    ],
)  # fmt: skip
def test_parse_fn_dead_letters_are_tagged(element, stage, reason):
    # Tag 'dead_letters': the DeadLetter itself, nothing on the main output.
    (out,) = run(_ParseRecordFn(ParseSettings()), element)
    assert isinstance(out, TaggedOutput)
    assert out.tag == "dead_letters"
    assert out.value == DeadLetter(
        stage=stage,
        reason=reason,
        payload=element.payload.decode(),
        source=SOURCE,
        recorded_at_ms=T0 + 5_000,
    )


def test_parse_fn_uses_its_settings():
    # The configured max_record_bytes applies inside the DoFn.
    (out,) = run(_ParseRecordFn(ParseSettings(max_record_bytes=16)), raw(INTERACTION))
    assert out.tag == "dead_letters" and out.value.reason == "too_large"


def test_event_time_stamp_is_exact_millisecond():
    # eventTime 1 001 ms must be stamped at exactly 1 001 000 micros.
    record = {**INTERACTION, "eventTime": 1_001}
    (out,) = run(_ParseRecordFn(ParseSettings()), raw(record))
    assert out.timestamp == Timestamp(micros=1_001_000)


def test_streaming_parse_outputs_the_record_and_drops_a_flagged_copy():
    fn = _ParseRecordFn(ParseSettings())
    (out,) = run(fn, raw(INTERACTION))
    assert out.value == EXPECTED_INTERACTION
    assert run(fn, dataclasses.replace(raw(INTERACTION), duplicate=True)) == []
    # a late copy is a dead letter, never silently dropped
    (late,) = run(fn, dataclasses.replace(raw(INTERACTION), duplicate=True, late=True))
    assert late.tag == "dead_letters" and late.value.reason == "late"


# ---------------------------------------------------------------------------------------------
# _SplitByKindFn
# ---------------------------------------------------------------------------------------------


def test_split_by_kind():
    # Interactions on the main output, updates tagged 'customer_updates'.
    update = CustomerUpdate("u", T0, "cust-1", "gold", "EU")
    assert run(_SplitByKindFn(), EXPECTED_INTERACTION) == [EXPECTED_INTERACTION]
    (tagged,) = run(_SplitByKindFn(), update)
    assert (tagged.tag, tagged.value) == ("customer_updates", update)


# ---------------------------------------------------------------------------------------------
# first_copies (the batch dedup rule)
# ---------------------------------------------------------------------------------------------


def _copy(source: str, line: int, tier: str) -> tuple[tuple[str, int], tuple]:
    return (source, line), ("e1", T0, "cust-1", tier, "EU")  # a compact customer update


@pytest.mark.parametrize(
    ("copies", "tier"),
    [
        # The smallest source order wins whatever the order the copies come in.
        pytest.param([_copy("b.jsonl", 1, "b1"), _copy("a.jsonl", 7, "a7"), _copy("a.jsonl", 2, "a2")],
                     "a2", id="file-then-line"),
        pytest.param([_copy("a.jsonl", 10, "a10"), _copy("a.jsonl", 9, "a9")], "a9",
                     id="line-numeric-not-text"),  # 9 < 10 as numbers
        pytest.param([_copy("t/0", 5, "only")], "only", id="single-copy"),
    ],
)  # fmt: skip
def test_batch_dedup_picks_smallest_source_order(copies, tier):
    first, seen = first_copies(iter(copies))  # copies may be any iterable
    assert list(first) == ["e1"] and seen == len(copies)
    assert first["e1"][1] == ("e1", T0, "cust-1", tier, "EU")


# ---------------------------------------------------------------------------------------------
# DistinctCountsFn and volume_row
# ---------------------------------------------------------------------------------------------


def test_distinct_counts_add_and_extract():
    fn = DistinctCountsFn()
    acc = fn.create_accumulator()
    assert fn.extract_output(acc) == (0, 0)  # empty window: no contacts, no events
    for pair in [("c1", "e1"), ("c1", "e2"), ("c2", "e3"), ("c1", "e1")]:
        acc = fn.add_input(acc, pair)
    # contacts {c1, c2} = 2; events {e1, e2, e3} = 3 (the repeated (c1, e1) counts once).
    assert fn.extract_output(acc) == (2, 3)


def test_distinct_counts_merge_is_exact():
    fn = DistinctCountsFn()
    a = fn.add_input(fn.add_input(fn.create_accumulator(), ("c1", "e1")), ("c2", "e2"))
    b = fn.add_input(fn.add_input(fn.create_accumulator(), ("c2", "e2")), ("c3", "e3"))
    empty = fn.create_accumulator()
    # {c1, c2} | {c2, c3} = 3 contacts; {e1, e2} | {e2, e3} = 3 events; empty changes nothing.
    assert fn.extract_output(fn.merge_accumulators([a, b, empty])) == (3, 3)
    assert fn.extract_output(fn.merge_accumulators([empty])) == (0, 0)


def test_distinct_counts_contact_with_many_events():
    # One contact's several events: 1 interaction, N events (docs/SEMANTICS.md, "Interaction volumes").
    fn = DistinctCountsFn()
    acc = fn.create_accumulator()
    for event in ("started", "changed", "ended"):
        acc = fn.add_input(acc, ("contact-1", event))
    assert fn.extract_output(acc) == (1, 3)


@pytest.mark.parametrize(
    ("start", "end", "day"),
    [
        pytest.param(T0, T0 + 10_000, "2026-11-28", id="midday"),
        # The day is the UTC date of the window start, even when the window ends the next day.
        pytest.param(MIDNIGHT - 10_000, MIDNIGHT, "2026-11-28", id="last-window-of-day"),
        pytest.param(MIDNIGHT, MIDNIGHT + 10_000, "2026-11-29", id="first-window-of-day"),
    ],
)
def test_volume_row(start, end, day):
    assert volume_row("chat", start, end, 2, 5, T0 + 99) == {
        "channel": "chat",
        "day": day,
        "window_start": start,
        "window_end": end,
        "interactions": 2,
        "events": 5,
        "updated_at": T0 + 99,
    }


def test_a_bundle_writes_only_the_latest_pane_of_each_window_whatever_their_order():
    fn = _ToVolumeRowFn()
    w1, w2 = IntervalWindow(0, 10), IntervalWindow(10, 20)
    on_time = PaneInfo(True, False, PaneInfoTiming.ON_TIME, 0, 0)
    closing = PaneInfo(False, True, PaneInfoTiming.LATE, 1, -1)
    ts = Timestamp(9.999)
    fn.start_bundle()
    fn.process(("voice", (3, 4)), win=w1, pane=closing, ts=ts)  # the closing pane first
    fn.process(("voice", (2, 2)), win=w1, pane=on_time, ts=ts)
    fn.process(("chat", (1, 1)), win=w1, pane=on_time, ts=ts)
    fn.process(("voice", (5, 5)), win=w2, pane=on_time, ts=Timestamp(19.999))
    out = sorted(((wv.value["channel"], wv.value["window_start"], wv.value["interactions"],
                   wv.value["events"]), wv.windows[0]) for wv in fn.finish_bundle())
    assert out == [(("chat", 0, 1, 1), w1), (("voice", 0, 3, 4), w1), (("voice", 10_000, 5, 5), w2)]
    fn.start_bundle()
    assert list(fn.finish_bundle()) == []  # nothing carried over to the next bundle
