// Rule book, rule evaluation and notification identity.
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "notification_domain.h"

namespace clinical::notification {
namespace {

constexpr std::array<std::pair<Trigger, const char*>, 14> kTriggers = {{
    {Trigger::kCaseAssigned, "case_assigned"},
    {Trigger::kAssignmentDeclined, "assignment_declined"},
    {Trigger::kHighRisk, "high_risk"},
    {Trigger::kEscalation, "escalation"},
    {Trigger::kClosureAwaitingApproval, "closure_awaiting_approval"},
    {Trigger::kAppointmentBooked, "appointment_booked"},
    {Trigger::kAppointmentRescheduled, "appointment_rescheduled"},
    {Trigger::kAppointmentCancelled, "appointment_cancelled"},
    {Trigger::kReminderDue, "reminder_due"},
    {Trigger::kNoShow, "no_show"},
    {Trigger::kTaskOverdue, "task_overdue"},
    {Trigger::kTaskOverdueEscalation, "task_overdue_escalation"},
    {Trigger::kNoContact, "no_contact"},
    {Trigger::kEmergencyAccessGranted, "emergency_access_granted"},
}};

constexpr std::array<std::pair<Audience, const char*>, 8> kAudiences = {{
    {Audience::kCaseManager, "case_manager"},
    {Audience::kPreviousCaseManager, "previous_case_manager"},
    {Audience::kDecliningManager, "declining_manager"},
    {Audience::kSupervisor, "supervisor"},
    {Audience::kParticipants, "participants"},
    {Audience::kTaskOwner, "task_owner"},
    {Audience::kPrivacyOfficers, "privacy_officers"},
    {Audience::kTeamSupervisors, "team_supervisors"},
}};

Rule MakeRule(std::string id, Trigger trigger, std::vector<Audience> audiences,
              std::string type, Priority priority, std::string title) {
  Rule rule;
  rule.id = std::move(id);
  rule.trigger = trigger;
  rule.audiences = std::move(audiences);
  rule.type = std::move(type);
  rule.priority = priority;
  rule.title = std::move(title);
  return rule;
}

std::string Link(const Fact& fact) {
  switch (fact.trigger) {
    case Trigger::kAppointmentBooked:
    case Trigger::kAppointmentRescheduled:
    case Trigger::kAppointmentCancelled:
    case Trigger::kReminderDue:
    case Trigger::kNoShow:
      return absl::StrCat("/appointments/", fact.subject_id);
    case Trigger::kTaskOverdue:
    case Trigger::kTaskOverdueEscalation:
      return absl::StrCat("/cases/", fact.case_id, "/tasks/", fact.subject_id);
    default:
      return absl::StrCat("/cases/", fact.case_id);
  }
}

std::vector<std::string> Resolve(Audience audience, const Fact& fact,
                                 const TenantRules& tenant) {
  switch (audience) {
    case Audience::kCaseManager:
      return {fact.case_manager_id};
    case Audience::kPreviousCaseManager:
      return {fact.previous_case_manager_id};
    case Audience::kDecliningManager:
      return {fact.declining_manager_id};
    case Audience::kSupervisor: {
      auto it = tenant.supervisor_by_team.find(fact.team_id);
      if (it == tenant.supervisor_by_team.end()) it = tenant.supervisor_by_team.find("*");
      if (it == tenant.supervisor_by_team.end()) return {};
      return {it->second};
    }
    case Audience::kParticipants:
      return fact.participant_ids;
    case Audience::kTaskOwner:
      return {fact.task_owner_id};
    case Audience::kPrivacyOfficers:
      return fact.privacy_officer_ids;
    case Audience::kTeamSupervisors:
      return fact.team_supervisor_ids;
  }
  return {};
}

}  // namespace

std::string TriggerName(Trigger trigger) {
  for (const auto& [t, name] : kTriggers) {
    if (t == trigger) return name;
  }
  return "unknown";
}

std::optional<Trigger> TriggerFromName(const std::string& name) {
  for (const auto& [t, n] : kTriggers) {
    if (name == n) return t;
  }
  return std::nullopt;
}

std::string AudienceName(Audience audience) {
  for (const auto& [a, name] : kAudiences) {
    if (a == audience) return name;
  }
  return "unknown";
}

std::optional<Audience> AudienceFromName(const std::string& name) {
  for (const auto& [a, n] : kAudiences) {
    if (name == n) return a;
  }
  return std::nullopt;
}

const TenantRules& RuleBook::For(const std::string& tenant_id) const {
  auto it = by_tenant.find(tenant_id);
  return it == by_tenant.end() ? defaults : it->second;
}

RuleBook DefaultRuleBook() {
  using A = Audience;
  using P = Priority;
  using T = Trigger;
  RuleBook book;
  auto& r = book.defaults.rules;
  r.push_back(MakeRule("assignment.new", T::kCaseAssigned, {A::kCaseManager}, "assignment",
                       P::kNormal, "A case was assigned to you"));
  r.push_back(MakeRule("assignment.previous", T::kCaseAssigned, {A::kPreviousCaseManager},
                       "assignment", P::kNormal, "A case was reassigned away from you"));
  r.push_back(MakeRule("assignment.declined", T::kAssignmentDeclined, {A::kSupervisor},
                       "assignment_declined", P::kNormal, "An assignment was declined"));
  r.push_back(MakeRule("risk.high", T::kHighRisk, {A::kCaseManager, A::kSupervisor},
                       "high_risk", P::kUrgent, "High-risk assessment result"));
  r.push_back(MakeRule("escalation", T::kEscalation, {A::kCaseManager, A::kSupervisor},
                       "escalation", P::kNormal, "A case was escalated"));
  r.push_back(MakeRule("closure.approval", T::kClosureAwaitingApproval, {A::kSupervisor},
                       "closure_approval", P::kNormal, "A case closure awaits your approval"));
  r.push_back(MakeRule("appointment.booked", T::kAppointmentBooked, {A::kParticipants},
                       "appointment", P::kNormal, "Appointment booked"));
  r.push_back(MakeRule("appointment.rescheduled", T::kAppointmentRescheduled,
                       {A::kParticipants}, "appointment", P::kNormal,
                       "Appointment rescheduled"));
  r.push_back(MakeRule("appointment.cancelled", T::kAppointmentCancelled, {A::kParticipants},
                       "appointment", P::kNormal, "Appointment cancelled"));
  r.push_back(MakeRule("appointment.reminder", T::kReminderDue, {A::kParticipants},
                       "reminder", P::kNormal, "Appointment reminder"));
  r.push_back(MakeRule("appointment.no_show", T::kNoShow, {A::kCaseManager}, "no_show",
                       P::kNormal, "A patient did not attend an appointment"));
  r.push_back(MakeRule("task.overdue", T::kTaskOverdue, {A::kTaskOwner}, "task_overdue",
                       P::kNormal, "A task is overdue"));
  r.push_back(MakeRule("task.overdue.escalation", T::kTaskOverdueEscalation, {A::kSupervisor},
                       "task_overdue", P::kNormal, "A task is still overdue"));
  r.push_back(MakeRule("contact.none", T::kNoContact, {A::kCaseManager}, "no_contact",
                       P::kNormal, "No contact with a case recently"));
  // Break-glass is rare and reviewed: the tenant's privacy officers and the case's team
  // supervisors learn at once, even in quiet hours (urgent), and cannot opt out.
  r.push_back(MakeRule("emergency.access", T::kEmergencyAccessGranted, {A::kPrivacyOfficers, A::kTeamSupervisors},
                       "emergency_access", P::kUrgent, "Emergency access to a case was granted"));
  return book;
}

absl::StatusOr<RuleBook> ParseRuleBook(const std::string& text) {
  auto fail = [](const std::string& path, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("rule book: ", path, ": ", what));
  };
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return fail("$", "not a JSON object");
  auto parse_tenant = [&](const nlohmann::json& j,
                          const std::string& path) -> absl::StatusOr<TenantRules> {
    TenantRules tenant;
    if (!j.is_object()) return fail(path, "not an object");
    // Timer lengths in hours; "<name>_seconds" instead gives a finer grain (short test
    // deployments). Not both.
    for (auto [name, target] :
         {std::pair<std::string, absl::Duration*>{"task_escalation_after",
                                                  &tenant.task_escalation_after},
          std::pair<std::string, absl::Duration*>{"no_contact_after",
                                                  &tenant.no_contact_after}}) {
      const std::string hours = name + "_hours", seconds = name + "_seconds";
      if (j.contains(hours) && j.contains(seconds))
        return fail(path + "." + seconds, "give either " + hours + " or " + seconds);
      for (const auto& [key, unit] : {std::pair<std::string, absl::Duration>{hours, absl::Hours(1)},
                                      std::pair<std::string, absl::Duration>{seconds,
                                                                             absl::Seconds(1)}}) {
        if (!j.contains(key)) continue;
        const auto& v = j[key];
        if (!v.is_number_integer() || v.get<int64_t>() <= 0)
          return fail(path + "." + key, "must be a positive integer");
        *target = unit * v.get<int64_t>();
      }
    }
    if (j.contains("supervisors")) {
      if (!j["supervisors"].is_object()) return fail(path + ".supervisors", "not an object");
      for (const auto& [team, sup] : j["supervisors"].items()) {
        if (!sup.is_string() || sup.get<std::string>().empty())
          return fail(path + ".supervisors." + team, "must be a non-empty string");
        tenant.supervisor_by_team[team] = sup.get<std::string>();
      }
    }
    if (!j.contains("rules") || !j["rules"].is_array()) return fail(path + ".rules", "missing");
    std::set<std::string> ids;
    for (size_t i = 0; i < j["rules"].size(); ++i) {
      const auto& jr = j["rules"][i];
      const std::string rp = absl::StrCat(path, ".rules[", i, "]");
      if (!jr.is_object()) return fail(rp, "not an object");
      Rule rule;
      if (!jr.contains("id") || !jr["id"].is_string() || jr["id"].get<std::string>().empty())
        return fail(rp + ".id", "required");
      rule.id = jr["id"].get<std::string>();
      if (!ids.insert(rule.id).second) return fail(rp + ".id", "duplicate");
      if (!jr.contains("trigger") || !jr["trigger"].is_string())
        return fail(rp + ".trigger", "required");
      auto trigger = TriggerFromName(jr["trigger"].get<std::string>());
      if (!trigger) return fail(rp + ".trigger", "unknown trigger");
      rule.trigger = *trigger;
      if (!jr.contains("audiences") || !jr["audiences"].is_array() || jr["audiences"].empty())
        return fail(rp + ".audiences", "required, non-empty");
      for (const auto& ja : jr["audiences"]) {
        auto audience = ja.is_string() ? AudienceFromName(ja.get<std::string>()) : std::nullopt;
        if (!audience) return fail(rp + ".audiences", "unknown audience");
        rule.audiences.push_back(*audience);
      }
      if (!jr.contains("type") || !jr["type"].is_string() ||
          jr["type"].get<std::string>().empty())
        return fail(rp + ".type", "required");
      rule.type = jr["type"].get<std::string>();
      if (!jr.contains("title") || !jr["title"].is_string() ||
          jr["title"].get<std::string>().empty())
        return fail(rp + ".title", "required");
      rule.title = jr["title"].get<std::string>();
      if (jr.contains("program")) {
        if (!jr["program"].is_string()) return fail(rp + ".program", "must be a string");
        rule.program = jr["program"].get<std::string>();
      }
      if (jr.contains("urgent")) {
        if (!jr["urgent"].is_boolean()) return fail(rp + ".urgent", "must be a boolean");
        rule.priority = jr["urgent"].get<bool>() ? Priority::kUrgent : Priority::kNormal;
      }
      if (jr.contains("enabled")) {
        if (!jr["enabled"].is_boolean()) return fail(rp + ".enabled", "must be a boolean");
        rule.enabled = jr["enabled"].get<bool>();
      }
      tenant.rules.push_back(std::move(rule));
    }
    return tenant;
  };
  RuleBook book;
  if (!json.contains("defaults")) return fail("$.defaults", "missing");
  auto defaults = parse_tenant(json["defaults"], "$.defaults");
  if (!defaults.ok()) return defaults.status();
  book.defaults = *std::move(defaults);
  if (json.contains("tenants")) {
    if (!json["tenants"].is_object()) return fail("$.tenants", "not an object");
    for (const auto& [tenant_id, jt] : json["tenants"].items()) {
      auto tenant = parse_tenant(jt, "$.tenants." + tenant_id);
      if (!tenant.ok()) return tenant.status();
      book.by_tenant[tenant_id] = *std::move(tenant);
    }
  }
  return book;
}

