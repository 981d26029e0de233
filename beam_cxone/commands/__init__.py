"""`python -m beam_cxone [COMMAND] [OPTIONS]`: the commands, one module each.

  run (the default)  beam_cxone.commands.run       the job; --bounded/--stop_timestamp: a Kafka range backfill
  backfill           beam_cxone.commands.backfill  files or a Kafka range, in batch
  schema             beam_cxone.commands.schema    keyspace and tables
  generate           beam_cxone.commands.generate  a synthetic stream to Kafka or JSON Lines
  validate           beam_cxone.commands.validate  CXone credentials and resources
  report             beam_cxone.commands.report    what Cassandra holds, as text or PNG

argv is read in `beam_cxone.commands.cmdline` only; each command module has `main(argv) -> exit code`.
`--help` on each lists its options.
"""

from __future__ import annotations

import importlib
import logging
import sys

from beam_cxone.commands import cmdline
from beam_cxone.console import fail
from beam_cxone.redact import install as install_log_redaction

__all__ = ["FOREIGN_NOISE", "configure_logging", "main"]

# Messages Beam and Prism log as warnings on every run that are no news to a user of this product:
# (logger name, start of the message). Shown at --log_level=DEBUG.
FOREIGN_NOISE = (
    # Beam starts and stops the Prism binary (a local subprocess) on every run.
    ("apache_beam.utils.subprocess_server", "Really starting service at "),
    ("apache_beam.utils.subprocess_server", "Really destroying service at "),
    # Prism on the Kafka read's reshuffle of partitions, which it runs as a no-op.
    ("PrismRunner", "empty transform, with payload and identical input and output pcollection"),
)


class _ForeignNoise(logging.Filter):
    """Drops the FOREIGN_NOISE records at a handler (records of child loggers never pass the root
    logger's own filters), unless the root logger is at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger().level <= logging.DEBUG:
            return True
        message = record.getMessage()
        return not any(record.name == name and message.startswith(start) for name, start in FOREIGN_NOISE)


def configure_logging(level: str) -> None:
    # Beam's import already gave the root logger a stderr handler at WARNING, which makes basicConfig a
    # no-op: set the level on the root logger itself, and the format on its handlers.
    install_log_redaction()  # no known secret in any record, whoever logs it (beam_cxone.redact)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    root.setLevel(getattr(logging, level, logging.INFO))
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        if not any(isinstance(f, _ForeignNoise) for f in handler.filters):
            handler.addFilter(_ForeignNoise())
    # Beam and the drivers are chatty at INFO; their warnings still show.
    for noisy in ("apache_beam", "cassandra", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: list[str] | None = None) -> int:
    """Runs one command; its exit code (argparse's own exits, `--help` and usage errors, included)."""
    command, args = cmdline.split_command(sys.argv[1:] if argv is None else argv)
    if command is None:
        return fail("beam_cxone", f"unknown command {args[0]!r} (choose from "
                                  f"{', '.join(cmdline.COMMANDS)}; --help lists them)")
    configure_logging(cmdline.log_level(args))
    module = importlib.import_module(f"beam_cxone.commands.{command}")
    try:
        return module.main(args)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2), already printed
        return exit_.code if isinstance(exit_.code, int) else 2
