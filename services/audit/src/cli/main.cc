// clinical-audit: the auditors' command line for the audit service (docs/audit-service.md).
//
//   clinical-audit [connection] chains
//   clinical-audit [connection] verify --chain=<topic>/<partition> [--from=N] [--to=N]
//   clinical-audit verify --offline --public-key=FILE [kafka and redis keys]
//                         [--key-root=audit] [--access-topic=T] [--checkpoint-topic=T]
//                         [--chain=...] [--from=N] [--to=N]
//     (no service involved: reads the log from Redis, the sources and checkpoints from
//     Kafka, and checks the signatures with the public key only). The Kafka and Redis keys
//     are the audit service's own (--kafka-bootstrap, --kafka-sasl-username,
//     --kafka-sasl-password-file, --kafka-ca-file, ..., --redis-host, --redis-port,
//     --redis-username, --redis-password-file), each also from its CLINICAL_* variable:
//     the verifier reads as a principal allowed to read the audit log and its sources.
//   clinical-audit [connection] query [--case=ID | --patient-mrn=MRN | --actor=ID] [--action=A]
//                                     [--kind=event|access] [--since=TIME] [--until=TIME]
//                                     [--page-size=N] [--all]
//   clinical-audit [connection] access-report (--case=ID | --patient-mrn=MRN) [--since] [--until] [--all]
//   clinical-audit [connection] export [filters as for query] [--format=ndjson|bundle]
//                                      [--output=FILE] [--all]
//   clinical-audit [connection] replay --case=ID --as-of=TIME [--mode=occurred|recorded]
//   clinical-audit [connection] disclosures (--case=ID | --patient-mrn=MRN) [--since] [--until] [--all]
//   clinical-audit [connection] recheck --from=TIME [--to=TIME] [--case=ID] [--actor=ID] [--page-size=N]
//     (policy at the time: one JSON line per allowed read that would have been denied, then
//     a summary line {"records_checked", "records_without_policy", "findings", "truncated"}; exit 3
//     when there are findings)
//
// connection: --address=HOST:PORT (CLINICAL_AUDIT_ADDRESS, default 127.0.0.1:50053),
//             mutual TLS with --tls-cert-file, --tls-key-file, --tls-ca-file
//             (CLINICAL_TLS_CERT_FILE/_KEY_FILE/_CA_FILE), the caller's access token from
//             --token-file (CLINICAL_TOKEN_FILE) or CLINICAL_TOKEN — who calls is the token's
//             person, never a flag — optionally --acting-role when the token grants several
//             roles, and --timeout=SECONDS (default 60).
// Results are JSON lines on stdout. Exit: 0 done (verify: chain intact), 3 verification
// (or recheck) found a problem, 1 the call failed, 2 usage error.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clinical/audit/v1/audit_service.grpc.pb.h"
#include "clinical/audit/v1/replay_service.grpc.pb.h"
#include "audit_log.h"
#include "checkpoint.h"
#include "clinical/config/config.h"
#include "clinical/grpcx/tls.h"
#include "clinical/kafka/cluster.h"
#include "clinical/redis/options.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace {

namespace v1 = clinical::audit::v1;

constexpr int kUsage = 2;
constexpr int kFailed = 1;
constexpr int kMismatch = 3;

