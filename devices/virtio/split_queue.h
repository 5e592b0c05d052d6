// The split virtqueue layout (virtio 1.2 §2.7): descriptor table, available
// ring, used ring. One of the two implementations behind Virtqueue
// (queue.h), which documents the contract; devices use Virtqueue.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "devices/virtio/descriptor_chain.h"
#include "devices/virtio/queue_config.h"
#include "vmm/guest_memory.h"

namespace skiff::virtio {

class SplitRing {
 public:
  // Size a power of two in [1, max_size]; desc table 16-, avail ring 2-,
  // used ring 4-byte aligned; all three wholly in guest RAM.
  static absl::StatusOr<SplitRing> Create(const QueueConfig& config, uint16_t max_size,
                                          QueueFeatures features, const GuestMemory& memory);

  absl::StatusOr<std::optional<DescriptorChain>> Pop(const GuestMemory& memory);
  void UndoPop();
  absl::Status PushUsed(const GuestMemory& memory, uint16_t head, uint32_t written);
  absl::StatusOr<bool> ShouldNotify(const GuestMemory& memory);
  absl::Status SetNotification(const GuestMemory& memory, bool enabled);
  absl::StatusOr<uint16_t> AvailableCount(const GuestMemory& memory) const;

  const QueueConfig& config() const { return config_; }
  uint16_t next_avail() const { return next_avail_; }
  uint16_t next_used() const { return next_used_; }

 private:
  SplitRing(const QueueConfig& config, QueueFeatures features)
      : config_(config), features_(features) {}

  QueueConfig config_;
  QueueFeatures features_;
  uint16_t next_avail_ = 0;
  uint16_t next_used_ = 0;
  // Used idx when ShouldNotify last decided (EVENT_IDX): the next decision
  // covers the used entries added since. The ring starts at used idx 0,
  // which the driver knows too, so no "unknown" state is needed.
  uint16_t signalled_used_ = 0;
  // Pops UndoPop may still hand back (at most `size`).
  uint16_t undoable_ = 0;
};

}  // namespace skiff::virtio
