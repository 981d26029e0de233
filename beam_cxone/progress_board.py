"""Live counts from pipeline workers to the launcher, across processes: a directory of small files.

The backfill's progress meter (`beam_cxone.backfill`) needs counts while the pipeline runs, and the
FnApiRunner's workers are other processes when it uses every core (Beam reports metrics only at the
end). Each counting DoFn instance owns one file, `<directory>/<slot>.<unique id>`, holding its
cumulative count, replaced atomically at most every `interval_s` and at the end of each bundle; the
launcher sums the files of a slot. A count only ever grows; a worker that dies leaves its last count.
Runners whose workers do not share the launcher's filesystem count nothing (the final figures come
from Beam's metrics).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

__all__ = ["BoardCounter", "read_board"]


class BoardCounter:
    """One worker-side count of a slot; `add` is cheap, `flush` writes it."""

    def __init__(self, directory: str | None, slot: str, interval_s: float = 0.5):
        self._path = Path(directory) / f"{slot}.{uuid.uuid4().hex}" if directory else None
        self._interval_s = interval_s
        self._count = 0
        self._written = -1
        self._last = time.monotonic()

    def add(self, n: int = 1) -> None:
        self._count += n
        if self._path is not None and time.monotonic() - self._last >= self._interval_s:
            self.flush()

    def flush(self) -> None:
        if self._path is None or self._count == self._written:
            return
        self._last = time.monotonic()
        tmp = self._path.with_name("." + self._path.name + ".tmp")
        try:
            tmp.write_text(str(self._count), encoding="ascii")
            os.replace(tmp, self._path)
            self._written = self._count
        except OSError:  # the board is gone (the run ended) or not shared: counts are best effort
            self._path = None


def read_board(directory: str | os.PathLike | None, slot: str) -> int:
    """The sum of a slot's counts on the board."""
    if directory is None:
        return 0
    total = 0
    for path in Path(directory).glob(f"{slot}.*"):
        if path.name.endswith(".tmp"):
            continue
        with contextlib.suppress(OSError, ValueError):
            total += int(path.read_text(encoding="ascii") or 0)
    return total
