// The VFIO container (/dev/vfio/vfio), its IOMMU groups (/dev/vfio/N) and
// the guest-RAM DMA map, for all devices Skiff passes through.
//
// One container per machine: every group joins it, so guest RAM is mapped
// once (IOVA = guest-physical address) and every device DMAs through the
// same type1v2 IOMMU domain. Two devices of one group share the group
// object. The container unmaps guest RAM on destruction, before it closes
// its groups (the kernel drops the IOMMU backend with the last group).
//
// iommufd is not supported: Debian 12's 6.1 kernel has neither iommufd
// (CONFIG_IOMMUFD, Linux 6.2) nor the VFIO device cdev that binds a device
// to it (CONFIG_VFIO_DEVICE_CDEV, Linux 6.6), so the group API is the only
// one (docs/vfio.md).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/vfio/dma_checks.h"
#include "devices/vfio/vfio_kernel.h"
#include "devices/vfio/vfio_sysfs.h"
#include "vmm/guest_memory.h"
#include "vmm/guest_ram.h"
#include "vmm/unique_fd.h"

namespace skiff::vfio {

class VfioGroup {
 public:
  VfioGroup(uint32_t number, UniqueFd fd, std::vector<ReservedRegion> reserved_regions = {})
      : number_(number), fd_(std::move(fd)), reserved_regions_(std::move(reserved_regions)) {}
  uint32_t number() const { return number_; }
  int fd() const { return fd_.get(); }
  // What sysfs listed for the group (empty when not read): names the group
  // behind a hole in the IOMMU's usable ranges.
  const std::vector<ReservedRegion>& reserved_regions() const { return reserved_regions_; }

 private:
  const uint32_t number_;
  UniqueFd fd_;
  const std::vector<ReservedRegion> reserved_regions_;
};

// An opened device: its fd and what VFIO_DEVICE_GET_INFO said.
struct VfioDevice {
  std::string name;  // "0000:00:01.0"
  UniqueFd fd;
  VfioDeviceInfo info;
  std::shared_ptr<VfioGroup> group;
};

class VfioContainer {
 public:
  static absl::StatusOr<std::shared_ptr<VfioContainer>> Open(std::shared_ptr<VfioKernel> kernel);
  VfioContainer(std::shared_ptr<VfioKernel> kernel, UniqueFd fd)
      : kernel_(std::move(kernel)), fd_(std::move(fd)) {}
  ~VfioContainer();

  // Opens `host`'s device through its group: the group is opened (or
  // shared), checked viable — naming the devices that keep it from being
  // so — and put in the container; the first group selects the IOMMU.
  absl::StatusOr<VfioDevice> OpenDevice(const HostPciDevice& host);

  // For buses other than PCI (fsl-mc), whose callers check sysfs
  // themselves: opens IOMMU group `number` (or shares it), checks the
  // kernel finds it viable, puts it in the container; the first group
  // selects the IOMMU. `owner` names the device in errors.
  absl::StatusOr<std::shared_ptr<VfioGroup>> AttachGroup(uint32_t number,
                                                         const std::string& owner);

  // Checks, before anything is mapped, that guest RAM can be: every range
  // inside the IOMMU's usable IOVA ranges, enough DMA mappings left for its
  // kDmaChunk pieces, and room under RLIMIT_MEMLOCK to pin it all (see
  // dma_checks.h). Each failure is one line naming the limit and the fix.
  // Call once every group has joined (each group's reserved regions
  // narrow the usable ranges); MapGuestMemory checks again.
  absl::Status CheckGuestRam(std::span<const RamRegion> ram);

  // VFIO_IOMMU_MAP_DMA for every RAM region, IOVA = guest-physical, in
  // pieces of at most kDmaChunk, once CheckGuestRam passes. Call once,
  // after the last OpenDevice / AttachGroup.
  //
  // Why pieces: type1 unmaps (and unpins) a mapping in one ioctl, walking
  // it page by page, and its fast path never yields the CPU (Linux 6.1
  // vfio_unmap_unpin). In the nested test host 256 MiB takes 20-40 ms, but
  // the walk grows with guest RAM (and an emulated IOMMU on a loaded host
  // is slow), so a guest of many GiB could hold a CPU past the kernel's
  // soft-lockup threshold. A piece per ioctl returns to user space, a
  // scheduling point, every kDmaChunk. The cost is IOMMU superpages: 2 MiB
  // ones still fit, 1 GiB ones do not.
  absl::Status MapGuestMemory(const GuestMemory& memory);
  static constexpr uint64_t kDmaChunk = uint64_t{32} << 20;

  VfioKernel& kernel() const { return *kernel_; }
  int fd() const { return fd_.get(); }
  // Groups in the container, for the KVM-VFIO device.
  std::vector<std::shared_ptr<VfioGroup>> groups() const;

 private:
  absl::StatusOr<std::shared_ptr<VfioGroup>> GetGroup(const HostPciDevice& host);

  const std::shared_ptr<VfioKernel> kernel_;
  UniqueFd fd_;
  bool iommu_set_ = false;
  std::vector<DmaPiece> dma_;
  std::map<uint32_t, std::shared_ptr<VfioGroup>> groups_;
};

}  // namespace skiff::vfio
