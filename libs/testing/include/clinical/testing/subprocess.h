#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace clinical::testing {

// Subprocess runs a program (a service under test) as a real child process, collects the
// lines it writes to stderr and stdout, and lets a test signal and reap it. The destructor
// kills a child that is still running, so a failing test leaves no process behind.
class Subprocess {
 public:
  // Starts `argv[0]` with `argv` and the parent's environment plus `extra_env`.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra_env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }

  // Waits until an output line satisfies `match` and returns it, or nullopt after timeout
  // (or when the child exits first).
  std::optional<std::string> WaitForLine(const std::function<bool(const std::string&)>& match,
                                         absl::Duration timeout);
  std::vector<std::string> Lines() const;

  void Signal(int signal_number);
  // Waits for the child to exit; returns its wait status (use WIFEXITED etc.), or nullopt
  // if it is still running after `timeout`.
  std::optional<int> Wait(absl::Duration timeout);

 private:
  Subprocess(pid_t pid, int output_fd);
  void ReadOutput();

  const pid_t pid_;
  const int output_fd_;
  std::optional<int> exit_status_;
  mutable std::mutex mutex_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mutex_);
  bool output_closed_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread reader_;
};

}  // namespace clinical::testing
