#include "devices/vfio/iommu_info.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "vmm/status_macros.h"

namespace skiff::vfio {
namespace {

// Capability layouts (Linux 6.1 UAPI), by offset from the capability's
// header, spelled out: the UAPI structs end in flexible arrays.
constexpr size_t kCapHeaderSize = sizeof(vfio_info_cap_header);  // id, version, next
static_assert(kCapHeaderSize == 8);
// vfio_iommu_type1_info_cap_iova_range: header, nr_iovas, reserved, ranges.
constexpr size_t kIovaCountAt = 8;
constexpr size_t kIovaRangesAt = 16;
constexpr size_t kIovaRangeSize = sizeof(vfio_iova_range);  // start, end (inclusive)
static_assert(kIovaRangeSize == 16);
// vfio_iommu_type1_info_dma_avail: header, avail.
constexpr size_t kDmaAvailAt = 8;
constexpr size_t kDmaAvailSize = 12;

// Replies larger than this are refused rather than allocated: 1 MiB holds
// 65536 IOVA ranges, far more than any IOMMU reports.
constexpr uint32_t kMaxReply = 1 << 20;

template <typename T>
T Load(std::span<const uint8_t> bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

absl::Status Malformed(const std::string& what) {
  return absl::InternalError("VFIO_IOMMU_GET_INFO: malformed capability chain: " + what);
}

absl::Status DecodeIovaRanges(std::span<const uint8_t> cap, size_t at, VfioIommuInfo& info) {
  if (info.has_iova_ranges) return Malformed(absl::StrFormat("a second IOVA range list at 0x%x", at));
  if (cap.size() < kIovaRangesAt) {
    return Malformed(absl::StrFormat("the IOVA range capability at 0x%x is cut short (%u bytes)",
                                     at, cap.size()));
  }
  const uint32_t count = Load<uint32_t>(cap, kIovaCountAt);
  if (uint64_t{count} * kIovaRangeSize > cap.size() - kIovaRangesAt) {
    return Malformed(
        absl::StrFormat("the IOVA range capability at 0x%x lists %u ranges but has room for %u", at,
                        count, (cap.size() - kIovaRangesAt) / kIovaRangeSize));
  }
  std::vector<VfioIovaRange> ranges;
  ranges.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const auto range = Load<vfio_iova_range>(cap, kIovaRangesAt + size_t{i} * kIovaRangeSize);
    if (range.start > range.end) {
      return Malformed(absl::StrFormat("IOVA range %u at 0x%x ends (0x%x) before it starts (0x%x)",
                                       i, at, range.end, range.start));
    }
    ranges.push_back({range.start, range.end});
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const VfioIovaRange& a, const VfioIovaRange& b) { return a.start < b.start; });
  info.iova_ranges = std::move(ranges);
  info.has_iova_ranges = true;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<VfioIommuInfo> DecodeIommuInfo(std::span<const uint8_t> reply) {
  if (reply.size() < kIommuInfoSize) {
    return absl::InternalError(absl::StrFormat(
        "VFIO_IOMMU_GET_INFO: a %u-byte reply is shorter than its fixed part", reply.size()));
  }
  const auto header = Load<vfio_iommu_type1_info>(reply, 0);
  VfioIommuInfo info;
  info.flags = header.flags;
  info.iova_pgsizes = header.iova_pgsizes;
  // cap_offset 0: no capability fitted (the caller asks again) or none exists.
  if (!(header.flags & VFIO_IOMMU_INFO_CAPS) || header.cap_offset == 0) return info;

  // Each capability must start at or after `floor`: past the fixed part,
  // then past the previous header. Offsets only grow, so the walk ends
  // after at most reply.size() / 8 steps, whatever `next` says.
  size_t floor = kIommuInfoSize;
  for (size_t at = header.cap_offset; at != 0;) {
    if (at < floor) {
      return Malformed(absl::StrFormat(
          "a capability offset 0x%x points back (below 0x%x): a loop or an overlap", at, floor));
    }
    if (at > reply.size() || reply.size() - at < kCapHeaderSize) {
      return Malformed(absl::StrFormat(
          "the capability header at 0x%x lies outside the %u-byte reply", at, reply.size()));
    }
    const auto cap = Load<vfio_info_cap_header>(reply, at);
    // A capability runs to the next one, or to the end of the reply.
    size_t end = reply.size();
    if (cap.next != 0) {
      if (cap.next < at + kCapHeaderSize) {
        return Malformed(absl::StrFormat(
            "the capability at 0x%x names 0x%x as the next one, inside or before itself (a loop)",
            at, cap.next));
      }
      if (cap.next > reply.size()) {
        return Malformed(absl::StrFormat(
            "the capability at 0x%x names 0x%x as the next one, past the %u-byte reply", at,
            cap.next, reply.size()));
      }
      end = cap.next;
    }
    const std::span<const uint8_t> body = reply.subspan(at, end - at);
    if (cap.id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      RETURN_IF_ERROR(DecodeIovaRanges(body, at, info));
    } else if (cap.id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
      if (body.size() < kDmaAvailSize) {
        return Malformed(absl::StrFormat(
            "the DMA-available capability at 0x%x is cut short (%u bytes)", at, body.size()));
      }
      info.dma_avail = Load<uint32_t>(body, kDmaAvailAt);
    }
    floor = at + kCapHeaderSize;
    at = cap.next;
  }
  return info;
}

absl::StatusOr<VfioIommuInfo> QueryIommuInfo(
    const std::function<absl::Status(std::span<uint8_t>)>& get_info) {
  std::vector<uint8_t> buffer(kIommuInfoSize);
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::fill(buffer.begin(), buffer.end(), 0);
    const uint32_t argsz = static_cast<uint32_t>(buffer.size());
    std::memcpy(buffer.data(), &argsz, sizeof(argsz));  // argsz leads the struct
    RETURN_IF_ERROR(get_info(buffer));
    const auto header = Load<vfio_iommu_type1_info>(buffer, 0);
    if ((header.flags & VFIO_IOMMU_INFO_CAPS) && header.argsz > buffer.size()) {
      // The capabilities did not fit: the kernel says how much they need.
      if (attempt > 0) {
        return absl::InternalError(
            absl::StrFormat("VFIO_IOMMU_GET_INFO: the reply grew again (to %u bytes after %u)",
                            header.argsz, buffer.size()));
      }
      if (header.argsz > kMaxReply) {
        return absl::InternalError(
            absl::StrFormat("VFIO_IOMMU_GET_INFO: the kernel asks for a %u-byte reply (over %u)",
                            header.argsz, kMaxReply));
      }
      buffer.resize(header.argsz);
      continue;
    }
    return DecodeIommuInfo(buffer);
  }
  return absl::InternalError("VFIO_IOMMU_GET_INFO: unreachable");
}

}  // namespace skiff::vfio
