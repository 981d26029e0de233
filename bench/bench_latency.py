"""Result latency of the streaming job on Prism: from the watermark passing a window's end to that window's
`interaction_volumes` row being readable in Cassandra.

Method (one fresh topic, one scratch keyspace, default job options):
- the job starts on an empty topic; the generator's stream is then published live at a steady rate with
  event time ~ wall time (GeneratorConfig start_ms = now, events_per_second_event_time = the rate; each
  record is sent once the wall clock reaches the greatest event time generated so far);
- Cassandra is polled every --poll_s for interaction_volumes rows; the wall time each (channel, window)
  row is first seen is kept, with its `updated_at` (the wall clock when the pipeline built the row);
- the watermark passes a window's end W, nominally, at wall time W + out_of_orderness (5 s): the read's
  watermark is the greatest event time read minus 5 s. Latency = first seen - (W + 5 s).
- a second reference, from the data actually sent: the watermark cannot pass W before every partition
  has been sent a valid record with event time >= W + 5 s; `data` latency = first seen - the wall time
  the last partition got one. It removes the publisher's own jitter (records are sent up to the
  generator's 3 s disorder after their event time, and the greatest event time leads the rate).
Both include the Kafka read's polling (a read call returns after at most 1 s), Prism's watermark
propagation through the stages, the window firing, the Cassandra write, and up to one poll interval.
Windows ending in the first --warmup_s of publishing are left out (the job is still starting).

Run: .venv/bin/python bench/bench_latency.py --rate 100 --duration 120
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

from beam_cxone.generator import GeneratorConfig  # noqa: E402

OUT_OF_ORDERNESS_MS = 5_000
WINDOW_MS = 10_000


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_s": round(c.percentile(values, 50), 3),
        "p90_s": round(c.percentile(values, 90), 3),
        "p99_s": round(c.percentile(values, 99), 3),
        "max_s": round(max(values), 3),
        "min_s": round(min(values), 3),
    }


def data_watermark_times(
    sends: list[tuple[int, int | None, int]], partitions: int, window_ends: list[int]
) -> dict[int, int | None]:
    """For each window end W: the wall ms at which the last partition was sent a valid record with
    event time >= W + out_of_orderness - 1 ms (the earliest the read's watermark can pass W - 1 ms)."""
    per_partition: dict[int, tuple[list[int], list[int]]] = {}
    for p in range(partitions):
        running_max: list[int] = []
        times: list[int] = []
        high = None
        for part, event_ms, sent_ms in sends:
            if part != p or event_ms is None:
                continue
            if high is None or event_ms > high:
                high = event_ms
                running_max.append(high)
                times.append(sent_ms)
        per_partition[p] = (running_max, times)
    out: dict[int, int | None] = {}
    for w in window_ends:
        need = w - 1 + OUT_OF_ORDERNESS_MS
        latest = 0
        for running_max, times in per_partition.values():
            k = bisect.bisect_left(running_max, need)
            if k == len(running_max):
                latest = None
                break
            latest = max(latest, times[k])
        out[w] = latest
    return out


def run(
    rate: float = 100,
    duration_s: float = 120,
    partitions: int = 3,
    seed: int = 5,
    poll_s: float = 0.1,
    warmup_s: float = 20,
    job_extra: list[str] | None = None,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    c.ensure_services()
    log_dir = log_dir or c.RESULTS_DIR / "logs"
    out: dict[str, Any] = {
        "benchmark": "latency",
        "rate_per_s": rate,
        "duration_s": duration_s,
        "partitions": partitions,
        "poll_s": poll_s,
        "warmup_s": warmup_s,
        "loadavg_before": c.loadavg(),
    }
    first_seen: dict[
        tuple[str, int], tuple[int, int]
    ] = {}  # (channel, window_start) -> (seen ms, updated_at)
    with c.fresh_topic("latency", partitions) as topic, c.scratch_keyspace("latency") as ks:
        group = f"bench-latency-{uuid.uuid4().hex[:6]}"
        args = c.job_args(
            topic, ks.keyspace, group, f"--run_seconds={duration_s + 300}", *(job_extra or [])
        )
        out["job_args"] = args
        with c.StreamingJob(args, log_dir / f"latency-{topic}.log") as job, c.Rows(ks) as rows:
            select = rows._session.prepare(
                f"SELECT channel, window_start, updated_at FROM {ks.keyspace}.interaction_volumes"
            )
            time.sleep(3)  # let the job submit before the first records' windows
            start_ms = c.now_ms() + 1000
            cfg = GeneratorConfig(
                count=int(rate * duration_s),
                seed=seed,
                start_ms=start_ms,
                events_per_second_event_time=rate,
            )
            publisher = c.LivePublisher(topic, cfg).start()
            c.log(f"latency: publishing {cfg.count} records at {rate}/s to {topic}")
            drain_until = None
            loads = []
            poll_errors: list[str] = []
            services = c.service_pids()
            while True:
                if not job.alive():
                    raise RuntimeError(f"the job ended early:\n{job.tail()}")
                t_poll = c.now_ms()
                try:
                    polled = list(rows._session.execute(select, timeout=30))
                except Exception as err:  # noqa: BLE001 - a neighbour's test may restart Cassandra
                    poll_errors.append(f"{c.now_ms()}: {type(err).__name__}")
                    time.sleep(1)
                    continue
                for r in polled:
                    key = (r.channel, _ms(r.window_start))
                    if key not in first_seen:
                        first_seen[key] = (c.now_ms(), _ms(r.updated_at))
                if len(loads) < (c.now_ms() - start_ms) / 10_000:
                    loads.append(c.loadavg()[0])
                if drain_until is None and not publisher.alive():
                    drain_until = time.monotonic() + OUT_OF_ORDERNESS_MS / 1000 + 20
                    last_event = max(
                        (e for _, e, _ in publisher.sends if e is not None), default=start_ms
                    )
                if drain_until is not None and time.monotonic() > drain_until:
                    break
                time.sleep(max(0.0, poll_s - (c.now_ms() - t_poll) / 1000))
            publisher.stop()
        if publisher.error:
            raise RuntimeError(f"publisher failed: {publisher.error!r}")
    out["published"] = publisher.sent
    out["poll_errors"] = poll_errors
    if poll_errors or c.service_pids() != services:
        out["disturbed"] = (
            f"Cassandra unreachable {len(poll_errors)} time(s) or a service restarted "
            f"(pids {services} -> {c.service_pids()}): rows seen late; figures overstated"
        )
    out["publisher_behind_ms_max"] = publisher.behind_ms_max
    out["loadavg_during"] = loads
    out["loadavg_after"] = c.loadavg()

    # Windows that must have fired: they end after the warm-up and before the last watermark.
    window_ends = sorted({ws + WINDOW_MS for _, ws in first_seen})
    data_wm = data_watermark_times(publisher.sends, partitions, window_ends)
    nominal, data, fire, write = [], [], [], []
    per_window: dict[int, float] = {}
    considered = missing = 0
    for (_channel, ws), (seen_ms, updated_ms) in sorted(
        first_seen.items(), key=lambda kv: kv[0][1]
    ):
        w = ws + WINDOW_MS
        if w < start_ms + warmup_s * 1000 or w + OUT_OF_ORDERNESS_MS > last_event:
            continue
        considered += 1
        nominal.append((seen_ms - (w + OUT_OF_ORDERNESS_MS)) / 1000)
        if data_wm.get(w):
            data.append((seen_ms - data_wm[w]) / 1000)
            fire.append((updated_ms - data_wm[w]) / 1000)
        write.append((seen_ms - updated_ms) / 1000)
        per_window[w] = min(per_window.get(w, 1e9), (seen_ms - (w + OUT_OF_ORDERNESS_MS)) / 1000)
    if data_wm:
        missing = sum(1 for w in window_ends if data_wm[w] is None)
    out["rows_considered"] = considered
    out["windows_considered"] = len(per_window)
    out["windows_without_data_reference"] = missing
    out["latency_nominal"] = _stats(nominal)  # first seen - (W + 5 s)
    out["latency_data"] = _stats(data)  # first seen - when the data let the watermark pass W
    out["fire_after_data_watermark"] = _stats(fire)  # updated_at (row built) - data reference
    out["write_and_poll"] = _stats(write)  # first seen - updated_at
    out["per_window_first_row_nominal"] = _stats(list(per_window.values()))
    return out


def _ms(value) -> int:
    """A driver timestamp (naive UTC datetime) as epoch ms."""
    import datetime as dt

    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return int(aware.timestamp() * 1000)


def report(r: dict[str, Any]) -> str:
    n, d = r["latency_nominal"], r["latency_data"]
    if not n.get("n"):
        return f"latency: no window rows to measure ({r.get('rows_considered')} rows considered)"
    return "\n".join(
        [
            f"latency (Prism, {r['rate_per_s']:g} records/s live for {r['duration_s']:g} s, {r['rows_considered']} "
            f"window rows in {r['windows_considered']} windows): watermark passes window end -> row readable",
            f"  nominal (W + 5 s): p50 {n['p50_s']} s, p90 {n['p90_s']} s, p99 {n['p99_s']} s, max {n['max_s']} s"
            f" (target p99 <= 2 s)",
            f"  from the data sent: p50 {d.get('p50_s')} s, p99 {d.get('p99_s')} s; of which row built after "
            f"{r['fire_after_data_watermark'].get('p50_s')} s (p50), then written + polled in "
            f"{r['write_and_poll'].get('p50_s')} s (p50, poll every {r['poll_s']} s)",
            f"  loadavg before {r['loadavg_before']}, during {r['loadavg_during']}, after {r['loadavg_after']}",
        ]
        + ([f"  DISTURBED: {r['disturbed']}"] if r.get("disturbed") else [])
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100, help="records per second, live (100)")
    parser.add_argument(
        "--duration", type=float, default=120, help="seconds of live publishing (120)"
    )
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--poll_s", type=float, default=0.1, help="Cassandra poll interval (0.1 s)")
    parser.add_argument(
        "--warmup_s", type=float, default=20, help="windows ending earlier are skipped"
    )
    parser.add_argument(
        "--job_arg", action="append", default=[], help="extra job option (repeatable)"
    )
    args = parser.parse_args(argv)
    result = run(
        args.rate,
        args.duration,
        args.partitions,
        poll_s=args.poll_s,
        warmup_s=args.warmup_s,
        job_extra=args.job_arg,
    )
    print(report(result))
    path = c.write_results({"machine": c.machine(), "latency": result}, f"latency-{c.stamp()}")
    print(f"wrote {path}")
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
