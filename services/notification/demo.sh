#!/usr/bin/env bash
# Demo for the notification service: the case and scheduling demos have assigned cases in
# "demo-tenant" to cm-demo-0 and cm-demo-1; their notifications are in the inboxes. Shows
# each manager's unread count and newest notifications (ids, titles and links only: no
# patient data), marks cm-demo-0's newest one read, and shows the count again; then sets
# cm-demo-0's preferences (Berlin time, quiet 22:00-07:00, no reminders on other channels)
# and reads them back — through grpcurl and reflection, as any client would.
# Usage: services/notification/demo.sh [HOST:PORT] (default 127.0.0.1:50054).
set -euo pipefail
address="${1:-127.0.0.1:50054}"
run="${CLINICAL_DEMO_RUN:-$(date +%s)}"
GRPCURL="${GRPCURL:-$(command -v grpcurl || echo /root/.cache/clinical-platform/bin/grpcurl)}"
# shellcheck source=../../deploy/local/lib/client.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/local/lib/client.sh"  # login, mutual TLS
as() { local user=$1; shift  # a case manager of demo-tenant
  clinical_grpcurl -H "authorization: Bearer $(clinical_token "$user")" "$@"; }
call() { local user=$1 method=$2 body=$3
  as "$user" -d "$body" "$address" "clinical.notification.v1.NotificationService/$method"; }
field() { sed -n "s/.*\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\}.*/\1/p" | head -1; }

# The service follows the case topic asynchronously: wait (bounded) for the first
# notification of cm-demo-0 to arrive.
for _ in $(seq 1 50); do
  count=$(call cm-demo-0 GetUnreadCount '{"recipient_id":"cm-demo-0"}' | field unread_count)
  [[ -n "$count" && "$count" != "0" ]] && break
  sleep 0.2
done

for cm in cm-demo-0 cm-demo-1; do
  unread=$(call "$cm" GetUnreadCount "{\"recipient_id\":\"$cm\"}" | field unread_count)
  echo "== $cm: unread ${unread:-0}"
  call "$cm" ListInbox "{\"recipient_id\":\"$cm\",\"page_size\":3}" \
    | { grep -E '"(title|link|type|priority|created_at)"' || echo "  (empty)"; } | sed 's/^ */  /'
done

newest=$(call cm-demo-0 ListInbox '{"recipient_id":"cm-demo-0","unread_only":true,"page_size":1}' \
  | field notification_id)
if [[ -n "$newest" ]]; then
  call cm-demo-0 MarkRead "{\"command_id\":\"demo-$run-read\",\"recipient_id\":\"cm-demo-0\",
    \"notification_id\":\"$newest\"}" >/dev/null
  unread=$(call cm-demo-0 GetUnreadCount '{"recipient_id":"cm-demo-0"}' | field unread_count)
  echo "cm-demo-0 read $newest; unread now ${unread:-0}"
fi

# Preferences are events on the notification topic (audited); the answer carries the version.
call cm-demo-0 SetPreferences "{\"command_id\":\"demo-$run-prefs\",\"recipient_id\":\"cm-demo-0\",
  \"preferences\":{\"time_zone\":\"Europe/Berlin\",
  \"quiet_hours\":{\"start_minute\":1320,\"end_minute\":420},
  \"opted_out_types\":[\"reminder\"]}}" >/dev/null
echo "== cm-demo-1 asking for cm-demo-0's inbox (an inbox is its recipient's):"
call cm-demo-1 ListInbox '{"recipient_id":"cm-demo-0"}' 2>&1 | sed -n 's/.*Code: /  /p' || true
echo "== privacy-demo: emergency-access notifications (if someone broke the glass)"
call privacy-demo ListInbox '{"recipient_id":"privacy-demo","page_size":3}' \
  | { grep -E '"(title|detail|priority)"' || echo "  (none)"; } | sed 's/^ */  /'
echo "== cm-demo-0 preferences"
call cm-demo-0 GetPreferences '{"recipient_id":"cm-demo-0"}' \
  | grep -E '"(time_zone|start_minute|end_minute|version)"|reminder' | sed 's/^ */  /'
