#include "devices/vfio/vfio_pci_device.h"

#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "devices/vfio/teardown_log.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"

namespace skiff::vfio {
namespace {

using pci::PciConfigSpace;

constexpr uint8_t kCapIdMsi = 0x05;
constexpr uint32_t kMaxCapabilities = 48;  // (256 - 64) / 4: a longer list loops
constexpr uint8_t kMsixControlHighMask =
    (pci::kMsixControlEnable | pci::kMsixControlFunctionMask) >> 8;

uint32_t AllOnes(uint32_t size) { return size >= 4 ? 0xffffffff : (uint32_t{1} << (8 * size)) - 1; }

bool InRange(uint64_t offset, uint64_t begin, uint64_t size) {
  return offset >= begin && offset - begin < size;
}

// The expansion ROM while it decodes: reads go to the device (weakly held:
// the bus may outlive it), writes are dropped as a ROM drops them.
class RomWindow : public BusDevice {
 public:
  explicit RomWindow(std::weak_ptr<VfioPciDevice> device) : device_(std::move(device)) {}
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    if (auto device = device_.lock()) return device->ReadRom(offset, data);
    std::fill(data.begin(), data.end(), 0xff);
  }
  void Write(uint64_t, std::span<const uint8_t>) override {}

 private:
  const std::weak_ptr<VfioPciDevice> device_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<VfioPciDevice>> VfioPciDevice::Create(
    std::shared_ptr<VfioContainer> container, VfioDevice device, VfioPciEnv env) {
  if (container == nullptr) return absl::InvalidArgumentError("vfio: no container");
  if (env.page_size == 0 || !std::has_single_bit(env.page_size)) {
    return absl::InvalidArgumentError("vfio: page size must be a power of two");
  }
  const std::string name = device.name;
  auto dev = std::make_shared<VfioPciDevice>(std::move(container), std::move(device), env);
  absl::Status status = dev->Init();
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrFormat("vfio device %s: %s", name, status.message()));
  }
  if (env.event_loop != nullptr) {
    std::weak_ptr<VfioPciDevice> weak = dev;
    for (size_t i = 0; i < dev->parked_.size(); ++i) {
      const int fd = dev->parked_[i].get();
      RETURN_IF_ERROR(env.event_loop->Add(fd, EPOLLIN, [weak, fd](uint32_t) {
        if (auto self = weak.lock()) {
          self->DrainParked();
        } else {
          uint64_t count;
          (void)!::read(fd, &count, sizeof(count));
        }
      }));
    }
  }
  return dev;
}

VfioPciDevice::VfioPciDevice(std::shared_ptr<VfioContainer> container, VfioDevice device,
                             VfioPciEnv env)
    : container_(std::move(container)),
      kernel_(container_->kernel()),
      device_(std::move(device)),
      env_(env),
      bars_config_(pci::PciIds{}) {}

