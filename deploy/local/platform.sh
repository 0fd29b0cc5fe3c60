#!/usr/bin/env bash
# Local platform for development and tests: a single-node KRaft Apache Kafka 3.9 broker
# (run from Maven Central jars), a redis-server with AOF and the identity provider
# (Keycloak, from Maven Central), all on 127.0.0.1, with a private certificate authority
# that issues every TLS certificate of the platform (deploy/local/lib/pki.sh).
#
#   platform.sh install            install the Debian packages the project needs
#   platform.sh fetch              resolve the Kafka broker jars and Keycloak with Maven (cached)
#   platform.sh start [options]    make certificates, start Kafka, Redis and Keycloak, wait until
#                                  each answers
#   platform.sh stop               stop them cleanly
#   platform.sh status             report whether each one is up and answering
#   platform.sh clean              stop them and delete their data, keys and certificates
#   platform.sh env                print the shell exports that point clients at them
#
# start options (all optional; a port of 0 or none means "pick a free one"):
#   --kafka-port N  --controller-port N  --redis-port N  --keycloak-port N
#   --only LIST     start only these of kafka,redis,keycloak (e.g. a test's private broker)
#
# Every command is idempotent: install skips installed packages, fetch skips a complete
# cache, start on a running platform only reports it, stop on a stopped one does nothing.
#
# Environment:
#   CLINICAL_PLATFORM_DIR   state folder (data, logs, pids, certificates, secrets, platform.env);
#                           default: a per-user folder under ${TMPDIR:-/tmp}
#   CLINICAL_CACHE_DIR      where the Kafka jars and Keycloak are cached (outside the repository);
#                           default: ${XDG_CACHE_HOME:-$HOME/.cache}/clinical-platform
#   KAFKA_HEAP_MAX          JVM heap ceiling for the broker (default 512m, never more)
#   KEYCLOAK_JAVA_HOME      a JDK 21+ for Keycloak (default: the newest under /usr/lib/jvm)
set -euo pipefail

readonly SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly KAFKA_VERSION="3.9.2"  # keep in step with deploy/local/kafka/pom.xml
readonly STATE_DIR="${CLINICAL_PLATFORM_DIR:-${TMPDIR:-/tmp}/clinical-platform-$(id -u)}"
readonly CACHE_DIR="${CLINICAL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clinical-platform}"
readonly KAFKA_LIBS="${CACHE_DIR}/kafka-${KAFKA_VERSION}/libs"
readonly KAFKA_HEAP_MAX="${KAFKA_HEAP_MAX:-512m}"

# Build, run and test dependencies, all from Debian bookworm.
readonly DEBIAN_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git python3
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  librdkafka-dev libhiredis-dev libabsl-dev libssl-dev libcurl4-openssl-dev libjwt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev
  redis-server redis-tools kcat openssl curl
  docker-compose python3-venv
  openjdk-17-jre-headless maven golang-go
)

log() { printf '[platform] %s\n' "$*" >&2; }
die() { printf '[platform] error: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# shellcheck source=lib/pki.sh
source "${SCRIPT_DIR}/lib/pki.sh"
# shellcheck source=lib/keycloak.sh
source "${SCRIPT_DIR}/lib/keycloak.sh"

# --- install -------------------------------------------------------------------------

cmd_install() {
  local missing=()
  local pkg
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    # Java and Go may come with the machine image instead of Debian; accept either.
    case "${pkg}" in
      openjdk-17-jre-headless) command -v java >/dev/null && continue ;;
      maven) command -v mvn >/dev/null && continue ;;
      golang-go) command -v go >/dev/null && continue ;;
    esac
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("${pkg}")
  done
  if ((${#missing[@]} == 0)); then
    log "all Debian packages present"
    return
  fi
  log "installing: ${missing[*]}"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  ${sudo} apt-get update -qq
  DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  log "installed ${#missing[@]} package(s)"
}

# --- fetch ---------------------------------------------------------------------------

fetch_kafka() {
  if [[ -f "${KAFKA_LIBS}/.complete" ]]; then
    log "Kafka ${KAFKA_VERSION} jars cached in ${KAFKA_LIBS}"
    return
  fi
  command -v mvn >/dev/null || die "maven is not installed (run: $0 install)"
  log "resolving Kafka ${KAFKA_VERSION} from Maven Central into ${KAFKA_LIBS}"
  local tmp="${KAFKA_LIBS}.partial"
  rm -rf "${tmp}"
  mkdir -p "${tmp}"
  # -q keeps CI logs short; a failure still prints Maven's error.
  mvn -q -B -Dstyle.color=never -f "${SCRIPT_DIR}/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="${tmp}" >&2
  ls "${tmp}"/kafka_2.13-"${KAFKA_VERSION}".jar >/dev/null ||
    die "Maven did not deliver kafka_2.13-${KAFKA_VERSION}.jar"
  touch "${tmp}/.complete"
  rm -rf "${KAFKA_LIBS}"
  mv "${tmp}" "${KAFKA_LIBS}"
  log "cached $(ls "${KAFKA_LIBS}" | wc -l) jars"
}

cmd_fetch() {
  fetch_kafka
  keycloak_fetch
}

# --- helpers -------------------------------------------------------------------------

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

state_value() {  # state_value KEY -> value from platform.env, or empty
  [[ -f "${STATE_DIR}/platform.env" ]] || return 0
  sed -n "s/^export $1=//p" "${STATE_DIR}/platform.env"
}

kafka_answers() {  # a metadata round trip, not just an open port
  kcat -b "$1" -L -m 3 -J 2>/dev/null | grep -q '"brokers":\[{'
}

redis_answers() {
  [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == "PONG" ]]
}

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
  local deadline=$(($(date +%s) + $1)) what="$2"
  shift 2
  until "$@"; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.2
  done
  log "${what} answers"
}

