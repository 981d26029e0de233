"""The pure parts of the Kafka read and the dead-letter topic, and direct calls of their DoFns with
stand-in clients (no broker): replay-offset arithmetic, the commit floor of a committed resume,
retriable broker errors inside `process`, the throttled poll size, the dead-letter message format."""

from __future__ import annotations

import json
import os

import pytest
from apache_beam.io.restriction_trackers import OffsetRange
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.timestamp import Duration
from kafka import TopicPartition
from kafka.errors import KafkaConnectionError
from kafka.errors import KafkaTimeoutError
from kafka.errors import NodeNotReadyError
from kafka.errors import TopicAuthorizationFailedError

from beam_cxone.io.kafka import DeadLetterTopicConfig
from beam_cxone.io.kafka import KafkaPartition
from beam_cxone.io.kafka import KafkaReadConfig
from beam_cxone.io.kafka import dead_letter_message
from beam_cxone.io.kafka import dead_letter_topic
from beam_cxone.io.kafka import is_transient
from beam_cxone.io.kafka import read
from beam_cxone.io.kafka import resume_offset
from beam_cxone.io.kafka.throttle import SharedThrottle
from beam_cxone.io.kafka.throttle import shared_throttle
from beam_cxone.options import dead_letter_topic_config
from beam_cxone.options import kafka_config
from beam_cxone.watermarks import PartitionClock

# ----- resume_offset ----------------------------------------------------------------------------

# A partition of offsets 0..99 written one per second: the record at offset i has timestamp
# 1_000_000 + i * 1000 ms. offsets_for_times: the first offset with timestamp >= ts.
T0 = 1_000_000


def _time_of(offset: int) -> int | None:
    return T0 + offset * 1000 if 0 <= offset < 100 else None


def _offset_at(ts: int) -> int | None:
    for offset in range(100):
        if T0 + offset * 1000 >= ts:
            return offset
    return None


@pytest.mark.parametrize(
    ("begin", "committed", "replay_ms", "expected"),
    [
        pytest.param(0, None, 120_000, 0, id="no-commit-yet-reads-from-begin"),
        pytest.param(0, 80, 0, 80, id="no-margin-resumes-at-committed"),
        pytest.param(0, 80, 10_000, 69, id="10s-margin"),  # anchor 79 at T0+79 s; >= T0+69 s
        pytest.param(0, 80, 1, 79, id="1ms-margin-rereads-the-anchor"),
        pytest.param(0, 80, 120_000, 0, id="margin-past-the-beginning"),
        pytest.param(50, 80, 120_000, 50, id="clamped-to-retained-begin"),
        pytest.param(50, 30, 120_000, 50, id="committed-deleted-by-retention"),
        pytest.param(0, 0, 120_000, 0, id="committed-at-begin"),
        pytest.param(0, 100, 5_000, 94, id="caught-up-anchor-is-last-record"),
    ],
)
def test_resume_offset(begin, committed, replay_ms, expected):
    assert resume_offset(begin, committed, replay_ms, _time_of, _offset_at) == expected


def test_resume_offset_unknown_anchor_time_replays_everything_retained():
    assert resume_offset(10, 80, 60_000, lambda offset: None, _offset_at) == 10


def test_resume_offset_no_offset_for_the_time_replays_everything_retained():
    assert resume_offset(10, 80, 60_000, _time_of, lambda ts: None) == 10


def test_resume_offset_never_after_the_committed_offset():
    # Kafka timestamps are the producer's (CreateTime) and need not grow with offsets.
    assert resume_offset(0, 80, 60_000, _time_of, lambda ts: 95) == 80


def test_resume_offset_asks_for_the_anchor_record_and_the_rewound_time():
    asked = []

    def time_of(offset):
        asked.append(("time", offset))
        return 5_000_000

    def offset_at(ts):
        asked.append(("offset", ts))
        return 40

    assert resume_offset(0, 80, 120_000, time_of, offset_at) == 40
    assert asked == [("time", 79), ("offset", 5_000_000 - 120_000)]


# ----- errors, config, options ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("err", "transient"),
    [
        (KafkaConnectionError("down"), True),
        (KafkaTimeoutError("slow"), True),
        (NodeNotReadyError("starting"), True),
        (TopicAuthorizationFailedError(), False),
        (ValueError("not kafka"), False),
    ],
)
def test_is_transient(err, transient):
    assert is_transient(err) is transient


