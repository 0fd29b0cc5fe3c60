#!/usr/bin/env bash
# Demo workload for the case service: sets up demo-tenant's organisation (as admin-demo:
# privacy-demo reviews emergency access; team "demo-team" supervised by sup-demo and sup-1
# with case managers cm-demo-0 and cm-demo-1), opens a few cases with invented patients as
# the intake coordinator intake-1, has sup-demo assign them, and the assigned case manager
# records a contact note, then the clinical content (PHQ-9 and social-needs
# assessments, a care team provider with consent, a care plan with a goal and a task, a
# referral to home health that is authorised and delivered, goal progress to achieved) and
# requests a closure — through grpcurl and reflection, as any external client would. Usage: services/case/demo.sh [HOST:PORT] (default 127.0.0.1:50051).
# Idempotent: the organisation's command ids are fixed, and the cases' are derived from a
# run id, so a re-run with the same CLINICAL_DEMO_RUN writes nothing new (and a new run
# leaves the organisation as it is).
set -euo pipefail
address="${1:-127.0.0.1:50051}"
run="${CLINICAL_DEMO_RUN:-$(date +%s)}"
GRPCURL="${GRPCURL:-$(command -v grpcurl || echo /root/.cache/clinical-platform/bin/grpcurl)}"
# shellcheck source=../../deploy/local/lib/client.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/local/lib/client.sh"  # login, mutual TLS
# Calls as a person of demo-tenant; the role shows what the realm grants them (the token
# carries it, never the request).
as() { local user=$1; shift 2
  clinical_grpcurl -H "authorization: Bearer $(clinical_token "$user")" "$@"; }
call() { local user=$1 role=$2 method=$3 body=$4
  as "$user" "$role" -d "$body" "$address" "clinical.case.v1.CaseService/$method"; }
field() { sed -n "s/.*\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\}.*/\1/p" | head -1; }

# Who supervises whom: what the access policies decide team supervision on. Administrators
# configure it; they take no clinical actions.
call admin-demo administrator ConfigureOrganisation '{"command_id":"demo-organisation",
  "privacy_officer_ids":["privacy-demo"]}' >/dev/null
call admin-demo administrator SetTeam '{"command_id":"demo-team","team":{"team_id":"demo-team",
  "name":"Demo team","supervisor_ids":["sup-demo","sup-1"],"member_ids":["cm-demo-0","cm-demo-1"]}}' >/dev/null