const char kUsageText[] =
    "usage: clinical-audit [--address=HOST:PORT] [--token-file=FILE] [--acting-role=ROLE]\n"
    "                      [--tls-cert-file=F --tls-key-file=F --tls-ca-file=F] [--timeout=S]\n"
    "                      (chains | verify | query | access-report | export | replay |\n"
    "                       disclosures | recheck) [options]\n"
    "  verify --chain=<topic>/<partition> [--from=N] [--to=N]\n"
    "  verify --offline --public-key=FILE [--kafka-*=...] [--redis-*=...] [--key-root=audit]\n"
    "         [--access-topic=T] [--checkpoint-topic=T] [--chain=...] [--from=N] [--to=N]\n"
    "         (Kafka and Redis keys as the audit service's: --kafka-bootstrap,\n"
    "          --kafka-sasl-username, --kafka-sasl-password-file, --kafka-ca-file, --redis-host,\n"
    "          --redis-port, --redis-username, --redis-password-file, or CLINICAL_* variables)\n"
    "  query [--case=ID|--patient-mrn=MRN|--actor=ID] [--action=A] [--kind=event|access]\n"
    "        [--since=RFC3339] [--until=RFC3339] [--page-size=N] [--all]\n"
    "  access-report (--case=ID|--patient-mrn=MRN) [--since] [--until] [--page-size=N] [--all]\n"
    "  export [query filters] [--format=ndjson|bundle] [--output=FILE] [--all]\n"
    "  replay --case=ID --as-of=RFC3339 [--mode=occurred|recorded]\n"
    "  disclosures (--case=ID|--patient-mrn=MRN) [--since] [--until] [--page-size=N] [--all]\n"
    "  recheck --from=RFC3339 [--to=RFC3339] [--case=ID] [--actor=ID] [--page-size=N]\n";

struct Args {
  std::string command;
  std::map<std::string, std::string> flags;
  bool Has(const std::string& name) const { return flags.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
};

std::string Env(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value == nullptr || *value == '\0' ? fallback : value;
}

bool ParseTime(const std::string& text, google::protobuf::Timestamp* out) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) return false;
  const int64_t nanos = absl::ToUnixNanos(time);
  out->set_seconds(nanos / 1000000000);
  out->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return true;
}

std::string Json(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

// The TLS identity and the access token the CLI calls with (flags, else environment).
struct Credentials {
  clinical::grpcx::TlsFiles tls;
  std::string token;
  std::string acting_role;
};

// Empty on success, else what is wrong (never a token or a file's content).
std::string LoadCredentials(const Args& args, Credentials* out) {
  out->tls.cert_file = args.Get("tls-cert-file", Env("CLINICAL_TLS_CERT_FILE", ""));
  out->tls.key_file = args.Get("tls-key-file", Env("CLINICAL_TLS_KEY_FILE", ""));
  out->tls.ca_file = args.Get("tls-ca-file", Env("CLINICAL_TLS_CA_FILE", ""));
  if (const absl::Status usable = clinical::grpcx::CheckTlsFiles(out->tls); !usable.ok()) {
    return std::string(usable.message());
  }
  const std::string token_file = args.Get("token-file", Env("CLINICAL_TOKEN_FILE", ""));
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!std::getline(in, out->token)) return "the token file is not readable";
  } else {
    out->token = Env("CLINICAL_TOKEN", "");
  }
  while (!out->token.empty() && std::isspace(static_cast<unsigned char>(out->token.back()))) out->token.pop_back();
  if (out->token.empty()) return "no access token: give --token-file or CLINICAL_TOKEN";
  out->acting_role = args.Get("acting-role", "");
  return "";
}

class Client {
 public:
  Client(const Args& args, Credentials credentials)
      : credentials_(std::move(credentials)),
        channel_(grpc::CreateChannel(args.Get("address", Env("CLINICAL_AUDIT_ADDRESS", "127.0.0.1:50053")),
                                     clinical::grpcx::ChannelCredentials(credentials_.tls))),
        stub_(v1::AuditService::NewStub(channel_)),
        replay_(v1::AuditReplayService::NewStub(channel_)) {
    int seconds = 60;
    if (args.Has("timeout")) absl::SimpleAtoi(args.Get("timeout"), &seconds);
    timeout_ = absl::Seconds(seconds);
  }

  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    context->AddMetadata("authorization", "Bearer " + credentials_.token);
    if (!credentials_.acting_role.empty()) context->AddMetadata("x-clinical-acting-role", credentials_.acting_role);
    return context;
  }
  v1::AuditService::Stub& stub() { return *stub_; }
  v1::AuditReplayService::Stub& replay() { return *replay_; }

 private:
  const Credentials credentials_;
  absl::Duration timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AuditService::Stub> stub_;
  std::unique_ptr<v1::AuditReplayService::Stub> replay_;
};

