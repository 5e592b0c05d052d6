// The virtio-blk configuration space (virtio 1.2 §5.2.4), encoded by byte
// offset rather than through a C++ struct: <linux/virtio_blk.h> is packed
// and grows with every kernel, and the layout the driver reads must not
// depend on either.
#pragma once

#include <array>
#include <cstdint>

namespace skiff::virtio {

namespace blk_config {
inline constexpr uint32_t kCapacity = 0;                 // le64, 512-byte sectors
inline constexpr uint32_t kSizeMax = 8;                  // le32 (VIRTIO_BLK_F_SIZE_MAX)
inline constexpr uint32_t kSegMax = 12;                  // le32 (VIRTIO_BLK_F_SEG_MAX)
inline constexpr uint32_t kBlkSize = 20;                 // le32 (VIRTIO_BLK_F_BLK_SIZE)
inline constexpr uint32_t kNumQueues = 34;               // le16 (VIRTIO_BLK_F_MQ)
inline constexpr uint32_t kMaxDiscardSectors = 36;       // le32 (VIRTIO_BLK_F_DISCARD)
inline constexpr uint32_t kMaxDiscardSeg = 40;           // le32
inline constexpr uint32_t kDiscardSectorAlignment = 44;  // le32
inline constexpr uint32_t kMaxWriteZeroesSectors = 48;   // le32 (VIRTIO_BLK_F_WRITE_ZEROES)
inline constexpr uint32_t kMaxWriteZeroesSeg = 52;       // le32
inline constexpr uint32_t kWriteZeroesMayUnmap = 56;     // u8
// Up to and including unused1[3]; the secure-erase and zoned fields that
// follow belong to features Skiff does not offer.
inline constexpr uint32_t kSize = 60;
}  // namespace blk_config

struct BlkConfigValues {
  uint64_t capacity_sectors = 0;
  uint32_t size_max = 0;
  uint32_t seg_max = 0;
  uint32_t blk_size = 0;
  uint16_t num_queues = 0;
  uint32_t max_discard_sectors = 0;
  uint32_t max_discard_seg = 0;
  uint32_t discard_sector_alignment = 0;
  uint32_t max_write_zeroes_sectors = 0;
  uint32_t max_write_zeroes_seg = 0;
  bool write_zeroes_may_unmap = false;
};

// Every byte the driver may read; fields of features not offered stay zero.
std::array<uint8_t, blk_config::kSize> EncodeBlkConfig(const BlkConfigValues& values);

}  // namespace skiff::virtio
