#include "audit_grpc_service.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "clinical/grpcx/status.h"
#include "fhir.h"
#include "recheck.h"

namespace clinical::audit {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
// RecheckAccess: findings per call, the longest period, the longest id.
constexpr int kDefaultFindings = 500;
constexpr int kMaxFindings = 5000;
constexpr absl::Duration kMaxRecheckPeriod = absl::Hours(24 * 366);
constexpr size_t kMaxIdLength = 128;

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

bool ValidTimestamp(const google::protobuf::Timestamp& t) {
  return t.seconds() >= 0 && t.nanos() >= 0 && t.nanos() <= 999999999;
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  const int64_t nanos = absl::ToUnixNanos(t);
  google::protobuf::Timestamp timestamp;
  timestamp.set_seconds(nanos / 1'000'000'000);
  timestamp.set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  return timestamp;
}

}  // namespace

void ValidateRecheck(const audit::v1::RecheckAccessRequest& request, absl::Time now, grpcx::Violations& violations) {
  const bool from_ok = request.has_from() && ValidTimestamp(request.from());
  if (!request.has_from()) {
    violations.Add("from", "is required");
  } else if (!from_ok) {
    violations.Add("from", "must be a valid time after 1970");
  }
  const bool to_ok = !request.has_to() || ValidTimestamp(request.to());
  if (!to_ok) violations.Add("to", "must be a valid time after 1970");
  if (from_ok && to_ok) {
    const absl::Time from = ToTime(request.from());
    const absl::Time to = request.has_to() ? ToTime(request.to()) : now;
    if (to <= from) {
      violations.Add("to", request.has_to() ? "must be after from" : "must be after from (to defaults to now)");
    } else if (to - from > kMaxRecheckPeriod) {
      violations.Add("to", "the period is at most 366 days");
    }
  }
  if (request.case_id().size() > kMaxIdLength) {
    violations.Add("case_id", absl::StrCat("must be at most ", kMaxIdLength, " characters"));
  }
  if (request.actor_id().size() > kMaxIdLength) {
    violations.Add("actor_id", absl::StrCat("must be at most ", kMaxIdLength, " characters"));
  }
  if (request.page_size() < 0 || request.page_size() > kMaxFindings) {
    violations.Add("page_size", absl::StrCat("must be between 0 and ", kMaxFindings));
  }
}

template <typename Fn>
grpc::Status AuditGrpcService::Handle(grpc::ServerContext* context, const google::protobuf::Message& request,
                                      Fn fn) {
  // First, before anything is read: the method's policy (auditors and privacy officers).
  auto caller = callers_.Authorize(*context, request);
  if (!caller.ok()) return grpcx::ToGrpcStatus(caller.status(), *context);
  return grpcx::ToGrpcStatus(fn(*caller), *context);
}

grpc::Status AuditGrpcService::ListChains(grpc::ServerContext* context,
                                          const audit::v1::ListChainsRequest* request,
                                          audit::v1::ListChainsResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller&) -> absl::Status {
    auto chains = log_.ListChains();
    if (!chains.ok()) return chains.status();
    for (auto& head : *chains) *response->add_chains() = std::move(head);
    return absl::OkStatus();
  });
}

grpc::Status AuditGrpcService::VerifyChain(grpc::ServerContext* context,
                                           const audit::v1::VerifyChainRequest* request,
                                           audit::v1::VerifyChainResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller&) -> absl::Status {
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
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
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
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
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
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
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

grpc::Status AuditGrpcService::RecheckAccess(grpc::ServerContext* context,
                                             const audit::v1::RecheckAccessRequest* request,
                                             audit::v1::RecheckAccessResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    const absl::Time now = clock_();
    grpcx::Violations violations;
    ValidateRecheck(*request, now, violations);
    if (!violations.empty()) return violations.ToStatus();

    // The tenant's access records in [from, to), through the case or actor index when one
    // is given (both: the case index, filtered by actor).
    audit::v1::RecordFilter filter;
    filter.set_kind(audit::v1::RECORD_KIND_ACCESS);
    filter.set_case_id(request->case_id());
    filter.set_actor_id(request->actor_id());
    *filter.mutable_from_time() = request->from();
    *filter.mutable_to_time() = request->has_to() ? request->to() : ToTimestamp(now);
    const std::string allowed = audit::v1::AccessOutcome_Name(audit::v1::ACCESS_OUTCOME_ALLOWED);
    RecheckInput input;
    std::string token;
    do {
      auto page = log_.Query(caller.tenant_id, filter, kMaxPageSize, token);
      if (!page.ok()) return page.status();
      for (audit::v1::ChainedRecord& record : page->records) {
        if (record.outcome() == allowed) input.reads.push_back(std::move(record));
      }
      if (input.reads.size() > limits_.max_records) {
        return grpcx::InvalidArgument(
            "too many reads", {{"from", absl::StrCat("the period holds more than ", limits_.max_records,
                                                     " allowed reads: narrow it, or give case_id or actor_id")}});
      }
      token = page->next_page_token;
    } while (!token.empty());

    auto snapshots = recheck_.PolicySnapshots();
    if (!snapshots.ok()) return snapshots.status();
    const PolicyIndex policies(*snapshots);
    auto events = recheck_.Events(CasesToFold(input.reads, policies), caller.tenant_id);
    if (!events.ok()) return events.status();
    input.events = std::move(*events);

    const int32_t limit = request->page_size() == 0 ? kDefaultFindings : request->page_size();
    RecheckOutcome outcome = Recheck(input, policies, static_cast<size_t>(limit));
    response->set_records_checked(outcome.records_checked);
    response->set_records_without_policy(outcome.records_without_policy);
    for (audit::v1::RecheckFinding& finding : outcome.findings) *response->add_findings() = std::move(finding);
    response->set_truncated(outcome.truncated);
    return absl::OkStatus();
  });
}

}  // namespace clinical::audit
