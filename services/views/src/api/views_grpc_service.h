#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/grpcx/caller.h"
#include "clinical/projection/projection.h"
#include "clinical/relations/facts.h"
#include "clinical/redis/connection.h"
#include "clinical/views/v1/views_service.grpc.pb.h"
#include "figures.h"

namespace clinical::views {

namespace vv1 = ::clinical::views::v1;

class ViewReader;

struct QueryOptions {
  std::string root = "views";       // the view's key root (versions under it)
  std::string case_topic;           // positions must name this topic ...
  std::string scheduling_topic;     // ... or this one
  redis::Endpoint redis;             // the views' own ACL user
  absl::Duration redis_timeout = absl::Seconds(2);
  absl::Duration max_position_wait = absl::Seconds(10);
  int default_contact_threshold_days = 14;
  std::map<std::string, int> contact_threshold_days;  // per program
  absl::Duration goal_due_soon = absl::Hours(14 * 24);
  // The tenant's organisation as of now (teams and their supervisors), from the case
  // service's organisation topic: the supervisor rollups sum each supervisor's teams.
  // UNAVAILABLE when the topic cannot be read up to date. Empty: no supervisor rollups.
  std::function<absl::StatusOr<relations::OrganisationFacts>(const std::string& tenant_id)> organisation;
  // Acuity-weighted caseload limit per (tenant or "" for default, program).
  std::map<std::pair<std::string, std::string>, int> caseload_limits;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// Reads "program=days,program=days" (empty: none). INVALID_ARGUMENT on a bad entry.
absl::StatusOr<std::map<std::string, int>> ParseThresholds(const std::string& text);
// The caseload limits of the case service's programs file (services/case/config/programs.json).
absl::StatusOr<std::map<std::pair<std::string, std::string>, int>> LoadCaseloadLimits(
    const std::string& path);

// clinical.views.v1.ViewsService over the views in Redis (sync API: handlers may block on
// WaitForPosition and Redis round trips, each bounded). Thread-safe: Redis connections come
// from a small pool, one per call in flight. `projection` (may be null: no waiting) must
// outlive the service.
//
// Errors: UNAUTHENTICATED (no identity), PERMISSION_DENIED (a case manager asking for
// another's caseload or for supervisor views), INVALID_ARGUMENT with field violations,
// DEADLINE_EXCEEDED (position not reached in time), UNAVAILABLE (Redis down, or no version
// of the view built yet).
class ViewsGrpcService final : public vv1::ViewsService::Service {
 public:
  ViewsGrpcService(QueryOptions options, const projection::Projection* projection,
                   const grpcx::CallerSource& callers);

  grpc::Status GetCaseload(grpc::ServerContext* context, const vv1::GetCaseloadRequest* request,
                           vv1::GetCaseloadResponse* response) override;
  grpc::Status GetWorklist(grpc::ServerContext* context, const vv1::GetWorklistRequest* request,
                           vv1::GetWorklistResponse* response) override;
  grpc::Status ListRollups(grpc::ServerContext* context, const vv1::ListRollupsRequest* request,
                           vv1::ListRollupsResponse* response) override;
  grpc::Status SuggestCaseManagers(grpc::ServerContext* context,
                                   const vv1::SuggestCaseManagersRequest* request,
                                   vv1::SuggestCaseManagersResponse* response) override;
  grpc::Status GetOutcomes(grpc::ServerContext* context, const vv1::GetOutcomesRequest* request,
                           vv1::GetOutcomesResponse* response) override;

 private:
  CaseClock Clock(absl::Time now) const {
    return {absl::ToUnixSeconds(now), absl::ToInt64Seconds(options_.goal_due_soon)};
  }
  absl::StatusOr<std::unique_ptr<redis::Connection>> Acquire();
  void Release(std::unique_ptr<redis::Connection> connection);
  absl::Status WaitFor(const google::protobuf::RepeatedPtrField<common::v1::LogPosition>& positions,
                       const grpc::ServerContext& context, redis::Connection& redis) const;
  absl::Status SupervisorRollups(const std::string& tenant, const vv1::ListRollupsRequest& request,
                                ViewReader& reader, vv1::ListRollupsResponse* response) const;
  template <typename Fn>
  grpc::Status Handle(grpc::ServerContext* context, const google::protobuf::Message& request, Fn fn);

  const QueryOptions options_;
  const projection::Projection* projection_;
  const grpcx::CallerSource& callers_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<redis::Connection>> idle_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace clinical::views
