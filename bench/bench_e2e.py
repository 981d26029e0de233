"""End-to-end throughput of the streaming job on Prism, against the read and write ceilings of this machine.

One run, one fresh topic, one scratch keyspace:
1. the generator's stream is published beforehand (plus one far-later record per partition, which moves
   every partition's watermark past the whole trace, so every window and every buffered customer event
   becomes final);
2. read ceiling: a plain kafka-python consumer reads the whole topic (no parsing), records/s; and the
   project's own Kafka read alone on Prism (bench/prism_read_only.py: read + a counting Map);
3. write ceiling: bench/bench_cassandra_write.py's raw `execute_concurrent` and writer-DoFn rates;
4. the job (`python -m beam_cxone`, Prism, all four outputs into Cassandra) reads the topic from the
   beginning; it is done when the rows in Cassandra equal tests/reference.py's rows for the trace (three
   compared tables) and the dead-letter count matches. Throughput = records / (done - first output),
   where "first output" is the first sign of the job reading (a committed consumer-group offset or a
   row in Cassandra, whichever comes first; it trails the first read by at most one bundle); the rate
   with start-up (from launching the process) is shown beside it.

With --profile, py-spy samples the job's Python process (the SDK harness runs there: Prism starts it
in LOOPBACK mode) for the whole run and the top functions (self and inclusive) are printed.

Run: bash stack/kafka.sh start && bash stack/cassandra.sh start &&
     .venv/bin/python bench/bench_e2e.py --count 20000 [--profile]
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import bench_cassandra_write as write_bench  # noqa: E402

from beam_cxone.generator import GeneratorConfig  # noqa: E402
from beam_cxone.generator import generate  # noqa: E402
from beam_cxone.parse import ParseSettings  # noqa: E402
from beam_cxone.parse import parse_record  # noqa: E402
from beam_cxone.records import RawRecord  # noqa: E402

RUNNING = r"pipeline is running"  # PrismRunner's log line once the job is submitted
ADVANCE_MS = 10 * 60 * 1000  # the closing records, this far after the trace's last event time


def raw_read_rate(topic: str, partitions: int, expected: int) -> dict[str, Any]:
    """kafka-python alone: assign every partition, read from the start to the end offsets."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=[c.KAFKA],
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        t0 = time.perf_counter()
        n = nbytes = 0
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=500, max_records=500).values():
                n += len(records)
                nbytes += sum(len(r.value or b"") for r in records)
        elapsed = time.perf_counter() - t0
    finally:
        consumer.close()
    return {
        "records": n,
        "expected": expected,
        "seconds": round(elapsed, 3),
        "records_per_s": round(n / elapsed),
        "mb_per_s": round(nbytes / elapsed / 1e6, 2),
    }


def parse_rate(values: list[bytes]) -> dict[str, Any]:
    """The record contract's parse alone (pure Python, no Beam): a per-record CPU floor."""
    settings = ParseSettings()
    raws = [RawRecord(v, f"t/0/{i}", 0, ("t", i)) for i, v in enumerate(values)]
    t0 = time.perf_counter()
    for raw in raws:
        parse_record(raw, settings)
    elapsed = time.perf_counter() - t0
    return {
        "records_per_s": round(len(raws) / elapsed),
        "us_per_record": round(elapsed / len(raws) * 1e6, 1),
    }


def prism_read_rate(
    topic: str, partitions: int, total: int, log_dir: Path, timeout_s: float = 180
) -> dict[str, Any]:
    """The project's Kafka read alone on Prism (bench/prism_read_only.py): records / (all offsets
    committed - first offset committed); start-up shown apart."""
    group = f"bench-readonly-{uuid.uuid4().hex[:6]}"
    args = [
        f"--bootstrap_servers={c.KAFKA}",
        f"--topic={topic}",
        f"--group_id={group}",
        f"--run_seconds={timeout_s + 30}",
    ]
    offsets = c.GroupOffsets(group, topic, partitions)
    first = done = None
    samples = []
    script = str(Path(__file__).resolve().parent / "prism_read_only.py")
    job = c.StreamingJob(args, log_dir / f"readonly-{topic}.log")
    job.cmd = [sys.executable, script, *args]
    with job:
        launch = time.time()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and job.alive():
            committed = offsets.total()
            now = time.time()
            samples.append((round(now - launch, 2), committed))
            if first is None and committed > 0:
                first = (now, committed)
            if committed >= total:
                done = now
                break
            time.sleep(0.2)
        cpu = {c.describe(p): round(c.cpu_seconds(p), 1) for p in c.process_tree(job.pid)}
    offsets.close()
    if done is None or first is None:
        return {
            "error": "the read-only job did not commit every offset in time",
            "samples": samples[-5:],
        }
    rate = (total - first[1]) / max(done - first[0], 1e-3)
    return {
        "records_per_s": round(rate),
        "first_commit_s": round(first[0] - launch, 1),
        "all_committed_s": round(done - launch, 1),
        "cpu_s_by_process": cpu,
        "method": "commits trail the read by one call (<= 1 s); rate between the first and the last commit",
    }


