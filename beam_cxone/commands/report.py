"""`python -m beam_cxone report`: what the job wrote, read back from Cassandra, to look at.

  python -m beam_cxone report --since=2026-11-28T00:00:00Z --until=2026-11-29T00:00:00Z --limit=10
  python -m beam_cxone report --since=1764288000000 --until=1764374400000 --png=volumes.png

The reads are `beam_cxone.report` (`read_report_data`), the tables `beam_cxone.report_tables`, the
chart `beam_cxone.report_chart`.
"""

from __future__ import annotations

import argparse
import sys

from beam_cxone.commands import cmdline
from beam_cxone.console import fail
from beam_cxone.report import PNG_HEIGHT_PX
from beam_cxone.report import PNG_WIDTH_PX
from beam_cxone.report import TimeRange
from beam_cxone.report import format_report
from beam_cxone.report import read_report_data
from beam_cxone.report import render_png

__all__ = ["PROG", "main"]

PROG = "beam_cxone report"


def _parser() -> argparse.ArgumentParser:
    p = cmdline.command_parser("python -m beam_cxone report",
                               "Interaction volumes, alerts and dead letters from Cassandra.")
    g = p.add_argument_group("report")
    g.add_argument(
        "--since",
        default=None,
        help="Range start, inclusive: RFC 3339 with an offset, or epoch ms. Default: open.",
    )
    g.add_argument(
        "--until",
        default=None,
        help="Range end, exclusive: RFC 3339 with an offset, or epoch ms. Default: open.",
    )
    g.add_argument(
        "--limit",
        type=int,
        default=20,
        help="Customers and dead-letter reasons shown, at most. Default 20.",
    )
    g.add_argument(
        "--png",
        default=None,
        metavar="FILE",
        help=f"Also draw volumes and alerts to this PNG, {PNG_WIDTH_PX}x{PNG_HEIGHT_PX} px.",
    )
    cmdline.add_cassandra_options(p)  # the job's --cassandra_* flags, same defaults
    return p


def main(argv: list[str]) -> int:
    """Prints the report; with --png also writes the chart. 0 on success, 2 on a usage or read
    error."""
    args = _parser().parse_args(argv)
    if args.limit < 1:
        return fail(PROG, f"--limit must be >= 1, got {args.limit}")
    try:
        rng = TimeRange.parse(args.since, args.until)
        cfg = cmdline.cassandra_config(args)
    except ValueError as err:
        return fail(PROG, str(err))
    try:
        data = read_report_data(cfg, rng)
    except Exception as err:  # noqa: BLE001 - any driver error ends the command with its name
        return fail(
            PROG,
            f"cannot read {cfg.keyspace} from {','.join(cfg.hosts)}:{cfg.port}: "
            f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        )
    sys.stdout.write(format_report(data, rng, limit=args.limit, keyspace=cfg.keyspace))
    if args.png:
        render_png(data, args.png, title=f"Interactions per channel, {rng.describe()}")
        print(f"\nchart written to {args.png} ({PNG_WIDTH_PX}x{PNG_HEIGHT_PX} px)")
    return 0
