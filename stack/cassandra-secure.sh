#!/usr/bin/env bash
# A SECURED twin of stack/cassandra.sh: a Cassandra node whose clients must log in (PasswordAuthenticator,
# CassandraAuthorizer) over TLS (client_encryption_options, not optional) on 127.0.0.1:9142; storage
# ports 7100/7101, its own data, no JMX (like the shared node, which uses 9042 and 7000/7001).
#   stack/cassandra-secure.sh start | stop | status | clean   (clean: stop and delete its data)
# The client role of client.env gets every permission on every keyspace (it creates the schema); the
# built-in `cassandra` superuser keeps only a random password (internal.env). The CA, certificates and
# passwords: stack/secure-lib.sh (.stack/secure/). The cassandra.yaml is the shared node's template
# with its ports, authentication and TLS changed here, so both stay the same node otherwise.
# Env: CASSANDRA_SECURE_HEAP (default 768M), CASSANDRA_START_TIMEOUT (default 180 s), JAVA_HOME, PYTHON.
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
# shellcheck source=secure-lib.sh
source "$STACK_DIR/secure-lib.sh"
# shellcheck source=cassandra-node.sh
source "$STACK_DIR/cassandra-node.sh"

NAME=cassandra-secure
HERE="$STACK_DIR/cassandra"
LIB_DIR="$CACHE_DIR/cassandra-$CASSANDRA_VERSION/lib"
CASS_DIR="$SECURE_DIR/cassandra"
CONF_DIR="$CASS_DIR/conf"
LOG_DIR="$CASS_DIR/logs"
SYSTEM_LOG="$LOG_DIR/system.log"
CONSOLE_LOG="$LOG_DIR/console.log"
JAVA="$JAVA_HOME/bin/java"
PYTHON="${PYTHON:-$REPO_DIR/.venv/bin/python}"
HEAP="${CASSANDRA_SECURE_HEAP:-768M}"
START_TIMEOUT="${CASSANDRA_START_TIMEOUT:-180}"
RUN_DIR="$SECURE_DIR"  # pid file .stack/secure/cassandra-secure.pid

write_config() {
  local yaml="$CONF_DIR/cassandra.yaml"
  render "$HERE/cassandra.yaml" | sed \
    -e "s|^cluster_name: .*|cluster_name: 'beam_cxone secure'|" \
    -e "s|^storage_port: 7000\$|storage_port: $SECURE_CASSANDRA_STORAGE_PORT|" \
    -e "s|^ssl_storage_port: 7001\$|ssl_storage_port: $SECURE_CASSANDRA_SSL_STORAGE_PORT|" \
    -e "s|^native_transport_port: 9042\$|native_transport_port: $SECURE_CASSANDRA_PORT|" \
    -e "s|org.apache.cassandra.auth.AllowAllAuthenticator|org.apache.cassandra.auth.PasswordAuthenticator|" \
    -e "s|^authorizer: AllowAllAuthorizer\$|authorizer: CassandraAuthorizer|" > "$yaml"
  # The template changed under us: better no node than one on the shared node's ports, or open.
  local want
  for want in "storage_port: $SECURE_CASSANDRA_STORAGE_PORT" "ssl_storage_port: $SECURE_CASSANDRA_SSL_STORAGE_PORT" \
      "native_transport_port: $SECURE_CASSANDRA_PORT" "PasswordAuthenticator" "authorizer: CassandraAuthorizer"; do
    grep -q "$want" "$yaml" || { log "$yaml: could not set '$want' (stack/cassandra/cassandra.yaml changed?)"; return 1; }
  done
  cat >> "$yaml" <<EOF

# ---- stack/cassandra-secure.sh: clients must use TLS (no plaintext fallback) and log in.
client_encryption_options:
    enabled: true
    optional: false
    keystore: $TLS_DIR/server.p12
    keystore_password: "$STOREPASS"
    truststore: $TLS_DIR/truststore.p12
    truststore_password: "$STOREPASS"
    store_type: PKCS12
    require_client_auth: false
    accepted_protocols: [TLSv1.2, TLSv1.3]
EOF
  chmod 600 "$yaml"
}

