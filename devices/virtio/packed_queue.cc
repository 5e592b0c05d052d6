// The packed virtqueue (virtio 1.2 §2.8): chain validation, used
// descriptors and event suppression. See queue.h and packed_queue.h for the
// contract.
//
// Concurrency model: the driver (another CPU) writes descriptors and its
// event suppression area while we read them, and reads used descriptors and
// our event suppression area while we write them. So
//   - a descriptor's flags are loaded first, once, with acquire: the driver
//     writes addr/len/id and then, after a write barrier, the flags that
//     make the descriptor available (§2.8.21.1), so what we copy after the
//     load is what it published; each field is copied exactly once and
//     only the copy is validated and used;
//   - a used descriptor's id and len are stored before its flags, which are
//     stored with release: the driver reads the flags, then the rest;
//   - a full fence separates our stores (used flags, device area) from our
//     loads of the driver's suppression area and the caller's re-check of
//     the next descriptor's flags, or both sides could read the other's
//     stale value and sleep forever (store-buffer reordering).
#include "devices/virtio/packed_queue.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "absl/strings/str_format.h"
#include "devices/virtio/chain_builder.h"
#include "devices/virtio/packed_ring.h"
#include "devices/virtio/ring_access.h"
#include "devices/virtio/split_ring.h"
#include "vmm/status_macros.h"

namespace skiff::virtio {
namespace {

constexpr uint64_t kDescRingAlign = 16;
constexpr uint64_t kEventSuppressAlign = 4;

uint64_t DescRingBytes(uint16_t size) { return kPackedDescSize * size; }

// addr, len and id of a descriptor, copied once (flags are loaded apart).
struct DescriptorBody {
  uint64_t addr;
  uint32_t len;
  uint16_t id;
};

// The flags of ring descriptor `index`: the field that publishes the rest.
// The ring's host mapping is 16-aligned (checked at Create), so the field
// is naturally aligned for atomic_ref.
uint16_t LoadFlags(std::span<uint8_t> ring, uint16_t index) {
  auto* field =
      reinterpret_cast<uint16_t*>(ring.data() + kPackedDescSize * index + kPackedDescFlagsOffset);
  return std::atomic_ref<uint16_t>(*field).load(std::memory_order_acquire);
}

// addr, len and id at `source`, each byte read once (see ring::CopyOnce).
DescriptorBody CopyBody(const uint8_t* source) {
  uint8_t raw[kPackedDescFlagsOffset];
  ring::CopyOnce(source, raw);
  DescriptorBody body;
  std::memcpy(&body.addr, raw + kPackedDescAddrOffset, sizeof(body.addr));
  std::memcpy(&body.len, raw + kPackedDescLenOffset, sizeof(body.len));
  std::memcpy(&body.id, raw + kPackedDescIdOffset, sizeof(body.id));
  return body;
}

// §2.8.1: the driver makes a descriptor available by setting AVAIL to its
// wrap counter and USED to the inverse.
bool IsAvailable(uint16_t flags, bool wrap) {
  const bool avail = (flags & kPackedDescFlagAvail) != 0;
  const bool used = (flags & kPackedDescFlagUsed) != 0;
  return avail == wrap && used != wrap;
}

// The buffers of an indirect table (§2.8.7) into `builder`. `at` names the
// ring descriptor that points at it in errors.
absl::Status AddIndirectTable(const GuestMemory& memory, const DescriptorBody& table_desc,
                              uint16_t at, uint16_t queue_size, ChainBuilder& builder) {
  // A table longer than the queue could only hold a chain the spec forbids
  // (longer than the queue size), so it is refused up front; this also
  // bounds how much of a 4 GiB `len` we would ever look at.
  if (table_desc.len == 0 || table_desc.len % kPackedDescSize != 0 ||
      table_desc.len / kPackedDescSize > queue_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue: indirect table at 0x%x (ring position %u) has length %u: not a non-zero "
        "multiple of %u bytes holding at most %u descriptors",
        table_desc.addr, at, table_desc.len, kPackedDescSize, queue_size));
  }
  auto table = memory.GetSpan(table_desc.addr, table_desc.len);
  if (!table.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: indirect table 0x%x+0x%x (ring position %u) is not inside "
                        "guest RAM",
                        table_desc.addr, table_desc.len, at));
  }
  const uint32_t entries = table_desc.len / kPackedDescSize;
  for (uint32_t i = 0; i < entries; ++i) {
    uint8_t raw[kPackedDescSize];
    ring::CopyOnce(table->data() + kPackedDescSize * i, raw);
    uint16_t flags;
    std::memcpy(&flags, raw + kPackedDescFlagsOffset, sizeof(flags));
    const DescriptorBody body = CopyBody(raw);
    // In a table only WRITE means anything; NEXT is ignored (the entries
    // are simply consecutive) and the buffer ID too (§2.8.7). INDIRECT would
    // ask for a nested table, which no layout allows: refused rather than
    // ignored, so a table pointer is never taken for a data buffer.
    if (flags & kDescFlagIndirect) {
      return absl::InvalidArgumentError(
          absl::StrFormat("virtqueue: indirect descriptor %u points at another indirect table", i));
    }
    RETURN_IF_ERROR(builder.AddBuffer(body.addr, body.len, (flags & kDescFlagWrite) != 0, i, true));
  }
  return absl::OkStatus();
}

}  // namespace

