# shellcheck shell=bash
# The local platform's certificate authority and certificates (sourced by platform.sh).
#
# One private CA per platform state folder signs a certificate for every party that speaks
# TLS: each service (server and client: mTLS on every gRPC hop), the Kafka broker, the
# identity provider, and the clients people use (the operator console for grpcurl, the CLI
# and the demo; the test client). Service certificates carry a SPIFFE-style URI SAN,
#   spiffe://clinical.local/ns/local/sa/<service>
# which is how services recognise each other (docs/security.md); nothing else in a request
# can claim to be a service. Keys are ECDSA P-256 in PKCS#8 (what gRPC, Java and Quarkus all
# read). Leaf certificates live 30 days and are re-issued at start when fewer than 2 days
# remain; services reload them from disk without a restart.
#
# Layout: ${PKI_DIR}/ca.{crt,key}, ${PKI_DIR}/<name>.{crt,key}; keys are mode 600.
#
# The docker compose suite makes its certificates with this same file
# (deploy/docker/compose-pki.sh): it sets PKI_NAMESPACE=compose before sourcing it and
# gives each certificate its compose host name as an extra DNS name (pki_issue).

readonly PKI_TRUST_DOMAIN="clinical.local"
# The <namespace> of the SPIFFE IDs: "local" unless the caller set another before sourcing.
readonly PKI_NAMESPACE="${PKI_NAMESPACE:-local}"
# Workload names that get a certificate. The five services, the infrastructure that speaks
# TLS, and two clients that are *not* services (their certificates let them connect; they
# must still present a person's token).
readonly PKI_SERVICES=(case scheduling audit notification views)
readonly PKI_INFRASTRUCTURE=(kafka keycloak)
readonly PKI_CLIENTS=(operator test-client)

pki_spiffe_id() { echo "spiffe://${PKI_TRUST_DOMAIN}/ns/${PKI_NAMESPACE}/sa/$1"; }

pki_make_ca() {  # pki_make_ca DIR
  local dir="$1"
  [[ -f "${dir}/ca.crt" && -f "${dir}/ca.key" ]] &&
    openssl x509 -in "${dir}/ca.crt" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 && return 0
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${dir}/ca.key" 2>/dev/null) ||
    die "cannot generate the CA key (openssl)"
  openssl req -x509 -new -key "${dir}/ca.key" -sha256 -days 365 -subj "/O=clinical local platform/CN=clinical local CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "${dir}/ca.crt" 2>/dev/null ||
    die "cannot create the CA certificate (openssl)"
  # Leaves signed by an older CA are no longer valid: re-issue them all.
  find "${dir}" -maxdepth 1 -name '*.crt' ! -name 'ca.crt' -delete
  log "created a new local CA in ${dir}"
}

# pki_san FILE: a certificate's subject alternative names as pki_issue writes them
# (URI:...,DNS:...,IP:...), empty when it has none.
pki_san() {
  openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' \n' |
    sed 's/IPAddress:/IP:/g'
}

# pki_issue DIR NAME [SPIFFE_ID [DNS_NAME...]]: a leaf certificate for NAME valid for the
# DNS names given, localhost and 127.0.0.1, usable as TLS server and client, with the
# SPIFFE URI SAN when SPIFFE_ID is not empty. A certificate that exists is kept unless it
# expires within 2 days or names other hosts or another SPIFFE ID than asked.
pki_issue() {
  local dir="$1" name="$2" spiffe="${3:-}" dns
  shift $(($# < 3 ? $# : 3))
  local san=""
  [[ -n "${spiffe}" ]] && san="URI:${spiffe},"
  for dns in "$@"; do san+="DNS:${dns},"; done
  san+="DNS:localhost,IP:127.0.0.1"
  if [[ -f "${dir}/${name}.crt" && -f "${dir}/${name}.key" ]] &&
    openssl x509 -in "${dir}/${name}.crt" -noout -checkend $((2 * 86400)) >/dev/null 2>&1 &&
    [[ "$(pki_san "${dir}/${name}.crt")" == "${san}" ]]; then
    return 0
  fi
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${dir}/${name}.key" 2>/dev/null) ||
    die "cannot generate a key for ${name}"
  local csr="${dir}/${name}.csr" ext="${dir}/${name}.ext"
  openssl req -new -key "${dir}/${name}.key" -subj "/O=clinical local platform/CN=${name}" -out "${csr}" 2>/dev/null ||
    die "cannot create a request for ${name}"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyAgreement" \
    "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=${san}" >"${ext}"
  openssl x509 -req -in "${csr}" -CA "${dir}/ca.crt" -CAkey "${dir}/ca.key" -CAcreateserial \
    -sha256 -days 30 -extfile "${ext}" -out "${dir}/${name}.crt" 2>/dev/null || die "cannot sign ${name}'s certificate"
  rm -f "${csr}" "${ext}"
}

# pki_ensure DIR: the CA and every certificate of the platform, made or renewed as needed.
pki_ensure() {
  local dir="$1" name
  command -v openssl >/dev/null || die "openssl is not installed (run: $0 install)"
  mkdir -p "${dir}" && chmod 700 "${dir}"
  pki_make_ca "${dir}"
  for name in "${PKI_SERVICES[@]}" "${PKI_CLIENTS[@]}"; do pki_issue "${dir}" "${name}" "$(pki_spiffe_id "${name}")"; done
  for name in "${PKI_INFRASTRUCTURE[@]}"; do pki_issue "${dir}" "${name}"; done
}
