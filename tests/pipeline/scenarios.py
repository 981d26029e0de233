"""Small hand-made traces, one per rule of docs/SEMANTICS.md, with hand-computed expected rows.

Each scenario is a script (records and watermark steps in arrival order, see harness.py) and the rows
the rule requires, written by hand with the reasoning in a comment. Times are seconds after T0
(a window boundary); windows are [start, start + 10 s). Pattern records are FAILURE (`failure`,
CONTACT_FAILED), SUCCESS (`success`, CONTACT_ENDED "Resolved") and CALLBACK (`callback`,
CALLBACK_REQUESTED); each has its own contact `ct-<eventId>`, so it also counts in the volumes.

`expected` holds only the tables a scenario is about (by hand); the tests also compare every table
with tests/reference.py. The streaming rules test runs the scripts on a TestStream, the batch test
runs their records (watermarks ignored) through the batch path.
"""

from __future__ import annotations

import dataclasses

from beam_cxone.config import AnalyticsConfig
from tests.pipeline.harness import T0
from tests.pipeline.harness import Late
from tests.pipeline.harness import Step
from tests.pipeline.harness import Watermark
from tests.pipeline.harness import alert
from tests.pipeline.harness import at
from tests.pipeline.harness import callback
from tests.pipeline.harness import failure
from tests.pipeline.harness import interaction
from tests.pipeline.harness import profile
from tests.pipeline.harness import raw_records
from tests.pipeline.harness import reference_rows
from tests.pipeline.harness import sorted_rows
from tests.pipeline.harness import success
from tests.pipeline.harness import update
from tests.pipeline.harness import volume


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    script: list[Step]
    expected: dict[str, list[dict]]  # table -> rows (only the tables the rule is about)
    # (source number, stage, reason) of every dead letter, by hand
    dead: tuple[tuple[int, str, str], ...] = ()
    cfg: AnalyticsConfig = AnalyticsConfig()

    def reference(self) -> dict[str, list[dict]]:
        """tests/reference.py's rows for the script's records under the scenario's settings."""
        return reference_rows(
            raw_records(self.script),
            window_ms=self.cfg.window_size_s * 1000,
            failure_count=self.cfg.failure_count,
            within_ms=round(self.cfg.pattern_within_s * 1000),
        )


def rows(**tables: list[dict]) -> dict[str, list[dict]]:
    return {table: sorted_rows(found) for table, found in tables.items()}


VOLUMES = Scenario(
    "volumes_distinct_contacts_and_events",
    [
        # T0 - 3205 s is 2026-11-29T23:59:55Z: window [23:59:50, 00:00:00) is on the 29th
        interaction("v13", -3205, "c8", channel="chat"),
        interaction("v1", 1, "c1"),
        interaction("v2", 3, "c1", event_type="CONTACT_STATE_CHANGED"),
        interaction("v3", 5, "c2", event_type="CONTACT_ENDED"),
        interaction("v4", 6, "c4", masterContactId="c1"),
        Watermark(4),
        interaction("v5", 9.999, "c3", channel="chat"),
        interaction("v6", 10, "c1"),
        interaction("v7", 12, "c1", channel="chat"),
        Watermark(11),
        interaction("v9", 15, 42, channel="sms"),
        interaction("v10", 16, "42", channel="sms"),
        interaction("v11", 17, "c6", channel="email", mediaTypeId=4),
        interaction("v12", 18, "c7", channel=None, mediaTypeId=9, mediaSubTypeName="SMS"),
    ],
    rows(
        interaction_volumes=[
            # [0,10) voice: contacts c1,c2,c4 (v4's master c1 is not its contact); events v1..v4
            volume("voice", 0, 3, 4),
            # [0,10) chat: 9.999 s is still in [0,10): contact c3; event v5
            volume("chat", 0, 1, 1),
            # [10,20) voice: 10 s opens the next window: contact c1; event v6
            volume("voice", 10, 1, 1),
            # [10,20) chat: the same contact c1 counts again on another channel; event v7
            volume("chat", 10, 1, 1),
            # [10,20) sms: contact 42 (integer) is contact "42"; events v9,v10; plus the derived
            # digital + SMS of v12 (contact c7): contacts 42,c7; events v9,v10,v12
            volume("sms", 10, 2, 3),
            # [10,20) email: explicit `channel` wins over mediaTypeId 4: contact c6; event v11
            volume("email", 10, 1, 1),
            # [-3210,-3200) chat, day 2026-11-29 (the UTC date of the window start): c8; v13
            {**volume("chat", -3210, 1, 1), "day": "2026-11-29"},
        ]
    ),
)

