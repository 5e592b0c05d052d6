// Every VFIO ioctl Skiff makes, behind one small interface: the real one
// (LinuxVfioKernel) talks to /dev/vfio, the test double (tests/unit/
// fake_vfio_kernel.h) models what the kernel answers — regions with flags,
// offsets and sizes, sparse-mmap capabilities, IRQ infos and counts — so the
// PCI (and later fsl-mc) device logic is testable without an IOMMU.
//
// The interface speaks in file descriptors the caller owns (UniqueFd): a
// container, a group, a device. Decoded structs replace the kernel's
// variable-length ones (vfio_region_info with its capability chain,
// vfio_irq_set with its trailing eventfd array), which C++ cannot size
// (see vmm/kvm_flex_arrays.h for the same problem with KVM).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vmm/mapping.h"
#include "vmm/unique_fd.h"

namespace skiff::vfio {

// VFIO_DEVICE_GET_INFO.
struct VfioDeviceInfo {
  uint32_t flags = 0;  // VFIO_DEVICE_FLAGS_* (RESET, PCI, FSL_MC, ...)
  uint32_t num_regions = 0;
  uint32_t num_irqs = 0;
};

// One mmap-able window of a region (VFIO_REGION_INFO_CAP_SPARSE_MMAP).
struct VfioSparseArea {
  uint64_t offset = 0;  // from the start of the region
  uint64_t size = 0;
  bool operator==(const VfioSparseArea&) const = default;
};

// VFIO_DEVICE_GET_REGION_INFO, capabilities decoded.
struct VfioRegionInfo {
  uint32_t index = 0;
  uint32_t flags = 0;   // VFIO_REGION_INFO_FLAG_READ/WRITE/MMAP/CAPS
  uint64_t size = 0;    // 0: the region does not exist (e.g. no such BAR)
  uint64_t offset = 0;  // of the region in the device fd (pread/mmap)
  // Only these parts may be mmapped when set; the whole region otherwise
  // (if FLAG_MMAP).
  std::optional<std::vector<VfioSparseArea>> sparse_areas;
  bool msix_mappable = false;  // VFIO_REGION_INFO_CAP_MSIX_MAPPABLE
};

// VFIO_DEVICE_GET_IRQ_INFO.
struct VfioIrqInfo {
  uint32_t index = 0;
  uint32_t flags = 0;  // VFIO_IRQ_INFO_EVENTFD/MASKABLE/AUTOMASKED/NORESIZE
  uint32_t count = 0;
};

// VFIO_DEVICE_SET_IRQS. `action` is one VFIO_IRQ_SET_ACTION_*; with no
// eventfds the data type is DATA_NONE (count 0 with ACTION_TRIGGER
// disables the whole index), otherwise DATA_EVENTFD with one fd per vector
// from `start` (-1 detaches that vector's signal).
struct VfioIrqSet {
  uint32_t index = 0;
  uint32_t action = 0;
  uint32_t start = 0;
  uint32_t count = 0;
  std::vector<int32_t> eventfds;  // empty: DATA_NONE
};

// One usable IOVA range of the container's IOMMU, as the kernel reports it
// (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE): `last` is inclusive.
struct VfioIovaRange {
  uint64_t start = 0;
  uint64_t last = 0;
  bool operator==(const VfioIovaRange&) const = default;
};

// VFIO_IOMMU_GET_INFO (type1), capabilities decoded.
struct VfioIommuInfo {
  uint32_t flags = 0;         // VFIO_IOMMU_INFO_PGSIZES / _CAPS
  uint64_t iova_pgsizes = 0;  // page sizes the IOMMU maps
  // The usable IOVA ranges, sorted: the IOMMU's aperture minus the
  // reserved regions of every group in the container. has_iova_ranges is
  // false when the kernel did not say (no capability: older than Linux
  // 5.4). (Not an optional<vector>: GCC 12 -O2 sees one moved out of a
  // StatusOr as maybe-uninitialized.)
  bool has_iova_ranges = false;
  std::vector<VfioIovaRange> iova_ranges;
  // How many more VFIO_IOMMU_MAP_DMA mappings the container takes
  // (VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, Linux 5.10+).
  std::optional<uint32_t> dma_avail;
};

// What VFIO type1 may pin for this process: it charges every pinned page
// to the process's locked memory (RLIMIT_MEMLOCK), unless the process has
// CAP_IPC_LOCK.
struct LockedMemoryBudget {
  std::optional<uint64_t> limit;  // RLIMIT_MEMLOCK (soft) in bytes; nothing: unlimited
  bool cap_ipc_lock = false;      // effective CAP_IPC_LOCK: no limit applies
  uint64_t locked = 0;            // already charged (VmLck)
};

class VfioKernel {
 public:
  virtual ~VfioKernel() = default;