PackedRing::PackedRing(const QueueConfig& config, QueueFeatures features)
    : config_(config),
      features_(features),
      in_flight_descriptors_(config.size, 0),
      pop_serial_(config.size, 0) {}

absl::StatusOr<PackedRing> PackedRing::Create(const QueueConfig& config, uint16_t max_size,
                                              QueueFeatures features, const GuestMemory& memory) {
  if (!config.ready) {
    return absl::FailedPreconditionError("virtqueue: the driver did not enable this queue");
  }
  if (max_size == 0 || max_size > kMaxQueueSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue: device maximum size %u is not in [1, %u]", max_size, kMaxQueueSize));
  }
  if (config.size == 0 || config.size > max_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: packed ring size %u is not in [1, %u]", config.size, max_size));
  }
  RETURN_IF_ERROR(ring::CheckArea(memory, "descriptor ring", config.desc_table,
                                  DescRingBytes(config.size), kDescRingAlign));
  RETURN_IF_ERROR(ring::CheckArea(memory, "driver event suppression area", config.avail_ring,
                                  kEventSuppressSize, kEventSuppressAlign));
  RETURN_IF_ERROR(ring::CheckArea(memory, "device event suppression area", config.used_ring,
                                  kEventSuppressSize, kEventSuppressAlign));
  return PackedRing(config, features);
}

PackedRingPosition PackedRing::Advance(PackedRingPosition at, uint32_t descriptors) const {
  // descriptors <= size, so at most one lap is completed.
  uint32_t index = uint32_t{at.index} + descriptors;
  if (index >= config_.size) {
    index -= config_.size;
    at.wrap = !at.wrap;
  }
  at.index = static_cast<uint16_t>(index);
  return at;
}

