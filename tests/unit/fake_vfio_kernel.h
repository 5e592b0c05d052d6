// A test double of the kernel's VFIO, faithful where Skiff's logic depends
// on it: a container needs a group before VFIO_SET_IOMMU and an IOMMU
// before DMA maps or device fds; a group opens once; DMA maps may not
// overlap and unmaps must match; region infos carry flags, offsets
// (index << 40, as vfio-pci lays them out), sizes and sparse-mmap areas;
// mmap is refused outside the mmap-able areas; SET_IRQS follows
// vfio-pci's rules (one interrupt mode at a time, MSI/MSI-X enabled with
// a vector count and then changed per vector within it, count 0 + DATA_NONE
// disables, INTx unmask needs INTx on). The fd numbers are real (eventfds),
// so UniqueFd closes them; the state is keyed by fd.
#pragma once

#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "devices/vfio/vfio_kernel.h"
#include "devices/vfio/vfio_kernel_linux.h"  // UnremappedInterruptsError

namespace skiff::vfio {

// One PCI function as VFIO presents it.
struct FakePciFunction {
  std::string name = "0000:00:01.0";
  uint32_t device_flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
  std::vector<uint8_t> config = std::vector<uint8_t>(256, 0);
  // Indexed by region: BAR0-5, ROM, CONFIG.
  std::array<VfioRegionInfo, 8> regions{};
  std::array<VfioIrqInfo, 5> irqs{};  // INTX, MSI, MSIX, ERR, REQ
  // Region contents (for pread/pwrite); BARs only.
  std::array<std::vector<uint8_t>, 6> bar_data;
  // The expansion ROM image (region 6, read-only). As vfio-pci reads it:
  // past the end of the region EINVAL, a read crossing it is cut short,
  // and bytes of the region past the image read 0xff.
  std::vector<uint8_t> rom_image;
  int rom_reads = 0;

  // State VFIO keeps.
  struct IrqState {
    uint32_t enabled = 0;  // vectors enabled (INTx: 0/1)
    std::vector<int32_t> fds;
    int32_t unmask_fd = -1;  // INTx resample
  };
  std::array<IrqState, 5> irq_state;
  int resets = 0;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> config_writes;
  std::vector<std::pair<uint64_t, uint64_t>> maps;  // region-relative file offset, size

  static uint64_t RegionOffset(uint32_t index) { return uint64_t{index} << 40; }

  void Put(uint32_t offset, uint32_t size, uint32_t value) {
    for (uint32_t i = 0; i < size; ++i) config[offset + i] = static_cast<uint8_t>(value >> (8 * i));
  }
  // A BAR: region info and the hardware's BAR register type bits.
  void AddBar(int index, uint64_t size, uint32_t type_bits, bool mmap = true,
              std::optional<std::vector<VfioSparseArea>> sparse = std::nullopt) {
    VfioRegionInfo& r = regions[index];
    r.index = index;
    r.size = size;
    r.offset = RegionOffset(index);
    r.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
              (mmap ? VFIO_REGION_INFO_FLAG_MMAP : 0) | (sparse ? VFIO_REGION_INFO_FLAG_CAPS : 0);
    r.sparse_areas = std::move(sparse);
    // Contents for pread/pwrite, capped: a huge BAR's tail reads as an error.
    bar_data[index].assign(std::min<uint64_t>(size, 0x100000), 0);
    Put(0x10 + 4 * index, 4, 0xfe000000 | type_bits);  // a host address, type bits
  }
  void AddCapability(uint8_t at, std::vector<uint8_t> body) {
    // Appended at the end of the list.
    Put(0x06, 2, config[0x06] | 0x10);
    if (config[0x34] == 0) {
      config[0x34] = at;
    } else {
      uint8_t cap = config[0x34];
      while (config[cap + 1] != 0) cap = config[cap + 1];
      config[cap + 1] = at;
    }
    std::copy(body.begin(), body.end(), config.begin() + at);
    config[at + 1] = 0;
  }