VfioPciDevice::~VfioPciDevice() {
  // The order the kernel wants, each step timed (TeardownLog) so a slow or
  // stuck exit names its step. vCPUs and the I/O thread are stopped by now.
  // What VFIO itself does when it releases a device (vfio_pci_core_disable:
  // bus mastering off, interrupts off, reset) comes first, while every
  // mapping and fd it might touch still exists; then what only Skiff holds
  // goes, each thing before what it refers to: KVM slots before the BAR
  // mmaps they point into, irqfds before their eventfds, and the device fd
  // last. Guest RAM leaves the IOMMU afterwards, in the container, once no
  // device of it can DMA (docs/vfio.md, "Teardown").
  std::lock_guard lock(mutex_);
  TeardownLog log("device " + device_.name);
  log.Step("parked vectors unwatched", [&] {
    if (env_.event_loop == nullptr) return;
    for (const UniqueFd& fd : parked_) (void)env_.event_loop->Remove(fd.get());
  });
  log.Step("bus mastering off", [&] {
    // The function stops DMA before anything it may write to goes away.
    uint8_t command[2];
    if (!ReadHardware(pci::kCommand, command).ok()) return;
    command[0] &= static_cast<uint8_t>(~pci::kCommandBusMaster);
    WriteHardware(pci::kCommand, command);
  });
  log.Step("interrupts off", [&] {
    // VFIO frees the host vectors and stops signalling our eventfds.
    if (!msix_fds_.empty())
      SetIrqsLogged({VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, {}});
    if (!msi_fds_.empty())
      SetIrqsLogged({VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, {}});
    msix_fds_.clear();
    msi_fds_.clear();
    DisableIntxLocked();
  });
  log.Step("ROM window removed", [&] {
    if (rom_mapped_) (void)env_.rom->mmio_bus->Unregister(*rom_mapped_);
    rom_mapped_.reset();
  });
  log.Step("BAR slots removed", [&] {
    for (Bar& bar : bars_) UnmapBarLocked(bar);
  });
  log.Step("reset", [&] {
    if (!(device_.info.flags & VFIO_DEVICE_FLAGS_RESET)) return;
    absl::Status status = kernel_.Reset(device_.fd.get());
    if (!status.ok()) LOG_WARN("vfio", "%s: reset on exit: %s", device_.name, status.message());
  });
  log.Step("irqfds deassigned", [&] {
    // KVM lets go of each eventfd before it is closed: INTx here, each
    // MSI/MSI-X vector (irqfd, then route, then eventfd) in its destructor.
    if (intx_trigger_ && env_.irqfds != nullptr && env_.intx_gsi) {
      (void)env_.irqfds->RemoveIrqFd(intx_trigger_.get(), *env_.intx_gsi);
    }
    msix_.reset();
    msi_.reset();
  });
  log.Step("eventfds closed", [&] {
    intx_trigger_.Reset();
    intx_resample_.Reset();
    parked_.clear();
  });
  log.Step("BAR mmaps unmapped", [&] {
    for (Bar& bar : bars_) bar.mappings.clear();
  });
  // VFIO releases the device: it disables it once more and tries its own
  // reset, which is where a slow function spends its time.
  log.Step("device fd closed", [&] { device_.fd.Reset(); });
}

absl::Status VfioPciDevice::Init() {
  // A clean device whatever the previous owner left behind.
  if (device_.info.flags & VFIO_DEVICE_FLAGS_RESET) {
    absl::Status status = kernel_.Reset(device_.fd.get());
    if (!status.ok()) LOG_WARN("vfio", "%s: reset on start: %s", device_.name, status.message());
  }
  ASSIGN_OR_RETURN(config_region_,
                   kernel_.GetRegionInfo(device_.fd.get(), VFIO_PCI_CONFIG_REGION_INDEX));
  if (config_region_.size < pci::kLegacyConfigSpaceSize) {
    return absl::FailedPreconditionError(
        absl::StrFormat("config region is %u bytes; a PCI function has 256", config_region_.size));
  }
  uint8_t header_type = 0;
  RETURN_IF_ERROR(ReadHardware(pci::kHeaderType, {&header_type, 1}));
  if ((header_type & 0x7f) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "header type 0x%02x: only type-0 functions (not bridges) can be passed through",
        header_type));
  }
  RETURN_IF_ERROR(SetUpBars());
  if (env_.rom) RETURN_IF_ERROR(SetUpRom());
  RETURN_IF_ERROR(FindCapabilities());
  // Direct pieces, now that the MSI-X table and PBA are known.
  for (int i = 0; i < pci::kNumBars; ++i) {
    Bar& bar = bars_[i];
    std::optional<pci::BarInfo> info = bars_config_.GetBar(i);
    if (!info || info->type == pci::BarType::kIo || env_.slots == nullptr) continue;
    std::vector<BarPiece> trapped;
    if (i == msix_bar_) {
      trapped.push_back({msix_table_offset_, msix_->table_size()});
      trapped.push_back({msix_pba_offset_, msix_->pba_size()});
    }
    for (const BarPiece& piece :
         DirectPieces(bar.region.size, MmapAreas(bar.region), trapped, env_.page_size)) {
      auto mapping = kernel_.Map(device_.fd.get(), bar.region.offset + piece.offset, piece.size);
      if (!mapping.ok()) {
        LOG_WARN("vfio", "%s BAR %d: [0x%x, +0x%x) stays trapped: %s", device_.name, i,
                 piece.offset, piece.size, mapping.status().message());
        continue;
      }
      bar.pieces.push_back(piece);
      bar.mappings.push_back(*std::move(mapping));
    }
    uint64_t direct = 0;
    for (const BarPiece& piece : bar.pieces) direct += piece.size;
    LOG_INFO("vfio", "%s BAR %d: 0x%x bytes, %d part(s) (0x%x bytes) mapped directly%s",
             device_.name, i, bar.region.size, static_cast<int>(bar.pieces.size()), direct,
             i == msix_bar_ ? ", MSI-X table and PBA trapped" : "");
  }
  const size_t parked = msix_vectors() + (msi_ ? 32 : 0);
  for (size_t i = 0; i < parked; ++i) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) return absl::InternalError(absl::StrFormat("eventfd: %s", std::strerror(errno)));
    parked_.push_back(std::move(fd));
  }
  RETURN_IF_ERROR(SetUpIntx());
  return absl::OkStatus();
}

