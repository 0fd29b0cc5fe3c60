#include "clinical/testing/wait.h"

#include "absl/time/clock.h"

namespace clinical::testing {

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout,
               absl::Duration poll_interval) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(poll_interval);
  }
}

}  // namespace clinical::testing