int Failed(const grpc::Status& status) {
  std::cerr << "clinical-audit: call failed: " << status.error_code() << " "
            << status.error_message() << "\n";
  return kFailed;
}

// The filter flags shared by query and export; false (with a message) on a bad value.
bool Filter(const Args& args, v1::RecordFilter* filter) {
  filter->set_case_id(args.Get("case"));
  filter->set_patient_mrn(args.Get("patient-mrn"));
  filter->set_actor_id(args.Get("actor"));
  filter->set_action(args.Get("action"));
  const std::string kind = args.Get("kind");
  if (kind == "event") {
    filter->set_kind(v1::RECORD_KIND_EVENT);
  } else if (kind == "access") {
    filter->set_kind(v1::RECORD_KIND_ACCESS);
  } else if (!kind.empty()) {
    std::cerr << "clinical-audit: --kind must be event or access\n";
    return false;
  }
  if (args.Has("since") && !ParseTime(args.Get("since"), filter->mutable_from_time())) {
    std::cerr << "clinical-audit: --since must be an RFC 3339 time\n";
    return false;
  }
  if (args.Has("until") && !ParseTime(args.Get("until"), filter->mutable_to_time())) {
    std::cerr << "clinical-audit: --until must be an RFC 3339 time\n";
    return false;
  }
  return true;
}

int PageSize(const Args& args) {
  int size = 0;
  if (args.Has("page-size")) absl::SimpleAtoi(args.Get("page-size"), &size);
  return size;
}

int Chains(Client& client) {
  v1::ListChainsResponse response;
  const grpc::Status status = client.stub().ListChains(client.Context().get(), {}, &response);
  if (!status.ok()) return Failed(status);
  for (const v1::ChainHead& head : response.chains()) std::cout << Json(head) << "\n";
  return 0;
}

int Verify(Client& client, const Args& args) {
  v1::VerifyChainRequest request;
  request.set_chain_id(args.Get("chain"));
  int64_t value = 0;
  if (args.Has("from") && absl::SimpleAtoi(args.Get("from"), &value)) request.set_from_sequence(value);
  if (args.Has("to") && absl::SimpleAtoi(args.Get("to"), &value)) request.set_to_sequence(value);
  std::vector<std::string> chains;
  if (request.chain_id().empty()) {
    // Every chain the service holds.
    v1::ListChainsResponse list;
    const grpc::Status status = client.stub().ListChains(client.Context().get(), {}, &list);
    if (!status.ok()) return Failed(status);
    for (const v1::ChainHead& head : list.chains()) chains.push_back(head.chain_id());
  } else {
    chains.push_back(request.chain_id());
  }
  int exit_code = 0;
  for (const std::string& chain : chains) {
    request.set_chain_id(chain);
    v1::VerifyChainResponse response;
    const grpc::Status status = client.stub().VerifyChain(client.Context().get(), request, &response);
    if (!status.ok()) return Failed(status);
    std::cout << Json(response) << "\n";
    if (!response.ok()) exit_code = kMismatch;
  }
  return exit_code;
}

// The Kafka and Redis keys of the offline verification: the same keys (and CLINICAL_*
// variables) the audit service reads, declared in one place (kafka::ClusterOptions,
// redis::EndpointOptions).
std::vector<clinical::config::Option> StoreOptions() {
  std::vector<clinical::config::Option> options = clinical::kafka::ClusterOptions();
  for (auto& option : clinical::redis::EndpointOptions()) options.push_back(std::move(option));
  return options;
}

