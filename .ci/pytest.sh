#!/usr/bin/env bash
# The test run behind `make test`: lint, then every tier (unit, pipeline, integration) in one pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check beam_cxone tests bench
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 tests