UPDATE_IN_PLACE = Scenario(
    "window_updated_in_place_within_lateness",
    [
        interaction("w1", 1, "c1"),
        interaction("w2", 2, "c2"),
        Watermark(15),  # [0,10) is complete: its on-time pane says 2 contacts, 2 events
        interaction("w3", 8, "c3"),  # 7 s behind the watermark: within the 30 s lateness
        Watermark(38),
        interaction("w4", 9.5, "c1"),  # 28.5 s behind: still within the lateness
        Watermark(45),
    ],
    rows(
        interaction_volumes=[
            # [0,10) voice: contacts c1,c2,c3 (w4 is c1 again); events w1..w4
            volume("voice", 0, 3, 4),
        ]
    ),
)

LATE_DATA = Scenario(
    "late_records_are_dead_letters_and_change_nothing",
    [
        interaction("l1", 1, "c1"),
        update("lu1", 2, "k2", "silver", "emea"),
        failure("lf1", 3, "k1", channel="email"),
        failure("lf2", 4, "k1", channel="email"),
        failure("lf3", 5, "k1", channel="email"),
        Watermark(60),  # everything before 30 s is now more than the lateness behind
        Late(interaction("l2", 5, "c2")),  # would be a second voice contact in [0,10)
        Late(callback("lc1", 6, "k1", channel="email")),  # would complete lf1..lf3
        Late(update("lu2", 20, "k2", "gold", "amer")),  # greater than lu1, but late
        interaction("l3", 31, "c3"),  # on time: 29 s behind the watermark
    ],
    rows(
        interaction_volumes=[
            volume("voice", 0, 1, 1),  # [0,10) voice: contact c1; event l1 (l2 is late)
            volume("email", 0, 3, 3),  # [0,10) email: lf1..lf3 (lc1 is late)
            volume("voice", 30, 1, 1),  # [30,40) voice: contact c3; event l3
        ],
        pattern_alerts=[],  # the callback that would match is late
        customer_profiles=[profile("k2", "silver", "emea", 2)],  # lu2 is late
    ),
    dead=((6, "watermark", "late"), (7, "watermark", "late"), (8, "watermark", "late")),
)

DUPLICATES = Scenario(
    "duplicates_change_nothing",
    [
        interaction("e1", 1, "c1"),
        interaction("e2", 2, "c2"),
        interaction("e1", 1, "c1"),  # a producer retry: the same bytes
        failure("d1", 1, "k1", channel="email"),
        failure("d2", 2, "k1", channel="email"),
        failure("d2", 2, "k1", channel="email"),  # a retried failure is not a third failure
        callback("d3", 3, "k1", channel="email"),
        update("du1", 5, "k2", "gold", "emea"),
        Watermark(15),  # [0,10) has fired
        interaction("e2", 2, "c9"),  # same eventId, other contact: the first copy counts
        interaction("e1", 12, "c1"),  # same eventId, another window: still a duplicate
        update("du1", 8, "k2", "platinum", "amer"),  # same eventId: the first copy counts
        interaction("e2", 2, "c2"),  # after the window fired, within the lateness
        update("e1", 3, "k9", "gold", "emea"),  # an update reusing e1's id: a duplicate too
        interaction(7, 4, "c7"),  # a numeric eventId is its decimal string ...
        interaction("7", 4, "c8"),  # ... so "7" is a copy of it
        # no eventId: the id is the hash of the canonical JSON, whatever the key order and spaces
        f'{{"eventTime": {at(5)}, "contactId": "c5", "channel": "voice", '
        f'"eventType": "CONTACT_STARTED"}}'.encode(),
        f'{{"channel":"voice","contactId":"c5","eventType":"CONTACT_STARTED","eventTime":{at(5)}}}'.encode(),
        Watermark(25),
    ],
    rows(
        interaction_volumes=[
            # [0,10) voice: contacts c1,c2,c7,c5; events e1,e2,7,sha256(c5) (c9 and c8 never)
            volume("voice", 0, 4, 4),
            volume("email", 0, 3, 3),  # [0,10) email: d1,d2,d3; no [10,20) row from e1@12
        ],
        pattern_alerts=[],  # k1: F d1, F d2, C d3: two distinct failures only
        customer_profiles=[profile("k2", "gold", "emea", 5)],  # none for k9
    ),
)

