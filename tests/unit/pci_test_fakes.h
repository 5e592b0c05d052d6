// Fakes for PCI and virtio-pci unit tests: MSI vectors that record the
// messages they are given and count triggers, and an ioeventfd registrar
// that keeps the live registrations in a set.
#pragma once

#include <sys/eventfd.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "vmm/io_event_registrar.h"
#include "vmm/msi_vector.h"
#include "vmm/unique_fd.h"

namespace skiff {

// What one fake vector saw; shared with the test after the vector moves
// into the device.
struct FakeMsiState {
  struct Message {
    uint64_t address;
    uint32_t data;
    std::optional<uint32_t> devid;
    bool operator==(const Message&) const = default;
  };
  std::mutex mutex;
  std::vector<Message> messages;  // every SetMessage, in order
  int triggers = 0;
  bool fail_set_message = false;

  int trigger_count() {
    std::lock_guard lock(mutex);
    return triggers;
  }
  std::vector<Message> message_log() {
    std::lock_guard lock(mutex);
    return messages;
  }
};

class FakeMsiVector : public MsiVector {
 public:
  explicit FakeMsiVector(std::shared_ptr<FakeMsiState> state)
      : state_(std::move(state)), irqfd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  absl::Status SetMessage(uint64_t address, uint32_t data, std::optional<uint32_t> devid) override {
    std::lock_guard lock(state_->mutex);
    if (state_->fail_set_message) return absl::InternalError("fake: SetMessage refused");
    state_->messages.push_back({address, data, devid});
    return absl::OkStatus();
  }
  void Trigger() override {
    std::lock_guard lock(state_->mutex);
    ++state_->triggers;
  }
  int irqfd() const override { return irqfd_.get(); }

 private:
  std::shared_ptr<FakeMsiState> state_;
  UniqueFd irqfd_;
};

class FakeMsiAllocator : public MsiAllocator {
 public:
  absl::StatusOr<std::unique_ptr<MsiVector>> Allocate() override {
    if (limit >= 0 && static_cast<int>(states.size()) >= limit) {
      return absl::ResourceExhaustedError("fake: out of GSIs");
    }
    states.push_back(std::make_shared<FakeMsiState>());
    return std::unique_ptr<MsiVector>(std::make_unique<FakeMsiVector>(states.back()));
  }
  std::vector<std::shared_ptr<FakeMsiState>> states;  // by allocation order
  int limit = -1;                                     // -1: unlimited
};

class FakeIoEventRegistrar : public IoEventRegistrar {
 public:
  using Key = std::tuple<uint64_t, uint32_t, int>;  // gpa, length, eventfd
  absl::Status AddMmio(int eventfd, uint64_t gpa, uint32_t length,
                       std::optional<uint64_t> datamatch) override {
    std::lock_guard lock(mutex_);
    ++adds_;
    if (datamatch) return absl::InvalidArgumentError("fake: unexpected datamatch");
    if (fail_adds_) return absl::AlreadyExistsError("fake: ioeventfd refused");
    if (!live_.insert({gpa, length, eventfd}).second) {
      return absl::AlreadyExistsError("fake: duplicate ioeventfd");
    }
    return absl::OkStatus();
  }
  absl::Status RemoveMmio(int eventfd, uint64_t gpa, uint32_t length,
                          std::optional<uint64_t> datamatch) override {
    std::lock_guard lock(mutex_);
    if (datamatch || live_.erase({gpa, length, eventfd}) == 0) {
      return absl::NotFoundError("fake: no such ioeventfd");
    }
    return absl::OkStatus();
  }
  std::set<Key> live() const {
    std::lock_guard lock(mutex_);
    return live_;
  }
  int adds() const {
    std::lock_guard lock(mutex_);
    return adds_;
  }
  void set_fail_adds(bool fail) {
    std::lock_guard lock(mutex_);
    fail_adds_ = fail;
  }

 private:
  mutable std::mutex mutex_;
  std::set<Key> live_;
  int adds_ = 0;
  bool fail_adds_ = false;
};

}  // namespace skiff