# --- start ---------------------------------------------------------------------------

write_kafka_config() {  # write_kafka_config PORT CONTROLLER_PORT
  cat >"${STATE_DIR}/kafka/server.properties" <<EOF
# Generated by deploy/local/platform.sh; one combined KRaft broker+controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$2
listeners=PLAINTEXT://127.0.0.1:$1,CONTROLLER://127.0.0.1:$2
advertised.listeners=PLAINTEXT://127.0.0.1:$1
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${STATE_DIR}/kafka/data
# One broker: every internal topic must accept replication factor and min ISR of 1,
# otherwise transactional producers can never initialise.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
default.replication.factor=1
min.insync.replicas=1
# Topics are created explicitly with their retention settings (docs/architecture.md).
auto.create.topics.enable=false
num.partitions=12
group.initial.rebalance.delay.ms=0
# Events are kept forever; the project's topics also set this per topic.
log.retention.ms=-1
log.retention.bytes=-1
EOF
}

start_kafka() {  # start_kafka PORT CONTROLLER_PORT
  [[ -f "${KAFKA_LIBS}/.complete" ]] || die "Kafka jars missing (run: $0 fetch)"
  mkdir -p "${STATE_DIR}/kafka/data"
  write_kafka_config "$1" "$2"
  local java_opts=(-Xms128m "-Xmx${KAFKA_HEAP_MAX}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -Djava.awt.headless=true "-Dlog4j.configuration=file:${SCRIPT_DIR}/kafka/log4j.properties"
    "-Dkafka.logs.dir=${STATE_DIR}/kafka")
  if [[ ! -f "${STATE_DIR}/kafka/data/meta.properties" ]]; then
    local cluster_id
    # The id is URL-safe base64 and may start with "-", hence --cluster-id=VALUE below.
    cluster_id="$(python3 -c 'import base64,uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
    java "${java_opts[@]}" -cp "${KAFKA_LIBS}/*" kafka.tools.StorageTool format \
      --cluster-id="${cluster_id}" -c "${STATE_DIR}/kafka/server.properties" --ignore-formatted \
      >"${STATE_DIR}/kafka/format.log" 2>&1 || die "formatting Kafka storage failed: $(tail -5 "${STATE_DIR}/kafka/format.log")"
  fi
  # setsid: the broker must outlive this script and not receive the terminal's signals.
  setsid java "${java_opts[@]}" -cp "${KAFKA_LIBS}/*" kafka.Kafka \
    "${STATE_DIR}/kafka/server.properties" >"${STATE_DIR}/kafka/stdout.log" 2>&1 </dev/null &
  echo $! >"${STATE_DIR}/kafka.pid"
}

start_redis() {  # start_redis PORT
  mkdir -p "${STATE_DIR}/redis"
  redis-server --bind 127.0.0.1 --port "$1" --dir "${STATE_DIR}/redis" \
    --appendonly yes --appendfsync everysec --save "" \
    --daemonize yes --pidfile "${STATE_DIR}/redis.pid" \
    --logfile "${STATE_DIR}/redis/redis.log" >/dev/null
}

