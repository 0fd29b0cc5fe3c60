#!/usr/bin/env bash
# docker-compose.yml is accepted by Debian's docker-compose (`config -q`, the same parser and
# schema `up` uses), and the resolved file keeps the suite's rules: Kafka 3.9.x in KRaft,
# Redis with AOF, the topic job with 12 partitions / retention.ms=-1 / cleanup.policy=delete,
# all five services health-gated, non-root, read-only, on loopback ports. A deliberately
# broken copy must be rejected, so the check can fail.
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

"${PY}" - "${resolved}" <<'PYEOF'
import re, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
svcs = cfg["services"]
errors = []
def check(cond, msg):
    if not cond: errors.append(msg)

kafka = svcs.get("kafka", {})
check(re.fullmatch(r"apache/kafka:3\.9\.\d+", kafka.get("image", "")), "kafka must be apache/kafka:3.9.x")
env = kafka.get("environment", {})
check(env.get("KAFKA_PROCESS_ROLES") == "broker,controller", "kafka must be a KRaft combined node")
for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
    check(str(env.get(key)) == "1", f"kafka {key} must be 1 on a single node")
check(str(env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE")) == "false", "auto topic creation must be off")
check("healthcheck" in kafka, "kafka needs a healthcheck")

redis = svcs.get("redis", {})
check(redis.get("image", "").startswith("redis:7"), "redis must be Redis 7")
cmd = redis.get("command", [])
check("--appendonly" in cmd and cmd[cmd.index("--appendonly") + 1] == "yes", "redis must run with AOF")
check("healthcheck" in redis, "redis needs a healthcheck")

topics = svcs.get("kafka-topics", {})
script = " ".join(topics.get("command", []) if isinstance(topics.get("command"), list) else [topics.get("command", "")])
for needle in ("clinical.case.events.v1", "clinical.scheduling.events.v1",
               "clinical.notification.events.v1", "--partitions 12",
               "retention.ms=-1", "cleanup.policy=delete", "--if-not-exists"):
    check(needle in script, f"topic job lacks {needle!r}")
check(topics.get("depends_on", {}).get("kafka", {}).get("condition") == "service_healthy",
      "topic job must wait for a healthy kafka")

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
    check(e.get("CLINICAL_KAFKA_BOOTSTRAP") == "kafka:9092", f"{name}: Kafka bootstrap")
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
