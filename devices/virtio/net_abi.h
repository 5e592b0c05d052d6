// virtio-net's feature bits and wire formats (virtio 1.2 §5.1), spelled out
// for C++: <linux/virtio_net.h> names a struct field `class`, and
// <linux/virtio_ring.h> has C-only inline functions, so C++ code can
// include neither. Values are the specification's.
#pragma once

#include <cstddef>
#include <cstdint>

namespace skiff::virtio::vnet {

// Feature bit numbers.
inline constexpr int kFCsum = 0;       // device handles partial checksums (host side)
inline constexpr int kFGuestCsum = 1;  // driver handles partial checksums
inline constexpr int kFMac = 5;
inline constexpr int kFGuestTso4 = 7;
inline constexpr int kFGuestTso6 = 8;
inline constexpr int kFGuestEcn = 9;
inline constexpr int kFGuestUfo = 10;
inline constexpr int kFHostTso4 = 11;
inline constexpr int kFHostTso6 = 12;
inline constexpr int kFHostEcn = 13;
inline constexpr int kFHostUfo = 14;
inline constexpr int kFMrgRxbuf = 15;
inline constexpr int kFStatus = 16;
inline constexpr int kFCtrlVq = 17;
inline constexpr int kFMq = 22;
// Generic ring features (virtio 1.2 §6), from <linux/virtio_ring.h>.
inline constexpr int kFRingIndirectDesc = 28;
inline constexpr int kFRingEventIdx = 29;

// virtio_net_config.status
inline constexpr uint16_t kStatusLinkUp = 1;

// struct virtio_net_hdr_mrg_rxbuf: with VIRTIO_F_VERSION_1 every frame
// starts with it, num_buffers included (§5.1.6). Little-endian.
struct Header {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;
};
static_assert(sizeof(Header) == 12);
inline constexpr size_t kNumBuffersOffset = offsetof(Header, num_buffers);

// Control queue (§5.1.6.5).
struct CtrlHeader {
  uint8_t class_id;
  uint8_t command;
};
static_assert(sizeof(CtrlHeader) == 2);
inline constexpr uint8_t kCtrlOk = 0;
inline constexpr uint8_t kCtrlErr = 1;
inline constexpr uint8_t kCtrlMq = 4;
inline constexpr uint8_t kCtrlMqVqPairsSet = 0;
inline constexpr uint16_t kCtrlMqVqPairsMin = 1;
inline constexpr uint16_t kCtrlMqVqPairsMax = 0x8000;

}  // namespace skiff::virtio::vnet
