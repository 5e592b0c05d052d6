// Virtqueue: dispatches to the layout negotiated at activation. The rings
// themselves are in split_queue.cc and packed_queue.cc.
#include "devices/virtio/queue.h"

#include "vmm/status_macros.h"

namespace skiff::virtio {

absl::StatusOr<Virtqueue> Virtqueue::Create(const QueueConfig& config, uint16_t max_size,
                                            QueueFeatures features, const GuestMemory& memory) {
  if (features.packed) {
    ASSIGN_OR_RETURN(PackedRing ring, PackedRing::Create(config, max_size, features, memory));
    return Virtqueue(std::move(ring));
  }
  ASSIGN_OR_RETURN(SplitRing ring, SplitRing::Create(config, max_size, features, memory));
  return Virtqueue(std::move(ring));
}

absl::StatusOr<std::optional<DescriptorChain>> Virtqueue::Pop(const GuestMemory& memory) {
  return std::visit([&](auto& ring) { return ring.Pop(memory); }, ring_);
}

void Virtqueue::UndoPop() {
  std::visit([](auto& ring) { ring.UndoPop(); }, ring_);
}

absl::Status Virtqueue::PushUsed(const GuestMemory& memory, uint16_t head, uint32_t written) {
  return std::visit([&](auto& ring) { return ring.PushUsed(memory, head, written); }, ring_);
}

absl::StatusOr<bool> Virtqueue::ShouldNotify(const GuestMemory& memory) {
  return std::visit([&](auto& ring) { return ring.ShouldNotify(memory); }, ring_);
}

absl::Status Virtqueue::SetNotification(const GuestMemory& memory, bool enabled) {
  return std::visit([&](auto& ring) { return ring.SetNotification(memory, enabled); }, ring_);
}

absl::StatusOr<uint16_t> Virtqueue::AvailableCount(const GuestMemory& memory) const {
  return std::visit([&](const auto& ring) { return ring.AvailableCount(memory); }, ring_);
}

const QueueConfig& Virtqueue::config() const {
  return std::visit([](const auto& ring) -> const QueueConfig& { return ring.config(); }, ring_);
}

uint16_t Virtqueue::next_avail() const {
  return std::visit([](const auto& ring) { return ring.next_avail(); }, ring_);
}

uint16_t Virtqueue::next_used() const {
  return std::visit([](const auto& ring) { return ring.next_used(); }, ring_);
}

}  // namespace skiff::virtio