WITHIN_BOUNDARY = Scenario(
    "pattern_within_is_exclusive",
    [
        failure("a1", 0, "k-in"),
        failure("a2", 10, "k-in"),
        failure("b1", 0, "k-out"),
        failure("b2", 10, "k-out"),
        Watermark(9),
        failure("a3", 20, "k-in"),
        failure("b3", 20, "k-out"),
        callback("a4", 29.999, "k-in"),  # 29.999 s after a1: matches
        callback("b4", 30, "k-out"),  # exactly 30 s after b1: no match (strictly less)
        Watermark(28),
    ],
    rows(pattern_alerts=[alert("k-in", "a4", 29.999, [("a1", 0), ("a2", 10), ("a3", 20)])]),
)

SUCCESS_BREAKS = Scenario(
    "pattern_success_breaks_a_run",
    [
        failure("s1", 0, "k1"),
        failure("s2", 1, "k1"),
        success("s3", 2, "k1"),
        failure("s4", 3, "k1"),
        callback("s5", 4, "k1"),  # before it: s2 F, s3 S, s4 F: no match
        failure("t1", 0, "k2"),
        failure("t2", 1, "k2"),
        success("t3", 2, "k2"),
        Watermark(3),
        failure("t4", 3, "k2"),
        failure("t5", 4, "k2"),
        failure("t6", 5, "k2"),
        callback("t7", 6, "k2"),  # before it: t4,t5,t6 all F, 6 - 3 < 30: match
    ],
    rows(pattern_alerts=[alert("k2", "t7", 6, [("t4", 3), ("t5", 4), ("t6", 5)])]),
)

FOUR_FAILURES = Scenario(
    "pattern_four_failures_give_one_match",
    [
        failure("f1", 0, "k1"),
        failure("f2", 1, "k1"),
        failure("f3", 2, "k1"),
        failure("f4", 3, "k1"),
        callback("f5", 4, "k1"),  # the 3 right before it: f2,f3,f4
        callback("f6", 5, "k1"),  # before it: f3, f4, f5 (a callback): no second match
    ],
    rows(pattern_alerts=[alert("k1", "f5", 4, [("f2", 1), ("f3", 2), ("f4", 3)])]),
)

NONE_OUTCOMES_IGNORED = Scenario(
    "pattern_started_and_state_changed_are_ignored",
    [
        failure("g1", 0, "k1"),
        interaction("g2", 0.5, "ct-g2", customer="k1"),  # CONTACT_STARTED: outcome NONE
        failure("g3", 1, "k1"),
        interaction("g4", 1.5, "ct-g4", customer="k1", event_type="CONTACT_STATE_CHANGED"),
        failure("g5", 2, "k1"),
        interaction("g6", 2.5, "ct-g6", customer="k1"),
        callback("g7", 3, "k1"),
    ],
    rows(pattern_alerts=[alert("k1", "g7", 3, [("g1", 0), ("g3", 1), ("g5", 2)])]),
)

