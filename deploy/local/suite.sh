#!/usr/bin/env bash
# Runs the whole suite on this machine: Kafka and Redis (platform.sh), every service as a
# process on loopback, and the demo workload. Everything is left running.
#
#   deploy/local/suite.sh up       install, build, start platform + services, run the demo
#   deploy/local/suite.sh demo     run the demo workload again against the running suite
#   deploy/local/suite.sh status   platform and per-service health
#   deploy/local/suite.sh down     stop services (SIGTERM, graceful) and the platform
#
# Environment: CLINICAL_SUITE_DIR (state; default ${TMPDIR:-/tmp}/clinical-suite-<uid>),
# CLINICAL_BUILD_DIR (default: build), CLINICAL_SUITE_BASE_PORT (default 50051: case,
# then scheduling, audit, notification, views on the following ports),
# CLINICAL_SUITE_METRICS_BASE_PORT (default 9464: each service's /metrics, same order).
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly SUITE_DIR="${CLINICAL_SUITE_DIR:-${TMPDIR:-/tmp}/clinical-suite-$(id -u)}"
readonly BUILD_DIR="${CLINICAL_BUILD_DIR:-${ROOT}/build}"
readonly BASE_PORT="${CLINICAL_SUITE_BASE_PORT:-50051}"
readonly METRICS_BASE_PORT="${CLINICAL_SUITE_METRICS_BASE_PORT:-9464}"
readonly SERVICES=(case scheduling audit notification views)
export CLINICAL_PLATFORM_DIR="${SUITE_DIR}/platform"

log() { printf '[suite] %s\n' "$*" >&2; }
die() { printf '[suite] error: %s\n' "$*" >&2; exit 1; }
index_of() {
  local i
  for i in "${!SERVICES[@]}"; do
    [[ "${SERVICES[$i]}" == "$1" ]] && { echo "${i}"; return; }
  done
}
port_of() { echo $((BASE_PORT + $(index_of "$1"))); }
metrics_port_of() { echo $((METRICS_BASE_PORT + $(index_of "$1"))); }
tools_path() { PATH="$("${ROOT}/deploy/local/tools.sh"):${PATH}"; export PATH; }

# shellcheck source=lib/client.sh
source "${ROOT}/deploy/local/lib/client.sh"  # mutual TLS with the operator certificate

healthy() {  # healthy PORT -> true when the service reports SERVING (health needs no token)
  clinical_grpcurl -max-time 2 "127.0.0.1:$1" grpc.health.v1.Health/Check 2>/dev/null |
    grep -q '"SERVING"'
}

build() {
  export CCACHE_DIR="${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccache}"
  cmake -S "${ROOT}" -B "${BUILD_DIR}" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  local targets=()
  local svc
  for svc in "${SERVICES[@]}"; do targets+=(--target "${svc}_service"); done
  targets+=(--target audit_cli --target clinical_health_check)
  cmake --build "${BUILD_DIR}" -j "$(nproc)" "${targets[@]}"
}

# Development keys of the audit service (docs/audit-service.md): an Ed25519 key that signs
# the audit log's checkpoints and a secret for its patient index. Made once per suite
# folder, never in the repository; production keys come from the deployment's secrets.
audit_dev_keys() {
  local keys="${SUITE_DIR}/keys"
  mkdir -p "${keys}" && chmod 700 "${keys}"
  [[ -f ${keys}/audit-signing.pem ]] ||
    openssl genpkey -algorithm ed25519 -out "${keys}/audit-signing.pem" 2>/dev/null ||
    die "cannot generate the audit signing key (openssl)"
  [[ -f ${keys}/audit-patient-index.key ]] ||
    (umask 077 && head -c 32 /dev/urandom >"${keys}/audit-patient-index.key")
  printf '%s\n' "--signing-key-file=${keys}/audit-signing.pem" \
    "--patient-index-key-file=${keys}/audit-patient-index.key"
}

