"""Backfill at archive scale: generated records in gzip files -> JSON Lines and -> Cassandra on the
backfill's runner set-up (FnApiRunner, one SDK worker process per core), against a trivial pipeline
over the same files on the same runner, in one run; the rows checked against tests/reference.py.

- trivial: `ReadJsonLines` (the file source: files spread over the workers, read in blocks) |
  Map(record -> (crc32 % 64, 1)) | CombinePerKey(sum): reads every record, parses nothing.
- backfill -> JSON Lines / -> Cassandra: `build_backfill` with a fresh checkpoint (the `backfill`
  command's graph: each file parsed and saved, then every table from the saved parses).
- `--in_memory`: the trivial pipeline and the JSON Lines backfill once more in one process, for the
  gain of the worker processes.

Each run is a fresh Pipeline in this process, timed from `run()` to the end of `wait_until_finish()`
(graph construction not timed); CPU seconds are this process's and its (waited) children's. The data
lives in `<cache>/bench/backfill-scale-<count>x<files>/` with a fixed modification time, so its rows
never change: the reference's rows are computed once (`tests/reference.py`, ~90 s per million
records) and kept beside it. Figures print with the 1-minute load average around each run: the
machine is shared, treat single-run differences under ~20 % as noise. Nothing here asserts a time.

Run: .venv/bin/python bench/bench_backfill_scale.py                       # 1,000,000 records
     .venv/bin/python bench/bench_backfill_scale.py --count 200000 --files 8 --in_memory
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
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
from beam_cxone.generator import generate  # noqa: E402
from beam_cxone.io.files import ReadJsonLines  # noqa: E402
from beam_cxone.pipelines.analytics import dead_letter_row  # noqa: E402
from beam_cxone.pipelines.file_backfill import FileBackfillPlan  # noqa: E402
from beam_cxone.pipelines.file_backfill import list_input_files  # noqa: E402
from beam_cxone.pipelines.jobs import SinkConfig  # noqa: E402
from beam_cxone.pipelines.jobs import build_backfill  # noqa: E402
from beam_cxone.runners.profiles import cache_dir  # noqa: E402
from beam_cxone.tables import TABLES  # noqa: E402

SEED = 13
FILE_MTIME_S = 1_796_000_000  # every input file's modification time: dead letters' recorded_at
DROP = {"interaction_volumes": {"updated_at"}, "pattern_alerts": {"detected_at", "alert_id"}}


# ----- data and the reference's rows ----------------------------------------------------------------


def data_dir(count: int, files: int) -> Path:
    return cache_dir() / "bench" / f"backfill-scale-{count}x{files}"


def prepare(count: int, files: int) -> tuple[str, Path]:
    """The gzip files (generated once, kept); their glob and folder."""
    folder = data_dir(count, files)
    done = folder / "complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        c.log(f"backfill_scale: generating {count:,} records into {files} gzip files in {folder}")
        per = -(-count // files)
        batch: list[bytes] = []
        index = 0

        def flush() -> None:
            nonlocal batch, index
            path = folder / f"part-{index:04d}.jsonl.gz"
            with gzip.GzipFile(path, "wb", compresslevel=6, mtime=0) as out:
                out.write(b"\n".join(batch) + b"\n")
            os.utime(path, (FILE_MTIME_S, FILE_MTIME_S))
            batch, index = [], index + 1

        for record in generate(GeneratorConfig(count=count, seed=SEED)):
            batch.append(record.value)
            if len(batch) == per:
                flush()
        if batch:
            flush()
        done.write_text("ok")
    return str(folder / "part-*.jsonl.gz"), folder


def _row_text(table: str, row: dict) -> str:
    from tests.reference import iso

    out = {}
    for name, cql_type in TABLES[table].columns:
        if name in DROP.get(table, ()):
            continue
        value = row[name]
        if cql_type == "timestamp" and isinstance(value, int):
            value = iso(value)
        out[name] = list(value) if isinstance(value, tuple) else value
    return json.dumps(out, sort_keys=True, ensure_ascii=False)


def expected(pattern: str, folder: Path) -> dict[str, list[str]]:
    """tests/reference.py's rows for the files (the first by source order counts), cached."""
    cached = folder / "expected.json"
    if cached.exists():
        return json.loads(cached.read_text())
    from tests.reference import raw_lines
    from tests.reference import reference

    c.log("backfill_scale: computing the reference's rows (once for this data)")
    raws = []
    for f in list_input_files(pattern):
        with gzip.open(f.path) as handle:
            lines = handle.read().split(b"\n")
        raws += [r.__class__(r.payload, r.source, f.mtime_ms, r.order)
                 for r in raw_lines(lines, name=f.path)]
    ref = reference(raws)
    rows = {t: ref[t] for t in ("interaction_volumes", "pattern_alerts", "customer_profiles")}
    rows["dead_letters"] = [dead_letter_row(d) for d in ref["dead_letters"]]
    out = {t: sorted(_row_text_ref(t, r) for r in rs) for t, rs in rows.items()}
    cached.write_text(json.dumps(out))
    return out


