#!/usr/bin/env bash
# Local platform for development and tests: a single-node KRaft Apache Kafka 3.9 broker
# (run from Maven Central jars), a redis-server with AOF and the identity provider
# (Keycloak, from Maven Central), all on 127.0.0.1, with a private certificate authority
# that issues every TLS certificate of the platform (deploy/local/lib/pki.sh). Nothing is
# anonymous: Kafka speaks SASL_SSL only, with a SCRAM user and ACLs per service
# (lib/kafka.sh, kafka/acls.txt); Redis has an ACL user per service and no default user
# (lib/redis.sh). Passwords are made once into ${CLINICAL_PLATFORM_DIR}/secrets.
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
#   --kafka-port N  --inter-broker-port N  --controller-port N  --redis-port N  --keycloak-port N
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
#   CLINICAL_PLATFORM_COMPONENTS  which of "kafka redis keycloak" start, stop and report
#                           (default all three; a test's private broker needs only kafka)
set -euo pipefail

readonly SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly KAFKA_VERSION="3.9.2"  # keep in step with deploy/local/kafka/pom.xml
readonly STATE_DIR="${CLINICAL_PLATFORM_DIR:-${TMPDIR:-/tmp}/clinical-platform-$(id -u)}"
readonly CACHE_DIR="${CLINICAL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clinical-platform}"
readonly KAFKA_LIBS="${CACHE_DIR}/kafka-${KAFKA_VERSION}/libs"
readonly KAFKA_HEAP_MAX="${KAFKA_HEAP_MAX:-512m}"
readonly COMPONENTS=" ${CLINICAL_PLATFORM_COMPONENTS:-kafka redis keycloak} "

# Build, run and test dependencies, all from Debian bookworm.
readonly DEBIAN_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git python3
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  librdkafka-dev libhiredis-dev libabsl-dev libssl-dev libcurl4-openssl-dev libjwt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev
  redis-server redis-tools kcat openssl curl
  docker-compose python3-venv
  openjdk-17-jdk-headless maven golang-go
)

log() { printf '[platform] %s\n' "$*" >&2; }
die() { printf '[platform] error: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
wanted() { [[ "${COMPONENTS}" == *" $1 "* ]]; }

# shellcheck source=lib/pki.sh
source "${SCRIPT_DIR}/lib/pki.sh"
# shellcheck source=lib/keycloak.sh
source "${SCRIPT_DIR}/lib/keycloak.sh"
# shellcheck source=lib/kafka.sh
source "${SCRIPT_DIR}/lib/kafka.sh"
# shellcheck source=lib/redis.sh
source "${SCRIPT_DIR}/lib/redis.sh"

# --- install -------------------------------------------------------------------------

cmd_install() {
  local missing=()
  local pkg
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    # Java and Go may come with the machine image instead of Debian; accept either. The
    # platform runs a single-file Java program (kafka/ApplyAccess.java), so it needs a JDK
    # (the compiler module), not only a runtime.
    case "${pkg}" in
      openjdk-17-jdk-headless) java --list-modules 2>/dev/null | grep -q '^jdk.compiler@' && continue ;;
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

cmd_fetch() {
  kafka_fetch
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

cmd_start() {
  local kafka_port="" broker_port="" controller_port="" redis_port="" keycloak_port="" keycloak_management_port=""
  while (($#)); do
    case "$1" in
      --kafka-port) kafka_port="$2"; shift 2 ;;
      --inter-broker-port) broker_port="$2"; shift 2 ;;
      --controller-port) controller_port="$2"; shift 2 ;;
      --redis-port) redis_port="$2"; shift 2 ;;
      --keycloak-port) keycloak_port="$2"; shift 2 ;;
      *) die "unknown option: $1" ;;
    esac
  done
  mkdir -p "${STATE_DIR}/kafka"
  if { ! wanted kafka || pid_alive "${STATE_DIR}/kafka.pid"; } && { ! wanted redis || pid_alive "${STATE_DIR}/redis.pid"; } &&
    { ! wanted keycloak || pid_alive "${STATE_DIR}/keycloak.pid"; }; then
    log "already running"
    cmd_status
    return
  fi
  cmd_stop_quiet
  # A restart keeps the ports recorded earlier so clients' addresses stay valid.
  [[ -n "${kafka_port}" && "${kafka_port}" != 0 ]] || kafka_port="$(state_value CLINICAL_KAFKA_PORT)"
  [[ -n "${broker_port}" && "${broker_port}" != 0 ]] || broker_port="$(state_value CLINICAL_KAFKA_INTER_BROKER_PORT)"
  [[ -n "${controller_port}" && "${controller_port}" != 0 ]] || controller_port="$(state_value CLINICAL_KAFKA_CONTROLLER_PORT)"
  [[ -n "${redis_port}" && "${redis_port}" != 0 ]] || redis_port="$(state_value CLINICAL_REDIS_PORT)"
  [[ -n "${keycloak_port}" && "${keycloak_port}" != 0 ]] || keycloak_port="$(state_value CLINICAL_KEYCLOAK_PORT)"
  keycloak_management_port="$(state_value CLINICAL_KEYCLOAK_MANAGEMENT_PORT)"
  [[ -n "${kafka_port}" ]] || kafka_port="$(free_port)"
  [[ -n "${broker_port}" ]] || broker_port="$(free_port)"
  [[ -n "${controller_port}" ]] || controller_port="$(free_port)"
  [[ -n "${redis_port}" ]] || redis_port="$(free_port)"
  [[ -n "${keycloak_port}" ]] || keycloak_port="$(free_port)"
  [[ -n "${keycloak_management_port}" ]] || keycloak_management_port="$(free_port)"

  local started
  started="$(now_ms)"
  pki_ensure "${STATE_DIR}/pki"
  # Every principal's password, whichever components start: platform.env names them all.
  kafka_secrets
  redis_secrets
  # Keycloak first: it takes longest, and the others start while it boots.
  if wanted keycloak; then keycloak_start "${keycloak_port}" "${keycloak_management_port}"; fi
  if wanted kafka; then kafka_start "${kafka_port}" "${broker_port}" "${controller_port}"; fi
  if wanted redis; then
    redis_start "${redis_port}"
    wait_until 30 "redis 127.0.0.1:${redis_port}" redis_answers "${redis_port}" ||
      die "redis did not answer; see ${STATE_DIR}/redis/redis.log"
  fi
  if wanted kafka; then
    wait_until 90 "kafka 127.0.0.1:${kafka_port}" kafka_answers "127.0.0.1:${kafka_port}" ||
      die "kafka did not answer; see ${STATE_DIR}/kafka/stdout.log"
    kafka_apply_access "127.0.0.1:${kafka_port}"
  fi
  if wanted keycloak; then
    wait_until 150 "keycloak https://127.0.0.1:${keycloak_port}" keycloak_started "${keycloak_management_port}" ||
      die "keycloak did not become ready; see ${STATE_DIR}/keycloak/keycloak.log and stdout.log"
  fi

  local pki="${STATE_DIR}/pki" secrets="${STATE_DIR}/secrets"
  # What clients need, and never a password: each service's credentials are files in the
  # secrets folder (kafka-<service>.password, redis-<service>.password) that suite.sh or the
  # test harness points it at; the admin's are for tools and the tests' harness.
  cat >"${STATE_DIR}/platform.env" <<EOF
