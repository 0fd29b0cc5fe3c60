#!/usr/bin/env bash
# The demo workload, driven through grpcurl (a real client from outside the project)
# against the running suite. Usage: demo.sh BASE_PORT
#
# So far the services serve only health checking and reflection; each later API adds its
# step here (open and assign cases, assess, plan, schedule, view caseloads and outcomes).
set -euo pipefail

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
done
