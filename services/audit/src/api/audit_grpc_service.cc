#include "audit_grpc_service.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "clinical/grpcx/status.h"
#include "fhir.h"

namespace clinical::audit {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

void ValidatePaging(int32_t page_size, grpcx::Violations& violations) {
  if (page_size < 0 || page_size > kMaxPageSize) {
    violations.Add("page_size", absl::StrCat("must be between 0 and ", kMaxPageSize));
  }
}

void ValidateTimes(const google::protobuf::Timestamp* from, const google::protobuf::Timestamp* to,
                   const std::string& prefix, grpcx::Violations& violations) {
  if (from != nullptr && (from->seconds() < 0 || from->nanos() < 0 || from->nanos() > 999999999)) {
    violations.Add(prefix + "from_time", "must be a valid time after 1970");
  }
  if (to != nullptr && (to->seconds() < 0 || to->nanos() < 0 || to->nanos() > 999999999)) {
    violations.Add(prefix + "to_time", "must be a valid time after 1970");
  }
  if (from != nullptr && to != nullptr && ToMillis(*to) <= ToMillis(*from)) {
    violations.Add(prefix + "to_time", "must be after from_time");
  }
}

void ValidateFilter(const audit::v1::RecordFilter& filter, grpcx::Violations& violations) {
  const int subjects = (filter.case_id().empty() ? 0 : 1) + (filter.patient_mrn().empty() ? 0 : 1) +
                       (filter.actor_id().empty() ? 0 : 1);
  if (subjects > 1) {
    violations.Add("filter", "set at most one of case_id, patient_mrn and actor_id");
  }
  if (!audit::v1::RecordKind_IsValid(filter.kind())) violations.Add("filter.kind", "unknown kind");
  ValidateTimes(filter.has_from_time() ? &filter.from_time() : nullptr,
                filter.has_to_time() ? &filter.to_time() : nullptr, "filter.", violations);
}

int PageSize(int32_t requested) { return requested == 0 ? kDefaultPageSize : requested; }

}  // namespace

absl::Status AuthorizeAuditor(const grpcx::Caller& caller) {
  const common::v1::Role role = caller.actor.role();
  if (role == common::v1::ROLE_AUDITOR || role == common::v1::ROLE_PRIVACY_OFFICER) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError("the audit log is open to auditors and privacy officers only");
}

template <typename Fn>
grpc::Status AuditGrpcService::Handle(grpc::ServerContext* context, Fn fn) {
  auto caller = callers_.CallerOf(*context);
  if (!caller.ok()) return grpcx::ToGrpcStatus(caller.status(), *context);
  if (absl::Status allowed = AuthorizeAuditor(*caller); !allowed.ok()) {
    return grpcx::ToGrpcStatus(allowed, *context);
  }
  return grpcx::ToGrpcStatus(fn(*caller), *context);
}

grpc::Status AuditGrpcService::ListChains(grpc::ServerContext* context,
                                          const audit::v1::ListChainsRequest*,
                                          audit::v1::ListChainsResponse* response) {
  return Handle(context, [&](const grpcx::Caller&) -> absl::Status {
    auto chains = log_.ListChains();
    if (!chains.ok()) return chains.status();
    for (auto& head : *chains) *response->add_chains() = std::move(head);
    return absl::OkStatus();
  });
}

grpc::Status AuditGrpcService::VerifyChain(grpc::ServerContext* context,
                                           const audit::v1::VerifyChainRequest* request,
                                           audit::v1::VerifyChainResponse* response) {
  return Handle(context, [&](const grpcx::Caller&) -> absl::Status {
    grpcx::Violations violations;
    if (request->chain_id().empty()) violations.Add("chain_id", "is required");
    if (request->from_sequence() < 0) violations.Add("from_sequence", "must not be negative");
    if (request->to_sequence() < 0) violations.Add("to_sequence", "must not be negative");
    if (request->to_sequence() > 0 && request->from_sequence() > request->to_sequence()) {
      violations.Add("to_sequence", "must not be before from_sequence");
    }
    if (!violations.empty()) return violations.ToStatus();
    auto result = log_.Verify(request->chain_id(), request->from_sequence(), request->to_sequence());
    if (!result.ok()) {
      if (result.status().code() == absl::StatusCode::kInvalidArgument) {
        return grpcx::InvalidArgument("invalid range",
                                      {{"to_sequence", std::string(result.status().message())}});
      }
      return result.status();
    }
    *response = std::move(*result);
    return absl::OkStatus();
  });
}

grpc::Status AuditGrpcService::QueryRecords(grpc::ServerContext* context,
                                            const audit::v1::QueryRecordsRequest* request,
                                            audit::v1::QueryRecordsResponse* response) {
  return Handle(context, [&](const grpcx::Caller& caller) -> absl::Status {
    grpcx::Violations violations;
    ValidateFilter(request->filter(), violations);
    ValidatePaging(request->page_size(), violations);
    if (!violations.empty()) return violations.ToStatus();
    auto page = log_.Query(caller.tenant_id, request->filter(), PageSize(request->page_size()),
                           request->page_token());
    if (!page.ok()) return page.status();
    for (auto& record : page->records) *response->add_records() = std::move(record);
    response->set_next_page_token(page->next_page_token);
    return absl::OkStatus();
  });
}