def _row_text_ref(table: str, row: dict) -> str:
    from tests.reference import iso

    out = {}
    for name, cql_type in TABLES[table].columns:
        if name in DROP.get(table, ()) or name not in row:
            continue
        value = row[name]
        out[name] = iso(value) if cql_type == "timestamp" and isinstance(value, int) else value
    return json.dumps(out, sort_keys=True, ensure_ascii=False)


def jsonl_rows(out: Path) -> dict[str, list[str]]:
    rows = {}
    for name in TABLES:
        lines = []
        for path in sorted(out.glob(f"{name}-*.jsonl")):
            lines += [json.loads(line) for line in path.read_text().splitlines() if line]
        rows[name] = sorted(_row_text(name, r) for r in lines)
    return rows


def cassandra_rows(ks) -> dict[str, list[str]]:
    with c.Rows(ks) as rows:
        return {name: sorted(_row_text(name, r) for r in rows.rows(name)) for name in TABLES}


def mismatches(got: dict[str, list[str]], want: dict[str, list[str]]) -> dict[str, str]:
    """Tables whose rows differ from the reference's, with the counts."""
    return {t: f"{len(got.get(t, []))} rows, reference {len(want[t])}"
            for t in want if got.get(t) != want[t]}


# ----- runs -------------------------------------------------------------------------------------------


def _cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _options(extra: list[str]) -> PipelineOptions:
    return PipelineOptions(runner_args(extra, streaming=False))


def timed(build, extra: list[str]) -> dict[str, float]:
    p = beam.Pipeline(options=_options(extra))
    build(p)
    load = os.getloadavg()[0]
    cpu, t0 = _cpu_s(), time.perf_counter()
    p.run().wait_until_finish()
    seconds = time.perf_counter() - t0
    return {"s": round(seconds, 2), "cpu_s": round(_cpu_s() - cpu, 1),
            "load": [round(load, 2), round(os.getloadavg()[0], 2)]}


def _small_key(record) -> tuple[int, int]:
    return zlib.crc32(record.payload) & 63, 1


def trivial(pattern: str):
    def build(p):
        (p | "ReadFiles" >> ReadJsonLines(pattern)
           | "KeyOf" >> beam.Map(_small_key)
           | "CountPerKey" >> beam.CombinePerKey(sum))

    return build


def backfill(files, sink: SinkConfig, checkpoint_dir: str):
    def build(p):
        build_backfill(p, AnalyticsConfig(), sink, plan=FileBackfillPlan(tuple(files),
                                                                          checkpoint_dir))

    return build


