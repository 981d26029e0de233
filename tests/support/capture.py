"""Captures rows from a pipeline running in this process (DirectRunner family), for exact comparisons.

A DoFn pickled from a test module would capture a copy of a test's list; this module-level store is
imported by reference instead. Each capture gets its own name, so tests do not see each other's rows.
"""

from __future__ import annotations

import collections
import threading
import uuid

import apache_beam as beam

_ROWS: dict[str, list] = collections.defaultdict(list)
_LOCK = threading.Lock()


class _CaptureFn(beam.DoFn):
    def __init__(self, name: str):
        self._name = name

    def process(self, element):
        with _LOCK:
            _ROWS[self._name].append(element)


class Capture:
    """`pcoll | capture.sink("label")`, then `capture.rows("label")` after the pipeline ran."""

    def __init__(self):
        self._prefix = uuid.uuid4().hex

    def sink(self, label: str) -> beam.ParDo:
        return beam.ParDo(_CaptureFn(f"{self._prefix}/{label}"))

    def rows(self, label: str) -> list:
        with _LOCK:
            return list(_ROWS.get(f"{self._prefix}/{label}", []))
