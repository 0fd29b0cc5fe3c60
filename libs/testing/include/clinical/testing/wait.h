#pragma once

#include <functional>

#include "absl/time/time.h"

namespace clinical::testing {

// Polls `condition` until it holds or `timeout` passes; returns whether it held. This is
// how tests wait for asynchronous effects (a consumer seeing a record, a process printing a
// line): on a condition with a deadline, never a fixed sleep.
bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout,
               absl::Duration poll_interval = absl::Milliseconds(20));

}  // namespace clinical::testing
