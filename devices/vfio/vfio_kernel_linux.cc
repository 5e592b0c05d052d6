#include "devices/vfio/vfio_kernel_linux.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "devices/vfio/dma_checks.h"
#include "devices/vfio/iommu_info.h"

namespace skiff::vfio {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrFormat("%s: %s", what, std::strerror(errno)));
}

template <typename T>
T Load(const std::vector<uint8_t>& buffer, size_t offset) {
  T value;
  std::memcpy(&value, buffer.data() + offset, sizeof(T));
  return value;
}

// Walks the capability chain of a region info the kernel filled into
// `buffer` (offsets are from the start of vfio_region_info). Every offset
// and length is checked against the buffer: the chain comes from a kernel
// driver, but a bad one must not make Skiff read out of bounds.
void ParseRegionCaps(const std::vector<uint8_t>& buffer, uint32_t first, VfioRegionInfo& info) {
  uint32_t offset = first;
  for (int hops = 0; offset != 0 && hops < 64; ++hops) {
    if (offset < sizeof(vfio_region_info) ||
        offset + sizeof(vfio_info_cap_header) > buffer.size()) {
      return;
    }
    const auto header = Load<vfio_info_cap_header>(buffer, offset);
    if (header.id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
      const size_t areas_at = offset + sizeof(vfio_info_cap_header) + 8;  // nr_areas + reserved
      if (areas_at > buffer.size()) return;
      const uint32_t nr = Load<uint32_t>(buffer, offset + sizeof(vfio_info_cap_header));
      std::vector<VfioSparseArea> areas;
      for (uint32_t i = 0; i < nr; ++i) {
        const size_t at = areas_at + size_t{i} * sizeof(vfio_region_sparse_mmap_area);
        if (at + sizeof(vfio_region_sparse_mmap_area) > buffer.size()) break;
        const auto area = Load<vfio_region_sparse_mmap_area>(buffer, at);
        areas.push_back({area.offset, area.size});
      }
      info.sparse_areas = std::move(areas);
    } else if (header.id == VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) {
      info.msix_mappable = true;
    }
    offset = header.next;
  }
}

}  // namespace

absl::Status UnremappedInterruptsError(const std::string& ioctl) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s: EPERM: this host's IOMMU does not remap (isolate) the device's interrupts, so VFIO "
      "refuses it; enable interrupt remapping (x86: intel_iommu=on with a remapping-capable "
      "IOMMU; ARM64: an SMMU with a GICv3 ITS - a GICv2m cannot tell devices apart), or accept "
      "the risk with vfio_iommu_type1.allow_unsafe_interrupts=1 (modprobe vfio_iommu_type1 "
      "allow_unsafe_interrupts=1, or echo 1 > "
      "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts; the device could then "
      "forge interrupts to the host)",
      ioctl));
}

absl::StatusOr<UniqueFd> LinuxVfioKernel::OpenContainer() {
  const std::string path = dev_dir_ + "/vfio";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s does not exist: load the VFIO driver (modprobe vfio-pci)", path));
    }
    return Errno("open " + path);
  }
  const int version = ::ioctl(fd.get(), VFIO_GET_API_VERSION);
  if (version != VFIO_API_VERSION) {
    return absl::FailedPreconditionError(absl::StrFormat("%s: VFIO API version %d, Skiff speaks %d",
                                                         path, version, VFIO_API_VERSION));
  }
  if (::ioctl(fd.get(), VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: the type1v2 IOMMU backend is missing (modprobe vfio_iommu_type1)", path));
  }
  return fd;
}

absl::StatusOr<UniqueFd> LinuxVfioKernel::OpenGroup(uint32_t group) {
  const std::string path = absl::StrFormat("%s/%u", dev_dir_, group);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    if (errno == EBUSY) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s: the IOMMU group is in use by another process (another VMM?)", path));
    }
    if (errno == ENOENT) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s does not exist: is every device of IOMMU group %u bound to vfio-pci?", path, group));
    }
    return Errno("open " + path);
  }
  return fd;
}

absl::StatusOr<uint32_t> LinuxVfioKernel::GroupFlags(int group_fd) {
  vfio_group_status status{};
  status.argsz = sizeof(status);
  if (::ioctl(group_fd, VFIO_GROUP_GET_STATUS, &status) < 0) return Errno("VFIO_GROUP_GET_STATUS");
  return status.flags;
}

absl::Status LinuxVfioKernel::SetContainer(int group_fd, int container_fd) {
  if (::ioctl(group_fd, VFIO_GROUP_SET_CONTAINER, &container_fd) < 0) {
    if (errno == EPERM) return UnremappedInterruptsError("VFIO_GROUP_SET_CONTAINER");
    return Errno("VFIO_GROUP_SET_CONTAINER");
  }
  return absl::OkStatus();
}

