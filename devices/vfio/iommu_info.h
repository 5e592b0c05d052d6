// The kernel's answer to VFIO_IOMMU_GET_INFO, read defensively.
//
// The reply is struct vfio_iommu_type1_info followed by a chain of
// capabilities (struct vfio_info_cap_header, each naming the offset of the
// next). The kernel only writes the chain when the caller's argsz leaves
// room for it; otherwise it sets VFIO_IOMMU_INFO_CAPS and says in argsz how
// much it needs, and the caller asks again with a bigger buffer.
//
// The chain is walked like guest data: every offset is bounded by the
// buffer, each capability must lie after the previous one (so a chain that
// points back, a loop, cannot spin), and each header and body must fit.
// A malformed reply is an error naming the offset, not a guess.
#pragma once

#include <linux/vfio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "devices/vfio/vfio_kernel.h"

namespace skiff::vfio {

// The fixed part the capabilities follow: the kernel's sizeof (with the 4
// bytes of padding after cap_offset), where it puts the first capability.
inline constexpr size_t kIommuInfoSize = sizeof(vfio_iommu_type1_info);
static_assert(kIommuInfoSize == 24);

// Decodes a reply the kernel wrote into `reply` (whose argsz was
// reply.size()). The capabilities Skiff reads are the usable IOVA ranges
// (returned sorted) and the DMA mappings still available; others are
// skipped.
absl::StatusOr<VfioIommuInfo> DecodeIommuInfo(std::span<const uint8_t> reply);

// The whole exchange: `get_info` runs VFIO_IOMMU_GET_INFO on the buffer it
// is given (argsz already set to its size). Asks once with the fixed part,
// again with the size the kernel asked for if the capabilities did not fit.
absl::StatusOr<VfioIommuInfo> QueryIommuInfo(
    const std::function<absl::Status(std::span<uint8_t>)>& get_info);

}  // namespace skiff::vfio
