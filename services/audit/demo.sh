#!/usr/bin/env bash
# Demo for the audit service: lists the audit log's chains, verifies every chain (hash
# chain, source records, signed checkpoints) and shows demo-tenant's latest records and one
# FHIR AuditEvent, through grpcurl and reflection, as an auditor; then re-checks the last
# day's allowed reads against the policy and relationships in force at each (RecheckAccess,
# once through grpcurl and once through the clinical-audit command line).
# Usage: services/audit/demo.sh [HOST:PORT] (default 127.0.0.1:50053). Read-only.
set -euo pipefail
address="${1:-127.0.0.1:50053}"
GRPCURL="${GRPCURL:-$(command -v grpcurl || echo /root/.cache/clinical-platform/bin/grpcurl)}"
# shellcheck source=../../deploy/local/lib/client.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/local/lib/client.sh"  # login, mutual TLS
call() { local method=$1 body=$2  # as aud-demo, an auditor of demo-tenant
  clinical_grpcurl -max-time 60 -H "authorization: Bearer $(clinical_token aud-demo)" \
    -d "$body" "$address" "clinical.audit.v1.AuditService/$method"; }

# The other demos' events reached Kafka just now; the chainer appends them within moments.
for attempt in $(seq 1 30); do
  chained=$(call QueryRecords '{"page_size":1}' 2>/dev/null | grep -c '"chain_id"' || true)
  if [[ "${chained:-0}" -ge 1 ]]; then break; fi
  if [[ $attempt -eq 30 ]]; then echo "nothing of demo-tenant chained after 30 s" >&2; exit 1; fi
  sleep 1
done

echo "== chains of the audit log (head sequence and last signed checkpoint)"
call ListChains '{}'
echo "== verify every non-empty chain"
chains=$(call ListChains '{}' | sed -En 's/.*"chain_id": "([^"]+)".*/\1/p')
for chain in $chains; do
  call VerifyChain "{\"chain_id\":\"$chain\"}" | tr -d '\n' | sed -E 's/ +/ /g'
  echo
done
echo "== the three oldest records of demo-tenant"
call QueryRecords '{"page_size":3}'
echo "== one of them as a FHIR R4 AuditEvent"
call ExportAuditEvents '{"page_size":1,"format":"EXPORT_FORMAT_NDJSON"}'
echo "== policy at the time: the last day's allowed reads that would have been denied"
from=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)
call RecheckAccess "{\"from\":\"$from\",\"page_size\":20}"
cli="${CLINICAL_AUDIT_CLI:-$(dirname "${BASH_SOURCE[0]}")/../../build/services/audit/clinical-audit}"
if [[ -x "$cli" ]]; then
  echo "== the same with clinical-audit recheck (exit 3 when there are findings)"
  pki="$(clinical_platform_value CLINICAL_PKI_DIR)"
  status=0
  CLINICAL_TLS_CERT_FILE="$pki/operator.crt" CLINICAL_TLS_KEY_FILE="$pki/operator.key" \
    CLINICAL_TLS_CA_FILE="$pki/ca.crt" CLINICAL_TOKEN="$(clinical_token aud-demo)" \
    "$cli" --address="$address" recheck --from="$from" --page-size=20 || status=$?
  if [[ $status -ne 0 && $status -ne 3 ]]; then exit "$status"; fi
else
  echo "(clinical-audit not built at $cli: skipped the command line)"
fi
