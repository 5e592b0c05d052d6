// What the driver programs for one queue through a transport's registers.
// Plain data: transports fill it, devices turn it into a Virtqueue.
#pragma once

#include <cstdint>

namespace skiff::virtio {

struct QueueConfig {
  uint16_t size = 0;        // entries; a power of two unless the ring is packed
  uint64_t desc_table = 0;  // guest-physical
  uint64_t avail_ring = 0;  // "driver area"
  uint64_t used_ring = 0;   // "device area"
  bool ready = false;       // the driver enabled this queue
};

}  // namespace skiff::virtio