def test_resume_replay_is_everything_or_a_margin():
    with pytest.raises(ValueError, match="resume_replay_ms"):
        KafkaReadConfig(bootstrap_servers="b:9092", topic="t", resume_replay_ms=-2)
    assert KafkaReadConfig(bootstrap_servers="b:9092", topic="t").resume_replay_ms == -1


@pytest.fixture
def no_kafka_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("KAFKA_"):
            monkeypatch.delenv(key)


def test_resume_replay_option(no_kafka_env):
    assert kafka_config(PipelineOptions([])).resume_replay_ms == -1  # replay everything retained
    options = PipelineOptions(["--start_position=committed", "--resume_replay_s=2.5"])
    assert kafka_config(options).resume_replay_ms == 2_500


def test_dead_letter_topic_option(no_kafka_env, monkeypatch):
    assert dead_letter_topic_config(PipelineOptions([])) is None
    options = PipelineOptions(["--bootstrap_servers=b1:9092,b2:9092", "--dead_letter_topic=dlq"])
    cfg = dead_letter_topic_config(options)
    assert cfg == DeadLetterTopicConfig("b1:9092,b2:9092", "dlq")
    monkeypatch.setenv("KAFKA_SASL_PLAIN_PASSWORD", "s3cret")
    kwargs = cfg.producer_kwargs()  # on the worker: the secret never enters the job graph
    assert kwargs["sasl_plain_password"] == "s3cret"
    assert kwargs["bootstrap_servers"] == ["b1:9092", "b2:9092"]
    assert "s3cret" not in repr(cfg)


def test_dead_letter_topic_needs_a_name():
    with pytest.raises(ValueError):
        DeadLetterTopicConfig("b:9092", "")


# ----- dead-letter message format -----------------------------------------------------------------

ROW = {
    "day": "2026-11-30",
    "recorded_at": 1_796_000_001_234,
    "dead_letter_id": "0123456789abcdef0123456789abcdef",
    "stage": "parse",
    "reason": "invalid_json",
    "payload": '{"skill": "Ventas España", "broken": ',
    "source": "cxone-data-actions/2/417",
}


def test_dead_letter_message_is_the_export_row_keyed_by_its_id():
    key, value = dead_letter_message(ROW)
    assert key == b"0123456789abcdef0123456789abcdef"
    obj = json.loads(value)
    assert list(obj) == [
        "day",
        "recorded_at",
        "dead_letter_id",
        "stage",
        "reason",
        "payload",
        "source",
    ]
    assert obj["recorded_at"] == "2026-11-30T00:53:21.234Z"
    assert obj["payload"] == ROW["payload"]
    assert "España".encode() in value  # UTF-8, not \u escapes, as in the JSON Lines export


def test_dead_letter_message_is_deterministic():
    assert dead_letter_message(dict(ROW)) == dead_letter_message(dict(ROW))


class _Future:
    def __init__(self, error: Exception | None = None):
        self._error = error

    def get(self, timeout=None):
        if self._error:
            raise self._error


class _Producer:
    def __init__(self, fail: bool = False):
        self.sent, self.flushes, self._fail = [], 0, fail

    def send(self, topic, key, value):
        self.sent.append((topic, key, value))
        return _Future(KafkaTimeoutError("undelivered") if self._fail else None)

    def flush(self):
        self.flushes += 1


def _produce_fn(producer: _Producer):
    fn = dead_letter_topic._ProduceDeadLettersFn(DeadLetterTopicConfig("b:9092", "dlq"))
    fn._producer = producer
    fn.start_bundle()
    return fn


def test_dead_letters_are_sent_and_flushed_per_bundle():
    producer = _Producer()
    fn = _produce_fn(producer)
    fn.process(ROW)
    fn.finish_bundle()
    assert producer.sent == [("dlq", *dead_letter_message(ROW))]
    assert producer.flushes == 1
    fn.finish_bundle()  # nothing pending: no flush
    assert producer.flushes == 1


def test_an_undelivered_dead_letter_fails_the_bundle():
    fn = _produce_fn(_Producer(fail=True))
    fn.process(ROW)
    with pytest.raises(KafkaTimeoutError):
        fn.finish_bundle()


# ----- the read DoFn with a stand-in consumer ---------------------------------------------------------


class _Record:
    def __init__(self, offset: int, value: bytes):
        self.topic, self.partition, self.offset, self.value = "t", 0, offset, value
        self.timestamp = 1_796_000_000_000 + offset


