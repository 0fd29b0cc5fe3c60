// The audit service as a real process against the test run's Kafka and Redis: it chains a
// transactional event topic and an access topic, signs checkpoints onto its own topic, and
// answers over gRPC. Tampering with the stored log in each way (change, remove, reorder,
// append a forged record) is named by VerifyChain at the exact record; the untouched log
// verifies clean; a restart continues the chain; queries, the access report and the FHIR
// export (validated by a real FHIR R4 validator from PyPI) answer per tenant and role.
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "chain.h"
#include "clinical/access/snapshot.h"
#include "clinical/audit/v1/access.pb.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/audit/v1/audit_service.grpc.pb.h"
#include "clinical/audit/v1/replay_service.grpc.pb.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/scheduling/v1/events.pb.h"
#include "clinical/common/v1/envelope.pb.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "clinical/kafka/partitioner.h"
#include "clinical/relations/facts.h"
#include "clinical/redis/connection.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/wait.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"
#include "nlohmann/json.hpp"

namespace clinical::audit {
namespace {

namespace v1 = ::clinical::audit::v1;
using ::clinical::testing::Platform;
using ::clinical::testing::Subprocess;
using ::clinical::testing::UniqueName;
using ::clinical::testing::WaitUntil;

constexpr int64_t kBaseSeconds = 1767225600;  // 2026-01-01T00:00:00Z

int ListeningPort(const std::string& line) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.value("msg", "") != "listening") return 0;
  return parsed.value("port", 0);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

// A fresh Ed25519 key pair written as PEM files (private, public).
void WriteKeyPair(const std::string& private_path, const std::string& public_path) {
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* context = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  ASSERT_EQ(EVP_PKEY_keygen_init(context), 1);
  ASSERT_EQ(EVP_PKEY_keygen(context, &key), 1);
  EVP_PKEY_CTX_free(context);
  FILE* private_file = std::fopen(private_path.c_str(), "w");
  FILE* public_file = std::fopen(public_path.c_str(), "w");
  ASSERT_NE(private_file, nullptr);
  ASSERT_NE(public_file, nullptr);
  EXPECT_EQ(PEM_write_PrivateKey(private_file, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  EXPECT_EQ(PEM_write_PUBKEY(public_file, key), 1);
  std::fclose(private_file);
  std::fclose(public_file);
  EVP_PKEY_free(key);
}

std::string Envelope(const std::string& case_id, int version, const std::string& tenant,
                     const std::string& actor, const google::protobuf::Message& payload,
                     int64_t seconds) {
  common::v1::EventEnvelope event;
  event.set_event_id(UniqueName("evt"));
  event.set_aggregate_type("case");
  event.set_aggregate_id(case_id);
  event.set_aggregate_version(version);
  event.set_event_type(payload.GetDescriptor()->full_name());
  event.mutable_occurred_at()->set_seconds(seconds);
  event.mutable_recorded_at()->set_seconds(seconds + 1);
  event.mutable_actor()->set_user_id(actor);
  event.mutable_actor()->set_role(common::v1::ROLE_CASE_MANAGER);
  event.set_tenant_id(tenant);
  event.set_command_id(UniqueName("cmd"));
  event.set_schema_version(1);
  event.mutable_payload()->PackFrom(payload);
  return event.SerializeAsString();
}

std::string Access(const std::string& case_id, const std::string& tenant, const std::string& actor,
                   v1::AccessOutcome outcome, int64_t seconds) {
  v1::AccessRecord access;
  access.set_record_id(UniqueName("acc"));
  access.mutable_occurred_at()->set_seconds(seconds);
  access.set_actor_id(actor);
  access.set_actor_role("case_manager");
  access.set_tenant_id(tenant);
  access.set_service("case");
  access.set_method("/clinical.case.v1.CaseService/GetCase");
  access.set_resource_type("case");
  access.add_resource_ids(case_id);
  access.add_case_ids(case_id);
  access.set_purpose_of_use("TREAT");
  access.set_source_address("ipv4:127.0.0.1:40000");
  access.set_outcome(outcome);
  access.set_status_code(outcome == v1::ACCESS_OUTCOME_ALLOWED ? 0 : 7);
  return access.SerializeAsString();
}

struct Produced {
  std::string topic;
  int32_t partition;
  std::string value;
  std::string key = "";  // "" for a unique one
};

// Writes records to fixed partitions; events in Kafka transactions, like the writers do
// (their commit markers leave gaps in the offsets the chain must step over).
class Producer {
 public:
  explicit Producer(bool transactional) : transactional_(transactional) {
    kafka::Properties props = kafka::ProducerDefaults(Platform::Get().kafka_admin);
    if (transactional) props["transactional.id"] = UniqueName("audit-test-writer");
    auto conf = kafka::MakeConf(props);
    EXPECT_TRUE(conf.ok());
    std::string error;
    producer_.reset(RdKafka::Producer::create(conf->get(), error));
    EXPECT_NE(producer_, nullptr) << error;
    if (transactional) Check(producer_->init_transactions(30000));
  }
  void Send(const std::vector<Produced>& records) {
    if (transactional_) Check(producer_->begin_transaction());
    for (const Produced& record : records) {
      const std::string key = record.key.empty() ? UniqueName("k") : record.key;
      const RdKafka::ErrorCode err = producer_->produce(
          record.topic, record.partition, RdKafka::Producer::RK_MSG_COPY,
          const_cast<char*>(record.value.data()), record.value.size(), key.data(), key.size(), 0,
          nullptr);
      ASSERT_EQ(err, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(err);
    }
    if (transactional_) {
      Check(producer_->commit_transaction(30000));
    } else {
      ASSERT_EQ(producer_->flush(30000), RdKafka::ERR_NO_ERROR);
    }
  }

 private:
  static void Check(RdKafka::Error* raw) {
    std::unique_ptr<RdKafka::Error> error(raw);
    ASSERT_EQ(error, nullptr) << error->str();
  }
  bool transactional_;
  std::unique_ptr<RdKafka::Producer> producer_;
};

struct Who {
  std::string user = "auditor-1";
  std::string role = "auditor";
  std::string tenant = "tenant-a";
};

class AuditServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string("/tmp/" + UniqueName("audit-test"));
    ASSERT_EQ(mkdir(dir_->c_str(), 0700), 0);
    WriteKeyPair(*dir_ + "/signing.pem", *dir_ + "/public.pem");
    WriteFile(*dir_ + "/patient-index.key", "test-patient-index-key-0123456789");
    // Names within the audit principal's ACLs: it reads event topics (clinical.case.*) and
    // access records (clinical.access.*), and owns clinical.audit.* and the audit.* keys.
    events_ = new std::string(UniqueName("clinical.case.audit-test"));
    access_ = new std::string(UniqueName("clinical.access.audit-test"));
    late_ = new std::string(UniqueName("clinical.case.audit-test-late"));
    checkpoints_ = new std::string(UniqueName("clinical.audit.test-checkpoints"));
    recorded_reads_ = new std::string(UniqueName("clinical.access.audit-test-reads"));
    root_ = new std::string(UniqueName("audit.test"));
    kafka::TopicSpec events;
    events.name = *events_;
    events.partitions = 2;
    kafka::TopicSpec access;
    access.name = *access_;
    access.partitions = 1;
    ASSERT_TRUE(kafka::EnsureTopics(Platform::Get().kafka_admin, {events, access},
                                    absl::Seconds(30))
                    .ok());
    events_producer_ = new Producer(true);
    access_producer_ = new Producer(false);

    // Tenant A: case-a1 (patient MRN-100) on partition 0, case-a2 (the same patient) on 1;
    // tenant B: case-b1 on partition 0.
    case_::v1::CaseOpened opened;
    opened.mutable_patient()->set_mrn("MRN-100");
    opened.set_program("elder_care");
    case_::v1::CaseOpened opened_b;
    opened_b.mutable_patient()->set_mrn("MRN-900");
    case_::v1::CaseStatusChanged changed;
    changed.set_reason("ready");
    std::vector<Produced> batch;
    batch.push_back({*events_, 0, Envelope("case-a1", 1, "tenant-a", "cm-1", opened, kBaseSeconds)});
    batch.push_back({*events_, 0, Envelope("case-b1", 1, "tenant-b", "cm-9", opened_b, kBaseSeconds + 10)});
    batch.push_back({*events_, 1, Envelope("case-a2", 1, "tenant-a", "cm-2", opened, kBaseSeconds + 20)});
    events_producer_->Send(batch);
    batch.clear();
    for (int i = 0; i < 6; ++i) {
      batch.push_back({*events_, 0, Envelope("case-a1", 2 + i, "tenant-a", i % 2 ? "cm-1" : "cm-3",
                                             changed, kBaseSeconds + 100 + i)});
    }
    events_producer_->Send(batch);
    access_producer_->Send(
        {{*access_, 0, Access("case-a1", "tenant-a", "cm-5", v1::ACCESS_OUTCOME_ALLOWED, kBaseSeconds + 200)},
         {*access_, 0, Access("case-a1", "tenant-a", "cm-6", v1::ACCESS_OUTCOME_DENIED, kBaseSeconds + 210)},
         {*access_, 0, Access("case-a2", "tenant-a", "cm-5", v1::ACCESS_OUTCOME_ALLOWED, kBaseSeconds + 220)},
         {*access_, 0, Access("case-b1", "tenant-b", "cm-9", v1::ACCESS_OUTCOME_ALLOWED, kBaseSeconds + 230)}});
    StartService();
    // Every record chained and signed: events/0 has 8, events/1 has 1, access/0 has 4.
    WaitForHeads({{EventsChain(0), 8}, {EventsChain(1), 1}, {AccessChain(), 4}});
  }

  static void TearDownTestSuite() {
    StopService();
    delete events_producer_;
    delete access_producer_;
  }

  static std::string EventsChain(int partition) { return absl::StrCat(*events_, "/", partition); }
  static std::string AccessChain() { return absl::StrCat(*access_, "/0"); }

  static void StartService() {
    auto process = Subprocess::Start(
        {testing::BinaryPath("services/audit/audit_service"), "--grpc-port=0", "--shutdown-grace=5s",
         "--audit-source-topics=" + *events_ + "," + *late_, "--audit-access-topic=" + *access_,
         // The service's own reads are recorded elsewhere, so the chains hold exactly what
         // the test wrote.
         "--access-topic=" + *recorded_reads_,
         "--audit-topic=" + *checkpoints_, "--audit-key-root=" + *root_,
         "--signing-key-file=" + *dir_ + "/signing.pem",
         "--verify-key-file=" + *dir_ + "/public.pem",
         "--patient-index-key-file=" + *dir_ + "/patient-index.key", "--checkpoint-every=5",
         "--checkpoint-interval=500ms"},
        testing::ServiceEnvironment("audit"));
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = process->release();
    auto line = process_->WaitForLine([](const std::string& l) { return ListeningPort(l) > 0; },
                                      absl::Seconds(60));
    ASSERT_TRUE(line.has_value()) << absl::StrJoin(process_->Lines(), "\n");
    address_ = new std::string(absl::StrCat("127.0.0.1:", ListeningPort(*line)));
    stub_ = v1::AuditService::NewStub(testing::SecureChannel(*address_)).release();
  }

  // SIGKILL: no drain, no clean close; whatever the chainer had in flight is lost.
  static void KillService() {
    process_->Signal(SIGKILL);
    ASSERT_TRUE(process_->Wait(absl::Seconds(30)).has_value());
    delete stub_;
    stub_ = nullptr;
    delete process_;
    process_ = nullptr;
  }

  // Runs clinical-audit against the service as a tenant-a auditor; returns the exit code
  // and fills `lines` with its stdout and stderr.
  static int Cli(std::vector<std::string> args, std::vector<std::string>* lines,
                 const testing::Person& as = {"aud-cli", "auditor", "tenant-a"}) {
    std::vector<std::string> argv = {testing::BinaryPath("services/audit/clinical-audit"),
                                     "--address=" + *address_};
    argv.insert(argv.end(), args.begin(), args.end());
    // Offline verification reads Kafka and Redis itself, as the audit service's principals;
    // the other commands connect as the test client, with an auditor's token of the realm.
    std::map<std::string, std::string> env = testing::ServiceEnvironment("audit");
    const grpcx::TlsFiles tls = testing::ClientTls();
    env["CLINICAL_TLS_CERT_FILE"] = tls.cert_file;
    env["CLINICAL_TLS_KEY_FILE"] = tls.key_file;
    env["CLINICAL_TLS_CA_FILE"] = tls.ca_file;
    env["CLINICAL_TOKEN"] = testing::TokenFor(as);
    auto process = Subprocess::Start(argv, env);
    EXPECT_TRUE(process.ok());
    if (!process.ok()) return -1;
    auto status = (*process)->Wait(absl::Seconds(120));
    EXPECT_TRUE(status.has_value());
    *lines = (*process)->Lines();
    return status.has_value() && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }

  static void StopService() {
    if (process_ == nullptr) return;
    process_->Signal(SIGTERM);
    auto status = process_->Wait(absl::Seconds(30));
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    // No patient identifier ever reaches the log lines.
    for (const std::string& line : process_->Lines()) {
      EXPECT_EQ(line.find("MRN-"), std::string::npos) << line;
    }
    delete stub_;
    stub_ = nullptr;
    delete process_;
    process_ = nullptr;
  }

  static std::unique_ptr<grpc::ClientContext> Context(const Who& who) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    testing::Authenticate(*context, {who.user, who.role, who.tenant});
    return context;
  }

  static std::map<std::string, v1::ChainHead> Heads() {
    v1::ListChainsResponse response;
    const grpc::Status status = stub_->ListChains(Context({}).get(), {}, &response);
    std::map<std::string, v1::ChainHead> heads;
    if (!status.ok()) return heads;
    for (const v1::ChainHead& head : response.chains()) heads[head.chain_id()] = head;
    return heads;
  }

  // Waits until each chain holds exactly `sequence` records, all of them signed.
  static void WaitForHeads(const std::map<std::string, int64_t>& expected) {
    std::map<std::string, v1::ChainHead> heads;
    const bool reached = WaitUntil(
        [&] {
          heads = Heads();
          for (const auto& [chain, sequence] : expected) {
            auto it = heads.find(chain);
            if (it == heads.end() || it->second.sequence() != sequence ||
                it->second.checkpoint_sequence() != sequence) {
              return false;
            }
          }
          return true;
        },
        absl::Seconds(60), absl::Milliseconds(100));
    std::string seen;
    for (const auto& [chain, head] : heads) {
      absl::StrAppend(&seen, chain, "=", head.sequence(), "/", head.checkpoint_sequence(), " ");
    }
    ASSERT_TRUE(reached) << "heads: " << seen << "\n" << absl::StrJoin(process_->Lines(), "\n");
  }

  static v1::VerifyChainResponse Verify(const std::string& chain) {
    v1::VerifyChainRequest request;
    request.set_chain_id(chain);
    v1::VerifyChainResponse response;
    const grpc::Status status = stub_->VerifyChain(Context({}).get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    return response;
  }

  static redis::Connection Redis() {
    auto connection = redis::Connection::Connect(Platform::Get().redis_admin, absl::Seconds(5));
    EXPECT_TRUE(connection.ok());
    return std::move(*connection);
  }
  static std::string RecordsKey(const std::string& chain) { return *root_ + ":rec:" + chain; }

  static std::string StoredRecord(redis::Connection& redis, const std::string& chain, int64_t sequence) {
    auto reply = redis.Command({"HGET", RecordsKey(chain), absl::StrCat(sequence)});
    EXPECT_TRUE(reply.ok() && !reply->is_nil());
    return reply.ok() ? reply->str() : "";
  }
  static void Store(redis::Connection& redis, const std::string& chain, int64_t sequence,
                    const std::string& bytes) {
    ASSERT_TRUE(redis.Command({"HSET", RecordsKey(chain), absl::StrCat(sequence), bytes}).ok());
  }

  static v1::QueryRecordsResponse Query(const v1::RecordFilter& filter, const Who& who = {},
                                        int page_size = 0, const std::string& token = "",
                                        grpc::Status* status_out = nullptr) {
    v1::QueryRecordsRequest request;
    *request.mutable_filter() = filter;
    request.set_page_size(page_size);
    request.set_page_token(token);
    v1::QueryRecordsResponse response;
    const grpc::Status status = stub_->QueryRecords(Context(who).get(), request, &response);
    if (status_out != nullptr) {
      *status_out = status;
    } else {
      EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    }
    return response;
  }

  static inline std::string* dir_ = nullptr;
  static inline std::string* events_ = nullptr;
  static inline std::string* access_ = nullptr;
  static inline std::string* late_ = nullptr;
  static inline std::string* checkpoints_ = nullptr;
  static inline std::string* recorded_reads_ = nullptr;
  static inline std::string* root_ = nullptr;
  static inline Producer* events_producer_ = nullptr;
  static inline Producer* access_producer_ = nullptr;
  static inline Subprocess* process_ = nullptr;
  static inline std::string* address_ = nullptr;
  static inline v1::AuditService::Stub* stub_ = nullptr;
};

TEST_F(AuditServiceTest, UntouchedLogVerifiesCleanWithSignedCheckpoints) {
  for (const std::string& chain : {EventsChain(0), EventsChain(1), AccessChain()}) {
    const v1::VerifyChainResponse result = Verify(chain);
    EXPECT_TRUE(result.ok()) << chain << ": " << result.detail();
    EXPECT_EQ(result.failure(), v1::VERIFY_FAILURE_UNSPECIFIED);
    EXPECT_EQ(result.records_checked(), result.to_sequence());
    EXPECT_GE(result.checkpoints_checked(), 1) << chain;
    EXPECT_EQ(result.last_signed_sequence(), result.to_sequence()) << chain;
  }
  // Records chain in offset order across the commit markers' gaps.
  redis::Connection redis = Redis();
  v1::ChainedRecord first, second;
  ASSERT_TRUE(first.ParseFromString(StoredRecord(redis, EventsChain(0), 2)));
  ASSERT_TRUE(second.ParseFromString(StoredRecord(redis, EventsChain(0), 3)));
  EXPECT_EQ(second.previous_hash(), first.hash());
  EXPECT_GT(second.source_offset(), first.source_offset() + 1);  // a commit marker between
}

TEST_F(AuditServiceTest, ChangedRecordIsNamed) {
  redis::Connection redis = Redis();
  const std::string original = StoredRecord(redis, EventsChain(0), 4);
  v1::ChainedRecord changed;
  ASSERT_TRUE(changed.ParseFromString(original));
  changed.set_actor_id("someone-else");
  Store(redis, EventsChain(0), 4, changed.SerializeAsString());
  v1::VerifyChainResponse result = Verify(EventsChain(0));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.failure(), v1::VERIFY_FAILURE_HASH_MISMATCH) << result.detail();
  EXPECT_EQ(result.failed_sequence(), 4);

  // Re-hashing the changed record does not help: it no longer matches its source.
  changed.set_hash(ComputeHash(changed));
  Store(redis, EventsChain(0), 4, changed.SerializeAsString());
  result = Verify(EventsChain(0));
  EXPECT_EQ(result.failure(), v1::VERIFY_FAILURE_NOT_IN_SOURCE) << result.detail();
  EXPECT_EQ(result.failed_sequence(), 4);

  Store(redis, EventsChain(0), 4, original);
  EXPECT_TRUE(Verify(EventsChain(0)).ok());
}

TEST_F(AuditServiceTest, RemovedRecordIsNamed) {
  redis::Connection redis = Redis();
  const std::string original = StoredRecord(redis, EventsChain(0), 6);
  ASSERT_TRUE(redis.Command({"HDEL", RecordsKey(EventsChain(0)), "6"}).ok());
  const v1::VerifyChainResponse result = Verify(EventsChain(0));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.failure(), v1::VERIFY_FAILURE_SEQUENCE_GAP) << result.detail();
  EXPECT_EQ(result.failed_sequence(), 6);
  EXPECT_EQ(result.records_checked(), 5);
  Store(redis, EventsChain(0), 6, original);
  EXPECT_TRUE(Verify(EventsChain(0)).ok());
}

