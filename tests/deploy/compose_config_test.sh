#!/usr/bin/env bash
# docker-compose.yml is accepted by Debian's docker-compose (`config -q`, the same parser and
# schema `up` uses), and the resolved file keeps the suite's rules: Kafka 3.9.x in KRaft
# with SASL_SSL only and ACLs from deploy/local/kafka/acls.txt, Redis with AOF and ACL users,
# the topic job with 12 partitions / retention.ms=-1 / cleanup.policy=delete, all five
# services health-gated, non-root, read-only, on loopback ports, each with its own
# credentials volume. A deliberately broken copy must be rejected, so the check can fail.
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
trap 'rm -rf "${resolved}" "${broken_dir:-}"' EXIT
docker-compose -f "${compose_file}" config > "${resolved}"

"${PY}" - "${resolved}" "${REPO_ROOT}/deploy/docker/compose-secrets.sh" <<'PYEOF'
import re, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
secrets_script = open(sys.argv[2]).read()
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
               "clinical.audit.checkpoints.v1:1", "--partitions", "retention.ms=-1",
               "cleanup.policy=delete", "--if-not-exists", "--command-config"):
    check(needle in script, f"topic job lacks {needle!r}")
check(topics.get("depends_on", {}).get("kafka-access", {}).get("condition") == "service_completed_successfully",
      "topic job must wait for the users and ACLs")

ports = {"case": 50051, "scheduling": 50052, "audit": 50053, "notification": 50054, "views": 50055}
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
    hc = s.get("healthcheck", {}).get("test", [])
    check(hc == ["CMD", "/usr/local/bin/clinical_health_check", f"127.0.0.1:{port}"], f"{name}: gRPC health check on {port}: {hc}")
    dep = s.get("depends_on", {})
    check(dep.get("kafka-topics", {}).get("condition") == "service_completed_successfully",
          f"{name}: must start after the topic job succeeded")
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
