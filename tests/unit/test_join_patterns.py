"""The temporal join (profile_at, prune_history, join_customer) and the REPEATED_FAILURE_CALLBACK
detector (detect, PatternSpec, alert_id) as pure functions (tier 1). docs/SEMANTICS.md, the profile join and the pattern.

Times are small epoch ms; F = FAILURE, S = SUCCESS, C = CALLBACK. Default spec: 3 failures, within 30 s.
"""

from __future__ import annotations

import hashlib

import pytest

from beam_cxone.records import CustomerUpdate
from beam_cxone.records import EnrichedInteraction
from beam_cxone.records import Interaction
from beam_cxone.transforms.customers import _is_pattern_input
from beam_cxone.transforms.join import PATTERN_OUTCOMES
from beam_cxone.transforms.join import join_customer
from beam_cxone.transforms.join import profile_at
from beam_cxone.transforms.join import prune_history
from beam_cxone.transforms.patterns import PatternSpec
from beam_cxone.transforms.patterns import Step
from beam_cxone.transforms.patterns import alert_id
from beam_cxone.transforms.patterns import detect

CUST = "cust-1"
SPEC = PatternSpec()
EVENT_TYPE = {
    "F": "CONTACT_FAILED",
    "S": "CONTACT_ENDED",
    "C": "CALLBACK_REQUESTED",
    "N": "CONTACT_STARTED",
}
OUTCOME = {"F": "FAILURE", "S": "SUCCESS", "C": "CALLBACK", "N": "NONE"}


def upd(event_id: str, t: int, tier: str, region: str = "EU") -> CustomerUpdate:
    return CustomerUpdate(
        event_id=event_id, event_time_ms=t, customer_id=CUST, tier=tier, region=region
    )


def ix(event_id: str, t: int, kind: str, channel: str = "voice", customer: str | None = CUST):
    return Interaction(
        event_id=event_id,
        event_time_ms=t,
        contact_id="k-" + event_id,
        master_contact_id="k-" + event_id,
        customer_id=customer,
        channel=channel,
        event_type=EVENT_TYPE[kind],
        outcome=OUTCOME[kind],
    )


def en(event_id: str, t: int, kind: str, channel: str = "voice", tier: str = "gold",
       region: str = "EU") -> EnrichedInteraction:  # fmt: skip
    return EnrichedInteraction(ix(event_id, t, kind, channel), tier, region)


def seq(*items: tuple[str, int, str]) -> list[EnrichedInteraction]:
    return [en(event_id, t, kind) for event_id, t, kind in items]


def hand_alert_id(callback: str, failures: list[str], customer: str = CUST,
                  alert_type: str = "REPEATED_FAILURE_CALLBACK") -> str:  # fmt: skip
    # alert_id: sha256 of the identifying parts joined by the unit separator, first 32 hex digits.
    text = "\x1f".join([customer, alert_type, callback, *failures])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# ---------------------------------------------------------------------------------------------
# profile_at
# ---------------------------------------------------------------------------------------------

HISTORY = [upd("u1", 1_000, "silver"), upd("u2", 1_000, "gold"), upd("u3", 5_000, "platinum", "US")]


@pytest.mark.parametrize(
    ("history", "at", "expected"),
    [
        pytest.param([], 1_000, ("UNKNOWN", "UNKNOWN"), id="no-update"),  # none: UNKNOWN
        pytest.param(HISTORY, 999, ("UNKNOWN", "UNKNOWN"), id="before-first"),  # none yet
        # An update at the same instant applies ("not after" the interaction).
        pytest.param(HISTORY[2:], 5_000, ("platinum", "US"), id="same-instant"),
        # Two updates at 1 000: the greatest eventId (u2 > u1) wins.
        pytest.param(HISTORY, 1_000, ("gold", "EU"), id="tie-by-event-id"),
        pytest.param(HISTORY, 4_999, ("gold", "EU"), id="between"),  # latest not after 4 999
        pytest.param(HISTORY, 5_000, ("platinum", "US"), id="at-second"),  # u3 applies at 5 000
        pytest.param(HISTORY, 99_000, ("platinum", "US"), id="after-all"),  # greatest overall
        # A later update never applies to an earlier interaction.
        pytest.param(HISTORY[:2], 1_000, ("gold", "EU"), id="later-ignored"),
    ],
)
def test_profile_at(history, at, expected):
    assert profile_at(history, at) == expected


