# shellcheck shell=bash
# Shared by stack/cassandra.sh and stack/cassandra-secure.sh, sourced after lib.sh: what starting one
# Cassandra node takes whatever its settings (templates rendered for its folder, the JVM started in
# the background, the wait for its own readiness check). The caller sets NAME, HERE, LIB_DIR,
# CASS_DIR, CONF_DIR, LOG_DIR, SYSTEM_LOG, CONSOLE_LOG, JAVA, HEAP, START_TIMEOUT and defines
# `ready` (log_ready and a real CQL round trip with its own credentials).

render() {  # render TEMPLATE: the committed templates' placeholders filled for this node's folder
  sed -e "s|@CASSANDRA_DIR@|$CASS_DIR|g" -e "s|@LIB_DIR@|$LIB_DIR|g" \
      -e "s|@CONF_DIR@|$CONF_DIR|g" -e "s|@HEAP@|$HEAP|g" "$1"
}

log_ready() {  # the node announced itself; "Startup complete" comes after the CQL listener
  grep -qE 'Startup complete|Starting listening for CQL clients' "$SYSTEM_LOG" 2>/dev/null
}

# launch_node [EXTRA_JVM_OPTION...]: start the node (its cassandra.yaml already written) and wait until
# `ready`; sets NODE_PID and NODE_START_S (seconds it took). On a failed start: the console's tail,
# the node stopped, status 1.
launch_node() {
  cp "$HERE/logback.xml" "$CONF_DIR/logback.xml"
  local -a jvm_opts
  mapfile -t jvm_opts < <(render "$HERE/jvm.options" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | grep -vE '^(#|$)')
  jvm_opts+=("$@")
  # Start-up markers of an earlier run must not count as this run's readiness.
  [[ -f "$SYSTEM_LOG" ]] && mv -f "$SYSTEM_LOG" "$SYSTEM_LOG.prev"

  log "starting $NAME $CASSANDRA_VERSION (heap $HEAP, logs in $LOG_DIR)"
  local t0=$SECONDS
  nohup "$JAVA" "${jvm_opts[@]}" -cp "$LIB_DIR/*" org.apache.cassandra.service.CassandraDaemon \
    >"$CONSOLE_LOG" 2>&1 </dev/null &
  NODE_PID=$!
  echo "$NODE_PID" > "$(pidfile "$NAME")"
  if ! WAIT_PID=$NODE_PID wait_until "$NAME" "$START_TIMEOUT" "$SYSTEM_LOG" ready; then
    log "console output ($CONSOLE_LOG):"; tail -n 20 "$CONSOLE_LOG" >&2 || true
    stop_pid "$NAME" 10 || true
    return 1
  fi
  NODE_START_S=$((SECONDS - t0))
}