export CLINICAL_KAFKA_BOOTSTRAP=127.0.0.1:${kafka_port}
export CLINICAL_KAFKA_SECURITY_PROTOCOL=SASL_SSL
export CLINICAL_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
export CLINICAL_KAFKA_CA_FILE=${pki}/ca.crt
export CLINICAL_KAFKA_PORT=${kafka_port}
export CLINICAL_KAFKA_INTER_BROKER_PORT=${broker_port}
export CLINICAL_KAFKA_CONTROLLER_PORT=${controller_port}
export CLINICAL_KAFKA_ADMIN_USERNAME=${KAFKA_ADMIN_USER}
export CLINICAL_KAFKA_ADMIN_PASSWORD_FILE=$(kafka_password_file "${KAFKA_ADMIN_USER}")
export CLINICAL_KAFKA_ADMIN_CLIENT_CONFIG=${STATE_DIR}/kafka/admin-client.properties
export CLINICAL_REDIS_HOST=127.0.0.1
export CLINICAL_REDIS_PORT=${redis_port}
export CLINICAL_REDIS_ADMIN_USERNAME=${REDIS_ADMIN_USER}
export CLINICAL_REDIS_ADMIN_PASSWORD_FILE=$(redis_password_file "${REDIS_ADMIN_USER}")
export CLINICAL_PLATFORM_DIR=${STATE_DIR}
export CLINICAL_PLATFORM_SECRETS_DIR=${secrets}
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
  if wanted kafka; then
    log "kafka     127.0.0.1:${kafka_port} SASL_SSL, SCRAM-SHA-512 (inter-broker 127.0.0.1:${broker_port}, KRaft controller 127.0.0.1:${controller_port}; Kafka ${KAFKA_VERSION}; ACLs: deploy/local/kafka/acls.txt)"
  fi
  if wanted redis; then log "redis     127.0.0.1:${redis_port} (AOF on; ACL users ${REDIS_ADMIN_USER} ${REDIS_SERVICE_USERS[*]}, no default user)"; fi
  if wanted keycloak; then
    log "keycloak  $(keycloak_issuer "${keycloak_port}") (Keycloak ${KEYCLOAK_VERSION}; people's password: ${secrets}/demo-users.password)"
  fi
  log "certs     ${pki} (CA: ca.crt)"
  log "secrets   ${secrets} (kafka-<user>.password, redis-<user>.password)"
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
  if ! wanted kafka; then
    :
  elif pid_alive "${STATE_DIR}/kafka.pid" && [[ -n "${kafka_port}" ]] && kafka_answers "127.0.0.1:${kafka_port}"; then
    echo "kafka: up at 127.0.0.1:${kafka_port}, SASL_SSL (pid $(cat "${STATE_DIR}/kafka.pid"))"
  else
    echo "kafka: down"; rc=1
  fi
  if ! wanted redis; then
    :
  elif pid_alive "${STATE_DIR}/redis.pid" && [[ -n "${redis_port}" ]] && redis_answers "${redis_port}"; then
    echo "redis: up at 127.0.0.1:${redis_port}, ACL users (pid $(cat "${STATE_DIR}/redis.pid"))"
  else
    echo "redis: down"; rc=1
  fi
  local keycloak_port keycloak_management_port
  keycloak_port="$(state_value CLINICAL_KEYCLOAK_PORT)"
  keycloak_management_port="$(state_value CLINICAL_KEYCLOAK_MANAGEMENT_PORT)"
  if ! wanted keycloak; then
    :
  elif pid_alive "${STATE_DIR}/keycloak.pid" && [[ -n "${keycloak_management_port}" ]] &&
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
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
}

main "$@"
