#!/usr/bin/env bash
# Runs the benchmarks against a private Kafka and Redis started for the run (loopback, free
# ports) and stops them afterwards. Figures print as Markdown tables; docs/benchmarks.md
# records a run and explains the method.
#
#   bench/run.sh                       the event store and projection benchmarks
#   bench/run.sh eventstore [args]     one of them, extra args passed through
#   bench/run.sh views [EVENTS] [REQUESTS] [CONCURRENCY]
#                                      views: full rebuild of 1M events and query latency
#                                      under ghz load (long: several minutes)
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ "${1:-}" == views ]]; then
  shift
  exec "${ROOT}/services/views/bench/run.sh" "$@"
fi
readonly BUILD_DIR="${CLINICAL_BUILD_DIR:-${ROOT}/build}"
# A folder per run: two runs at once must not stop each other's broker.
export CLINICAL_PLATFORM_DIR="${BUILD_DIR}/bench-platform-$$"

"${ROOT}/deploy/local/platform.sh" install >&2
"${ROOT}/deploy/local/platform.sh" fetch >&2
cmake -S "${ROOT}" -B "${BUILD_DIR}" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "${BUILD_DIR}" -j "$(nproc)" --target eventstore_bench $(grep -q projection_bench "${ROOT}/bench/CMakeLists.txt" && echo --target projection_bench) >&2

"${ROOT}/deploy/local/platform.sh" start >&2
trap '"${ROOT}/deploy/local/platform.sh" clean >&2' EXIT
# shellcheck disable=SC1091
source "${CLINICAL_PLATFORM_DIR}/platform.env"
# The benchmarks are harness clients: they create their topics and read Redis's CONFIG, so
# they run as the platform's admin principals (the services never do).
export CLINICAL_KAFKA_SASL_USERNAME="${CLINICAL_KAFKA_ADMIN_USERNAME}"
export CLINICAL_KAFKA_SASL_PASSWORD_FILE="${CLINICAL_KAFKA_ADMIN_PASSWORD_FILE}"
export CLINICAL_REDIS_USERNAME="${CLINICAL_REDIS_ADMIN_USERNAME}"
export CLINICAL_REDIS_PASSWORD_FILE="${CLINICAL_REDIS_ADMIN_PASSWORD_FILE}"

which="${1:-all}"
[[ $# -gt 0 ]] && shift
if [[ "${which}" == all || "${which}" == eventstore ]]; then
  "${BUILD_DIR}/bench/eventstore_bench" "$@"
  echo
fi
if [[ ("${which}" == all || "${which}" == projection) && -x "${BUILD_DIR}/bench/projection_bench" ]]; then
  "${BUILD_DIR}/bench/projection_bench" "$@"
fi
