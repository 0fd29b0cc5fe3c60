#!/usr/bin/env bash
# Every Kubernetes manifest under deploy/k8s, decoded strictly into the official k8s.io/api
# types (base files and the kustomize output of each overlay) and checked against the
# suite's rules: deploy/validate (a Go module; modules come from the Go module proxy and
# are cached in $GOMODCACHE, by default $HOME/go/pkg/mod). Needs Go >= 1.26 (k8s.io/api
# v0.37 requires it); no other tool, no cluster.
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || fail "go is not installed (Go >= 1.26 is needed)"
cd "${REPO_ROOT}/deploy/validate"
# Never switch toolchains behind the user's back; -count=1: always really run.
GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -buildvcs=false" go test -count=1 ./... ||
  fail "Kubernetes manifests are invalid (see above)"