EQUAL_TIMES = Scenario(
    "pattern_equal_times_ordered_by_event_id",
    [
        # k1: n3 (F) and n4 (C) at 3 s: n3 < n4, so the order is n1 n2 n3 n4: match.
        failure("n1", 1, "k1"),
        failure("n2", 2, "k1"),
        callback("n4", 3, "k1"),  # arrives before n3
        failure("n3", 3, "k1"),
        # k2: m3 (C) and m4 (F) at 3 s: m3 < m4, so the callback comes after m1 m2 only.
        failure("m1", 1, "k2"),
        failure("m2", 2, "k2"),
        failure("m4", 3, "k2"),  # arrives before m3
        callback("m3", 3, "k2"),
        # k3: numeric ids are decimal strings: "10" < "9", so the callback comes before the 3rd F.
        failure(100, 1, "k3"),
        failure(101, 2, "k3"),
        failure(9, 3, "k3"),
        callback(10, 3, "k3"),
    ],
    rows(pattern_alerts=[alert("k1", "n4", 3, [("n1", 1), ("n2", 2), ("n3", 3)])]),
)

CALLBACK_FIRST = Scenario(
    "pattern_callback_before_failures_gives_nothing",
    [
        callback("h1", 0, "k1"),
        failure("h2", 1, "k1"),
        failure("h3", 2, "k1"),
        failure("h4", 3, "k1"),
    ],
    rows(pattern_alerts=[]),
)

FAILURES_ARRIVE_AFTER_CALLBACK = Scenario(
    "pattern_failures_arriving_after_the_callback_still_match",
    [
        update("ju1", 0, "k1", "gold", "emea"),
        callback("j4", 4, "k1", channel="chat"),
        Watermark(5),  # the callback's time has passed; the failures arrive behind the watermark
        failure("j2", 2, "k1"),
        failure("j1", 1, "k1"),
        Watermark(20),
        failure("j3", 3, "k1"),  # 17 s behind the watermark, within the lateness
    ],
    # The callback's channel (chat) and profile (ju1) make the alert.
    rows(
        pattern_alerts=[
            alert(
                "k1",
                "j4",
                4,
                [("j1", 1), ("j2", 2), ("j3", 3)],
                channel="chat",
                tier="gold",
                region="emea",
            )
        ]
    ),
)

JOIN_SAME_INSTANT = Scenario(
    "join_update_at_the_same_instant_applies",
    [
        failure("p1", 1, "k1"),
        failure("p2", 2, "k1"),
        failure("p3", 3, "k1"),
        update("pu1", 10, "k1", "gold", "emea"),  # at the callback's instant: applies
        callback("p4", 10, "k1"),
        failure("q1", 1, "k2"),
        failure("q2", 2, "k2"),
        failure("q3", 3, "k2"),
        update("qu1", 10.001, "k2", "gold", "emea"),  # 1 ms after the callback: does not apply
        callback("q4", 10, "k2"),
    ],
    rows(
        pattern_alerts=[
            alert("k1", "p4", 10, [("p1", 1), ("p2", 2), ("p3", 3)], tier="gold", region="emea"),
            alert("k2", "q4", 10, [("q1", 1), ("q2", 2), ("q3", 3)]),  # UNKNOWN, UNKNOWN
        ],
        customer_profiles=[
            profile("k1", "gold", "emea", 10),
            profile("k2", "gold", "emea", 10.001),
        ],
    ),
)

JOIN_LATE_UPDATE = Scenario(
    "join_update_arriving_after_the_interaction_applies",
    [
        update("ua", 5, "k1", "bronze", "apac"),
        failure("r1", 1, "k1"),
        failure("r2", 2, "k1"),
        failure("r3", 3, "k1"),
        callback("r4", 20, "k1", channel="chat"),
        Watermark(40),  # 20 s past the callback, 10 s before it is final (20 + 30)
        update("ub", 15, "k1", "platinum", "latam"),  # earlier than r4, arrives after it: applies
        update("uc", 25, "k1", "gold", "amer"),  # later than r4: the profile row, not the alert
        Watermark(48),
    ],
    rows(
        # r4 - r1 = 19 s < 30; greatest update not after 20 s: ub (15 s)
        pattern_alerts=[
            alert(
                "k1",
                "r4",
                20,
                [("r1", 1), ("r2", 2), ("r3", 3)],
                channel="chat",
                tier="platinum",
                region="latam",
            )
        ],
        customer_profiles=[profile("k1", "gold", "amer", 25)],
    ),
)

