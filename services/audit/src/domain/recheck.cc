#include "recheck.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "clinical/access/policy.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/relations/facts.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.h"

namespace clinical::audit {
namespace {

using audit::v1::ChainedRecord;
using common::v1::EventEnvelope;

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// Events of one aggregate in the order they took effect: occurred_at, then version.
void SortByOccurrence(std::vector<const EventEnvelope*>& events) {
  std::stable_sort(events.begin(), events.end(), [](const EventEnvelope* a, const EventEnvelope* b) {
    return std::make_tuple(ToTime(a->occurred_at()), a->aggregate_version()) <
           std::make_tuple(ToTime(b->occurred_at()), b->aggregate_version());
  });
}

// One aggregate's facts, folded forward as the reads' instants advance.
template <typename Facts>
struct Cursor {
  std::vector<const EventEnvelope*> events;  // by occurrence
  size_t next = 0;
  Facts facts;
};

void Advance(Cursor<relations::CaseFacts>& cursor, absl::Time at) {
  for (; cursor.next < cursor.events.size(); ++cursor.next) {
    const EventEnvelope& envelope = *cursor.events[cursor.next];
    if (ToTime(envelope.occurred_at()) > at) return;
    // The services' own fold; an event that decodes as no case event changes nothing.
    relations::ApplyCaseEvent(cursor.facts, envelope);
  }
}

void Advance(Cursor<relations::OrganisationFacts>& cursor, absl::Time at) {
  for (; cursor.next < cursor.events.size(); ++cursor.next) {
    const EventEnvelope& envelope = *cursor.events[cursor.next];
    if (ToTime(envelope.occurred_at()) > at) return;
    relations::ApplyOrganisationEvent(cursor.facts, envelope);
  }
}

// "case_manager" -> ROLE_CASE_MANAGER (ROLE_UNSPECIFIED for anything else).
common::v1::Role ParseRole(const std::string& name) {
  common::v1::Role role = common::v1::ROLE_UNSPECIFIED;
  if (name.empty() || !common::v1::Role_Parse("ROLE_" + absl::AsciiStrToUpper(name), &role)) {
    return common::v1::ROLE_UNSPECIFIED;
  }
  return role;
}

bool HasCaseRule(const common::v1::AccessPolicy& policy) {
  return std::any_of(policy.allow().begin(), policy.allow().end(), [](const common::v1::AccessRule& rule) {
    return access::IsCaseRelationship(rule.relationship());
  });
}

audit::v1::RecheckFinding FindingFor(const ChainedRecord& read, const std::string& reason) {
  audit::v1::RecheckFinding finding;
  finding.set_record_id(read.source_record_id());
  *finding.mutable_occurred_at() = read.occurred_at();
  finding.set_actor_id(read.actor_id());
  finding.set_actor_role(read.actor_role());
  finding.set_method(read.action());
  if (!read.case_ids().empty()) finding.set_case_id(read.case_ids(0));
  finding.set_relationship_then(read.relationship());
  finding.set_reason(reason);
  finding.set_policy_version(read.policy_version());
  return finding;
}

}  // namespace

PolicyIndex::PolicyIndex(const std::vector<audit::v1::AccessPolicySnapshot>& snapshots) {
  for (const audit::v1::AccessPolicySnapshot& snapshot : snapshots) {
    if (snapshot.service().empty() || snapshot.version().empty()) continue;
    auto [it, inserted] = methods_.try_emplace(snapshot.service() + "@" + snapshot.version());
    if (!inserted) continue;
    for (const audit::v1::MethodAccessPolicy& method : snapshot.methods()) {
      it->second.emplace(method.method(), method.policy());
    }
  }
}

const common::v1::AccessPolicy* PolicyIndex::PolicyOf(const ChainedRecord& read) const {
  if (read.policy_version().empty()) return nullptr;
  auto snapshot = methods_.find(access::ServiceOf(read.action()) + "@" + read.policy_version());
  if (snapshot == methods_.end()) return nullptr;
  auto method = snapshot->second.find(read.action());
  return method == snapshot->second.end() ? nullptr : &method->second;
}

std::optional<std::string> NamedCaseOf(const ChainedRecord& read, const common::v1::AccessPolicy& policy) {
  if (!HasCaseRule(policy) || read.case_ids().empty()) return std::nullopt;
  return read.case_ids(0);
}

std::string SubjectOf(const ChainedRecord& read, const common::v1::AccessPolicy& policy) {
  const bool kept = !policy.subject_path().empty() && policy.resource_id_paths_size() == 1 &&
                    policy.resource_id_paths(0) == policy.subject_path();
  if (!kept || read.resource_id().empty()) return "";
  return read.resource_id();
}

std::set<std::string> CasesToFold(const std::vector<ChainedRecord>& reads, const PolicyIndex& policies) {
  std::set<std::string> cases;
  for (const ChainedRecord& read : reads) {
    const common::v1::AccessPolicy* policy = policies.PolicyOf(read);
    if (policy == nullptr) continue;
    if (auto named = NamedCaseOf(read, *policy)) cases.insert(*named);
  }
  return cases;
}

RecheckOutcome Recheck(const RecheckInput& input, const PolicyIndex& policies, size_t limit) {
  // The facts move forward in time only, so the reads are taken oldest first and every
  // event is folded once.
  std::vector<const ChainedRecord*> reads;
  for (const ChainedRecord& read : input.reads) {
    if (read.kind() == audit::v1::RECORD_KIND_ACCESS &&
        read.outcome() == audit::v1::AccessOutcome_Name(audit::v1::ACCESS_OUTCOME_ALLOWED)) {
      reads.push_back(&read);
    }
  }
  std::stable_sort(reads.begin(), reads.end(), [](const ChainedRecord* a, const ChainedRecord* b) {
    return std::make_tuple(ToTime(a->occurred_at()), a->source_record_id()) <
           std::make_tuple(ToTime(b->occurred_at()), b->source_record_id());
  });
  std::map<std::string, Cursor<relations::CaseFacts>> cases;                 // by case id
  std::map<std::string, Cursor<relations::OrganisationFacts>> organisations;  // by tenant
  for (const EventEnvelope& envelope : input.events) {
    if (envelope.aggregate_type() == "case") {
      cases[envelope.aggregate_id()].events.push_back(&envelope);
    } else if (envelope.aggregate_type() == "organisation" &&
               envelope.aggregate_id() == relations::OrganisationId(envelope.tenant_id())) {
      organisations[envelope.tenant_id()].events.push_back(&envelope);
    }
  }
  for (auto& [id, cursor] : cases) SortByOccurrence(cursor.events);
  for (auto& [tenant, cursor] : organisations) SortByOccurrence(cursor.events);

  RecheckOutcome outcome;
  auto find = [&](const ChainedRecord& read, const std::string& reason) {
    if (outcome.findings.size() < limit) {
      outcome.findings.push_back(FindingFor(read, reason));
    } else {
      outcome.truncated = true;
    }
  };
  for (const ChainedRecord* read : reads) {
    ++outcome.records_checked;
    const common::v1::AccessPolicy* policy = policies.PolicyOf(*read);
    if (policy == nullptr) {
      ++outcome.records_without_policy;
      find(*read, kNoPolicy);
      continue;
    }
    const absl::Time at = ToTime(read->occurred_at());
    const access::Principal principal{read->actor_id(), read->tenant_id(), ParseRole(read->actor_role())};
    Cursor<relations::OrganisationFacts>& organisation = organisations[principal.tenant_id];
    Advance(organisation, at);

    // What RelationsFor would have looked up, from the facts at `at` instead of now.
    access::Relations then;
    if (auto case_id = NamedCaseOf(*read, *policy)) {
      Cursor<relations::CaseFacts>& named = cases[*case_id];
      Advance(named, at);
      then.cases.push_back(relations::RelationsTo(*case_id, named.facts, &organisation.facts, principal, at));
    }
    then.subject_id = SubjectOf(*read, *policy);
    if (!then.subject_id.empty() && then.subject_id != principal.user_id) {
      then.supervises_subject = relations::Supervises(organisation.facts, principal.user_id, then.subject_id);
    }
    const access::Decision decision = access::Decide(*policy, principal, then);
    if (!decision.allowed) find(*read, decision.denial_reason);
  }
  return outcome;
}

}  // namespace clinical::audit
