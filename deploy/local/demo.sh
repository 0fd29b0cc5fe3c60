#!/usr/bin/env bash
# The demo workload, driven through grpcurl (a real client from outside the project)
# against the running suite. Usage: demo.sh BASE_PORT
#
# Each service with an API contributes its workload script (services/<svc>/demo.sh);
# services whose API has not landed yet show their health and reflection listing.
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

readonly BASE_PORT="${1:-50051}"
readonly SERVICES=(case scheduling audit notification views)

for i in "${!SERVICES[@]}"; do
  svc="${SERVICES[$i]}"
  address="127.0.0.1:$((BASE_PORT + i))"
  echo "--- ${svc} service at ${address}"
  echo "\$ grpcurl -plaintext ${address} list"
  grpcurl -plaintext -max-time 5 "${address}" list | sed 's/^/    /'
  echo "\$ grpcurl -plaintext ${address} grpc.health.v1.Health/Check"
  grpcurl -plaintext -max-time 5 "${address}" grpc.health.v1.Health/Check | tr -d '\n ' | sed 's/^/    /'
  echo
  if [[ -x "${ROOT}/services/${svc}/demo.sh" ]]; then
    echo "\$ services/${svc}/demo.sh ${address}"
    "${ROOT}/services/${svc}/demo.sh" "${address}" | sed 's/^/    /'
  fi
done
