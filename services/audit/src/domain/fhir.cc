#include "fhir.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace clinical::audit {
namespace {

using audit::v1::ChainedRecord;
using nlohmann::json;

bool EndsWithAny(const std::string& text, std::initializer_list<const char*> suffixes) {
  for (const char* suffix : suffixes) {
    if (absl::EndsWith(text, suffix)) return true;
  }
  return false;
}

json Coding(std::string_view system, std::string_view code, std::string_view display = "") {
  json coding = {{"system", std::string(system)}, {"code", std::string(code)}};
  if (!display.empty()) coding["display"] = std::string(display);
  return coding;
}

// "ipv4:10.0.3.7:52144" -> "10.0.3.7"; "ipv6:[::1]:5000" -> "::1"; else "".
std::string NetworkAddress(const std::string& peer) {
  if (absl::StartsWith(peer, "ipv4:")) {
    const std::string rest = peer.substr(5);
    return rest.substr(0, rest.rfind(':'));
  }
  if (absl::StartsWith(peer, "ipv6:[")) {
    const size_t close = peer.find(']');
    if (close != std::string::npos) return peer.substr(6, close - 6);
  }
  return "";
}

// FHIR outcome: 0 success, 4 minor failure (refused), 8 serious failure.
std::string Outcome(const ChainedRecord& record) {
  if (record.outcome() == "ACCESS_OUTCOME_DENIED") return "4";
  if (record.outcome() == "ACCESS_OUTCOME_FAILED") return "8";
  return "0";
}

}  // namespace

std::string FhirAction(const ChainedRecord& record) {
  if (record.kind() == audit::v1::RECORD_KIND_ACCESS) return "R";
  const std::string& type = record.action();
  if (EndsWithAny(type, {"EnteredInError", "Removed", "Deleted"})) return "D";
  if (EndsWithAny(type, {"Opened", "Created", "Booked", "Added", "Recorded"})) return "C";
  if (EndsWithAny(type, {"Due", "Fired", "Delivered", "Sent"})) return "E";
  return "U";
}

std::string FhirInstant(const google::protobuf::Timestamp& time) {
  const absl::Time t = absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

json ToAuditEvent(const ChainedRecord& record) {
  const bool access = record.kind() == audit::v1::RECORD_KIND_ACCESS;
  json event;
  event["resourceType"] = "AuditEvent";
  event["id"] = record.hash();
  if (access) {
    event["type"] = Coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest",
                           "RESTful Operation");
    event["subtype"] = json::array({Coding("http://hl7.org/fhir/restful-interaction", "read", "read"),
                                    Coding("urn:clinical:audit:method", record.action())});
  } else {
    event["type"] = Coding("http://dicom.nema.org/resources/ontology/DCM", "110110",
                           "Patient Record");
    event["subtype"] = json::array({Coding("urn:clinical:audit:event-type",
                                           record.action().empty() ? "undecodable" : record.action())});
  }
  event["action"] = FhirAction(record);
  event["recorded"] = FhirInstant(access ? record.occurred_at() : record.recorded_at());
  if (!access && record.has_occurred_at()) {
    const std::string occurred = FhirInstant(record.occurred_at());
    event["period"] = {{"start", occurred}, {"end", occurred}};
  }
  event["outcome"] = Outcome(record);
  if (!record.purpose_of_use().empty()) {
    event["purposeOfEvent"] = json::array(
        {{{"coding", json::array({Coding("http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                         record.purpose_of_use())})}}});
  }

  json agent;
  agent["type"] = {{"coding", json::array({Coding(
                                  "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                                  record.actor_role() == "service" ? "dataprocessor" : "humanuser")})}};
  if (!record.actor_role().empty()) {
    agent["role"] = json::array(
        {{{"coding", json::array({Coding("urn:clinical:role", record.actor_role())})}}});
  }
  agent["who"] = {{"identifier", {{"system", "urn:clinical:user"},
                                  {"value", record.actor_id().empty() ? "unknown" : record.actor_id()}}}};
  agent["requestor"] = true;
  if (const std::string address = NetworkAddress(record.source_address()); !address.empty()) {
    agent["network"] = {{"address", address}, {"type", "2"}};  // 2 = IP address
  }
  json agents = json::array({agent});
  if (!record.on_behalf_of().empty()) {
    agents.push_back({{"who", {{"identifier", {{"system", "urn:clinical:user"},
                                               {"value", record.on_behalf_of()}}}}},
                      {"requestor", false}});
  }
  event["agent"] = agents;

  event["source"] = {
      {"site", record.tenant_id().empty() ? "unknown" : record.tenant_id()},
      {"observer", {{"identifier", {{"system", "urn:clinical:topic"}, {"value", record.source_topic()}}},
                    {"display", "clinical audit service"}}},
      {"type", json::array({Coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4",
                                   "Application Server")})}};

  json entities = json::array();
  for (const std::string& case_id : record.case_ids()) {
    entities.push_back(
        {{"what", {{"reference", absl::StrCat("EpisodeOfCare/", case_id)}}},
         {"type", Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2",
                         "System Object")}});
  }
  if (!record.resource_id().empty() &&
      !(record.case_ids_size() == 1 && record.case_ids(0) == record.resource_id())) {
    entities.push_back(
        {{"what", {{"identifier", {{"system", absl::StrCat("urn:clinical:", record.resource_type().empty()
                                                                            ? "resource"
                                                                            : record.resource_type())},
                                   {"value", record.resource_id()}}}}},
         {"type", Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2",
                         "System Object")}});
  }
  entities.push_back(
      {{"what", {{"identifier", {{"system", absl::StrCat("urn:clinical:audit:chain:", record.chain_id())},
                                 {"value", absl::StrCat(record.sequence())}}}}},
       {"type", Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "4", "Other")},
       {"detail", json::array({{{"type", "hash"}, {"valueString", record.hash()}},
                               {{"type", "previousHash"}, {"valueString", record.previous_hash()}}})}});
  event["entity"] = entities;
  return event;
}

json ToBundle(const std::vector<json>& events, std::string_view bundle_id,
              const google::protobuf::Timestamp& timestamp) {
  json entries = json::array();
  for (const json& event : events) entries.push_back({{"resource", event}});
  return {{"resourceType", "Bundle"},
          {"id", std::string(bundle_id)},
          {"type", "collection"},
          {"timestamp", FhirInstant(timestamp)},
          {"entry", entries}};
}

}  // namespace clinical::audit
