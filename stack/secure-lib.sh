#!/usr/bin/env bash
# Shared by the SECURED local services (stack/kafka-secure.sh, stack/cassandra-secure.sh), sourced
# after lib.sh, never run: their run folder, a throwaway CA with its certificates, and the
# credentials, all generated on first start under $RUN_DIR/secure (git-ignored, mode 0700/0600).
#
#   $SECURE_DIR/tls/      ca.pem (trust this), server.p12 (the services' key and chain, valid 30 days,
#                         SAN IP:127.0.0.1 and DNS:localhost), expired.p12 (the same name, expired in
#                         2020: Kafka's EXPIRED listener), other-ca.pem (a CA that signed nothing:
#                         "unknown CA"), truststore.p12 (ca.pem for Java)
#   $SECURE_DIR/client.env  what a client needs: the KAFKA_* and CASSANDRA_* variables of the job
#                         (`set -a; . .stack/secure/client.env; set +a`), plus SECURE_* addresses
#   $SECURE_DIR/internal.env  the services' own secrets: keystore password, Kafka's inter-broker user
#
# Nothing here is a production secret: the CA key is thrown away with the folder (`clean`).
# Secrets never go on a command line (ps): files, environment variables and java @argfiles only.

SECURE_DIR="$RUN_DIR/secure"
TLS_DIR="$SECURE_DIR/tls"
CLIENT_ENV="$SECURE_DIR/client.env"
INTERNAL_ENV="$SECURE_DIR/internal.env"
JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
KEYTOOL="$JAVA_HOME/bin/keytool"
# The ports of the secured twins: the shared plaintext services keep 9092/9093 and 9042/7000/7001.
SECURE_KAFKA_PORT="${SECURE_KAFKA_PORT:-9192}"
SECURE_KAFKA_CONTROLLER_PORT="${SECURE_KAFKA_CONTROLLER_PORT:-9193}"
SECURE_KAFKA_EXPIRED_PORT="${SECURE_KAFKA_EXPIRED_PORT:-9194}"
SECURE_CASSANDRA_PORT="${SECURE_CASSANDRA_PORT:-9142}"
SECURE_CASSANDRA_STORAGE_PORT="${SECURE_CASSANDRA_STORAGE_PORT:-7100}"
SECURE_CASSANDRA_SSL_STORAGE_PORT="${SECURE_CASSANDRA_SSL_STORAGE_PORT:-7101}"
CERT_DAYS=30

umask 077
mkdir -p "$SECURE_DIR"
chmod 700 "$SECURE_DIR"

_random_secret() {  # 24 url-safe characters, from the kernel's CSPRNG
  head -c 18 /dev/urandom | base64 | tr '+/' '-_'
}

# secure_setup: the CA, certificates and credentials, once (under a lock: both services start at once).
secure_setup() {
  (
    flock -x 9
    _ensure_tls
    _ensure_secrets
  ) 9>"$SECURE_DIR/.setup.lock"
}