def run(count: int, files: int, repeat: int, workers: int | None, check: bool,
        in_memory: bool, cassandra: bool = True) -> dict[str, Any]:
    if cassandra:
        c.ensure_services()
    pattern, folder = prepare(count, files)
    inputs = list_input_files(pattern)
    want = expected(pattern, folder) if check else None
    extra = [f"--direct_num_workers={workers}"] if workers else []
    out: dict[str, Any] = {
        "benchmark": "backfill_scale", "count": count, "files": files, "repeat": repeat,
        "runner": " ".join(runner_args(extra, streaming=False)),
        "input_mb": round(sum(f.size for f in inputs) / 1e6, 1),
        "loadavg_before": c.loadavg(), "runs": {}, "rows_match_reference": {},
    }
    runs: dict[str, list[dict]] = out["runs"]
    with tempfile.TemporaryDirectory(prefix="bench-backfill-scale-") as tmp:
        ks_context = c.scratch_keyspace("scale") if cassandra else None
        ks = ks_context.__enter__() if ks_context else None
        try:
            for rep in range(repeat):
                plan = [("trivial", trivial(pattern), extra, None)]
                jsonl_out = Path(tmp) / f"jsonl-{rep}"
                plan.append(("backfill_jsonl", backfill(
                    inputs, SinkConfig(kind="jsonl", output_dir=str(jsonl_out)),
                    str(Path(tmp) / f"ck-jsonl-{rep}")), extra, jsonl_out))
                if cassandra:
                    plan.append(("backfill_cassandra", backfill(
                        inputs, SinkConfig(kind="cassandra", cassandra=ks),
                        str(Path(tmp) / f"ck-cass-{rep}")), extra, None))
                if in_memory:
                    mem = ["--direct_running_mode=in_memory"]
                    plan.append(("trivial_in_memory", trivial(pattern), mem, None))
                    mem_out = Path(tmp) / f"jsonl-mem-{rep}"
                    plan.append(("backfill_jsonl_in_memory", backfill(
                        inputs, SinkConfig(kind="jsonl", output_dir=str(mem_out)),
                        str(Path(tmp) / f"ck-mem-{rep}")), mem, mem_out))
                for name, build, flags, jsonl_dir in plan:
                    figures = timed(build, flags)
                    figures["records_per_s"] = round(count / figures["s"])
                    runs.setdefault(name, []).append(figures)
                    c.log(f"backfill_scale: {name} run {rep + 1}: {figures['records_per_s']:,} "
                          f"records/s ({figures['s']} s, {figures['cpu_s']} CPU-s, load "
                          f"{figures['load']})")
                    if want is not None and jsonl_dir is not None and rep == 0:
                        out["rows_match_reference"][name] = mismatches(
                            jsonl_rows(jsonl_dir), want) or True
            if want is not None and cassandra:
                out["rows_match_reference"]["backfill_cassandra"] = mismatches(
                    cassandra_rows(ks), want) or True
        finally:
            if ks_context:
                ks_context.__exit__(None, None, None)
    best = {name: max(r["records_per_s"] for r in rs) for name, rs in runs.items()}
    out["best_records_per_s"] = best
    out["ratio_to_trivial"] = {name: round(v / best["trivial"], 3) for name, v in best.items()
                               if name.startswith("backfill") and "in_memory" not in name}
    if in_memory:
        out["ratio_to_trivial"]["backfill_jsonl_in_memory"] = round(
            best["backfill_jsonl_in_memory"] / best["trivial_in_memory"], 3)
    out["loadavg_after"] = c.loadavg()
    return out


def report(r: dict[str, Any]) -> str:
    lines = [f"backfill at scale: {r['count']:,} records in {r['files']} gzip files "
             f"({r['input_mb']} MB), runner {r['runner']}; best of {r['repeat']}:"]
    for name, rs in r["runs"].items():
        runs = ", ".join(f"{x['s']} s / {x['cpu_s']} CPU-s (load {x['load'][0]}-{x['load'][1]})"
                         for x in rs)
        lines.append(f"  {name:<26} {r['best_records_per_s'][name]:>9,} records/s   [{runs}]")
    for name, ratio in r["ratio_to_trivial"].items():
        lines.append(f"  ratio {name} / trivial (same runner set-up): {ratio:.1%}")
    lines.append(f"  rows equal tests/reference.py: {r['rows_match_reference'] or 'not checked'}")
    lines.append(f"  loadavg before {r['loadavg_before']}, after {r['loadavg_after']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="records (1000000)")
    parser.add_argument("--files", type=int, default=20, help="gzip files they are split into (20)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each pipeline (1)")
    parser.add_argument("--workers", type=int, default=None,
                        help="--direct_num_workers (default: the runner profile's, every core)")
    parser.add_argument("--no_check", action="store_true", help="do not compare with the reference")
    parser.add_argument("--no_cassandra", action="store_true", help="skip the Cassandra sink")
    parser.add_argument("--in_memory", action="store_true",
                        help="also run the trivial pipeline and the JSON Lines backfill in one process")
    args = parser.parse_args(argv)
    result = run(args.count, args.files, args.repeat, args.workers, not args.no_check,
                 args.in_memory, cassandra=not args.no_cassandra)
    print(report(result))
    path = c.write_results({"machine": c.machine(), "backfill_scale": result},
                           f"backfill-scale-{c.stamp()}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
