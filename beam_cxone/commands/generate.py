"""`python -m beam_cxone generate`: publishes a synthetic envelope-v1 stream to Kafka (or JSON Lines).

The generator itself (`beam_cxone.generator`) is pure and deterministic; this command only paces it (a
token bucket at `--rate`, never dropping) and hands it to the Kafka producer helpers.
"""

from __future__ import annotations

from tqdm import tqdm

from beam_cxone.commands import cmdline
from beam_cxone.commands import common
from beam_cxone.console import fail
from beam_cxone.generator import GeneratorConfig
from beam_cxone.generator import generate
from beam_cxone.generator import write_jsonl
from beam_cxone.io.kafka import create_topic
from beam_cxone.io.kafka import publish

__all__ = ["PROG", "main"]

PROG = "beam_cxone generate"


def _parser():
    p = cmdline.command_parser("python -m beam_cxone generate",
                               "Publish a synthetic CXone Data Actions stream.")
    p.add_argument("--bootstrap_servers", default="127.0.0.1:9092", help="Kafka bootstrap servers.")
    p.add_argument("--topic", default="cxone-data-actions", help="Topic (created if missing).")
    p.add_argument("--partitions", type=int, default=3, help="Partitions of a new topic. Default 3.")
    p.add_argument("--rate", type=float, default=0.0, help="Records per second (wall time); 0 = no cap.")
    p.add_argument("--count", type=int, default=1000, help="Number of records. Default 1000.")
    p.add_argument("--seed", type=int, default=0, help="Random seed: the same seed, the same bytes.")
    p.add_argument("--start_ms", type=int, default=GeneratorConfig.start_ms,
                   help="Event time of the first record, epoch ms.")
    p.add_argument("--events_per_second_event_time", type=float, default=20.0,
                   help="Event-time density, records per second of event time. Default 20.")
    p.add_argument("--output", default=None,
                   help="Write JSON Lines to this file (.gz compresses) instead of Kafka.")
    p.add_argument("--quiet", action="store_true", help="No progress bar.")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    cfg = GeneratorConfig(count=args.count, seed=args.seed, start_ms=args.start_ms,
                          events_per_second_event_time=args.events_per_second_event_time)
    if args.output:
        written = write_jsonl(cfg, args.output)
        print(f"wrote {written} records to {args.output}")
        return 0
    failed = common.preflight_message(kafka_bootstrap=args.bootstrap_servers)  # a wrong password: one line
    if failed:
        return fail(PROG, failed)
    created = create_topic(args.bootstrap_servers, args.topic, args.partitions)
    records = tqdm(generate(cfg), total=args.count, unit="rec", disable=args.quiet,
                   desc=f"publish {args.topic}")
    sent = publish(args.bootstrap_servers, args.topic, ((r.key, r.value) for r in records),
                   rate_per_s=args.rate)
    print(f"published {sent} records to {args.topic}" + (" (new topic)" if created else ""))
    return 0