  // An e1000e-like function: 128 KiB BAR0, 128 KiB BAR1, I/O BAR2, 16 KiB
  // BAR3 with a 5-vector MSI-X table at 0 and PBA at 0x2000, MSI, INTA.
  static FakePciFunction E1000e() {
    FakePciFunction f;
    f.Put(0x00, 2, 0x8086);
    f.Put(0x02, 2, 0x10d3);
    f.Put(0x08, 4, 0x02000000);
    f.Put(0x2c, 2, 0x8086);
    f.Put(0x2e, 2, 0x0000);
    f.Put(0x3d, 1, 1);
    f.AddBar(0, 0x20000, 0);
    f.AddBar(1, 0x20000, 0);
    f.AddBar(2, 0x20, 1, /*mmap=*/false);
    f.AddBar(3, 0x4000, 0);
    f.regions[6] = {6, VFIO_REGION_INFO_FLAG_READ, 0x40000, RegionOffset(6), std::nullopt, false};
    f.regions[7] = {7,
                    VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
                    4096,
                    RegionOffset(7),
                    std::nullopt,
                    false};
    f.config.resize(4096, 0);
    // MSI at 0xd0 (64-bit, 1 vector), MSI-X at 0xa0: 5 vectors, table BAR3+0, PBA BAR3+0x2000.
    f.AddCapability(0xd0, {0x05, 0, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    f.AddCapability(0xa0, {0x11, 0, 0x04, 0x00, 0x03, 0x00, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00});
    f.irqs[VFIO_PCI_INTX_IRQ_INDEX] = {
        VFIO_PCI_INTX_IRQ_INDEX,
        VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, 1};
    f.irqs[VFIO_PCI_MSI_IRQ_INDEX] = {VFIO_PCI_MSI_IRQ_INDEX,
                                      VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1};
    f.irqs[VFIO_PCI_MSIX_IRQ_INDEX] = {VFIO_PCI_MSIX_IRQ_INDEX,
                                       VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 5};
    return f;
  }
};

class FakeVfioKernel : public VfioKernel {
 public:
  struct Group {
    uint32_t flags = VFIO_GROUP_FLAGS_VIABLE;
    std::vector<std::shared_ptr<FakePciFunction>> devices;
    bool open = false;
    int container = -1;
  };
  struct Container {
    bool iommu = false;
    std::vector<int> groups;
    std::map<uint64_t, uint64_t> dma;  // iova -> size
  };

  std::map<uint32_t, Group> groups;  // configure before use
  // The IOMMU as VFIO_IOMMU_GET_INFO reports it, and as MAP_DMA enforces it
  // (type1's rules: ENOSPC without mappings left, EINVAL outside the usable
  // ranges, ENOMEM when pinning passes RLIMIT_MEMLOCK without
  // CAP_IPC_LOCK). report_iova_ranges false / no dma_entry_limit: the
  // kernel does not report it (and then does not enforce it either here).
  bool report_iova_ranges = true;
  std::vector<VfioIovaRange> iova_ranges = {{0, (uint64_t{1} << 48) - 1}};
  std::optional<uint32_t> dma_entry_limit = 65535;
  LockedMemoryBudget memlock;  // unlimited; `locked` grows with every pinned map
  int iommu_info_calls = 0;
  bool dev_vfio_missing = false;
  bool unsafe_interrupts_refused = false;
  std::map<int, Container> containers;

  absl::StatusOr<UniqueFd> OpenContainer() override {
    if (dev_vfio_missing) {
      return absl::FailedPreconditionError(
          "/dev/vfio/vfio does not exist: load the VFIO driver (modprobe vfio-pci)");
    }
    UniqueFd fd = NewFd();
    containers[fd.get()] = Container{};
    return fd;
  }
  absl::StatusOr<UniqueFd> OpenGroup(uint32_t number) override {
    auto it = groups.find(number);
    if (it == groups.end())
      return absl::NotFoundError(absl::StrFormat("/dev/vfio/%u: ENOENT", number));
    if (it->second.open) return absl::FailedPreconditionError("EBUSY");
    it->second.open = true;
    UniqueFd fd = NewFd();
    group_fds_[fd.get()] = number;
    return fd;
  }
  absl::StatusOr<uint32_t> GroupFlags(int group_fd) override {
    Group* g = GroupOf(group_fd);
    if (!g) return absl::InvalidArgumentError("EBADF");
    return g->flags | (g->container >= 0 ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
  }
  absl::Status SetContainer(int group_fd, int container_fd) override {
    Group* g = GroupOf(group_fd);
    if (!g || !containers.count(container_fd)) return absl::InvalidArgumentError("EBADF");
    if (!(g->flags & VFIO_GROUP_FLAGS_VIABLE)) return absl::FailedPreconditionError("EPERM");
    if (g->container >= 0) return absl::InvalidArgumentError("EINVAL: already set");
    g->container = container_fd;
    containers[container_fd].groups.push_back(group_fd);
    return absl::OkStatus();
  }
  absl::Status SetIommuType1v2(int container_fd) override {
    auto it = containers.find(container_fd);
    if (it == containers.end() || it->second.groups.empty() || it->second.iommu) {
      return absl::InvalidArgumentError("VFIO_SET_IOMMU: EINVAL");
    }
    if (unsafe_interrupts_refused) {
      return UnremappedInterruptsError("VFIO_SET_IOMMU");  // the real kernel's EPERM
    }
    it->second.iommu = true;
    return absl::OkStatus();
  }
  absl::StatusOr<VfioIommuInfo> GetIommuInfo(int container_fd) override {
    auto it = containers.find(container_fd);
    if (it == containers.end() || !it->second.iommu) {
      return absl::InvalidArgumentError("VFIO_IOMMU_GET_INFO: EINVAL (no IOMMU set)");
    }
    ++iommu_info_calls;
    VfioIommuInfo info;
    info.flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
    info.iova_pgsizes = 0x40201000;  // 4 KiB, 2 MiB, 1 GiB
    info.has_iova_ranges = report_iova_ranges;
    if (report_iova_ranges) info.iova_ranges = iova_ranges;
    if (dma_entry_limit) {
      info.dma_avail = *dma_entry_limit - static_cast<uint32_t>(it->second.dma.size());
    }
    return info;
  }
  absl::StatusOr<LockedMemoryBudget> GetLockedMemoryBudget() override { return memlock; }
  absl::Status MapDma(int container_fd, uint64_t iova, uint64_t size, void*) override {
    auto it = containers.find(container_fd);
    if (it == containers.end() || !it->second.iommu || size == 0) {
      return absl::InvalidArgumentError("VFIO_IOMMU_MAP_DMA: EINVAL");
    }
    ++map_dma_calls;
    if (dma_entry_limit && it->second.dma.size() >= *dma_entry_limit) {
      return absl::ResourceExhaustedError("VFIO_IOMMU_MAP_DMA: ENOSPC");
    }
    if (report_iova_ranges) {
      bool inside = false;
      for (const VfioIovaRange& r : iova_ranges) {
        inside |= iova >= r.start && iova + (size - 1) <= r.last;
      }
      if (!inside) return absl::InvalidArgumentError("VFIO_IOMMU_MAP_DMA: EINVAL (iova)");
    }
    for (const auto& [base, len] : it->second.dma) {
      if (iova < base + len && base < iova + size) return absl::AlreadyExistsError("EEXIST");
    }
    if (!memlock.cap_ipc_lock && memlock.limit && memlock.locked + size > *memlock.limit) {
      return absl::ResourceExhaustedError("VFIO_IOMMU_MAP_DMA: ENOMEM");
    }
    memlock.locked += size;
    it->second.dma[iova] = size;
    return absl::OkStatus();
  }
  absl::Status UnmapDma(int container_fd, uint64_t iova, uint64_t size) override {
    auto it = containers.find(container_fd);
    if (it == containers.end()) return absl::InvalidArgumentError("EBADF");
    auto m = it->second.dma.find(iova);
    if (m == it->second.dma.end() || m->second != size) return absl::InvalidArgumentError("EINVAL");
    it->second.dma.erase(m);
    memlock.locked -= size;
    ++unmaps;
    journal.push_back("unmap dma");
    return absl::OkStatus();
  }
  absl::StatusOr<UniqueFd> GetDeviceFd(int group_fd, const std::string& name) override {
    Group* g = GroupOf(group_fd);
    if (!g || g->container < 0 || !containers[g->container].iommu) {
      return absl::InvalidArgumentError("VFIO_GROUP_GET_DEVICE_FD: EINVAL (no IOMMU set)");
    }
    for (auto& f : g->devices) {
      if (f->name == name) {
        UniqueFd fd = NewFd();
        device_fds_[fd.get()] = f;
        return fd;
      }
    }
    return absl::NotFoundError("VFIO_GROUP_GET_DEVICE_FD: ENODEV");
  }
  absl::StatusOr<VfioDeviceInfo> GetDeviceInfo(int fd) override {
    FakePciFunction* f = Dev(fd);
    if (!f) return absl::InvalidArgumentError("EBADF");
    return VfioDeviceInfo{f->device_flags, 9, 5};
  }
  absl::StatusOr<VfioRegionInfo> GetRegionInfo(int fd, uint32_t index) override {
    FakePciFunction* f = Dev(fd);
    if (!f || index >= f->regions.size()) return absl::InvalidArgumentError("EINVAL");
    VfioRegionInfo r = f->regions[index];
    r.index = index;
    if (r.size == 0) r.offset = FakePciFunction::RegionOffset(index);
    return r;
  }
  absl::StatusOr<VfioIrqInfo> GetIrqInfo(int fd, uint32_t index) override {
    FakePciFunction* f = Dev(fd);
    if (!f || index >= f->irqs.size()) return absl::InvalidArgumentError("EINVAL");
    VfioIrqInfo i = f->irqs[index];
    i.index = index;
    return i;
  }
  absl::Status SetIrqs(int fd, const VfioIrqSet& set) override {
    FakePciFunction* f = Dev(fd);
    if (!f || set.index > VFIO_PCI_MSIX_IRQ_INDEX) return absl::InvalidArgumentError("EINVAL");
    ++set_irqs_calls;
    if (on_set_irqs) on_set_irqs(set);
    auto& st = f->irq_state;
    const uint32_t max = f->irqs[set.index].count;
    if (!set.eventfds.empty() && set.eventfds.size() != set.count) {
      return absl::InvalidArgumentError("EINVAL: data size");
    }
    if (set.action == VFIO_IRQ_SET_ACTION_UNMASK) {
      if (set.index != VFIO_PCI_INTX_IRQ_INDEX || !st[0].enabled) {
        return absl::InvalidArgumentError("EINVAL: unmask without INTx");
      }
      st[0].unmask_fd = set.eventfds.empty() ? -1 : set.eventfds[0];
      return absl::OkStatus();
    }
    if (set.action != VFIO_IRQ_SET_ACTION_TRIGGER) return absl::InvalidArgumentError("EINVAL");
    auto& mine = st[set.index];
    if (set.count == 0 && set.eventfds.empty()) {  // disable
      journal.push_back(absl::StrFormat("irqs off %u", set.index));
      mine = {};
      return absl::OkStatus();
    }
    if (set.start + set.count > max) return absl::InvalidArgumentError("EINVAL: past count");
    if (mine.enabled == 0) {
      for (uint32_t other = 0; other <= VFIO_PCI_MSIX_IRQ_INDEX; ++other) {
        if (other != set.index && st[other].enabled) {
          return absl::InvalidArgumentError("EINVAL: another interrupt mode is on");
        }
      }
      mine.enabled = set.start + set.count;
      mine.fds.assign(mine.enabled, -1);
    } else if (set.start + set.count > mine.enabled) {
      return absl::InvalidArgumentError("EINVAL: past enabled vectors");
    }
    for (uint32_t i = 0; i < set.count; ++i) mine.fds[set.start + i] = set.eventfds[i];
    return absl::OkStatus();
  }
  absl::Status Reset(int fd) override {
    FakePciFunction* f = Dev(fd);
    if (!f || !(f->device_flags & VFIO_DEVICE_FLAGS_RESET))
      return absl::InvalidArgumentError("EINVAL");
    ++f->resets;
    journal.push_back("reset");
    return absl::OkStatus();
  }
  absl::StatusOr<size_t> Read(int fd, uint64_t offset, std::span<uint8_t> data) override {
    FakePciFunction* f = Dev(fd);
    if (!f) return absl::InvalidArgumentError("EBADF");
    const uint32_t index = static_cast<uint32_t>(offset >> 40);
    const uint64_t at = offset & ((uint64_t{1} << 40) - 1);
    if (index == VFIO_PCI_ROM_REGION_INDEX) {
      ++f->rom_reads;
      const uint64_t size = f->regions[index].size;
      if (at >= size) return absl::InvalidArgumentError("EINVAL: past the ROM region");
      const size_t n = static_cast<size_t>(std::min<uint64_t>(data.size(), size - at));
      for (size_t i = 0; i < n; ++i) {
        data[i] = at + i < f->rom_image.size() ? f->rom_image[at + i] : 0xff;
      }
      return n;
    }
    const std::vector<uint8_t>* bytes = index == VFIO_PCI_CONFIG_REGION_INDEX ? &f->config
                                        : index < 6                           ? &f->bar_data[index]
                                                                              : nullptr;
    if (!bytes || at + data.size() > bytes->size()) return absl::InvalidArgumentError("EINVAL");
    std::memcpy(data.data(), bytes->data() + at, data.size());
    return data.size();
  }
  absl::StatusOr<size_t> Write(int fd, uint64_t offset, std::span<const uint8_t> data) override {
    FakePciFunction* f = Dev(fd);
    if (!f) return absl::InvalidArgumentError("EBADF");
    const uint32_t index = static_cast<uint32_t>(offset >> 40);
    const uint64_t at = offset & ((uint64_t{1} << 40) - 1);
    std::vector<uint8_t>* bytes = index == VFIO_PCI_CONFIG_REGION_INDEX ? &f->config
                                  : index < 6                           ? &f->bar_data[index]
                                                                        : nullptr;
    if (!bytes || at + data.size() > bytes->size()) return absl::InvalidArgumentError("EINVAL");
    if (index == VFIO_PCI_CONFIG_REGION_INDEX) {
      f->config_writes.push_back({at, std::vector<uint8_t>(data.begin(), data.end())});
      if (at == 4 && data.size() >= 2) {
        journal.push_back(absl::StrFormat("command 0x%04x", data[0] | data[1] << 8));
      }
    }
    std::memcpy(bytes->data() + at, data.data(), data.size());
    return data.size();
  }
  absl::StatusOr<Mapping> Map(int fd, uint64_t offset, uint64_t size) override {
    FakePciFunction* f = Dev(fd);
    if (!f) return absl::InvalidArgumentError("EBADF");
    const uint32_t index = static_cast<uint32_t>(offset >> 40);
    const uint64_t at = offset & ((uint64_t{1} << 40) - 1);
    if (index >= 6) return absl::InvalidArgumentError("EINVAL");
    const VfioRegionInfo& r = f->regions[index];
    if (!(r.flags & VFIO_REGION_INFO_FLAG_MMAP) || at + size > r.size) {
      return absl::InvalidArgumentError("mmap: EINVAL");
    }
    if (r.sparse_areas) {
      bool inside = false;
      for (const auto& a : *r.sparse_areas)
        inside |= at >= a.offset && at + size <= a.offset + a.size;
      if (!inside) return absl::PermissionDeniedError("mmap: outside the sparse areas");
    }
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return absl::InternalError("mmap");
    f->maps.push_back({at, size});
    return Mapping(p, size);
  }

  FakePciFunction* Dev(int fd) {
    auto it = device_fds_.find(fd);
    return it == device_fds_.end() ? nullptr : it->second.get();
  }
  int set_irqs_calls = 0;
  int map_dma_calls = 0;  // reached the kernel's checks
  int unmaps = 0;
  // What the device saw, in order: "irqs off N", "reset", "unmap dma",
  // "command 0xNNNN" (a write of the command register).
  std::vector<std::string> journal;
  // Called with every SET_IRQS, before it takes effect.
  std::function<void(const VfioIrqSet&)> on_set_irqs;

 private:
  static UniqueFd NewFd() { return UniqueFd(::eventfd(0, EFD_CLOEXEC)); }
  Group* GroupOf(int fd) {
    auto it = group_fds_.find(fd);
    return it == group_fds_.end() ? nullptr : &groups[it->second];
  }
  std::map<int, uint32_t> group_fds_;
  std::map<int, std::shared_ptr<FakePciFunction>> device_fds_;
};

}  // namespace skiff::vfio
