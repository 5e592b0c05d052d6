// Layout and flag bits of the packed virtqueue (virtio 1.2 §2.8). The
// NEXT, WRITE and INDIRECT descriptor flags have the split ring's values
// (split_ring.h). <linux/virtio_ring.h> has these too but does not compile
// as C++ (see split_ring.h), so they are restated here.
#pragma once

#include <cstdint>

namespace skiff::virtio {

// struct pvirtq_desc: le64 addr, le32 len, le16 id, le16 flags.
inline constexpr uint64_t kPackedDescSize = 16;
inline constexpr uint64_t kPackedDescAddrOffset = 0;
inline constexpr uint64_t kPackedDescLenOffset = 8;
inline constexpr uint64_t kPackedDescIdOffset = 12;
inline constexpr uint64_t kPackedDescFlagsOffset = 14;

// pvirtq_desc.flags: available when AVAIL matches the ring's wrap counter
// and USED does not; used when both match it (§2.8.1).
inline constexpr uint16_t kPackedDescFlagAvail = 1 << 7;  // VRING_PACKED_DESC_F_AVAIL
inline constexpr uint16_t kPackedDescFlagUsed = 1 << 15;  // VRING_PACKED_DESC_F_USED

// struct pvirtq_event_suppress (driver and device areas): le16 off_wrap
// (offset in bits 0-14, wrap counter in bit 15), le16 flags (bits 0-1).
inline constexpr uint64_t kEventSuppressSize = 4;
inline constexpr uint16_t kEventFlagsEnable = 0;   // RING_EVENT_FLAGS_ENABLE
inline constexpr uint16_t kEventFlagsDisable = 1;  // RING_EVENT_FLAGS_DISABLE
inline constexpr uint16_t kEventFlagsDesc = 2;     // RING_EVENT_FLAGS_DESC (EVENT_IDX only)
inline constexpr uint16_t kEventFlagsMask = 3;
inline constexpr uint16_t kEventOffsetMask = 0x7fff;
inline constexpr int kEventWrapShift = 15;

}  // namespace skiff::virtio