// Verification without the service: the same checks (src/domain/verify.cc) over what this
// process reads itself, trusting nothing but the public key.
int VerifyOffline(const Args& args) {
  const std::vector<clinical::config::Option> store_options = StoreOptions();
  std::vector<std::string> flags = {"clinical-audit"};
  for (const auto& option : store_options) {
    if (args.Has(option.name)) flags.push_back(absl::StrCat("--", option.name, "=", args.Get(option.name)));
  }
  std::vector<const char*> argv;
  for (const std::string& flag : flags) argv.push_back(flag.c_str());
  auto config = clinical::config::Config::Load(store_options, static_cast<int>(argv.size()), argv.data(),
                                               clinical::config::ProcessEnvironment());
  absl::StatusOr<clinical::kafka::Cluster> cluster =
      config.ok() ? clinical::kafka::ClusterFromConfig(*config, "audit") : config.status();
  absl::StatusOr<clinical::redis::Endpoint> redis =
      cluster.ok() ? clinical::redis::EndpointFromConfig(*config) : cluster.status();
  if (!redis.ok()) {
    std::cerr << "clinical-audit: verify --offline: " << redis.status().message() << "\n";
    return kUsage;
  }
  if (!args.Has("public-key")) {
    std::cerr << "clinical-audit: verify --offline needs --public-key\n";
    return kUsage;
  }
  clinical::audit::AuditLogOptions options;
  options.kafka = std::move(*cluster);
  options.redis = std::move(*redis);
  options.key_root = args.Get("key-root", "audit");
  options.access_topic = args.Get("access-topic", "clinical.access.v1");
  options.checkpoint_topic = args.Get("checkpoint-topic", "clinical.audit.checkpoints.v1");
  std::ifstream key_file(args.Get("public-key"), std::ios::binary);
  std::ostringstream pem;
  pem << key_file.rdbuf();
  auto verifier = clinical::audit::CheckpointVerifier::FromPem(pem.str());
  if (!key_file || !verifier.ok()) {
    std::cerr << "clinical-audit: --public-key is not a readable Ed25519 public key (PEM)\n";
    return kUsage;
  }
  std::vector<std::string> chains;
  if (args.Has("chain")) {
    chains.push_back(args.Get("chain"));
  } else {
    clinical::audit::AuditLog lister(options, verifier->get());
    auto heads = lister.ListChains();
    if (!heads.ok()) {
      std::cerr << "clinical-audit: " << heads.status() << "\n";
      return kFailed;
    }
    for (const auto& head : *heads) chains.push_back(head.chain_id());
  }
  // Every chain's topic other than the access topic holds event envelopes.
  for (const std::string& chain : chains) {
    const std::string topic = chain.substr(0, chain.rfind('/'));
    if (topic != options.access_topic) options.event_topics.push_back(topic);
  }
  clinical::audit::AuditLog log(options, verifier->get());
  int64_t from = 0, to = 0;
  if (args.Has("from")) absl::SimpleAtoi(args.Get("from"), &from);
  if (args.Has("to")) absl::SimpleAtoi(args.Get("to"), &to);
  int exit_code = 0;
  for (const std::string& chain : chains) {
    auto result = log.Verify(chain, from, to);
    if (!result.ok()) {
      std::cerr << "clinical-audit: " << chain << ": " << result.status() << "\n";
      return kFailed;
    }
    std::cout << Json(*result) << "\n";
    if (!result->ok()) exit_code = kMismatch;
  }
  return exit_code;
}

int Query(Client& client, const Args& args) {
  v1::QueryRecordsRequest request;
  if (!Filter(args, request.mutable_filter())) return kUsage;
  request.set_page_size(PageSize(args));
  request.set_page_token(args.Get("page-token"));
  do {
    v1::QueryRecordsResponse response;
    const grpc::Status status = client.stub().QueryRecords(client.Context().get(), request, &response);
    if (!status.ok()) return Failed(status);
    for (const v1::ChainedRecord& record : response.records()) std::cout << Json(record) << "\n";
    request.set_page_token(response.next_page_token());
  } while (args.Has("all") && !request.page_token().empty());
  if (!request.page_token().empty()) std::cerr << "next page: --page-token=" << request.page_token() << "\n";
  return 0;
}

