"""A streaming job on Prism that only reads: the project's Kafka read (ReadFromKafka, the same splittable
DoFn, watermark and consumer-group commits as the real job) followed by a counting Map. Started by
bench_e2e.py as a subprocess to measure the read stage's own ceiling on Prism, between the raw
kafka-python rate and the full pipeline's.

  python bench/prism_read_only.py --bootstrap_servers=127.0.0.1:9092 --topic=T --group_id=G --run_seconds=120
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from beam_cxone import options as opts  # noqa: E402
from beam_cxone.commands.cmdline import runner_args  # noqa: E402
from beam_cxone.io.kafka import ReadFromKafka  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = runner_args(list(sys.argv[1:] if argv is None else argv), streaming=True)
    options = PipelineOptions(args)
    kafka = opts.kafka_config(options)
    run_seconds = options.view_as(opts.JobOptions).run_seconds or 120
    p = beam.Pipeline(options=options)
    (p | "ReadKafka" >> ReadFromKafka(kafka) | "Size" >> beam.Map(lambda r: len(r.payload or b"")))
    result = p.run()
    result.wait_until_finish(duration=int(run_seconds * 1000))
    try:
        result.cancel()
    except Exception:  # noqa: BLE001 - already finished
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
