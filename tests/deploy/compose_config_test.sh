#!/usr/bin/env bash
# docker-compose.yml is accepted by Debian's docker-compose (`config -q`, the same parser and
# schema `up` uses), and the resolved file keeps the suite's rules: Kafka 3.9.x in KRaft
# with SASL_SSL only and ACLs from deploy/local/kafka/acls.txt, Redis with AOF and ACL users,
# the topic job with 12 partitions / retention.ms=-1 / cleanup.policy=delete, all five
# services health-gated, non-root, read-only, on loopback ports, each with its own
# credentials volume and its own TLS volume (mutual TLS, certificates from the `pki` job that
# runs deploy/local/lib/pki.sh), verifying tokens of the Keycloak service (the local
# platform's version, HTTPS only, the realm of deploy/local/keycloak/realm.py). The two
# one-shot scripts are also run here, outside a container, and what they make is checked:
# SPIFFE IDs of the compose namespace, host names, keys, chain, one identity per volume, a
# realm without the test signing key. A deliberately broken copy of the file must be
# rejected, so the check can fail.
source "$(dirname "$0")/lib.sh"

command -v docker-compose >/dev/null || apt_install docker-compose
command -v docker-compose >/dev/null || fail "docker-compose is not installed"
# docker-compose is a Debian Python program; its interpreter has PyYAML.
readonly PY=/usr/bin/python3
"${PY}" -c "import yaml" 2>/dev/null || fail "${PY} lacks PyYAML (python3-yaml)"

compose_file="${REPO_ROOT}/docker-compose.yml"
docker-compose -f "${compose_file}" config -q || fail "docker-compose config rejected ${compose_file}"
note "docker-compose $(docker-compose version --short): config accepted"

resolved=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "${resolved}" "${broken_dir:-}" "${work}"' EXIT
docker-compose -f "${compose_file}" config > "${resolved}"

keycloak_version=$(sed -n 's/^readonly KEYCLOAK_VERSION="\(.*\)"$/\1/p' "${REPO_ROOT}/deploy/local/lib/keycloak.sh")
[[ -n ${keycloak_version} ]] || fail "cannot read KEYCLOAK_VERSION from deploy/local/lib/keycloak.sh"

