#pragma once

// FHIR R4 (4.0.1) AuditEvent resources for audit log records, as pure functions.

#include <string>
#include <string_view>
#include <vector>

#include "clinical/audit/v1/audit_service.pb.h"
#include "nlohmann/json.hpp"

namespace clinical::audit {

// The AuditEvent action code for an event type or an access record: "R" for reads
// (access records), "C" for creations (…Opened, …Created, …Booked, …Added, …Recorded),
// "D" for …EnteredInError / …Removed / …Deleted, "E" for executions (…Due, …Fired,
// …Delivered, …Sent), "U" for every other change.
std::string FhirAction(const audit::v1::ChainedRecord& record);

// "2026-11-27T12:00:00.123Z" (FHIR instant, UTC, millisecond precision).
std::string FhirInstant(const google::protobuf::Timestamp& time);

// The AuditEvent for one record. Its id is the record's hash (64 hex chars, a valid FHIR
// id, stable across exports); the record's place in the log (chain, sequence, hash) rides
// along as an entity so an auditor can verify the exported event against the chain.
nlohmann::json ToAuditEvent(const audit::v1::ChainedRecord& record);

// A Bundle of type "collection" holding the events (no fullUrl: they are not on a server).
nlohmann::json ToBundle(const std::vector<nlohmann::json>& events, std::string_view bundle_id,
                        const google::protobuf::Timestamp& timestamp);

}  // namespace clinical::audit
