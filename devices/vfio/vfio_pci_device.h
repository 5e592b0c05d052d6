// A host PCI function passed through to the guest with VFIO, as a device on
// Skiff's PCI root.
//
// Configuration space is the device's own (pread/pwrite on its VFIO config
// region) except where the guest must not reach the hardware:
//   * BARs: a PciConfigSpace answers the sizing protocol with the sizes
//     VFIO reports, and holds the addresses the root (and then the guest)
//     assigns in Skiff's windows; the hardware keeps its host addresses.
//   * the expansion ROM: hidden (its register reads zero) unless the user
//     asked for it (rom=on): then a RomBar answers the sizing protocol with
//     the size of VFIO's ROM region and holds the address firmware (Skiff)
//     or the guest gives it; while it decodes (enable bit and memory bit)
//     the ROM is a window on the MMIO bus whose reads are forwarded with
//     pread (VFIO's ROM region is read-only and cannot be mmapped);
//   * MSI and MSI-X: the capabilities stay where the hardware has them in
//     the list, but enable/mask bits (MSI-X) and the whole MSI register set
//     are emulated, and the MSI-X table and PBA are a pci::MsixTable;
//   * the command register's I/O and memory decode bits are tracked here
//     (the root maps BARs from them) and passed on to the hardware;
//   * writes to read-only header fields (IDs, class, header type, subsystem
//     IDs, capability pointer, interrupt pin) are dropped; the interrupt
//     line register is a scratch byte.
//
// BARs: the mmap-able parts (VFIO_REGION_INFO_FLAG_MMAP, sparse areas when
// given) go straight to the guest as KVM memory slots while the BAR is
// mapped, minus the pages holding the MSI-X table and PBA, which stay
// trapped; everything trapped is forwarded with pread/pwrite (I/O BARs too).
//
// Interrupts: VFIO signals eventfds that are KVM irqfds on MSI routes (no
// Skiff hop). A vector the guest masked is pointed at a "parked" eventfd
// instead, which the I/O thread drains into the table's pending bit;
// unmasking points VFIO back at the irqfd and delivers what was pending.
// INTx (neither MSI nor MSI-X enabled) is an irqfd with a resample eventfd
// on the slot's GSI; VFIO unmasks the line itself on that resample.
//
// Threads: vCPUs call the config and BAR handlers; the I/O thread drains
// parked vectors. One mutex guards the interrupt and slot state.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/pci/msix_table.h"
#include "devices/pci/pci_config_space.h"
#include "devices/pci/pci_device.h"
#include "devices/vfio/bar_layout.h"
#include "devices/vfio/msi_capability.h"
#include "devices/vfio/rom_bar.h"
#include "devices/vfio/vfio_container.h"
#include "vmm/bus.h"
#include "vmm/event_loop.h"
#include "vmm/memory_slot_registrar.h"
#include "vmm/msi_vector.h"
#include "vmm/unique_fd.h"

