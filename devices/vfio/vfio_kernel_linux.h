// VfioKernel on the real /dev/vfio: one ioctl (or pread/pwrite/mmap) per
// method, errors naming the ioctl and the fix where one is known.
#pragma once

#include <string>

#include "devices/vfio/vfio_kernel.h"

namespace skiff::vfio {

// What `ioctl` (VFIO_SET_IOMMU for the first group, VFIO_GROUP_SET_CONTAINER
// after) failing with EPERM means: type1 refuses a group whose MSIs the
// host cannot isolate (no interrupt remapping on x86; on ARM64 no GICv3 ITS
// behind the SMMU, e.g. a GICv2m), unless allow_unsafe_interrupts is set.
absl::Status UnremappedInterruptsError(const std::string& ioctl);

class LinuxVfioKernel : public VfioKernel {
 public:
  // `dev_dir`: where the vfio nodes live ("/dev/vfio"; tests may differ).
  explicit LinuxVfioKernel(std::string dev_dir = "/dev/vfio") : dev_dir_(std::move(dev_dir)) {}

  absl::StatusOr<UniqueFd> OpenContainer() override;
  absl::StatusOr<UniqueFd> OpenGroup(uint32_t group) override;
  absl::StatusOr<uint32_t> GroupFlags(int group_fd) override;
  absl::Status SetContainer(int group_fd, int container_fd) override;
  absl::Status SetIommuType1v2(int container_fd) override;
  absl::StatusOr<VfioIommuInfo> GetIommuInfo(int container_fd) override;
  absl::StatusOr<LockedMemoryBudget> GetLockedMemoryBudget() override;
  absl::Status MapDma(int container_fd, uint64_t iova, uint64_t size, void* host) override;
  absl::Status UnmapDma(int container_fd, uint64_t iova, uint64_t size) override;
  absl::StatusOr<UniqueFd> GetDeviceFd(int group_fd, const std::string& name) override;
  absl::StatusOr<VfioDeviceInfo> GetDeviceInfo(int device_fd) override;
  absl::StatusOr<VfioRegionInfo> GetRegionInfo(int device_fd, uint32_t index) override;
  absl::StatusOr<VfioIrqInfo> GetIrqInfo(int device_fd, uint32_t index) override;
  absl::Status SetIrqs(int device_fd, const VfioIrqSet& set) override;
  absl::Status Reset(int device_fd) override;
  absl::StatusOr<size_t> Read(int device_fd, uint64_t offset, std::span<uint8_t> data) override;
  absl::StatusOr<size_t> Write(int device_fd, uint64_t offset,
                               std::span<const uint8_t> data) override;
  absl::StatusOr<Mapping> Map(int device_fd, uint64_t offset, uint64_t size) override;

 private:
  const std::string dev_dir_;
};

}  // namespace skiff::vfio