# ---------------------------------------------------------------------------------------------
# prune_history
# ---------------------------------------------------------------------------------------------

P1, P2, P3 = upd("p1", 1_000, "a"), upd("p2", 2_000, "b"), upd("p3", 3_000, "c")
T1, T2 = upd("t1", 1_000, "x"), upd("t2", 1_000, "y")


@pytest.mark.parametrize(
    ("history", "horizon", "kept"),
    [
        pytest.param([], 5_000, [], id="empty"),
        pytest.param([P1, P2, P3], 500, [P1, P2, P3], id="horizon-before-all"),  # all after
        pytest.param([P1, P2, P3], 2_500, [P2, P3], id="middle"),  # latest before (P2) + after
        pytest.param([P1, P2, P3], 2_000, [P1, P2, P3], id="at-an-update"),  # P1 before, P2 at
        pytest.param([P1, P2, P3], 10_000, [P3], id="after-all"),  # only the latest before
        pytest.param([T1, T2, P3], 2_000, [T2, P3], id="tie-keeps-greatest"),  # T2 > T1
    ],
)
def test_prune_history(history, horizon, kept):
    assert prune_history(history, horizon) == kept


@pytest.mark.parametrize("at", [2_500, 2_999, 3_000, 9_999])
def test_pruned_history_answers_like_the_full_one_from_the_horizon(at):
    # For every evaluation at or after the horizon (2 500), the pruned history gives the same profile.
    pruned = prune_history([P1, P2, P3], 2_500)
    assert profile_at(pruned, at) == profile_at([P1, P2, P3], at)
    assert profile_at(pruned, at) == (("b", "EU") if at < 3_000 else ("c", "EU"))


# ---------------------------------------------------------------------------------------------
# join_customer
# ---------------------------------------------------------------------------------------------


def test_join_customer_sorts_joins_and_picks_greatest_update():
    # Arrival order: u-late (t=2 000, gold) before u-early (t=1 000, silver), interactions shuffled.
    records = [
        ix("i3", 3_000, "C"),
        upd("u-late", 2_000, "gold", "EU"),
        ix("i1", 500, "F"),
        upd("u-early", 1_000, "silver", "US"),
        ix("i2", 1_500, "F"),
        ix("i4", 2_000, "S"),
    ]
    enriched, row = join_customer(CUST, records)
    assert enriched == [
        EnrichedInteraction(ix("i1", 500, "F"), "UNKNOWN", "UNKNOWN"),  # before any update
        EnrichedInteraction(ix("i2", 1_500, "F"), "silver", "US"),  # u-early
        EnrichedInteraction(ix("i4", 2_000, "S"), "gold", "EU"),  # u-late at the same instant
        EnrichedInteraction(ix("i3", 3_000, "C"), "gold", "EU"),  # u-late
    ]
    # The profile row is the greatest (eventTime, eventId) update, not the last to arrive.
    assert row == {"customer_id": CUST, "tier": "gold", "region": "EU", "updated_at": 2_000}


def test_join_customer_tie_by_event_id_whatever_the_arrival():
    # Two updates at the same instant: the greater eventId ("b") wins in both arrival orders.
    a, b = upd("a", 1_000, "silver"), upd("b", 1_000, "gold")
    for records in ([a, b, ix("i", 1_000, "S")], [ix("i", 1_000, "S"), b, a]):
        enriched, row = join_customer(CUST, records)
        assert enriched[0].tier == "gold"
        assert row["tier"] == "gold"


