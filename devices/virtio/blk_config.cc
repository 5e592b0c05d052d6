#include "devices/virtio/blk_config.h"

#include <cstddef>
#include <type_traits>

namespace skiff::virtio {
namespace {

// virtio 1.x config fields are little-endian whatever the host.
template <typename T>
void StoreLe(std::array<uint8_t, blk_config::kSize>& out, uint32_t offset, T value) {
  static_assert(std::is_unsigned_v<T>);
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out[offset + i] = static_cast<uint8_t>(value >> (8 * i));
  }
}

}  // namespace

std::array<uint8_t, blk_config::kSize> EncodeBlkConfig(const BlkConfigValues& v) {
  std::array<uint8_t, blk_config::kSize> out{};
  StoreLe(out, blk_config::kCapacity, v.capacity_sectors);
  StoreLe(out, blk_config::kSizeMax, v.size_max);
  StoreLe(out, blk_config::kSegMax, v.seg_max);
  StoreLe(out, blk_config::kBlkSize, v.blk_size);
  StoreLe(out, blk_config::kNumQueues, v.num_queues);
  StoreLe(out, blk_config::kMaxDiscardSectors, v.max_discard_sectors);
  StoreLe(out, blk_config::kMaxDiscardSeg, v.max_discard_seg);
  StoreLe(out, blk_config::kDiscardSectorAlignment, v.discard_sector_alignment);
  StoreLe(out, blk_config::kMaxWriteZeroesSectors, v.max_write_zeroes_sectors);
  StoreLe(out, blk_config::kMaxWriteZeroesSeg, v.max_write_zeroes_seg);
  out[blk_config::kWriteZeroesMayUnmap] = v.write_zeroes_may_unmap ? 1 : 0;
  return out;
}

}  // namespace skiff::virtio