absl::Status VfioPciDevice::ReadHardware(uint32_t offset, std::span<uint8_t> data) {
  if (offset > config_region_.size || data.size() > config_region_.size - offset) {
    std::fill(data.begin(), data.end(), 0xff);
    return absl::OutOfRangeError(absl::StrFormat("config offset 0x%x past the region", offset));
  }
  ASSIGN_OR_RETURN(size_t n, kernel_.Read(device_.fd.get(), config_region_.offset + offset, data));
  if (n != data.size()) {
    std::fill(data.begin(), data.end(), 0xff);
    return absl::InternalError(absl::StrFormat("config read at 0x%x: short (%u bytes)", offset, n));
  }
  return absl::OkStatus();
}

void VfioPciDevice::WriteHardware(uint32_t offset, std::span<const uint8_t> data) {
  if (offset > config_region_.size || data.size() > config_region_.size - offset) return;
  auto n = kernel_.Write(device_.fd.get(), config_region_.offset + offset, data);
  if (!n.ok()) LOG_DEBUG("vfio", "%s: %s", device_.name, n.status().message());
}

absl::Status VfioPciDevice::SetUpBars() {
  for (int i = 0; i < pci::kNumBars; ++i) {
    ASSIGN_OR_RETURN(bars_[i].region,
                     kernel_.GetRegionInfo(device_.fd.get(), VFIO_PCI_BAR0_REGION_INDEX + i));
  }
  for (int i = 0; i < pci::kNumBars; ++i) {
    const VfioRegionInfo& region = bars_[i].region;
    if (region.size == 0) continue;
    uint32_t low = 0;
    RETURN_IF_ERROR(ReadHardware(pci::kBar0 + 4 * i, {reinterpret_cast<uint8_t*>(&low), 4}));
    pci::BarSpec spec;
    spec.size = region.size;
    if (low & pci::kBarIoSpace) {
      spec.type = pci::BarType::kIo;
    } else {
      spec.type = (low & 0x6) == pci::kBarMem64 ? pci::BarType::kMemory64 : pci::BarType::kMemory32;
      spec.prefetchable = low & pci::kBarPrefetchable;
    }
    absl::Status status = bars_config_.AddBar(i, spec);
    if (!status.ok()) {
      // The guest sees no BAR there rather than one it cannot use.
      LOG_WARN("vfio", "%s: BAR %d hidden: %s", device_.name, i, status.message());
      bars_[i].region.size = 0;
      continue;
    }
    if (spec.type == pci::BarType::kMemory64) ++i;  // the upper half
  }
  return absl::OkStatus();
}

absl::Status VfioPciDevice::FindCapabilities() {
  uint8_t status = 0, next = 0;
  RETURN_IF_ERROR(ReadHardware(pci::kStatus, {&status, 1}));
  if (!(status & pci::kStatusCapList)) return absl::OkStatus();
  RETURN_IF_ERROR(ReadHardware(pci::kCapabilitiesPointer, {&next, 1}));
  for (uint32_t hops = 0; next != 0 && hops < kMaxCapabilities; ++hops) {
    const uint32_t cap = next & ~3u;
    if (cap < pci::kHeaderEnd) break;  // points into the header: a broken list
    uint8_t id_next[2];
    RETURN_IF_ERROR(ReadHardware(cap, id_next));
    if (id_next[0] == pci::kCapIdMsix && msix_cap_ == 0 && env_.msi != nullptr) {
      RETURN_IF_ERROR(SetUpMsix(cap));
    } else if (id_next[0] == kCapIdMsi && msi_cap_ == 0 && env_.msi != nullptr) {
      uint16_t control = 0;
      RETURN_IF_ERROR(ReadHardware(cap + 2, {reinterpret_cast<uint8_t*>(&control), 2}));
      auto msi = MsiCapability::Create(control, *env_.msi, env_.bdf);
      if (!msi.ok()) return msi.status();
      msi_ = *std::move(msi);
      msi_cap_ = cap;
    }
    next = id_next[1];
  }
  return absl::OkStatus();
}

