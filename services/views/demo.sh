#!/usr/bin/env bash
# Demo for the views service: prints the caseload, worklist and balancing views and this
# month's outcomes for tenant "demo-tenant" — the cases that services/case/demo.sh opened,
# assigned to cm-demo-0 / cm-demo-1 and asked to close — through grpcurl and reflection.
# A case manager reads their own caseload; sup-demo, who supervises demo-team, a member's
# too; another case manager's is refused (Trust II).
# Usage: services/views/demo.sh [HOST:PORT] (default 127.0.0.1:50055). Read-only.
set -euo pipefail
address="${1:-127.0.0.1:50055}"
GRPCURL="${GRPCURL:-$(command -v grpcurl || echo /root/.cache/clinical-platform/bin/grpcurl)}"
# shellcheck source=../../deploy/local/lib/client.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/local/lib/client.sh"  # login, mutual TLS
# As a person of demo-tenant; the role is the one the realm grants them (in the token).
as() { local user=$1 method=$3 body=$4
  clinical_grpcurl -max-time 15 -H "authorization: Bearer $(clinical_token "$user")" \
    -d "$body" "$address" "clinical.views.v1.ViewsService/$method"; }
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
month="{\"dimension\":\"DIMENSION_TENANT\",\"period_kind\":\"PERIOD_KIND_MONTH\",\"period_at\":\"$now\"}"

# The case demo's commands reached Kafka just now; the view applies them within moments.
# Wait (bounded) until they show: the case demo opens 3 cases per run.
for attempt in $(seq 1 30); do
  opened=$(as sup-demo supervisor GetOutcomes "$month" 2>/dev/null \
    | sed -En 's/.*"(cases_opened|casesOpened)": "([0-9]+)".*/\2/p' | head -1)
  if [[ "${opened:-0}" -ge 3 ]]; then break; fi
  if [[ $attempt -eq 30 ]]; then echo "the views have not caught up after 30 s" >&2; exit 1; fi
  sleep 1
done

echo "== caseload of cm-demo-0 (as the case manager)"
as cm-demo-0 case_manager GetCaseload '{"case_manager_id":"cm-demo-0"}'
echo "== worklist of cm-demo-0: who needs attention today"
as cm-demo-0 case_manager GetWorklist '{"case_manager_id":"cm-demo-0"}'
echo "== caseload of cm-demo-1, as sup-demo who supervises demo-team"
as sup-demo supervisor GetCaseload '{"case_manager_id":"cm-demo-1"}'
echo "== cm-demo-1 asking for cm-demo-0's caseload (not theirs):"
as cm-demo-1 case_manager GetCaseload '{"case_manager_id":"cm-demo-0"}' 2>&1 | sed -n 's/.*Code: /  /p' || true
echo "== rollup per program (supervisor)"
as sup-demo supervisor ListRollups '{"dimension":"DIMENSION_PROGRAM"}'
echo "== who has room for a new elder_care case of acuity 4"
as sup-demo supervisor SuggestCaseManagers '{"program":"elder_care","acuity":4}'
echo "== outcomes of demo-tenant this month"
as sup-demo supervisor GetOutcomes "$month"