def test_join_customer_without_updates():
    # No update: UNKNOWN/UNKNOWN and no profile row.
    enriched, row = join_customer(CUST, [ix("i", 1, "F")])
    assert enriched == [EnrichedInteraction(ix("i", 1, "F"), "UNKNOWN", "UNKNOWN")]
    assert row is None


def test_join_customer_updates_only():
    # Updates only: no interactions, the greatest update as the row.
    enriched, row = join_customer(CUST, [upd("u1", 7, "gold"), upd("u0", 7, "silver")])
    assert enriched == []
    assert row == {"customer_id": CUST, "tier": "gold", "region": "EU", "updated_at": 7}


# ---------------------------------------------------------------------------------------------
# Which interactions reach detect
# ---------------------------------------------------------------------------------------------


def test_pattern_outcomes():
    # detect sees FAILURE, SUCCESS and CALLBACK only.
    assert frozenset({"FAILURE", "SUCCESS", "CALLBACK"}) == PATTERN_OUTCOMES


@pytest.mark.parametrize(
    ("interaction", "selected"),
    [
        pytest.param(ix("a", 1, "F"), True, id="failure"),
        pytest.param(ix("a", 1, "S"), True, id="success"),
        pytest.param(ix("a", 1, "C"), True, id="callback"),
        pytest.param(ix("a", 1, "N"), False, id="started-NONE"),  # STARTED never reaches detect
        pytest.param(
            Interaction("a", 1, "k", "k", CUST, "voice", "CONTACT_STATE_CHANGED", "NONE"),
            False,
            id="state-changed-NONE",
        ),  # STATE_CHANGED never reaches detect
        pytest.param(ix("a", 1, "F", customer=None), False, id="no-customer"),  # no joins/patterns
    ],
)
def test_only_pattern_outcomes_of_known_customers_reach_detect(interaction, selected):
    # JoinProfilesAndDetectPatterns filters with _is_pattern_input before keying by customer.
    assert _is_pattern_input(interaction) is selected


def test_detect_counts_every_step_it_is_given():
    # Why STARTED/STATE_CHANGED must be filtered out upstream: detect itself trusts its input and
    # a NONE step between the failures would break the run (F F N F C: no match). With the filter,
    # the same timeline is F F F C: one match.
    with_none = seq(("f1", 1_000, "F"), ("f2", 2_000, "F"), ("n", 2_500, "N"), ("f3", 3_000, "F"),
                    ("c", 4_000, "C"))  # fmt: skip
    assert detect([], with_none, SPEC, CUST)[0] == []
    filtered = [e for e in with_none if _is_pattern_input(e.interaction)]
    assert [a["callback_event_id"] for a in detect([], filtered, SPEC, CUST)[0]] == ["c"]