TEST_F(AuditServiceTest, ReorderedRecordsAreNamed) {
  redis::Connection redis = Redis();
  const std::string second = StoredRecord(redis, AccessChain(), 2);
  const std::string third = StoredRecord(redis, AccessChain(), 3);
  Store(redis, AccessChain(), 2, third);
  Store(redis, AccessChain(), 3, second);
  const v1::VerifyChainResponse result = Verify(AccessChain());
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.failure(), v1::VERIFY_FAILURE_OUT_OF_ORDER) << result.detail();
  EXPECT_EQ(result.failed_sequence(), 2);
  Store(redis, AccessChain(), 2, second);
  Store(redis, AccessChain(), 3, third);
  EXPECT_TRUE(Verify(AccessChain()).ok());
}

TEST_F(AuditServiceTest, ForgedAppendedRecordIsNamed) {
  redis::Connection redis = Redis();
  v1::ChainedRecord last;
  ASSERT_TRUE(last.ParseFromString(StoredRecord(redis, EventsChain(1), 1)));
  // A well-formed record, correctly chained and hashed (anyone can compute SHA-256), that
  // no writer ever appended to the source topic.
  case_::v1::CaseClosed closed;
  const SourceRecord fake{*events_, 1, last.source_offset() + 2,
                          Envelope("case-a2", 2, "tenant-a", "cm-2", closed, kBaseSeconds + 30)};
  const v1::ChainedRecord forged = BuildRecord(fake, SourceFormat::kEvents, 2, last.hash());
  Store(redis, EventsChain(1), 2, forged.SerializeAsString());
  const v1::VerifyChainResponse result = Verify(EventsChain(1));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.failure(), v1::VERIFY_FAILURE_NOT_IN_SOURCE) << result.detail();
  EXPECT_EQ(result.failed_sequence(), 2);
  ASSERT_TRUE(redis.Command({"HDEL", RecordsKey(EventsChain(1)), "2"}).ok());
  EXPECT_TRUE(Verify(EventsChain(1)).ok());
}

