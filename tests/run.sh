#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs (Debian packages,
# the Kafka broker jars, grpcurl and buf), lints the protos, builds everything with
# ccache, and runs ctest. ctest itself starts a fresh Kafka and Redis on free loopback
# ports for the integration and e2e tests and stops them at the end.
#
#   tests/run.sh                 everything
#   tests/run.sh -L unit         extra arguments go to ctest (here: unit tests only)
#
# Environment: CLINICAL_BUILD_DIR (default: build), CLINICAL_JOBS (default: nproc).
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD_DIR="${CLINICAL_BUILD_DIR:-${ROOT}/build}"
readonly JOBS="${CLINICAL_JOBS:-$(nproc)}"
cd "${ROOT}"

step() { printf '\n== %s\n' "$*"; }
seconds_since() { echo $(( $(date +%s) - $1 )); }

step "dependencies"
deploy/local/platform.sh install
deploy/local/platform.sh fetch
PATH="$(deploy/local/tools.sh):${PATH}"
export PATH

step "proto lint (buf)"
(cd proto && buf lint)
echo "buf lint: clean"

step "configure"
export CCACHE_DIR="${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# Paths relative to the checkout: a fresh clone in another folder still hits the cache.
export CCACHE_BASEDIR="${ROOT}"
export CCACHE_NOHASHDIR=1
cmake -S . -B "${BUILD_DIR}" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLINICAL_WERROR=ON >/dev/null

step "build (${JOBS} jobs)"
ccache --zero-stats >/dev/null
build_started=$(date +%s)
cmake --build "${BUILD_DIR}" -j "${JOBS}"
echo "build time: $(seconds_since "${build_started}") s on $(nproc) cores ($(ccache --print-stats | awk -F'\t' '$1=="direct_cache_hit"||$1=="preprocessed_cache_hit"{h+=$2} $1=="cache_miss"{m=$2} END{printf "ccache: %d hits, %d misses", h, m}'))"

step "tests"
ctest --test-dir "${BUILD_DIR}" --output-on-failure -j "${JOBS}" "$@"
