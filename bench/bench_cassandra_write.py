"""The cassandra-driver write ceiling on this machine: interaction_volumes upserts per second.

Compares the writer DoFn called directly (conversion, collapsing, retries, counters) with raw
`execute_concurrent` of the same prepared INSERT on the same session, so the DoFn's overhead and the
driver's own limit show side by side. Uses its own keyspace (dropped at the end unless --keep).

Run: bash stack/cassandra.sh start && .venv/bin/python bench/bench_cassandra_write.py --rows 20000
Prints one line per measurement, then a JSON object with the same figures. The machine is shared:
the load average before and after is part of the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from beam_cxone.io.cassandra_schema import create_schema  # noqa: E402
from beam_cxone.io.cassandra_schema import drop_keyspace  # noqa: E402
from beam_cxone.io.cassandra_schema import read_rows  # noqa: E402
from beam_cxone.io.cassandra_schema import truncate  # noqa: E402
from beam_cxone.io.cassandra_write import CassandraConfig  # noqa: E402
from beam_cxone.io.cassandra_write import _CassandraWriteFn  # noqa: E402
from beam_cxone.io.cassandra_write import execute_upserts  # noqa: E402
from beam_cxone.io.cassandra_write import row_to_params  # noqa: E402
from beam_cxone.tables import INTERACTION_VOLUMES  # noqa: E402

T0 = 1_700_000_000_000


def volume_rows(n: int) -> list[dict]:
    """n distinct keys: 8 channels x consecutive 10 s windows, so nothing collapses."""
    rows = []
    for i in range(n):
        start = T0 + (i // 8) * 10_000
        rows.append(
            {
                "channel": f"CH{i % 8}",
                "day": "2023-11-14",
                "window_start": start,
                "window_end": start + 10_000,
                "interactions": i % 13,
                "events": i,
                "updated_at": start + 10_001,
            }
        )
    return rows


def bench_dofn(cfg: CassandraConfig, rows: list[dict]) -> dict:
    fn = _CassandraWriteFn(cfg, INTERACTION_VOLUMES)
    t = time.perf_counter()
    fn.setup()
    setup_s = time.perf_counter() - t
    try:
        t = time.perf_counter()
        fn.start_bundle()
        for row in rows:
            fn.process(row)
        fn.finish_bundle()
        elapsed = time.perf_counter() - t
    finally:
        fn.teardown()
    return {
        "rows": len(rows),
        "seconds": round(elapsed, 3),
        "rows_per_s": round(len(rows) / elapsed),
        "setup_s": round(setup_s, 3),
        "batch_rows": cfg.batch_rows,
        "max_in_flight": cfg.max_in_flight,
    }


def bench_raw(cfg: CassandraConfig, rows: list[dict], concurrency: int) -> dict:
    params = [row_to_params(INTERACTION_VOLUMES, r) for r in rows]  # conversion not timed
    fn = _CassandraWriteFn(cfg, INTERACTION_VOLUMES)
    fn.setup()  # the same session and prepared statement as the DoFn
    try:
        t = time.perf_counter()
        results = execute_upserts(fn._session, fn._insert, params, concurrency)
        elapsed = time.perf_counter() - t
    finally:
        fn.teardown()
    failed = sum(1 for ok, _ in results if not ok)
    return {
        "rows": len(rows),
        "seconds": round(elapsed, 3),
        "rows_per_s": round(len(rows) / elapsed),
        "concurrency": concurrency,
        "failed": failed,
    }


def bench_conversion(rows: list[dict]) -> dict:
    t = time.perf_counter()
    for row in rows:
        row_to_params(INTERACTION_VOLUMES, row)
    elapsed = time.perf_counter() - t
    return {"rows": len(rows), "rows_per_s": round(len(rows) / elapsed)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows per measurement (20000)")
    parser.add_argument("--hosts", default="127.0.0.1", help="comma-separated contact points")
    parser.add_argument("--keyspace", default="cxone_bench", help="scratch keyspace (cxone_bench)")
    parser.add_argument(
        "--concurrency",
        default="32,100,256",
        help="raw execute_concurrent concurrencies to try (32,100,256)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per method (3)")
    parser.add_argument("--keep", action="store_true", help="keep the keyspace afterwards")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    cfg = CassandraConfig(hosts=tuple(args.hosts.split(",")), keyspace=args.keyspace)
    create_schema(cfg)
    rows = volume_rows(args.rows)
    figures: dict = {
        "rows": args.rows,
        "repeat": args.repeat,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1m_before": round(os.getloadavg()[0], 2),
    }
    try:
        bench_raw(cfg, rows, cfg.max_in_flight)  # warm-up: the server's JIT, the driver's caches

        # Alternating runs, so a neighbour's load on this shared machine hits both alike.
        runs: dict[str, list[dict]] = {"dofn": [], "raw": []}
        for _ in range(args.repeat):
            truncate(cfg, INTERACTION_VOLUMES)
            runs["dofn"].append(bench_dofn(cfg, rows))
            truncate(cfg, INTERACTION_VOLUMES)
            runs["raw"].append(bench_raw(cfg, rows, cfg.max_in_flight))
        assert len(read_rows(cfg, INTERACTION_VOLUMES)) == args.rows, "rows missing"
        for name, results in runs.items():
            rates = sorted(r["rows_per_s"] for r in results)
            figures[name] = {
                "median_rows_per_s": statistics.median(rates),
                "best_rows_per_s": rates[-1],
                "runs_rows_per_s": [r["rows_per_s"] for r in results],
                "max_in_flight": cfg.max_in_flight,
            }
            print(
                f"{name:6s} c={cfg.max_in_flight}: median {figures[name]['median_rows_per_s']:>8,.0f}"
                f" rows/s, best {rates[-1]:>8,} rows/s  runs {figures[name]['runs_rows_per_s']}"
            )

        figures["raw_by_concurrency"] = {}
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            truncate(cfg, INTERACTION_VOLUMES)
            raw = bench_raw(cfg, rows, concurrency)
            figures["raw_by_concurrency"][concurrency] = raw["rows_per_s"]
            print(f"raw    c={concurrency}: {raw['rows_per_s']:>8,} rows/s (one run)")

        figures["conversion_rows_per_s"] = bench_conversion(rows)["rows_per_s"]
        print(f"row_to_params alone: {figures['conversion_rows_per_s']:,} rows/s")
        figures["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    finally:
        if not args.keep:
            drop_keyspace(cfg)
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
