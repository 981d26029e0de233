"""The JSON Lines export of the result tables: one file set per table, named after it, for dry runs
and audits. Same column names as Cassandra; timestamps ISO-8601 UTC with milliseconds and `Z`; lists as
JSON arrays. Bounded pipelines only (a stream has no last file to close).

Rows are written in primary-key order, so two runs over the same input write the same files (only
the wall-clock stamps differ), whichever worker made which row: the rows of a table are gathered
(combined per worker first) and written as one sorted block."""

from __future__ import annotations

import json
import os

import apache_beam as beam

from beam_cxone.tables import Table
from beam_cxone.tables import iso_millis

__all__ = ["WriteJsonLines", "to_json_line"]


def to_json_line(table: Table, row: dict) -> str:
    """A row in the export format, columns in table order."""
    out = {}
    for name, cql_type in table.columns:
        value = row.get(name)
        if cql_type == "timestamp" and value is not None:
            value = iso_millis(value)
        out[name] = value
    return json.dumps(out, ensure_ascii=False, sort_keys=False)


class WriteJsonLines(beam.PTransform):
    """PCollection[row dict] -> `<output_dir>/<table>-SSSSS-of-NNNNN.jsonl`."""

    def __init__(self, output_dir: str, table: Table, num_shards: int = 1):
        super().__init__()
        if not output_dir:
            raise ValueError("output_dir is required for the jsonl sink")
        self._prefix = os.path.join(output_dir, table.name)
        self._table = table
        self._num_shards = num_shards

    def expand(self, rows):
        table = self._table
        return (rows
                | "ToJsonLine" >> beam.Map(lambda row: (_sort_key(table.key_of(row)),
                                                        to_json_line(table, row)))
                | "Gather" >> beam.combiners.ToList()
                | "SortedBlock" >> beam.FlatMap(_sorted_block)
                | "WriteFiles" >> beam.io.WriteToText(self._prefix, file_name_suffix=".jsonl",
                                                      num_shards=self._num_shards))


def _sort_key(key: tuple) -> tuple:
    """A primary key made orderable (a list column would not compare with a tuple)."""
    return tuple(tuple(v) if isinstance(v, list) else v for v in key)


def _sorted_block(keyed_lines: list[tuple[tuple, str]]) -> list[str]:
    """All lines of a table in key order as one element (WriteToText ends it with the last `\n`);
    nothing for no rows, so an empty table is an empty file."""
    if not keyed_lines:
        return []
    return ["\n".join(line for _, line in sorted(keyed_lines))]
