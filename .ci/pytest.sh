#!/usr/bin/env bash
# The test run behind `make test`: lint, then every tier (unit, pipeline, integration) in one pytest run;
# then no process the run started may still be running (a Prism job server was once left behind).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check beam_cxone tests bench

# Every process pytest starts inherits this marker (tests/integration/conftest.py stops them at the
# end of the session; the stack's services are started without it). Only pytest gets it, not this shell.
run_id="pytest-$$-$RANDOM$RANDOM"
status=0
BEAM_CXONE_TEST_RUN=$run_id .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 tests \
  || status=$?

survivors() {
  local environ pid
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    if grep -qzxF "BEAM_CXONE_TEST_RUN=$run_id" "$environ" 2>/dev/null; then
      echo "$pid"
    fi
  done
}

left=$(survivors)
if [ -n "$left" ]; then
  echo "[pytest.sh] FAILED: processes started by the test run outlived it (now stopped):"
  # shellcheck disable=SC2086
  ps -o pid,ppid,etime,args -p "$(echo $left | tr ' ' ',')" || true
  # shellcheck disable=SC2086
  kill -TERM $left 2>/dev/null || true
  sleep 5
  left=$(survivors)
  # shellcheck disable=SC2086
  [ -z "$left" ] || kill -KILL $left 2>/dev/null || true
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