cmd_start() {
  local kafka_port="" controller_port="" redis_port="" keycloak_port="" keycloak_management_port=""
  local only="kafka,redis,keycloak"
  while (($#)); do
    case "$1" in
      --kafka-port) kafka_port="$2"; shift 2 ;;
      --controller-port) controller_port="$2"; shift 2 ;;
      --redis-port) redis_port="$2"; shift 2 ;;
      --keycloak-port) keycloak_port="$2"; shift 2 ;;
      --only) only="$2"; shift 2 ;;
      *) die "unknown option: $1" ;;
    esac
  done
  local want_kafka=0 want_redis=0 want_keycloak=0 component
  for component in ${only//,/ }; do
    case "${component}" in
      kafka) want_kafka=1 ;;
      redis) want_redis=1 ;;
      keycloak) want_keycloak=1 ;;
      *) die "unknown component for --only: ${component}" ;;
    esac
  done
  mkdir -p "${STATE_DIR}/kafka"
  if { ((!want_kafka)) || pid_alive "${STATE_DIR}/kafka.pid"; } && { ((!want_redis)) || pid_alive "${STATE_DIR}/redis.pid"; } &&
    { ((!want_keycloak)) || pid_alive "${STATE_DIR}/keycloak.pid"; }; then
    log "already running"
    cmd_status
    return
  fi
  cmd_stop_quiet
  # A restart keeps the ports recorded earlier so clients' addresses stay valid.
  [[ -n "${kafka_port}" && "${kafka_port}" != 0 ]] || kafka_port="$(state_value CLINICAL_KAFKA_PORT)"
  [[ -n "${controller_port}" && "${controller_port}" != 0 ]] || controller_port="$(state_value CLINICAL_KAFKA_CONTROLLER_PORT)"
  [[ -n "${redis_port}" && "${redis_port}" != 0 ]] || redis_port="$(state_value CLINICAL_REDIS_PORT)"
  [[ -n "${keycloak_port}" && "${keycloak_port}" != 0 ]] || keycloak_port="$(state_value CLINICAL_KEYCLOAK_PORT)"
  keycloak_management_port="$(state_value CLINICAL_KEYCLOAK_MANAGEMENT_PORT)"
  [[ -n "${kafka_port}" ]] || kafka_port="$(free_port)"
  [[ -n "${controller_port}" ]] || controller_port="$(free_port)"
  [[ -n "${redis_port}" ]] || redis_port="$(free_port)"
  [[ -n "${keycloak_port}" ]] || keycloak_port="$(free_port)"
  [[ -n "${keycloak_management_port}" ]] || keycloak_management_port="$(free_port)"

  local started
  started="$(now_ms)"
  pki_ensure "${STATE_DIR}/pki"
  # Keycloak first: it takes longest, and the others start while it boots.
  ((want_keycloak)) && keycloak_start "${keycloak_port}" "${keycloak_management_port}"
  ((want_kafka)) && start_kafka "${kafka_port}" "${controller_port}"
  ((want_redis)) && start_redis "${redis_port}"
  if ((want_redis)); then
    wait_until 30 "redis 127.0.0.1:${redis_port}" redis_answers "${redis_port}" ||
      die "redis did not answer; see ${STATE_DIR}/redis/redis.log"
  fi
  if ((want_kafka)); then
    wait_until 90 "kafka 127.0.0.1:${kafka_port}" kafka_answers "127.0.0.1:${kafka_port}" ||
      die "kafka did not answer; see ${STATE_DIR}/kafka/stdout.log"
  fi
  if ((want_keycloak)); then
    wait_until 150 "keycloak https://127.0.0.1:${keycloak_port}" keycloak_started "${keycloak_management_port}" ||
      die "keycloak did not become ready; see ${STATE_DIR}/keycloak/keycloak.log and stdout.log"
  fi

  local pki="${STATE_DIR}/pki"
  cat >"${STATE_DIR}/platform.env" <<EOF
