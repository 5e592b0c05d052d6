// Flag bits of the split virtqueue (virtio 1.2 §2.7.5, §2.7.6, §2.7.8).
// <linux/virtio_ring.h> has the same values but does not compile as C++
// (vring_init converts void* implicitly), so they are restated here.
#pragma once

#include <cstdint>

namespace skiff::virtio {

// virtq_desc.flags
inline constexpr uint16_t kDescFlagNext = 1;      // VRING_DESC_F_NEXT
inline constexpr uint16_t kDescFlagWrite = 2;     // VRING_DESC_F_WRITE (device-writable)
inline constexpr uint16_t kDescFlagIndirect = 4;  // VRING_DESC_F_INDIRECT
// virtq_avail.flags
inline constexpr uint16_t kAvailFlagNoInterrupt = 1;  // VRING_AVAIL_F_NO_INTERRUPT
// virtq_used.flags
inline constexpr uint16_t kUsedFlagNoNotify = 1;  // VRING_USED_F_NO_NOTIFY

}  // namespace skiff::virtio
