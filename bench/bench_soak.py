"""Memory soak: the streaming job on Prism under a steady live stream, resident memory sampled every 10 s.

Processes sampled (from /proc, VmRSS; the peak is VmHWM): the job's Python process (the SDK harness runs
inside it, LOOPBACK), its Prism child, the Kafka broker and the Cassandra node (the JVMs of stack/,
whose heaps are fixed by their -Xmx, so their RSS mostly shows the JVM growing into its heap).

State is bounded by event-time TTLs (dedup ids 10 min, customer profiles 30 days by default). A soak of
a few minutes cannot reach a 10-minute bound, so by default the job runs with --dedup_ttl_s=60 and
--profile_ttl_s=120: every kind of state then reaches its steady size within the first minutes and the
rest of the soak shows whether memory stays flat. (The generator also makes a fresh customer for every
pattern burst, so with the 30-day profile TTL its customer count, unlike a real tenant's, grows.)
`--default_ttls` runs with the job's defaults instead.

Flatness: a least-squares slope (MB/min) over the second half of the samples, and the change between
the first and last sample of that half, per process. The job must also keep up: the consumer group's
committed offset is compared with what was published (lag in records) at every sample.

Run: .venv/bin/python bench/bench_soak.py --minutes 10 --rate 100
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

from beam_cxone.generator import GeneratorConfig  # noqa: E402

SHORT_TTLS = ["--dedup_ttl_s=60", "--profile_ttl_s=120"]


def slope_mb_per_min(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if not sxx:
        return None
    return round(sum((t - mx) * (v - my) for t, v in points) / sxx * 60, 2)


def flatness(samples: list[dict], field: str) -> dict[str, Any]:
    points = [(s["t_s"], s[field]) for s in samples if s.get(field)]
    if not points:
        return {}
    second = points[len(points) // 2 :]
    return {
        "first_mb": points[0][1],
        "last_mb": points[-1][1],
        "max_mb": max(v for _, v in points),
        "second_half_slope_mb_per_min": slope_mb_per_min(second),
        "second_half_change_mb": round(second[-1][1] - second[0][1], 1),
    }


def run(
    minutes: float = 10,
    rate: float = 100,
    partitions: int = 3,
    seed: int = 9,
    interval_s: float = 10,
    default_ttls: bool = False,
    job_extra: list[str] | None = None,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    c.ensure_services()
    log_dir = log_dir or c.RESULTS_DIR / "logs"
    duration_s = minutes * 60
    extra = ([] if default_ttls else SHORT_TTLS) + list(job_extra or [])
    out: dict[str, Any] = {
        "benchmark": "soak",
        "minutes": minutes,
        "rate_per_s": rate,
        "interval_s": interval_s,
        "partitions": partitions,
        "ttls": extra[:2] if not default_ttls else "defaults",
        "loadavg_before": c.loadavg(),
    }
    with c.fresh_topic("soak", partitions) as topic, c.scratch_keyspace("soak") as ks:
        group = f"bench-soak-{uuid.uuid4().hex[:6]}"
        args = c.job_args(topic, ks.keyspace, group, f"--run_seconds={duration_s + 300}", *extra)
        out["job_args"] = args
        offsets = c.GroupOffsets(group, topic, partitions)
        with c.StreamingJob(args, log_dir / f"soak-{topic}.log") as job, c.Rows(ks) as rows:
            time.sleep(3)
            cfg = GeneratorConfig(
                count=int(rate * (duration_s + 60)),
                seed=seed,
                start_ms=c.now_ms() + 1000,
                events_per_second_event_time=rate,
            )
            publisher = c.LivePublisher(topic, cfg, keep_sends=False).start()
            c.log(
                f"soak: {minutes:g} min at {rate:g} records/s into {topic}; RSS every {interval_s:g} s"
            )
            sampler = c.MemorySampler(interval_s, job.pid, c.service_pids())
            samples = []
            t0 = time.monotonic()
            while time.monotonic() - t0 < duration_s:
                if not job.alive():
                    raise RuntimeError(f"the job ended early:\n{job.tail()}")
                row = sampler.sample()
                row["published"] = publisher.sent
                row["committed"] = offsets.total()
                row["lag_records"] = (
                    row["published"] - row["committed"] if row["committed"] >= 0 else None
                )
                try:
                    row["volume_rows"] = rows.execute(
                        f"SELECT count(*) FROM {ks.keyspace}.interaction_volumes"
                    ).one()[0]
                except Exception as err:  # noqa: BLE001 - a neighbour's test may restart Cassandra
                    row["volume_rows"] = f"unreachable: {type(err).__name__}"
                samples.append(row)
                if len(samples) % 6 == 1:
                    c.log(
                        f"soak t={row['t_s']:.0f}s job {row['job_python_mb']}+{row['job_children_mb']} MB, "
                        f"kafka {row.get('kafka_mb')} MB, cassandra {row.get('cassandra_mb')} MB, "
                        f"lag {row['lag_records']}, load {row['loadavg_1m']}"
                    )
                time.sleep(max(0.0, interval_s - (time.monotonic() - t0) % interval_s))
            peaks = {c.describe(p): c.peak_rss_mb(p) for p in c.process_tree(job.pid)}
            services_after = c.service_pids()
            publisher.stop()
        offsets.close()
    out["samples"] = samples
    if services_after != sampler.services or any(
        isinstance(s_.get("volume_rows"), str) for s_ in samples
    ):
        out["disturbed"] = (
            f"a service restarted or Cassandra was unreachable during the soak "
            f"(pids {sampler.services} -> {services_after}); its RSS series restarts"
        )
    out["published"] = publisher.sent
    out["job_peak_rss_mb"] = peaks
    out["service_peak_rss_mb"] = {
        k: samples[-1].get(f"{k}_peak_mb") for k in ("kafka", "cassandra")
    }
    out["flatness"] = {
        f: flatness(samples, f)
        for f in ("job_python_mb", "job_children_mb", "job_total_mb", "kafka_mb", "cassandra_mb")
    }
    lags = [s["lag_records"] for s in samples if s.get("lag_records") is not None]
    out["lag_records_max"] = max(lags) if lags else None
    out["lag_records_last"] = lags[-1] if lags else None
    out["loadavg_after"] = c.loadavg()
    out["loadavg_1m_mean"] = round(sum(s["loadavg_1m"] for s in samples) / len(samples), 2)
    return out


def report(r: dict[str, Any]) -> str:
    f = r["flatness"]
    lines = [
        f"soak ({r['minutes']:g} min at {r['rate_per_s']:g} records/s, TTLs {r['ttls']}, RSS every "
        f"{r['interval_s']:g} s; load avg mean {r['loadavg_1m_mean']}):"
    ]
    names = {
        "job_python_mb": "job Python (SDK harness)",
        "job_children_mb": "Prism",
        "job_total_mb": "job total",
        "kafka_mb": "Kafka",
        "cassandra_mb": "Cassandra",
    }
    for field, label in names.items():
        x = f.get(field) or {}
        if x:
            lines.append(
                f"  {label:26s} first {x['first_mb']:7.1f} MB, max {x['max_mb']:7.1f} MB, last "
                f"{x['last_mb']:7.1f} MB; second half {x['second_half_change_mb']:+.1f} MB "
                f"({x['second_half_slope_mb_per_min']} MB/min)"
            )
    lines.append(
        f"  peak RSS (VmHWM): job {r['job_peak_rss_mb']}, services {r['service_peak_rss_mb']}"
    )
    lines.append(
        f"  kept up: lag max {r['lag_records_max']} records, last {r['lag_records_last']} "
        f"(published {r['published']})"
    )
    if r.get("disturbed"):
        lines.append(f"  DISTURBED: {r['disturbed']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=float, default=10, help="soak length (10 min; CI-sized: 2-3)"
    )
    parser.add_argument("--rate", type=float, default=100, help="records per second, live (100)")
    parser.add_argument("--interval_s", type=float, default=10, help="RSS sampling interval (10 s)")
    parser.add_argument(
        "--default_ttls", action="store_true", help="keep the job's default state TTLs"
    )
    parser.add_argument(
        "--job_arg", action="append", default=[], help="extra job option (repeatable)"
    )
    args = parser.parse_args(argv)
    result = run(
        args.minutes,
        args.rate,
        interval_s=args.interval_s,
        default_ttls=args.default_ttls,
        job_extra=args.job_arg,
    )
    print(report(result))
    path = c.write_results({"machine": c.machine(), "soak": result}, f"soak-{c.stamp()}")
    print(f"wrote {path}")
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
