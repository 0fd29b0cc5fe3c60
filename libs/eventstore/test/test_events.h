#pragma once

#include <string>

#include "clinical/eventstore/types.h"

namespace clinical::eventstore::testing {

// An event as a domain service would hand it to the store. The payload is a
// google.protobuf.StringValue: the store is domain-agnostic, any message will do.
common::v1::EventEnvelope MakeEvent(const std::string& text, const std::string& tenant = "tenant-a");

// A command appending `count` events to `aggregate_id`.
AppendRequest MakeRequest(const std::string& aggregate_id, const std::string& command_id,
                          int count, ExpectedVersion expected = ExpectedVersion::Any());

// The text inside a MakeEvent payload.
std::string PayloadText(const common::v1::EventEnvelope& event);

}  // namespace clinical::eventstore::testing