grpc::Status AuditGrpcService::GetAccessReport(grpc::ServerContext* context,
                                               const audit::v1::GetAccessReportRequest* request,
                                               audit::v1::GetAccessReportResponse* response) {
  return Handle(context, [&](const grpcx::Caller& caller) -> absl::Status {
    grpcx::Violations violations;
    if (request->case_id().empty() == request->patient_mrn().empty()) {
      violations.Add("case_id", "set exactly one of case_id and patient_mrn");
    }
    ValidateTimes(request->has_from_time() ? &request->from_time() : nullptr,
                  request->has_to_time() ? &request->to_time() : nullptr, "", violations);
    ValidatePaging(request->page_size(), violations);
    if (!violations.empty()) return violations.ToStatus();
    audit::v1::RecordFilter filter;
    filter.set_case_id(request->case_id());
    filter.set_patient_mrn(request->patient_mrn());
    if (request->has_from_time()) *filter.mutable_from_time() = request->from_time();
    if (request->has_to_time()) *filter.mutable_to_time() = request->to_time();
    filter.set_kind(audit::v1::RECORD_KIND_ACCESS);
    std::vector<std::string> cases;
    if (!request->case_id().empty()) {
      cases.push_back(request->case_id());
    } else {
      auto found = log_.PatientCases(caller.tenant_id, request->patient_mrn());
      if (!found.ok()) return found.status();
      cases = std::move(*found);
    }
    auto page = log_.Query(caller.tenant_id, filter, PageSize(request->page_size()),
                           request->page_token());
    if (!page.ok()) return page.status();
    for (const audit::v1::ChainedRecord& record : page->records) {
      audit::v1::AccessEntry* entry = response->add_entries();
      *entry->mutable_occurred_at() = record.occurred_at();
      entry->set_actor_id(record.actor_id());
      entry->set_actor_role(record.actor_role());
      for (const std::string& case_id : record.case_ids()) {
        if (std::find(cases.begin(), cases.end(), case_id) != cases.end()) {
          entry->set_case_id(case_id);
          break;
        }
      }
      entry->set_method(record.action());
      entry->set_resource_type(record.resource_type());
      entry->set_purpose_of_use(record.purpose_of_use());
      entry->set_source_address(record.source_address());
      entry->set_outcome(record.outcome());
      entry->set_chain_id(record.chain_id());
      entry->set_sequence(record.sequence());
    }
    response->set_next_page_token(page->next_page_token);
    return absl::OkStatus();
  });
}

grpc::Status AuditGrpcService::ExportAuditEvents(grpc::ServerContext* context,
                                                 const audit::v1::ExportAuditEventsRequest* request,
                                                 audit::v1::ExportAuditEventsResponse* response) {
  return Handle(context, [&](const grpcx::Caller& caller) -> absl::Status {
    grpcx::Violations violations;
    ValidateFilter(request->filter(), violations);
    ValidatePaging(request->page_size(), violations);
    if (!audit::v1::ExportFormat_IsValid(request->format())) violations.Add("format", "unknown format");
    if (!violations.empty()) return violations.ToStatus();
    auto page = log_.Query(caller.tenant_id, request->filter(), PageSize(request->page_size()),
                           request->page_token());
    if (!page.ok()) return page.status();
    std::vector<nlohmann::json> events;
    for (const audit::v1::ChainedRecord& record : page->records) events.push_back(ToAuditEvent(record));
    std::string content;
    if (request->format() == audit::v1::EXPORT_FORMAT_BUNDLE) {
      google::protobuf::Timestamp now;
      const int64_t millis = absl::ToUnixMillis(clock_());
      now.set_seconds(millis / 1000);
      now.set_nanos(static_cast<int32_t>((millis % 1000) * 1000000));
      // The bundle id names the page: the hash of the first event (or "empty").
      const std::string id = events.empty() ? "empty" : events.front()["id"].get<std::string>();
      content = ToBundle(events, id, now).dump();
    } else {
      for (const nlohmann::json& event : events) content += event.dump() + "\n";
    }
    std::set<std::string> cases;
    for (const audit::v1::ChainedRecord& record : page->records) {
      cases.insert(record.case_ids().begin(), record.case_ids().end());
    }
    for (const std::string& case_id : cases) response->add_case_ids(case_id);
    response->set_content(std::move(content));
    response->set_resource_count(static_cast<int32_t>(events.size()));
    response->set_next_page_token(page->next_page_token);
    return absl::OkStatus();
  });
}

}  // namespace clinical::audit
