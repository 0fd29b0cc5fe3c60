#pragma once

#include <atomic>
#include <csignal>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace clinical::grpcx {

// ShutdownSignal turns SIGTERM and SIGINT into a notification the service can wait on.
//
// Construct it first thing in main(), before any thread exists: it blocks both signals in
// the calling thread, every thread created later inherits the mask, and one watcher thread
// receives them synchronously with sigtimedwait. No async signal handler, no globals.
// Request() triggers the same shutdown from code (tests, fatal errors). Thread-safe.
class ShutdownSignal {
 public:
  ShutdownSignal();
  ~ShutdownSignal();
  ShutdownSignal(const ShutdownSignal&) = delete;
  ShutdownSignal& operator=(const ShutdownSignal&) = delete;

  // Blocks until a signal arrives or Request() is called.
  void Wait() { requested_.WaitForNotification(); }
  bool WaitFor(absl::Duration timeout) {
    return requested_.WaitForNotificationWithTimeout(timeout);
  }
  void Request();
  bool requested() const { return requested_.HasBeenNotified(); }
  // The signal that triggered shutdown, or 0 if it came from Request().
  int signal_number() const { return signal_number_.load(); }

 private:
  void WatchSignals();

  sigset_t signals_;
  absl::Notification requested_;
  std::atomic<bool> stop_watching_{false};
  std::atomic<int> signal_number_{0};
  std::thread watcher_;
};

}  // namespace clinical::grpcx
