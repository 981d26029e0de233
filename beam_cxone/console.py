"""What the command line prints besides its results.

`silence_beam_import_noise()` drops the one warning Beam's GCP modules log at import on a machine
without Google's client libraries (`apitools not found, and bigquery client libraries are not
available…`: nothing here uses BigQuery). It filters that message on the root logger, where Beam
logs it, and nothing else: every other warning still shows. The entry point calls it before
anything imports apache_beam.
"""

from __future__ import annotations

import logging

__all__ = ["BEAM_IMPORT_NOISE", "silence_beam_import_noise"]

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
