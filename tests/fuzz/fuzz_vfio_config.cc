// A passed-through PCI function (VfioPciDevice) on the VFIO test double,
// driven by a hostile guest: configuration reads and writes of any offset
// and width (BAR sizing and moves, command register, MSI and MSI-X
// capabilities, read-only header fields), BAR accesses (MSI-X table and
// PBA, trapped registers), BAR (un)mappings as the root makes them,
// interrupts arriving on parked vectors, and reads of the expansion ROM
// (exposed, as with rom=on) at any offset.
//
// Input: [shape] then ops, each [kind] [operands...] (see Step).
//
// Invariants beyond "no crash": every VFIO_DEVICE_SET_IRQS the device makes
// is one the kernel accepts (the double applies vfio-pci's rules); at most
// one interrupt mode is on in VFIO; with MSI-X on, VFIO has every vector
// of the table; no guest write reaches a read-only header register, a BAR
// or the ROM register of the hardware; KVM slots exist only while memory
// decoding is on, never overlap, and lie inside the BAR where it is mapped;
// the ROM window is on the bus only while the ROM's enable bit and memory
// decoding are on, at the register's address, inside the PCI window.
#include <linux/vfio.h>

#include <cstdint>
#include <map>
#include <memory>

#include "devices/pci/pci_constants.h"
#include "devices/vfio/vfio_container.h"
#include "devices/vfio/vfio_pci_device.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/unit/fake_vfio_kernel.h"
#include "tests/unit/pci_test_fakes.h"
#include "vmm/bus.h"

