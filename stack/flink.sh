#!/usr/bin/env bash
# Apache Flink standalone cluster (version from versions.env): one JobManager and one TaskManager
# (2 slots) on 127.0.0.1, REST/web UI on 127.0.0.1:8081. FLINK_HOME comes from PyPI's apache-flink
# and apache-flink-libraries wheels, installed into $CACHE_DIR (never into the project's venv:
# apache-flink pins an old apache-beam).
#   stack/flink.sh fetch       install the two packages into $CACHE_DIR/flink-<version> (once)
#   stack/flink.sh start       fetch if needed, start JobManager + TaskManager, wait for free slots
#   stack/flink.sh start-tm2   add a second TaskManager (2 more slots) to the running cluster
#   stack/flink.sh stop        stop every TaskManager and the JobManager
#   stack/flink.sh status      running / not running (exit 0 / 3), pids, slots, RSS
# Env: FLINK_TM_MEMORY (TaskManager process size, default 1536m), FLINK_JM_MEMORY (default 1024m),
#      FLINK_START_TIMEOUT (default 90 s), JAVA_HOME (default /usr/lib/jvm/java-17-openjdk-amd64),
#      PYTHON (the pip used by fetch; default .venv/bin/python, else python3).
# The memory settings apply at start; conf, logs and tmp live in $RUN_DIR/flink.
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

REST_PORT=8081
RPC_PORT=6123
HERE="$STACK_DIR/flink"
INSTALL_DIR="$CACHE_DIR/flink-$FLINK_VERSION"
WHEEL_DIR="$CACHE_DIR/flinkwheels"
FETCH_MARKER="$INSTALL_DIR/.fetched"
export FLINK_HOME="$INSTALL_DIR/pyflink"
FLINK_RUN="$RUN_DIR/flink"
export FLINK_CONF_DIR="$FLINK_RUN/conf"
export FLINK_LOG_DIR="$FLINK_RUN/log"
export FLINK_PID_DIR="$FLINK_RUN/pids"
export FLINK_IDENT_STRING=stack
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
JM_MEMORY="${FLINK_JM_MEMORY:-1024m}"
TM_MEMORY="${FLINK_TM_MEMORY:-1536m}"
START_TIMEOUT="${FLINK_START_TIMEOUT:-90}"
# Flink's own pid files (one line per instance) and ours in $RUN_DIR (one pid each).
FLINK_JM_PIDS="$FLINK_PID_DIR/flink-$FLINK_IDENT_STRING-standalonesession.pid"
FLINK_TM_PIDS="$FLINK_PID_DIR/flink-$FLINK_IDENT_STRING-taskexecutor.pid"
JM=flink-jobmanager
TM=flink-taskmanager
TM2=flink-taskmanager2

pip_python() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"
  elif [[ -x "$REPO_DIR/.venv/bin/python" ]]; then echo "$REPO_DIR/.venv/bin/python"
  else command -v python3; fi
}

fetch() {
  if [[ -f "$FETCH_MARKER" && -x "$FLINK_HOME/bin/jobmanager.sh" && -f "$FLINK_HOME/lib/flink-dist-$FLINK_VERSION.jar" ]]; then
    log "flink $FLINK_VERSION: already installed in $FLINK_HOME"
    return 0
  fi
  local py; py="$(pip_python)"
  local -a pkgs=("apache-flink==$FLINK_VERSION" "apache-flink-libraries==$FLINK_VERSION")
  mkdir -p "$WHEEL_DIR"
  if ls "$WHEEL_DIR"/apache_flink-"$FLINK_VERSION"-*.whl "$WHEEL_DIR"/apache_flink_libraries-"$FLINK_VERSION"[.-]* >/dev/null 2>&1; then
    log "flink $FLINK_VERSION: packages already downloaded in $WHEEL_DIR"
  else
    log "flink $FLINK_VERSION: downloading the PyPI packages into $WHEEL_DIR (~230 MB)"
    "$py" -m pip download -q --no-deps -d "$WHEEL_DIR" "${pkgs[@]}"
  fi
  log "flink $FLINK_VERSION: installing into $INSTALL_DIR"
  rm -rf "$INSTALL_DIR"
  "$py" -m pip install -q --no-deps --no-compile --target "$INSTALL_DIR" --find-links "$WHEEL_DIR" "${pkgs[@]}"
  [[ -x "$FLINK_HOME/bin/jobmanager.sh" && -f "$FLINK_HOME/lib/flink-dist-$FLINK_VERSION.jar" ]] \
    || { log "no complete FLINK_HOME in $FLINK_HOME after install"; return 1; }
  date -u +%FT%TZ > "$FETCH_MARKER"
  log "flink $FLINK_VERSION: FLINK_HOME=$FLINK_HOME ($(du -sh "$INSTALL_DIR" | cut -f1))"
}