  // /dev/vfio/vfio: open, check VFIO_GET_API_VERSION and that the type1v2
  // IOMMU is offered (VFIO_CHECK_EXTENSION).
  virtual absl::StatusOr<UniqueFd> OpenContainer() = 0;
  // /dev/vfio/N.
  virtual absl::StatusOr<UniqueFd> OpenGroup(uint32_t group) = 0;
  // VFIO_GROUP_GET_STATUS: VFIO_GROUP_FLAGS_*.
  virtual absl::StatusOr<uint32_t> GroupFlags(int group_fd) = 0;
  // VFIO_GROUP_SET_CONTAINER.
  virtual absl::Status SetContainer(int group_fd, int container_fd) = 0;
  // VFIO_SET_IOMMU (VFIO_TYPE1v2_IOMMU), once a group is in the container.
  virtual absl::Status SetIommuType1v2(int container_fd) = 0;
  // VFIO_IOMMU_GET_INFO, once the IOMMU is set; the answer changes as
  // groups join (their reserved regions leave the usable ranges).
  virtual absl::StatusOr<VfioIommuInfo> GetIommuInfo(int container_fd) = 0;
  // RLIMIT_MEMLOCK, CAP_IPC_LOCK and what is locked already.
  virtual absl::StatusOr<LockedMemoryBudget> GetLockedMemoryBudget() = 0;
  // VFIO_IOMMU_MAP_DMA (read + write) / VFIO_IOMMU_UNMAP_DMA.
  virtual absl::Status MapDma(int container_fd, uint64_t iova, uint64_t size, void* host) = 0;
  virtual absl::Status UnmapDma(int container_fd, uint64_t iova, uint64_t size) = 0;
  // VFIO_GROUP_GET_DEVICE_FD with the device's name ("0000:00:01.0").
  virtual absl::StatusOr<UniqueFd> GetDeviceFd(int group_fd, const std::string& name) = 0;

  virtual absl::StatusOr<VfioDeviceInfo> GetDeviceInfo(int device_fd) = 0;
  virtual absl::StatusOr<VfioRegionInfo> GetRegionInfo(int device_fd, uint32_t index) = 0;
  virtual absl::StatusOr<VfioIrqInfo> GetIrqInfo(int device_fd, uint32_t index) = 0;
  virtual absl::Status SetIrqs(int device_fd, const VfioIrqSet& set) = 0;
  // VFIO_DEVICE_RESET.
  virtual absl::Status Reset(int device_fd) = 0;
  // pread/pwrite on the device fd at a region offset + offset. Returns the
  // byte count moved (short counts are errors for the caller to judge).
  virtual absl::StatusOr<size_t> Read(int device_fd, uint64_t offset, std::span<uint8_t> data) = 0;
  virtual absl::StatusOr<size_t> Write(int device_fd, uint64_t offset,
                                       std::span<const uint8_t> data) = 0;
  // mmap(MAP_SHARED, read + write) of [offset, offset + size) of the device fd.
  virtual absl::StatusOr<Mapping> Map(int device_fd, uint64_t offset, uint64_t size) = 0;
};

}  // namespace skiff::vfio
