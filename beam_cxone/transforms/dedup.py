"""The batch dedup rule: of the copies of one eventId, the first in source order counts.

Batch has no arrival order worth trusting after a shuffle, so it keeps the copy that came first in its
source (file and line, or partition and offset): the same "first seen" a stream in that order gives.
`transforms/batch.py` applies it per dedup bucket. Streaming needs no step of its own (see
`parse_route`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["first_copies"]


def first_copies(entries: Iterable[tuple[Any, tuple]]) -> tuple[dict[str, tuple[Any, tuple]], int]:
    """eventId -> (source order, record) of its copy first in source order; and how many entries
    there were. Entries are (source order, compact record), the record's eventId first."""
    first: dict[str, tuple[Any, tuple]] = {}
    seen = 0
    for entry in entries:
        seen += 1
        event_id = entry[1][0]
        kept = first.get(event_id)
        if kept is None or entry[0] < kept[0]:
            first[event_id] = entry
    return first, seen
