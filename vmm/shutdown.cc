#include "vmm/shutdown.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace skiff {

absl::StatusOr<std::unique_ptr<Shutdown>> Shutdown::Create() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) {
    return absl::InternalError(
        absl::StrFormat("eventfd: %s", std::strerror(errno)));
  }
  return std::make_unique<Shutdown>(std::move(fd));
}

bool Shutdown::Request(int code, std::string reason) {
  {
    std::lock_guard lock(mutex_);
    if (requested_) return false;
    requested_ = true;
    status_ = ExitStatus{code, std::move(reason)};
  }
  cv_.notify_all();
  uint64_t one = 1;
  (void)!::write(eventfd_.get(), &one, sizeof(one));
  return true;
}

bool Shutdown::requested() const {
  std::lock_guard lock(mutex_);
  return requested_;
}

ExitStatus Shutdown::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

void Shutdown::Wait() const {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [this] { return requested_; });
}

}  // namespace skiff
