"""What the command line prints besides its results.

`fail(prog, message)` is how every command refuses or fails: one line `prog: message` on stderr, and
exit code 2 (argparse's own for a usage error, so every "not done" shares it).

`silence_beam_import_noise()` drops the one warning Beam's GCP modules log at import on a machine
without Google's client libraries (`apitools not found, and bigquery client libraries are not
available…`: nothing here uses BigQuery). It filters that message on the root logger, where Beam
logs it, and nothing else: every other warning still shows. The entry point calls it before
anything imports apache_beam.

`held_logs(name)` holds back what a library logs while a command connects: passed on once the block
succeeds, dropped when it raises. The Cassandra driver logs every failed connection attempt with its
traceback before it raises NoHostAvailable, whose message (each host and its error) the command
prints as its one line.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

__all__ = ["BEAM_IMPORT_NOISE", "EXIT_INVALID", "fail", "held_logs", "silence_beam_import_noise"]

EXIT_INVALID = 2


def fail(prog: str, message: str) -> int:
    """Prints `prog: message` on stderr; returns the exit code of a command that did not do its job."""
    print(f"{prog}: {message}", file=sys.stderr)
    return EXIT_INVALID

# Logged by apache_beam.io.gcp.internal.clients.bigquery through `logging.warning` (the root logger).
BEAM_IMPORT_NOISE = "apitools not found, and bigquery client libraries are not available"


class _BeamImportNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name == "root"
            and isinstance(record.msg, str)
            and record.msg.startswith(BEAM_IMPORT_NOISE)
        )


def silence_beam_import_noise() -> None:
    """Installs the filter on the root logger (once, however often it is called)."""
    root = logging.getLogger()
    if not any(isinstance(f, _BeamImportNoise) for f in root.filters):
        root.addFilter(_BeamImportNoise())


class _Hold(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def held_logs(name: str) -> Iterator[None]:
    """What logger `name` (and its children) logs inside the block: passed on as usual after the block,
    or dropped when the block raises."""
    logger = logging.getLogger(name)
    hold, propagate = _Hold(), logger.propagate
    logger.addHandler(hold)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(hold)
        logger.propagate = propagate
    for record in hold.records:  # only reached when the block did not raise
        logging.getLogger(record.name).handle(record)