namespace skiff::vfio {

// What exposing the expansion ROM needs (--device vfio=...,rom=on).
struct VfioRomEnv {
  // Where the ROM is registered while it decodes; must outlive the device.
  Bus* mmio_bus = nullptr;
  // The 32-bit PCI window: the ROM decodes only inside it (anywhere else
  // it could shadow RAM or another device).
  uint64_t window_base = 0;
  uint64_t window_size = 0;
  // Set (rom=FILE): this image is the ROM, whatever the device has; reads
  // never reach the device.
  std::shared_ptr<const std::vector<uint8_t>> image = nullptr;
};

struct VfioPciEnv {
  // Required when the device has MSI or MSI-X.
  MsiAllocator* msi = nullptr;
  // Null: no BAR is mapped directly; every access is trapped.
  MemorySlotRegistrar* slots = nullptr;
  // INTx needs both; without them the device offers no INTx.
  IrqFdRegistrar* irqfds = nullptr;
  std::optional<uint32_t> intx_gsi;
  // Drains parked (masked) vectors. Null: nobody does (tests call
  // DrainParked themselves).
  EventLoop* event_loop = nullptr;
  uint16_t bdf = 0;  // requester ID: MSI devid (GICv3 ITS)
  uint64_t page_size = 4096;
  // Unset: the expansion ROM stays hidden.
  std::optional<VfioRomEnv> rom;
};

class VfioPciDevice : public pci::PciDevice,
                      public std::enable_shared_from_this<VfioPciDevice> {
 public:
  // Resets the device (when VFIO can), reads its regions, interrupts and
  // capabilities and sets up INTx. With env.rom, the device must have an
  // expansion ROM (VFIO's ROM region not empty). `container` must be the one `device`
  // was opened through.
  static absl::StatusOr<std::shared_ptr<VfioPciDevice>> Create(
      std::shared_ptr<VfioContainer> container, VfioDevice device, VfioPciEnv env);
  // Stops the device (bus mastering, interrupts, reset) and releases what
  // it holds in order: KVM slots, irqfds, eventfds, BAR mmaps, the fd.
  ~VfioPciDevice() override;

  // PciDevice.
  std::string name() const override { return "vfio " + device_.name; }
  uint32_t ReadConfig(uint32_t offset, uint32_t size) override;
  void WriteConfig(uint32_t offset, uint32_t size, uint32_t value) override;
  std::optional<pci::BarInfo> GetBar(int index) const override;
  void ReadBar(int index, uint64_t offset, std::span<uint8_t> data) override;
  void WriteBar(int index, uint64_t offset, std::span<const uint8_t> data) override;
  void BarMapped(int index, std::optional<uint64_t> address) override;

  // For tests and logs.
  uint32_t msix_capability() const { return msix_cap_; }
  uint32_t msi_capability() const { return msi_cap_; }
  uint32_t msix_vectors() const { return msix_ ? msix_->num_vectors() : 0; }
  // The direct pieces of BAR `index` (offsets within the BAR).
  std::vector<BarPiece> direct_pieces(int index) const;
  // The parked eventfd of MSI-X vector `vector` (MSI: vector + msix count).
  int parked_fd(uint32_t vector) const;
  // Reads every parked eventfd and delivers or marks pending (I/O thread).
  void DrainParked();
  bool intx_enabled() const;

  // The expansion ROM BAR's size (a power of two); 0 when the ROM is hidden.
  uint32_t rom_size() const;
  // Where the ROM is registered on the MMIO bus now; nullopt when it does
  // not decode.
  std::optional<uint64_t> rom_mapped_address() const;
  // A guest read at `offset` in the ROM window: forwarded with pread at the
  // ROM region's offset (or served from the rom=FILE image); bytes outside
  // the ROM BAR, past VFIO's region (or the image) or that the kernel does
  // not return read as 0xff. Any thread.
  void ReadRom(uint64_t offset, std::span<uint8_t> data);

  VfioPciDevice(std::shared_ptr<VfioContainer> container, VfioDevice device, VfioPciEnv env);

 private:
  struct Bar {
    VfioRegionInfo region;
    std::vector<BarPiece> pieces;   // mapped directly while decoding
    std::vector<Mapping> mappings;  // one per piece
    std::vector<uint32_t> slots;    // KVM slots while mapped
    std::optional<uint64_t> address;
  };
  // Where a config byte comes from.
  enum class ByteKind : uint8_t {
    kHardware, kBar, kRom, kHidden, kReadOnly, kScratch, kMsix, kMsi
  };

  absl::Status Init();
  absl::Status ReadHardware(uint32_t offset, std::span<uint8_t> data);
  void WriteHardware(uint32_t offset, std::span<const uint8_t> data);
  absl::Status FindCapabilities();
  absl::Status SetUpBars();
  absl::Status SetUpMsix(uint32_t cap);
  absl::Status SetUpIntx();
  absl::Status SetUpRom();
  ByteKind KindOf(uint32_t offset) const;

  // Brings VFIO's interrupt configuration in line with the guest's view.
  void SyncInterruptsLocked();
  void SyncMsixLocked();
  void SyncMsiLocked();
  absl::Status EnableIntxLocked();
  void DisableIntxLocked();
  void UnmapBarLocked(Bar& bar);
  void MapBarLocked(int index, Bar& bar, uint64_t address);
  void SetIrqsLogged(const VfioIrqSet& set);
  // Registers the ROM window where the RomBar decodes now (or removes it).
  void SyncRomLocked();

  const std::shared_ptr<VfioContainer> container_;
  VfioKernel& kernel_;
  VfioDevice device_;  // its fd is closed last in the destructor
  const VfioPciEnv env_;
  VfioRegionInfo config_region_;

  mutable std::mutex mutex_;
  pci::PciConfigSpace bars_config_;  // BAR registers + decode bits
  std::array<Bar, pci::kNumBars> bars_;
  uint8_t interrupt_line_ = 0;

  // Expansion ROM (env_.rom set): VFIO's region (read-only, trapped), the
  // register, and where the window is registered.
  VfioRegionInfo rom_region_;
  std::optional<RomBar> rom_;
  std::optional<uint32_t> rom_mapped_;
  std::optional<uint32_t> rom_refused_;  // logged once, not on every write

  // MSI-X.
  uint32_t msix_cap_ = 0;
  std::shared_ptr<pci::MsixTable> msix_;
  int msix_bar_ = -1;
  uint64_t msix_table_offset_ = 0, msix_pba_offset_ = 0;
  uint16_t msix_control_ = 0;  // the guest's enable / function-mask bits
  std::vector<int> msix_fds_;  // what VFIO signals now; empty: MSI-X off
  // MSI.
  uint32_t msi_cap_ = 0;
  std::unique_ptr<MsiCapability> msi_;
  std::vector<int> msi_fds_;  // empty: MSI off
  // Parked eventfds: MSI-X vectors first, then MSI vectors.
  std::vector<UniqueFd> parked_;
  // INTx.
  UniqueFd intx_trigger_, intx_resample_;
  bool intx_enabled_ = false;
};

}  // namespace skiff::vfio
