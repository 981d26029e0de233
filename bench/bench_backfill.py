"""Backfill throughput over files on the FnApiRunner, against a trivial pipeline on the same runner.

One generated JSON Lines file (the generator's stream, every encoding and malformed kind included),
read by (runs alternate, so a neighbour's load on this shared machine hits all alike):
- backfill -> Cassandra: `build_backfill` (the `backfill` command's graph: parse, dedup, volumes, join,
  pattern, all four tables) into a scratch keyspace;
- backfill -> JSON Lines: the same graph into the JSON Lines export (no Cassandra: the sink's share);
- trivial: the same file source (`ReadJsonLines`) | Map(record -> (small key, 1)) | CombinePerKey(sum);
- trivial over text: Beam's `ReadFromText` | Map | CombinePerKey(sum) (Beam's own source).
Each run is a fresh Pipeline on the FnApiRunner in this process, timed from `run()` to the end of
`wait_until_finish()` (graph construction not timed). The Cassandra rows are checked once against
tests/reference.py, so a fast but wrong run cannot pass for a figure.

Run: .venv/bin/python bench/bench_backfill.py --count 20000 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from beam_cxone.commands.cmdline import runner_args  # noqa: E402
from beam_cxone.config import AnalyticsConfig  # noqa: E402
from beam_cxone.generator import GeneratorConfig  # noqa: E402
from beam_cxone.generator import write_jsonl  # noqa: E402
from beam_cxone.io.files import ReadJsonLines  # noqa: E402
from beam_cxone.pipelines.jobs import SinkConfig  # noqa: E402
from beam_cxone.pipelines.jobs import build_backfill  # noqa: E402
from beam_cxone.transforms.batch import ReduceBucketFn  # noqa: E402
from beam_cxone.transforms.batch import _ParseToBucketsFn  # noqa: E402
from beam_cxone.transforms.batch import result_rows  # noqa: E402


def _options() -> PipelineOptions:
    return PipelineOptions(runner_args([], streaming=False))


def _small_key(payload: bytes) -> tuple[int, int]:
    return zlib.crc32(payload) & 63, 1


def _time(build) -> float:
    p = beam.Pipeline(options=_options())
    build(p)
    t0 = time.perf_counter()
    p.run().wait_until_finish()
    return time.perf_counter() - t0


def trivial(path: str):
    def build(p):
        (
            p
            | "ReadFiles" >> ReadJsonLines(path)
            | "KeyOf" >> beam.Map(lambda r: _small_key(r.payload))
            | "CountPerKey" >> beam.CombinePerKey(sum)
        )

    return build


def trivial_text(path: str):
    def build(p):
        # Bytes, not str: some generated records are invalid UTF-8 on purpose (dead letters).
        (
            p
            | "ReadText" >> beam.io.ReadFromText(path, coder=beam.coders.BytesCoder())
            | "KeyOf" >> beam.Map(_small_key)
            | "CountPerKey" >> beam.CombinePerKey(sum)
        )

    return build


def backfill(path: str, sink: SinkConfig):
    def build(p):
        build_backfill(p, AnalyticsConfig(), sink, input_pattern=path)

    return build


def partial(path: str, upto: str):
    """The batch graph (`transforms/batch.py`) cut after one step, for a cost breakdown (outputs
    discarded): parse in batches; + dedup and partials (GroupByBucket, ReduceBuckets); + rows."""
    cfg = AnalyticsConfig()
    window_ms = cfg.window_size_s * 1000

    def build(p):
        raw = p | "ReadFiles" >> ReadJsonLines(path)
        parsed = raw | "ParseRecords" >> beam.ParDo(_ParseToBucketsFn(cfg.parse_settings)).with_outputs(
            "dead_letters", main="buckets")
        if upto == "parse":
            return
        partials = (parsed.buckets
                    | "GroupByBucket" >> beam.GroupByKey()
                    | "ReduceBuckets" >> beam.ParDo(ReduceBucketFn(window_ms)))
        if upto == "parse_dedup":
            return
        result_rows(partials, window_ms, cfg.pattern_spec)

    return build


BREAKDOWN = ("parse", "parse_dedup", "parse_dedup_rows")


def run(
    count: int = 20_000, repeat: int = 2, seed: int = 13, breakdown: bool = True
) -> dict[str, Any]:
    c.ensure_services()
    out: dict[str, Any] = {
        "benchmark": "backfill",
        "count": count,
        "repeat": repeat,
        "runner": " ".join(runner_args([], streaming=False)),
        "loadavg_before": c.loadavg(),
    }
    with (
        tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp,
        c.scratch_keyspace("backfill") as ks,
    ):
        path = str(Path(tmp) / "trace.jsonl")
        cfg = GeneratorConfig(count=count, seed=seed)
        write_jsonl(cfg, path)
        values = Path(path).read_bytes().splitlines()
        out["file_mb"] = round(Path(path).stat().st_size / 1e6, 2)
        kinds = {
            "backfill_cassandra": backfill(path, SinkConfig(kind="cassandra", cassandra=ks)),
            "backfill_jsonl": None,  # set per run: a fresh output directory each time
            "trivial_same_source": trivial(path),
            "trivial_read_from_text": trivial_text(path),
        }
        if breakdown:  # cumulative cuts of the graph, no sink: what each composite adds
            kinds.update({f"cut_{name}": partial(path, name) for name in BREAKDOWN})
        times: dict[str, list[float]] = {k: [] for k in kinds}
        loads = []
        for rep in range(repeat):
            for kind, build in kinds.items():
                if kind == "backfill_jsonl":
                    build = backfill(
                        path, SinkConfig(kind="jsonl", output_dir=str(Path(tmp) / f"out{rep}"))
                    )
                seconds = _time(build)
                times[kind].append(seconds)
                loads.append(c.loadavg()[0])
                c.log(
                    f"backfill: {kind} run {rep + 1}: {count / seconds:,.0f} records/s ({seconds:.1f} s)"
                )
        expected = c.expected_rows(values)
        with c.Rows(ks) as rows:
            got = {t: sorted(c.normalized(t, r) for r in rows.rows(t)) for t in c.COMPARED_TABLES}
            dead = len(rows.rows("dead_letters"))
        out["cassandra_rows_match_reference"] = (
            all(got[t] == expected[t] for t in c.COMPARED_TABLES)
            and dead == expected["dead_letters"]
        )
    for kind, secs in times.items():
        med = statistics.median(secs)
        out[kind] = {
            "median_s": round(med, 2),
            "runs_s": [round(s, 2) for s in secs],
            "records_per_s": round(count / med),
        }
    base = out["trivial_same_source"]["records_per_s"]
    out["ratio_backfill_cassandra_to_trivial"] = round(
        out["backfill_cassandra"]["records_per_s"] / base, 3
    )
    out["ratio_backfill_jsonl_to_trivial"] = round(out["backfill_jsonl"]["records_per_s"] / base, 3)
    out["ratio_backfill_cassandra_to_trivial_text"] = round(
        out["backfill_cassandra"]["records_per_s"] / out["trivial_read_from_text"]["records_per_s"],
        3,
    )
    if breakdown:
        previous = out["trivial_same_source"]["median_s"]
        out["breakdown_added_s"] = {}
        for name in BREAKDOWN:
            here = out[f"cut_{name}"]["median_s"]
            out["breakdown_added_s"][name.rsplit("_", 1)[-1] if name != "parse" else "parse"] = (
                round(here - previous, 2)
            )
            previous = here
        out["breakdown_added_s"]["sink_jsonl"] = round(
            out["backfill_jsonl"]["median_s"] - previous, 2
        )
        out["breakdown_added_s"]["sink_cassandra"] = round(
            out["backfill_cassandra"]["median_s"] - previous, 2
        )
    out["loadavg_during"] = loads
    out["loadavg_after"] = c.loadavg()
    return out


def report(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"backfill over files ({r['count']:,} records, {r['file_mb']} MB, FnApiRunner, median of {r['repeat']}):",
            f"  backfill -> Cassandra   {r['backfill_cassandra']['records_per_s']:>8,} records/s "
            f"(runs {r['backfill_cassandra']['runs_s']} s; rows match the reference: {r['cassandra_rows_match_reference']})",
            f"  backfill -> JSON Lines  {r['backfill_jsonl']['records_per_s']:>8,} records/s",
            f"  trivial, same source    {r['trivial_same_source']['records_per_s']:>8,} records/s",
            f"  trivial, ReadFromText   {r['trivial_read_from_text']['records_per_s']:>8,} records/s",
            f"  ratio backfill/trivial: {r['ratio_backfill_cassandra_to_trivial']:.1%} (Cassandra), "
            f"{r['ratio_backfill_jsonl_to_trivial']:.1%} (JSON Lines) (target >= 70 %)",
            f"  loadavg before {r['loadavg_before']}, during {r['loadavg_during']}, after {r['loadavg_after']}",
        ]
        + (
            [
                f"  seconds each step adds (median; trivial {r['trivial_same_source']['median_s']} s, cuts of the graph "
                f"with no sink, each sink on top of the whole graph): {r['breakdown_added_s']}"
            ]
            if "breakdown_added_s" in r
            else []
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="records in the file (20000)")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each pipeline, alternating (2)"
    )
    parser.add_argument("--no_breakdown", action="store_true", help="skip the per-composite cuts")
    args = parser.parse_args(argv)
    result = run(args.count, args.repeat, breakdown=not args.no_breakdown)
    print(report(result))
    path = c.write_results({"machine": c.machine(), "backfill": result}, f"backfill-{c.stamp()}")
    print(f"wrote {path}")
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
