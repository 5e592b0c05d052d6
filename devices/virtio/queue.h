// A virtqueue (virtio 1.2 §2.6) as plain data; guest memory is passed in on
// every call, so a queue can move between threads at activation and be
// driven over fake memory in tests. Two layouts sit behind one interface,
// chosen at activation by VIRTIO_F_RING_PACKED: the split ring (§2.7,
// split_queue.h) and the packed ring (§2.8, packed_queue.h). Devices see
// only Virtqueue and DescriptorChain.
//
// The guest is hostile. Every ring field is read exactly once into a local
// copy which is then validated; descriptor chains are walked with a budget of
// `size` descriptors (indirect tables included), nested indirect tables are
// refused, every buffer must lie in guest RAM, device-readable buffers must
// precede device-writable ones and total lengths must fit in 32 bits. A
// malformed ring yields an error: the device then reports NEEDS_RESET.
// Zero-length descriptors are legal and dropped: a chain's buffers are never
// empty.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "devices/virtio/descriptor_chain.h"
#include "devices/virtio/packed_queue.h"
#include "devices/virtio/queue_config.h"
#include "devices/virtio/split_queue.h"
#include "vmm/guest_memory.h"

namespace skiff::virtio {

class Virtqueue {
 public:
  // Checks what the driver programmed. Split: size a power of two in
  // [1, max_size], rings aligned (desc 16, avail 2, used 4). Packed: size in
  // [1, max_size], descriptor ring aligned 16, the two 4-byte event
  // suppression areas aligned 4. Every part wholly in guest RAM.
  static absl::StatusOr<Virtqueue> Create(const QueueConfig& config,
                                          uint16_t max_size,
                                          QueueFeatures features,
                                          const GuestMemory& memory);

  // The next available chain; nullopt when the driver has posted nothing
  // new. An error means the ring is malformed.
  absl::StatusOr<std::optional<DescriptorChain>> Pop(const GuestMemory& memory);
  // Hands the last popped chain back (e.g. net rx without room); the next
  // Pop returns it again. May be repeated to hand back several chains,
  // newest first, but never one already given to PushUsed. A no-op when
  // nothing popped is left to hand back.
  void UndoPop();
  // Returns chain `head` (DescriptorChain::head) to the driver with
  // `written` bytes written by the device: a used ring element (split) or
  // a used descriptor (packed).
  absl::Status PushUsed(const GuestMemory& memory, uint16_t head,
                        uint32_t written);
  // After one or more PushUsed: must the driver be interrupted now?
  // Split: VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX.
  // Packed: the driver event suppression flags (and offset/wrap with
  // EVENT_IDX).
  absl::StatusOr<bool> ShouldNotify(const GuestMemory& memory);
  // Asks the driver to (not) kick us. Split: VRING_USED_F_NO_NOTIFY, or
  // avail_event with EVENT_IDX. Packed: the device event suppression
  // flags (and offset/wrap with EVENT_IDX). After enabling, callers
  // re-check for work (a kick may have been suppressed meanwhile).
  absl::Status SetNotification(const GuestMemory& memory, bool enabled);
  // How many chains the driver has made available beyond what was popped
  // (packed: the chains that end within a scan of at most `size`
  // descriptors). Zero whenever Pop would return nothing; non-zero means
  // Pop returns a chain or an error (unless the guest changes the ring).
  absl::StatusOr<uint16_t> AvailableCount(const GuestMemory& memory) const;

  uint16_t size() const { return config().size; }
  const QueueConfig& config() const;
  bool packed() const { return std::holds_alternative<PackedRing>(ring_); }
  // Where the device reads next and writes the next used entry: split,
  // free-running 16-bit indices; packed, positions in [0, size) in the
  // descriptor ring.
  uint16_t next_avail() const;
  uint16_t next_used() const;

 private:
  explicit Virtqueue(SplitRing ring) : ring_(std::move(ring)) {}
  explicit Virtqueue(PackedRing ring) : ring_(std::move(ring)) {}

  std::variant<SplitRing, PackedRing> ring_;
};

// Copies bytes out of a chain's readable buffers, in order.
class ChainReader {
 public:
  ChainReader(const GuestMemory& memory, const DescriptorChain& chain);
  // Fails (consuming nothing) when fewer than out.size() bytes remain.
  absl::Status Read(std::span<uint8_t> out);
  template <typename T>
  absl::StatusOr<T> ReadObj() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    absl::Status s = Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&value), sizeof(T)));
    if (!s.ok()) return s;
    return value;
  }
  absl::Status Skip(uint64_t bytes);
  uint64_t remaining() const { return remaining_; }
  // The remaining readable bytes as guest spans (for preadv/pwritev).
  absl::StatusOr<std::vector<std::span<uint8_t>>> RemainingSpans(uint64_t max_bytes) const;

 private:
  const GuestMemory& memory_;
  const std::vector<Buffer>& buffers_;
  size_t index_ = 0;
  uint32_t offset_ = 0;  // into buffers_[index_]
  uint64_t remaining_ = 0;
};

// Copies bytes into a chain's writable buffers, in order.
class ChainWriter {
 public:
  ChainWriter(const GuestMemory& memory, const DescriptorChain& chain);
  // Fails (writing nothing) when fewer than in.size() bytes of room remain.
  absl::Status Write(std::span<const uint8_t> in);
  template <typename T>
  absl::Status WriteObj(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    return Write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }
  absl::Status Skip(uint64_t bytes);
  uint64_t remaining() const { return remaining_; }
  uint32_t written() const { return written_; }
  // The next up to `max_bytes` writable bytes as guest spans, without
  // consuming them (call Skip after filling them).
  absl::StatusOr<std::vector<std::span<uint8_t>>> RemainingSpans(uint64_t max_bytes) const;

 private:
  const GuestMemory& memory_;
  const std::vector<Buffer>& buffers_;
  size_t index_ = 0;
  uint32_t offset_ = 0;
  uint64_t remaining_ = 0;
  uint32_t written_ = 0;
};

}  // namespace skiff::virtio
