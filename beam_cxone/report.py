"""`python -m beam_cxone report`: what the job wrote, read back from Cassandra, as tables on the terminal."""

from __future__ import annotations

import argparse
from collections import Counter

from beam_cxone.io.cassandra_schema import read_rows
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.tables import CUSTOMER_PROFILES
from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.tables import INTERACTION_VOLUMES
from beam_cxone.tables import PATTERN_ALERTS
from beam_cxone.tables import iso_millis

__all__ = ["run_report_command"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m beam_cxone report")
    p.add_argument("--cassandra_hosts", default="127.0.0.1")
    p.add_argument("--cassandra_port", type=int, default=9042)
    p.add_argument("--cassandra_keyspace", default="cxone_analytics")
    p.add_argument("--limit", type=int, default=20, help="Rows shown per section. Default 20.")
    return p


def _print_table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in [h, *(r[i] for r in rows)]) for i, h in enumerate(header)]
    print("  " + "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  " + "  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))


def run_report_command(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    cfg = CassandraConfig(hosts=tuple(args.cassandra_hosts.split(",")), port=args.cassandra_port,
                          keyspace=args.cassandra_keyspace)
    volumes = read_rows(cfg, INTERACTION_VOLUMES)
    alerts = read_rows(cfg, PATTERN_ALERTS)
    profiles = read_rows(cfg, CUSTOMER_PROFILES)
    dead = read_rows(cfg, DEAD_LETTERS)
    print(f"{len(volumes)} volume rows, {len(alerts)} alerts, {len(profiles)} profiles, "
          f"{len(dead)} dead letters in {cfg.keyspace}")
    latest = sorted(volumes, key=lambda r: (r["window_start"], r["channel"]))[-args.limit:]
    _print_table("interaction volumes (latest windows)", ["window_start", "channel", "interactions", "events"],
                 [[iso_millis(r["window_start"]), r["channel"], r["interactions"], r["events"]] for r in latest])
    _print_table("pattern alerts", ["alert_time", "customer", "channel", "tier", "region"],
                 [[iso_millis(r["alert_time"]), r["customer_id"], r["channel"], r["tier"], r["region"]]
                  for r in sorted(alerts, key=lambda r: r["alert_time"])[: args.limit]])
    reasons = Counter(r["reason"] for r in dead)
    _print_table("dead letters by reason", ["reason", "count"], [[k, v] for k, v in reasons.most_common()])
    return 0