absl::Status VfioPciDevice::SetUpMsix(uint32_t cap) {
  uint8_t raw[pci::kMsixCapabilitySize];
  RETURN_IF_ERROR(ReadHardware(cap, raw));
  auto le32 = [&](uint32_t at) {
    uint32_t v;
    std::memcpy(&v, raw + at, 4);
    return v;
  };
  const uint16_t control = static_cast<uint16_t>(raw[2] | raw[3] << 8);
  const uint32_t n = (control & pci::kMsixControlTableSizeMask) + 1;
  const uint32_t table = le32(pci::kMsixTableOffsetBir), pba = le32(pci::kMsixPbaOffsetBir);
  const int bir = static_cast<int>(table & 7);
  msix_table_offset_ = table & ~7u;
  msix_pba_offset_ = pba & ~7u;
  if (bir >= pci::kNumBars || static_cast<int>(pba & 7) != bir || bars_[bir].region.size == 0 ||
      msix_table_offset_ + uint64_t{n} * pci::kMsixEntrySize > bars_[bir].region.size ||
      msix_pba_offset_ + 8 * ((n + 63) / 64) > bars_[bir].region.size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "MSI-X table (BAR %d + 0x%x, %u vectors) or PBA (BAR %d + 0x%x) outside its BAR", bir,
        msix_table_offset_, n, pba & 7, msix_pba_offset_));
  }
  ASSIGN_OR_RETURN(VfioIrqInfo irq, kernel_.GetIrqInfo(device_.fd.get(), VFIO_PCI_MSIX_IRQ_INDEX));
  if (irq.count < n || !(irq.flags & VFIO_IRQ_INFO_EVENTFD)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "MSI-X: the table has %u vectors but VFIO offers %u with eventfds", n, irq.count));
  }
  auto table_or = pci::MsixTable::Create(n, *env_.msi, env_.bdf);
  if (!table_or.ok()) return table_or.status();
  msix_ = std::shared_ptr<pci::MsixTable>(*std::move(table_or));
  msix_bar_ = bir;
  msix_cap_ = cap;
  return absl::OkStatus();
}

