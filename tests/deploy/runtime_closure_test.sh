#!/usr/bin/env bash
# runtime_closure_test.sh SERVICE_BINARY... HEALTH_CHECK_BINARY
# The runtime image's file set is complete: deploy/docker/collect-runtime.sh (what every
# Dockerfile runs) copies the binaries and their ldd closure into an empty root; glibc is
# added as debian:bookworm-slim provides it; then, chrooted into that root as uid 10001
# (the image's user): every service answers --help, the first service starts with its TLS
# identity, the health check binary sees it alive over mutual TLS (the `liveness` entry) and
# not ready (no Kafka or Redis runs in the jail, so it cannot catch up), and SIGTERM stops it
# with exit 0. Without a container
# engine this is the closest check that the image would run. Needs root or unprivileged
# user namespaces (unshare -r).
source "$(dirname "$0")/lib.sh"

(($# >= 2)) || fail "usage: runtime_closure_test.sh SERVICE_BINARY... HEALTH_CHECK_BINARY"
binaries=("$@")
health=${binaries[-1]}
services=("${binaries[@]:0:${#binaries[@]}-1}")
for bin in "${binaries[@]}"; do
  [[ -x ${bin} ]] || fail "not built: ${bin}"
done

root=$(mktemp -d)
chmod 755 "${root}"  # the jail runs as uid 10001: it must traverse the root
server_pid=""
cleanup() {
  if [[ -n ${server_pid} ]] && kill -0 "${server_pid}" 2>/dev/null; then
    kill -KILL "${server_pid}" 2>/dev/null || true
  fi
  rm -rf "${root}"
}
trap cleanup EXIT

"${REPO_ROOT}/deploy/docker/collect-runtime.sh" "${root}" "${binaries[@]}"
# What the base image provides: glibc's libraries and the dynamic loader.
while read -r lib; do
  dir=$(realpath "$(dirname "${lib}")")
  mkdir -p "${root}${dir}"
  [[ -e ${root}${dir}/$(basename "${lib}") ]] && fail "collect-runtime.sh copied glibc: ${lib}"
  cp -L "${lib}" "${root}${dir}/"
done < <(ldd "${binaries[@]}" |
  awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u |
  grep -E '/(libc|libm|libpthread|libdl|librt|libresolv|libutil)\.so\.[0-9]+$' || true)
interpreter=$(ldd "${binaries[0]}" | awk '$1 ~ /^\/.*ld-linux/ { print $1 }')
[[ -n ${interpreter} ]] || fail "no dynamic loader found"
mkdir -p "${root}$(dirname "${interpreter}")" "${root}/tmp" "${root}/etc"
cp -L "${interpreter}" "${root}${interpreter}"
chmod 1777 "${root}/tmp"

if [[ $(id -u) -eq 0 ]]; then
  jail=(chroot --userspec=10001:10001 "${root}")
else
  unshare -r true 2>/dev/null || fail "need root or unprivileged user namespaces for chroot"
  jail=(unshare -r chroot "${root}")
fi

for bin in "${services[@]}"; do
  name=$(basename "${bin}")
  "${jail[@]}" "/usr/local/bin/${name}" --help > "${root}/help.txt" 2>&1 ||
    { cat "${root}/help.txt" >&2; fail "${name} --help does not run from the runtime file set"; }
  grep -q -- "--grpc-port" "${root}/help.txt" || fail "${name} --help printed no options"
done
note "${#services[@]} services run from the runtime file set"

# The service's TLS identity, as the Kubernetes secret mounts it (read-only files the
# image's user can read), made by the platform's own PKI script; the health check reads
# the same environment. The identity provider is not there either: with its JWKS URL
# given, start-up does not wait for discovery.
tls="/etc/clinical/tls"
mkdir -p "${root}${tls}"
(
  log() { :; }
  die() { echo "pki: $*" >&2; exit 1; }
  # shellcheck source=../../deploy/local/lib/pki.sh
  source "${REPO_ROOT}/deploy/local/lib/pki.sh"
  pki_ensure "${root}${tls}"
) || fail "cannot make the test certificates"
chmod 755 "${root}${tls}" && chmod 644 "${root}${tls}"/*
first=$(basename "${services[0]}")
workload=${first%_service}
export CLINICAL_TLS_CERT_FILE="${tls}/${workload}.crt" CLINICAL_TLS_KEY_FILE="${tls}/${workload}.key" \
  CLINICAL_TLS_CA_FILE="${tls}/ca.crt"

# Start the first service against a Kafka and a Redis that are not there (port 1): it
# must still listen and report liveness; wait (bounded) for that through the health check
# binary. It needs its credentials and the brokers' CA even so (there is no anonymous
# mode): throwaway ones, readable by the runtime user as mounted secrets would be.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "${root}/secrets"
printf 'not-a-real-password\n' > "${root}/secrets/kafka.password"
printf 'not-a-real-password\n' > "${root}/secrets/redis.password"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=throwaway CA" \
  -keyout "${root}/secrets/ca.key" -out "${root}/secrets/ca.crt" 2>/dev/null || fail "openssl cannot make a CA"
rm -f "${root}/secrets/ca.key"
chmod 0444 "${root}/secrets/"*
"${jail[@]}" "/usr/local/bin/${first}" "--grpc-port=${port}" --shutdown-grace=2s \
  --kafka-bootstrap=127.0.0.1:1 --kafka-sasl-username=audit --kafka-sasl-password-file=/secrets/kafka.password \
  --kafka-ca-file=/secrets/ca.crt --redis-port=1 --redis-username=audit \
  --redis-password-file=/secrets/redis.password \
  --oidc-issuer=https://idp.invalid/realms/clinical --oidc-jwks-url=https://idp.invalid/realms/clinical/certs \
  > "${root}/server.log" 2>&1 &
server_pid=$!
serving=0
for _ in $(seq 1 300); do
  if "${jail[@]}" /usr/local/bin/clinical_health_check "127.0.0.1:${port}" liveness >/dev/null 2>&1; then
    serving=1
    break
  fi
  kill -0 "${server_pid}" 2>/dev/null || { cat "${root}/server.log" >&2; fail "${first} exited early"; }
  sleep 0.1
done
((serving)) || { cat "${root}/server.log" >&2; fail "${first} never reported liveness SERVING"; }
note "${first} alive on ${port}, seen by clinical_health_check"
# Not ready without its Kafka and Redis: readiness must say so.
if "${jail[@]}" /usr/local/bin/clinical_health_check "127.0.0.1:${port}" >/dev/null 2>&1; then
  fail "${first} reported ready without Kafka or Redis"
fi
# The health check must also be able to say no: nothing listens on port 1.
if "${jail[@]}" /usr/local/bin/clinical_health_check 127.0.0.1:1 >/dev/null 2>&1; then
  fail "clinical_health_check reported SERVING for a closed port"
fi
kill -TERM "${server_pid}"
status=0
wait "${server_pid}" || status=$?
server_pid=""
[[ ${status} -eq 0 ]] || { cat "${root}/server.log" >&2; fail "${first} exited ${status} on SIGTERM"; }
note "SIGTERM -> exit 0; PASS"