PROFILE_GREATEST = Scenario(
    "profiles_take_the_greatest_update_not_the_last_to_arrive",
    [
        update("p2", 30, "k1", "gold", "emea"),
        Watermark(33),  # the records below are at most 30 s behind: within the lateness
        update("p1", 20, "k1", "silver", "amer"),  # earlier event time, arrives last
        update("q2", 10, "k2", "silver", "emea"),
        update("q1", 10, "k2", "gold", "apac"),  # same time, smaller id, arrives last
        update("r1", 5, "k3", "gold", None),  # no region: UNKNOWN
        update("r2", 4, "k4", None, None),  # neither: UNKNOWN, UNKNOWN
        failure("qf1", 7, "k2"),
        failure("qf2", 8, "k2"),
        failure("qf3", 9, "k2"),
        callback("qc", 10, "k2"),  # joins (10, q2): silver, emea
    ],
    rows(
        customer_profiles=[
            profile("k1", "gold", "emea", 30),  # (30, p2) > (20, p1)
            profile("k2", "silver", "emea", 10),  # (10, q2) > (10, q1)
            profile("k3", "gold", "UNKNOWN", 5),
            profile("k4", "UNKNOWN", "UNKNOWN", 4),
        ],
        pattern_alerts=[
            alert(
                "k2", "qc", 10, [("qf1", 7), ("qf2", 8), ("qf3", 9)], tier="silver", region="emea"
            )
        ],
    ),
)

NO_CUSTOMER = Scenario(
    "interactions_without_customer_count_in_volumes_only",
    [
        failure("x1", 1, None),
        interaction("x2", 2, "ct-x2", event_type="CONTACT_FAILED", customerId=""),  # "" is absent
        failure("x3", 3, None),
        interaction("x4", 4, "ct-x4", event_type="CALLBACK_REQUESTED", customerId=""),
        update("xu", 0, "k1", "gold", "emea"),
    ],
    rows(
        interaction_volumes=[volume("voice", 0, 4, 4)],  # [0,10) voice: ct-x1..ct-x4; x1..x4
        pattern_alerts=[],  # no customer: no pattern, even though F F F C
        customer_profiles=[profile("k1", "gold", "emea", 0)],
    ),
)


PATTERN_SETTINGS = Scenario(
    "pattern_failure_count_and_within_from_the_config",
    [
        failure("cf1", 0, "k1"),
        failure("cf2", 5, "k1"),
        callback("cf3", 9.999, "k1"),  # 2 failures, 9.999 s < 10 s: match
        failure("cg1", 0, "k2"),
        failure("cg2", 5, "k2"),
        callback("cg3", 10, "k2"),  # 10 s is not < 10 s
    ],
    rows(pattern_alerts=[alert("k1", "cf3", 9.999, [("cf1", 0), ("cf2", 5)])]),  # failure_count 2
    cfg=AnalyticsConfig(failure_count=2, pattern_within_s=10),
)

OUTCOME_ENCODINGS = Scenario(
    "pattern_outcomes_from_every_encoding",
    [
        interaction("o1", 1, "ct-o1", customer="k1", event_type="CONTACT_ENDED", abandoned=True),
        interaction("o2", 2, "ct-o2", customer="k1", event_type="CONTACT_ENDED", isRefused=True),
        interaction(
            "o3", 3, "ct-o3", customer="k1", event_type="CONTACT_ENDED", endReason="No Answer"
        ),
        # the original tutorial's record: interactionId, timestamp, status
        {
            "eventId": "o4",
            "interactionId": "ct-o4",
            "customerId": "k1",
            "timestamp": at(4),
            "channel": "chat",
            "status": "CALLBACK_REQUEST",
        },
        # k2: eventType decides over status; an endReason outside the failure reasons is SUCCESS
        failure("p1", 1, "k2"),
        failure("p2", 2, "k2"),
        interaction(
            "p3",
            3,
            "ct-p3",
            customer="k2",
            event_type="CONTACT_ENDED",
            endReason="Transferred",
            status="FAILURE",
        ),
        {
            "eventId": "p4",
            "interactionId": "ct-p4",
            "customerId": "k2",
            "timestamp": at(4),
            "channel": "chat",
            "status": "CALLBACK_REQUEST",
        },
    ],
    rows(pattern_alerts=[alert("k1", "o4", 4, [("o1", 1), ("o2", 2), ("o3", 3)], channel="chat")]),
)