std::vector<PlannedNotification> Evaluate(const Fact& fact, const RuleBook& book,
                                          const std::string& actor_id) {
  const TenantRules& tenant = book.For(fact.tenant_id);
  std::vector<PlannedNotification> out;
  for (const Rule& rule : tenant.rules) {
    if (!rule.enabled || rule.trigger != fact.trigger) continue;
    if (!rule.program.empty() && rule.program != fact.program) continue;
    std::set<std::string> seen;
    for (Audience audience : rule.audiences) {
      for (const std::string& recipient : Resolve(audience, fact, tenant)) {
        if (recipient.empty() || recipient == actor_id) continue;
        if (!seen.insert(recipient).second) continue;
        PlannedNotification n;
        n.notification_id = NotificationId(fact.source_id, rule.id, recipient);
        n.rule_id = rule.id;
        n.type = rule.type;
        n.priority = (fact.urgent || rule.priority == Priority::kUrgent) ? Priority::kUrgent
                                                                         : Priority::kNormal;
        n.recipient_id = recipient;
        n.tenant_id = fact.tenant_id;
        n.case_id = fact.case_id;
        n.subject_id = fact.subject_id;
        n.title = rule.title;
        n.link = Link(fact);
        n.detail = fact.detail;
        n.source_id = fact.source_id;
        n.occurred_at = fact.occurred_at;
        out.push_back(std::move(n));
      }
    }
  }
  return out;
}

std::set<std::string> NotificationTypes(const TenantRules& tenant) {
  std::set<std::string> types;
  for (const Rule& rule : tenant.rules) types.insert(rule.type);
  return types;
}

std::string DerivedId(const std::vector<std::string>& parts) {
  // Length-prefixed parts, so ("ab","c") and ("a","bc") differ.
  std::string input = "clinical.notification.v1";
  for (const std::string& part : parts) absl::StrAppend(&input, "|", part.size(), ":", part);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x80);  // version 8
  digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80);  // RFC variant
  std::string out;
  char hex[3];
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    std::snprintf(hex, sizeof hex, "%02x", digest[i]);
    out.append(hex);
  }
  return out;
}

std::string NotificationId(const std::string& source_id, const std::string& rule_id,
                           const std::string& recipient_id) {
  return DerivedId({source_id, rule_id, recipient_id});
}

}  // namespace clinical::notification
