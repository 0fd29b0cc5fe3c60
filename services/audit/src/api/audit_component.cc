#include "audit_component.h"

#include <atomic>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "audit_grpc_service.h"
#include "audit_log.h"
#include "chain.h"
#include "chainer.h"
#include "clinical/kafka/cluster.h"
#include "clinical/redis/options.h"
#include "clinical/relations/followed_directory.h"
#include "recheck_source.h"

namespace clinical::audit {
namespace {

struct Runtime {
  std::unique_ptr<CheckpointSigner> signer;
  std::unique_ptr<CheckpointVerifier> verifier;
  std::unique_ptr<Chainer> chainer;
  std::unique_ptr<AuditLog> log;
  std::unique_ptr<RecheckSource> recheck;
  // The tenant of every case, for the access decisions: a case id of another tenant named in
  // an audit query is NOT_FOUND like a case that does not exist (docs/security.md).
  std::unique_ptr<relations::FollowedDirectory> cases;
  std::unique_ptr<AuditGrpcService> service;
  // Grants readiness once the chainer has caught up (see Setup).
  std::thread readiness;
  std::atomic<bool> stopping{false};

  ~Runtime() {
    stopping = true;
    if (readiness.joinable()) readiness.join();
  }
};

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("config key '", key, "': cannot read the file"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> SplitTopics(const std::string& list) {
  std::vector<std::string> topics;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    std::string topic(absl::StripAsciiWhitespace(part));
    if (!topic.empty()) topics.push_back(topic);
  }
  return topics;
}

absl::StatusOr<std::function<void()>> Setup(const config::Config& config, grpcx::ServiceHost& host,
                                            logging::Logger& logger) {
  auto cluster = kafka::ClusterFromConfig(config, "audit");
  if (!cluster.ok()) return cluster.status();
  auto redis = redis::EndpointFromConfig(config);
  if (!redis.ok()) return redis.status();
  // Wrong credentials stop the start; Redis being down does not (the chainer retries and
  // readiness waits for it).
  if (auto probe = redis::Connection::Connect(*redis, absl::Seconds(2));
      !probe.ok() && probe.status().code() != absl::StatusCode::kUnavailable) {
    return probe.status();
  }
  const std::vector<std::string> event_topics = SplitTopics(config.GetString("audit-source-topics"));
  // By default the access topic chained is the standard one (grpcx::StandardOptions), the
  // topic this process also records its own reads on, so the log shows who read it.
  const std::string access_topic = config.GetString("audit-access-topic").empty()
                                       ? config.GetString("access-topic")
                                       : config.GetString("audit-access-topic");
  if (event_topics.empty() && access_topic.empty()) {
    return absl::InvalidArgumentError("config keys 'audit-source-topics' and 'access-topic' are both empty");
  }
  // The policy snapshots share the access records' clinical.access. prefix; they are read
  // by RecheckAccess, never chained as records.
  const std::string policy_topic = config.GetString("access-policy-topic");
  if (policy_topic.empty()) return absl::InvalidArgumentError("config key 'access-policy-topic' is empty");
  if (absl::Status topics = CheckSourceTopics(event_topics, access_topic, policy_topic); !topics.ok()) {
    return topics;
  }
  const int64_t recheck_max = config.GetInt("recheck-max-records");
  if (recheck_max < 1) return absl::InvalidArgumentError("config key 'recheck-max-records' must be at least 1");
  const int64_t every = config.GetInt("checkpoint-every");
  if (every < 1) return absl::InvalidArgumentError("config key 'checkpoint-every' must be at least 1");
  const absl::Duration interval = config.GetDuration("checkpoint-interval");
  if (interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("config key 'checkpoint-interval' must be positive");
  }

  auto runtime = std::make_shared<Runtime>();
  if (const std::string path = config.GetString("signing-key-file"); !path.empty()) {
    auto pem = ReadFile(path, "signing-key-file");
    if (!pem.ok()) return pem.status();
    auto signer = CheckpointSigner::FromPem(*pem);
    if (!signer.ok()) return signer.status();
    runtime->signer = std::move(*signer);
  } else {
    logger.Warn("no signing key (signing-key-file): checkpoints are not signed; "
                "the log is hash-chained but verifiable only against its source");
  }
  std::string public_pem;
  if (const std::string path = config.GetString("verify-key-file"); !path.empty()) {
    auto pem = ReadFile(path, "verify-key-file");
    if (!pem.ok()) return pem.status();
    public_pem = *pem;
  } else if (runtime->signer != nullptr) {
    public_pem = runtime->signer->public_pem();
  }
  if (!public_pem.empty()) {
    auto verifier = CheckpointVerifier::FromPem(public_pem);
    if (!verifier.ok()) return verifier.status();
    runtime->verifier = std::move(*verifier);
  }
  std::string patient_key;
  if (const std::string path = config.GetString("patient-index-key-file"); !path.empty()) {
    auto key = ReadFile(path, "patient-index-key-file");
    if (!key.ok()) return key.status();
    if (key->size() < 16) {
      return absl::InvalidArgumentError("config key 'patient-index-key-file': key must be at least 16 bytes");
    }
    patient_key = std::move(*key);
  }

  ChainerOptions chainer;
  chainer.kafka = *cluster;
  chainer.redis = *redis;
  chainer.event_topics = event_topics;
  chainer.access_topic = access_topic;
  chainer.checkpoint_topic = config.GetString("audit-topic");
  chainer.key_root = config.GetString("audit-key-root");
  chainer.checkpoint_every = every;
  chainer.checkpoint_interval = interval;
  chainer.patient_index_key = patient_key;
  chainer.kafka_timeout = config.GetDuration("kafka-timeout");
  chainer.redis_timeout = config.GetDuration("redis-timeout");
  auto created = Chainer::Create(chainer, runtime->signer.get(), [] { return absl::Now(); }, logger);
  if (!created.ok()) return created.status();
  runtime->chainer = std::move(*created);

  AuditLogOptions log;
  log.kafka = *cluster;
  log.redis = *redis;
  log.key_root = chainer.key_root;
  log.event_topics = event_topics;
  log.access_topic = access_topic;
  log.checkpoint_topic = chainer.checkpoint_topic;
  log.patient_index_key = patient_key;
  log.redis_timeout = chainer.redis_timeout;
  log.kafka_timeout = chainer.kafka_timeout;
  runtime->log = std::make_unique<AuditLog>(log, runtime->verifier.get());
  RecheckSourceOptions recheck;
  recheck.cluster = *cluster;
  recheck.case_topic = config.GetString("case-topic");
  recheck.organisation_topic = config.GetString("organisation-topic");
  recheck.policy_topic = policy_topic;
  recheck.timeout = chainer.kafka_timeout;
  runtime->recheck = MakeKafkaRecheckSource(recheck);
  relations::FollowedDirectory::Options follow;
  follow.cluster = *cluster;
  follow.case_topic = recheck.case_topic;
  follow.sync_timeout = chainer.kafka_timeout;
  follow.name = "cases";
  auto followed = relations::FollowedDirectory::Start(std::move(follow), logger);
  if (!followed.ok()) return followed.status();
  runtime->cases = std::move(*followed);
  host.SetRelations(&runtime->cases->directory());
  RecheckLimits limits;
  limits.max_records = static_cast<size_t>(recheck_max);
  runtime->service = std::make_unique<AuditGrpcService>(*runtime->log, *runtime->recheck,
                                                        [] { return absl::Now(); }, host.callers(), limits);
  host.AddService(runtime->service.get());
  host.metrics().AddCollector([runtime, collect = ChainerMetrics(*runtime->chainer)](
                                  metrics::Sink& sink) { collect(sink); });
  runtime->chainer->Start();
  // Ready only once caught up: the chains set up and every existing source partition
  // chained to its end, so a query never answers from a log that is still catching up
  // after a restart. Topics that do not exist yet hold nothing back. Liveness is SERVING
  // meanwhile (grpcx ServiceHost).
  host.HoldReadiness();
  runtime->readiness = std::thread([raw = runtime.get(), &host, &logger] {
    while (!raw->stopping) {
      const ChainStats stats = raw->chainer->Stats();
      if (stats.started && (stats.chains == 0 || stats.lag == 0)) {
        logger.Info("audit log caught up", {{"chains", stats.chains}});
        host.SetServing(true);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a poll, bounded by stop
    }
  });
  logger.Info("audit log started",
              {{"event_topics", event_topics.size()},
               {"access_topic", access_topic},
               {"checkpoint_topic", chainer.checkpoint_topic},
               {"signing", runtime->signer != nullptr},
               {"verifying", runtime->verifier != nullptr},
               {"key_id", runtime->signer != nullptr ? runtime->signer->key_id() : ""},
               {"patient_index", !patient_key.empty()},
               {"policy_topic", policy_topic},
               {"organisation_topic", recheck.organisation_topic}});
  return std::function<void()>([runtime, &logger] {
    runtime->stopping = true;
    if (runtime->readiness.joinable()) runtime->readiness.join();
    runtime->chainer->Stop();
    const ChainStats stats = runtime->chainer->Stats();
    logger.Info("audit chainer stopped", {{"records_chained", stats.records_chained},
                                          {"checkpoints_signed", stats.checkpoints_signed}});
  });
}

}  // namespace

Component AuditLogComponent() {
  using config::OptionType;
  Component component;
  component.options = kafka::ClusterOptions();
  for (config::Option& option : redis::EndpointOptions()) component.options.push_back(std::move(option));
  component.options.insert(component.options.end(), {
      {"audit-source-topics", OptionType::kString,
       "clinical.case.events.v1,clinical.case.organisation.v1,clinical.scheduling.events.v1,"
       "clinical.notification.events.v1",
       "comma-separated event topics to chain (topics not created yet are waited for)"},
      {"audit-access-topic", OptionType::kString, "",
       "access-record topic to chain (default: the access-topic this process records on)"},
      {"audit-topic", OptionType::kString, "clinical.audit.checkpoints.v1",
       "the topic this service writes: signed checkpoints (created if missing; the audit "
       "principal may create and write only topics under clinical.audit.)"},
      {"audit-key-root", OptionType::kString, "audit",
       "prefix of the audit log's Redis keys: 'audit' or 'audit.<name>' (the audit Redis user "
       "may touch only these keys)"},
      {"signing-key-file", OptionType::kString, "",
       "PEM file with the Ed25519 private key that signs checkpoints (empty: no checkpoints)"},
      {"verify-key-file", OptionType::kString, "",
       "PEM file with the Ed25519 public key VerifyChain checks checkpoints with "
       "(default: the signing key's public half)"},
      {"patient-index-key-file", OptionType::kString, "",
       "file with the secret (>= 16 bytes) that keys the patient index's MRN hashes "
       "(empty: no queries by patient)"},
      {"checkpoint-every", OptionType::kInt, "100", "sign a chain's head after this many records"},
      {"checkpoint-interval", OptionType::kDuration, "10s",
       "or once its oldest unsigned record is this old"},
      // RecheckAccess (policy at the time) reads these per call; the case topic is the
      // replay's too (the same key, declared once).
      {"case-topic", OptionType::kString, "clinical.case.events.v1", "the case event topic"},
      {"organisation-topic", OptionType::kString, "clinical.case.organisation.v1",
       "the organisation event topic (teams, supervisors)"},
      {"access-policy-topic", OptionType::kString, "clinical.access.policies.v1",
       "the services' access policy snapshots (compacted; read, never chained)"},
      {"recheck-max-records", OptionType::kInt, "100000",
       "allowed reads one RecheckAccess call may re-check (more: narrow the request)"},
      {"kafka-timeout", OptionType::kDuration, "20s", "bound on each broker operation"},
      {"redis-timeout", OptionType::kDuration, "2s", "bound on each Redis round trip"},
  });
  component.setup = Setup;
  return component;
}

void AddComponent(grpcx::ServiceSpec& spec, Component component) {
  for (config::Option& option : component.options) {
    const bool known = std::any_of(spec.extra_options.begin(), spec.extra_options.end(),
                                   [&](const config::Option& o) { return o.name == option.name; });
    if (!known) spec.extra_options.push_back(std::move(option));  // shared keys (kafka-*) once
  }
  if (!spec.setup) {
    spec.setup = std::move(component.setup);
    return;
  }
  spec.setup = [first = std::move(spec.setup), second = std::move(component.setup)](
                   const config::Config& config, grpcx::ServiceHost& host,
                   logging::Logger& logger) -> absl::StatusOr<std::function<void()>> {
    auto first_stop = first(config, host, logger);
    if (!first_stop.ok()) return first_stop.status();
    auto second_stop = second(config, host, logger);
    if (!second_stop.ok()) {
      (*first_stop)();
      return second_stop.status();
    }
    return std::function<void()>([a = std::move(*first_stop), b = std::move(*second_stop)] {
      b();
      a();
    });
  };
}

grpcx::ServiceSpec AuditServiceSpec() {
  grpcx::ServiceSpec spec;
  spec.name = "audit";
  spec.default_port = 50053;
  AddComponent(spec, AuditLogComponent());
  return spec;
}

}  // namespace clinical::audit
