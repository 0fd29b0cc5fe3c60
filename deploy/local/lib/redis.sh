# shellcheck shell=bash
# The local Redis (sourced by platform.sh): Debian's redis-server on 127.0.0.1 with AOF, and
# ACL users instead of an open default user:
#
#   default   off: a connection that does not authenticate can run nothing
#   admin     everything (tools, tests' harness, benchmarks)
#   views     only keys under its roots (views:*, views.*), only the command categories it
#   audit     uses (read, write, transactions, scripts), never admin or dangerous commands
#             (CONFIG, DEBUG, SHUTDOWN, ACL, FLUSHALL, KEYS, ...) — same for audit (audit:*,
#             audit.*)
#
# Passwords live in ${STATE_DIR}/secrets/redis-<user>.password; the ACL file holds only their
# SHA-256 hashes. Traffic is plaintext on loopback: Debian's hiredis 0.14 speaks no TLS
# (docs/security.md says how production protects this hop).

readonly REDIS_ADMIN_USER="admin"
readonly REDIS_SERVICE_USERS=(views audit)
# What a service user may run: its categories minus everything administrative or dangerous,
# minus the few script/function commands that would affect other users (flushing or killing
# scripts, server-side functions).
readonly REDIS_SERVICE_COMMANDS="-@all +@read +@write +@transaction +@scripting +@connection -@admin -@dangerous -script|flush -script|kill -function"
# SCAN lists every key name whatever the user's key patterns; only the views need it (they
# drop old versions with it).
redis_user_commands() {  # redis_user_commands USER
  case "$1" in
    views) echo "${REDIS_SERVICE_COMMANDS}" ;;
    *) echo "${REDIS_SERVICE_COMMANDS} -scan" ;;
  esac
}

redis_password_file() { echo "${STATE_DIR}/secrets/redis-$1.password"; }

redis_secrets() {
  local user
  for user in "${REDIS_ADMIN_USER}" "${REDIS_SERVICE_USERS[@]}"; do platform_secret "redis-${user}.password" >/dev/null; done
}

redis_password_hash() {  # redis_password_hash USER: "#<sha256>" as the ACL file wants it
  printf '#%s' "$(printf '%s' "$(cat "$(redis_password_file "$1")")" | sha256sum | cut -d' ' -f1)"
}

redis_write_acl() {  # the ACL file, rewritten at every start from the secrets
  local file="${STATE_DIR}/redis/users.acl" user
  {
    echo "user default off resetkeys resetchannels -@all"
    echo "user ${REDIS_ADMIN_USER} on $(redis_password_hash "${REDIS_ADMIN_USER}") ~* &* +@all"
    for user in "${REDIS_SERVICE_USERS[@]}"; do
      echo "user ${user} on $(redis_password_hash "${user}") resetkeys ~${user}:* ~${user}.* resetchannels $(redis_user_commands "${user}")"
    done
  } >"${file}.new"
  chmod 600 "${file}.new"
  mv "${file}.new" "${file}"
}

redis_start() {  # redis_start PORT
  mkdir -p "${STATE_DIR}/redis"
  redis_secrets
  redis_write_acl
  redis-server --bind 127.0.0.1 --port "$1" --dir "${STATE_DIR}/redis" \
    --aclfile "${STATE_DIR}/redis/users.acl" \
    --appendonly yes --appendfsync everysec --save "" \
    --daemonize yes --pidfile "${STATE_DIR}/redis.pid" \
    --logfile "${STATE_DIR}/redis/redis.log" >/dev/null
}

redis_answers() {  # redis_answers PORT: PING as admin (the password goes by environment)
  [[ "$(REDISCLI_AUTH="$(cat "$(redis_password_file "${REDIS_ADMIN_USER}")" 2>/dev/null)" \
    redis-cli --no-auth-warning --user "${REDIS_ADMIN_USER}" -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == "PONG" ]]
}
