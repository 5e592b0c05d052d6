#include "vmm/one_shot_timer.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace skiff {

absl::StatusOr<std::unique_ptr<OneShotTimer>> OneShotTimer::Create(EventLoop& loop,
                                                                   std::function<void()> fire,
                                                                   std::string what) {
  UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer) {
    return absl::InternalError(absl::StrFormat("%s: timerfd: %s", what, std::strerror(errno)));
  }
  const int fd = timer.get();
  auto self =
      std::make_unique<OneShotTimer>(loop, std::move(timer), std::move(fire), std::move(what));
  OneShotTimer* raw = self.get();  // the destructor leaves the loop first
  absl::Status added = loop.Add(fd, EPOLLIN, [raw](uint32_t) { raw->OnExpired(); });
  if (!added.ok()) return added;
  return self;
}

OneShotTimer::~OneShotTimer() { (void)loop_.Remove(timer_.get()); }

absl::Status OneShotTimer::Arm(absl::Duration after) {
  itimerspec spec{};
  spec.it_value = absl::ToTimespec(std::max(after, absl::Nanoseconds(1)));  // 0 would disarm
  if (::timerfd_settime(timer_.get(), 0, &spec, nullptr) != 0) {
    return absl::InternalError(
        absl::StrFormat("%s: timerfd_settime: %s", what_, std::strerror(errno)));
  }
  return absl::OkStatus();
}

void OneShotTimer::OnExpired() {
  uint64_t expirations = 0;
  // Nothing to read: re-armed after it expired and before we got here.
  if (::read(timer_.get(), &expirations, sizeof(expirations)) != sizeof(expirations)) return;
  fire_();
}

}  // namespace skiff
