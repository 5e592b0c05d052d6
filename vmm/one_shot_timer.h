// A timer on the I/O thread's event loop that fires once per Arm(): a
// timerfd, so whatever it does later runs on the loop thread and nothing
// sleeps. The arm64 power key releases its GPIO line with one.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vmm/event_loop.h"
#include "vmm/unique_fd.h"

namespace skiff {

class OneShotTimer {
 public:
  // Registers the timer on `loop`, which must outlive it; `fire` runs on
  // the loop thread. `what` names it in errors.
  static absl::StatusOr<std::unique_ptr<OneShotTimer>> Create(EventLoop& loop,
                                                              std::function<void()> fire,
                                                              std::string what);
  OneShotTimer(EventLoop& loop, UniqueFd timer, std::function<void()> fire, std::string what)
      : loop_(loop), timer_(std::move(timer)), fire_(std::move(fire)), what_(std::move(what)) {}
  OneShotTimer(const OneShotTimer&) = delete;
  OneShotTimer& operator=(const OneShotTimer&) = delete;
  ~OneShotTimer();

  // Fires `after` from now (at least 1 ns); arming again before it fired
  // moves the deadline, so it still fires once. From any thread.
  absl::Status Arm(absl::Duration after);

 private:
  void OnExpired();

  EventLoop& loop_;
  UniqueFd timer_;
  std::function<void()> fire_;
  std::string what_;
};

}  // namespace skiff