absl::Status LinuxVfioKernel::SetIommuType1v2(int container_fd) {
  if (::ioctl(container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
    if (errno == EPERM) return UnremappedInterruptsError("VFIO_SET_IOMMU");
    return Errno("VFIO_SET_IOMMU (type1v2)");
  }
  return absl::OkStatus();
}

absl::StatusOr<VfioIommuInfo> LinuxVfioKernel::GetIommuInfo(int container_fd) {
  return QueryIommuInfo([container_fd](std::span<uint8_t> buffer) -> absl::Status {
    if (::ioctl(container_fd, VFIO_IOMMU_GET_INFO, buffer.data()) < 0) {
      return Errno("VFIO_IOMMU_GET_INFO");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<LockedMemoryBudget> LinuxVfioKernel::GetLockedMemoryBudget() {
  LockedMemoryBudget budget;
  rlimit limit{};
  if (::getrlimit(RLIMIT_MEMLOCK, &limit) < 0) return Errno("getrlimit(RLIMIT_MEMLOCK)");
  // type1 compares against the soft limit (rlimit(RLIMIT_MEMLOCK)).
  if (limit.rlim_cur != RLIM_INFINITY) budget.limit = limit.rlim_cur;
  // The effective set, as capable(CAP_IPC_LOCK) sees it (for a process in
  // the initial user namespace; in another one the kernel still charges).
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) < 0) return Errno("capget");
  budget.cap_ipc_lock =
      (data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective & CAP_TO_MASK(CAP_IPC_LOCK)) != 0;
  // What is charged already (mm->locked_vm): "VmLck:       0 kB".
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest(line);
    if (!absl::ConsumePrefix(&rest, "VmLck:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumeSuffix(&rest, "kB");
    uint64_t kib = 0;
    if (absl::SimpleAtoi(rest, &kib)) budget.locked = kib * 1024;
    break;
  }
  return budget;
}

absl::Status LinuxVfioKernel::MapDma(int container_fd, uint64_t iova, uint64_t size, void* host) {
  vfio_iommu_type1_dma_map map{};
  map.argsz = sizeof(map);
  map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  map.vaddr = reinterpret_cast<uint64_t>(host);
  map.iova = iova;
  map.size = size;
  if (::ioctl(container_fd, VFIO_IOMMU_MAP_DMA, &map) < 0) {
    const int error = errno;
    const std::string what = absl::StrFormat("VFIO_IOMMU_MAP_DMA [0x%x, +0x%x)", iova, size);
    if (error == ENOMEM) {
      // type1's pinning went past the locked-memory limit (vfio_lock_acct).
      auto budget = GetLockedMemoryBudget();
      return absl::ResourceExhaustedError(absl::StrFormat(
          "%s: ENOMEM: %s", what,
          budget.ok() ? LockedMemoryExplanation(*budget)
                      : "pinning guest RAM for DMA went past RLIMIT_MEMLOCK (raise ulimit -l, or "
                        "give Skiff CAP_IPC_LOCK)"));
    }
    if (error == ENOSPC) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "%s: ENOSPC: the container has no DMA mappings left (raise "
          "vfio_iommu_type1.dma_entry_limit)",
          what));
    }
    errno = error;
    return Errno(what);
  }
  return absl::OkStatus();
}

absl::Status LinuxVfioKernel::UnmapDma(int container_fd, uint64_t iova, uint64_t size) {
  vfio_iommu_type1_dma_unmap unmap{};
  unmap.argsz = sizeof(unmap);
  unmap.iova = iova;
  unmap.size = size;
  if (::ioctl(container_fd, VFIO_IOMMU_UNMAP_DMA, &unmap) < 0) {
    return Errno(absl::StrFormat("VFIO_IOMMU_UNMAP_DMA [0x%x, +0x%x)", iova, size));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> LinuxVfioKernel::GetDeviceFd(int group_fd, const std::string& name) {
  int fd = ::ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, name.c_str());
  if (fd < 0) return Errno("VFIO_GROUP_GET_DEVICE_FD " + name);
  return UniqueFd(fd);
}

absl::StatusOr<VfioDeviceInfo> LinuxVfioKernel::GetDeviceInfo(int device_fd) {
  vfio_device_info info{};
  info.argsz = sizeof(info);
  if (::ioctl(device_fd, VFIO_DEVICE_GET_INFO, &info) < 0) return Errno("VFIO_DEVICE_GET_INFO");
  return VfioDeviceInfo{info.flags, info.num_regions, info.num_irqs};
}

absl::StatusOr<VfioRegionInfo> LinuxVfioKernel::GetRegionInfo(int device_fd, uint32_t index) {
  std::vector<uint8_t> buffer(sizeof(vfio_region_info));
  for (int attempt = 0; attempt < 2; ++attempt) {
    vfio_region_info header{};
    header.argsz = static_cast<uint32_t>(buffer.size());
    header.index = index;
    std::memcpy(buffer.data(), &header, sizeof(header));
    if (::ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, buffer.data()) < 0) {
      return Errno(absl::StrFormat("VFIO_DEVICE_GET_REGION_INFO %u", index));
    }
    header = Load<vfio_region_info>(buffer, 0);
    // The capabilities did not fit: the kernel says how much it needs.
    if (header.argsz > buffer.size() && attempt == 0 && header.argsz <= 65536) {
      buffer.resize(header.argsz);
      continue;
    }
    VfioRegionInfo info;
    info.index = index;
    info.flags = header.flags;
    info.size = header.size;
    info.offset = header.offset;
    if ((header.flags & VFIO_REGION_INFO_FLAG_CAPS) && header.argsz <= buffer.size()) {
      ParseRegionCaps(buffer, header.cap_offset, info);
    }
    return info;
  }
  return absl::InternalError("VFIO_DEVICE_GET_REGION_INFO: capability chain keeps growing");
}

absl::StatusOr<VfioIrqInfo> LinuxVfioKernel::GetIrqInfo(int device_fd, uint32_t index) {
  vfio_irq_info info{};
  info.argsz = sizeof(info);
  info.index = index;
  if (::ioctl(device_fd, VFIO_DEVICE_GET_IRQ_INFO, &info) < 0) {
    return Errno(absl::StrFormat("VFIO_DEVICE_GET_IRQ_INFO %u", index));
  }
  return VfioIrqInfo{index, info.flags, info.count};
}

absl::Status LinuxVfioKernel::SetIrqs(int device_fd, const VfioIrqSet& set) {
  // vfio_irq_set ends in a flexible data[] array: lay it out by hand.
  constexpr size_t kHeader = offsetof(vfio_irq_set, data);
  const size_t data_bytes = set.eventfds.size() * sizeof(int32_t);
  std::vector<uint64_t> storage((kHeader + data_bytes + 7) / 8, 0);
  auto* bytes = reinterpret_cast<uint8_t*>(storage.data());
  vfio_irq_set header{};
  header.argsz = static_cast<uint32_t>(kHeader + data_bytes);
  header.flags =
      set.action | (set.eventfds.empty() ? VFIO_IRQ_SET_DATA_NONE : VFIO_IRQ_SET_DATA_EVENTFD);
  header.index = set.index;
  header.start = set.start;
  header.count = set.count;
  std::memcpy(bytes, &header, kHeader);
  if (data_bytes > 0) std::memcpy(bytes + kHeader, set.eventfds.data(), data_bytes);
  if (::ioctl(device_fd, VFIO_DEVICE_SET_IRQS, bytes) < 0) {
    return Errno(absl::StrFormat("VFIO_DEVICE_SET_IRQS index %u [%u, +%u) action 0x%x", set.index,
                                 set.start, set.count, set.action));
  }
  return absl::OkStatus();
}

absl::Status LinuxVfioKernel::Reset(int device_fd) {
  if (::ioctl(device_fd, VFIO_DEVICE_RESET) < 0) return Errno("VFIO_DEVICE_RESET");
  return absl::OkStatus();
}

absl::StatusOr<size_t> LinuxVfioKernel::Read(int device_fd, uint64_t offset,
                                             std::span<uint8_t> data) {
  const ssize_t n = ::pread(device_fd, data.data(), data.size(), static_cast<off_t>(offset));
  if (n < 0) return Errno(absl::StrFormat("pread VFIO device at 0x%x", offset));
  return static_cast<size_t>(n);
}

absl::StatusOr<size_t> LinuxVfioKernel::Write(int device_fd, uint64_t offset,
                                              std::span<const uint8_t> data) {
  const ssize_t n = ::pwrite(device_fd, data.data(), data.size(), static_cast<off_t>(offset));
  if (n < 0) return Errno(absl::StrFormat("pwrite VFIO device at 0x%x", offset));
  return static_cast<size_t>(n);
}

absl::StatusOr<Mapping> LinuxVfioKernel::Map(int device_fd, uint64_t offset, uint64_t size) {
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, device_fd,
                      static_cast<off_t>(offset));
  if (addr == MAP_FAILED) {
    return Errno(absl::StrFormat("mmap VFIO device [0x%x, +0x%x)", offset, size));
  }
  return Mapping(addr, size);
}

}  // namespace skiff::vfio
