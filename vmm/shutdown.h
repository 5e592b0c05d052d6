// The one place where "the VM should stop" is decided. Any thread may
// request it (guest poweroff, fatal error, signal); the first request's
// reason and exit code win. The main thread waits here, then joins everyone.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "vmm/unique_fd.h"

namespace skiff {

struct ExitStatus {
  int code = 0;
  std::string reason;  // "guest powered off", "guest kernel panic", ...
};

class Shutdown {
 public:
  // The eventfd lets epoll-based threads wake on a request.
  static absl::StatusOr<std::unique_ptr<Shutdown>> Create();
  explicit Shutdown(UniqueFd eventfd) : eventfd_(std::move(eventfd)) {}

  // Returns true if this call was the first request.
  bool Request(int code, std::string reason);
  bool requested() const;
  ExitStatus status() const;
  void Wait() const;
  int eventfd() const { return eventfd_.get(); }

 private:
  UniqueFd eventfd_;
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  bool requested_ = false;
  ExitStatus status_;
};

}  // namespace skiff
