#include "chain.h"

#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "clinical/audit/v1/access.pb.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/notification/v1/events.pb.h"
#include "clinical/scheduling/v1/events.pb.h"
#include "clinical/common/v1/envelope.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace clinical::audit {
namespace {

using audit::v1::ChainedRecord;

void Put(std::string& out, std::string_view field) { AppendLengthPrefixed(out, field); }

void PutTime(std::string& out, const google::protobuf::Timestamp& time) {
  Put(out, absl::StrCat(time.seconds(), ".", time.nanos()));
}

// The string field `name` at the top level of the event's payload, if the payload's type
// is linked into this binary and has one (e.g. scheduling's AppointmentBooked.case_id).
std::string PayloadString(const common::v1::EventEnvelope& event, const std::string& name) {
  // Naming one message of each events file links its descriptors into the binary, so the
  // generated pool below knows every payload type of the platform's topics.
  static const bool linked = case_::v1::CaseOpened::descriptor() != nullptr &&
                             scheduling::v1::AppointmentBooked::descriptor() != nullptr &&
                             notification::v1::TimerScheduled::descriptor() != nullptr;
  if (!linked) return "";
  const std::string& type_url = event.payload().type_url();
  const size_t slash = type_url.rfind('/');
  const std::string type = slash == std::string::npos ? type_url : type_url.substr(slash + 1);
  const google::protobuf::Descriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(type);
  if (descriptor == nullptr) return "";
  const google::protobuf::FieldDescriptor* field = descriptor->FindFieldByName(name);
  if (field == nullptr || field->is_repeated() ||
      field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) {
    return "";
  }
  const google::protobuf::Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
  if (prototype == nullptr) return "";
  std::unique_ptr<google::protobuf::Message> payload(prototype->New());
  if (!payload->ParseFromString(event.payload().value())) return "";
  return payload->GetReflection()->GetString(*payload, field);
}

void FillFromEvent(const common::v1::EventEnvelope& event, ChainedRecord& record) {
  record.set_kind(audit::v1::RECORD_KIND_EVENT);
  record.set_action(event.event_type());
  record.set_actor_id(event.actor().user_id());
  record.set_actor_role(RoleName(event.actor().role()));
  record.set_on_behalf_of(event.actor().on_behalf_of());
  record.set_tenant_id(event.tenant_id());
  record.set_resource_type(event.aggregate_type());
  record.set_resource_id(event.aggregate_id());
  record.set_source_record_id(event.event_id());
  *record.mutable_occurred_at() = event.occurred_at();
  *record.mutable_recorded_at() = event.recorded_at();
  if (event.aggregate_type() == "case") {
    record.add_case_ids(event.aggregate_id());
  } else if (std::string case_id = PayloadString(event, "case_id"); !case_id.empty()) {
    record.add_case_ids(case_id);
  }
}

void FillFromAccess(const audit::v1::AccessRecord& access, ChainedRecord& record) {
  record.set_kind(audit::v1::RECORD_KIND_ACCESS);
  record.set_action(access.method());
  record.set_actor_id(access.actor_id());
  record.set_actor_role(access.actor_role());
  record.set_tenant_id(access.tenant_id());
  for (const std::string& case_id : access.case_ids()) record.add_case_ids(case_id);
  record.set_resource_type(access.resource_type());
  // Several resources may be read at once; the first names the entity, all are hashed
  // through the value digest.
  if (!access.resource_ids().empty()) record.set_resource_id(access.resource_ids(0));
  record.set_source_record_id(access.record_id());
  *record.mutable_occurred_at() = access.occurred_at();
  *record.mutable_recorded_at() = access.occurred_at();
  record.set_outcome(audit::v1::AccessOutcome_Name(access.outcome()));
  record.set_purpose_of_use(access.purpose_of_use());
  record.set_source_address(access.source_address());
  record.set_policy_version(access.policy_version());
  record.set_relationship(access.relationship());
  record.set_emergency_grant_id(access.emergency_grant_id());
  record.set_masked(access.masked());
}

// Whether the record carries how its read was authorized (access records made since
// Trust II): those fields are then part of the canonical encoding.
bool HasAuthorization(const ChainedRecord& record) {
  return !record.policy_version().empty() || !record.relationship().empty() ||
         !record.emergency_grant_id().empty() || record.masked();
}

}  // namespace

std::string ChainId(std::string_view topic, int32_t partition) {
  return absl::StrCat(std::string(topic), "/", partition);
}