export CLINICAL_KAFKA_BOOTSTRAP=127.0.0.1:${kafka_port}
export CLINICAL_KAFKA_PORT=${kafka_port}
export CLINICAL_KAFKA_CONTROLLER_PORT=${controller_port}
export CLINICAL_REDIS_HOST=127.0.0.1
export CLINICAL_REDIS_PORT=${redis_port}
export CLINICAL_PLATFORM_DIR=${STATE_DIR}
export CLINICAL_KAFKA_LIBS=${KAFKA_LIBS}
export CLINICAL_PKI_DIR=${pki}
export CLINICAL_TLS_CA_FILE=${pki}/ca.crt
export CLINICAL_KEYCLOAK_PORT=${keycloak_port}
export CLINICAL_KEYCLOAK_MANAGEMENT_PORT=${keycloak_management_port}
export CLINICAL_OIDC_ISSUER=$(keycloak_issuer "${keycloak_port}")
export CLINICAL_OIDC_AUDIENCE=clinical-api
export CLINICAL_OIDC_CA_FILE=${pki}/ca.crt
export CLINICAL_OIDC_USER_CLAIM=clinical_user_id
export CLINICAL_OIDC_ROLES_CLAIM=realm_access.roles
export CLINICAL_OIDC_TENANT_CLAIM=tenant
EOF
  log "started in $(($(now_ms) - started)) ms"
  log "kafka     127.0.0.1:${kafka_port} (KRaft controller 127.0.0.1:${controller_port}, Kafka ${KAFKA_VERSION})"
  log "redis     127.0.0.1:${redis_port} (AOF on)"
  log "keycloak  $(keycloak_issuer "${keycloak_port}") (Keycloak ${KEYCLOAK_VERSION}; people's password: ${STATE_DIR}/secrets/demo-users.password)"
  log "certs     ${pki} (CA: ca.crt)"
  log "state     ${STATE_DIR}   env: source ${STATE_DIR}/platform.env"
}

# --- stop / status -------------------------------------------------------------------

stop_pid() {  # stop_pid PIDFILE NAME GRACE_SECONDS
  pid_alive "$1" || { rm -f "$1"; return 0; }
  local pid
  pid="$(cat "$1")"
  kill -TERM "${pid}" 2>/dev/null || true
  local deadline=$(($(date +%s) + $3))
  while kill -0 "${pid}" 2>/dev/null; do
    if (($(date +%s) >= deadline)); then
      log "$2 did not stop within $3 s; killing"
      kill -KILL "${pid}" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$1"
  log "$2 stopped"
}

cmd_stop_quiet() {
  stop_pid "${STATE_DIR}/keycloak.pid" keycloak 30
  stop_pid "${STATE_DIR}/kafka.pid" kafka 30
  stop_pid "${STATE_DIR}/redis.pid" redis 15
}

cmd_stop() {
  cmd_stop_quiet
  log "platform stopped (data kept in ${STATE_DIR}; remove it for a clean start)"
}

cmd_clean() {
  cmd_stop_quiet
  rm -rf "${STATE_DIR}"
  log "removed ${STATE_DIR}"
}

cmd_status() {
  local rc=0 kafka_port redis_port
  kafka_port="$(state_value CLINICAL_KAFKA_PORT)"
  redis_port="$(state_value CLINICAL_REDIS_PORT)"
  if pid_alive "${STATE_DIR}/kafka.pid" && [[ -n "${kafka_port}" ]] && kafka_answers "127.0.0.1:${kafka_port}"; then
    echo "kafka: up at 127.0.0.1:${kafka_port} (pid $(cat "${STATE_DIR}/kafka.pid"))"
  else
    echo "kafka: down"; rc=1
  fi
  if pid_alive "${STATE_DIR}/redis.pid" && [[ -n "${redis_port}" ]] && redis_answers "${redis_port}"; then
    echo "redis: up at 127.0.0.1:${redis_port} (pid $(cat "${STATE_DIR}/redis.pid"))"
  else
    echo "redis: down"; rc=1
  fi
  local keycloak_port keycloak_management_port
  keycloak_port="$(state_value CLINICAL_KEYCLOAK_PORT)"
  keycloak_management_port="$(state_value CLINICAL_KEYCLOAK_MANAGEMENT_PORT)"
  if pid_alive "${STATE_DIR}/keycloak.pid" && [[ -n "${keycloak_management_port}" ]] &&
    keycloak_answers "${keycloak_management_port}"; then
    echo "keycloak: up at $(keycloak_issuer "${keycloak_port}") (pid $(cat "${STATE_DIR}/keycloak.pid"))"
  else
    echo "keycloak: down"; rc=1
  fi
  return "${rc}"
}

cmd_env() {
  [[ -f "${STATE_DIR}/platform.env" ]] || die "platform not started (state: ${STATE_DIR})"
  cat "${STATE_DIR}/platform.env"
}

main() {
  local cmd="${1:-}"
  shift || true
  case "${cmd}" in
    install) cmd_install ;;
    fetch) cmd_fetch ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    clean) cmd_clean ;;
    env) cmd_env ;;
    *) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
}

main "$@"
