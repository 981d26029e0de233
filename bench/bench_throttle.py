"""Throttle accuracy of the Kafka read: the rate it achieves under `--max_events_per_second`.

Publishes a backlog of generated records to a new topic, then reads it with the job's own read
(`ReadFromKafka`, bounded at the end offsets) on the FnApiRunner in this process, capped at --rate.
A step right after the read notes the wall time of every record; the achieved rate is
(records - 1) / (last - first). The cap is a token bucket that starts with one second's worth of
tokens, so the first second is a burst: the steady rate (from the record at index `rate` on) is
printed too. The target: the achieved rate within 5 % of the cap over at least 30 s.

Run: bash stack/kafka.sh start && .venv/bin/python bench/bench_throttle.py --records 3300 --rate 100
Prints one line per figure, then a JSON object with the same figures. Not a test: the machine is
shared, so the load average before and after is part of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from beam_cxone.commands.cmdline import runner_args  # noqa: E402
from beam_cxone.generator import GeneratorConfig  # noqa: E402
from beam_cxone.generator import generate  # noqa: E402
from beam_cxone.io.kafka import KafkaReadConfig  # noqa: E402
from beam_cxone.io.kafka import ReadFromKafka  # noqa: E402
from beam_cxone.io.kafka import create_topic  # noqa: E402
from beam_cxone.io.kafka import end_offsets  # noqa: E402
from beam_cxone.io.kafka import publish  # noqa: E402


class _NoteTime(beam.DoFn):
    """Appends each record's wall time to a file (a list in this module would be pickled by value
    with the step, and the runner would fill a copy)."""

    def __init__(self, path: str):
        self._path = path

    def start_bundle(self) -> None:
        self._times: list[float] = []

    def process(self, record) -> None:
        self._times.append(time.time())

    def finish_bundle(self) -> None:
        with open(self._path, "a") as out:
            out.writelines(f"{t!r}\n" for t in self._times)


def _publish(bootstrap: str, topic: str, count: int, partitions: int) -> int:
    """`count` generated records, each keyed by its index (spread by the key hash: roughly even)."""
    create_topic(bootstrap, topic, partitions)
    records = generate(GeneratorConfig(count=count, seed=5))
    return publish(bootstrap, topic, ((str(i).encode(), r.value) for i, r in enumerate(records)))


def _read(bootstrap: str, topic: str, rate: float, times_path: str, runner: str) -> float:
    cfg = KafkaReadConfig(
        bootstrap_servers=bootstrap, topic=topic, bounded=True, max_events_per_second=rate
    )
    options = PipelineOptions(runner_args([f"--runner={runner}"], streaming=False))
    started = time.monotonic()
    with beam.Pipeline(options=options) as p:
        _ = p | "ReadKafka" >> ReadFromKafka(cfg) | "NoteTime" >> beam.ParDo(_NoteTime(times_path))
    return time.monotonic() - started


def measure(seen: list[float], rate: float) -> dict:
    """The achieved rate over all records and in the steady state (after the first second's burst)."""
    seen = sorted(seen)
    elapsed = seen[-1] - seen[0]
    achieved = (len(seen) - 1) / elapsed
    burst = int(rate)
    steady = (len(seen) - 1 - burst) / (seen[-1] - seen[burst]) if len(seen) > burst + 1 else None
    return {
        "records": len(seen),
        "cap_per_s": rate,
        "elapsed_s": round(elapsed, 2),
        "achieved_per_s": round(achieved, 2),
        "deviation_pct": round((achieved - rate) / rate * 100, 2),
        "steady_per_s": None if steady is None else round(steady, 2),
        "steady_deviation_pct": None if steady is None else round((steady - rate) / rate * 100, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap_servers", default="127.0.0.1:9092")
    parser.add_argument("--records", type=int, default=3300, help="Backlog size. Default 3300.")
    parser.add_argument("--rate", type=float, default=100.0, help="The cap, events/s. Default 100.")
    parser.add_argument(
        "--partitions", type=int, default=3, help="Partitions of the topic. Default 3."
    )
    parser.add_argument(
        "--runner",
        default="FnApiRunner",
        choices=["FnApiRunner", "PrismRunner"],
        help="Where the read runs (its workers in this process). Default FnApiRunner.",
    )
    args = parser.parse_args(argv)
    if args.records / args.rate < 30:
        parser.error("the backlog must take at least 30 s at the cap (records / rate >= 30)")

    topic = f"bench-throttle-{uuid.uuid4().hex[:8]}"
    load_before = os.getloadavg()[0]
    published = _publish(args.bootstrap_servers, topic, args.records, args.partitions)
    per_partition = end_offsets(args.bootstrap_servers, topic)
    with tempfile.TemporaryDirectory() as tmp:
        times_path = os.path.join(tmp, "times.txt")
        wall = _read(args.bootstrap_servers, topic, args.rate, times_path, args.runner)
        with open(times_path) as handle:
            seen = [float(line) for line in handle]
    figures = measure(seen, args.rate)
    figures.update(
        topic=topic,
        partitions=args.partitions,
        published=published,
        per_partition=per_partition,
        pipeline_wall_s=round(wall, 2),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        runner=args.runner,
    )
    print(
        f"records read           {figures['records']} of {published} "
        f"({args.partitions} partition(s): {per_partition})"
    )
    print(f"cap                    {args.rate:.1f} events/s")
    print(f"first to last record   {figures['elapsed_s']} s")
    print(
        f"achieved rate          {figures['achieved_per_s']} events/s "
        f"({figures['deviation_pct']:+.2f} % of the cap)"
    )
    if figures["steady_per_s"] is not None:
        print(
            f"steady rate            {figures['steady_per_s']} events/s "
            f"({figures['steady_deviation_pct']:+.2f} %, after the first second's burst)"
        )
    print(f"within 5 %             {abs(figures['deviation_pct']) <= 5}")
    print(json.dumps(figures, sort_keys=True))
    return 0 if figures["records"] == published else 1


if __name__ == "__main__":
    sys.exit(main())