absl::Status ParseChainId(std::string_view chain_id, std::string* topic, int32_t* partition) {
  const size_t slash = chain_id.rfind('/');
  int32_t parsed = -1;
  if (slash == std::string_view::npos || slash == 0 ||
      !absl::SimpleAtoi(absl::string_view(chain_id.data() + slash + 1, chain_id.size() - slash - 1),
                        &parsed) ||
      parsed < 0) {
    return absl::InvalidArgumentError("chain id must be <topic>/<partition>");
  }
  *topic = std::string(chain_id.substr(0, slash));
  *partition = parsed;
  return absl::OkStatus();
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xf]);
  }
  return out;
}

void AppendLengthPrefixed(std::string& out, std::string_view field) {
  const uint64_t size = field.size();
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((size >> shift) & 0xff));
  }
  out.append(field.data(), field.size());
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string RoleName(int role) {
  const std::string name = common::v1::Role_Name(static_cast<common::v1::Role>(role));
  if (name.empty() || role == common::v1::ROLE_UNSPECIFIED) return "";
  return absl::AsciiStrToLower(name.substr(5));  // drop "ROLE_"
}

absl::Status CheckSourceTopics(const std::vector<std::string>& event_topics, const std::string& access_topic,
                               const std::string& policy_topic) {
  for (const std::string& topic : event_topics) {
    if (!policy_topic.empty() && topic == policy_topic) {
      return absl::InvalidArgumentError(
          "config key 'audit-source-topics' names the access policy topic, which holds no events");
    }
    if (!access_topic.empty() && topic == access_topic) {
      return absl::InvalidArgumentError("config key 'audit-source-topics' names the access-record topic");
    }
  }
  if (!policy_topic.empty() && access_topic == policy_topic) {
    return absl::InvalidArgumentError(
        "the access-record topic to chain is the access policy topic, which holds no access records");
  }
  return absl::OkStatus();
}

ChainedRecord BuildRecord(const SourceRecord& source, SourceFormat format, int64_t sequence,
                          std::string_view previous_hash) {
  ChainedRecord record;
  record.set_chain_id(ChainId(source.topic, source.partition));
  record.set_sequence(sequence);
  record.set_source_topic(source.topic);
  record.set_source_partition(source.partition);
  record.set_source_offset(source.offset);
  record.set_value_sha256(Sha256Hex(source.value));
  record.set_kind(audit::v1::RECORD_KIND_UNDECODABLE);
  if (format == SourceFormat::kEvents) {
    common::v1::EventEnvelope event;
    if (event.ParseFromString(source.value) && !event.event_type().empty()) {
      FillFromEvent(event, record);
    }
  } else {
    audit::v1::AccessRecord access;
    if (access.ParseFromString(source.value) && !access.record_id().empty()) {
      FillFromAccess(access, record);
    }
  }
  record.set_previous_hash(std::string(previous_hash));
  record.set_hash(ComputeHash(record));
  return record;
}

std::string CanonicalEncoding(const ChainedRecord& record) {
  std::string out;
  // Layout 2 appends the authorization fields. Records without them keep layout 1, so
  // every record chained before those fields existed still verifies; the tag says which
  // layout was hashed, so the two can never be confused.
  const bool authorization = HasAuthorization(record);
  Put(out, authorization ? "clinical.audit.v1.ChainedRecord/2" : "clinical.audit.v1.ChainedRecord/1");
  Put(out, record.chain_id());
  Put(out, absl::StrCat(record.sequence()));
  Put(out, record.source_topic());
  Put(out, absl::StrCat(record.source_partition()));
  Put(out, absl::StrCat(record.source_offset()));
  Put(out, record.value_sha256());
  Put(out, absl::StrCat(static_cast<int>(record.kind())));
  Put(out, record.action());
  Put(out, record.actor_id());
  Put(out, record.actor_role());
  Put(out, record.on_behalf_of());
  Put(out, record.tenant_id());
  Put(out, absl::StrCat(record.case_ids_size()));
  for (const std::string& case_id : record.case_ids()) Put(out, case_id);
  Put(out, record.resource_type());
  Put(out, record.resource_id());
  Put(out, record.source_record_id());
  PutTime(out, record.occurred_at());
  PutTime(out, record.recorded_at());
  Put(out, record.outcome());
  Put(out, record.purpose_of_use());
  Put(out, record.source_address());
  if (authorization) {
    Put(out, record.policy_version());
    Put(out, record.relationship());
    Put(out, record.emergency_grant_id());
    Put(out, record.masked() ? "1" : "0");
  }
  Put(out, record.previous_hash());
  return out;
}

std::string ComputeHash(const ChainedRecord& record) {
  return Sha256Hex(CanonicalEncoding(record));
}

}  // namespace clinical::audit
