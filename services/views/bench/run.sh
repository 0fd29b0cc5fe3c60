#!/usr/bin/env bash
# Views benchmark: full rebuild of N case events (default 1,000,000), then query latency
# under concurrent load with ghz (a real gRPC load tool), each query next to an empty call
# (grpc.health.v1.Health/Check) on the same server in the same run — both over mutual TLS,
# the queries with a verified token (the empty call needs none), as in production.
# Runs on a private Kafka + Redis (loopback, free ports), stopped afterwards.
#   services/views/bench/run.sh [EVENTS] [REQUESTS] [CONCURRENCY]
set -euo pipefail
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
readonly BUILD_DIR="${CLINICAL_BUILD_DIR:-${ROOT}/build}"
readonly EVENTS="${1:-1000000}" REQUESTS="${2:-20000}" CONCURRENCY="${3:-16}"
readonly BIN=/root/.cache/clinical-platform/bin
export CLINICAL_PLATFORM_DIR="${BUILD_DIR}/views-bench-platform-$$"
command -v "${BIN}/ghz" >/dev/null || GOBIN="${BIN}" go install github.com/bojand/ghz/cmd/ghz@v0.120.0
cmake --build "${BUILD_DIR}" --target views_rebuild_bench views_service clinical_test_token >&2
"${ROOT}/deploy/local/platform.sh" start >&2
views_pid=""
cleanup() { [[ -n "${views_pid}" ]] && kill "${views_pid}" 2>/dev/null; "${ROOT}/deploy/local/platform.sh" clean >&2; }
trap cleanup EXIT
# shellcheck disable=SC1091
source "${CLINICAL_PLATFORM_DIR}/platform.env"
secrets="${CLINICAL_PLATFORM_SECRETS_DIR}"

echo "## Views: full rebuild"
# The benchmark writes the topics as the admin principal (a test harness client) ...
CLINICAL_KAFKA_SASL_USERNAME="${CLINICAL_KAFKA_ADMIN_USERNAME}" \
  CLINICAL_KAFKA_SASL_PASSWORD_FILE="${CLINICAL_KAFKA_ADMIN_PASSWORD_FILE}" \
  CLINICAL_REDIS_USERNAME="${CLINICAL_REDIS_ADMIN_USERNAME}" \
  CLINICAL_REDIS_PASSWORD_FILE="${CLINICAL_REDIS_ADMIN_PASSWORD_FILE}" \
  "${BUILD_DIR}/services/views/views_rebuild_bench" --events="${EVENTS}" \
  --topic=clinical.case.bench --root=views.bench | tee "${CLINICAL_PLATFORM_DIR}/rebuild.txt"
version=$(sed -n 's/.*version=\([^ ]*\) .*/\1/p' "${CLINICAL_PLATFORM_DIR}/rebuild.txt")

# ... and the service serves the built (active, caught-up) version as the views principal.
log="${CLINICAL_PLATFORM_DIR}/views.log"
pki="${CLINICAL_PLATFORM_DIR}/pki"
CLINICAL_TLS_CERT_FILE="${pki}/views.crt" CLINICAL_TLS_KEY_FILE="${pki}/views.key" CLINICAL_TLS_CA_FILE="${pki}/ca.crt" \
  CLINICAL_KAFKA_SASL_USERNAME=views CLINICAL_KAFKA_SASL_PASSWORD_FILE="${secrets}/kafka-views.password" \
  CLINICAL_REDIS_USERNAME=views CLINICAL_REDIS_PASSWORD_FILE="${secrets}/redis-views.password" \
  "${BUILD_DIR}/services/views/views_service" --grpc-port=0 --case-topic=clinical.case.bench \
  --scheduling-topic=clinical.scheduling.bench --view-root=views.bench --view-version="${version}" \
  2>"${log}" &
views_pid=$!
port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "${log}" | head -1)
  [[ -n "${port}" ]] && break
  sleep 0.1
done
[[ -n "${port}" ]] || { echo "views_service did not start" >&2; exit 1; }
address="127.0.0.1:${port}"
# As every client: mutual TLS (the test client's certificate) and a token of the platform's
# identity provider for a supervisor of the generated tenant.
token=$(CLINICAL_PLATFORM_ENV="${CLINICAL_PLATFORM_DIR}/platform.env" \
  "${BUILD_DIR}/libs/testing/clinical_test_token" sup-1 supervisor tenant-a)
meta="{\"authorization\":\"Bearer ${token}\"}"
now=$(date -u +2026-06-15T00:00:00Z)

runs=0
run() { local name=$1 method=$2 data=$3
  runs=$((runs + 1))
  local out="${CLINICAL_PLATFORM_DIR}/ghz-${runs}.json"
  "${BIN}/ghz" --cacert="${pki}/ca.crt" --cert="${pki}/test-client.crt" --key="${pki}/test-client.key" \
    --format=json -n "${REQUESTS}" -c "${CONCURRENCY}" -m "${meta}" \
    --call "${method}" -d "${data}" "${address}" >"${out}"
  python3 - "${name}" "${out}" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
lat = {d["percentage"]: d["latency"] / 1e6 for d in r["latencyDistribution"] or []}
codes = r.get("statusCodeDistribution", {})
print(f"| {sys.argv[1]} | {r['count']} | {r['rps']:.0f} | {lat.get(50, 0):.2f} ms | {lat.get(99, 0):.2f} ms | {codes} |")
PY
}
echo
echo "## Views: query latency, ${CONCURRENCY} concurrent clients, ${REQUESTS} calls each row"
echo "| call | calls | calls/s | p50 | p99 | status codes |"
echo "|---|---|---|---|---|---|"
run "empty call (Health/Check)" grpc.health.v1.Health.Check '{}'
run GetCaseload clinical.views.v1.ViewsService.GetCaseload '{"case_manager_id":"cm-3"}'
run GetWorklist clinical.views.v1.ViewsService.GetWorklist '{"case_manager_id":"cm-3"}'
run "ListRollups(team)" clinical.views.v1.ViewsService.ListRollups '{"dimension":"DIMENSION_TEAM"}'
run "GetOutcomes(program, month)" clinical.views.v1.ViewsService.GetOutcomes \
  "{\"dimension\":\"DIMENSION_PROGRAM\",\"group_id\":\"elder_care\",\"period_kind\":\"PERIOD_KIND_MONTH\",\"period_at\":\"${now}\"}"
run "empty call again" grpc.health.v1.Health.Check '{}'
nproc_out=$(nproc); cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
echo
echo "machine: ${cpu}, ${nproc_out} cores; ghz v0.120.0 on the same machine"