write_conf() {
  mkdir -p "$FLINK_CONF_DIR" "$FLINK_LOG_DIR" "$FLINK_PID_DIR" "$FLINK_RUN/tmp"
  # The shipped logging configs (log4j.properties is the daemons'; INFO to the log file).
  cp "$FLINK_HOME"/conf/log4j*.properties "$FLINK_HOME"/conf/logback*.xml "$FLINK_CONF_DIR"/
  sed -e "s|@FLINK_RUN@|$FLINK_RUN|g" -e "s|@JM_MEMORY@|$JM_MEMORY|g" -e "s|@TM_MEMORY@|$TM_MEMORY|g" \
    "$HERE/config.yaml" > "$FLINK_CONF_DIR/config.yaml"
}

# overview_field NAME: a numeric field of GET /overview (empty when the REST API does not answer).
overview_field() {
  curl -s --max-time 3 "http://127.0.0.1:$REST_PORT/overview" 2>/dev/null \
    | grep -oE "\"$1\":[0-9]+" | head -n1 | cut -d: -f2
}
slots_at_least() { local n; n="$(overview_field slots-available)"; [[ -n "$n" ]] && (( n >= $1 )); }
tms_at_least() { local n; n="$(overview_field taskmanagers)"; [[ -n "$n" ]] && (( n >= $1 )); }

# record NAME FLINK_PIDFILE LINE: copy the pid Flink wrote (LINE-th instance) into $RUN_DIR/NAME.pid.
record() {
  local pid; pid="$(sed -n "${3}p" "$2" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || { log "$1: no pid in line $3 of $2"; return 1; }
  echo "$pid" > "$(pidfile "$1")"
}

log_of() {  # log_of DAEMON INDEX: the log file flink-daemon.sh writes for that instance
  echo "$FLINK_LOG_DIR/flink-$FLINK_IDENT_STRING-$1-$2-${HOSTNAME:-$(hostname)}.log"
}

start_tm() {  # start_tm NAME INDEX: one more TaskManager; INDEX = its line in Flink's pid file
  local name="$1" index="$2" want_tms="$2"
  if is_running "$name"; then log "$name already running (pid $(cat "$(pidfile "$name")"))"; return 0; fi
  rm -f "$(pidfile "$name")"
  "$FLINK_HOME/bin/taskmanager.sh" start >/dev/null
  # Flink appends one line per instance; ours is the last one.
  local line; line="$(wc -l < "$FLINK_TM_PIDS")"
  record "$name" "$FLINK_TM_PIDS" "$line"
  local pid; pid="$(cat "$(pidfile "$name")")"
  (( line == index )) || log "note: $name is instance $line in $FLINK_TM_PIDS"
  local t0=$SECONDS
  local tm_log; tm_log="$(log_of taskexecutor "$((line - 1))")"
  WAIT_PID=$pid wait_until "$name" "$START_TIMEOUT" "$tm_log" tms_at_least "$want_tms" || return 1
  WAIT_PID=$pid wait_until "$name slots" "$START_TIMEOUT" "$tm_log" slots_at_least 1 || return 1
  log "$name up: pid $pid, $((SECONDS - t0))s, $(overview_field taskmanagers) TaskManager(s), $(overview_field slots-available)/$(overview_field slots-total) slots free"
}

