"""Every row version a pipeline's table received, written to files and read back after the run.

Any runner whose workers share this machine's file system (DirectRunner, the FnApiRunner in one or
several processes, Prism with LOOPBACK or PROCESS workers) writes the same files, so one test body
runs on all of them: nothing is kept in a module of the test process.

The order of the versions is the order in which the sink saw them, as a Cassandra client would
write them: each line carries the sink's clock (`time.time_ns()`, one clock for every process of
the machine) and a counter of its writer, and the reader sorts on them. A later version of one
primary key is always produced after the earlier one was written (a key's versions come out of one
stateful step or one window's panes, in order), so the sort gives the upsert order Cassandra's
last-write-wins would apply.
"""

from __future__ import annotations

import glob
import json
import os
import time
import uuid

import apache_beam as beam

__all__ = ["WriteVersions", "read_versions"]


class _WriteVersionsFn(beam.DoFn):
    """One file per bundle: `<directory>/<table>/<uuid>.jsonl`, written when the bundle finishes."""

    def __init__(self, directory: str, table: str):
        self._directory = os.path.join(directory, table)
        self._lines: list[str] = []
        self._n = 0

    def setup(self):
        os.makedirs(self._directory, exist_ok=True)

    def start_bundle(self):
        self._lines = []

    def process(self, row):
        self._n += 1
        self._lines.append(json.dumps({"at": time.time_ns(), "n": self._n, "row": row}))

    def finish_bundle(self):
        if not self._lines:
            return
        path = os.path.join(self._directory, f"{uuid.uuid4().hex}.jsonl")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write("\n".join(self._lines) + "\n")
        os.replace(path + ".tmp", path)  # a file is whole or absent
        self._lines = []


class WriteVersions(beam.PTransform):
    """`pcoll | WriteVersions(directory, "table")`: every element as one version of a row."""

    def __init__(self, directory: str, table: str):
        super().__init__()
        self._directory, self._table = directory, table

    def expand(self, pcoll):
        return pcoll | beam.ParDo(_WriteVersionsFn(self._directory, self._table))


def read_versions(directory: str, table: str) -> list[dict]:
    """The rows `WriteVersions` wrote for `table`, in the order the sink saw them (JSON values:
    tuples come back as lists)."""
    stamped = []
    for path in glob.glob(os.path.join(directory, table, "*.jsonl")):
        with open(path, encoding="utf-8") as f:
            stamped += [json.loads(line) for line in f if line.strip()]
    stamped.sort(key=lambda s: (s["at"], s["n"]))
    return [s["row"] for s in stamped]