class _Consumer:
    """Answers like KafkaConsumer; `poll_results` items are record lists or exceptions to raise."""

    def __init__(self, poll_results=(), committed=None, end=10**9):
        self.poll_results = list(poll_results)
        self.committed_offset, self.end = committed, end
        self.commits, self.polls = [], []
        self.pos = 0

    def assign(self, tps):
        self.tp = tps[0]

    def seek(self, tp, offset):
        self.pos = offset

    def poll(self, timeout_ms, max_records):
        self.polls.append(max_records)
        result = self.poll_results.pop(0) if self.poll_results else []
        if isinstance(result, Exception):
            raise result
        if result:
            self.pos = result[-1].offset + 1
        return {self.tp: result} if result else {}

    def position(self, tp, timeout_ms=None):
        return self.pos

    def end_offsets(self, tps, timeout_ms=None):
        return {tps[0]: self.end}

    def highwater(self, tp):
        return self.end

    def committed(self, tp, timeout_ms=None):
        return self.committed_offset

    def commit(self, offsets, timeout_ms=None):
        self.commits.extend(o.offset for o in offsets.values())


class _Tracker:
    def __init__(self, start: int, stop: int = 2**62):
        self.range = OffsetRange(start, stop)
        self.claimed: list[int] = []
        self.deferred = None

    def current_restriction(self):
        return self.range

    def try_claim(self, offset):
        if offset >= self.range.stop:
            return False
        self.claimed.append(offset)
        return True

    def defer_remainder(self, delay=None):
        self.deferred = delay


class _Estimator:
    """The read's view of its estimator, for one partition alone (no topic to vouch for)."""

    def __init__(self):
        self.clock = PartitionClock(5_000, 30_000, 10_000)

    def get_clock(self):
        return self.clock

    def publish(self):
        pass

    def dedup_from(self):
        return None

    def attach(self, first_seen):
        self.first_seen = first_seen

    def vouch_if_idle(self, now_ms):
        self.clock.vouch(None, now_ms)


def _read_fn(consumer: _Consumer, **cfg):
    defaults = dict(bootstrap_servers="b:9092", topic="t", group_id="g", max_seconds_per_call=0.3)
    fn = read._ReadPartitionFn(KafkaReadConfig(**{**defaults, **cfg}), (0,))
    fn._consumer = consumer
    fn._last_commit, fn._commit_floor = {}, {}
    fn._throttle = shared_throttle(fn._cfg, 1)
    return fn


def _run(fn, tracker):
    return list(fn.process(KafkaPartition("t", 0), tracker=tracker, estimator=_Estimator()))


def _valid(offset: int) -> bytes:
    return json.dumps(
        {
            "eventId": f"e{offset}",
            "eventTime": 1_796_000_000_000 + offset,
            "contactId": "c",
            "channel": "voice",
            "eventType": "CONTACT_STARTED",
        }
    ).encode()


def test_a_retriable_error_backs_off_and_defers_instead_of_failing_the_bundle():
    consumer = _Consumer([[_Record(5, _valid(5))], KafkaConnectionError("broker down")])
    tracker = _Tracker(5)
    out = _run(_read_fn(consumer), tracker)
    assert [r.value.source for r in out] == ["t/0/5"]
    assert tracker.claimed == [5]
    assert tracker.deferred is not None and tracker.deferred.micros == 1_000_000


def test_a_timeout_of_the_idle_check_backs_off_too():
    consumer = _Consumer([[]])
    consumer.end_offsets = lambda tps, timeout_ms=None: (_ for _ in ()).throw(KafkaTimeoutError())
    tracker = _Tracker(0)
    assert _run(_read_fn(consumer), tracker) == []
    assert tracker.deferred is not None and tracker.deferred.micros == 1_000_000


def test_a_permanent_error_still_fails():
    consumer = _Consumer([TopicAuthorizationFailedError()])
    with pytest.raises(TopicAuthorizationFailedError):
        _run(_read_fn(consumer), _Tracker(0))


def test_a_throttled_poll_asks_for_about_one_call_of_records():
    consumer = _Consumer()
    fn = _read_fn(consumer, max_events_per_second=40.0, max_seconds_per_call=0.5)
    _run(fn, _Tracker(0))
    assert consumer.polls and set(consumer.polls) == {20}
    unthrottled = _Consumer()
    _run(_read_fn(unthrottled), _Tracker(0))
    assert set(unthrottled.polls) == {500}


