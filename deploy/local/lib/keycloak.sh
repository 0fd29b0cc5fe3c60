# shellcheck shell=bash
# The local identity provider: Keycloak's distribution from Maven Central, run in production
# mode over HTTPS (the platform CA's certificate) on loopback, with the realm that
# deploy/local/keycloak/realm.py writes (sourced by platform.sh).
#
# Keycloak 26 needs Java 21 or newer; the machine's default Java may be 17 (the Kafka broker
# runs on it), so a newer JDK is looked up beside it (KEYCLOAK_JAVA_HOME, else the newest
# /usr/lib/jvm/* of version 21 or more). The distribution is unpacked and "built" (Quarkus
# augmentation, about 30 s) once into the cache; each platform state folder runs its own
# hard-linked copy with its own database (H2 file), so test runs never share state.

readonly KEYCLOAK_VERSION="26.7.3"
readonly KEYCLOAK_DIST="${CACHE_DIR}/keycloak-${KEYCLOAK_VERSION}"
readonly KEYCLOAK_REALM="clinical"

keycloak_java_home() {
  if [[ -n "${KEYCLOAK_JAVA_HOME:-}" ]]; then
    echo "${KEYCLOAK_JAVA_HOME}"
    return
  fi
  local best="" best_major=0 jdk major
  for jdk in /usr/lib/jvm/*/; do
    [[ -x "${jdk}bin/java" ]] || continue
    major="$("${jdk}bin/java" -XshowSettings:properties -version 2>&1 |
      sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
    [[ -n "${major}" ]] && ((major >= 21 && major > best_major)) && { best="${jdk%/}"; best_major="${major}"; }
  done
  [[ -n "${best}" ]] || die "Keycloak needs Java 21 or newer; none found under /usr/lib/jvm (set KEYCLOAK_JAVA_HOME)"
  echo "${best}"
}

keycloak_fetch() {
  if [[ -f "${KEYCLOAK_DIST}/.complete" ]]; then
    log "Keycloak ${KEYCLOAK_VERSION} cached in ${KEYCLOAK_DIST}"
    return
  fi
  command -v mvn >/dev/null || die "maven is not installed (run: $0 install)"
  local tmp="${KEYCLOAK_DIST}.partial"
  rm -rf "${tmp}" && mkdir -p "${tmp}"
  log "resolving Keycloak ${KEYCLOAK_VERSION} from Maven Central"
  mvn -q -B -Dstyle.color=never dependency:copy \
    "-Dartifact=org.keycloak:keycloak-quarkus-dist:${KEYCLOAK_VERSION}:zip" -DoutputDirectory="${tmp}" >&2 ||
    die "Maven did not deliver keycloak-quarkus-dist ${KEYCLOAK_VERSION}"
  (cd "${tmp}" && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(".")' \
    "keycloak-quarkus-dist-${KEYCLOAK_VERSION}.zip") || die "cannot unpack Keycloak"
  rm -f "${tmp}/keycloak-quarkus-dist-${KEYCLOAK_VERSION}.zip"
  local home="${tmp}/keycloak-${KEYCLOAK_VERSION}"
  chmod +x "${home}"/bin/*.sh
  # Build-time options, fixed once: an embedded file database, health checks on the
  # management port. Runtime options (ports, certificates, hostname) come at start.
  log "building Keycloak (Quarkus augmentation, once)"
  JAVA_HOME="$(keycloak_java_home)" "${home}/bin/kc.sh" build --db=dev-file --health-enabled=true \
    >"${tmp}/build.log" 2>&1 || die "kc.sh build failed: $(tail -5 "${tmp}/build.log")"
  rm -rf "${home}/data"
  touch "${home}/.complete"
  rm -rf "${KEYCLOAK_DIST}"
  mv "${home}" "${KEYCLOAK_DIST}"
  rm -rf "${tmp}"
  log "Keycloak ${KEYCLOAK_VERSION} ready in ${KEYCLOAK_DIST}"
}

# keycloak_secret NAME: a random secret kept in ${STATE_DIR}/secrets (made once).
platform_secret() {
  local file="${STATE_DIR}/secrets/$1"
  mkdir -p "${STATE_DIR}/secrets" && chmod 700 "${STATE_DIR}/secrets"
  [[ -s "${file}" ]] || (umask 077 && openssl rand -hex 24 >"${file}")
  echo "${file}"
}

keycloak_issuer() { echo "https://127.0.0.1:$1/realms/${KEYCLOAK_REALM}"; }

keycloak_answers() {  # keycloak_answers MANAGEMENT_PORT: the realm is imported and ready
  curl -fsS --max-time 2 --cacert "${STATE_DIR}/pki/ca.crt" "https://127.0.0.1:$1/health/ready" 2>/dev/null |
    grep -q '"UP"'
}

# For wait_until while starting: ready, or stop waiting at once when the process died.
keycloak_started() {  # keycloak_started MANAGEMENT_PORT
  pid_alive "${STATE_DIR}/keycloak.pid" ||
    die "keycloak exited: $(tail -5 "${STATE_DIR}/keycloak/stdout.log" "${STATE_DIR}/keycloak/keycloak.log" 2>/dev/null)"
  keycloak_answers "$1"
}

keycloak_start() {  # keycloak_start HTTPS_PORT MANAGEMENT_PORT
  [[ -f "${KEYCLOAK_DIST}/.complete" ]] || die "Keycloak missing (run: $0 fetch)"
  local dir="${STATE_DIR}/keycloak" port="$1" management_port="$2"
  mkdir -p "${dir}"
  # A private hard-linked copy: Keycloak writes under its home (data/, transaction logs).
  if [[ "$(cat "${dir}/version" 2>/dev/null)" != "${KEYCLOAK_VERSION}" ]]; then
    rm -rf "${dir}/home"
    cp -al "${KEYCLOAK_DIST}" "${dir}/home"
    echo "${KEYCLOAK_VERSION}" >"${dir}/version"
  fi
  mkdir -p "${dir}/home/data/import"
  # The realm's test signing key (RS256; Keycloak imports RSA keys with a certificate).
  if [[ ! -f "${dir}/test-signing.key" ]]; then
    (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "${dir}/test-signing.key" 2>/dev/null)
    openssl req -x509 -new -key "${dir}/test-signing.key" -subj "/CN=clinical test signing key" -days 3650 \
      -out "${dir}/test-signing.crt" 2>/dev/null
  fi
  platform_secret demo-users.password >/dev/null
  platform_secret keycloak-provisioner.secret >/dev/null
  local admin_password
  admin_password="$(cat "$(platform_secret keycloak-admin.password)")"
  (umask 077 && python3 "${SCRIPT_DIR}/keycloak/realm.py" "${STATE_DIR}/secrets" "${dir}/test-signing.key" \
    "${dir}/test-signing.crt" >"${dir}/home/data/import/${KEYCLOAK_REALM}-realm.json") ||
    die "cannot write the Keycloak realm"
  # --import-realm skips a realm that already exists, so a realm that changed since the last
  # start (new roles or people after an upgrade) is imported afresh: the local realm holds
  # nothing but what realm.py defines and the people tests create on the fly.
  local realm_sum
  realm_sum="$(sha256sum "${dir}/home/data/import/${KEYCLOAK_REALM}-realm.json" | cut -d' ' -f1)"
  if [[ "$(cat "${dir}/realm.sha256" 2>/dev/null)" != "${realm_sum}" ]]; then
    rm -rf "${dir}/home/data/h2"
    echo "${realm_sum}" >"${dir}/realm.sha256"
  fi
  # The bootstrap administrator exists only until the realm is imported once; its password
  # never leaves the secrets folder.
  KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD="${admin_password}" \
    JAVA_HOME="$(keycloak_java_home)" JAVA_OPTS_KC_HEAP="-Xms64m -Xmx512m" \
    setsid "${dir}/home/bin/kc.sh" start --optimized --import-realm \
    --http-enabled=false --https-port="${port}" --http-host=127.0.0.1 \
    --https-certificate-file="${STATE_DIR}/pki/keycloak.crt" \
    --https-certificate-key-file="${STATE_DIR}/pki/keycloak.key" \
    --hostname="https://127.0.0.1:${port}" \
    --http-management-port="${management_port}" --http-management-host=127.0.0.1 \
    --https-management-certificate-file="${STATE_DIR}/pki/keycloak.crt" \
    --https-management-certificate-key-file="${STATE_DIR}/pki/keycloak.key" \
    --log=file --log-file="${dir}/keycloak.log" --log-level=warn,org.keycloak.services:info \
    >"${dir}/stdout.log" 2>&1 </dev/null &
  echo $! >"${STATE_DIR}/keycloak.pid"
}
