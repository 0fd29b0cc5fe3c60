#include "clinical/testing/service_suite.h"

#include <signal.h>
#include <sys/wait.h>

#include "absl/strings/str_cat.h"
#include "clinical/audit/v1/audit_service.pb.h"
#include "clinical/audit/v1/replay_service.pb.h"
#include "clinical/case/v1/case_service.pb.h"
#include "clinical/notification/v1/notification_service.pb.h"
#include "clinical/scheduling/v1/scheduling_service.pb.h"
#include "clinical/views/v1/views_service.pb.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/topics.h"
#include "clinical/testing/workflows.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/codegen/proto_utils.h"  // SerializationTraits of protobuf messages
#include "grpcpp/impl/rpc_method.h"
#include "grpcpp/support/sync_stream.h"

namespace clinical::testing {
namespace {

// Folder name of the service that serves a gRPC service.
const std::map<std::string, std::string>& FolderOf() {
  static const auto* folders = new std::map<std::string, std::string>{
      {"clinical.case.v1.CaseService", "case"},
      {"clinical.scheduling.v1.SchedulingService", "scheduling"},
      {"clinical.views.v1.ViewsService", "views"},
      {"clinical.notification.v1.NotificationService", "notification"},
      {"clinical.audit.v1.AuditService", "audit"},
      {"clinical.audit.v1.AuditReplayService", "audit"}};
  return *folders;
}

}  // namespace

std::unique_ptr<grpc::ClientContext> ContextFor(const CallAs& as, absl::Duration deadline) {
  auto context = ContextAs(as.person, deadline);
  if (!as.purpose.empty()) context->AddMetadata("x-clinical-purpose", as.purpose);
  context->AddMetadata("traceparent", Traceparent(as.trace_id));
  return context;
}

const std::vector<const google::protobuf::ServiceDescriptor*>& ServiceSuite::Services() {
  // Reached through a message of each service's file, so that the generated descriptors are
  // linked into (and registered in) every test binary that walks them.
  static const auto* services = new std::vector<const google::protobuf::ServiceDescriptor*>{
      case_::v1::GetCaseRequest::descriptor()->file()->FindServiceByName("CaseService"),
      scheduling::v1::GetAppointmentRequest::descriptor()->file()->FindServiceByName("SchedulingService"),
      views::v1::GetCaseloadRequest::descriptor()->file()->FindServiceByName("ViewsService"),
      notification::v1::ListInboxRequest::descriptor()->file()->FindServiceByName("NotificationService"),
      audit::v1::QueryRecordsRequest::descriptor()->file()->FindServiceByName("AuditService"),
      audit::v1::ReplayCaseRequest::descriptor()->file()->FindServiceByName("AuditReplayService")};
  return *services;
}

const std::vector<std::string>& ServiceSuite::GrpcServices() {
  static const auto* names = [] {
    auto* out = new std::vector<std::string>();
    for (const auto* service : Services()) out->push_back(service->full_name());
    return out;
  }();
  return *names;
}

absl::StatusOr<std::unique_ptr<ServiceSuite>> ServiceSuite::Start(
    const std::string& label, const std::map<std::string, std::vector<std::string>>& extra_args) {
  std::unique_ptr<ServiceSuite> suite(new ServiceSuite());
  SuiteTopics& t = suite->topics_;
  t.case_events = UniqueName(absl::StrCat("clinical.case.", label));
  t.organisation = UniqueName(absl::StrCat("clinical.case.organisation.", label));
  t.scheduling = UniqueName(absl::StrCat("clinical.scheduling.", label));
  t.notification = UniqueName(absl::StrCat("clinical.notification.", label));
  t.access = UniqueName(absl::StrCat("clinical.access.", label));
  t.access_policies = UniqueName(absl::StrCat("clinical.access.policies.", label));
  t.audit_checkpoints = UniqueName(absl::StrCat("clinical.audit.", label));
  t.audit_key_root = UniqueName(absl::StrCat("audit.", label));
  t.view_root = UniqueName(absl::StrCat("views.", label));

  // Every service records its reads on the suite's access topic and publishes its policies
  // on the suite's policy topic; every follower reads the suite's organisation topic.
  const std::vector<std::string> common = {"--access-topic=" + t.access, "--access-policy-topic=" + t.access_policies,
                                           "--organisation-topic=" + t.organisation};
  const std::vector<std::pair<std::string, std::vector<std::string>>> launches = {
      {"case",
       {"--case-topic=" + t.case_events, "--case-topic-partitions=3",
        "--writer-id=" + UniqueName(absl::StrCat("case-service.", label))}},
      {"scheduling",
       {"--scheduling-topic=" + t.scheduling, "--scheduling-topic-partitions=3", "--case-topic=" + t.case_events,
        "--writer-id=" + UniqueName(absl::StrCat("scheduling-service.", label))}},
      {"views", {"--case-topic=" + t.case_events, "--scheduling-topic=" + t.scheduling, "--view-root=" + t.view_root}},
      {"notification",
       {"--notification-topic=" + t.notification, "--notification-topic-partitions=3",
        "--case-topic=" + t.case_events, "--scheduling-topic=" + t.scheduling,
        "--writer-id=" + UniqueName(absl::StrCat("notification-service.", label))}},
      // The audit service chains the suite's event topics and re-checks its reads.
      {"audit",
       {"--audit-topic=" + t.audit_checkpoints, "--audit-key-root=" + t.audit_key_root,
        "--audit-source-topics=" + t.case_events + "," + t.scheduling + "," + t.organisation,
        "--case-topic=" + t.case_events, "--scheduling-topic=" + t.scheduling}},
  };
  for (const auto& [service, own] : launches) {
    ServiceLaunch launch{.service = service};
    launch.args = common;
    launch.args.insert(launch.args.end(), own.begin(), own.end());
    if (auto extra = extra_args.find(service); extra != extra_args.end()) {
      launch.args.insert(launch.args.end(), extra->second.begin(), extra->second.end());
    }
    auto started = ServiceProcess::Start(launch);
    if (!started.ok()) {
      return absl::Status(started.status().code(), absl::StrCat(service, ": ", started.status().message()));
    }
    suite->processes_.emplace_back(service, std::move(*started));
  }
  return suite;
}

ServiceSuite::~ServiceSuite() {
  for (auto it = processes_.rbegin(); it != processes_.rend(); ++it) it->second->Terminate(absl::Seconds(30));
}

ServiceProcess& ServiceSuite::Process(const std::string& service) {
  auto folder = FolderOf().find(service);
  const std::string& name = folder == FolderOf().end() ? service : folder->second;
  for (auto& [folder_name, process] : processes_) {
    if (folder_name == name) return *process;
  }
  std::abort();  // a test names a service the suite does not run: a bug in the test
}

std::shared_ptr<grpc::Channel> ServiceSuite::Channel(const std::string& service) {
  return Process(service).NewChannel();
}

grpc::Status ServiceSuite::Call(const google::protobuf::MethodDescriptor& method,
                                const google::protobuf::Message& request, google::protobuf::Message* response,
                                const CallAs& as, absl::Duration deadline) {
  const std::shared_ptr<grpc::Channel> channel = Channel(method.service()->full_name());
  const std::string path = absl::StrCat("/", method.service()->full_name(), "/", method.name());
  auto context = ContextFor(as, deadline);
  if (method.client_streaming()) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "client streaming is not used by the platform");
  }
  if (!method.server_streaming()) {
    const grpc::internal::RpcMethod rpc(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, channel);
    return grpc::internal::BlockingUnaryCall<google::protobuf::Message, google::protobuf::Message,
                                             google::protobuf::Message, google::protobuf::Message>(
        channel.get(), rpc, context.get(), request, response);
  }
  const grpc::internal::RpcMethod rpc(path.c_str(), grpc::internal::RpcMethod::SERVER_STREAMING, channel);
  std::unique_ptr<grpc::ClientReader<google::protobuf::Message>> reader(
      grpc::internal::ClientReaderFactory<google::protobuf::Message>::Create(channel.get(), rpc, context.get(),
                                                                             request));
  if (reader->Read(response)) {
    context->TryCancel();
    reader->Finish();
    return grpc::Status::OK;
  }
  return reader->Finish();
}

std::vector<audit::v1::AccessRecord> ServiceSuite::AccessRecords() const {
  std::vector<audit::v1::AccessRecord> records;
  for (const TopicRecord& raw : ReadTopicToEnd(topics_.access)) {
    audit::v1::AccessRecord record;
    if (record.ParseFromString(raw.value)) records.push_back(std::move(record));
  }
  return records;
}

std::vector<audit::v1::AccessRecord> ServiceSuite::AccessRecordsOf(const std::string& trace_id) const {
  std::vector<audit::v1::AccessRecord> out;
  for (auto& record : AccessRecords()) {
    if (record.trace_id() == trace_id) out.push_back(std::move(record));
  }
  return out;
}

}  // namespace clinical::testing
