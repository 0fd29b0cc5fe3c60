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
# shellcheck source=lib/client.sh
source "${ROOT}/deploy/local/lib/client.sh"  # login at the identity provider, mutual TLS

# Every connection is mutual TLS (the operator console's certificate from the platform's CA)
# and every call carries a person's token from the identity provider; health and
# reflection need the certificate only.
pki="$(clinical_platform_value CLINICAL_PKI_DIR)"
tls="-cacert ${pki}/ca.crt -cert ${pki}/operator.crt -key ${pki}/operator.key"
echo "--- log in: cm-demo-0 at $(clinical_platform_value CLINICAL_OIDC_ISSUER) (Keycloak, password grant)"
token="$(clinical_token cm-demo-0)"
echo "    access token: ${token:0:24}... (claims: $(python3 -c 'import base64, json, sys; p = sys.argv[1].split(".")[1]; c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))); print(", ".join(f"{k}={c.get(k)}" for k in ("clinical_user_id", "tenant", "aud")), "roles=" + ",".join(c.get("realm_access", {}).get("roles", [])))' "${token}"))"
echo

for i in "${!SERVICES[@]}"; do
  svc="${SERVICES[$i]}"
  address="127.0.0.1:$((BASE_PORT + i))"
  echo "--- ${svc} service at ${address}"
  echo "\$ grpcurl ${tls} ${address} list"
  clinical_grpcurl -max-time 5 "${address}" list | sed 's/^/    /'
  echo "\$ grpcurl ${tls} ${address} grpc.health.v1.Health/Check"
  clinical_grpcurl -max-time 5 "${address}" grpc.health.v1.Health/Check | tr -d '\n ' | sed 's/^/    /'
  echo
  if [[ "${svc}" == case ]]; then
    echo "\$ grpcurl -plaintext ${address} list    # refused: every connection is mutual TLS"
    grpcurl -plaintext -max-time 5 "${address}" list 2>&1 | head -1 | sed 's/^/    /' || true
    echo "\$ grpcurl ${tls} -H 'x-clinical-user: mallory' -H 'x-clinical-role: auditor' ... GetCase    # a header is no identity"
    clinical_grpcurl -max-time 5 -H 'x-clinical-user: mallory' -H 'x-clinical-role: auditor' \
      -H 'x-clinical-tenant: demo-tenant' -d '{"case_id":"00000000-0000-4000-8000-000000000000"}' \
      "${address}" clinical.case.v1.CaseService/GetCase 2>&1 | sed 's/^/    /' || true
    echo
  fi
  if [[ -x "${ROOT}/services/${svc}/demo.sh" ]]; then
    echo "\$ services/${svc}/demo.sh ${address}"
    "${ROOT}/services/${svc}/demo.sh" "${address}" | sed 's/^/    /'
  fi
done
