#include "clinical/testing/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "clinical/testing/wait.h"

extern char** environ;

namespace clinical::testing {

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra_env) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  // Everything the child needs is prepared before fork: only async-signal-safe calls after.
  std::vector<std::string> env_strings;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view kv = *entry;
    auto name = kv.substr(0, kv.find('='));
    if (!extra_env.contains(std::string(name))) env_strings.emplace_back(kv);
  }
  for (const auto& [name, value] : extra_env) env_strings.push_back(absl::StrCat(name, "=", value));
  std::vector<char*> env_ptrs, arg_ptrs;
  for (auto& s : env_strings) env_ptrs.push_back(s.data());
  env_ptrs.push_back(nullptr);
  std::vector<std::string> args = argv;
  for (auto& s : args) arg_ptrs.push_back(s.data());
  arg_ptrs.push_back(nullptr);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    // The test binary may have signals blocked (ShutdownSignal); the child starts clean.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    execve(arg_ptrs[0], arg_ptrs.data(), env_ptrs.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  return std::unique_ptr<Subprocess>(new Subprocess(pid, pipe_fds[0]));
}

Subprocess::Subprocess(pid_t pid, int output_fd)
    : pid_(pid), output_fd_(output_fd), reader_([this] { ReadOutput(); }) {}

Subprocess::~Subprocess() {
  if (!exit_status_.has_value()) {
    kill(pid_, SIGKILL);
    Wait(absl::Seconds(10));
  }
  reader_.join();
  close(output_fd_);
}

void Subprocess::ReadOutput() {
  std::string pending;
  char buffer[4096];
  while (true) {
    const ssize_t n = read(output_fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<size_t>(n));
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back(pending.substr(0, newline));
      pending.erase(0, newline + 1);
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (!pending.empty()) lines_.push_back(pending);
  output_closed_ = true;
}

std::optional<std::string> Subprocess::WaitForLine(
    const std::function<bool(const std::string&)>& match, absl::Duration timeout) {
  std::optional<std::string> found;
  size_t checked = 0;
  WaitUntil(
      [&] {
        std::lock_guard<std::mutex> lock(mutex_);
        for (; checked < lines_.size(); ++checked) {
          if (match(lines_[checked])) {
            found = lines_[checked];
            return true;
          }
        }
        return output_closed_;
      },
      timeout);
  return found;
}

std::vector<std::string> Subprocess::Lines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lines_;
}

void Subprocess::Signal(int signal_number) {
  if (!exit_status_.has_value()) kill(pid_, signal_number);
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  if (exit_status_.has_value()) return exit_status_;
  WaitUntil(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) exit_status_ = status;
        return exit_status_.has_value();
      },
      timeout);
  return exit_status_;
}

}  // namespace clinical::testing
