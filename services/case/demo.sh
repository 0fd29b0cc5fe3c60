#!/usr/bin/env bash
# Demo workload for the case service: opens a few cases with invented patients, assigns
# them, records a contact note and requests a closure — through grpcurl and reflection, as
# any external client would. Usage: services/case/demo.sh [HOST:PORT] (default 127.0.0.1:50051).
# Idempotent: command ids are derived from a run id, so a re-run with the same
# CLINICAL_DEMO_RUN writes nothing new.
set -euo pipefail
address="${1:-127.0.0.1:50051}"
run="${CLINICAL_DEMO_RUN:-$(date +%s)}"
grpcurl="${GRPCURL:-$(command -v grpcurl || echo /root/.cache/clinical-platform/bin/grpcurl)}"
as() { local user=$1 role=$2; shift 2
  "$grpcurl" -plaintext -H "x-clinical-user: $user" -H "x-clinical-role: $role" \
    -H "x-clinical-tenant: demo-tenant" "$@"; }
call() { local user=$1 role=$2 method=$3 body=$4
  as "$user" "$role" -d "$body" "$address" "clinical.case.v1.CaseService/$method"; }
field() { sed -n "s/.*\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\}.*/\1/p" | head -1; }

programs=(elder_care transitions_of_care behavioral_health)
for i in 0 1 2; do
  program=${programs[$i]}
  case_id=$(call intake-1 case_manager OpenCase "{\"command_id\":\"demo-$run-open-$i\",
    \"patient\":{\"mrn\":\"DEMO-$run-$i\",\"given_name\":\"Demo\",\"family_name\":\"Patient $i\",
    \"birth_date\":\"1950-01-0$((i + 1))\",\"gender\":\"ADMINISTRATIVE_GENDER_UNKNOWN\"},
    \"program\":\"$program\",\"priority\":$((i + 2)),\"acuity\":$((i + 2)),
    \"referral\":{\"source\":\"REFERRAL_SOURCE_HOSPITAL\",\"reason\":\"demo referral\"},
    \"initial_status\":\"CASE_STATUS_ACTIVE\",\"team_id\":\"team-demo\"}" | field case_id)
  call sup-1 supervisor AssignCase "{\"case_id\":\"$case_id\",\"command_id\":\"demo-$run-assign-$i\",
    \"case_manager_id\":\"cm-demo-$((i % 2))\"}" >/dev/null
  call cm-demo-$((i % 2)) case_manager AcceptAssignment \
    "{\"case_id\":\"$case_id\",\"command_id\":\"demo-$run-accept-$i\"}" >/dev/null
  call cm-demo-$((i % 2)) case_manager AddNote "{\"case_id\":\"$case_id\",\"command_id\":\"demo-$run-note-$i\",
    \"kind\":\"NOTE_KIND_CONTACT\",\"channel\":\"CONTACT_CHANNEL_PHONE\",\"text\":\"demo call\"}" >/dev/null
  version=$(call cm-demo-$((i % 2)) case_manager RequestClosure "{\"case_id\":\"$case_id\",
    \"command_id\":\"demo-$run-close-$i\",\"reason\":\"CLOSURE_REASON_GOALS_MET\",
    \"outcome_summary\":\"demo outcome\",\"satisfaction\":\"SATISFACTION_SATISFIED\"}" | field version)
  echo "case $case_id program=$program version=$version"
done