def _valid(eid: str, t: float, **extra) -> dict:
    return interaction(eid, t, f"ct-{eid}", **extra)


DEAD_LETTERS = Scenario(
    "malformed_records_are_dead_letters",
    [
        interaction("ok1", 1, "c1"),  # source 1
        b"\xff\xfe{}",  # 2: not UTF-8
        b"{not json",  # 3
        b"[1, 2]",  # 4: JSON, not an object
        {**_valid("dl5", 2), "schemaVersion": 2},  # 5
        {**_valid("dl6", 2), "recordType": "order"},  # 6
        {**_valid("dl7", 2), "eventTime": "2026-11-30T00:53:22"},  # 7: no offset
        {k: v for k, v in _valid("dl8", 2).items() if k != "contactId"},  # 8
        _valid("dl9", 2, channel="fax"),  # 9
        _valid("dl10", 2, event_type="CONTACT_PAUSED"),  # 10
        update("dl11", 2, "", "gold", "emea"),  # 11: a customer update needs a customerId
        _valid("dl12", 2, abandoned="yes"),  # 12: a boolean field with a string
        Watermark(5),
        b"",  # blank lines never reach the pipeline; an empty Kafka value does: 13
        _valid("dl14", 2, channel=None),  # 14: no channel and no media fields
        {**_valid("dl15", 2), "eventTime": True},  # 15: a boolean is not a time
        Watermark(40),
        Late(b"{not json either"),  # 16: malformed first: the parse reason wins over `late`
    ],
    rows(interaction_volumes=[volume("voice", 0, 1, 1)]),  # only ok1 counts
    dead=(
        (2, "parse", "invalid_utf8"),
        (3, "parse", "invalid_json"),
        (4, "parse", "not_an_object"),
        (5, "validate", "unsupported_schema"),
        (6, "validate", "unknown_record_type"),
        (7, "validate", "bad_time"),
        (8, "validate", "missing_field"),
        (9, "validate", "unknown_channel"),
        (10, "validate", "unknown_event_type"),
        (11, "validate", "missing_field"),
        (12, "validate", "wrong_type"),
        (13, "parse", "invalid_json"),
        (14, "validate", "unknown_channel"),
        (15, "validate", "bad_time"),
        (16, "parse", "invalid_json"),
    ),
)

STATE_EXPIRY = Scenario(
    "dedup_state_expiry_with_a_small_ttl",
    [
        interaction("x1", 0, "c1"),
        Watermark(5),
        interaction("x2", 150, "c2"),
        Watermark(175),  # x1's dedup flag (0 + 60 s) has expired; x2's (150 + 60 s) holds
        interaction("x2", 150, "c2"),  # 25 s behind: within the lateness, the flag drops it
        Watermark(260),  # x2's flag has expired too
        Late(interaction("x1", 0, "c1")),  # the read marks such old copies late
        Late(interaction("x2", 150, "c2")),
    ],
    rows(interaction_volumes=[volume("voice", 0, 1, 1), volume("voice", 150, 1, 1)]),
    dead=((4, "watermark", "late"), (5, "watermark", "late")),
    cfg=AnalyticsConfig(dedup_ttl_s=60, allowed_lateness_s=30),
)

