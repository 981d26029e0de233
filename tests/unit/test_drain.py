"""`--run_seconds`: the read drains that long after its own first call, not after the command
started (the runner's start-up, seconds to minutes on a loaded machine, used to eat the budget).
A fake wall clock: no test here waits or measures time."""

from __future__ import annotations

from beam_cxone.io.kafka import read
from beam_cxone.io.kafka.config import Drain
from beam_cxone.io.kafka.config import KafkaReadConfig


def test_the_drain_counts_from_the_first_check():
    drain = Drain(after_ms=12_000)
    assert not drain.due(5_000_000)  # the first read call: the clock starts here
    assert not drain.due(5_011_999)
    assert drain.due(5_012_000)
    assert drain.due(5_000_500 + 100_000)


def test_two_jobs_in_one_process_count_apart():
    first, second = Drain(after_ms=1_000), Drain(after_ms=1_000)
    assert first.run != second.run
    assert not first.due(10_000)
    assert not second.due(10_900)  # its own first call
    assert first.due(11_000) and not second.due(11_000)
    assert second.due(11_900)


def test_the_read_ignores_the_time_before_its_first_call(monkeypatch):
    now = [1_000_000]
    monkeypatch.setattr(read, "wall_ms", lambda: now[0])
    cfg = KafkaReadConfig(bootstrap_servers="127.0.0.1:9", topic="t", drain=Drain(after_ms=12_000))
    fn = read._ReadPartitionFn(cfg, (0, 1))  # the job is built (and the command started) here
    now[0] += 90_000  # the runner and its SDK worker start: longer than the whole budget
    assert not fn._draining()  # the first call of the read
    now[0] += 11_999
    assert not fn._draining()
    now[0] += 1
    assert fn._draining()
    # Another instance of the same read in this worker (another partition, bundle or thread)
    # drains at the same time: the clock is the job's, not the instance's.
    other = read._ReadPartitionFn(cfg, (0, 1))
    assert other._draining()


def test_without_a_drain_the_read_never_drains(monkeypatch):
    monkeypatch.setattr(read, "wall_ms", lambda: 10**15)
    fn = read._ReadPartitionFn(KafkaReadConfig(bootstrap_servers="127.0.0.1:9", topic="t"), (0,))
    assert not fn._draining()
