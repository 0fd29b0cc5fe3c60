#!/usr/bin/env bash
# Demo workload for the scheduling service: calendars for the demo case managers, a case
# opened through the case service, an availability search, a weekly home-visit series
# booked in the first free slot, a conflicting booking refused with the appointment named,
# the rest of the series moved by a day, and the case's next appointment — through grpcurl
# and reflection, as any external client would. The scheduler (sched-demo) books; the
# assigned case manager reads the case's appointments, another case manager may not (Trust
# II). The cases are of "demo-team", supervised by sup-demo (the case demo sets the
# organisation up first).
# Usage: services/scheduling/demo.sh [HOST:PORT] (default 127.0.0.1:50052); the case
# service is CASE_ADDRESS, by default the port just below (the suite's layout: case on the
# base port, scheduling on the next). Command ids derive from a run id, so a
# re-run with the same CLINICAL_DEMO_RUN writes nothing new.
set -euo pipefail
address="${1:-127.0.0.1:50052}"
case_address="${CASE_ADDRESS:-${address%:*}:$((${address##*:} - 1))}"
run="${CLINICAL_DEMO_RUN:-$(date +%s)}"
GRPCURL="${GRPCURL:-$(command -v grpcurl || echo /root/.cache/clinical-platform/bin/grpcurl)}"
# shellcheck source=../../deploy/local/lib/client.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/local/lib/client.sh"  # login, mutual TLS
# Calls as a person of demo-tenant; the role shows what the realm grants them (the token
# carries it, never the request).
as() { local user=$1; shift 2
  clinical_grpcurl -H "authorization: Bearer $(clinical_token "$user")" "$@"; }
sched() { local method=$1 body=$2
  as sched-demo scheduler -d "$body" "$address" "clinical.scheduling.v1.SchedulingService/$method"; }
sched_as() { local user=$1 role=$2 method=$3 body=$4
  as "$user" "$role" -d "$body" "$address" "clinical.scheduling.v1.SchedulingService/$method"; }
cases() { local user=$1 role=$2 method=$3 body=$4
  as "$user" "$role" -d "$body" "$case_address" "clinical.case.v1.CaseService/$method"; }
field() { sed -n "s/.*\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\}.*/\1/p" | head -1; }

# Weekday office hours in New York, 15 minutes between visits, at most 8 a day. The command
# id is fixed per manager: a second demo run finds the calendar already there.
hours=""
for day in MONDAY TUESDAY WEDNESDAY THURSDAY FRIDAY; do
  hours+="{\"weekday\":\"WEEKDAY_$day\",\"start_minute\":540,\"end_minute\":1020},"
done
for cm in cm-demo-0 cm-demo-1; do
  sched CreateCalendar "{\"command_id\":\"demo-calendar-$cm\",\"owner_kind\":\"CALENDAR_OWNER_KIND_CASE_MANAGER\",
    \"owner_id\":\"$cm\",\"time_zone\":\"America/New_York\",\"working_hours\":[${hours%,}],
    \"buffer_minutes\":15,\"max_appointments_per_day\":8}" >/dev/null 2>&1 || true
done
echo "calendars: cm-demo-0, cm-demo-1 (Mon-Fri 09:00-17:00 America/New_York, 15 min buffer)"

open_case() { local i=$1
  local id
  id=$(cases intake-1 intake_coordinator OpenCase "{\"command_id\":\"demo-$run-sched-open-$i\",
    \"patient\":{\"mrn\":\"DEMO-S-$run-$i\",\"given_name\":\"Demo\",\"family_name\":\"Visitor $i\",
    \"birth_date\":\"1948-03-0$((i + 1))\",\"gender\":\"ADMINISTRATIVE_GENDER_UNKNOWN\"},
    \"program\":\"elder_care\",\"priority\":2,\"acuity\":2,
    \"referral\":{\"source\":\"REFERRAL_SOURCE_HOSPITAL\",\"reason\":\"demo referral\"},
    \"initial_status\":\"CASE_STATUS_ACTIVE\",\"team_id\":\"demo-team\"}" | field case_id)
  cases sup-demo supervisor AssignCase "{\"case_id\":\"$id\",\"command_id\":\"demo-$run-sched-assign-$i\",
    \"case_manager_id\":\"cm-demo-0\"}" >/dev/null
  echo "$id"
}
case_a=$(open_case 0)
case_b=$(open_case 1)
echo "cases $case_a and $case_b, both assigned to cm-demo-0"

from=$(date -u -d "+1 day" +%Y-%m-%dT00:00:00Z)
to=$(date -u -d "+8 days" +%Y-%m-%dT00:00:00Z)
slots=$(sched FindAvailableSlots "{\"case_id\":\"$case_a\",\"type\":\"APPOINTMENT_TYPE_HOME_VISIT\",
  \"duration\":\"3600s\",\"window_start_time\":\"$from\",\"window_end_time\":\"$to\",\"max_slots\":3}")
first=$(echo "$slots" | field start_time)
echo "first free hours for cm-demo-0 and the patient: $(echo "$slots" | sed -n 's/.*"start_time": "\(.*\)".*/\1/p' | tr '\n' ' ')"

booked=$(sched BookAppointment "{\"command_id\":\"demo-$run-book-series\",\"case_id\":\"$case_a\",
  \"type\":\"APPOINTMENT_TYPE_HOME_VISIT\",\"location\":\"patient home\",\"start_time\":\"$first\",
  \"duration\":\"3600s\",\"time_zone\":\"America/New_York\",
  \"recurrence\":{\"frequency\":\"FREQUENCY_WEEKLY\",\"count\":4}}")
series=$(echo "$booked" | field appointment_id)
echo "booked weekly home visits x4 from $first: appointment $series"

if out=$(sched BookAppointment "{\"command_id\":\"demo-$run-book-clash\",\"case_id\":\"$case_b\",
  \"type\":\"APPOINTMENT_TYPE_PHONE_FOLLOW_UP\",\"start_time\":\"$first\",\"duration\":\"1800s\"}" 2>&1); then
  echo "unexpected: the clashing booking was accepted"
else
  echo "clashing booking refused: $(echo "$out" | sed -n 's/.*Message: //p')"
fi

second=$(echo "$booked" | sed -n 's/.*"start_time": "\(.*\)".*/\1/p' | sed -n 2p)
moved_to=$(date -u -d "$second + 1 day" +%Y-%m-%dT%H:%M:%SZ)
version=$(sched RescheduleAppointment "{\"command_id\":\"demo-$run-move\",\"appointment_id\":\"$series\",
  \"index\":1,\"scope\":\"CHANGE_SCOPE_THIS_AND_FOLLOWING\",\"start_time\":\"$moved_to\",
  \"reason\":\"patient has dialysis that day\"}" | field version)
echo "occurrences 1-3 moved one day later (version $version)"

next=$(sched_as cm-demo-0 case_manager ListCaseAppointments "{\"case_id\":\"$case_a\"}" \
  | sed -n '/"next"/,$p' | field start_time)
echo "next appointment of case $case_a, as its case manager cm-demo-0: $next"
if out=$(sched_as cm-demo-1 case_manager ListCaseAppointments "{\"case_id\":\"$case_a\"}" 2>&1); then
  echo "unexpected: cm-demo-1 read the appointments of a case not theirs"
else
  echo "cm-demo-1 (not assigned, not on the care team): $(echo "$out" | sed -n 's/.*Code: //p')"
fi