# A bit of everything, for the arrival-order test: two arrival orders of the same records.
MIXED_RECORDS = [
    update("m-u1", 0.5, "k1", "gold", "emea"),
    interaction("m-i1", 1, "c1"),
    failure("m-f1", 2, "k1"),
    interaction("m-i2", 4, "c2", channel="chat"),
    failure("m-f2", 6, "k1"),
    interaction("m-i3", 7, "c1", event_type="CONTACT_ENDED"),
    failure("m-f3", 9, "k1", channel="chat"),
    update("m-u2", 11, "k1", "platinum", "emea"),
    callback("m-c1", 12, "k1", channel="sms"),
    interaction("m-i4", 13, "c3"),
    success("m-s1", 15, "k2"),
    failure("m-f4", 16, "k2"),
    failure("m-f5", 17, "k2"),
    failure("m-f6", 18, "k2"),
    update("m-u3", 19, "k2", "bronze", None),
    callback("m-c2", 21, "k2"),
    interaction("m-i5", 25, "c4", channel="chat"),
    update("m-u4", 26, "k1", "silver", "apac"),
    callback("m-c3", 28, "k1"),  # before it: m-f2, m-f3, m-c1: no match
]
MIXED_EXPECTED = rows(
    interaction_volumes=[
        volume("voice", 0, 3, 4),  # [0,10) voice: contacts c1,ct-m-f1,ct-m-f2; m-i1,m-f1,m-f2,m-i3
        volume("chat", 0, 2, 2),  # [0,10) chat: c2, ct-m-f3
        volume("sms", 10, 1, 1),  # [10,20) sms: m-c1
        volume("voice", 10, 5, 5),  # [10,20) voice: c3, m-s1, m-f4..m-f6
        volume("voice", 20, 2, 2),  # [20,30) voice: m-c2, m-c3
        volume("chat", 20, 1, 1),  # [20,30) chat: c4
    ],
    pattern_alerts=[
        # k1: F 2, F 6, F 9, C 12 (12 - 2 < 30); profile at 12: m-u2 (11)
        alert(
            "k1",
            "m-c1",
            12,
            [("m-f1", 2), ("m-f2", 6), ("m-f3", 9)],
            channel="sms",
            tier="platinum",
            region="emea",
        ),
        # k2: S 15, F 16, F 17, F 18, C 21; profile at 21: m-u3 (19), no region
        alert("k2", "m-c2", 21, [("m-f4", 16), ("m-f5", 17), ("m-f6", 18)], tier="bronze"),
    ],
    customer_profiles=[profile("k1", "silver", "apac", 26), profile("k2", "bronze", "UNKNOWN", 19)],
)


def _seconds(record: dict) -> float:
    return (record["eventTime"] - T0) / 1000


def mixed_in_order() -> list[Step]:
    """In event-time order, the watermark 1 s behind the newest record every 5 records."""
    script: list[Step] = []
    for n, record in enumerate(MIXED_RECORDS, start=1):
        script.append(record)
        if n % 5 == 0:
            script.append(Watermark(_seconds(record) - 1))
    return script


def mixed_out_of_order() -> list[Step]:
    """Blocks of 6 records, newest first: the watermark moves to the newest record's time, then the
    rest of the block arrives behind it (up to ~8 s, within the lateness), newest to oldest."""
    script: list[Step] = []
    for i in range(0, len(MIXED_RECORDS), 6):
        newest, *rest = reversed(MIXED_RECORDS[i : i + 6])
        script += [newest, Watermark(_seconds(newest)), *rest]
    return script


SCENARIOS = [
    VOLUMES,
    UPDATE_IN_PLACE,
    LATE_DATA,
    DUPLICATES,
    WITHIN_BOUNDARY,
    SUCCESS_BREAKS,
    FOUR_FAILURES,
    NONE_OUTCOMES_IGNORED,
    EQUAL_TIMES,
    CALLBACK_FIRST,
    PATTERN_SETTINGS,
    OUTCOME_ENCODINGS,
    FAILURES_ARRIVE_AFTER_CALLBACK,
    JOIN_SAME_INSTANT,
    JOIN_LATE_UPDATE,
    PROFILE_GREATEST,
    NO_CUSTOMER,
    DEAD_LETTERS,
    STATE_EXPIRY,
]