def write_ceiling(rows: int) -> dict[str, Any]:
    """bench_cassandra_write's two measurements, in a scratch keyspace of their own."""
    with c.scratch_keyspace("write") as cfg:
        data = write_bench.volume_rows(rows)
        write_bench.bench_raw(cfg, data, cfg.max_in_flight)  # warm-up
        raw = write_bench.bench_raw(cfg, data, cfg.max_in_flight)
        dofn = write_bench.bench_dofn(cfg, data)
    return {
        "rows": rows,
        "raw_rows_per_s": raw["rows_per_s"],
        "dofn_rows_per_s": dofn["rows_per_s"],
        "max_in_flight": raw["concurrency"],
    }


class _Profiler:
    """py-spy record on one pid, raw (collapsed) stacks; summarised after the run."""

    def __init__(self, pid: int, out: Path, rate: int = 50):
        self.out = out
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.proc = subprocess.Popen(
            # --gil: only samples of the thread holding the GIL, i.e. where Python burns its one core
            # (gRPC's and the drivers' threads waiting in C would otherwise dominate the samples).
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--output",
                str(out),
                "--rate",
                str(rate),
                "--nonblocking",
                "--gil",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive shares per function from py-spy's collapsed stacks (idle threads dropped)."""
    self_counts: collections.Counter = collections.Counter()
    incl_counts: collections.Counter = collections.Counter()
    total = 0
    idle_markers = (
        "wait (threading.py",
        "_wait_for_tstate_lock",
        "select (selectors.py",
        "poll (selectors.py",
        "_worker (concurrent/futures/thread.py",
        "get (queue.py",
        "_blocking_unary_unary",
        "next (grpc/_channel.py",
        "_next (grpc/_channel.py",
        "consume_request_iterator",
        "_poll_connection",
        "_run_selector",
        "sleep (",
        "wait (grpc",
        "_wait_once",
        "handle_events (grpc",
    )
    if not path.exists():
        return {"error": "no profile written"}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        if any(m in leaf for m in idle_markers):
            continue
        n = int(count)
        total += n
        self_counts[_fn(leaf)] += n
        for name in {_fn(f) for f in frames}:
            incl_counts[name] += n
    if not total:
        return {"samples": 0}

    def share(counter):
        return [{"function": k, "share": round(v / total, 3)} for k, v in counter.most_common(top)]

    return {"busy_samples": total, "self": share(self_counts), "inclusive": share(incl_counts)}


def _fn(frame: str) -> str:
    """'func (path/to/file.py:123)' -> 'func (file.py)': lines merged per function."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    parts = path.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({short})"


def run(
    count: int = 20_000,
    partitions: int = 3,
    seed: int = 21,
    timeout_s: float = 600,
    write_rows: int = 10_000,
    profile: bool = False,
    job_extra: list[str] | None = None,
    log_dir: Path | None = None,
    tables: tuple[str, ...] = c.COMPARED_TABLES,
    ceilings: bool = True,
) -> dict[str, Any]:
    """`tables`: the tables whose rows must equal the reference (all three by default; experiments
    that change a result on purpose compare fewer). `ceilings=False` skips the read and write
    ceilings (repeated runs of one variant)."""
    c.ensure_services()
    log_dir = log_dir or c.RESULTS_DIR / "logs"
    out: dict[str, Any] = {
        "benchmark": "e2e",
        "count": count,
        "partitions": partitions,
        "seed": seed,
        "loadavg_before": c.loadavg(),
    }
    cfg = GeneratorConfig(count=count, seed=seed)
    values = []
    keyed = []
    for r in generate(cfg):
        values.append(r.value)
        keyed.append((r.key, r.value))
    expected = c.expected_rows(values)
    out["expected_rows"] = {t: len(expected[t]) for t in c.COMPARED_TABLES}
    out["expected_rows"]["dead_letters"] = expected["dead_letters"]
    out["parse_only"] = parse_rate(values)
    last_ms = cfg.start_ms + int(count / cfg.events_per_second_event_time * 1000) + 60_000
    advance_ms = last_ms + ADVANCE_MS

    with c.fresh_topic("e2e", partitions) as topic, c.scratch_keyspace("e2e") as ks:
        t0 = time.perf_counter()
        c.publish(topic, keyed)
        out["publish_records_per_s"] = round(count / (time.perf_counter() - t0))
        c.publish_to_partitions(topic, c.advance_records(partitions, advance_ms))
        total_records = count + partitions
        c.log(f"e2e: published {count} records to {topic}")

        if ceilings:
            reads = [raw_read_rate(topic, partitions, total_records) for _ in range(3)]
            best = max(reads, key=lambda r: r["records_per_s"])
            out["raw_read"] = {
                **best,
                "runs_records_per_s": [r["records_per_s"] for r in reads],
                "median_records_per_s": statistics.median(r["records_per_s"] for r in reads),
            }
            c.log(
                f"e2e: raw kafka-python read {out['raw_read']['median_records_per_s']:,} records/s"
            )
            out["prism_read_only"] = prism_read_rate(topic, partitions, total_records, log_dir)
            c.log(
                f"e2e: the project's read alone on Prism {out['prism_read_only'].get('records_per_s')} records/s"
            )
            out["write_ceiling"] = write_ceiling(write_rows)
            c.log(f"e2e: write ceiling raw {out['write_ceiling']['raw_rows_per_s']:,} rows/s")

        services = c.service_pids()
        group = f"bench-e2e-{uuid.uuid4().hex[:6]}"
        args = c.job_args(
            topic,
            ks.keyspace,
            group,
            f"--run_seconds={timeout_s + 60}",
            "--idle_timeout_s=2",
            *(job_extra or []),
        )
        out["job_args"] = args
        out["loadavg_job_start"] = c.loadavg()
        job_log = log_dir / f"e2e-{topic}.log"
        progress = []
        done_at = None
        profiler = None
        offsets = c.GroupOffsets(group, topic, partitions)
        with c.StreamingJob(args, job_log) as job, c.Rows(ks) as rows:
            launch = time.time()
            deadline = time.monotonic() + timeout_s
            first = cpu_at_first = None
            poll_errors: list[str] = []
            while time.monotonic() < deadline:
                if not job.alive():
                    raise RuntimeError(f"the job ended early:\n{job.tail()}")
                if profile and profiler is None:
                    profiler = _Profiler(job.pid, log_dir / f"e2e-profile-{topic}.txt")
                try:
                    got = {
                        t: sorted(
                            c.normalized(t, r)
                            for r in rows.rows(t)
                            if t != "interaction_volumes" or r["window_start"] < advance_ms - 60_000
                        )
                        for t in tables
                    }
                    dead = len(rows.rows("dead_letters"))
                except Exception as err:  # noqa: BLE001 - a neighbour's test may restart Cassandra
                    poll_errors.append(f"{time.time():.0f}: {type(err).__name__}")
                    time.sleep(1)
                    continue
                committed = offsets.total()
                now = time.time()
                progress.append(
                    {
                        "t_s": round(now - launch, 1),
                        "committed": committed,
                        "dead_letters": dead,
                        **{t: len(v) for t, v in got.items()},
                    }
                )
                if first is None and (committed > 0 or dead or any(got.values())):
                    first = now
                    cpu_at_first = _tree_cpu(job.pid)
                if all(got[t] == expected[t] for t in tables) and dead == expected["dead_letters"]:
                    done_at = now
                    break
                time.sleep(0.5)
            cpu = _tree_cpu(job.pid)
            cpu_split = {c.describe(p): round(c.cpu_seconds(p), 1) for p in c.process_tree(job.pid)}
            peak = {c.describe(p): c.peak_rss_mb(p) for p in c.process_tree(job.pid)}
            if profiler is not None:
                profiler.stop()
            out["job_log"] = str(job_log)
        offsets.close()
        out["loadavg_after"] = c.loadavg()
        out["progress"] = progress
        out["services_after"] = c.service_pids()
        out["poll_errors"] = poll_errors
        if poll_errors:
            out["disturbed"] = f"Cassandra unreachable {len(poll_errors)} time(s) during the run"
        if out["services_after"] != services:
            out["disturbed"] = (
                f"a service restarted during the run (pids {services} -> {out['services_after']})"
            )
        if done_at is None:
            out["error"] = f"rows did not match the reference within {timeout_s} s"
            out["last_counts"] = progress[-1] if progress else None
            out["diff"] = {
                t: {
                    "missing": sorted(set(expected[t]) - set(got[t]))[:10],
                    "unexpected": sorted(set(got[t]) - set(expected[t]))[:10],
                }
                for t in tables
                if got[t] != expected[t]
            }
            return out
        start = first or launch
        out["startup_s"] = round(start - launch, 1)
        out["e2e_seconds"] = round(done_at - start, 1)
        out["e2e_records_per_s"] = round(total_records / (done_at - start))
        out["e2e_incl_startup_records_per_s"] = round(total_records / (done_at - launch))
        out["read_done_s"] = next((p["t_s"] for p in progress if p["committed"] >= count), None)
        out["job_cpu_s"] = round(cpu - (cpu_at_first or 0), 1)
        out["job_cpu_s_by_process"] = cpu_split
        out["job_cpu_ms_per_record"] = round(out["job_cpu_s"] * 1000 / total_records, 3)
        out["job_peak_rss_mb"] = peak
        if profiler is not None:
            out["profile"] = summarize_profile(profiler.out)
            out["profile_file"] = str(profiler.out)
        if ceilings:
            out["ratio_to_raw_read"] = round(
                out["e2e_records_per_s"] / out["raw_read"]["median_records_per_s"], 4
            )
            out["ratio_to_write_ceiling_rows"] = round(
                out["e2e_records_per_s"] / out["write_ceiling"]["raw_rows_per_s"], 4
            )
    return out


def _tree_cpu(pid: int) -> float:
    return sum(c.cpu_seconds(p) for p in c.process_tree(pid))


def report(r: dict[str, Any]) -> str:
    if "error" in r:
        return (
            f"e2e: {r['error']} (last counts {r.get('last_counts')}; {r.get('disturbed', '')})\n"
            f"  diff: {json.dumps(r.get('diff'), indent=1)[:3000]}"
        )
    lines = [
        f"e2e ({r['count']:,} records, {r['partitions']} partitions, Prism): "
        f"{r['e2e_records_per_s']:,} records/s over {r['e2e_seconds']} s "
        f"(start-up {r['startup_s']} s excluded; {r['e2e_incl_startup_records_per_s']:,}/s with it; "
        f"offsets committed to the end {r['read_done_s']} s after launch)",
    ]
    if "raw_read" in r:
        lines += [
            f"  raw kafka-python read: {r['raw_read']['median_records_per_s']:,} records/s "
            f"(runs {r['raw_read']['runs_records_per_s']}) -> ratio {r['ratio_to_raw_read']:.1%} (target >= 50 %)",
            f"  the project's Kafka read alone on Prism (read + count): "
            f"{r['prism_read_only'].get('records_per_s')} records/s",
            f"  cassandra write ceiling: raw {r['write_ceiling']['raw_rows_per_s']:,} rows/s, writer DoFn "
            f"{r['write_ceiling']['dofn_rows_per_s']:,} rows/s",
        ]
    lines += [
        f"  parse alone: {r['parse_only']['records_per_s']:,} records/s; job CPU "
        f"{r['job_cpu_ms_per_record']} ms/record {r['job_cpu_s_by_process']}",
        f"  loadavg before {r['loadavg_before']}, at job start {r['loadavg_job_start']}, after {r['loadavg_after']}",
    ]
    if r.get("disturbed"):
        lines.append(f"  DISTURBED: {r['disturbed']}")
    if "profile" in r:
        lines.append("  profile (self share of busy samples):")
        for item in r["profile"].get("self", [])[:15]:
            lines.append(f"    {item['share']:6.1%}  {item['function']}")
        lines.append("  profile (inclusive):")
        for item in r["profile"].get("inclusive", [])[:25]:
            lines.append(f"    {item['share']:6.1%}  {item['function']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="records published (20000)")
    parser.add_argument("--partitions", type=int, default=3, help="topic partitions (3)")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument(
        "--timeout", type=float, default=600, help="give up after this long (600 s)"
    )
    parser.add_argument("--write_rows", type=int, default=10_000, help="rows for the write ceiling")
    parser.add_argument("--profile", action="store_true", help="py-spy the job's Python process")
    parser.add_argument("--no_ceilings", action="store_true",
                        help="skip the raw read, read-alone and write ceilings (A/B runs of the job)")
    parser.add_argument(
        "--job_arg", action="append", default=[], help="extra job option (repeatable)"
    )
    args = parser.parse_args(argv)
    result = run(
        args.count,
        args.partitions,
        args.seed,
        args.timeout,
        args.write_rows,
        args.profile,
        args.job_arg,
        ceilings=not args.no_ceilings,
    )
    print(report(result))
    path = c.write_results({"machine": c.machine(), "e2e": result}, f"e2e-{c.stamp()}")
    print(f"wrote {path}")
    print(
        json.dumps(
            {k: v for k, v in result.items() if k not in ("progress", "profile")}, default=str
        )
    )
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
