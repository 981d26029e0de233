#!/usr/bin/env bash
# Shared helpers for the local stack scripts: paths, pid files, readiness waits.
# Sourced, never run. Every service binds to 127.0.0.1 and is stopped by its own pid.
set -euo pipefail

STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$STACK_DIR/.." && pwd)"
# shellcheck source=versions.env
source "$STACK_DIR/versions.env"

# Downloads are cached once per machine, outside the repository.
CACHE_DIR="${BEAM_CXONE_CACHE:-$HOME/.cache/beam_cxone}"
# Service data, logs and pid files live in the checkout's .stack/ (git-ignored).
RUN_DIR="${STACK_RUN_DIR:-$REPO_DIR/.stack}"
mkdir -p "$CACHE_DIR" "$RUN_DIR"

log() { printf '[stack] %s\n' "$*" >&2; }

pidfile() { echo "$RUN_DIR/$1.pid"; }

is_running() {
  local pf; pf="$(pidfile "$1")"
  [[ -f "$pf" ]] && kill -0 "$(cat "$pf")" 2>/dev/null
}

# wait_until NAME TIMEOUT_S LOGFILE CMD...: polls CMD every second; on timeout prints the
# service's last log lines and fails, so a broken start names its own cause.
wait_until() {
  local name="$1" timeout="$2" logfile="$3"; shift 3
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - start >= timeout )); then
      log "$name not ready after ${timeout}s; last log lines of $logfile:"
      tail -n 40 "$logfile" >&2 2>/dev/null || true
      return 1
    fi
    if [[ -n "${WAIT_PID:-}" ]] && ! kill -0 "$WAIT_PID" 2>/dev/null; then
      log "$name exited during start-up; last log lines of $logfile:"
      tail -n 40 "$logfile" >&2 2>/dev/null || true
      return 1
    fi
    sleep 1
  done
  log "$name ready in $((SECONDS - start))s"
}

# stop_pid NAME [GRACE_S]: TERM, then KILL after the grace period.
stop_pid() {
  local name="$1" grace="${2:-30}" pf pid
  pf="$(pidfile "$name")"
  [[ -f "$pf" ]] || { log "$name: not running"; return 0; }
  pid="$(cat "$pf")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq "$grace"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && { log "$name: KILL after ${grace}s"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$pf"
  log "$name stopped"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# port_holder PORT: " by pid N (name, the stack of CHECKOUT)" for the process listening on PORT, as
# far as ss and /proc tell (nothing when they cannot); the checkout is read from the `.stack/` paths
# on the process's command line, where this project's services keep their data.
port_holder() {
  local line pid name dir
  line="$(ss -ltnpH "sport = :$1" 2>/dev/null | head -n1)" || true
  pid="$(sed -n 's/.*pid=\([0-9][0-9]*\).*/\1/p' <<<"$line")"
  [[ -n "$pid" ]] || return 0
  name="$(sed -n 's/.*(("\([^"]*\)".*/\1/p' <<<"$line")"
  dir="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -o '/[^ =:]*/\.stack/' | head -n1 | sed -e 's#^//*#/#' -e 's#/\.stack/$##')" || true
  if [[ -z "$dir" ]]; then
    printf ' by pid %s (%s)' "$pid" "${name:-?}"
  elif [[ "$dir" == "$REPO_DIR" ]]; then
    printf " by pid %s (%s, this checkout's own service without its pid file: stop it by that pid)" "$pid" "${name:-?}"
  else
    printf ' by pid %s (%s, the stack of %s: `make stack-down` there)' "$pid" "${name:-?}" "$dir"
  fi
}

# require_free_ports NAME WAY_OUT PORT...: fails with one line naming the first port that something
# already listens on, who holds it and WAY_OUT, before a service starts and dies on a bind error.
require_free_ports() {
  local name="$1" way_out="$2" port; shift 2
  for port in "$@"; do
    if port_open "$port"; then
      log "$name not started: 127.0.0.1:$port is in use$(port_holder "$port"); $way_out"
      return 1
    fi
  done
}