TEST_F(AuditServiceTest, CheckpointsComeFromTheirTopicNotFromRedis) {
  // Wiping the Redis copy of the checkpoints removes no evidence: VerifyChain reads the
  // signed checkpoints from the checkpoint topic.
  redis::Connection redis = Redis();
  ASSERT_TRUE(redis.Command({"DEL", *root_ + ":ckpt:" + EventsChain(0)}).ok());
  const v1::VerifyChainResponse result = Verify(EventsChain(0));
  EXPECT_TRUE(result.ok()) << result.detail();
  EXPECT_EQ(result.checkpoints_checked(), 2);  // at record 5 (every 5) and 8 (after 500 ms)
  EXPECT_EQ(result.last_signed_sequence(), 8);
}

TEST_F(AuditServiceTest, VerifyRejectsBadRequests) {
  v1::VerifyChainRequest request;
  v1::VerifyChainResponse response;
  grpc::Status status = stub_->VerifyChain(Context({}).get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::BadRequest bad;
  ASSERT_TRUE(details.details(0).UnpackTo(&bad));
  ASSERT_EQ(bad.field_violations_size(), 1);
  EXPECT_EQ(bad.field_violations(0).field(), "chain_id");

  request.set_chain_id("not-a-followed-topic/0");
  status = stub_->VerifyChain(Context({}).get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  request.set_chain_id(EventsChain(0));
  request.set_from_sequence(3);
  request.set_to_sequence(99);
  status = stub_->VerifyChain(Context({}).get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  request.set_to_sequence(6);
  status = stub_->VerifyChain(Context({}).get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.ok()) << response.detail();
  EXPECT_EQ(response.records_checked(), 4);
}

TEST_F(AuditServiceTest, OnlyAuditorsAndPrivacyOfficersMayRead) {
  v1::ListChainsResponse response;
  EXPECT_EQ(stub_->ListChains(Context({"cm-1", "case_manager", "tenant-a"}).get(), {}, &response)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(stub_->ListChains(Context({"sup-1", "supervisor", "tenant-a"}).get(), {}, &response)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(stub_->ListChains(Context({"", "auditor", "tenant-a"}).get(), {}, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(stub_->ListChains(Context({"po-1", "privacy_officer", "tenant-a"}).get(), {}, &response).ok());
  grpc::Status status;
  Query({}, {"cm-1", "case_manager", "tenant-a"}, 0, "", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AuditServiceTest, QueriesByCaseActorActionTimeAndPatientAreTenantScoped) {
  v1::RecordFilter by_case;
  by_case.set_case_id("case-a1");
  v1::QueryRecordsResponse page = Query(by_case);
  ASSERT_EQ(page.records_size(), 9);  // 7 events + 2 reads
  for (int i = 1; i < page.records_size(); ++i) {
    EXPECT_LE(page.records(i - 1).occurred_at().seconds(), page.records(i).occurred_at().seconds());
  }
  // Another tenant's auditor sees none of tenant A's records.
  EXPECT_EQ(Query(by_case, {"auditor-b", "auditor", "tenant-b"}).records_size(), 0);

  v1::RecordFilter by_actor;
  by_actor.set_actor_id("cm-5");
  page = Query(by_actor);
  ASSERT_EQ(page.records_size(), 2);
  EXPECT_EQ(page.records(0).kind(), v1::RECORD_KIND_ACCESS);

  v1::RecordFilter by_action;
  by_action.set_action("clinical.case.v1.CaseOpened");
  EXPECT_EQ(Query(by_action).records_size(), 2);  // case-a1 and case-a2 (not tenant B's)
  by_action.set_case_id("case-a2");
  EXPECT_EQ(Query(by_action).records_size(), 1);

  v1::RecordFilter window;
  window.mutable_from_time()->set_seconds(kBaseSeconds + 100);
  window.mutable_to_time()->set_seconds(kBaseSeconds + 103);
  page = Query(window);
  ASSERT_EQ(page.records_size(), 3);
  EXPECT_EQ(page.records(0).occurred_at().seconds(), kBaseSeconds + 100);
  EXPECT_EQ(page.records(2).occurred_at().seconds(), kBaseSeconds + 102);

  v1::RecordFilter by_patient;
  by_patient.set_patient_mrn("MRN-100");
  page = Query(by_patient);
  EXPECT_EQ(page.records_size(), 11);  // case-a1's 9 and case-a2's 2
  by_patient.set_patient_mrn("MRN-900");
  EXPECT_EQ(Query(by_patient).records_size(), 0);  // tenant B's patient
  EXPECT_EQ(Query(by_patient, {"auditor-b", "auditor", "tenant-b"}).records_size(), 2);

  // No stored record or index key holds the MRN.
  redis::Connection redis = Redis();
  auto keys = redis.Command({"KEYS", *root_ + ":*"});
  ASSERT_TRUE(keys.ok());
  for (const redis::Reply& key : keys->elements()) EXPECT_EQ(key.str().find("MRN"), std::string::npos);
}

TEST_F(AuditServiceTest, PagesWalkEveryRecordOnce) {
  v1::RecordFilter all;
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::QueryRecordsResponse page = Query(all, {}, 4, token);
    EXPECT_LE(page.records_size(), 4);
    for (const v1::ChainedRecord& record : page.records()) {
      seen.push_back(absl::StrCat(record.chain_id(), "#", record.sequence()));
    }
    token = page.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 20);
  EXPECT_EQ(seen.size(), 11u);  // tenant A: case-a1's 7 events, case-a2's 1, 3 reads
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end());
  EXPECT_EQ(pages, 3);

  grpc::Status status;
  v1::RecordFilter two_subjects;
  two_subjects.set_case_id("case-a1");
  two_subjects.set_actor_id("cm-1");
  Query(two_subjects, {}, 0, "", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  Query(all, {}, 5000, "", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  Query(all, {}, 0, "bogus", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AuditServiceTest, AccessReportNamesWhoReadTheRecord) {
  v1::GetAccessReportRequest request;
  request.set_case_id("case-a1");
  v1::GetAccessReportResponse response;
  grpc::Status status = stub_->GetAccessReport(Context({"po-1", "privacy_officer", "tenant-a"}).get(),
                                               request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.entries_size(), 2);
  EXPECT_EQ(response.entries(0).actor_id(), "cm-5");
  EXPECT_EQ(response.entries(0).outcome(), "ACCESS_OUTCOME_ALLOWED");
  EXPECT_EQ(response.entries(0).purpose_of_use(), "TREAT");
  EXPECT_EQ(response.entries(0).case_id(), "case-a1");
  EXPECT_EQ(response.entries(0).chain_id(), AccessChain());
  EXPECT_EQ(response.entries(1).actor_id(), "cm-6");
  EXPECT_EQ(response.entries(1).outcome(), "ACCESS_OUTCOME_DENIED");

  v1::GetAccessReportRequest by_patient;
  by_patient.set_patient_mrn("MRN-100");
  response.Clear();
  ASSERT_TRUE(stub_->GetAccessReport(Context({}).get(), by_patient, &response).ok());
  ASSERT_EQ(response.entries_size(), 3);
  EXPECT_EQ(response.entries(2).case_id(), "case-a2");

  v1::GetAccessReportRequest neither;
  status = stub_->GetAccessReport(Context({}).get(), neither, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AuditServiceTest, ExportedAuditEventsValidateAsFhirR4) {
  v1::ExportAuditEventsRequest request;
  request.mutable_filter()->set_case_id("case-a1");
  request.set_format(v1::EXPORT_FORMAT_NDJSON);
  v1::ExportAuditEventsResponse ndjson;
  grpc::Status status = stub_->ExportAuditEvents(Context({}).get(), request, &ndjson);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(ndjson.resource_count(), 9);
  request.set_format(v1::EXPORT_FORMAT_BUNDLE);
  v1::ExportAuditEventsResponse bundle;
  status = stub_->ExportAuditEvents(Context({}).get(), request, &bundle);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(bundle.resource_count(), 9);
  EXPECT_EQ(ndjson.content().find("MRN"), std::string::npos);

  const std::string ndjson_path = *dir_ + "/export.ndjson";
  const std::string bundle_path = *dir_ + "/export-bundle.json";
  WriteFile(ndjson_path, ndjson.content());
  WriteFile(bundle_path, bundle.content());
  // The validator is fhir.resources (R4 models) from PyPI in a venv the script installs.
  auto validator = Subprocess::Start({"/bin/bash", testing::SourcePath("services/audit/test/fhir_validate.sh"),
                                      ndjson_path, bundle_path});
  ASSERT_TRUE(validator.ok());
  auto exit_status = (*validator)->Wait(absl::Seconds(600));
  ASSERT_TRUE(exit_status.has_value());
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0)
      << absl::StrJoin((*validator)->Lines(), "\n");
  bool counted = false;
  for (const std::string& line : (*validator)->Lines()) {
    counted = counted || line.find("valid: 9 AuditEvent (ndjson), 1 Bundle of 9") != std::string::npos;
  }
  EXPECT_TRUE(counted) << absl::StrJoin((*validator)->Lines(), "\n");
}

TEST_F(AuditServiceTest, CliVerifiesQueriesAndExports) {
  std::vector<std::string> lines;
  ASSERT_EQ(Cli({"verify"}, &lines), 0) << absl::StrJoin(lines, "\n");
  int verified = 0;
  for (const std::string& line : lines) {
    auto json = nlohmann::json::parse(line, nullptr, false);
    if (!json.is_object() || !json.contains("chain_id")) continue;
    EXPECT_EQ(json.value("ok", false), true) << line;
    ++verified;
  }
  EXPECT_EQ(verified, 3);  // events/0, events/1, access/0

  // Offline: no service, only Redis, Kafka and the public key.
  const std::vector<std::string> offline = {
      "verify", "--offline", "--public-key=" + *dir_ + "/public.pem", "--key-root=" + *root_,
      "--access-topic=" + *access_, "--checkpoint-topic=" + *checkpoints_};
  ASSERT_EQ(Cli(offline, &lines), 0) << absl::StrJoin(lines, "\n");
  int offline_verified = 0;
  for (const std::string& line : lines) {
    auto json = nlohmann::json::parse(line, nullptr, false);
    if (!json.is_object() || !json.contains("chain_id")) continue;
    EXPECT_EQ(json.value("ok", false), true) << line;
    EXPECT_NE(json.value("checkpoints_checked", "0"), "0") << line;
    ++offline_verified;
  }
  EXPECT_EQ(offline_verified, 3);

  redis::Connection redis = Redis();
  const std::string original = StoredRecord(redis, AccessChain(), 3);
  ASSERT_TRUE(redis.Command({"HDEL", RecordsKey(AccessChain()), "3"}).ok());
  std::vector<std::string> offline_one = offline;
  offline_one.push_back("--chain=" + AccessChain());
  EXPECT_EQ(Cli(offline_one, &lines), 3) << absl::StrJoin(lines, "\n");
  EXPECT_EQ(Cli({"verify", "--chain=" + AccessChain()}, &lines), 3);
  ASSERT_FALSE(lines.empty());
  auto failed = nlohmann::json::parse(lines.back(), nullptr, false);
  EXPECT_EQ(failed.value("failure", ""), "VERIFY_FAILURE_SEQUENCE_GAP") << lines.back();
  EXPECT_EQ(failed.value("failed_sequence", ""), "3") << lines.back();
  Store(redis, AccessChain(), 3, original);

  ASSERT_EQ(Cli({"query", "--case=case-a1", "--page-size=4", "--all"}, &lines), 0);
  EXPECT_EQ(lines.size(), 9u) << absl::StrJoin(lines, "\n");
  ASSERT_EQ(Cli({"access-report", "--case=case-a1"}, &lines), 0);
  EXPECT_EQ(lines.size(), 2u) << absl::StrJoin(lines, "\n");
  const std::string bundle_path = *dir_ + "/cli-bundle.json";
  ASSERT_EQ(Cli({"export", "--case=case-a1", "--format=bundle", "--output=" + bundle_path}, &lines), 0);
  std::ifstream in(bundle_path);
  auto bundle = nlohmann::json::parse(in, nullptr, false);
  EXPECT_EQ(bundle.value("resourceType", ""), "Bundle");
  EXPECT_EQ(bundle["entry"].size(), 9u);

  EXPECT_EQ(Cli({"query", "--kind=sometimes"}, &lines), 2);
  EXPECT_EQ(Cli({"frobnicate"}, &lines), 2);
  EXPECT_EQ(Cli({"replay", "--case=case-a1", "--as-of=yesterday"}, &lines), 2);
  EXPECT_EQ(Cli({"replay", "--case=case-a1", "--as-of=2026-01-01T00:00:00Z", "--mode=someday"}, &lines), 2);
  EXPECT_EQ(Cli({"disclosures", "--case=case-a1", "--format=bundle"}, &lines), 2);
  // Who calls is the token's person: a case manager is refused (PERMISSION_DENIED), and
  // the old self-declared identity flags are usage errors now.
  EXPECT_EQ(Cli({"chains"}, &lines, {"cm-cli", "case_manager", "tenant-a"}), 1);
  EXPECT_EQ(Cli({"--role=auditor", "chains"}, &lines), 2);
}

TEST_F(AuditServiceTest, AppointmentEventsAreFoundByTheirCase) {
  // Only AppointmentBooked names the case; the cancellation is found through it.
  scheduling::v1::AppointmentBooked booked;
  booked.set_case_id("case-a2");
  scheduling::v1::AppointmentCancelled cancelled;
  auto appointment_event = [](const google::protobuf::Message& payload, int version) {
    common::v1::EventEnvelope event;
    event.ParseFromString(Envelope("appt-1", version, "tenant-a", "cm-2", payload, kBaseSeconds + 500 + version));
    event.set_aggregate_type("scheduling");
    return event.SerializeAsString();
  };
  const int64_t before = Heads()[EventsChain(1)].sequence();
  events_producer_->Send({{*events_, 1, appointment_event(booked, 1)}});
  events_producer_->Send({{*events_, 1, appointment_event(cancelled, 2)}});  // a batch of its own
  WaitForHeads({{EventsChain(1), before + 2}});
  v1::RecordFilter by_case;
  by_case.set_case_id("case-a2");
  by_case.set_kind(v1::RECORD_KIND_EVENT);
  const v1::QueryRecordsResponse page = Query(by_case);
  ASSERT_EQ(page.records_size(), 3);
  EXPECT_EQ(page.records(1).action(), "clinical.scheduling.v1.AppointmentBooked");
  EXPECT_EQ(page.records(2).action(), "clinical.scheduling.v1.AppointmentCancelled");
  EXPECT_TRUE(page.records(2).case_ids().empty());  // the chained record is the source's
  EXPECT_TRUE(Verify(EventsChain(1)).ok());
}

// Last: restarts the service. After a SIGKILL, a restart continues each chain where Redis
// says it ends (no record twice, none skipped), and a topic created after start is picked up.
TEST_F(AuditServiceTest, ZzRestartContinuesTheChainAndLateTopicsArePickedUp) {
  std::map<std::string, int64_t> expected;
  for (const auto& [chain, head] : Heads()) expected[chain] = head.sequence();
  expected[EventsChain(0)] += 2;
  // The chainer may be anywhere in appending these when it is killed.
  case_::v1::CaseStatusChanged changed;
  events_producer_->Send({{*events_, 0, Envelope("case-a1", 8, "tenant-a", "cm-1", changed, kBaseSeconds + 300)},
                          {*events_, 0, Envelope("case-a1", 9, "tenant-a", "cm-1", changed, kBaseSeconds + 301)}});
  KillService();
  StartService();
  WaitForHeads(expected);
  v1::VerifyChainResponse result = Verify(EventsChain(0));
  EXPECT_TRUE(result.ok()) << result.detail();
  EXPECT_EQ(result.records_checked(), 10);

  kafka::TopicSpec late;
  late.name = *late_;
  late.partitions = 1;
  ASSERT_TRUE(kafka::EnsureTopics(Platform::Get().kafka_admin, {late}, absl::Seconds(30)).ok());
  events_producer_->Send({{*late_, 0, Envelope("case-a3", 1, "tenant-a", "cm-1", changed, kBaseSeconds + 400)}});
  WaitForHeads({{absl::StrCat(*late_, "/0"), 1}});
  result = Verify(absl::StrCat(*late_, "/0"));
  EXPECT_TRUE(result.ok()) << result.detail();

  // A clean stop and start once more: nothing new, nothing chained twice.
  StopService();
  StartService();
  expected[absl::StrCat(*late_, "/0")] = 1;
  WaitForHeads(expected);
  redis::Connection redis = Redis();
  auto count = redis.Command({"HLEN", RecordsKey(EventsChain(0))});
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->integer(), 10);
}

// Policy at the time over real Kafka and Redis: a second audit service process follows its
// own case, organisation, access and policy topics; the case and organisation events and the
// access records are written as the services write them, including a reassignment entered
// after the reads with an earlier occurred_at.
class RecheckAccessTest : public ::testing::Test {
 protected:
  static constexpr int64_t kT0 = kBaseSeconds + 86400;  // 2026-01-02T00:00:00Z
  static constexpr char kTenant[] = "tenant-a";

  static void SetUpTestSuite() {
    dir_ = new std::string("/tmp/" + UniqueName("audit-recheck"));
    ASSERT_EQ(mkdir(dir_->c_str(), 0700), 0);
    WriteKeyPair(*dir_ + "/signing.pem", *dir_ + "/public.pem");
    WriteFile(*dir_ + "/patient-index.key", "test-patient-index-key-0123456789");
    cases_ = new std::string(UniqueName("clinical.case.recheck-test"));
    organisation_ = new std::string(UniqueName("clinical.case.recheck-test-organisation"));
    access_ = new std::string(UniqueName("clinical.access.recheck-test"));
    policies_ = new std::string(UniqueName("clinical.access.recheck-test-policies"));
    std::vector<kafka::TopicSpec> topics;
    for (const std::string* name : {cases_, organisation_, access_, policies_}) {
      kafka::TopicSpec spec;
      spec.name = *name;
      spec.partitions = name == cases_ ? 3 : 1;
      topics.push_back(spec);
    }
    ASSERT_TRUE(kafka::EnsureTopics(Platform::Get().kafka_admin, topics, absl::Seconds(30)).ok());
    Producer events(true), plain(false);

    // The case service's policy, published as the services publish it.
    snapshot_ = new audit::v1::AccessPolicySnapshot(
        access::SnapshotOf(*case_::v1::GetCaseRequest::descriptor()->file()->service(0)));
    plain.Send({{*policies_, 0, snapshot_->SerializeAsString(),
                 absl::StrCat(snapshot_->service(), "@", snapshot_->version())}});

    // team-1 supervised by sup-1; case-r1 of team-1 assigned to cm-1 at T0+60; reassigned to
    // cm-2 effective T0+600, but entered at T0+1000, after the reads below.
    case_::v1::OrganisationEvent team;
    team.mutable_team_set()->mutable_team()->set_team_id("team-1");
    team.mutable_team_set()->mutable_team()->add_supervisor_ids("sup-1");
    team.mutable_team_set()->mutable_team()->add_member_ids("cm-1");
    common::v1::EventEnvelope organisation;
    organisation.ParseFromString(Envelope(relations::OrganisationId(kTenant), 1, kTenant, "admin-1", team, kT0));
    organisation.set_aggregate_type("organisation");
    case_::v1::CaseOpened opened;
    opened.mutable_patient()->set_mrn("MRN-700");
    opened.set_status(case_::v1::CASE_STATUS_ACTIVE);
    opened.set_team_id("team-1");
    case_::v1::CaseAssigned to_cm1, to_cm2;
    to_cm1.set_case_manager_id("cm-1");
    to_cm2.set_case_manager_id("cm-2");
    to_cm2.set_previous_case_manager_id("cm-1");
    common::v1::EventEnvelope late;
    late.ParseFromString(Envelope("case-r1", 3, kTenant, "sup-1", to_cm2, kT0 + 600));
    late.mutable_recorded_at()->set_seconds(kT0 + 1000);
    const int32_t partition = kafka::Murmur2Partition("case-r1", 3);
    events.Send({{*organisation_, 0, organisation.SerializeAsString()},
                 {*cases_, partition, Envelope("case-r1", 1, kTenant, "intake-1", opened, kT0)},
                 {*cases_, partition, Envelope("case-r1", 2, kTenant, "sup-1", to_cm1, kT0 + 60)}});
    const std::string version = snapshot_->version();
    plain.Send({{*access_, 0, Read("read-1", "cm-1", "case_manager", kT0 + 300, "assigned", version)},
                {*access_, 0, Read("read-2", "cm-1", "case_manager", kT0 + 900, "assigned", version)},
                {*access_, 0, Read("read-3", "cm-2", "case_manager", kT0 + 900, "assigned", version)},
                {*access_, 0, Read("read-4", "sup-1", "supervisor", kT0 + 900, "team_supervisor", version)},
                {*access_, 0, Read("read-5", "cm-1", "case_manager", kT0 + 400, "assigned", "ffffffffffffffff")},
                {*access_, 0, Read("read-6", "cm-3", "case_manager", kT0 + 900, "", version,
                                   v1::ACCESS_OUTCOME_DENIED)},
                {*access_, 0, Read("read-7", "admin-1", "administrator", kT0 + 950, "tenant", version)},
                {*access_, 0, Read("read-8", "cm-9", "case_manager", kT0 + 900, "assigned", version, v1::ACCESS_OUTCOME_ALLOWED,
                                   "tenant-b")}});
    events.Send({{*cases_, partition, late.SerializeAsString()}});

    auto process = Subprocess::Start(
        {testing::BinaryPath("services/audit/audit_service"), "--grpc-port=0", "--shutdown-grace=5s",
         // The organisation topic is chained like every event topic.
         "--audit-source-topics=" + *cases_ + "," + *organisation_, "--audit-access-topic=" + *access_,
         "--case-topic=" + *cases_, "--organisation-topic=" + *organisation_,
         "--access-policy-topic=" + *policies_,
         "--access-topic=" + UniqueName("clinical.access.recheck-test-reads"),
         "--audit-topic=" + UniqueName("clinical.audit.recheck-test-checkpoints"),
         "--audit-key-root=" + UniqueName("audit.recheck"), "--signing-key-file=" + *dir_ + "/signing.pem",
         "--verify-key-file=" + *dir_ + "/public.pem", "--patient-index-key-file=" + *dir_ + "/patient-index.key",
         "--checkpoint-every=5", "--checkpoint-interval=500ms"},
        testing::ServiceEnvironment("audit"));
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = process->release();
    auto line = process_->WaitForLine([](const std::string& l) { return ListeningPort(l) > 0; }, absl::Seconds(60));
    ASSERT_TRUE(line.has_value()) << absl::StrJoin(process_->Lines(), "\n");
    address_ = new std::string(absl::StrCat("127.0.0.1:", ListeningPort(*line)));
    stub_ = v1::AuditService::NewStub(testing::SecureChannel(*address_)).release();
    // Every record chained: the reads are re-checked from the log.
    const std::map<std::string, int64_t> expected = {{absl::StrCat(*access_, "/0"), 8},
                                                     {absl::StrCat(*organisation_, "/0"), 1},
                                                     {absl::StrCat(*cases_, "/", partition), 3}};
    const bool chained = WaitUntil(
        [&] {
          v1::ListChainsResponse response;
          if (!stub_->ListChains(Context({}).get(), {}, &response).ok()) return false;
          std::map<std::string, int64_t> heads;
          for (const auto& head : response.chains()) heads[head.chain_id()] = head.sequence();
          for (const auto& [chain, sequence] : expected) {
            if (heads[chain] != sequence) return false;
          }
          return true;
        },
        absl::Seconds(60), absl::Milliseconds(100));
    ASSERT_TRUE(chained) << absl::StrJoin(process_->Lines(), "\n");
  }

  static void TearDownTestSuite() {
    if (process_ == nullptr) return;
    process_->Signal(SIGTERM);
    auto status = process_->Wait(absl::Seconds(30));
    EXPECT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    for (const std::string& line : process_->Lines()) EXPECT_EQ(line.find("MRN-"), std::string::npos) << line;
    delete stub_;
    delete process_;
    process_ = nullptr;
  }

  static std::string Read(const std::string& id, const std::string& actor, const std::string& role, int64_t seconds,
                          const std::string& relationship, const std::string& version,
                          v1::AccessOutcome outcome = v1::ACCESS_OUTCOME_ALLOWED,
                          const std::string& tenant = kTenant) {
    v1::AccessRecord access;
    access.ParseFromString(Access("case-r1", tenant, actor, outcome, seconds));
    access.set_record_id(id);
    access.set_actor_role(role);
    access.set_relationship(relationship);
    access.set_policy_version(version);
    return access.SerializeAsString();
  }

  static std::unique_ptr<grpc::ClientContext> Context(const Who& who) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    testing::Authenticate(*context, {who.user, who.role, who.tenant});
    return context;
  }

  static v1::RecheckAccessRequest Period() {
    v1::RecheckAccessRequest request;
    request.mutable_from()->set_seconds(kT0);
    request.mutable_to()->set_seconds(kT0 + 3600);
    return request;
  }

  static std::vector<std::string> Findings(const v1::RecheckAccessResponse& response) {
    std::vector<std::string> out;
    for (const auto& f : response.findings()) out.push_back(absl::StrCat(f.record_id(), ":", f.reason()));
    return out;
  }

  static std::vector<std::string> Violations(const grpc::Status& status) {
    google::rpc::Status details;
    std::vector<std::string> fields;
    if (!details.ParseFromString(status.error_details())) return fields;
    for (const auto& detail : details.details()) {
      google::rpc::BadRequest bad;
      if (!detail.UnpackTo(&bad)) continue;
      for (const auto& violation : bad.field_violations()) fields.push_back(violation.field());
    }
    return fields;
  }

  static inline std::string* dir_ = nullptr;
  static inline std::string* cases_ = nullptr;
  static inline std::string* organisation_ = nullptr;
  static inline std::string* access_ = nullptr;
  static inline std::string* policies_ = nullptr;
  static inline audit::v1::AccessPolicySnapshot* snapshot_ = nullptr;
  static inline Subprocess* process_ = nullptr;
  static inline std::string* address_ = nullptr;
  static inline v1::AuditService::Stub* stub_ = nullptr;
};

TEST_F(RecheckAccessTest, ListsExactlyTheReadsThePolicyAndRelationshipsThenWouldHaveDenied) {
  v1::RecheckAccessResponse response;
  grpc::Status status = stub_->RecheckAccess(Context({}).get(), Period(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // read-1 (cm-1 while assigned), read-3 (cm-2 after the reassignment took effect) and
  // read-4 (the team's supervisor) stand; read-6 was denied and read-8 is another tenant's.
  EXPECT_EQ(response.records_checked(), 6);
  EXPECT_EQ(response.records_without_policy(), 1);
  EXPECT_FALSE(response.truncated());
  ASSERT_EQ(Findings(response), (std::vector<std::string>{"read-5:no_policy", "read-2:no_relationship",
                                                          "read-7:role_not_permitted"}));
  const v1::RecheckFinding& reassigned = response.findings(1);
  EXPECT_EQ(reassigned.actor_id(), "cm-1");
  EXPECT_EQ(reassigned.actor_role(), "case_manager");
  EXPECT_EQ(reassigned.method(), "/clinical.case.v1.CaseService/GetCase");
  EXPECT_EQ(reassigned.case_id(), "case-r1");
  EXPECT_EQ(reassigned.relationship_then(), "assigned");
  EXPECT_EQ(reassigned.policy_version(), snapshot_->version());
  EXPECT_EQ(reassigned.occurred_at().seconds(), kT0 + 900);

  // Narrowed by person, by case, by period; a page of one.
  v1::RecheckAccessRequest request = Period();
  request.set_actor_id("cm-1");
  ASSERT_TRUE(stub_->RecheckAccess(Context({}).get(), request, &response).ok());
  EXPECT_EQ(response.records_checked(), 3);
  EXPECT_EQ(Findings(response), (std::vector<std::string>{"read-5:no_policy", "read-2:no_relationship"}));
  request = Period();
  request.set_case_id("case-r1");
  request.mutable_to()->set_seconds(kT0 + 900);  // [from, to): the reads at T0+900 are out
  ASSERT_TRUE(stub_->RecheckAccess(Context({}).get(), request, &response).ok());
  EXPECT_EQ(response.records_checked(), 2);
  EXPECT_EQ(Findings(response), (std::vector<std::string>{"read-5:no_policy"}));
  request = Period();
  request.set_page_size(1);
  ASSERT_TRUE(stub_->RecheckAccess(Context({}).get(), request, &response).ok());
  EXPECT_EQ(Findings(response), (std::vector<std::string>{"read-5:no_policy"}));
  EXPECT_TRUE(response.truncated());
  EXPECT_EQ(response.records_checked(), 6);

  // Another tenant's auditor sees only their tenant's reads: read-8 was allowed to tenant-b's
  // cm-9 on a case of tenant-a, which no policy allows.
  ASSERT_TRUE(stub_->RecheckAccess(Context({"aud-b", "auditor", "tenant-b"}).get(), Period(), &response).ok());
  EXPECT_EQ(response.records_checked(), 1);
  EXPECT_EQ(Findings(response), (std::vector<std::string>{"read-8:other_tenant"}));
}

TEST_F(RecheckAccessTest, RefusesOtherRolesAndBadPeriodsWithFieldViolations) {
  v1::RecheckAccessResponse response;
  EXPECT_EQ(stub_->RecheckAccess(Context({"cm-1", "case_manager", kTenant}).get(), Period(), &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(
      stub_->RecheckAccess(Context({"po-1", "privacy_officer", kTenant}).get(), Period(), &response).ok());

  v1::RecheckAccessRequest request;
  grpc::Status status = stub_->RecheckAccess(Context({}).get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Violations(status), (std::vector<std::string>{"from"}));
  request = Period();
  request.mutable_to()->set_seconds(kT0);
  request.set_page_size(-1);
  status = stub_->RecheckAccess(Context({}).get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Violations(status), (std::vector<std::string>{"to", "page_size"}));
  request = Period();
  request.mutable_to()->set_seconds(kT0 + 367 * 86400);
  status = stub_->RecheckAccess(Context({}).get(), request, &response);
  EXPECT_EQ(Violations(status), (std::vector<std::string>{"to"}));
}

// The replay component of the same process authorizes by its own policies, before reading:
// auditors and privacy officers only, another tenant's case NOT_FOUND.
TEST_F(RecheckAccessTest, ReplayIsForAuditorsAndPrivacyOfficersOfTheCasesTenant) {
  auto replay = v1::AuditReplayService::NewStub(testing::SecureChannel(*address_));
  v1::ListDisclosuresRequest request;
  request.set_case_id("case-r1");
  v1::ListDisclosuresResponse response;
  grpc::Status status = replay->ListDisclosures(Context({}).get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.disclosures_size(), 0);
  EXPECT_TRUE(replay->ListDisclosures(Context({"po-1", "privacy_officer", kTenant}).get(), request, &response).ok());
  for (const char* role : {"case_manager", "supervisor", "administrator", "scheduler", "intake_coordinator"}) {
    EXPECT_EQ(replay->ListDisclosures(Context({"someone", role, kTenant}).get(), request, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << role;
  }
  EXPECT_EQ(replay->ListDisclosures(Context({"aud-b", "auditor", "tenant-b"}).get(), request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::ReplayCaseRequest replay_case;
  replay_case.set_case_id("case-r1");
  replay_case.mutable_as_of()->set_seconds(kT0 + 900);
  replay_case.set_mode(v1::REPLAY_MODE_OCCURRED_AT);
  v1::ReplayCaseResponse replayed;
  EXPECT_EQ(replay->ReplayCase(Context({"cm-1", "case_manager", kTenant}).get(), replay_case, &replayed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  status = replay->ReplayCase(Context({}).get(), replay_case, &replayed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // The late reassignment had taken effect by then.
  EXPECT_EQ(replayed.case_().assignment().case_manager_id(), "cm-2");
}

TEST_F(RecheckAccessTest, TheCommandLineListsTheFindingsAndExitsThree) {
  std::vector<std::string> argv = {testing::BinaryPath("services/audit/clinical-audit"), "--address=" + *address_,
                                   "recheck", "--from=2026-01-02T00:00:00Z", "--to=2026-01-02T01:00:00Z"};
  std::map<std::string, std::string> env = testing::ServiceEnvironment("audit");
  const grpcx::TlsFiles tls = testing::ClientTls();
  env["CLINICAL_TLS_CERT_FILE"] = tls.cert_file;
  env["CLINICAL_TLS_KEY_FILE"] = tls.key_file;
  env["CLINICAL_TLS_CA_FILE"] = tls.ca_file;
  env["CLINICAL_TOKEN"] = testing::TokenFor({"aud-cli", "auditor", kTenant});
  auto run = [&](const std::vector<std::string>& args, std::vector<std::string>* lines) {
    auto process = Subprocess::Start(args, env);
    EXPECT_TRUE(process.ok());
    if (!process.ok()) return -1;
    auto status = (*process)->Wait(absl::Seconds(120));
    *lines = (*process)->Lines();
    return status.has_value() && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  };
  std::vector<std::string> lines;
  ASSERT_EQ(run(argv, &lines), 3) << absl::StrJoin(lines, "\n");
  ASSERT_EQ(lines.size(), 4u) << absl::StrJoin(lines, "\n");
  EXPECT_EQ(nlohmann::json::parse(lines[1]).value("record_id", ""), "read-2");
  EXPECT_EQ(nlohmann::json::parse(lines[1]).value("reason", ""), "no_relationship");
  const auto summary = nlohmann::json::parse(lines[3]);
  EXPECT_EQ(summary.value("records_checked", 0), 6);
  EXPECT_EQ(summary.value("records_without_policy", 0), 1);
  EXPECT_EQ(summary.value("findings", 0), 3);
  EXPECT_EQ(summary.value("truncated", true), false);

  std::vector<std::string> narrow = argv;
  narrow.push_back("--actor=cm-2");
  EXPECT_EQ(run(narrow, &lines), 0) << absl::StrJoin(lines, "\n");
  std::vector<std::string> bad = {argv[0], argv[1], "recheck", "--from=yesterday"};
  EXPECT_EQ(run(bad, &lines), 2);
}

}  // namespace
}  // namespace clinical::audit
