// What a virtqueue hands a device: one validated descriptor chain, and the
// negotiated features that shape how rings are read. Shared by the split
// and packed ring implementations behind Virtqueue (queue.h).
#pragma once

#include <cstdint>
#include <vector>

namespace skiff::virtio {

// One buffer of a validated chain: [addr, addr+len) lies in guest RAM.
struct Buffer {
  uint64_t addr = 0;
  uint32_t len = 0;
};

// A descriptor chain, fully walked and validated before any device sees it.
struct DescriptorChain {
  // What goes back to PushUsed: the split ring's head descriptor index, or
  // the packed ring's buffer ID. Always < the queue size.
  uint16_t head = 0;
  std::vector<Buffer> readable;  // driver -> device, in chain order
  std::vector<Buffer> writable;  // device -> driver, in chain order
  uint32_t readable_bytes = 0;
  uint32_t writable_bytes = 0;
};

// Feature-dependent behaviour, fixed at activation.
struct QueueFeatures {
  bool indirect = false;   // VIRTIO_F_INDIRECT_DESC negotiated
  bool event_idx = false;  // VIRTIO_F_EVENT_IDX negotiated
  bool packed = false;     // VIRTIO_F_RING_PACKED negotiated: the packed layout
};

}  // namespace skiff::virtio
