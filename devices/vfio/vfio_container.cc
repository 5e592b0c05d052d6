#include "devices/vfio/vfio_container.h"

#include <linux/vfio.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "devices/vfio/teardown_log.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"

namespace skiff::vfio {
namespace {

absl::Status Prefixed(const std::string& prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrFormat("%s: %s", prefix, status.message()));
}

}  // namespace

absl::StatusOr<std::shared_ptr<VfioContainer>> VfioContainer::Open(
    std::shared_ptr<VfioKernel> kernel) {
  ASSIGN_OR_RETURN(UniqueFd fd, kernel->OpenContainer());
  return std::make_shared<VfioContainer>(std::move(kernel), std::move(fd));
}

VfioContainer::~VfioContainer() {
  // Devices are closed by now (each holds the container), so nothing DMAs.
  TeardownLog log("container");
  log.Step("guest RAM unmapped from the IOMMU", [&] {
    for (const DmaPiece& r : dma_) {
      absl::Status status = kernel_->UnmapDma(fd_.get(), r.iova, r.size);
      if (!status.ok()) LOG_WARN("vfio", "%s", status.message());
    }
    dma_.clear();
  });
  // Closing a group detaches it from the container (the IOMMU domain goes
  // with the last one) once KVM has let go of it too (KvmVfioDevice).
  log.Step("groups closed", [&] { groups_.clear(); });
  log.Step("container closed", [&] { fd_.Reset(); });
}

absl::StatusOr<std::shared_ptr<VfioGroup>> VfioContainer::GetGroup(const HostPciDevice& host) {
  auto it = groups_.find(host.group);
  if (it != groups_.end()) return it->second;
  RETURN_IF_ERROR(CheckGroupViable(host));
  auto fd = kernel_->OpenGroup(host.group);
  if (!fd.ok()) return Prefixed("vfio device " + host.name, fd.status());
  ASSIGN_OR_RETURN(uint32_t flags, kernel_->GroupFlags(fd->get()));
  if (!(flags & VFIO_GROUP_FLAGS_VIABLE)) {
    // sysfs looked fine but the kernel disagrees (a driver bound since).
    std::string members;
    for (const GroupMember& m : host.group_members) {
      members += absl::StrFormat(" %s (%s)", m.name, m.driver.empty() ? "no driver" : m.driver);
    }
    return absl::FailedPreconditionError(absl::StrFormat(
        "vfio device %s: IOMMU group %u is not viable; its devices:%s — bind every one to "
        "vfio-pci (or unbind it)",
        host.name, host.group, members));
  }
  RETURN_IF_ERROR(Prefixed(absl::StrFormat("vfio group %u", host.group),
                           kernel_->SetContainer(fd->get(), fd_.get())));
  auto group = std::make_shared<VfioGroup>(host.group, *std::move(fd), host.reserved_regions);
  if (!iommu_set_) {
    RETURN_IF_ERROR(Prefixed("vfio device " + host.name, kernel_->SetIommuType1v2(fd_.get())));
    iommu_set_ = true;
  }
  groups_[host.group] = group;
  return group;
}

absl::StatusOr<std::shared_ptr<VfioGroup>> VfioContainer::AttachGroup(uint32_t number,
                                                                      const std::string& owner) {
  auto it = groups_.find(number);
  if (it != groups_.end()) return it->second;
  auto fd = kernel_->OpenGroup(number);
  if (!fd.ok()) return Prefixed(owner, fd.status());
  ASSIGN_OR_RETURN(uint32_t flags, kernel_->GroupFlags(fd->get()));
  if (!(flags & VFIO_GROUP_FLAGS_VIABLE)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: IOMMU group %u is not viable: bind every device of /sys/kernel/iommu_groups/%u/devices "
        "to its VFIO driver (or unbind it)",
        owner, number, number));
  }
  RETURN_IF_ERROR(Prefixed(absl::StrFormat("vfio group %u", number),
                           kernel_->SetContainer(fd->get(), fd_.get())));
  auto group = std::make_shared<VfioGroup>(number, *std::move(fd));
  if (!iommu_set_) {
    RETURN_IF_ERROR(Prefixed(owner, kernel_->SetIommuType1v2(fd_.get())));
    iommu_set_ = true;
  }
  groups_[number] = group;
  return group;
}