absl::Status PackedRing::Walk(const GuestMemory& memory, std::span<uint8_t> ring,
                              uint16_t head_flags, DescriptorChain& chain, Walked& walked) const {
  const uint16_t first = avail_.index;
  ChainBuilder builder(memory, chain, first);
  PackedRingPosition at = avail_;
  uint16_t flags = head_flags;
  uint32_t taken = 0;  // ring descriptors so far
  while (true) {
    if (taken > 0) {
      // The spec forbids chains longer than the queue; this also stops a
      // chain that would lap the ring onto its own first descriptor.
      if (taken == config_.size) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "virtqueue: chain from ring position %u is longer than the queue size %u", first,
            config_.size));
      }
      // §2.8.6: every descriptor of a list carries correct AVAIL/USED bits,
      // and the driver exposes the first only after the rest.
      flags = LoadFlags(ring, at.index);
      if (!IsAvailable(flags, at.wrap)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "virtqueue: descriptor at ring position %u continues the chain from %u but is not "
            "available (flags 0x%x, wrap counter %d)",
            at.index, first, flags, at.wrap));
      }
    }
    const DescriptorBody body = CopyBody(ring.data() + kPackedDescSize * at.index);
    ++taken;
    // The buffer ID is the one in the chain's last descriptor (§2.8.6).
    walked.id = body.id;
    if (flags & kDescFlagIndirect) {
      if (!features_.indirect) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "virtqueue: descriptor at ring position %u is indirect but VIRTIO_F_INDIRECT_DESC was "
            "not negotiated",
            at.index));
      }
      // §2.8.8: an indirect descriptor is a list of its own, never linked
      // by NEXT. Its WRITE bit is reserved and ignored.
      if (taken > 1 || (flags & kDescFlagNext)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "virtqueue: indirect descriptor at ring position %u is part of a chain", at.index));
      }
      RETURN_IF_ERROR(AddIndirectTable(memory, body, at.index, config_.size, builder));
      at = Advance(at, 1);
      break;
    }
    RETURN_IF_ERROR(builder.AddBuffer(body.addr, body.len, (flags & kDescFlagWrite) != 0, at.index,
                                      /*in_indirect=*/false));
    at = Advance(at, 1);
    if (!(flags & kDescFlagNext)) break;
  }
  walked.descriptors = static_cast<uint16_t>(taken);
  walked.end = at;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<DescriptorChain>> PackedRing::Pop(const GuestMemory& memory) {
  ASSIGN_OR_RETURN(std::span<uint8_t> ring,
                   memory.GetSpan(config_.desc_table, DescRingBytes(config_.size)));
  const uint16_t head_flags = LoadFlags(ring, avail_.index);
  if (!IsAvailable(head_flags, avail_.wrap)) return std::nullopt;

  DescriptorChain chain;
  Walked walked;
  RETURN_IF_ERROR(Walk(memory, ring, head_flags, chain, walked));
  if (walked.id >= config_.size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: chain from ring position %u has buffer ID %u, past the queue "
                        "size %u",
                        avail_.index, walked.id, config_.size));
  }
  if (in_flight_descriptors_[walked.id] != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue: chain from ring position %u reuses buffer ID %u, which is still in flight",
        avail_.index, walked.id));
  }
  if (total_in_flight_ + walked.descriptors > config_.size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue: chain from ring position %u would put %u descriptors in flight in a ring of "
        "%u (the driver reused descriptors the device has not used)",
        avail_.index, total_in_flight_ + walked.descriptors, config_.size));
  }
  chain.head = walked.id;
  in_flight_descriptors_[walked.id] = walked.descriptors;
  total_in_flight_ += walked.descriptors;
  pop_serial_[walked.id] = ++pops_;
  undoable_.push_back(PopRecord{avail_, walked.id, pops_});
  avail_ = walked.end;
  return chain;
}

void PackedRing::UndoPop() {
  if (undoable_.empty()) return;
  const PopRecord record = undoable_.back();
  undoable_.pop_back();
  total_in_flight_ -= in_flight_descriptors_[record.id];
  in_flight_descriptors_[record.id] = 0;
  avail_ = record.start;
}

