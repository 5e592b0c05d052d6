// The split virtqueue (virtio 1.2 §2.7): ring layout, chain validation and
// the notification-suppression protocol. See queue.h for the contract.
//
// Concurrency model: the driver (another CPU) writes the descriptor table
// and the available ring while we read them, and reads the used ring while
// we write it. So
//   - every field the guest can change is loaded exactly once (atomic_ref or
//     volatile loads; never a plain dereference the compiler could repeat)
//     into a local that is validated and then used;
//   - avail->idx is loaded with acquire, so the ring entries and descriptors
//     the driver wrote before publishing it are visible to the loads after;
//   - used->idx is stored with release, so the used element is visible to
//     the driver before the index that publishes it;
//   - a full fence separates our stores (used->idx, avail_event, used
//     flags) from our loads of the driver's suppression fields (used_event,
//     avail flags) and the caller's re-check of avail->idx: otherwise both
//     sides could read the other's stale value and sleep forever
//     (store-buffer reordering is allowed even on x86).
#include "devices/virtio/split_queue.h"

#include <atomic>
#include <bit>
#include <cstring>

#include "absl/strings/str_format.h"
#include "devices/virtio/chain_builder.h"
#include "devices/virtio/ring_access.h"
#include "devices/virtio/split_ring.h"
#include "vmm/status_macros.h"

namespace skiff::virtio {
namespace {

// The largest queue the split ring allows (§2.7: Queue Size ≤ 32768). It
// also keeps "avail idx - next_avail ≤ size" meaningful in 16 bits.
constexpr uint32_t kMaxQueueSize = 32768;

// Ring layout (§2.7): sizes and offsets in bytes.
constexpr uint64_t kDescSize = 16;
constexpr uint64_t kDescAlign = 16;
constexpr uint64_t kAvailAlign = 2;
constexpr uint64_t kUsedAlign = 4;
constexpr uint64_t kRingFlagsOffset = 0;
constexpr uint64_t kRingIdxOffset = 2;
constexpr uint64_t kRingEntriesOffset = 4;
constexpr uint64_t kAvailEntrySize = 2;
constexpr uint64_t kUsedElemSize = 8;

uint64_t DescTableBytes(uint16_t size) { return kDescSize * size; }
// flags, idx, ring[size], used_event.
uint64_t AvailRingBytes(uint16_t size) { return 6 + kAvailEntrySize * size; }
// flags, idx, ring[size], avail_event.
uint64_t UsedRingBytes(uint16_t size) { return 6 + kUsedElemSize * size; }

// A descriptor as copied out of guest memory (struct virtq_desc).
struct Descriptor {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Descriptor) == kDescSize);

// Copies one descriptor out, each byte read once (see ring::CopyOnce).
Descriptor CopyDescriptor(const uint8_t* source) {
  uint8_t raw[kDescSize];
  ring::CopyOnce(source, raw);
  Descriptor desc;
  std::memcpy(&desc, raw, sizeof(desc));
  return desc;
}

// vring_need_event (§2.7.10): true when `event` lies in [old, new), i.e. the
// driver asked to hear about the entry at index `event` and this batch
// (old → new, modulo 2^16) passed it.
bool NeedEvent(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

// Walks and validates one descriptor chain into a DescriptorChain.
class ChainWalker {
 public:
  ChainWalker(const GuestMemory& memory, uint16_t queue_size, bool indirect_negotiated,
              DescriptorChain& chain)
      : memory_(memory),
        queue_size_(queue_size),
        indirect_negotiated_(indirect_negotiated),
        budget_(queue_size),
        chain_(chain),
        builder_(memory, chain, chain.head) {}

  absl::Status Walk(std::span<const uint8_t> desc_table, uint16_t head) {
    return WalkTable(desc_table, queue_size_, head, /*in_indirect=*/false);
  }

 private:
  // Follows `next` links through one table (the queue's or an indirect one)
  // starting at `first`; `entries` is the table's length in descriptors.
  absl::Status WalkTable(std::span<const uint8_t> table, uint32_t entries, uint32_t first,
                         bool in_indirect) {
    uint32_t index = first;
    while (true) {
      const Descriptor desc = CopyDescriptor(table.data() + index * kDescSize);
      if (desc.flags & kDescFlagIndirect) {
        return FollowIndirect(desc, index, in_indirect);
      }
      // The budget bounds the walk whatever the driver wrote: a loop or an
      // overlong chain runs out of it. The spec forbids chains longer than
      // the queue size, indirect tables included (§2.7.5.3.1).
      if (budget_ == 0) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "virtqueue: chain from head %u is longer than the queue size %u (or loops)",
            chain_.head, queue_size_));
      }
      --budget_;
      RETURN_IF_ERROR(
          builder_.AddBuffer(desc.addr, desc.len, desc.flags & kDescFlagWrite, index, in_indirect));
      if (!(desc.flags & kDescFlagNext)) return absl::OkStatus();
      if (desc.next >= entries) {
        return absl::InvalidArgumentError(
            absl::StrFormat("virtqueue: %sdescriptor %u links to %u, past the table's %u entries",
                            in_indirect ? "indirect " : "", index, desc.next, entries));
      }
      index = desc.next;
    }
  }

  // The descriptor that points at an indirect table. It is not a buffer
  // itself and takes no budget: a driver may fill a table with a full
  // queue's worth of descriptors (Linux does, for seg_max + 2 == size).
  absl::Status FollowIndirect(const Descriptor& desc, uint32_t index, bool in_indirect) {
    if (in_indirect) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "virtqueue: indirect descriptor %u points at another indirect table", index));
    }
    if (!indirect_negotiated_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "virtqueue: descriptor %u is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated",
          index));
    }
    if (desc.flags & kDescFlagNext) {
      return absl::InvalidArgumentError(
          absl::StrFormat("virtqueue: descriptor %u has both INDIRECT and NEXT", index));
    }
    // A table longer than the queue could only hold a chain the spec
    // forbids (longer than the queue size), so it is refused up front; this
    // also bounds how much of a 4 GiB `len` we would ever look at.
    if (desc.len == 0 || desc.len % kDescSize != 0 || desc.len / kDescSize > queue_size_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "virtqueue: indirect table at 0x%x has length %u: not a non-zero multiple of %u "
          "bytes holding at most %u descriptors",
          desc.addr, desc.len, kDescSize, queue_size_));
    }
    auto table = memory_.GetSpan(desc.addr, desc.len);
    if (!table.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "virtqueue: indirect table 0x%x+0x%x is not inside guest RAM", desc.addr, desc.len));
    }
    return WalkTable(*table, desc.len / kDescSize, 0, /*in_indirect=*/true);
  }

  const GuestMemory& memory_;
  const uint16_t queue_size_;
  const bool indirect_negotiated_;
  uint32_t budget_;  // buffer descriptors the chain may still have
  DescriptorChain& chain_;
  ChainBuilder builder_;
};

}  // namespace

