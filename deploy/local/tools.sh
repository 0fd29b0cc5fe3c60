#!/usr/bin/env bash
# Installs the command-line tools the tests and the demo use, from the Go module proxy,
# pinned, into the cache folder (outside the repository). Idempotent.
#   grpcurl  a real gRPC client: reflection listing, health checks, demo calls
#   buf      the protobuf linter run over proto/
# Prints the folder to put on PATH.
set -euo pipefail

readonly CACHE_DIR="${CLINICAL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clinical-platform}"
readonly BIN_DIR="${CACHE_DIR}/bin"
readonly TOOLS=(
  "grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"
  "buf github.com/bufbuild/buf/cmd/buf@v1.75.0"
)

mkdir -p "${BIN_DIR}"
command -v go >/dev/null || { echo "[tools] go is not installed" >&2; exit 1; }
for entry in "${TOOLS[@]}"; do
  read -r name module <<<"${entry}"
  stamp="${BIN_DIR}/.${name}.version"
  if [[ -x "${BIN_DIR}/${name}" && "$(cat "${stamp}" 2>/dev/null)" == "${module}" ]]; then
    continue
  fi
  echo "[tools] go install ${module}" >&2
  GOBIN="${BIN_DIR}" GOFLAGS=-mod=mod go install "${module}" >&2
  echo "${module}" >"${stamp}"
done
echo "${BIN_DIR}"
