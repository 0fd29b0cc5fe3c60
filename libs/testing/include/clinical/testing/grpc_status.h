#pragma once

#include <string>
#include <vector>

#include "grpcpp/support/status.h"

namespace clinical::testing {

// The field paths of the google.rpc.BadRequest field violations a status carries in its
// details (libs/grpcx status.h puts them there), in order; empty when there are none.
std::vector<std::string> FieldsOf(const grpc::Status& status);

}  // namespace clinical::testing
