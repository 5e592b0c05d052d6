// A VirtioDevice for the transport fuzz targets: it checks what the
// transport hands it (never activated twice without a reset, only offered
// features, one queue per num_queues(), ready queues of a legal size, config
// accesses within config_size() when the transport promises that) and lets
// the harness play the device side: fail an activation, raise queue and
// config interrupts, report NEEDS_RESET — also through the interrupt of an
// earlier activation, which the transport must ignore.
#pragma once

#include <linux/virtio_config.h>

#include <bit>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "devices/virtio/queue.h"
#include "devices/virtio/virtio_device.h"
#include "tests/fuzz/fuzz_support.h"

namespace skiff::virtio::fuzzing {

class CheckingVirtioDevice : public VirtioDevice {
 public:
  struct Options {
    uint32_t device_id = 2;  // VIRTIO_ID_BLOCK
    uint64_t features = 0;
    uint16_t queues = 2;
    uint16_t max_queue_size = 256;
    uint32_t config_size = 12;
    // The transport guarantees config accesses inside config_size().
    bool strict_config_range = true;

    // A device shape drawn from the fuzz input: VERSION_1 plus fuzzed low
    // feature bits, 1-4 queues of up to 2^max_queue_size_log2 entries, and
    // up to 31 bytes of config space.
    static Options Fuzzed(skiff::fuzz::FuzzInput& in, uint32_t max_queue_size_log2) {
      Options options;
      options.features = (uint64_t{1} << VIRTIO_F_VERSION_1) | in.Take<uint32_t>();
      options.queues = static_cast<uint16_t>(1 + in.Below(4));
      options.max_queue_size = static_cast<uint16_t>(1u << in.Below(max_queue_size_log2));
      options.config_size = static_cast<uint32_t>(in.Below(0x20));
      return options;
    }
  };

  explicit CheckingVirtioDevice(Options options) : options_(options), config_(options.config_size) {
    for (size_t i = 0; i < config_.size(); ++i) config_[i] = static_cast<uint8_t>(i + 1);
  }

  uint32_t device_id() const override { return options_.device_id; }
  uint64_t device_features() const override { return options_.features; }
  uint16_t num_queues() const override { return options_.queues; }
  uint16_t max_queue_size() const override { return options_.max_queue_size; }
  uint32_t config_size() const override { return options_.config_size; }

  void ReadConfig(uint32_t offset, std::span<uint8_t> data) override {
    std::lock_guard lock(mutex_);
    CheckConfigRange(offset, data.size());
    for (size_t i = 0; i < data.size(); ++i) {
      const uint64_t at = uint64_t{offset} + i;
      data[i] = at < config_.size() ? config_[at] : 0;
    }
  }
  void WriteConfig(uint32_t offset, std::span<const uint8_t> data) override {
    std::lock_guard lock(mutex_);
    CheckConfigRange(offset, data.size());
    for (size_t i = 0; i < data.size(); ++i) {
      const uint64_t at = uint64_t{offset} + i;
      if (at < config_.size()) config_[at] = data[i];
    }
  }

  absl::Status Activate(ActivationContext context) override {
    std::lock_guard lock(mutex_);
    FUZZ_CHECK(!active_, "Activate without a Reset since the last activation");
    FUZZ_CHECK((context.features & ~options_.features) == 0,
               "activated with features 0x%x, offered 0x%x", context.features, options_.features);
    FUZZ_CHECK(context.queues.size() == options_.queues, "activated with %u queues, expected %u",
               context.queues.size(), options_.queues);
    FUZZ_CHECK(context.interrupt != nullptr, "activated without an interrupt");
    for (const ActivatedQueue& queue : context.queues) {
      FUZZ_CHECK(queue.notify_fd >= 0, "a queue without a notify eventfd");
      if (!queue.config.ready) continue;
      FUZZ_CHECK(
          std::has_single_bit(queue.config.size) && queue.config.size <= options_.max_queue_size,
          "ready queue of size %u (max %u)", queue.config.size, options_.max_queue_size);
      // What a real device does next; its verdict does not matter here.
      (void)Virtqueue::Create(queue.config, options_.max_queue_size, {}, context.memory);
    }
    ++activations_;
    if (fail_next_activation_) {
      fail_next_activation_ = false;
      return absl::InternalError("fuzz: activation refused");
    }
    active_ = true;
    interrupt_ = context.interrupt;
    return absl::OkStatus();
  }

  void Reset() override {
    std::lock_guard lock(mutex_);
    if (interrupt_) stale_interrupt_ = std::move(interrupt_);
    interrupt_.reset();
    active_ = false;
  }

  std::string name() const override { return "fuzz-device"; }

  // Harness side.
  bool active() const {
    std::lock_guard lock(mutex_);
    return active_;
  }
  int activations() const {
    std::lock_guard lock(mutex_);
    return activations_;
  }
  void FailNextActivation() {
    std::lock_guard lock(mutex_);
    fail_next_activation_ = true;
  }
  // What the device back-end may do at any time: kind 0 used buffers on
  // `queue`, 1 config change, 2 NEEDS_RESET. `stale` uses the interrupt of
  // an earlier activation, which must have no effect.
  void Interrupt(uint8_t kind, uint16_t queue, bool stale) {
    std::shared_ptr<VirtioInterrupt> target;
    {
      std::lock_guard lock(mutex_);
      target = stale ? stale_interrupt_ : interrupt_;
    }
    if (!target) return;
    switch (kind % 3) {
      case 0:
        target->NotifyQueue(queue);
        break;
      case 1:
        target->NotifyConfigChange();
        break;
      default:
        target->NeedsReset();
        break;
    }
    (void)target->QueueIrqFd(queue);
  }

 private:
  void CheckConfigRange(uint32_t offset, size_t size) const {
    if (!options_.strict_config_range) return;
    FUZZ_CHECK(uint64_t{offset} + size <= config_.size(),
               "config access at %u+%u past the %u-byte config space", offset, size,
               config_.size());
  }

  const Options options_;
  mutable std::mutex mutex_;
  std::vector<uint8_t> config_;
  bool active_ = false;
  bool fail_next_activation_ = false;
  int activations_ = 0;
  std::shared_ptr<VirtioInterrupt> interrupt_;
  std::shared_ptr<VirtioInterrupt> stale_interrupt_;
};

}  // namespace skiff::virtio::fuzzing