absl::StatusOr<SplitRing> SplitRing::Create(const QueueConfig& config, uint16_t max_size,
                                            QueueFeatures features, const GuestMemory& memory) {
  if (!config.ready) {
    return absl::FailedPreconditionError("virtqueue: the driver did not enable this queue");
  }
  if (max_size == 0 || max_size > kMaxQueueSize || !std::has_single_bit(max_size)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: device maximum size %u is not a power of two in [1, %u]",
                        max_size, kMaxQueueSize));
  }
  if (config.size == 0 || config.size > max_size || !std::has_single_bit(config.size)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue: size %u is not a power of two in [1, %u]", config.size, max_size));
  }
  RETURN_IF_ERROR(ring::CheckArea(memory, "descriptor table", config.desc_table,
                                  DescTableBytes(config.size), kDescAlign));
  RETURN_IF_ERROR(ring::CheckArea(memory, "available ring", config.avail_ring,
                                  AvailRingBytes(config.size), kAvailAlign));
  RETURN_IF_ERROR(ring::CheckArea(memory, "used ring", config.used_ring, UsedRingBytes(config.size),
                                  kUsedAlign));
  return SplitRing(config, features);
}

absl::StatusOr<uint16_t> SplitRing::AvailableCount(const GuestMemory& memory) const {
  // Acquire: the ring entries and descriptors the driver wrote before this
  // idx are visible to every load that follows.
  ASSIGN_OR_RETURN(uint16_t avail_idx,
                   ring::LoadOnce<uint16_t>(memory, config_.avail_ring + kRingIdxOffset,
                                            std::memory_order_acquire, "available ring idx"));
  const uint16_t pending = avail_idx - next_avail_;
  if (pending > config_.size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue: available idx %u is %u entries ahead of the device's %u, more than the "
        "queue size %u",
        avail_idx, pending, next_avail_, config_.size));
  }
  return pending;
}

