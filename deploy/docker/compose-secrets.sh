#!/bin/sh
# The docker compose suite's credentials (the `secrets` one-shot job of docker-compose.yml),
# the compose twin of deploy/local/lib/{pki,kafka,redis}.sh: a private CA and the broker's
# certificate for the host name "kafka", a random password per Kafka principal and per Redis
# user, the broker's configuration (SASL_SSL only, ACLs deny by default), Redis's ACL file.
# Each consumer gets its own volume, so a service can read its own password and no other:
#   ${OUT}/kafka   the broker and the admin tools (owner 1000, the apache/kafka image's user)
#   ${OUT}/redis   Redis's ACL file and admin password (owner 999, the redis image's user)
#   ${OUT}/<svc>   kafka.password, ca.crt and, for views and audit, redis.password (owner 10001)
# Made once (a second run keeps what exists) into volumes that never leave the host; for
# development only — production credentials come from the deployment (docs/operations.md).
# POSIX sh (busybox in alpine); needs openssl. OUT defaults to /out.
set -eu

OUT="${OUT:-/out}"
SERVICES="case scheduling audit notification views"
umask 077

command -v openssl >/dev/null 2>&1 || apk add --no-cache openssl >/dev/null
mkdir -p "${OUT}/kafka" "${OUT}/redis"
for svc in ${SERVICES}; do mkdir -p "${OUT}/${svc}"; done

secret() {  # secret FILE: 24 random bytes as hex, made once, no trailing newline
  [ -s "$1" ] || printf '%s' "$(openssl rand -hex 24)" >"$1"
}

# The CA and the broker's certificate (EC P-256, PKCS#8, SAN kafka and localhost).
k="${OUT}/kafka"
if [ ! -s "${k}/ca.crt" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${k}/ca.key" 2>/dev/null
  openssl req -x509 -new -key "${k}/ca.key" -sha256 -days 365 -subj "/O=clinical compose/CN=clinical compose CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "${k}/ca.crt" 2>/dev/null
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${k}/kafka.key" 2>/dev/null
  openssl req -new -key "${k}/kafka.key" -subj "/O=clinical compose/CN=kafka" -out "${k}/kafka.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyAgreement" \
    "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:kafka,DNS:localhost,IP:127.0.0.1" >"${k}/kafka.ext"
  openssl x509 -req -in "${k}/kafka.csr" -CA "${k}/ca.crt" -CAkey "${k}/ca.key" -CAcreateserial -sha256 \
    -days 365 -extfile "${k}/kafka.ext" -out "${k}/kafka.crt" 2>/dev/null
  cat "${k}/kafka.key" "${k}/kafka.crt" >"${k}/keystore.pem"
  rm -f "${k}/kafka.csr" "${k}/kafka.ext" "${k}/ca.srl"
fi

# Kafka: admin and one SCRAM user per service.
secret "${k}/admin.password"
for svc in ${SERVICES}; do
  secret "${k}/${svc}.password"
  cp "${k}/${svc}.password" "${OUT}/${svc}/kafka.password"
  cp "${k}/ca.crt" "${OUT}/${svc}/ca.crt"
done
admin_password="$(cat "${k}/admin.password")"
# The admin's Java client settings for the tools (topics, users, ACLs, health check).
cat >"${k}/admin.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${admin_password}";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/secrets/ca.crt
EOF
# StorageTool's arguments, which it reads from a file (@FILE): the admin credential is
# stored at format time without appearing on a command line.
printf '%s\n' --add-scram "SCRAM-SHA-512=[name=admin,password=${admin_password}]" >"${k}/format.args"
# The broker: one combined KRaft node, as deploy/local/lib/kafka.sh configures it.
cat >"${k}/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@kafka:9095
listeners=CLIENT://:9093,BROKER://:9094,CONTROLLER://:9095
advertised.listeners=CLIENT://kafka:9093,BROKER://kafka:9094
listener.security.protocol.map=CLIENT:SASL_SSL,BROKER:SASL_SSL,CONTROLLER:SSL
inter.broker.listener.name=BROKER
controller.listener.names=CONTROLLER
log.dirs=/var/lib/kafka/data
ssl.keystore.type=PEM
ssl.keystore.location=/etc/kafka/secrets/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/secrets/ca.crt
ssl.endpoint.identification.algorithm=https
listener.name.controller.ssl.client.auth=required
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${admin_password}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:CN=kafka,O=clinical compose
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
num.partitions=12
group.initial.rebalance.delay.ms=0
log.retention.ms=-1
log.retention.bytes=-1
EOF

# Redis: admin, views and audit; the default user is off (deploy/local/lib/redis.sh).
hash() { printf '#%s' "$(printf '%s' "$(cat "$1")" | openssl dgst -sha256 -r | cut -d' ' -f1)"; }
secret "${OUT}/redis/admin.password"
commands="-@all +@read +@write +@transaction +@scripting +@connection -@admin -@dangerous -script|flush -script|kill -function"
{
  echo "user default off resetkeys resetchannels -@all"
  echo "user admin on $(hash "${OUT}/redis/admin.password") ~* &* +@all"
  for svc in views audit; do
    secret "${OUT}/redis/${svc}.password"
    cp "${OUT}/redis/${svc}.password" "${OUT}/${svc}/redis.password"
    extra=""
    [ "${svc}" = views ] || extra=" -scan"
    echo "user ${svc} on $(hash "${OUT}/redis/${svc}.password") resetkeys ~${svc}:* ~${svc}.* resetchannels ${commands}${extra}"
  done
} >"${OUT}/redis/users.acl"

# Owners: each volume readable by its consumer only.
chown -R 1000:1000 "${OUT}/kafka"
chown -R 999:999 "${OUT}/redis"
for svc in ${SERVICES}; do chown -R 10001:10001 "${OUT}/${svc}"; done
chmod 0400 "${OUT}"/*/*
echo "compose secrets ready"