start() {
  if is_running "$JM" && is_running "$TM"; then
    log "flink already running (JobManager pid $(cat "$(pidfile "$JM")"), TaskManager pid $(cat "$(pidfile "$TM")"), http://127.0.0.1:$REST_PORT)"
    return 0
  fi
  [[ -x "$JAVA_HOME/bin/java" ]] || { log "no java at $JAVA_HOME/bin/java"; return 1; }
  fetch
  local t0=$SECONDS
  # Half a cluster (one of the two died): stop what is left and start both afresh, so that the
  # readiness check never counts the slots of a dead TaskManager the JobManager still remembers.
  if is_running "$JM" || is_running "$TM" || is_running "$TM2"; then
    log "flink is only partly running; restarting it"
    stop
  fi
  rm -f "$(pidfile "$JM")" "$(pidfile "$TM")" "$(pidfile "$TM2")"
  local port
  for port in "$REST_PORT" "$RPC_PORT"; do
    if port_open "$port"; then log "port $port is already in use by another process; not starting flink"; return 1; fi
  done
  rm -f "$FLINK_JM_PIDS" "$FLINK_TM_PIDS"
  write_conf
  log "starting flink $FLINK_VERSION JobManager ($JM_MEMORY) and TaskManager ($TM_MEMORY), logs in $FLINK_LOG_DIR"
  "$FLINK_HOME/bin/jobmanager.sh" start >/dev/null
  record "$JM" "$FLINK_JM_PIDS" 1
  local jm_pid; jm_pid="$(cat "$(pidfile "$JM")")"
  WAIT_PID=$jm_pid wait_until "$JM" "$START_TIMEOUT" "$(log_of standalonesession 0)" \
    curl -sf --max-time 3 "http://127.0.0.1:$REST_PORT/overview" \
    || { stop; return 1; }
  start_tm "$TM" 1 || { stop; return 1; }
  log "flink up on http://127.0.0.1:$REST_PORT in $((SECONDS - t0))s"
}

start_tm2() {
  if ! { is_running "$JM" && is_running "$TM"; }; then
    log "start the cluster first (stack/flink.sh start)"; return 1
  fi
  start_tm "$TM2" 2
}

stop() {
  if [[ -x "$FLINK_HOME/bin/taskmanager.sh" && -d "$FLINK_CONF_DIR" ]]; then
    [[ -f "$FLINK_TM_PIDS" ]] && { "$FLINK_HOME/bin/taskmanager.sh" stop-all >/dev/null || true; }
    [[ -f "$FLINK_JM_PIDS" ]] && { "$FLINK_HOME/bin/jobmanager.sh" stop-all >/dev/null || true; }
  fi
  # Whatever Flink's scripts left behind (they KILL after 10 s themselves).
  stop_pid "$TM2" 20; stop_pid "$TM" 20; stop_pid "$JM" 20
  rm -f "$FLINK_JM_PIDS" "$FLINK_TM_PIDS"
}

rss_mb() { echo $(( $(ps -o rss= -p "$1" 2>/dev/null | tr -d ' ' || echo 0) / 1024 )); }

status() {
  local name any=0
  for name in "$JM" "$TM" "$TM2"; do
    if is_running "$name"; then
      any=1; local pid; pid="$(cat "$(pidfile "$name")")"
      echo "$name: running (pid $pid, RSS $(rss_mb "$pid") MB)"
    elif [[ "$name" != "$TM2" ]]; then
      echo "$name: not running"
    fi
  done
  if (( any )) && [[ -n "$(overview_field slots-total)" ]]; then
    echo "flink REST http://127.0.0.1:$REST_PORT: $(overview_field taskmanagers) TaskManager(s), $(overview_field slots-available)/$(overview_field slots-total) slots free, $(overview_field jobs-running) job(s) running"
  else
    echo "flink REST http://127.0.0.1:$REST_PORT: not answering"
  fi
  is_running "$JM" && is_running "$TM" || return 3
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  start-tm2) start_tm2 ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  *) echo "usage: $0 {fetch|start|start-tm2|stop|status|restart}" >&2; exit 2 ;;
esac
