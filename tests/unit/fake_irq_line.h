// An IrqLine for unit tests: records every SetLevel call and counts pulses,
// so tests can check both the current level and that a device signalled
// only on changes. Thread-safe, for tests that drive a device from several
// threads.
#pragma once

#include <mutex>
#include <vector>

#include "vmm/irq_line.h"

namespace skiff {

class FakeIrqLine : public IrqLine {
 public:
  void SetLevel(bool asserted) override {
    std::lock_guard<std::mutex> lock(mutex_);
    level_ = asserted;
    levels_.push_back(asserted);
  }
  void Pulse() override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++pulses_;
  }

  // The level after the last SetLevel (false before any).
  bool level() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return level_;
  }
  // Every SetLevel argument, in call order.
  std::vector<bool> levels() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return levels_;
  }
  size_t set_level_calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return levels_.size();
  }
  int pulses() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pulses_;
  }
  // Forgets the history (not the level), to check one step of a test alone.
  void ClearHistory() {
    std::lock_guard<std::mutex> lock(mutex_);
    levels_.clear();
    pulses_ = 0;
  }

 private:
  mutable std::mutex mutex_;
  bool level_ = false;
  std::vector<bool> levels_;
  int pulses_ = 0;
};

}  // namespace skiff
