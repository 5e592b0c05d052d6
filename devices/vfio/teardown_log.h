// Times the steps of a VFIO teardown and says how long each took.
//
// Teardown runs ioctls whose cost lives in the kernel (a device reset, an
// IOMMU unmap of all guest RAM) and, in a nested or emulated host, can take
// seconds. Each step is logged at debug level as it ends, and the whole at
// info level in one line, so a slow or stuck exit shows which step it was
// in: the last "done" line names the step before it.
#pragma once

#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "vmm/log.h"

namespace skiff::vfio {

class TeardownLog {
 public:
  explicit TeardownLog(std::string what) : what_(std::move(what)), start_(MonotonicSeconds()) {}
  ~TeardownLog() {
    LOG_INFO("vfio", "%s released in %.0f ms (%s)", what_, 1e3 * (MonotonicSeconds() - start_),
             steps_);
  }
  TeardownLog(const TeardownLog&) = delete;
  TeardownLog& operator=(const TeardownLog&) = delete;

  // Runs `step` now and records how long it took under `name`.
  template <typename Fn>
  void Step(const char* name, Fn&& step) {
    LOG_DEBUG("vfio", "%s: teardown: %s...", what_, name);
    const double begin = MonotonicSeconds();
    std::forward<Fn>(step)();
    const double ms = 1e3 * (MonotonicSeconds() - begin);
    LOG_DEBUG("vfio", "%s: teardown: %s done in %.1f ms", what_, name, ms);
    if (!steps_.empty()) steps_ += ", ";
    steps_ += absl::StrFormat("%s %.0f ms", name, ms);
  }

 private:
  const std::string what_;
  const double start_;
  std::string steps_;
};

}  // namespace skiff::vfio