# ---------------------------------------------------------------------------------------------
# detect: the pattern's boundaries
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "matches"),
    [
        # c - f1 = 29 999 ms < 30 000: a match.
        pytest.param(
            [("f1", 0, "F"), ("f2", 10_000, "F"), ("f3", 20_000, "F"), ("c", 29_999, "C")],
            [("c", ["f1", "f2", "f3"])],
            id="29.999s-matches",
        ),
        # c - f1 = 30 000 ms: not strictly less: no match.
        pytest.param(
            [("f1", 0, "F"), ("f2", 10_000, "F"), ("f3", 20_000, "F"), ("c", 30_000, "C")],
            [],
            id="exactly-30s-no-match",
        ),
        # A SUCCESS between breaks the run (consecutive).
        pytest.param(
            [("f1", 0, "F"), ("f2", 1_000, "F"), ("s", 2_000, "S"), ("f3", 3_000, "F"),
             ("c", 4_000, "C")],
            [],
            id="success-breaks-run",
        ),
        # Four failures then a callback: one match, with the last three (f2..f4).
        pytest.param(
            [("f1", 0, "F"), ("f2", 1_000, "F"), ("f3", 2_000, "F"), ("f4", 3_000, "F"),
             ("c", 4_000, "C")],
            [("c", ["f2", "f3", "f4"])],
            id="four-failures-f2-f4",
        ),
        # The window counts from f2 when there are four: f1 is too old, f2..f4 are not.
        pytest.param(
            [("f1", 0, "F"), ("f2", 20_000, "F"), ("f3", 25_000, "F"), ("f4", 28_000, "F"),
             ("c", 40_000, "C")],
            [("c", ["f2", "f3", "f4"])],
            id="four-failures-window-from-f2",
        ),
        # Three failures, but the first is 31 s before the callback: no match.
        pytest.param(
            [("f1", 0, "F"), ("f2", 20_000, "F"), ("f3", 25_000, "F"), ("c", 31_000, "C")],
            [],
            id="first-failure-too-old",
        ),
        # Only two failures: no match.
        pytest.param([("f1", 0, "F"), ("f2", 1_000, "F"), ("c", 2_000, "C")], [], id="two-only"),
        # A callback before the failures: no match (the callback must come after).
        pytest.param(
            [("c", 0, "C"), ("f1", 1_000, "F"), ("f2", 2_000, "F"), ("f3", 3_000, "F")],
            [],
            id="callback-before",
        ),
        # Two callbacks after three failures: one alert only (the second follows a callback).
        pytest.param(
            [("f1", 0, "F"), ("f2", 1_000, "F"), ("f3", 2_000, "F"), ("c1", 3_000, "C"),
             ("c2", 4_000, "C")],
            [("c1", ["f1", "f2", "f3"])],
            id="two-callbacks-one-alert",
        ),
        # A fresh run after the first match matches again.
        pytest.param(
            [("f1", 0, "F"), ("f2", 1_000, "F"), ("f3", 2_000, "F"), ("c1", 3_000, "C"),
             ("f4", 4_000, "F"), ("f5", 5_000, "F"), ("f6", 6_000, "F"), ("c2", 7_000, "C")],
            [("c1", ["f1", "f2", "f3"]), ("c2", ["f4", "f5", "f6"])],
            id="two-runs-two-alerts",
        ),
        # A failure after the callback does not reach back.
        pytest.param(
            [("f1", 0, "F"), ("f2", 1_000, "F"), ("c", 2_000, "C"), ("f3", 3_000, "F")],
            [],
            id="failure-after-callback",
        ),
        # A callback at the same time as the last failure but after it in eventId order: matches.
        pytest.param(
            [("f1", 0, "F"), ("f2", 1_000, "F"), ("f3", 2_000, "F"), ("f4", 2_000, "C")],
            [("f4", ["f1", "f2", "f3"])],
            id="same-time-ordered-input",
        ),
    ],
)  # fmt: skip
def test_detect_boundaries(events, matches):
    alerts, _ = detect([], seq(*events), SPEC, CUST)
    assert [(a["callback_event_id"], a["failure_event_ids"]) for a in alerts] == matches


@pytest.mark.parametrize(
    ("callback_id", "matches"),
    [
        # f3 and the callback share t = 3 000; (eventTime, eventId) order decides.
        pytest.param("e9", [("e9", ["e1", "e2", "e3"])], id="callback-id-after-f3"),  # e3 < e9
        pytest.param("e0", [], id="callback-id-before-f3"),  # e0 < e3: only 2 failures before it
    ],
)
def test_equal_timestamps_ordered_by_event_id(callback_id, matches):
    # Records in arrival order, callback first; join_customer sorts by (eventTime, eventId).
    records = [ix(callback_id, 3_000, "C"), ix("e3", 3_000, "F"), ix("e2", 2_000, "F"),
               ix("e1", 1_000, "F")]  # fmt: skip
    enriched, _ = join_customer(CUST, records)
    alerts, _ = detect([], enriched, SPEC, CUST)
    assert [(a["callback_event_id"], a["failure_event_ids"]) for a in alerts] == matches