int AccessReport(Client& client, const Args& args) {
  v1::GetAccessReportRequest request;
  request.set_case_id(args.Get("case"));
  request.set_patient_mrn(args.Get("patient-mrn"));
  if (args.Has("since") && !ParseTime(args.Get("since"), request.mutable_from_time())) return kUsage;
  if (args.Has("until") && !ParseTime(args.Get("until"), request.mutable_to_time())) return kUsage;
  request.set_page_size(PageSize(args));
  do {
    v1::GetAccessReportResponse response;
    const grpc::Status status =
        client.stub().GetAccessReport(client.Context().get(), request, &response);
    if (!status.ok()) return Failed(status);
    for (const v1::AccessEntry& entry : response.entries()) std::cout << Json(entry) << "\n";
    request.set_page_token(response.next_page_token());
  } while (args.Has("all") && !request.page_token().empty());
  return 0;
}

int Export(Client& client, const Args& args) {
  v1::ExportAuditEventsRequest request;
  if (!Filter(args, request.mutable_filter())) return kUsage;
  const std::string format = args.Get("format", "ndjson");
  if (format == "ndjson") {
    request.set_format(v1::EXPORT_FORMAT_NDJSON);
  } else if (format == "bundle") {
    request.set_format(v1::EXPORT_FORMAT_BUNDLE);
  } else {
    std::cerr << "clinical-audit: --format must be ndjson or bundle\n";
    return kUsage;
  }
  request.set_page_size(PageSize(args));
  std::ofstream file;
  if (args.Has("output")) {
    file.open(args.Get("output"), std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "clinical-audit: cannot write --output\n";
      return kFailed;
    }
  }
  std::ostream& out = args.Has("output") ? file : std::cout;
  do {
    v1::ExportAuditEventsResponse response;
    const grpc::Status status =
        client.stub().ExportAuditEvents(client.Context().get(), request, &response);
    if (!status.ok()) return Failed(status);
    // One Bundle per page; NDJSON pages simply continue the stream.
    out << response.content();
    if (format == "bundle") out << "\n";
    request.set_page_token(response.next_page_token());
  } while (args.Has("all") && !request.page_token().empty());
  out.flush();
  return out ? 0 : kFailed;
}

// A case as of an instant, from the replay service (same process, same address).
int Replay(Client& client, const Args& args) {
  v1::ReplayCaseRequest request;
  request.set_case_id(args.Get("case"));
  if (!ParseTime(args.Get("as-of"), request.mutable_as_of())) {
    std::cerr << "clinical-audit: --as-of must be an RFC 3339 time\n";
    return kUsage;
  }
  const std::string mode = args.Get("mode", "occurred");
  if (mode == "occurred") {
    request.set_mode(v1::REPLAY_MODE_OCCURRED_AT);
  } else if (mode == "recorded") {
    request.set_mode(v1::REPLAY_MODE_RECORDED_AT);
  } else {
    std::cerr << "clinical-audit: --mode must be occurred or recorded\n";
    return kUsage;
  }
  v1::ReplayCaseResponse response;
  const grpc::Status status = client.replay().ReplayCase(client.Context().get(), request, &response);
  if (!status.ok()) return Failed(status);
  std::cout << Json(response) << "\n";
  return 0;
}

// The accounting of disclosures (45 CFR 164.528) of a case or patient.
int Disclosures(Client& client, const Args& args) {
  v1::ListDisclosuresRequest request;
  request.set_case_id(args.Get("case"));
  request.set_patient_mrn(args.Get("patient-mrn"));
  if (args.Has("since") && !ParseTime(args.Get("since"), request.mutable_start_time())) return kUsage;
  if (args.Has("until") && !ParseTime(args.Get("until"), request.mutable_end_time())) return kUsage;
  request.set_page_size(PageSize(args));
  do {
    v1::ListDisclosuresResponse response;
    const grpc::Status status =
        client.replay().ListDisclosures(client.Context().get(), request, &response);
    if (!status.ok()) return Failed(status);
    for (const auto& entry : response.disclosures()) std::cout << Json(entry) << "\n";
    request.set_page_token(response.next_page_token());
  } while (args.Has("all") && !request.page_token().empty());
  return 0;
}

