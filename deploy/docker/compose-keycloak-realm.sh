#!/bin/sh
# The `keycloak-realm` one-shot job of docker-compose.yml (python image): the realm that
# the compose suite's Keycloak imports, written by the local platform's own
# deploy/local/keycloak/realm.py (roles, tenant and staff-id claims, the audience
# clinical-api, people of two tenants). No test signing key: in compose, only Keycloak's
# own keys sign tokens.
#   ${SECRETS}   demo-users.password (every person's password, for logging in from the
#                host) and keycloak-provisioner.secret; made once, random
#   ${IMPORT}    clinical-realm.json for Keycloak's --import-realm (owner 1000, the Keycloak
#                image's user). It holds the passwords above: only Keycloak mounts it.
# Keycloak imports a realm only if it does not exist yet, so a changed password takes effect
# once Keycloak's own database is gone (`docker compose rm -sf keycloak`).
# POSIX sh; needs python3. REALM_PY, SECRETS, IMPORT default to /realm.py, /secrets, /import.
set -eu

REALM_PY="${REALM_PY:-/realm.py}"
SECRETS="${SECRETS:-/secrets}"
IMPORT="${IMPORT:-/import}"
umask 077

secret() {  # secret FILE: 24 random bytes as hex, made once, no trailing newline
  [ -s "$1" ] || python3 -c 'import secrets, sys; sys.stdout.write(secrets.token_hex(24))' >"$1"
}
mkdir -p "${SECRETS}" "${IMPORT}"
chmod 0755 "${IMPORT}"  # Keycloak's user lists it; the file itself is its own, mode 0400
secret "${SECRETS}/demo-users.password"
secret "${SECRETS}/keycloak-provisioner.secret"
python3 "${REALM_PY}" "${SECRETS}" >"${IMPORT}/.clinical-realm.json"
chmod 0400 "${IMPORT}/.clinical-realm.json"
if [ "$(id -u)" -eq 0 ]; then chown 1000:1000 "${IMPORT}/.clinical-realm.json"; fi
mv -f "${IMPORT}/.clinical-realm.json" "${IMPORT}/clinical-realm.json"
echo "keycloak realm ready"