absl::Status PackedRing::PushUsed(const GuestMemory& memory, uint16_t id, uint32_t written) {
  if (id >= config_.size || in_flight_descriptors_[id] == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue: used buffer ID %u is not in flight (queue size %u)", id, config_.size));
  }
  const uint64_t desc = config_.desc_table + kPackedDescSize * used_.index;
  RETURN_IF_ERROR(ring::StoreOnce<uint16_t>(memory, desc + kPackedDescIdOffset, id,
                                            std::memory_order_relaxed, "used descriptor id"));
  RETURN_IF_ERROR(ring::StoreOnce<uint32_t>(memory, desc + kPackedDescLenOffset, written,
                                            std::memory_order_relaxed, "used descriptor len"));
  // §2.8.1: used means AVAIL == USED == the device's wrap counter. WRITE
  // says len is meaningful (§2.8.4: without it the driver may ignore len).
  uint16_t flags = used_.wrap ? (kPackedDescFlagAvail | kPackedDescFlagUsed) : 0;
  if (written > 0) flags |= kDescFlagWrite;
  // Release: id and len are visible before the flags that publish them.
  RETURN_IF_ERROR(ring::StoreOnce<uint16_t>(memory, desc + kPackedDescFlagsOffset, flags,
                                            std::memory_order_release, "used descriptor flags"));

  // The driver skips as many ring slots as the chain took (§2.8.6).
  const uint16_t descriptors = in_flight_descriptors_[id];
  in_flight_descriptors_[id] = 0;
  total_in_flight_ -= descriptors;
  used_ = Advance(used_, descriptors);
  used_since_notify_ = std::min<uint32_t>(used_since_notify_ + descriptors, config_.size);
  // Chains popped before this one can no longer be handed back: rewinding
  // over this chain would pop descriptors the driver owns again.
  while (!undoable_.empty() && undoable_.front().serial <= pop_serial_[id]) {
    undoable_.pop_front();
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> PackedRing::ShouldNotify(const GuestMemory& memory) {
  // Our used descriptor stores must be globally visible before we read the
  // driver's suppression state, or we could miss its request (see top).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // One 32-bit load, so offset, wrap and flags are one consistent snapshot.
  ASSIGN_OR_RETURN(uint32_t event,
                   ring::LoadOnce<uint32_t>(memory, config_.avail_ring, std::memory_order_relaxed,
                                            "driver event suppression area"));
  const uint32_t used = used_since_notify_;
  used_since_notify_ = 0;
  const uint16_t flags = (event >> 16) & kEventFlagsMask;
  if (flags == kEventFlagsDisable) return false;
  // ENABLE, the reserved value 3 and DESC without EVENT_IDX (where it is
  // not valid): interrupting is always safe, staying silent might not be.
  if (flags != kEventFlagsDesc || !features_.event_idx) return true;

  // The driver wants an interrupt once the used descriptor at (offset,
  // wrap) is written. This pass wrote the `used` ring slots before used_.
  // With both on one line, the current lap starting at 0, the event lies at
  // offset (same wrap) or offset - size (previous lap), and the pass covered
  // [used_.index - used, used_.index).
  if (used == 0) return false;
  if (used >= config_.size) return true;  // a whole lap: the event was passed
  const uint16_t off_wrap = static_cast<uint16_t>(event);
  int32_t event_at = off_wrap & kEventOffsetMask;
  if (((off_wrap >> kEventWrapShift) != 0) != used_.wrap) event_at -= config_.size;
  const int32_t now = used_.index;
  return event_at >= now - static_cast<int32_t>(used) && event_at < now;
}

absl::Status PackedRing::SetNotification(const GuestMemory& memory, bool enabled) {
  uint32_t event = uint32_t{kEventFlagsDisable} << 16;
  if (enabled && features_.event_idx) {
    // Ask for a kick once the driver makes the descriptor at avail_
    // available, i.e. the next one we would pop.
    const uint16_t off_wrap =
        static_cast<uint16_t>(avail_.index | (uint16_t{avail_.wrap} << kEventWrapShift));
    event = uint32_t{kEventFlagsDesc} << 16 | off_wrap;
  } else if (enabled) {
    event = uint32_t{kEventFlagsEnable} << 16;
  }
  // One 32-bit store: Linux reads the area as one 32-bit snapshot.
  RETURN_IF_ERROR(ring::StoreOnce<uint32_t>(memory, config_.used_ring, event,
                                            std::memory_order_relaxed,
                                            "device event suppression area"));
  // The store must be visible before the caller re-reads the next
  // descriptor, or a kick the driver suppressed meanwhile is lost (see top).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return absl::OkStatus();
}

absl::StatusOr<uint16_t> PackedRing::AvailableCount(const GuestMemory& memory) const {
  ASSIGN_OR_RETURN(std::span<uint8_t> ring,
                   memory.GetSpan(config_.desc_table, DescRingBytes(config_.size)));
  // No index says how far the driver got: count the chains ending within
  // the available stretch from avail_, at most one lap of it. A chain whose
  // tail is not available yet is not counted (Pop would call it malformed).
  uint16_t chains = 0;
  PackedRingPosition at = avail_;
  for (uint32_t scanned = 0; scanned < config_.size; ++scanned) {
    const uint16_t flags = LoadFlags(ring, at.index);
    if (!IsAvailable(flags, at.wrap)) break;
    if (!(flags & kDescFlagNext) || (flags & kDescFlagIndirect)) ++chains;
    at = Advance(at, 1);
  }
  return chains;
}

}  // namespace skiff::virtio