@pytest.mark.parametrize(
    ("start", "group_offset", "resumes", "commits"),
    [
        # A committed resume replays from before the group's offset (80): no commit below it.
        pytest.param("committed", 80, [40, 60, 80, 90], [80, 90], id="committed-floor"),
        pytest.param("committed", None, [0, 10], [0, 10], id="committed-no-group-offset"),
        # Any other start reports its own progress, even below an older group offset.
        pytest.param("earliest", 80, [40, 60], [40, 60], id="earliest-no-floor"),
    ],
)
def test_commits_never_go_below_the_offset_a_committed_resume_started_from(
    start, group_offset, resumes, commits
):
    consumer = _Consumer(committed=group_offset)
    fn = _read_fn(consumer, start=start)
    tp = TopicPartition("t", 0)
    for offset in resumes:
        fn._commit_resumed(tp, offset)
        fn._commit_resumed(tp, offset)  # the same offset twice: one commit
    assert consumer.commits == commits


# ----- the shared throttle ------------------------------------------------------------------------


class _Clock:
    def __init__(self):
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _throttle(cap=90.0, partitions=3, window_s=30.0):
    clock = _Clock()
    throttle = SharedThrottle(cap, partitions, window_s, clock=clock, sleep=clock.sleep)
    return throttle, clock


def test_the_throttle_takes_the_share_of_the_partitions_read_in_this_process():
    throttle, clock = _throttle()
    assert throttle.rate == 30.0  # nothing seen yet: one partition's share
    throttle.touch(0)
    assert throttle.rate == 30.0
    throttle.touch(1)
    throttle.touch(2)
    assert throttle.rate == 90.0  # every partition read here: the whole cap
    clock.now += 31
    throttle.touch(0)  # 1 and 2 not seen for longer than the window: read elsewhere now
    assert throttle.rate == 30.0


def test_a_finished_partition_leaves_its_share_to_the_others():
    throttle, _ = _throttle()
    for p in (0, 1, 2):
        throttle.touch(p)
    throttle.done(2)
    assert throttle.rate == 90.0  # 2 of the 2 partitions still running are read here
    throttle.done(1)
    throttle.done(0)
    assert throttle.rate == 90.0
    throttle.touch(1)  # a new run of the same topic in this process
    assert throttle.rate == 90.0


def test_the_throttle_waits_for_its_tokens_and_never_refuses():
    throttle, clock = _throttle(cap=10.0, partitions=1)
    throttle.touch(0)
    waits = [throttle.acquire(0) for _ in range(30)]
    assert waits[:10] == [0.0] * 10  # one second's worth of burst
    assert all(w > 0 for w in waits[10:])
    assert clock.now - 100.0 == pytest.approx(2.0)  # 20 more tokens at 10/s
    assert sum(clock.slept) == pytest.approx(2.0)


def test_one_throttle_per_topic_and_cap_in_a_process():
    cfg = KafkaReadConfig(bootstrap_servers="b:9092", topic="t-shared", max_events_per_second=50)
    assert shared_throttle(cfg, 3) is shared_throttle(cfg, 3)
    uncapped = KafkaReadConfig(bootstrap_servers="b:9092", topic="t-shared")
    assert shared_throttle(uncapped, 3) is None


def test_a_live_call_returns_once_caught_up_so_the_watermark_moves():
    # The records up to the partition's high watermark: the call ends there (not after its full
    # max_seconds_per_call) and the runner resumes it at once.
    consumer = _Consumer([[_Record(0, _valid(0)), _Record(1, _valid(1))]], end=2)
    fn = _read_fn(consumer, max_seconds_per_call=60.0)
    tracker = _Tracker(0)
    out = _run(fn, tracker)
    assert [r.value.source for r in out] == ["t/0/0", "t/0/1"]
    assert len(consumer.polls) == 1
    assert tracker.deferred == Duration(seconds=0)


def test_a_call_with_a_backlog_keeps_reading():
    consumer = _Consumer([[_Record(0, _valid(0))], [_Record(1, _valid(1))]], end=3)
    fn = _read_fn(consumer, max_seconds_per_call=60.0)
    out = _run(fn, _Tracker(0))
    assert len(out) == 2 and len(consumer.polls) >= 3  # past offset 1 the high watermark (3) waits
