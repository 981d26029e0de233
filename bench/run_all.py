"""Every benchmark of bench/ in sequence, a table of the figures, and bench/results/<timestamp>.json.

  bash stack/kafka.sh start && bash stack/cassandra.sh start && bash stack/prism.sh fetch
  .venv/bin/python bench/run_all.py                      # small defaults, about 8-10 minutes
  .venv/bin/python bench/run_all.py --soak_minutes 10    # the real soak (10 minutes)
  .venv/bin/python bench/run_all.py --only e2e,backfill --e2e_count 50000

Benchmarks (one module each; each uses a fresh Kafka topic and its own Cassandra keyspace, dropped
afterwards, never the default keyspace):
  e2e       bench_e2e.py: streaming job on Prism over a pre-published stream, with the raw kafka-python
            read rate and the cassandra-driver write ceiling (bench_cassandra_write.py) in the same run
  latency   bench_latency.py: watermark past a window's end -> its row readable in Cassandra
  soak      bench_soak.py: RSS of the job (Python + Prism), Kafka and Cassandra every 10 s under a
            steady stream
  backfill  bench_backfill.py: backfill over files vs a trivial Map+CombinePerKey, both FnApiRunner
The machine is shared: every figure carries the load average around it. Nothing here is a test:
figures are printed and written, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import bench_backfill  # noqa: E402
import bench_e2e  # noqa: E402
import bench_latency  # noqa: E402
import bench_soak  # noqa: E402

ALL = ("e2e", "latency", "soak", "backfill")


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []  # figure, value, target / verdict, load
    e = results.get("e2e")
    if e and "error" not in e and "exception" not in e:
        load = f"{e['loadavg_job_start'][0]} -> {e['loadavg_after'][0]}"
        rows += [
            (
                "e2e throughput, Prism, all outputs (records/s)",
                _fmt(e["e2e_records_per_s"]),
                "",
                load,
            ),
            (
                "  raw kafka-python read, same topic (records/s)",
                _fmt(e["raw_read"]["median_records_per_s"]),
                "",
                str(e["loadavg_before"][0]),
            ),
            (
                "  the project's Kafka read alone on Prism (records/s)",
                _fmt(e.get("prism_read_only", {}).get("records_per_s")),
                "read + count, no analytics",
                "",
            ),
            (
                "  cassandra-driver write ceiling (rows/s)",
                _fmt(e["write_ceiling"]["raw_rows_per_s"]),
                f"writer DoFn {_fmt(e['write_ceiling']['dofn_rows_per_s'])}",
                "",
            ),
            (
                "  e2e / raw read",
                f"{e['ratio_to_raw_read']:.1%}",
                "target >= 50 %: " + ("met" if e["ratio_to_raw_read"] >= 0.5 else "MISSED"),
                "",
            ),
            (
                "  job CPU per record (ms)",
                _fmt(e["job_cpu_ms_per_record"]),
                str(e["job_cpu_s_by_process"]),
                "",
            ),
        ]
    elif e:
        rows.append(
            ("e2e", "failed", str(e.get("error") or e.get("exception")).splitlines()[0][:60], "")
        )
    lat = results.get("latency")
    if lat and "exception" not in lat and lat["latency_nominal"].get("n"):
        n = lat["latency_nominal"]
        load = f"{min(lat['loadavg_during'] or [0])}-{max(lat['loadavg_during'] or [0])}"
        rows += [
            (
                f"latency p50 / p99 (s), {lat['rate_per_s']:g}/s live, {n['n']} rows",
                f"{n['p50_s']} / {n['p99_s']}",
                "target p99 <= 2 s: " + ("met" if n["p99_s"] <= 2 else "MISSED"),
                load,
            ),
            (
                "  from the data sent, p50 / p99 (s)",
                f"{lat['latency_data'].get('p50_s')} / {lat['latency_data'].get('p99_s')}",
                f"write+poll p50 {lat['write_and_poll'].get('p50_s')} s",
                "",
            ),
        ]
    elif lat:
        rows.append(("latency", "failed", str(lat.get("exception")).splitlines()[0][:60], ""))
    s = results.get("soak")
    if s and "exception" not in s:
        f = s["flatness"]
        load = f"mean {s['loadavg_1m_mean']}"
        for field, label in (
            ("job_python_mb", "job Python"),
            ("job_children_mb", "Prism"),
            ("kafka_mb", "Kafka"),
            ("cassandra_mb", "Cassandra"),
        ):
            x = f.get(field) or {}
            if x:
                rows.append(
                    (
                        f"soak {s['minutes']:g} min @ {s['rate_per_s']:g}/s: {label} RSS max (MB)",
                        _fmt(x["max_mb"]),
                        f"2nd half {x['second_half_change_mb']:+.1f} MB ({x['second_half_slope_mb_per_min']} MB/min)",
                        load if field == "job_python_mb" else "",
                    )
                )
        rows.append(
            (
                "  soak lag, max / last (records)",
                f"{s['lag_records_max']} / {s['lag_records_last']}",
                "",
                "",
            )
        )
    elif s:
        rows.append(("soak", "failed", str(s.get("exception")).splitlines()[0][:60], ""))
    b = results.get("backfill")
    if b and "exception" not in b:
        load = f"{min(b['loadavg_during'])}-{max(b['loadavg_during'])}"
        rows += [
            (
                "backfill -> Cassandra, FnApiRunner (records/s)",
                _fmt(b["backfill_cassandra"]["records_per_s"]),
                f"rows match reference: {b['cassandra_rows_match_reference']}",
                load,
            ),
            (
                "  trivial Map+CombinePerKey, same source (records/s)",
                _fmt(b["trivial_same_source"]["records_per_s"]),
                "",
                "",
            ),
            (
                "  backfill / trivial",
                f"{b['ratio_backfill_cassandra_to_trivial']:.1%}",
                "target >= 70 %: "
                + ("met" if b["ratio_backfill_cassandra_to_trivial"] >= 0.7 else "MISSED"),
                "",
            ),
        ]
    elif b:
        rows.append(("backfill", "failed", str(b.get("exception")).splitlines()[0][:60], ""))
    widths = [
        max(len(r[i]) for r in rows + [("figure", "value", "target / note", "load avg")])
        for i in range(4)
    ]
    lines = []
    for i, r in enumerate([("figure", "value", "target / note", "load avg")] + rows):
        lines.append("| " + " | ".join(r[k].ljust(widths[k]) for k in range(4)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}"
    )
    parser.add_argument(
        "--e2e_count", type=int, default=10_000, help="records pre-published (10000)"
    )
    parser.add_argument(
        "--write_rows", type=int, default=10_000, help="rows for the write ceiling (10000)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the e2e job's Python process"
    )
    parser.add_argument("--latency_rate", type=float, default=100, help="records/s live (100)")
    parser.add_argument(
        "--latency_s", type=float, default=90, help="seconds of live publishing (90)"
    )
    parser.add_argument(
        "--soak_minutes",
        type=float,
        default=3,
        help="soak length (3 here; 10 is the real benchmark)",
    )
    parser.add_argument(
        "--soak_rate", type=float, default=100, help="records/s during the soak (100)"
    )
    parser.add_argument(
        "--soak_default_ttls", action="store_true", help="soak with the job's default TTLs"
    )
    parser.add_argument(
        "--backfill_count", type=int, default=20_000, help="records in the file (20000)"
    )
    parser.add_argument("--backfill_repeat", type=int, default=2, help="alternating runs (2)")
    parser.add_argument(
        "--job_arg",
        action="append",
        default=[],
        help="extra streaming-job option for e2e, latency and soak (repeatable), "
        "e.g. --job_arg=--prism_location=/path/to/prism",
    )
    args = parser.parse_args(argv)
    chosen = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {ALL}")

    started = time.time()
    results: dict[str, Any] = {"machine": c.machine(), "started": c.stamp(), "args": vars(args)}
    c.ensure_services()
    runs = {
        "e2e": lambda: bench_e2e.run(
            args.e2e_count, write_rows=args.write_rows, profile=args.profile, job_extra=args.job_arg
        ),
        "latency": lambda: bench_latency.run(
            args.latency_rate, args.latency_s, job_extra=args.job_arg
        ),
        "soak": lambda: bench_soak.run(
            args.soak_minutes,
            args.soak_rate,
            default_ttls=args.soak_default_ttls,
            job_extra=args.job_arg,
        ),
        "backfill": lambda: bench_backfill.run(args.backfill_count, args.backfill_repeat),
    }
    reports = {
        "e2e": bench_e2e.report,
        "latency": bench_latency.report,
        "soak": bench_soak.report,
        "backfill": bench_backfill.report,
    }
    for name in chosen:
        c.log(f"run_all: {name}")
        try:
            results[name] = runs[name]()
            print(reports[name](results[name]), flush=True)
        except Exception as err:  # noqa: BLE001 - one failed benchmark must not lose the others' figures
            results[name] = {
                "exception": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(),
            }
            print(f"{name}: FAILED {type(err).__name__}: {err}", flush=True)
    results["total_s"] = round(time.time() - started)
    results["loadavg_at_end"] = c.loadavg()
    path = c.write_results(results)
    m = results["machine"]
    print()
    print(
        f"machine: {m['cpus']} cores ({m['cpu_model']}), {m['mem_gib']} GiB, Python {m['python']}, "
        f"Beam {m['apache_beam']}, kafka-python {m['kafka_python']}, cassandra-driver {m['cassandra_driver']}; "
        f"load avg at start {m['loadavg_at_start']}, at end {results['loadavg_at_end']}; {results['total_s']} s"
    )
    print(table(results))
    print(f"wrote {path}")
    return 0 if all("exception" not in results.get(n, {}) for n in chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