# check_rules RESOLVED_FILE: the suite's rules on a resolved compose file.
check_rules() {
"${PY}" - "$1" "${REPO_ROOT}/deploy/docker/compose-secrets.sh" "${keycloak_version}" <<'PYEOF'
import re, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
secrets_script = open(sys.argv[2]).read()
keycloak_version = sys.argv[3]
svcs = cfg["services"]
errors = []
def check(cond, msg):
    if not cond: errors.append(msg)

kafka = svcs.get("kafka", {})
check(re.fullmatch(r"apache/kafka:3\.9\.\d+", kafka.get("image", "")), "kafka must be apache/kafka:3.9.x")
# The broker's configuration is written by the secrets job (deploy/docker/compose-secrets.sh).
for needle in ("process.roles=broker,controller", "offsets.topic.replication.factor=1",
               "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
               "auto.create.topics.enable=false",
               "listener.security.protocol.map=CLIENT:SASL_SSL,BROKER:SASL_SSL,CONTROLLER:SSL",
               "sasl.enabled.mechanisms=SCRAM-SHA-512", "allow.everyone.if.no.acl.found=false",
               "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"):
    check(needle in secrets_script, f"the broker configuration lacks {needle!r}")
check("PLAINTEXT" not in secrets_script, "the broker must have no plaintext listener")
kafka_command = " ".join(kafka.get("command", []))
check("server.properties" in kafka_command and "kafka-storage.sh format" in kafka_command,
      "kafka must run the secrets job's configuration, formatted with the admin credential")
check(any(str(v).startswith("kafka-secrets:") and str(v).endswith(":ro") for v in kafka.get("volumes", [])),
      "kafka must mount its secrets read-only")
check("healthcheck" in kafka, "kafka needs a healthcheck")
check(kafka.get("depends_on", {}).get("secrets", {}).get("condition") == "service_completed_successfully",
      "kafka must wait for the secrets job")
access = svcs.get("kafka-access", {})
check(access.get("depends_on", {}).get("kafka", {}).get("condition") == "service_healthy",
      "the access job must wait for a healthy kafka")
check(any("acls.txt" in str(v) for v in access.get("volumes", [])),
      "the access job must apply deploy/local/kafka/acls.txt")

redis = svcs.get("redis", {})
check(redis.get("image", "").startswith("redis:7"), "redis must be Redis 7")
cmd = redis.get("command", [])
check("--appendonly" in cmd and cmd[cmd.index("--appendonly") + 1] == "yes", "redis must run with AOF")
check("--aclfile" in cmd, "redis must run with ACL users (no default user)")
check("user default off" in secrets_script, "the Redis default user must be off")
check("healthcheck" in redis, "redis needs a healthcheck")

topics = svcs.get("kafka-topics", {})
script = " ".join(topics.get("command", []) if isinstance(topics.get("command"), list) else [topics.get("command", "")])
for needle in ("clinical.case.events.v1:12", "clinical.scheduling.events.v1:12",
               "clinical.notification.events.v1:12", "clinical.access.v1:12",
               "clinical.audit.checkpoints.v1:1", "clinical.case.organisation.v1:12",
               "--topic clinical.access.policies.v1", "cleanup.policy=compact", "--partitions", "retention.ms=-1",
               "cleanup.policy=delete", "--if-not-exists", "--command-config"):
    check(needle in script, f"topic job lacks {needle!r}")
check(topics.get("depends_on", {}).get("kafka-access", {}).get("condition") == "service_completed_successfully",
      "topic job must wait for the users and ACLs")

ports = {"case": 50051, "scheduling": 50052, "audit": 50053, "notification": 50054, "views": 50055}

def volume_names(service):
    return [str(v).split(":")[0] for v in service.get("volumes", [])]

# The PKI job: the local platform's pki.sh, the only holder of the CA key, one volume per consumer.
pki = svcs.get("pki", {})
pki_mounts = [str(v) for v in pki.get("volumes", [])]
check(any(v.endswith(":/pki.sh:ro") and "deploy/local/lib/pki.sh" in v for v in pki_mounts),
      "the pki job must run deploy/local/lib/pki.sh (one PKI for the local platform and compose)")
check(any("deploy/docker/compose-pki.sh" in v for v in pki_mounts), "the pki job must run deploy/docker/compose-pki.sh")
for consumer in list(ports) + ["keycloak", "operator"]:
    check(any(v.startswith(f"{consumer}-tls:/out/{consumer}") for v in pki_mounts), f"the pki job must write {consumer}-tls")
for name, s in svcs.items():
    if name != "pki":
        check("pki" not in volume_names(s), f"{name}: only the pki job may mount the CA's key (volume pki)")

# Keycloak: the local platform's version, HTTPS only with the CA's certificate, the realm.
keycloak = svcs.get("keycloak", {})
check(keycloak.get("image") == f"quay.io/keycloak/keycloak:{keycloak_version}",
      f"keycloak must be quay.io/keycloak/keycloak:{keycloak_version} (deploy/local/lib/keycloak.sh)")
kc_cmd = keycloak.get("command", [])
for flag in ("start", "--import-realm", "--http-enabled=false", "--https-port=8443",
             "--https-certificate-file=/etc/keycloak/tls/tls.crt",
             "--https-certificate-key-file=/etc/keycloak/tls/tls.key", "--hostname=https://keycloak:8443"):
    check(flag in kc_cmd, f"keycloak must run with {flag}")
check("start-dev" not in kc_cmd, "keycloak must not run in development mode")
check("keycloak-tls:/etc/keycloak/tls:ro" in [str(v) for v in keycloak.get("volumes", [])],
      "keycloak must mount its certificate read-only")
check("keycloak-import:/opt/keycloak/data/import:ro" in [str(v) for v in keycloak.get("volumes", [])],
      "keycloak must import the realm volume")
check("healthcheck" in keycloak, "keycloak needs a healthcheck")
for job in ("pki", "keycloak-realm"):
    check(keycloak.get("depends_on", {}).get(job, {}).get("condition") == "service_completed_successfully",
          f"keycloak must wait for the {job} job")
realm_job = svcs.get("keycloak-realm", {})
check(any("deploy/local/keycloak/realm.py" in str(v) for v in realm_job.get("volumes", [])),
      "the realm job must write the realm with deploy/local/keycloak/realm.py")
for p in keycloak.get("ports", []):
    check(p.get("host_ip") == "127.0.0.1" if isinstance(p, dict) else str(p).startswith("127.0.0.1:"),
          f"keycloak: publish on loopback only ({p})")
for name, port in ports.items():
    s = svcs.get(name)
    if s is None:
        errors.append(f"service {name} missing"); continue
    check(s.get("build", {}).get("dockerfile") == f"services/{name}/Dockerfile", f"{name}: builds from its Dockerfile")
    e = s.get("environment", {})
    check(e.get("CLINICAL_GRPC_HOST") == "0.0.0.0", f"{name}: must listen on 0.0.0.0 in the container")
    check(str(e.get("CLINICAL_GRPC_PORT")) == str(port), f"{name}: CLINICAL_GRPC_PORT {port}")
    check(str(e.get("CLINICAL_METRICS_PORT")) == "9464", f"{name}: CLINICAL_METRICS_PORT 9464")
    check(e.get("CLINICAL_KAFKA_BOOTSTRAP") == "kafka:9093", f"{name}: Kafka bootstrap (SASL_SSL listener)")
    check(e.get("CLINICAL_KAFKA_SECURITY_PROTOCOL") == "SASL_SSL", f"{name}: Kafka over SASL_SSL")
    check(e.get("CLINICAL_KAFKA_SASL_USERNAME") == name, f"{name}: logs in to Kafka as itself")
    check(any(str(v).startswith(f"{name}-secrets:") and str(v).endswith(":ro") for v in s.get("volumes", [])),
          f"{name}: mounts its own credentials volume read-only")
    uses_redis = name in ("views", "audit")
    check((e.get("CLINICAL_REDIS_USERNAME") == name) == uses_redis, f"{name}: Redis ACL user only for views and audit")
    # Mutual TLS with its own identity only; tokens from the compose Keycloak.
    mounts = [str(v) for v in s.get("volumes", [])]
    check(f"{name}-tls:/etc/clinical/tls:ro" in mounts, f"{name}: mounts its own TLS volume read-only at /etc/clinical/tls")
    for other in list(ports) + ["keycloak", "operator"]:
        check(other == name or f"{other}-tls" not in volume_names(s), f"{name}: mounts {other}'s TLS volume")
    for variable, file in (("CERT", "tls.crt"), ("KEY", "tls.key"), ("CA", "ca.crt")):
        check(e.get(f"CLINICAL_TLS_{variable}_FILE") == f"/etc/clinical/tls/{file}",
              f"{name}: CLINICAL_TLS_{variable}_FILE must be /etc/clinical/tls/{file}")
    issuer = e.get("CLINICAL_OIDC_ISSUER", "")
    check(issuer == "https://keycloak:8443/realms/clinical",
          f"{name}: CLINICAL_OIDC_ISSUER must be the compose Keycloak's issuer, not {issuer!r}")
    check(e.get("CLINICAL_OIDC_CA_FILE") == "/etc/clinical/tls/ca.crt", f"{name}: trusts Keycloak's certificate through the suite's CA")
    check(e.get("CLINICAL_OIDC_AUDIENCE") == "clinical-api", f"{name}: audience clinical-api")
    check(e.get("CLINICAL_OIDC_ROLES_CLAIM") == "realm_access.roles", f"{name}: Keycloak's realm roles")
    hc = s.get("healthcheck", {}).get("test", [])
    check(hc == ["CMD", "/usr/local/bin/clinical_health_check", f"127.0.0.1:{port}"], f"{name}: gRPC health check on {port}: {hc}")
    dep = s.get("depends_on", {})
    check(dep.get("kafka-topics", {}).get("condition") == "service_completed_successfully",
          f"{name}: must start after the topic job succeeded")
    check(dep.get("pki", {}).get("condition") == "service_completed_successfully",
          f"{name}: must start after its certificate was made")
    check(dep.get("keycloak", {}).get("condition") == "service_healthy",
          f"{name}: must start after Keycloak is healthy (it reads the issuer's keys at start)")
    check(s.get("user", "").split(":")[0] not in ("", "0", "root"), f"{name}: must run as a non-root user")
    check(s.get("read_only") is True, f"{name}: read-only root file system")
    check("ALL" in s.get("cap_drop", []), f"{name}: drop ALL capabilities")
    for p in s.get("ports", []):
        check(p.get("host_ip") == "127.0.0.1" if isinstance(p, dict) else str(p).startswith("127.0.0.1:"),
              f"{name}: publish on loopback only ({p})")
check(svcs["views"]["depends_on"].get("redis", {}).get("condition") == "service_healthy",
      "views must wait for a healthy redis")
check(svcs["views"]["environment"].get("CLINICAL_REDIS_HOST") == "redis", "views: Redis host")
check(svcs["case"]["environment"].get("CLINICAL_WRITER_ID"), "case: a stable writer id")
check(svcs["scheduling"]["environment"].get("CLINICAL_WRITER_ID"), "scheduling: a stable writer id")
check(svcs["notification"]["environment"].get("CLINICAL_WRITER_ID"), "notification: a stable writer id")
if errors:
    print("\n".join("FAIL: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
print(f"compose rules hold for {len(svcs)} services", file=sys.stderr)
PYEOF
}
check_rules "${resolved}" || fail "docker-compose.yml breaks the suite's rules"
# The rules can fail: a service that mounts another's TLS identity, or trusts a plain-HTTP
# issuer, is refused.
for mutation in tls issuer; do
  "${PY}" - "${resolved}" "${work}/mutated-${mutation}.yml" "${mutation}" <<'PYEOF'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
views = cfg["services"]["views"]
if sys.argv[3] == "tls":
    views["volumes"] = [v.replace("views-tls:", "case-tls:") for v in views["volumes"]]
else:
    views["environment"]["CLINICAL_OIDC_ISSUER"] = "http://keycloak:8080/realms/clinical"
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
PYEOF
  if check_rules "${work}/mutated-${mutation}.yml" 2>/dev/null; then fail "the rules accepted a broken file (${mutation})"; fi
done

# What the one-shot jobs make, made here with the same scripts (outside a container).
PKI_LIB="${REPO_ROOT}/deploy/local/lib/pki.sh" PKI="${work}/pki" OUT="${work}/out" \
  bash "${REPO_ROOT}/deploy/docker/compose-pki.sh" 2>/dev/null || fail "compose-pki.sh failed"
for consumer in case scheduling audit notification views keycloak operator; do
  dir="${work}/out/${consumer}"
  [[ $(cd "${dir}" && ls -A | sort | tr '\n' ' ') == "ca.crt tls.crt tls.key " ]] ||
    fail "${consumer}: its volume must hold exactly tls.crt, tls.key and ca.crt"
  openssl verify -CAfile "${dir}/ca.crt" "${dir}/tls.crt" >/dev/null || fail "${consumer}: certificate does not chain to the CA"
  openssl pkey -in "${dir}/tls.key" -noout -text 2>/dev/null | grep -q 'ASN1 OID: prime256v1' ||
    fail "${consumer}: key is not EC P-256"
  head -1 "${dir}/tls.key" | grep -q -- '-----BEGIN PRIVATE KEY-----' || fail "${consumer}: key is not PKCS#8"
  [[ $(openssl x509 -in "${dir}/tls.crt" -noout -pubkey | openssl pkey -pubin -outform DER | od -An -tx1) == \
     $(openssl pkey -in "${dir}/tls.key" -pubout -outform DER | od -An -tx1) ]] || fail "${consumer}: key and certificate do not match"
  san=$(openssl x509 -in "${dir}/tls.crt" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')
  case ${consumer} in
    keycloak) want="DNS:keycloak,DNS:localhost,IPAddress:127.0.0.1" ;;
    operator) want="URI:spiffe://clinical.local/ns/compose/sa/operator,DNS:localhost,IPAddress:127.0.0.1" ;;
    *) want="URI:spiffe://clinical.local/ns/compose/sa/${consumer},DNS:${consumer},DNS:localhost,IPAddress:127.0.0.1" ;;
  esac
  [[ ${san} == "${want}" ]] || fail "${consumer}: SAN ${san}, want ${want}"
  openssl x509 -in "${dir}/tls.crt" -noout -ext extendedKeyUsage | grep -q 'TLS Web Server Authentication, TLS Web Client Authentication' ||
    fail "${consumer}: certificate must allow server and client auth"
