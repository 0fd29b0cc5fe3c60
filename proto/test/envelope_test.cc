// The event envelope survives every encoding the platform uses: protobuf binary (Kafka
// record values), canonical JSON (exports, debugging), and packing/unpacking the payload.
#include "clinical/common/v1/envelope.pb.h"

#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace clinical {
namespace {

using common::v1::EventEnvelope;
using google::protobuf::util::MessageDifferencer;
using google::protobuf::util::TimeUtil;

EventEnvelope SampleEnvelope() {
  EventEnvelope envelope;
  envelope.set_event_id("6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b");
  envelope.set_aggregate_type("case");
  envelope.set_aggregate_id("0b7c1e9a-2f3d-4e5a-9b6c-7d8e9f0a1b2c");
  envelope.set_aggregate_version(42);
  envelope.set_event_type("clinical.common.v1.LogPosition");
  *envelope.mutable_occurred_at() = TimeUtil::SecondsToTimestamp(1'767'225'600);
  *envelope.mutable_recorded_at() = TimeUtil::NanosecondsToTimestamp(1'767'225'601'000'000'123);
  envelope.mutable_actor()->set_user_id("user-17");
  envelope.mutable_actor()->set_role(common::v1::ROLE_CASE_MANAGER);
  envelope.mutable_actor()->set_on_behalf_of("user-3");
  envelope.set_tenant_id("tenant-a");
  envelope.set_command_id("cmd-1");
  envelope.set_correlation_id("corr-1");
  envelope.set_causation_id("cmd-1");
  envelope.mutable_trace()->set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  envelope.set_schema_version(1);
  // Any message can be a payload; LogPosition stands in until the domain events exist.
  common::v1::LogPosition payload;
  payload.set_topic("clinical.case.events.v1");
  payload.set_partition(3);
  payload.set_offset(99);
  envelope.mutable_payload()->PackFrom(payload);
  return envelope;
}

TEST(EnvelopeTest, BinaryRoundTripPreservesEveryField) {
  const EventEnvelope original = SampleEnvelope();
  const std::string bytes = original.SerializeAsString();
  EventEnvelope decoded;
  ASSERT_TRUE(decoded.ParseFromString(bytes));
  EXPECT_TRUE(MessageDifferencer::Equals(original, decoded)) << decoded.DebugString();
}

TEST(EnvelopeTest, JsonRoundTripPreservesEveryField) {
  const EventEnvelope original = SampleEnvelope();
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(original, &json).ok());
  EXPECT_NE(json.find("\"aggregateVersion\":\"42\""), std::string::npos) << json;
  EventEnvelope decoded;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &decoded).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(original, decoded)) << json;
}

TEST(EnvelopeTest, PayloadUnpacksOnlyAsItsOwnType) {
  const EventEnvelope envelope = SampleEnvelope();
  common::v1::LogPosition position;
  ASSERT_TRUE(envelope.payload().UnpackTo(&position));
  EXPECT_EQ(position.offset(), 99);
  EXPECT_EQ(envelope.payload().type_url(), "type.googleapis.com/" + envelope.event_type());
  common::v1::Money wrong_type;
  EXPECT_FALSE(envelope.payload().UnpackTo(&wrong_type));
}

TEST(EnvelopeTest, UnknownFieldsFromNewerWritersSurviveARoundTrip) {
  // A reader built before a field was added must pass it through unchanged (schema
  // evolution: fields are only added). Field 99 stands in for that future field.
  std::string bytes = SampleEnvelope().SerializeAsString();
  bytes += std::string("\x98\x06\x07", 3);  // field 99, varint 7
  EventEnvelope decoded;
  ASSERT_TRUE(decoded.ParseFromString(bytes));
  EXPECT_EQ(decoded.SerializeAsString(), bytes);
}

}  // namespace
}  // namespace clinical