// Policy at the time: the allowed reads of a period that the policy and relationships in
// force at each read would have denied. Findings are what an auditor acts on, so a report
// with any is exit 3 (like a verification that found a problem).
int Recheck(Client& client, const Args& args) {
  v1::RecheckAccessRequest request;
  if (!ParseTime(args.Get("from"), request.mutable_from())) {
    std::cerr << "clinical-audit: --from must be an RFC 3339 time\n";
    return kUsage;
  }
  if (args.Has("to") && !ParseTime(args.Get("to"), request.mutable_to())) {
    std::cerr << "clinical-audit: --to must be an RFC 3339 time\n";
    return kUsage;
  }
  request.set_case_id(args.Get("case"));
  request.set_actor_id(args.Get("actor"));
  if (args.Has("page-size")) request.set_page_size(PageSize(args));
  v1::RecheckAccessResponse response;
  const grpc::Status status = client.stub().RecheckAccess(client.Context().get(), request, &response);
  if (!status.ok()) return Failed(status);
  for (const v1::RecheckFinding& finding : response.findings()) std::cout << Json(finding) << "\n";
  // Written out so that zero counts and false appear too (Json omits defaults).
  std::cout << "{\"records_checked\":" << response.records_checked()
            << ",\"records_without_policy\":" << response.records_without_policy()
            << ",\"findings\":" << response.findings_size()
            << ",\"truncated\":" << (response.truncated() ? "true" : "false") << "}\n";
  return response.findings_size() > 0 ? kMismatch : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsageText;
      return 0;
    }
    if (arg.rfind("--", 0) == 0) {
      const size_t eq = arg.find('=');
      if (eq == std::string::npos) {
        args.flags[arg.substr(2)] = "";
      } else {
        args.flags[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
      }
    } else if (args.command.empty()) {
      args.command = arg;
    } else {
      std::cerr << "clinical-audit: unexpected argument\n" << kUsageText;
      return kUsage;
    }
  }
  std::vector<std::string> verify_flags = {"chain",    "from",         "to",          "offline",
                                           "public-key", "key-root", "access-topic", "checkpoint-topic"};
  for (const auto& option : StoreOptions()) verify_flags.push_back(option.name);
  const std::map<std::string, std::vector<std::string>> known_flags = {
      {"chains", {}},
      {"verify", verify_flags},
      {"query", {"case", "patient-mrn", "actor", "action", "kind", "since", "until", "page-size",
                 "page-token", "all"}},
      {"access-report", {"case", "patient-mrn", "since", "until", "page-size", "all"}},
      {"export", {"case", "patient-mrn", "actor", "action", "kind", "since", "until", "page-size",
                  "format", "output", "all"}},
      {"replay", {"case", "as-of", "mode"}},
      {"disclosures", {"case", "patient-mrn", "since", "until", "page-size", "all"}},
      {"recheck", {"from", "to", "case", "actor", "page-size"}}};
  auto command = known_flags.find(args.command);
  if (command == known_flags.end()) {
    std::cerr << kUsageText;
    return kUsage;
  }
  for (const auto& [name, value] : args.flags) {
    const bool common = name == "address" || name == "token-file" || name == "acting-role" ||
                        name == "tls-cert-file" || name == "tls-key-file" || name == "tls-ca-file" ||
                        name == "timeout";
    if (!common && std::find(command->second.begin(), command->second.end(), name) ==
                       command->second.end()) {
      std::cerr << "clinical-audit: unknown option --" << name << " for " << args.command << "\n";
      return kUsage;
    }
  }
  if (args.command == "verify" && args.Has("offline")) return VerifyOffline(args);
  Credentials credentials;
  if (const std::string problem = LoadCredentials(args, &credentials); !problem.empty()) {
    std::cerr << "clinical-audit: " << problem << "\n";
    return kUsage;
  }
  Client client(args, std::move(credentials));
  if (args.command == "chains") return Chains(client);
  if (args.command == "verify") return Verify(client, args);
  if (args.command == "query") return Query(client, args);
  if (args.command == "access-report") return AccessReport(client, args);
  if (args.command == "replay") return Replay(client, args);
  if (args.command == "disclosures") return Disclosures(client, args);
  if (args.command == "recheck") return Recheck(client, args);
  return Export(client, args);
}