@pytest.mark.parametrize("split", [0, 1, 2, 3, 4, 5, 6, 7])
def test_history_across_calls_equals_one_call(split):
    # Feeding the same final events in two calls (history carried) gives one call's result.
    events = seq(("f0", 0, "F"), ("s", 500, "S"), ("f1", 1_000, "F"), ("f2", 2_000, "F"),
                 ("f3", 3_000, "F"), ("c1", 4_000, "C"), ("c2", 5_000, "C"))  # fmt: skip
    first, history = detect([], events[:split], SPEC, CUST)
    second, final = detect(history, events[split:], SPEC, CUST)
    assert [a["callback_event_id"] for a in first + second] == ["c1"]
    # The history is the last failure_count steps: f3, c1, c2.
    assert final == [Step(3_000, "f3", "FAILURE"), Step(4_000, "c1", "CALLBACK"),
                     Step(5_000, "c2", "CALLBACK")]  # fmt: skip


def test_history_is_bounded_to_failure_count():
    # Only the last N steps are kept, all a later callback can look back at.
    _, history = detect(
        [], seq(("a", 1, "F"), ("b", 2, "S"), ("c", 3, "F"), ("d", 4, "F")), SPEC, CUST
    )
    assert history == [Step(2, "b", "SUCCESS"), Step(3, "c", "FAILURE"), Step(4, "d", "FAILURE")]


def test_history_from_previous_call_completes_a_match():
    # Three failures remembered from earlier calls, the callback arrives now.
    history = [Step(10_000, "f1", "FAILURE"), Step(11_000, "f2", "FAILURE"),
               Step(12_000, "f3", "FAILURE")]  # fmt: skip
    alerts, _ = detect(history, seq(("c", 39_999, "C")), SPEC, CUST)
    assert [a["failure_event_ids"] for a in alerts] == [["f1", "f2", "f3"]]  # 29 999 ms after f1
    alerts, _ = detect(history, seq(("c", 40_000, "C")), SPEC, CUST)
    assert alerts == []  # exactly 30 s after f1


@pytest.mark.parametrize(
    ("spec", "events", "matches"),
    [
        # failure_count = 2: two failures then a callback match.
        pytest.param(
            PatternSpec(failure_count=2),
            [("f1", 0, "F"), ("f2", 1_000, "F"), ("c", 2_000, "C")],
            [("c", ["f1", "f2"])],
            id="two-failures-match",
        ),
        # failure_count = 2 with three failures: the last two.
        pytest.param(
            PatternSpec(failure_count=2),
            [("f1", 0, "F"), ("f2", 1_000, "F"), ("f3", 2_000, "F"), ("c", 3_000, "C")],
            [("c", ["f2", "f3"])],
            id="two-of-three",
        ),
        # failure_count = 2: one failure is not enough.
        pytest.param(PatternSpec(failure_count=2), [("f1", 0, "F"), ("c", 1, "C")], [], id="one"),
        # within 10 s: 9 999 ms matches, 10 000 ms does not.
        pytest.param(
            PatternSpec(within_ms=10_000),
            [("f1", 0, "F"), ("f2", 5_000, "F"), ("f3", 9_000, "F"), ("c", 9_999, "C")],
            [("c", ["f1", "f2", "f3"])],
            id="within-10s-9.999",
        ),
        pytest.param(
            PatternSpec(within_ms=10_000),
            [("f1", 0, "F"), ("f2", 5_000, "F"), ("f3", 9_000, "F"), ("c", 10_000, "C")],
            [],
            id="within-10s-10.000",
        ),
        # failure_count = 1: a single failure then a callback.
        pytest.param(
            PatternSpec(failure_count=1), [("f", 0, "F"), ("c", 1, "C")], [("c", ["f"])], id="one-f"
        ),
    ],
)
def test_detect_spec_variants(spec, events, matches):
    alerts, _ = detect([], seq(*events), spec, CUST)
    assert [(a["callback_event_id"], a["failure_event_ids"]) for a in alerts] == matches
    assert all(a["failure_count"] == spec.failure_count for a in alerts)


