#include "test_events.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "google/protobuf/wrappers.pb.h"

namespace clinical::eventstore::testing {

common::v1::EventEnvelope MakeEvent(const std::string& text, const std::string& tenant) {
  common::v1::EventEnvelope event;
  google::protobuf::StringValue payload;
  payload.set_value(text);
  event.mutable_payload()->PackFrom(payload);
  event.set_event_type("google.protobuf.StringValue");
  event.set_tenant_id(tenant);
  event.set_schema_version(1);
  event.mutable_actor()->set_user_id("user-1");
  event.mutable_actor()->set_role(common::v1::ROLE_CASE_MANAGER);
  *event.mutable_occurred_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1'767'225'600);
  return event;
}

AppendRequest MakeRequest(const std::string& aggregate_id, const std::string& command_id,
                          int count, ExpectedVersion expected) {
  AppendRequest request;
  request.aggregate_id = aggregate_id;
  request.command_id = command_id;
  request.expected_version = expected;
  for (int i = 0; i < count; ++i) {
    request.events.push_back(MakeEvent(absl::StrCat(command_id, "#", i)));
  }
  return request;
}

std::string PayloadText(const common::v1::EventEnvelope& event) {
  google::protobuf::StringValue payload;
  if (!event.payload().UnpackTo(&payload)) return "";
  return payload.value();
}

}  // namespace clinical::eventstore::testing