absl::Status VfioPciDevice::SetUpIntx() {
  uint8_t pin = 0;
  RETURN_IF_ERROR(ReadHardware(pci::kInterruptPin, {&pin, 1}));
  if (pin == 0 || env_.irqfds == nullptr || !env_.intx_gsi) return absl::OkStatus();
  ASSIGN_OR_RETURN(VfioIrqInfo irq, kernel_.GetIrqInfo(device_.fd.get(), VFIO_PCI_INTX_IRQ_INDEX));
  if (irq.count == 0 || !(irq.flags & VFIO_IRQ_INFO_EVENTFD)) return absl::OkStatus();
  UniqueFd trigger(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  UniqueFd resample(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!trigger || !resample) {
    return absl::InternalError(absl::StrFormat("eventfd: %s", std::strerror(errno)));
  }
  RETURN_IF_ERROR(env_.irqfds->AddIrqFd(trigger.get(), *env_.intx_gsi, resample.get()));
  intx_trigger_ = std::move(trigger);
  intx_resample_ = std::move(resample);
  std::lock_guard lock(mutex_);
  return EnableIntxLocked();
}

absl::Status VfioPciDevice::EnableIntxLocked() {
  if (!intx_trigger_ || intx_enabled_) return absl::OkStatus();
  RETURN_IF_ERROR(kernel_.SetIrqs(
      device_.fd.get(),
      {VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, {intx_trigger_.get()}}));
  // VFIO masks the line when it fires; the guest's EOI (the resample fd)
  // unmasks it in the kernel, with no Skiff hop.
  absl::Status status = kernel_.SetIrqs(
      device_.fd.get(),
      {VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, 0, 1, {intx_resample_.get()}});
  if (!status.ok()) {
    SetIrqsLogged({VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, {}});
    return status;
  }
  intx_enabled_ = true;
  return absl::OkStatus();
}

void VfioPciDevice::DisableIntxLocked() {
  if (!intx_enabled_) return;
  SetIrqsLogged({VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, {}});
  intx_enabled_ = false;
}

bool VfioPciDevice::intx_enabled() const {
  std::lock_guard lock(mutex_);
  return intx_enabled_;
}

void VfioPciDevice::SetIrqsLogged(const VfioIrqSet& set) {
  absl::Status status = kernel_.SetIrqs(device_.fd.get(), set);
  if (!status.ok()) LOG_WARN("vfio", "%s: %s", device_.name, status.message());
}

VfioPciDevice::ByteKind VfioPciDevice::KindOf(uint32_t offset) const {
  if (offset >= pci::kBar0 && offset < pci::kBarsEnd) return ByteKind::kBar;
  if (offset >= pci::kExpansionRom && offset < pci::kExpansionRom + 4) {
    return rom_ ? ByteKind::kRom : ByteKind::kHidden;
  }
  if (offset == pci::kInterruptLine) return ByteKind::kScratch;
  if (offset < 4 || (offset >= pci::kRevisionId && offset < pci::kCacheLineSize) ||
      offset == pci::kHeaderType || (offset >= pci::kBarsEnd && offset < pci::kExpansionRom) ||
      (offset >= pci::kCapabilitiesPointer && offset < pci::kHeaderEnd)) {
    return ByteKind::kReadOnly;
  }
  if (msix_cap_ != 0 && InRange(offset, msix_cap_, pci::kMsixCapabilitySize)) {
    return ByteKind::kMsix;
  }
  if (msi_cap_ != 0 && InRange(offset, msi_cap_, msi_->length())) return ByteKind::kMsi;
  return ByteKind::kHardware;
}

uint32_t VfioPciDevice::ReadConfig(uint32_t offset, uint32_t size) {
  if (!PciConfigSpace::ValidAccess(offset, size)) return AllOnes(size);
  uint8_t hw[4] = {0xff, 0xff, 0xff, 0xff};
  const uint32_t dword = offset & ~3u;
  if (dword < config_region_.size) (void)ReadHardware(dword, hw);
  std::lock_guard lock(mutex_);
  uint32_t value = 0;
  for (uint32_t i = 0; i < size; ++i) {
    const uint32_t at = offset + i;
    uint8_t byte = hw[at & 3];
    switch (KindOf(at)) {
      case ByteKind::kBar:
        byte = static_cast<uint8_t>(bars_config_.Read(at, 1));
        break;
      case ByteKind::kRom:
        byte = static_cast<uint8_t>(rom_->Read() >> (8 * (at - pci::kExpansionRom)));
        break;
      case ByteKind::kHidden:
        byte = 0;
        break;
      case ByteKind::kScratch:
        byte = interrupt_line_;
        break;
      case ByteKind::kMsix:
        if (at == msix_cap_ + pci::kMsixMessageControl + 1) {
          byte = static_cast<uint8_t>((byte & ~kMsixControlHighMask) | (msix_control_ >> 8));
        }
        break;
      case ByteKind::kMsi:
        if (at - msi_cap_ >= 2) byte = msi_->ReadByte(at - msi_cap_);
        break;
      case ByteKind::kReadOnly:
      case ByteKind::kHardware:
        if (at == pci::kCommand) {
          // Decode bits as the guest set them (the root maps BARs by them).
          const uint8_t decode = pci::kCommandIo | pci::kCommandMemory;
          byte = static_cast<uint8_t>((byte & ~decode) | (bars_config_.command() & decode));
        } else if (at == pci::kInterruptPin && !intx_trigger_) {
          byte = 0;  // no INTx wiring for this function
        }
        break;
    }
    value |= uint32_t{byte} << (8 * i);
  }
  return value;
}

void VfioPciDevice::WriteConfig(uint32_t offset, uint32_t size, uint32_t value) {
  if (!PciConfigSpace::ValidAccess(offset, size)) return;
  value &= AllOnes(size);
  std::lock_guard lock(mutex_);
  if (KindOf(offset) == ByteKind::kBar) {
    // One BAR register per dword: PciConfigSpace applies the sizing rules.
    bars_config_.Write(offset, size, value);
    return;
  }
  bool msix_touched = false, msi_touched = false;
  uint8_t hw[4];
  uint32_t hw_start = 0, hw_len = 0;
  auto flush = [&] {
    if (hw_len > 0) WriteHardware(hw_start, {hw, hw_len});
    hw_len = 0;
  };
  for (uint32_t i = 0; i < size; ++i) {
    const uint32_t at = offset + i;
    const uint8_t byte = static_cast<uint8_t>(value >> (8 * i));
    const ByteKind kind = KindOf(at);
    if (kind != ByteKind::kHardware) flush();
    switch (kind) {
      case ByteKind::kHardware:
        if (at == pci::kCommand) {
          const bool was_on = bars_config_.command() & pci::kCommandMemory;
          bars_config_.Write(at, 1, byte);
          // Leave the BARs before the hardware stops decoding them, so no
          // vCPU faults on a mapping VFIO has revoked. The root unmaps
          // (and later remaps) them on the bus after this write.
          if (was_on && !(bars_config_.command() & pci::kCommandMemory)) {
            for (Bar& bar : bars_) UnmapBarLocked(bar);
          }
        } else if (at == pci::kCommand + 1) {
          bars_config_.Write(at, 1, byte);
        }
        if (hw_len == 0) hw_start = at;
        hw[hw_len++] = byte;
        break;
      case ByteKind::kRom:
        // Emulated only: VFIO enables the host's ROM itself when it reads it.
        rom_->Write(at - pci::kExpansionRom, 1, byte);
        break;
      case ByteKind::kScratch:
        interrupt_line_ = byte;
        break;
      case ByteKind::kMsix:
        if (at == msix_cap_ + pci::kMsixMessageControl + 1) {
          msix_control_ = static_cast<uint16_t>((byte & kMsixControlHighMask) << 8);
          msix_touched = true;
        }
        break;
      case ByteKind::kMsi:
        if (at - msi_cap_ >= 2) {
          msi_->WriteByte(at - msi_cap_, byte);
          msi_touched = true;
        }
        break;
      case ByteKind::kBar:
      case ByteKind::kHidden:
      case ByteKind::kReadOnly:
        break;  // read-only to the guest
    }
  }
  flush();
  // The ROM decodes by its enable bit and the memory bit: either may have changed.
  SyncRomLocked();
  if (msix_touched) msix_->SetControl(msix_control_);
  if (msi_touched) msi_->Commit();
  if (msix_touched || msi_touched) SyncInterruptsLocked();
}

void VfioPciDevice::SyncInterruptsLocked() {
  const bool msix_on = msix_ && msix_->enabled();
  const bool msi_on = !msix_on && msi_ && msi_->enabled();
  if (!msix_on && !msix_fds_.empty()) {
    SetIrqsLogged({VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, {}});
    msix_fds_.clear();
  }
  if (!msi_on && !msi_fds_.empty()) {
    SetIrqsLogged({VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, {}});
    msi_fds_.clear();
  }
  if (msix_on || msi_on) {
    // VFIO runs one interrupt mode at a time.
    DisableIntxLocked();
    if (msix_on) SyncMsixLocked();
    if (msi_on) SyncMsiLocked();
  } else {
    absl::Status status = EnableIntxLocked();
    if (!status.ok()) LOG_WARN("vfio", "%s: INTx: %s", device_.name, status.message());
  }
}

void VfioPciDevice::SyncMsixLocked() {
  const uint32_t n = msix_->num_vectors();
  std::vector<int> want(n);
  for (uint32_t i = 0; i < n; ++i) {
    const int irqfd = msix_->IrqFd(i);
    want[i] = irqfd >= 0 ? irqfd : parked_[i].get();
  }
  if (msix_fds_.empty()) {
    // Enabling MSI-X in VFIO allocates the host vectors: all at once.
    absl::Status status =
        kernel_.SetIrqs(device_.fd.get(), {VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0,
                                           n, std::vector<int32_t>(want.begin(), want.end())});
    if (!status.ok()) {
      LOG_WARN("vfio", "%s: enabling MSI-X: %s", device_.name, status.message());
      return;
    }
    msix_fds_ = std::move(want);
    return;
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (want[i] == msix_fds_[i]) continue;
    absl::Status status = kernel_.SetIrqs(
        device_.fd.get(), {VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, i, 1, {want[i]}});
    if (status.ok()) {
      msix_fds_[i] = want[i];
    } else {
      LOG_WARN("vfio", "%s: MSI-X vector %u: %s", device_.name, i, status.message());
    }
  }
}

void VfioPciDevice::SyncMsiLocked() {
  const uint32_t n = msi_->enabled_vectors();
  const size_t base = msix_vectors();
  std::vector<int> want(n);
  for (uint32_t i = 0; i < n; ++i) {
    const int irqfd = msi_->IrqFd(i);
    want[i] = irqfd >= 0 ? irqfd : parked_[base + i].get();
  }
  if (msi_fds_.size() != n) {
    // A new vector count needs MSI off and on again in VFIO.
    if (!msi_fds_.empty()) {
      SetIrqsLogged({VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, {}});
      msi_fds_.clear();
    }
    absl::Status status =
        kernel_.SetIrqs(device_.fd.get(), {VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0,
                                           n, std::vector<int32_t>(want.begin(), want.end())});
    if (!status.ok()) {
      LOG_WARN("vfio", "%s: enabling MSI: %s", device_.name, status.message());
      return;
    }
    msi_fds_ = std::move(want);
    return;
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (want[i] == msi_fds_[i]) continue;
    absl::Status status = kernel_.SetIrqs(
        device_.fd.get(), {VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, i, 1, {want[i]}});
    if (status.ok()) msi_fds_[i] = want[i];
  }
}

int VfioPciDevice::parked_fd(uint32_t vector) const {
  return vector < parked_.size() ? parked_[vector].get() : -1;
}

void VfioPciDevice::DrainParked() {
  const uint32_t n_msix = msix_vectors();
  for (uint32_t i = 0; i < parked_.size(); ++i) {
    uint64_t count = 0;
    if (::read(parked_[i].get(), &count, sizeof(count)) != sizeof(count) || count == 0) continue;
    if (i < n_msix) {
      msix_->Trigger(i);  // pending bit while masked, delivered if not
    } else {
      std::lock_guard lock(mutex_);
      msi_->Park(i - n_msix);
    }
  }
}

std::optional<pci::BarInfo> VfioPciDevice::GetBar(int index) const {
  std::lock_guard lock(mutex_);
  return bars_config_.GetBar(index);
}

std::vector<BarPiece> VfioPciDevice::direct_pieces(int index) const {
  if (index < 0 || index >= pci::kNumBars) return {};
  std::lock_guard lock(mutex_);
  return bars_[index].pieces;
}

void VfioPciDevice::ReadBar(int index, uint64_t offset, std::span<uint8_t> data) {
  if (index < 0 || index >= pci::kNumBars) return;
  if (index == msix_bar_) {
    if (InRange(offset, msix_table_offset_, msix_->table_size())) {
      return msix_->ReadTable(offset - msix_table_offset_, data);
    }
    if (InRange(offset, msix_pba_offset_, msix_->pba_size())) {
      return msix_->ReadPba(offset - msix_pba_offset_, data);
    }
  }
  const VfioRegionInfo& region = bars_[index].region;
  auto n = kernel_.Read(device_.fd.get(), region.offset + offset, data);
  if (!n.ok() || *n != data.size()) std::fill(data.begin(), data.end(), 0xff);
}

void VfioPciDevice::WriteBar(int index, uint64_t offset, std::span<const uint8_t> data) {
  if (index < 0 || index >= pci::kNumBars) return;
  if (index == msix_bar_) {
    if (InRange(offset, msix_table_offset_, msix_->table_size())) {
      msix_->WriteTable(offset - msix_table_offset_, data);
      std::lock_guard lock(mutex_);
      if (!msix_fds_.empty()) SyncMsixLocked();  // a mask or message change
      return;
    }
    if (InRange(offset, msix_pba_offset_, msix_->pba_size())) return;  // read-only
  }
  const VfioRegionInfo& region = bars_[index].region;
  (void)kernel_.Write(device_.fd.get(), region.offset + offset, data);
}

void VfioPciDevice::BarMapped(int index, std::optional<uint64_t> address) {
  if (index < 0 || index >= pci::kNumBars) return;
  std::lock_guard lock(mutex_);
  Bar& bar = bars_[index];
  UnmapBarLocked(bar);
  if (address) MapBarLocked(index, bar, *address);
}

void VfioPciDevice::MapBarLocked(int index, Bar& bar, uint64_t address) {
  if (env_.slots == nullptr) return;
  for (size_t k = 0; k < bar.pieces.size(); ++k) {
    const BarPiece& piece = bar.pieces[k];
    auto slot =
        env_.slots->AddMemorySlot(address + piece.offset, piece.size, bar.mappings[k].data());
    if (!slot.ok()) {
      // The piece stays trapped: slower, still correct.
      LOG_WARN("vfio", "%s BAR %d: %s", device_.name, index, slot.status().message());
      continue;
    }
    bar.slots.push_back(*slot);
  }
  bar.address = address;
}

absl::Status VfioPciDevice::SetUpRom() {
  if (env_.rom->mmio_bus == nullptr) return absl::InvalidArgumentError("rom=on without an MMIO bus");
  if (const auto& image = env_.rom->image) {
    ASSIGN_OR_RETURN(const uint32_t size, RomBarSize(image->size()));
    rom_.emplace(size);
    LOG_INFO("vfio", "%s: expansion ROM from a file: 0x%x bytes in a 0x%x-byte ROM BAR",
             device_.name, image->size(), size);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(rom_region_,
                   kernel_.GetRegionInfo(device_.fd.get(), VFIO_PCI_ROM_REGION_INDEX));
  ASSIGN_OR_RETURN(const uint32_t size, RomBarSize(rom_region_.size));
  if (!(rom_region_.flags & VFIO_REGION_INFO_FLAG_READ)) {
    return absl::FailedPreconditionError("rom=on, but VFIO's ROM region is not readable");
  }
  rom_.emplace(size);
  LOG_INFO("vfio", "%s: expansion ROM exposed: 0x%x bytes in a 0x%x-byte ROM BAR, reads forwarded",
           device_.name, rom_region_.size, size);
  return absl::OkStatus();
}

uint32_t VfioPciDevice::rom_size() const { return rom_ ? rom_->size() : 0; }

std::optional<uint64_t> VfioPciDevice::rom_mapped_address() const {
  std::lock_guard lock(mutex_);
  return rom_mapped_;
}

void VfioPciDevice::ReadRom(uint64_t offset, std::span<uint8_t> data) {
  // rom_ and rom_region_ are fixed after Init: no lock.
  std::fill(data.begin(), data.end(), 0xff);
  if (!rom_ || offset >= rom_->size() || data.size() > rom_->size() - offset) return;
  if (const auto& image = env_.rom->image) {
    for (size_t i = 0; i < data.size() && offset + i < image->size(); ++i) {
      data[i] = (*image)[offset + i];
    }
    return;
  }
  // The BAR is a power of two; VFIO's region (and the image in it) may end
  // before it. What lies past the region reads as an absent ROM does.
  if (offset >= rom_region_.size) return;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(data.size(), rom_region_.size - offset));
  auto got = kernel_.Read(device_.fd.get(), rom_region_.offset + offset, data.first(n));
  if (!got.ok() || *got > n) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  std::fill(data.begin() + *got, data.end(), 0xff);
}

void VfioPciDevice::SyncRomLocked() {
  if (!rom_) return;
  std::optional<uint32_t> want = rom_->Decoding(bars_config_.command() & pci::kCommandMemory);
  if (want) {
    const VfioRomEnv& rom = *env_.rom;
    const uint64_t at = *want;
    if (at < rom.window_base || at - rom.window_base >= rom.window_size ||
        rom_->size() > rom.window_size - (at - rom.window_base)) {
      if (rom_refused_ != want) {
        LOG_WARN("vfio", "%s: expansion ROM at 0x%x is outside the PCI window [0x%x, +0x%x): "
                 "not mapped", device_.name, at, rom.window_base, rom.window_size);
      }
      rom_refused_ = want;
      want.reset();
    }
  }
  if (want == rom_mapped_) return;
  if (rom_mapped_) {
    (void)env_.rom->mmio_bus->Unregister(*rom_mapped_);
    rom_mapped_.reset();
  }
  if (!want) return;
  absl::Status status = env_.rom->mmio_bus->Register(
      *want, rom_->size(), std::make_shared<RomWindow>(weak_from_this()),
      absl::StrFormat("%s expansion ROM", name()));
  if (!status.ok()) {
    // Tried again at the next configuration write; said once per address.
    if (rom_refused_ != want) {
      LOG_WARN("vfio", "%s: expansion ROM left unmapped: %s", device_.name, status.message());
    }
    rom_refused_ = want;
    return;
  }
  rom_refused_.reset();
  rom_mapped_ = want;
}

void VfioPciDevice::UnmapBarLocked(Bar& bar) {
  for (uint32_t slot : bar.slots) {
    absl::Status status = env_.slots->RemoveMemorySlot(slot);
    if (!status.ok()) LOG_WARN("vfio", "%s: %s", device_.name, status.message());
  }
  bar.slots.clear();
  bar.address.reset();
}

}  // namespace skiff::vfio