absl::StatusOr<std::optional<DescriptorChain>> SplitRing::Pop(const GuestMemory& memory) {
  ASSIGN_OR_RETURN(uint16_t pending, AvailableCount(memory));
  if (pending == 0) return std::nullopt;

  const uint16_t slot = next_avail_ & (config_.size - 1);
  ASSIGN_OR_RETURN(uint16_t head,
                   ring::LoadOnce<uint16_t>(
                       memory, config_.avail_ring + kRingEntriesOffset + kAvailEntrySize * slot,
                       std::memory_order_relaxed, "available ring entry"));
  if (head >= config_.size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: available ring entry %u names head %u, past the queue size %u",
                        slot, head, config_.size));
  }
  ASSIGN_OR_RETURN(std::span<uint8_t> desc_table,
                   memory.GetSpan(config_.desc_table, DescTableBytes(config_.size)));

  DescriptorChain chain;
  chain.head = head;
  ChainWalker walker(memory, config_.size, features_.indirect, chain);
  RETURN_IF_ERROR(walker.Walk(desc_table, head));

  ++next_avail_;
  if (undoable_ < config_.size) ++undoable_;
  return chain;
}

void SplitRing::UndoPop() {
  if (undoable_ == 0) return;
  --undoable_;
  --next_avail_;
}

absl::Status SplitRing::PushUsed(const GuestMemory& memory, uint16_t head, uint32_t written) {
  if (head >= config_.size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: used head %u is past the queue size %u", head, config_.size));
  }
  const uint16_t slot = next_used_ & (config_.size - 1);
  const uint64_t elem = config_.used_ring + kRingEntriesOffset + kUsedElemSize * slot;
  RETURN_IF_ERROR(
      ring::StoreOnce<uint32_t>(memory, elem, head, std::memory_order_relaxed, "used element id"));
  RETURN_IF_ERROR(ring::StoreOnce<uint32_t>(memory, elem + 4, written, std::memory_order_relaxed,
                                            "used element len"));
  const uint16_t new_used = next_used_ + 1;
  // Release: the element above is visible before the idx that publishes it.
  RETURN_IF_ERROR(ring::StoreOnce<uint16_t>(memory, config_.used_ring + kRingIdxOffset, new_used,
                                            std::memory_order_release, "used ring idx"));
  next_used_ = new_used;
  return absl::OkStatus();
}

absl::StatusOr<bool> SplitRing::ShouldNotify(const GuestMemory& memory) {
  // Our used idx stores must be globally visible before we read the
  // driver's suppression state, or we could miss its request (see top).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!features_.event_idx) {
    ASSIGN_OR_RETURN(uint16_t flags,
                     ring::LoadOnce<uint16_t>(memory, config_.avail_ring + kRingFlagsOffset,
                                              std::memory_order_relaxed, "available ring flags"));
    signalled_used_ = next_used_;
    return !(flags & kAvailFlagNoInterrupt);
  }
  ASSIGN_OR_RETURN(
      uint16_t used_event,
      ring::LoadOnce<uint16_t>(
          memory, config_.avail_ring + kRingEntriesOffset + kAvailEntrySize * config_.size,
          std::memory_order_relaxed, "used_event"));
  const uint16_t old_used = signalled_used_;
  signalled_used_ = next_used_;
  return NeedEvent(used_event, next_used_, old_used);
}

absl::Status SplitRing::SetNotification(const GuestMemory& memory, bool enabled) {
  if (features_.event_idx) {
    // Ask for a kick once the driver makes entry `next_avail_` available.
    // To disable we simply stop advancing avail_event: it stays behind what
    // the driver has already posted, so further posts do not cross it.
    if (enabled) {
      RETURN_IF_ERROR(ring::StoreOnce<uint16_t>(
          memory, config_.used_ring + kRingEntriesOffset + kUsedElemSize * config_.size,
          next_avail_, std::memory_order_relaxed, "avail_event"));
    }
  } else {
    RETURN_IF_ERROR(ring::StoreOnce<uint16_t>(memory, config_.used_ring + kRingFlagsOffset,
                                              enabled ? 0 : kUsedFlagNoNotify,
                                              std::memory_order_relaxed, "used ring flags"));
  }
  // The store above must be visible before the caller re-reads avail idx,
  // or a kick the driver suppressed meanwhile would be lost (see top).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return absl::OkStatus();
}

}  // namespace skiff::virtio
