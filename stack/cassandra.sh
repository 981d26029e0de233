#!/usr/bin/env bash
# Apache Cassandra single node (version from versions.env) on Java 17, bound to 127.0.0.1:9042.
#   stack/cassandra.sh fetch    copy cassandra-all and its runtime jars into $CACHE_DIR (once)
#   stack/cassandra.sh start    fetch if needed, start in the background, wait for a real CQL query
#   stack/cassandra.sh stop     TERM, KILL after 60 s
#   stack/cassandra.sh status   running / not running (exit 0 / 3), pid, port, RSS
# Env: CASSANDRA_HEAP (default 1G), CASSANDRA_START_TIMEOUT (default 180 s),
#      JAVA_HOME (default /usr/lib/jvm/java-17-openjdk-amd64), PYTHON (default .venv/bin/python).
# Data, logs and the generated conf live in $RUN_DIR/cassandra; delete that folder to start empty.
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
# shellcheck source=cassandra-node.sh
source "$STACK_DIR/cassandra-node.sh"

NAME=cassandra
NATIVE_PORT=9042
HERE="$STACK_DIR/cassandra"
STORAGE_PORT="$(sed -n 's/^storage_port: *\([0-9]*\)$/\1/p' "$HERE/cassandra.yaml")"
HOME_DIR="$CACHE_DIR/cassandra-$CASSANDRA_VERSION"
LIB_DIR="$HOME_DIR/lib"
FETCH_MARKER="$HOME_DIR/.fetched"
CASS_DIR="$RUN_DIR/cassandra"
CONF_DIR="$CASS_DIR/conf"
LOG_DIR="$CASS_DIR/logs"
SYSTEM_LOG="$LOG_DIR/system.log"
CONSOLE_LOG="$LOG_DIR/console.log"
JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
JAVA="$JAVA_HOME/bin/java"
PYTHON="${PYTHON:-$REPO_DIR/.venv/bin/python}"
HEAP="${CASSANDRA_HEAP:-1G}"
START_TIMEOUT="${CASSANDRA_START_TIMEOUT:-180}"

fetch() {
  if [[ -f "$FETCH_MARKER" ]] && ls "$LIB_DIR"/cassandra-all-"$CASSANDRA_VERSION".jar >/dev/null 2>&1; then
    log "$NAME $CASSANDRA_VERSION: jars already in $LIB_DIR"
    return 0
  fi
  command -v mvn >/dev/null || { log "mvn not found"; return 1; }
  log "$NAME $CASSANDRA_VERSION: copying runtime jars into $LIB_DIR"
  rm -rf "$LIB_DIR"; mkdir -p "$LIB_DIR"
  # -q still leaves stray ANSI resets on Maven 3.8: strip them, keep real errors (pipefail keeps mvn's status).
  mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -Dcassandra.version="$CASSANDRA_VERSION" -DoutputDirectory="$LIB_DIR" 2>&1 \
    | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2
  local jamm; jamm="$(find "$LIB_DIR" -maxdepth 1 -name 'jamm-*.jar' | head -n1)"
  [[ -n "$jamm" ]] || { log "no jamm jar in $LIB_DIR"; return 1; }
  [[ "$(basename "$jamm")" == jamm-0.4.0.jar ]] \
    || log "warning: jamm is $(basename "$jamm"); update the -javaagent line of $HERE/jvm.options"
  date -u +%FT%TZ > "$FETCH_MARKER"
  log "$NAME: $(find "$LIB_DIR" -maxdepth 1 -name '*.jar' | wc -l) jars, $(du -sh "$LIB_DIR" | cut -f1)"
}

cql_ok() {  # a real CQL round trip through the project's driver
  "$PYTHON" - "$NATIVE_PORT" <<'PY'
import sys
from cassandra.cluster import Cluster
cluster = Cluster(["127.0.0.1"], port=int(sys.argv[1]), connect_timeout=5)
try:
    row = cluster.connect().execute("SELECT release_version FROM system.local", timeout=10).one()
    print(row.release_version)
finally:
    cluster.shutdown()
PY
}

ready() { log_ready && cql_ok; }

start() {
  if is_running "$NAME"; then
    log "$NAME already running (pid $(cat "$(pidfile "$NAME")"), 127.0.0.1:$NATIVE_PORT)"
    return 0
  fi
  rm -f "$(pidfile "$NAME")"
  require_free_ports "$NAME" "stop it (this script's ports, CQL $NATIVE_PORT and storage $STORAGE_PORT, are fixed)" \
    "$NATIVE_PORT" "$STORAGE_PORT"
  [[ -x "$JAVA" ]] || { log "no java at $JAVA"; return 1; }
  [[ -x "$PYTHON" ]] || { log "no python at $PYTHON (needed for the CQL readiness check)"; return 1; }
  fetch

  mkdir -p "$CONF_DIR" "$LOG_DIR" "$CASS_DIR"/{data,commitlog,saved_caches,hints,cdc_raw,triggers,tmp}
  render "$HERE/cassandra.yaml" > "$CONF_DIR/cassandra.yaml"
  launch_node || return 1
  log "$NAME up on 127.0.0.1:$NATIVE_PORT, pid $NODE_PID, ${NODE_START_S}s, release $(cql_ok 2>/dev/null)"
}

stop() { stop_pid "$NAME" 60; }

status() {
  if is_running "$NAME"; then
    local pid; pid="$(cat "$(pidfile "$NAME")")"
    local rss; rss="$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ')"
    local cql="not answering"; port_open "$NATIVE_PORT" && cql="listening"
    echo "$NAME: running (pid $pid, CQL 127.0.0.1:$NATIVE_PORT $cql, RSS $((${rss:-0} / 1024)) MB)"
  else
    echo "$NAME: not running (CQL port $NATIVE_PORT)"
    return 3
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  *) echo "usage: $0 {fetch|start|stop|status|restart}" >&2; exit 2 ;;
esac