# A CQL round trip as the client role over TLS; on the first start, the role is created first (as the
# built-in superuser, whose default password is then replaced). Credentials come from the environment.
roles_ready() {
  "$PYTHON" - <<'PY'
import os, ssl, sys
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable

def session(user, password):
    context = ssl.create_default_context(cafile=os.environ["SECURE_CA_FILE"])
    cluster = Cluster(["127.0.0.1"], port=int(os.environ["SECURE_CASSANDRA_PORT"]), protocol_version=5,
                      auth_provider=PlainTextAuthProvider(user, password), ssl_context=context,
                      connect_timeout=5, control_connection_timeout=5)
    return cluster, cluster.connect()

def refused(err):
    return isinstance(err, NoHostAvailable) and all(
        isinstance(e, AuthenticationFailed) for e in err.errors.values())

user, password = os.environ["CASSANDRA_USERNAME"], os.environ["CASSANDRA_PASSWORD"]
admin_password = os.environ["CASSANDRA_ADMIN_PASSWORD"]
cluster = s = None
login_refused = False
try:
    cluster, s = session(user, password)
    granted = {(r.resource, r.permission) for r in s.execute("LIST ALL PERMISSIONS OF %s" % user)}
    if ("<all keyspaces>", "CREATE") not in granted:
        cluster.shutdown()
        cluster = None
except NoHostAvailable as err:
    if not refused(err):
        raise
    login_refused = True
if cluster is None:  # first start, or the role is not set up completely: as the superuser
    admin = None
    for candidate in (admin_password, "cassandra"):
        try:
            admin, a = session("cassandra", candidate)
            break
        except NoHostAvailable as err2:
            if not refused(err2):
                raise
    if admin is None:
        sys.exit("neither the stack's nor the default password of role cassandra works")
    if a.execute("SELECT role FROM system_auth.roles WHERE role = %s", [user]).one() is None:
        a.execute("CREATE ROLE %s WITH PASSWORD = %%s AND LOGIN = true" % user, [password])
    elif login_refused:  # client.env was made anew while the data stayed
        a.execute("ALTER ROLE %s WITH PASSWORD = %%s" % user, [password])
    a.execute("GRANT ALL PERMISSIONS ON ALL KEYSPACES TO %s" % user)
    if candidate != admin_password:
        a.execute("ALTER ROLE cassandra WITH PASSWORD = %s", [admin_password])
    admin.shutdown()
    cluster, s = session(user, password)
try:
    print(s.execute("SELECT release_version FROM system.local", timeout=10).one().release_version)
finally:
    cluster.shutdown()
PY
}

ready() { log_ready && roles_ready; }

start() {
  if is_running "$NAME"; then
    log "$NAME already running (pid $(cat "$(pidfile "$NAME")"), 127.0.0.1:$SECURE_CASSANDRA_PORT)"
    return 0
  fi
  rm -f "$(pidfile "$NAME")"
  require_free_ports "$NAME" "stop it, or set SECURE_CASSANDRA_PORT, SECURE_CASSANDRA_STORAGE_PORT, SECURE_CASSANDRA_SSL_STORAGE_PORT" \
    "$SECURE_CASSANDRA_PORT" "$SECURE_CASSANDRA_STORAGE_PORT" "$SECURE_CASSANDRA_SSL_STORAGE_PORT"
  [[ -x "$JAVA" ]] || { log "no java at $JAVA"; return 1; }
  [[ -x "$PYTHON" ]] || { log "no python at $PYTHON (needed for the readiness check)"; return 1; }
  bash "$STACK_DIR/cassandra.sh" fetch
  secure_setup
  secure_env
  mkdir -p "$CONF_DIR" "$LOG_DIR" "$CASS_DIR"/{data,commitlog,saved_caches,hints,cdc_raw,triggers,tmp}
  write_config
  # The built-in superuser at once, not after the default 10 s.
  launch_node "-Dcassandra.superuser_setup_delay_ms=0" || return 1
  log "$NAME up: TLS + password on 127.0.0.1:$SECURE_CASSANDRA_PORT, pid $NODE_PID, ${NODE_START_S}s; client settings in $CLIENT_ENV"
}

status() {
  if is_running "$NAME"; then
    local pid; pid="$(cat "$(pidfile "$NAME")")"
    echo "$NAME: running (pid $pid, CQL over TLS 127.0.0.1:$SECURE_CASSANDRA_PORT)"
  else
    echo "$NAME: not running (CQL port $SECURE_CASSANDRA_PORT)"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop_pid "$NAME" 60 ;;
  status) status ;;
  clean) stop_pid "$NAME" 60; rm -rf "$CASS_DIR" ;;
  *) echo "usage: $0 {start|stop|status|clean}" >&2; exit 2 ;;
esac