absl::StatusOr<VfioDevice> VfioContainer::OpenDevice(const HostPciDevice& host) {
  ASSIGN_OR_RETURN(std::shared_ptr<VfioGroup> group, GetGroup(host));
  VfioDevice device;
  device.name = host.name;
  auto fd = kernel_->GetDeviceFd(group->fd(), host.name);
  if (!fd.ok()) return Prefixed("vfio device " + host.name, fd.status());
  device.fd = *std::move(fd);
  ASSIGN_OR_RETURN(device.info, kernel_->GetDeviceInfo(device.fd.get()));
  if (!(device.info.flags & VFIO_DEVICE_FLAGS_PCI)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vfio device %s: VFIO does not report it as a PCI device", host.name));
  }
  device.group = std::move(group);
  return device;
}

absl::Status VfioContainer::CheckGuestRam(std::span<const RamRegion> ram) {
  if (!iommu_set_) {
    return absl::FailedPreconditionError("vfio: guest RAM checked before any group joined");
  }
  std::vector<GroupReservations> groups;
  for (const auto& [number, group] : groups_) groups.push_back({number, group->reserved_regions()});
  ASSIGN_OR_RETURN(VfioIommuInfo info, kernel_->GetIommuInfo(fd_.get()));
  if (GetLogLevel() >= LogLevel::kDebug) {
    std::string ranges = info.has_iova_ranges ? "" : " not reported";
    if (info.has_iova_ranges) {
      for (const VfioIovaRange& r : info.iova_ranges) {
        ranges += absl::StrFormat(" 0x%x-0x%x", r.start, r.last);
      }
    }
    LOG_DEBUG("vfio", "IOMMU usable IOVA ranges:%s; DMA mappings left: %s", ranges,
              info.dma_avail ? absl::StrFormat("%u", *info.dma_avail) : "not reported");
  }
  if (info.has_iova_ranges) {
    RETURN_IF_ERROR(CheckIovaRanges(ram, info.iova_ranges, groups));
  } else {
    // Kernels before 5.4 do not say; VFIO_IOMMU_MAP_DMA still refuses.
    LOG_DEBUG("vfio", "the IOMMU does not report its usable IOVA ranges");
  }
  if (info.dma_avail) RETURN_IF_ERROR(CheckDmaAvail(ram, kDmaChunk, *info.dma_avail, groups));
  uint64_t bytes = 0;
  for (const RamRegion& r : ram) bytes += r.size;
  ASSIGN_OR_RETURN(LockedMemoryBudget budget, kernel_->GetLockedMemoryBudget());
  LOG_DEBUG("vfio", "guest RAM to pin: %s; RLIMIT_MEMLOCK %s, %s locked, CAP_IPC_LOCK %s",
            FormatBytes(bytes), budget.limit ? FormatBytes(*budget.limit) : "unlimited",
            FormatBytes(budget.locked), budget.cap_ipc_lock ? "yes" : "no");
  return CheckLockedMemory(bytes, budget);
}

absl::Status VfioContainer::MapGuestMemory(const GuestMemory& memory) {
  std::vector<RamRegion> ram;
  for (const GuestMemory::Region& r : memory.regions()) ram.push_back({r.gpa, r.size});
  RETURN_IF_ERROR(CheckGuestRam(ram));
  for (const GuestMemory::Region& r : memory.regions()) {
    for (const DmaPiece& piece : DmaPieces(r.gpa, r.size, kDmaChunk)) {
      RETURN_IF_ERROR(
          kernel_->MapDma(fd_.get(), piece.iova, piece.size, r.host + (piece.iova - r.gpa)));
      dma_.push_back(piece);
    }
  }
  return absl::OkStatus();
}

std::vector<std::shared_ptr<VfioGroup>> VfioContainer::groups() const {
  std::vector<std::shared_ptr<VfioGroup>> out;
  for (const auto& [number, group] : groups_) out.push_back(group);
  return out;
}

}  // namespace skiff::vfio