namespace skiff::vfio {
namespace {

using fuzz::FuzzInput;

constexpr int kMaxOps = 256;
constexpr uint32_t kWidths[] = {4, 4, 2, 1, 8, 3};
constexpr uint64_t kWindowBase = 0xc0000000, kWindowSize = 0x10000000;

class CheckingSlots : public MemorySlotRegistrar, public IrqFdRegistrar {
 public:
  struct Slot {
    uint64_t gpa, size;
  };
  absl::StatusOr<uint32_t> AddMemorySlot(uint64_t gpa, uint64_t size, void* host) override {
    FUZZ_CHECK(host != nullptr && size > 0 && gpa % 4096 == 0 && size % 4096 == 0,
               "slot at 0x%x +0x%x", gpa, size);
    for (const auto& [id, s] : slots) {
      FUZZ_CHECK(gpa + size <= s.gpa || s.gpa + s.size <= gpa,
                 "slot [0x%x,+0x%x) overlaps [0x%x,+0x%x)", gpa, size, s.gpa, s.size);
    }
    slots[next] = {gpa, size};
    return next++;
  }
  absl::Status RemoveMemorySlot(uint32_t slot) override {
    FUZZ_CHECK(slots.erase(slot) == 1, "removing unknown slot %u", slot);
    return absl::OkStatus();
  }
  absl::Status AddIrqFd(int, uint32_t, int) override { return absl::OkStatus(); }
  absl::Status RemoveIrqFd(int, uint32_t) override { return absl::OkStatus(); }
  std::map<uint32_t, Slot> slots;
  uint32_t next = 0;
};

// Counts what the double refused, which a correct device never provokes.
class CountingKernel : public FakeVfioKernel {
 public:
  absl::Status SetIrqs(int fd, const VfioIrqSet& set) override {
    absl::Status s = FakeVfioKernel::SetIrqs(fd, set);
    FUZZ_CHECK(s.ok(), "SET_IRQS index %u start %u count %u refused: %s", set.index, set.start,
               set.count, std::string(s.message()));
    return s;
  }
};

bool ReadOnlyHardware(uint64_t offset) {
  return offset < 4 || (offset >= 0x08 && offset < 0x0c) || offset == 0x0e ||
         (offset >= 0x10 && offset < 0x3c) || offset == 0x3d;
}

void Run(FuzzInput& in) {
  auto kernel = std::make_shared<CountingKernel>();
  auto fn = std::make_shared<FakePciFunction>(FakePciFunction::E1000e());
  switch (in.Below(3)) {
    case 1:  // a 64-bit prefetchable BAR0 over BAR0-1
      fn->regions[0] = {};
      fn->AddBar(0, 0x100000, pci::kBarMem64 | pci::kBarPrefetchable);
      fn->regions[1] = {};
      fn->bar_data[1].clear();
      break;
    case 2:  // sparse mmap areas on BAR0 and BAR3
      fn->AddBar(0, 0x20000, 0, true, std::vector<VfioSparseArea>{{0x100, 0x8000}});
      fn->AddBar(3, 0x4000, 0, true, std::vector<VfioSparseArea>{{0, 0x4000}});
      break;
  }
  kernel->groups[1].devices = {fn};
  auto container = VfioContainer::Open(kernel);
  FUZZ_CHECK(container.ok(), "%s", std::string(container.status().message()));
  auto opened = (*container)->OpenDevice(HostPciDevice{fn->name, 1, {{fn->name, "vfio-pci"}}, {}});
  FUZZ_CHECK(opened.ok(), "%s", std::string(opened.status().message()));
  fn->rom_image.assign(0x9000, 0x55);  // shorter than the 256 KiB region
  FakeMsiAllocator msi;
  CheckingSlots slots;
  Bus bus("MMIO");  // outlives the device
  VfioPciEnv env;
  env.rom = VfioRomEnv{&bus, kWindowBase, kWindowSize};
  env.msi = &msi;
  env.slots = &slots;
  env.irqfds = &slots;
  env.intx_gsi = 20;
  auto dev_or = VfioPciDevice::Create(*container, *std::move(opened), env);
  FUZZ_CHECK(dev_or.ok(), "%s", std::string(dev_or.status().message()));
  VfioPciDevice& dev = **dev_or;
  fn->config_writes.clear();
  std::array<std::optional<uint64_t>, pci::kNumBars> mapped;

  for (int op = 0; op < kMaxOps && !in.empty(); ++op) {
    const uint64_t kind = in.Below(7);
    switch (kind) {
      case 0: {  // config write
        const uint32_t offset = static_cast<uint32_t>(in.Below(4096 + 8));
        const uint32_t width = kWidths[in.Below(6)];
        dev.WriteConfig(offset, width, in.Take<uint32_t>());
        break;
      }
      case 1: {  // config read
        const uint32_t offset = static_cast<uint32_t>(in.Below(4096 + 8));
        (void)dev.ReadConfig(offset, kWidths[in.Below(6)]);
        break;
      }
      case 2:
      case 3: {  // BAR access, within the BAR as the root guarantees
        const bool write = kind == 2;
        const int bar = static_cast<int>(in.Below(6));
        std::optional<pci::BarInfo> info = dev.GetBar(bar);
        const uint32_t width = kWidths[in.Below(6)];
        uint64_t value = in.Take<uint64_t>();
        if (!info || width > info->size) break;
        const uint64_t offset = in.Below(info->size - width + 1);
        std::span<uint8_t> data(reinterpret_cast<uint8_t*>(&value), width);
        if (write) {
          dev.WriteBar(bar, offset, data);
        } else {
          dev.ReadBar(bar, offset, data);
        }
        break;
      }
      case 4: {  // the root (un)maps a BAR
        const int bar = static_cast<int>(in.Below(6));
        std::optional<pci::BarInfo> info = dev.GetBar(bar);
        const bool map = in.TakeBool();
        const uint64_t slot = in.Below(16);
        if (!info) break;
        std::optional<uint64_t> address;
        const bool decoding = dev.ReadConfig(pci::kCommand, 2) & pci::kCommandMemory;
        if (map && decoding) address = 0xc0000000 + slot * 0x100000 + bar * 0x1000000;
        if (map && decoding && info->size > 0x100000) address = 0x100000000 + slot * info->size;
        dev.BarMapped(bar, address);
        mapped[bar] = address;
        break;
      }
      case 5: {  // an interrupt arrives on a parked vector
        const int fd = dev.parked_fd(static_cast<uint32_t>(in.Below(40)));
        if (fd >= 0) {
          uint64_t one = 1;
          (void)!::write(fd, &one, sizeof(one));
        }
        dev.DrainParked();
        break;
      }
      case 6: {  // an expansion ROM read: straight, or through the bus where it decodes
        uint64_t value = 0;
        std::span<uint8_t> data(reinterpret_cast<uint8_t*>(&value), in.Below(8) + 1);
        const uint64_t offset = in.TakeBool() ? in.Take<uint64_t>() : in.Below(0x40000 + 8);
        if (auto at = dev.rom_mapped_address(); at && in.TakeBool()) {
          (void)bus.Read(*at + offset % 0x40008, data);
        } else {
          dev.ReadRom(offset, data);
        }
        break;
      }
    }
    // Invariants after every step.
    for (const auto& [offset, bytes] : fn->config_writes) {
      for (size_t i = 0; i < bytes.size(); ++i) {
        FUZZ_CHECK(!ReadOnlyHardware(offset + i), "hardware config write at 0x%x", offset + i);
      }
    }
    int modes = 0;
    for (uint32_t index = 0; index <= VFIO_PCI_MSIX_IRQ_INDEX; ++index) {
      modes += fn->irq_state[index].enabled > 0;
    }
    FUZZ_CHECK(modes <= 1, "%d interrupt modes on at once", modes);
    if (fn->irq_state[VFIO_PCI_MSIX_IRQ_INDEX].enabled > 0) {
      FUZZ_CHECK(fn->irq_state[VFIO_PCI_MSIX_IRQ_INDEX].enabled == dev.msix_vectors(),
                 "MSI-X on with %u of %u vectors", fn->irq_state[VFIO_PCI_MSIX_IRQ_INDEX].enabled,
                 dev.msix_vectors());
    }
    const bool decoding = dev.ReadConfig(pci::kCommand, 2) & pci::kCommandMemory;
    const uint32_t rom = dev.ReadConfig(pci::kExpansionRom, 4);
    if (std::optional<uint64_t> at = dev.rom_mapped_address()) {
      FUZZ_CHECK(decoding && (rom & 1) && *at == (rom & ~1u) && *at >= kWindowBase &&
                     *at + dev.rom_size() <= kWindowBase + kWindowSize,
                 "ROM window at 0x%x with register 0x%x, memory decode %d", *at, rom,
                 static_cast<int>(decoding));
    }
    FUZZ_CHECK(bus.Entries().size() == (dev.rom_mapped_address() ? 1u : 0u),
               "%zu bus registrations", bus.Entries().size());
    FUZZ_CHECK(decoding || slots.slots.empty(), "%zu slots with memory decode off",
               slots.slots.size());
    for (const auto& [id, s] : slots.slots) {
      bool inside = false;
      for (int bar = 0; bar < pci::kNumBars; ++bar) {
        std::optional<pci::BarInfo> info = dev.GetBar(bar);
        if (mapped[bar] && info && s.gpa >= *mapped[bar] &&
            s.gpa + s.size <= *mapped[bar] + info->size) {
          inside = true;
        }
      }
      FUZZ_CHECK(inside, "slot [0x%x,+0x%x) outside every mapped BAR", s.gpa, s.size);
    }
  }
}

}  // namespace
}  // namespace skiff::vfio

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skiff::fuzz::QuietLogs();
  skiff::fuzz::FuzzInput in(data, size);
  skiff::vfio::Run(in);
  return 0;
}
