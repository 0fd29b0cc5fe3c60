#include "clinical/grpcx/shutdown_signal.h"

#include <pthread.h>

#include <ctime>

namespace clinical::grpcx {

ShutdownSignal::ShutdownSignal() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  watcher_ = std::thread([this] { WatchSignals(); });
}

ShutdownSignal::~ShutdownSignal() {
  stop_watching_ = true;
  watcher_.join();
}

void ShutdownSignal::Request() {
  if (!requested_.HasBeenNotified()) requested_.Notify();
}

void ShutdownSignal::WatchSignals() {
  // A short timeout lets the destructor end the watcher without sending a signal.
  const timespec poll{0, 100'000'000};
  while (!stop_watching_) {
    const int received = sigtimedwait(&signals_, nullptr, &poll);
    if (received > 0) {
      signal_number_ = received;
      Request();
    }
  }
}

}  // namespace clinical::grpcx