def test_alert_row_exact_fields():
    # Failures on voice (gold/EU), callback on chat with the callback's joined profile.
    events = [
        en("f1", 1_795_860_000_000, "F", "voice", "gold", "EU"),
        en("f2", 1_795_860_005_000, "F", "voice", "gold", "EU"),
        en("f3", 1_795_860_010_000, "F", "email", "gold", "EU"),
        en("cb", 1_795_860_020_000, "C", "chat", "platinum", "US"),
    ]
    alerts, _ = detect([], events, SPEC, CUST)
    assert alerts == [
        {
            "customer_id": "cust-1",
            "alert_time": 1_795_860_020_000,  # the callback's eventTime
            "alert_type": "REPEATED_FAILURE_CALLBACK",
            "alert_id": hand_alert_id("cb", ["f1", "f2", "f3"]),
            "channel": "chat",  # the callback's channel
            "failure_count": 3,
            "first_failure_time": 1_795_860_000_000,  # f1
            "failure_event_ids": ["f1", "f2", "f3"],  # earliest first
            "callback_event_id": "cb",
            "tier": "platinum",  # the callback's tier/region, after the join
            "region": "US",
        }
    ]


def test_alert_id_deterministic_and_distinct():
    a = alert_id(CUST, "REPEATED_FAILURE_CALLBACK", "cb", ["f1", "f2", "f3"])
    # Deterministic: written by hand from the same parts, and equal on a second call.
    assert a == hand_alert_id("cb", ["f1", "f2", "f3"])
    assert a == alert_id(CUST, "REPEATED_FAILURE_CALLBACK", "cb", ["f1", "f2", "f3"])
    assert len(a) == 32
    # Another callback, other failures, another customer or type: another id.
    others = {
        alert_id(CUST, "REPEATED_FAILURE_CALLBACK", "cb2", ["f1", "f2", "f3"]),
        alert_id(CUST, "REPEATED_FAILURE_CALLBACK", "cb", ["f2", "f3", "f4"]),
        alert_id("cust-2", "REPEATED_FAILURE_CALLBACK", "cb", ["f1", "f2", "f3"]),
        alert_id(CUST, "OTHER", "cb", ["f1", "f2", "f3"]),
    }
    assert a not in others and len(others) == 4


def test_two_alerts_of_one_customer_have_different_ids():
    events = seq(("f1", 0, "F"), ("f2", 1, "F"), ("f3", 2, "F"), ("c1", 3, "C"), ("f4", 4, "F"),
                 ("f5", 5, "F"), ("f6", 6, "F"), ("c2", 7, "C"))  # fmt: skip
    alerts, _ = detect([], events, SPEC, CUST)
    assert [a["alert_id"] for a in alerts] == [
        hand_alert_id("c1", ["f1", "f2", "f3"]),
        hand_alert_id("c2", ["f4", "f5", "f6"]),
    ]
    assert alerts[0]["alert_id"] != alerts[1]["alert_id"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"failure_count": 0}, "failure_count must be >= 1, got 0", id="count-0"),
        pytest.param({"within_ms": 0}, "within_ms must be > 0, got 0", id="within-0"),
        pytest.param({"within_ms": -5}, "within_ms must be > 0, got -5", id="within-negative"),
    ],
)
def test_pattern_spec_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PatternSpec(**kwargs)


def test_pattern_spec_defaults():
    # docs/SEMANTICS.md defaults: 3 failures, within 30 s, REPEATED_FAILURE_CALLBACK.
    assert (SPEC.failure_count, SPEC.within_ms, SPEC.alert_type) == (
        3,
        30_000,
        "REPEATED_FAILURE_CALLBACK",
    )
