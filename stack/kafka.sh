#!/usr/bin/env bash
# Apache Kafka 4.x, single-node KRaft, on 127.0.0.1:9092. Usage: stack/kafka.sh {fetch|start|stop|status}
source "$(dirname "$0")/lib.sh"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"
KAFKA_RUN="$RUN_DIR/kafka"
KAFKA_LOG="$KAFKA_RUN/logs/server.log"

fetch() {
  [[ -f "$KAFKA_LIBS/.complete" ]] && return 0
  log "fetching Kafka $KAFKA_VERSION classpath with mvn"
  mkdir -p "$KAFKA_LIBS"
  mvn -q -B -f "$STACK_DIR/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
  touch "$KAFKA_LIBS/.complete"
}

java_cmd() {
  # JAVA_EXEC=exec (in the background start) replaces the subshell, so $! is the broker's own pid
  # and `stop` signals the broker, not a wrapper shell.
  ${JAVA_EXEC:-} java -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$KAFKA_RUN/logs" -Dlog4j2.configurationFile="$STACK_DIR/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

start() {
  if is_running kafka; then log "kafka already running (pid $(cat "$(pidfile kafka)"))"; return 0; fi
  require_free_ports kafka "stop it, or run this stack on free ports: KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19093 make stack-up" \
    "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"
  fetch
  mkdir -p "$KAFKA_RUN/data" "$KAFKA_RUN/logs"
  sed -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
      -e "s#@DATA_DIR@#$KAFKA_RUN/data#g" "$STACK_DIR/kafka/server.properties.template" > "$KAFKA_RUN/server.properties"
  if [[ ! -f "$KAFKA_RUN/data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(python3 -c 'import base64,os;print(base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="))')"
    java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_RUN/server.properties" >"$KAFKA_RUN/logs/format.log" 2>&1 \
      || { tail -n 20 "$KAFKA_RUN/logs/format.log" >&2; return 1; }
  fi
  : > "$KAFKA_LOG"
  JAVA_EXEC=exec java_cmd kafka.Kafka "$KAFKA_RUN/server.properties" >"$KAFKA_RUN/logs/stdout.log" 2>&1 < /dev/null &
  echo $! > "$(pidfile kafka)"
  WAIT_PID=$! wait_until kafka 90 "$KAFKA_LOG" grep -q "Kafka Server started" "$KAFKA_LOG"
  WAIT_PID=$! wait_until kafka-metadata 30 "$KAFKA_LOG" "$STACK_DIR/../.venv/bin/python" -c \
    "from kafka import KafkaAdminClient as A; a=A(bootstrap_servers='127.0.0.1:$KAFKA_PORT'); assert a.describe_cluster()['brokers']"
}

status() {
  if is_running kafka; then echo "kafka: running (pid $(cat "$(pidfile kafka)"), 127.0.0.1:$KAFKA_PORT)"; else echo "kafka: stopped"; fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop_pid kafka 30 ;;
  status) status ;;
  *) echo "usage: $0 {fetch|start|stop|status}" >&2; exit 2 ;;
esac