start_service() {  # start_service NAME
  local name="$1" port pidfile
  port="$(port_of "${name}")"
  pidfile="${SUITE_DIR}/${name}.pid"
  if [[ -f "${pidfile}" ]] && kill -0 "$(cat "${pidfile}")" 2>/dev/null; then
    log "${name} already running (pid $(cat "${pidfile}"))"
    return
  fi
  # shellcheck disable=SC1091
  source "${CLINICAL_PLATFORM_DIR}/platform.env"
  local extra=()
  if [[ ${name} == audit ]]; then
    local flags
    flags="$(audit_dev_keys)" || exit 1
    mapfile -t extra <<<"${flags}"
  fi
  # Each service runs as its own principal: its TLS identity (a certificate with its SPIFFE
  # ID from the platform's CA), its Kafka SCRAM user (ACLs in deploy/local/kafka/acls.txt)
  # and, for the views and audit, its Redis ACL user. The passwords stay in the platform's
  # secrets folder; only their paths are passed. How tokens are verified comes from
  # platform.env (CLINICAL_OIDC_*).
  local secrets="${CLINICAL_PLATFORM_SECRETS_DIR}" pki="${CLINICAL_PLATFORM_DIR}/pki"
  local credentials=(CLINICAL_TLS_CERT_FILE="${pki}/${name}.crt" CLINICAL_TLS_KEY_FILE="${pki}/${name}.key"
    CLINICAL_TLS_CA_FILE="${pki}/ca.crt"
    CLINICAL_KAFKA_SASL_USERNAME="${name}" CLINICAL_KAFKA_SASL_PASSWORD_FILE="${secrets}/kafka-${name}.password")
  if [[ ${name} == views || ${name} == audit ]]; then
    credentials+=(CLINICAL_REDIS_USERNAME="${name}" CLINICAL_REDIS_PASSWORD_FILE="${secrets}/redis-${name}.password")
  fi
  env "${credentials[@]}" setsid "${BUILD_DIR}/services/${name}/${name}_service" --grpc-port="${port}" \
    --metrics-port="$(metrics_port_of "${name}")" "${extra[@]}" \
    >"${SUITE_DIR}/logs/${name}.log" 2>&1 </dev/null &
  echo $! >"${pidfile}"
}

cmd_up() {
  local started=$(date +%s)
  mkdir -p "${SUITE_DIR}/logs"
  "${ROOT}/deploy/local/platform.sh" install
  "${ROOT}/deploy/local/platform.sh" fetch
  tools_path
  log "building services"
  build
  "${ROOT}/deploy/local/platform.sh" start
  local svc
  for svc in "${SERVICES[@]}"; do start_service "${svc}"; done
  for svc in "${SERVICES[@]}"; do
    local deadline=$(($(date +%s) + 30))
    until healthy "$(port_of "${svc}")"; do
      (($(date +%s) < deadline)) || die "${svc} did not become healthy; see ${SUITE_DIR}/logs/${svc}.log"
      sleep 0.2
    done
  done
  log "all services healthy after $(($(date +%s) - started)) s"
  cmd_demo
  cmd_status
  cat >&2 <<EOF

The suite is running (state in ${SUITE_DIR}):
$(for svc in "${SERVICES[@]}"; do printf '  %-13s 127.0.0.1:%s   metrics: http://127.0.0.1:%s/metrics   log: %s\n' "${svc}" "$(port_of "${svc}")" "$(metrics_port_of "${svc}")" "${SUITE_DIR}/logs/${svc}.log"; done)
  platform      source ${CLINICAL_PLATFORM_DIR}/platform.env   (Kafka, Redis, Keycloak, certificates; credentials: ${CLINICAL_PLATFORM_DIR}/secrets)
  identity      $(clinical_platform_value CLINICAL_OIDC_ISSUER)   (people: deploy/local/keycloak/realm.py;
                password: ${CLINICAL_PLATFORM_DIR}/secrets/demo-users.password)

Try (every call is mutual TLS with a person's token):
  source deploy/local/lib/client.sh; export CLINICAL_PLATFORM_DIR=${CLINICAL_PLATFORM_DIR}
  clinical_call cm-demo-0 127.0.0.1:$(port_of views) clinical.views.v1.ViewsService/GetCaseload '{"case_manager_id":"cm-demo-0"}'
  clinical_grpcurl 127.0.0.1:$(port_of case) list
Stop:  deploy/local/suite.sh down
EOF
}

cmd_demo() {
  tools_path
  log "demo workload"
  "${ROOT}/deploy/local/demo.sh" "${BASE_PORT}"
}

cmd_status() {
  tools_path
  "${ROOT}/deploy/local/platform.sh" status || true
  local svc
  for svc in "${SERVICES[@]}"; do
    if healthy "$(port_of "${svc}")"; then
      echo "${svc}: SERVING at 127.0.0.1:$(port_of "${svc}")"
    else
      echo "${svc}: down"
    fi
  done
}

cmd_down() {
  local svc
  for svc in "${SERVICES[@]}"; do
    local pidfile="${SUITE_DIR}/${svc}.pid"
    [[ -f "${pidfile}" ]] || continue
    local pid
    pid="$(cat "${pidfile}")"
    if kill -TERM "${pid}" 2>/dev/null; then
      local deadline=$(($(date +%s) + 30))
      while kill -0 "${pid}" 2>/dev/null && (($(date +%s) < deadline)); do sleep 0.2; done
      kill -KILL "${pid}" 2>/dev/null && log "${svc} killed after 30 s" || log "${svc} stopped"
    fi
    rm -f "${pidfile}"
  done
  "${ROOT}/deploy/local/platform.sh" stop
}

case "${1:-}" in
  up) cmd_up ;;
  demo) cmd_demo ;;
  status) cmd_status ;;
  down) cmd_down ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