programs=(elder_care transitions_of_care behavioral_health)
for i in 0 1 2; do
  program=${programs[$i]}
  case_id=$(call intake-1 intake_coordinator OpenCase "{\"command_id\":\"demo-$run-open-$i\",
    \"patient\":{\"mrn\":\"DEMO-$run-$i\",\"given_name\":\"Demo\",\"family_name\":\"Patient $i\",
    \"birth_date\":\"1950-01-0$((i + 1))\",\"gender\":\"ADMINISTRATIVE_GENDER_UNKNOWN\"},
    \"program\":\"$program\",\"priority\":$((i + 2)),\"acuity\":$((i + 2)),
    \"referral\":{\"source\":\"REFERRAL_SOURCE_HOSPITAL\",\"reason\":\"demo referral\"},
    \"initial_status\":\"CASE_STATUS_ACTIVE\",\"team_id\":\"demo-team\"}" | field case_id)
  call sup-demo supervisor AssignCase "{\"case_id\":\"$case_id\",\"command_id\":\"demo-$run-assign-$i\",
    \"case_manager_id\":\"cm-demo-$((i % 2))\"}" >/dev/null
  call cm-demo-$((i % 2)) case_manager AcceptAssignment \
    "{\"case_id\":\"$case_id\",\"command_id\":\"demo-$run-accept-$i\"}" >/dev/null
  call cm-demo-$((i % 2)) case_manager AddNote "{\"case_id\":\"$case_id\",\"command_id\":\"demo-$run-note-$i\",
    \"kind\":\"NOTE_KIND_CONTACT\",\"channel\":\"CONTACT_CHANNEL_PHONE\",\"text\":\"demo call\"}" >/dev/null
  cm=cm-demo-$((i % 2))
  c() { call "$cm" case_manager "$1" "{\"case_id\":\"$case_id\",\"command_id\":\"demo-$run-$2-$i\",$3}"; }
  # Assessments: scored by the service (PHQ-9 item 9 > 0 would raise the risk to HIGH).
  c RecordAssessment phq9 '"instrument":"ASSESSMENT_INSTRUMENT_PHQ9","responses":[1,2,1,1,0,1,1,0,0]' >/dev/null
  c RecordAssessment sdoh '"instrument":"ASSESSMENT_INSTRUMENT_SOCIAL_NEEDS","responses":[0,1,1,0,0]' >/dev/null
  # Care team and consent: a referral without consent would be FAILED_PRECONDITION.
  member=$(c AddCareTeamMember member '"role":"CARE_TEAM_ROLE_PROVIDER","name":"Demo Home Health",
    "specialty":"skilled nursing","contact_preferences":[{"method":"CONTACT_METHOD_PHONE","value":"555-0100"}]' | field member_id)
  c RecordConsent consent "\"member_ids\":[\"$member\"],\"categories\":[\"INFORMATION_CATEGORY_CARE_PLAN\"],
    \"purposes\":[\"CONSENT_PURPOSE_CARE_COORDINATION\"],\"source\":\"CONSENT_SOURCE_SIGNED_FORM\"" >/dev/null
  # Care plan with a goal and a task (FHIR CarePlan / Goal / Task).
  c CreateCarePlan plan '"title":"demo plan","problems":["mobility after discharge"],"status":"CARE_PLAN_STATUS_ACTIVE"' >/dev/null
  goal=$(c AddGoal goal '"description":"walk 100 m unaided","measure":"metres walked","target_value":"100",
    "target_date":"2027-06-30","priority":"GOAL_PRIORITY_HIGH","problem_id":"problem-1",
    "lifecycle_status":"GOAL_LIFECYCLE_STATUS_ACTIVE"' | field goal_id)
  task=$(c AddCareTask task "\"description\":\"arrange physiotherapy\",\"goal_id\":\"$goal\",
    \"owner_id\":\"$cm\",\"priority\":\"TASK_PRIORITY_URGENT\",\"status\":\"TASK_STATUS_READY\"" | field task_id)
  c ChangeCareTaskStatus task-start "\"task_id\":\"$task\",\"status\":\"TASK_STATUS_IN_PROGRESS\"" >/dev/null
  c ChangeCareTaskStatus task-done "\"task_id\":\"$task\",\"status\":\"TASK_STATUS_COMPLETED\"" >/dev/null
  # A referral with exact cost: 6 authorised visits at $142.50, 6 delivered = $855.00.
  referral=$(c ReferToService referral "\"member_id\":\"$member\",\"service_type\":\"SERVICE_TYPE_HOME_HEALTH\",
    \"reason\":\"home physiotherapy\",\"requested_units\":8,\"unit_cost\":{\"currency_code\":\"USD\",
    \"minor_units\":14250},\"goal_id\":\"$goal\",\"shared_information\":[\"INFORMATION_CATEGORY_CARE_PLAN\"]" | field referral_id)
  # Authorising a referral is the team supervisor's (its access policy).
  call sup-demo supervisor AuthorizeServiceReferral "{\"case_id\":\"$case_id\",\"command_id\":\"demo-$run-authorize-$i\",\"referral_id\":\"$referral\",\"authorized_units\":6,
    \"authorization_number\":\"AUTH-$run-$i\"}" >/dev/null
  c RecordServiceDelivery deliver "\"referral_id\":\"$referral\",\"units\":6,
    \"delivered_on\":\"$(date -u +%Y-%m-%d)\"" >/dev/null
  c ChangeServiceReferralStatus referral-done "\"referral_id\":\"$referral\",\"status\":\"SERVICE_REFERRAL_STATUS_COMPLETED\"" >/dev/null
  c RecordGoalProgress progress "\"goal_id\":\"$goal\",\"achievement_status\":\"GOAL_ACHIEVEMENT_STATUS_ACHIEVED\",
    \"value\":\"120\"" >/dev/null
  c ChangeGoalStatus goal-done "\"goal_id\":\"$goal\",\"status\":\"GOAL_LIFECYCLE_STATUS_COMPLETED\"" >/dev/null
  c ChangeCarePlanStatus plan-done '"status":"CARE_PLAN_STATUS_COMPLETED"' >/dev/null
  version=$(call cm-demo-$((i % 2)) case_manager RequestClosure "{\"case_id\":\"$case_id\",
    \"command_id\":\"demo-$run-close-$i\",\"reason\":\"CLOSURE_REASON_GOALS_MET\",
    \"outcome_summary\":\"demo outcome\",\"satisfaction\":\"SATISFACTION_SATISFIED\"}" | field version)
  cost=$(call "$cm" case_manager GetCase "{\"case_id\":\"$case_id\"}" | tr -d '\n ' |
    sed -n 's/.*"deliveredCost":{"currencyCode":"USD","minorUnits":"\{0,1\}\([0-9]*\).*/\1/p;s/.*"delivered_cost":{"currency_code":"USD","minor_units":"\{0,1\}\([0-9]*\).*/\1/p' | head -1)
  echo "case $case_id program=$program version=$version delivered_cost_cents=${cost:-?}"
done
