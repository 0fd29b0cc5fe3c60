#!/usr/bin/env bash
# The `kafka-access` one-shot job of docker-compose.yml (apache/kafka image): as admin, gives
# every principal of deploy/local/kafka/acls.txt its SCRAM-SHA-512 credential (from the
# secrets job's files) and adds the file's ACLs. kafka-configs.sh takes the credential only
# as an argument, so it shows in this short-lived container's own process list while the
# call runs; nothing else runs there. Idempotent: a
# credential is upserted, an ACL that exists is left as it is. The compose twin of
# deploy/local/kafka/ApplyAccess.java (that one JVM needs a JDK; this image has a JRE, so
# here each line is one kafka-acls.sh call, once per `up`).
#   compose-kafka-access.sh ACL_FILE SECRETS_DIR BOOTSTRAP
set -euo pipefail
acls="$1" secrets="$2" bootstrap="$3"
bin="${KAFKA_BIN:-/opt/kafka/bin}"
admin=(--bootstrap-server "${bootstrap}" --command-config "${secrets}/admin.properties")

declare -A users=()
while read -r principal type pattern name operations; do
  [[ -z ${principal} || ${principal} == \#* ]] && continue
  users[${principal}]=1
  case "${type}" in
    TOPIC) resource=(--topic "${name}") ;;
    GROUP) resource=(--group "${name}") ;;
    TRANSACTIONAL_ID) resource=(--transactional-id "${name}") ;;
    *) echo "unsupported resource type ${type}" >&2; exit 1 ;;
  esac
  ops=()
  for op in ${operations//,/ }; do ops+=(--operation "${op}"); done
  "${bin}/kafka-acls.sh" "${admin[@]}" --add --allow-principal "User:${principal}" --allow-host '*' \
    "${ops[@]}" --resource-pattern-type "${pattern,,}" "${resource[@]}" >/dev/null
done < <(sed 's/#.*//' "${acls}")
for user in "${!users[@]}"; do
  "${bin}/kafka-configs.sh" "${admin[@]}" --alter --entity-type users --entity-name "${user}" \
    --add-config "SCRAM-SHA-512=[password=$(cat "${secrets}/${user}.password")]" >/dev/null
done
echo "kafka access ready: ${#users[@]} users, ACLs of $(basename "${acls}")"