done
cmp -s "${work}/out/case/tls.key" "${work}/out/views/tls.key" && fail "two services share a key"
REALM_PY="${REPO_ROOT}/deploy/local/keycloak/realm.py" SECRETS="${work}/realm-secrets" IMPORT="${work}/import" \
  sh "${REPO_ROOT}/deploy/docker/compose-keycloak-realm.sh" >/dev/null || fail "compose-keycloak-realm.sh failed"
"${PY}" - "${work}/import/clinical-realm.json" <<'PYEOF' || fail "the compose realm is not as it should be"
import json, sys
realm = json.load(open(sys.argv[1]))
keys = [k["name"] for k in realm["components"]["org.keycloak.keys.KeyProvider"]]
assert realm["realm"] == "clinical" and realm["sslRequired"] == "all", realm["realm"]
assert "test-signing" not in keys, f"the compose realm must not publish the test signing key: {keys}"
PYEOF
note "pki and realm jobs: one identity per volume, SPIFFE IDs of namespace compose, realm without the test key"

# The check can fail: an unknown service option and a bad depends_on condition are rejected.
broken_dir=$(mktemp -d)
sed 's|^    image: clinical/case-service:dev$|&\n    restart_policy: always|' "${compose_file}" > "${broken_dir}/a.yml"
sed 's/condition: service_completed_successfully/condition: service_finished/' "${compose_file}" > "${broken_dir}/b.yml"
for broken in a b; do
  cmp -s "${compose_file}" "${broken_dir}/${broken}.yml" && fail "could not break the file (${broken})"
  if docker-compose -f "${broken_dir}/${broken}.yml" config -q 2>/dev/null; then
    fail "docker-compose accepted a broken file (${broken})"
  fi
done
note "broken copies rejected; PASS"
