#!/usr/bin/env bash
# The docker compose suite's TLS certificates (the `pki` one-shot job of docker-compose.yml),
# made by the local platform's own PKI (deploy/local/lib/pki.sh): one CA, and per party an
# ECDSA P-256 certificate for server and client auth valid for its compose host name,
# localhost and 127.0.0.1. The services' certificates carry their SPIFFE ID
#   spiffe://clinical.local/ns/compose/sa/<service>
# which is how they recognise each other (the namespace is what every service derives from
# its own certificate, so all of them are issued for "compose").
#
# Each consumer gets its own volume, with the names cert-manager uses in Kubernetes, so a
# service reads its own key and no other:
#   ${OUT}/<service>   tls.crt, tls.key, ca.crt   (owner 10001, the services' user)
#   ${OUT}/keycloak    tls.crt, tls.key, ca.crt   (owner 1000, the Keycloak image's user)
#   ${OUT}/operator    tls.crt, tls.key, ca.crt   the client certificate for grpcurl from the
#                      host (a person must still present a token), copied out on demand
# The CA's key stays in ${PKI}, which only this job mounts. Every run renews what expires
# within 2 days (the CA within 30 days, which re-issues everything); the services re-read
# their files every CLINICAL_TLS_RELOAD_INTERVAL (60 s), so a renewal needs no restart.
# For development only; Kubernetes gets its certificates from cert-manager (deploy/k8s).
#   compose-pki.sh            PKI_LIB (default /pki.sh), PKI (default /pki), OUT (default /out)
set -euo pipefail

PKI_LIB="${PKI_LIB:-/pki.sh}"
PKI="${PKI:-/pki}"
OUT="${OUT:-/out}"

log() { printf 'pki: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

command -v openssl >/dev/null || die "openssl is not installed"
PKI_NAMESPACE=compose
# shellcheck source=../local/lib/pki.sh
source "${PKI_LIB}"

mkdir -p "${PKI}" && chmod 700 "${PKI}"
pki_make_ca "${PKI}"
for service in "${PKI_SERVICES[@]}"; do
  pki_issue "${PKI}" "${service}" "$(pki_spiffe_id "${service}")" "${service}"
done
pki_issue "${PKI}" keycloak "" keycloak
pki_issue "${PKI}" operator "$(pki_spiffe_id operator)"

# hand_out NAME OWNER: NAME's certificate and key and the CA certificate into its volume.
# Each file is replaced by a rename, so a service re-reading its files never sees half of one.
hand_out() {
  local name="$1" owner="$2" dest="${OUT}/$1" file
  mkdir -p "${dest}"
  cp "${PKI}/${name}.crt" "${dest}/.tls.crt"
  cp "${PKI}/${name}.key" "${dest}/.tls.key"
  cp "${PKI}/ca.crt" "${dest}/.ca.crt"
  for file in tls.crt tls.key ca.crt; do
    chmod 0400 "${dest}/.${file}"
    # Outside a container (tests) the caller may not be root; ownership is then theirs.
    if [[ $(id -u) -eq 0 ]]; then chown "${owner}" "${dest}/.${file}"; fi
    mv -f "${dest}/.${file}" "${dest}/${file}"
  done
}
for service in "${PKI_SERVICES[@]}"; do hand_out "${service}" 10001:10001; done
hand_out keycloak 1000:1000
hand_out operator 0:0
log "certificates ready (CA: $(openssl x509 -in "${PKI}/ca.crt" -noout -subject))"