_ensure_tls() {
  # Regenerated when missing or when the server certificate ends within 2 days.
  if [[ -f "$TLS_DIR/.complete" ]] \
      && openssl x509 -checkend 172800 -noout -in "$TLS_DIR/server.pem" >/dev/null 2>&1; then
    return 0
  fi
  [[ -x "$KEYTOOL" ]] || { log "no keytool at $KEYTOOL"; return 1; }
  log "generating a throwaway CA and certificates in $TLS_DIR"
  rm -rf "$TLS_DIR"; mkdir -p "$TLS_DIR"
  local d="$TLS_DIR" ext="subjectAltName=IP:127.0.0.1,DNS:localhost"
  local storepass; storepass="$(_random_secret)"
  printf '%s\n' "$storepass" > "$d/.storepass"
  # The CA, and one that never signs anything (a client trusting only it sees an unknown CA).
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$CERT_DAYS" -subj "/CN=beam_cxone test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$CERT_DAYS" -subj "/CN=some other CA" \
    -keyout "$d/other-ca.key" -out "$d/other-ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  rm -f "$d/other-ca.key"
  # The services' key and certificate.
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf '%s\n' "$ext" "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" > "$d/server.ext"
  openssl x509 -req -sha256 -days "$CERT_DAYS" -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
    -CAcreateserial -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
  openssl pkcs12 -export -name server -inkey "$d/server.key" -in "$d/server.pem" -certfile "$d/ca.pem" \
    -passout "file:$d/.storepass" -out "$d/server.p12"
  # The same name, expired: openssl 3.0 cannot back-date, keytool can (-startdate).
  openssl pkcs12 -export -name ca -inkey "$d/ca.key" -in "$d/ca.pem" \
    -passout "file:$d/.storepass" -out "$d/ca.p12"
  "$KEYTOOL" -gencert -keystore "$d/ca.p12" -storetype PKCS12 -alias ca -storepass:file "$d/.storepass" \
    -infile "$d/server.csr" -outfile "$d/expired.pem" -rfc -startdate 2020/01/01 -validity 2 \
    -ext "san=ip:127.0.0.1,dns:localhost" -ext "eku=serverAuth,clientAuth" 2>/dev/null
  openssl pkcs12 -export -name server -inkey "$d/server.key" -in "$d/expired.pem" -certfile "$d/ca.pem" \
    -passout "file:$d/.storepass" -out "$d/expired.p12"
  "$KEYTOOL" -importcert -noprompt -alias ca -file "$d/ca.pem" -keystore "$d/truststore.p12" \
    -storetype PKCS12 -storepass:file "$d/.storepass" >/dev/null 2>&1
  rm -f "$d/server.csr" "$d/server.ext" "$d/ca.p12" "$d/ca.srl"
  chmod 600 "$d"/*
  chmod 644 "$d/ca.pem" "$d/other-ca.pem" "$d/server.pem" "$d/expired.pem"
  touch "$d/.complete"
}

_ensure_secrets() {
  if [[ ! -f "$INTERNAL_ENV" ]]; then
    {
      echo "KAFKA_ADMIN_USERNAME=broker-admin"
      echo "KAFKA_ADMIN_PASSWORD=$(_random_secret)"
      echo "CASSANDRA_ADMIN_PASSWORD=$(_random_secret)"
    } > "$INTERNAL_ENV"
  fi
  if [[ ! -f "$CLIENT_ENV" ]]; then
    {
      echo "# Settings of the secured local services: set -a; . $CLIENT_ENV; set +a"
      echo "KAFKA_SECURITY_PROTOCOL=SASL_SSL"
      echo "KAFKA_SASL_MECHANISM=SCRAM-SHA-512"
      echo "KAFKA_SASL_PLAIN_USERNAME=beam-cxone"
      echo "KAFKA_SASL_PLAIN_PASSWORD=$(_random_secret)"
      echo "KAFKA_SSL_CAFILE=$TLS_DIR/ca.pem"
      echo "CASSANDRA_USERNAME=beam_cxone"
      echo "CASSANDRA_PASSWORD=$(_random_secret)"
      echo "SECURE_KAFKA_BOOTSTRAP=127.0.0.1:$SECURE_KAFKA_PORT"
      echo "SECURE_KAFKA_EXPIRED_BOOTSTRAP=127.0.0.1:$SECURE_KAFKA_EXPIRED_PORT"
      echo "SECURE_CASSANDRA_PORT=$SECURE_CASSANDRA_PORT"
      echo "SECURE_CA_FILE=$TLS_DIR/ca.pem"
      echo "SECURE_OTHER_CA_FILE=$TLS_DIR/other-ca.pem"
    } > "$CLIENT_ENV"
  fi
  chmod 600 "$INTERNAL_ENV" "$CLIENT_ENV"
}

# secure_env: exports the credentials into this shell (never echoed).
secure_env() {
  set -a
  # shellcheck disable=SC1090
  . "$INTERNAL_ENV"
  # shellcheck disable=SC1090
  . "$CLIENT_ENV"
  set +a
  STOREPASS="$(cat "$TLS_DIR/.storepass")"
}
