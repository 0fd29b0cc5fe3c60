#include "scheduling_relations.h"

namespace clinical::scheduling {

absl::StatusOr<CaseInfo> FollowedCaseDirectory::Lookup(const std::string& case_id) {
  auto facts = followed_.Case(case_id);
  if (!facts.ok()) return facts.status();
  if (!facts->has_value()) return absl::NotFoundError("case not found");
  return CaseInfo{(*facts)->tenant_id, (*facts)->status, (*facts)->case_manager_id};
}

absl::StatusOr<std::string> SchedulingRelations::CaseOf(const access::Principal& /*principal*/,
                                                        const std::string& appointment_id) const {
  // The appointment's case, whatever the tenant: RelationsTo then answers another tenant's
  // case as such. An unknown appointment has no case ("": the decision's NOT_FOUND).
  auto appointment = engine_.AppointmentCase(appointment_id);
  return appointment ? appointment->id : std::string();
}

absl::StatusOr<std::string> SchedulingRelations::SubjectOf(const access::Principal& principal,
                                                           const std::string& value) const {
  auto calendar = engine_.CalendarOwner(value);
  if (!calendar) return value;
  if (calendar->tenant_id != principal.tenant_id) return std::string();
  return calendar->id;
}

}  // namespace clinical::scheduling
