"""Every row version a pipeline's table received, written to files and read back after the run.

Any runner whose workers share this machine's file system (DirectRunner, the FnApiRunner in one or
several processes, Prism with LOOPBACK or PROCESS workers) writes the same files, so one test body
runs on all of them: nothing is kept in a module of the test process.

Each bundle the sink sees becomes one file, its rows in arrival order, written when the bundle
finishes and named after the sink's clock at that moment (`time.time_ns()`, one clock for every
process of the machine). That is how the Cassandra writer (io/cassandra_write.py) applies rows: a
flush per bundle, where the rows of one primary key collapse to the last to arrive, and a later
flush wins. A later version of one key is produced after the bundle of the earlier one finished
(a key's versions come out of one keyed step, whose bundles run one after the other), so sorting
the files on their names gives the order of the flushes.
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
    """One file per bundle: `<directory>/<table>/<finish ns>-<uuid>.jsonl`."""

    def __init__(self, directory: str, table: str):
        self._directory = os.path.join(directory, table)
        self._lines: list[str] = []

    def setup(self):
        os.makedirs(self._directory, exist_ok=True)

    def start_bundle(self):
        self._lines = []

    def process(self, row):
        self._lines.append(json.dumps(row))

    def finish_bundle(self):
        if not self._lines:
            return
        path = os.path.join(self._directory, f"{time.time_ns():020d}-{uuid.uuid4().hex}.jsonl")
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


def read_versions(directory: str, table: str) -> list[list[dict]]:
    """The bundles `WriteVersions` wrote for `table`, in the order they finished, each a list of
    rows in arrival order (JSON values: tuples come back as lists)."""
    bundles = []
    for path in sorted(glob.glob(os.path.join(directory, table, "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            bundles.append([json.loads(line) for line in f if line.strip()])
    return bundles
