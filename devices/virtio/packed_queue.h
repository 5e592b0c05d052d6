// The packed virtqueue layout (virtio 1.2 §2.8): one descriptor ring that
// the driver fills with available descriptors and the device overwrites
// with used ones, plus two 4-byte event suppression areas. One of the two
// implementations behind Virtqueue (queue.h), which documents the
// contract; devices use Virtqueue.
//
// Beyond the rules both layouts share (queue.h), a packed chain is refused
// when a descriptor after its first is not available, when it takes more
// than `size` ring descriptors, when an indirect descriptor is part of a
// chain, when its buffer ID is >= size or still in flight, and when it
// would put more descriptors in flight than the ring holds (the driver
// reused slots the device had not used yet).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "devices/virtio/descriptor_chain.h"
#include "devices/virtio/queue_config.h"
#include "vmm/guest_memory.h"

namespace skiff::virtio {

// A place in the descriptor ring and the wrap counter that goes with it.
struct PackedRingPosition {
  uint16_t index = 0;
  bool wrap = true;  // both wrap counters start at 1 (§2.8.1)
};

class PackedRing {
 public:
  // The largest packed ring (§2.8: up to 2^15 entries).
  static constexpr uint32_t kMaxQueueSize = 32768;

  // Size in [1, max_size] (any value: no power of two needed); descriptor
  // ring 16-byte aligned, driver and device areas 4-byte aligned; all
  // wholly in guest RAM. QueueConfig's avail_ring is the driver area and
  // used_ring the device area.
  static absl::StatusOr<PackedRing> Create(const QueueConfig& config, uint16_t max_size,
                                           QueueFeatures features, const GuestMemory& memory);

  absl::StatusOr<std::optional<DescriptorChain>> Pop(const GuestMemory& memory);
  void UndoPop();
  absl::Status PushUsed(const GuestMemory& memory, uint16_t id, uint32_t written);
  absl::StatusOr<bool> ShouldNotify(const GuestMemory& memory);
  absl::Status SetNotification(const GuestMemory& memory, bool enabled);
  absl::StatusOr<uint16_t> AvailableCount(const GuestMemory& memory) const;

  const QueueConfig& config() const { return config_; }
  uint16_t next_avail() const { return avail_.index; }
  uint16_t next_used() const { return used_.index; }
  bool avail_wrap_counter() const { return avail_.wrap; }
  bool used_wrap_counter() const { return used_.wrap; }

 private:
  // A chain Pop handed out that UndoPop may still hand back.
  struct PopRecord {
    PackedRingPosition start;  // where the chain's first descriptor is
    uint16_t id;
    uint64_t serial;  // pops_ when it was popped
  };
  // What walking one chain found, before Pop commits it.
  struct Walked {
    uint16_t id = 0;
    uint16_t descriptors = 0;  // ring descriptors the chain took
    PackedRingPosition end;    // just past its last descriptor
  };

  PackedRing(const QueueConfig& config, QueueFeatures features);

  PackedRingPosition Advance(PackedRingPosition at, uint32_t descriptors) const;
  absl::Status Walk(const GuestMemory& memory, std::span<uint8_t> ring, uint16_t head_flags,
                    DescriptorChain& chain, Walked& walked) const;

  QueueConfig config_;
  QueueFeatures features_;
  PackedRingPosition avail_;  // the next descriptor to look at
  PackedRingPosition used_;   // where the next used descriptor goes
  // Per buffer ID: how many ring descriptors its chain took while it is in
  // flight (popped, not yet used), else 0. PushUsed advances used_ by it,
  // as the driver does when it reads the used descriptor (§2.8.6).
  std::vector<uint16_t> in_flight_descriptors_;
  std::vector<uint64_t> pop_serial_;  // per buffer ID: its PopRecord's serial
  uint32_t total_in_flight_ = 0;      // sum of in_flight_descriptors_
  std::deque<PopRecord> undoable_;    // oldest first; only chains in flight
  uint64_t pops_ = 0;
  // Ring descriptors used since ShouldNotify last decided (at most size):
  // with EVENT_IDX, the driver is interrupted if its event offset lies in
  // the stretch they cover.
  uint32_t used_since_notify_ = 0;
};

}  // namespace skiff::virtio
