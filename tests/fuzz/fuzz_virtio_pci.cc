// virtio-pci behind the PCI root, driven the way a guest reaches it: ECAM
// configuration reads and writes (BAR moves and sizing, command register,
// capabilities, MSI-X control, the PCI_CFG window), accesses to wherever
// the BAR is mapped now (common config, ISR, device config, notify, MSI-X
// table and PBA), well-formed initialisations, and device-side events.
//
// Input: [device shape] then ops, each [kind] [operands...].
//
// Invariants beyond "no crash": those of CheckingVirtioDevice; the
// transport's KVM ioeventfds (a registrar that refuses duplicates and
// unknown removals) exist only while BAR 0 is mapped, one per queue at
// most, all inside the mapped BAR; an active device means DRIVER_OK; a
// dword written to an MSI-X table entry reads back (defined bits only).
#include <linux/virtio_config.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>

#include "devices/pci/pci_constants.h"
#include "devices/pci/pci_ecam.h"
#include "devices/pci/pci_root.h"
#include "devices/virtio/pci_layout.h"
#include "devices/virtio/pci_transport.h"
#include "devices/virtio/status_table.h"
#include "tests/fuzz/checking_virtio_device.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/fake_irq_line.h"
#include "tests/unit/pci_test_fakes.h"
#include "vmm/bus.h"
#include "vmm/event_loop.h"

namespace skiff::virtio {
namespace {

using fuzz::FuzzInput;
using fuzzing::CheckingVirtioDevice;
namespace layout = pci_layout;

constexpr uint64_t kMmio32Base = 0xc0000000;
constexpr uint64_t kMmio32Size = 0x10000000;
constexpr uint64_t kEcamBase = 0xe0000000;
constexpr uint64_t kRamSize = 0x10000;
constexpr int kMaxOps = 256;
constexpr size_t kWidths[] = {4, 4, 2, 1, 8, 3};

// Refuses (as a broken invariant) what KVM would refuse: a second
// registration of the same address, or removing one that does not exist.
class CheckingIoEventRegistrar : public IoEventRegistrar {
 public:
  using Key = std::tuple<uint64_t, uint32_t, int>;
  absl::Status AddMmio(int eventfd, uint64_t gpa, uint32_t length,
                       std::optional<uint64_t> datamatch) override {
    std::lock_guard lock(mutex_);
    FUZZ_CHECK(!datamatch, "virtio-pci notify ioeventfds need no datamatch");
    FUZZ_CHECK(live_.insert({gpa, length, eventfd}).second, "ioeventfd 0x%x registered twice", gpa);
    return absl::OkStatus();
  }
  absl::Status RemoveMmio(int eventfd, uint64_t gpa, uint32_t length,
                          std::optional<uint64_t> /*datamatch*/) override {
    std::lock_guard lock(mutex_);
    FUZZ_CHECK(live_.erase({gpa, length, eventfd}) == 1, "removed unknown ioeventfd 0x%x", gpa);
    return absl::OkStatus();
  }
  std::set<Key> live() const {
    std::lock_guard lock(mutex_);
    return live_;
  }

 private:
  mutable std::mutex mutex_;
  std::set<Key> live_;
};

class Harness {
 public:
  Harness(FuzzInput& in, std::shared_ptr<CheckingVirtioDevice> device,
          std::shared_ptr<VirtioPciTransport> transport, std::shared_ptr<pci::PciRoot> root,
          uint8_t slot, Bus& mmio, CheckingIoEventRegistrar& ioevents)
      : in_(in),
        device_(std::move(device)),
        transport_(std::move(transport)),
        root_(std::move(root)),
        slot_(slot),
        mmio_(mmio),
        ioevents_(ioevents) {}

  void Step() {
    switch (in_.Below(10)) {
      case 0:
      case 1: {
        // One operand per statement: argument order is unspecified, and the
        // input must mean the same to every compiler.
        const uint32_t offset = ConfigOffset();
        const size_t width = Width();
        ConfigWrite(offset, width, Value());
        break;
      }
      case 2: {
        const uint32_t offset = ConfigOffset();
        (void)ConfigRead(offset, Width());
        break;
      }
      case 3:
      case 4: {
        const uint64_t offset = BarOffset();
        const size_t width = Width();
        BarWrite(offset, width, Value());
        break;
      }
      case 5: {
        const uint64_t offset = BarOffset();
        (void)BarRead(offset, Width());
        break;
      }
      case 6:
        Initialise();
        break;
      case 7:
        DeviceEvent();
        break;
      case 8:
        MoveBar();
        break;
      default:
        MsixTableWrite();
        break;
    }
    CheckState();
  }

 private:
  size_t Width() { return kWidths[in_.Below(std::size(kWidths))]; }
  uint64_t Value() {
    switch (in_.Below(4)) {
      case 0:
        return in_.Take<uint64_t>();
      case 1:
        return ~uint64_t{0};
      default:
        return in_.Below(0x200);
    }
  }
  uint32_t ConfigOffset() {
    switch (in_.Below(4)) {
      case 0:
        return static_cast<uint32_t>(in_.Below(pci::kConfigSpaceSize));
      case 1:
        return pci::kBar0 + 4 * static_cast<uint32_t>(in_.Below(6));
      default:
        return static_cast<uint32_t>(in_.Below(0x100));  // header and capabilities
    }
  }
  uint64_t BarOffset() {
    switch (in_.Below(6)) {
      case 0:
        return layout::kCommonOffset + in_.Below(layout::kCommonSize + 8);
      case 1:
        return layout::kIsrOffset + in_.Below(4);
      case 2:
        return layout::kDeviceOffset + in_.Below(0x40);
      case 3:
        return layout::kNotifyOffset + in_.Below(4 * device_->num_queues() + 8);
      case 4:
        return transport_->msix_table_offset() + in_.Below(16 * transport_->msix_vectors() + 16);
      default:
        return in_.Below(transport_->bar_size());
    }
  }

  // Bus 0 through ECAM; sometimes a function or device that is not there.
  uint64_t EcamAddress(uint32_t offset) {
    uint64_t device = slot_;
    uint64_t function = 0;
    if (in_.Below(16) == 0) {
      device = in_.Below(32);
      function = in_.Below(8);
    }
    return kEcamBase + (device << 15 | function << 12 | offset);
  }
  void ConfigWrite(uint32_t offset, size_t width, uint64_t value) {
    uint8_t bytes[8];
    std::memcpy(bytes, &value, sizeof(bytes));
    (void)mmio_.Write(EcamAddress(offset), std::span<const uint8_t>(bytes, width));
  }
  uint64_t ConfigRead(uint32_t offset, size_t width) {
    uint8_t bytes[8] = {};
    (void)mmio_.Read(EcamAddress(offset), std::span<uint8_t>(bytes, width));
    uint64_t value = 0;
    std::memcpy(&value, bytes, sizeof(value));
    return value;
  }
  // The root's own view, for the harness's bookkeeping (no fuzzed routing).
  uint32_t Config(uint32_t offset, uint32_t size) {
    return root_->ReadConfig(0, slot_, 0, offset, size);
  }
  void SetConfig(uint32_t offset, uint32_t size, uint32_t value) {
    root_->WriteConfig(0, slot_, 0, offset, size, value);
  }

  // Accesses go through the MMIO bus at wherever the BAR is now; false
  // when nothing answered there (BAR unmapped or moved away).
  bool BarWrite(uint64_t offset, size_t width, uint64_t value) {
    const std::optional<uint64_t> base = root_->MappedAddress(slot_, layout::kBar);
    if (!base || offset + width > transport_->bar_size()) return false;
    uint8_t bytes[8];
    std::memcpy(bytes, &value, sizeof(bytes));
    return mmio_.Write(*base + offset, std::span<const uint8_t>(bytes, width));
  }
  std::optional<uint64_t> BarRead(uint64_t offset, size_t width) {
    const std::optional<uint64_t> base = root_->MappedAddress(slot_, layout::kBar);
    if (!base || offset + width > transport_->bar_size()) return std::nullopt;
    uint8_t bytes[8] = {};
    if (!mmio_.Read(*base + offset, std::span<uint8_t>(bytes, width))) return std::nullopt;
    uint64_t value = 0;
    std::memcpy(&value, bytes, sizeof(value));
    return value;
  }
  void Common(uint32_t reg, size_t width, uint64_t value) {
    (void)BarWrite(layout::kCommonOffset + reg, width, value);
  }
  uint64_t CommonRead(uint32_t reg, size_t width) {
    return BarRead(layout::kCommonOffset + reg, width).value_or(0);
  }

  // Finds a capability by ID in the list (0 if absent), bounded.
  uint32_t FindCapability(uint8_t id) {
    uint32_t at = Config(pci::kCapabilitiesPointer, 1);
    for (int guard = 0; at != 0 && guard < 48; ++guard) {
      if (Config(at, 1) == id) return at;
      at = Config(at + 1, 1);
    }
    return 0;
  }

  // A driver doing everything right: decode on, MSI-X on, features, queues
  // with vectors, DRIVER_OK.
  void Initialise() {
    SetConfig(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandBusMaster);
    if (const uint32_t msix = FindCapability(pci::kCapIdMsix); msix != 0 && in_.TakeBool()) {
      SetConfig(msix + pci::kMsixMessageControl, 2, pci::kMsixControlEnable);
    }
    Common(layout::kDeviceStatus, 1, 0);
    Common(layout::kDeviceStatus, 1, kStatusAcknowledge);
    Common(layout::kDeviceStatus, 1, kStatusAcknowledge | kStatusDriver);
    for (uint32_t sel = 0; sel < 2; ++sel) {
      Common(layout::kDeviceFeatureSelect, 4, sel);
      const uint64_t offered = CommonRead(layout::kDeviceFeature, 4);
      Common(layout::kDriverFeatureSelect, 4, sel);
      Common(layout::kDriverFeature, 4, (offered & ~in_.Take<uint32_t>()) | (sel == 1 ? 1 : 0));
    }
    Common(layout::kDeviceStatus, 1, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    Common(layout::kMsixConfig, 2, in_.Below(4));
    const uint16_t queues = static_cast<uint16_t>(in_.Below(device_->num_queues() + 1));
    for (uint16_t q = 0; q < queues; ++q) {
      Common(layout::kQueueSelect, 2, q);
      const uint64_t size = 1u << in_.Below(9);
      const uint64_t base = 0x1000 * (1 + in_.Below(15));
      Common(layout::kQueueSize, 2, size);
      Common(layout::kQueueDesc, 8, base);
      Common(layout::kQueueDriver, 8, base + 16 * size);
      Common(layout::kQueueDevice, 8, (base + 16 * size + 6 + 2 * size + 3) & ~3ull);
      Common(layout::kQueueMsixVector, 2, in_.Below(4));
      Common(layout::kQueueEnable, 2, 1);
    }
    if (in_.Below(4) == 0) device_->FailNextActivation();
    Common(layout::kDeviceStatus, 1,
           kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  }

  void DeviceEvent() {
    const uint8_t kind = in_.Take<uint8_t>();
    const uint16_t queue = static_cast<uint16_t>(in_.Below(device_->num_queues() + 1));
    // An interrupt kept by a device past its Reset (a completion still in
    // flight) must reach nothing: each activation has its own handle, which
    // the reset retired. (Found by this target before the transport did so.)
    const bool stale = in_.TakeBool();
    const uint8_t status_before = transport_->device_status();
    device_->Interrupt(kind, queue, stale);
    if (stale) {
      FUZZ_CHECK(transport_->device_status() == status_before,
                 "an interrupt from before the last reset changed device_status");
    }
  }

  // The guest moves BAR 0 (low/high halves), sizes it, or flips decode.
  void MoveBar() {
    switch (in_.Below(4)) {
      case 0: {
        const uint64_t address = kMmio32Base + (in_.Below(kMmio32Size) & ~0xfffull);
        SetConfig(pci::kBar0, 4, static_cast<uint32_t>(address));
        SetConfig(pci::kBar0 + 4, 4, static_cast<uint32_t>(address >> 32));
        break;
      }
      case 1:
        SetConfig(pci::kBar0 + 4 * static_cast<uint32_t>(in_.Below(2)), 4, 0xffffffff);
        break;
      case 2: {
        const uint32_t half = static_cast<uint32_t>(in_.Below(2));
        SetConfig(pci::kBar0 + 4 * half, 4, in_.Take<uint32_t>());
        break;
      }
      default:
        SetConfig(pci::kCommand, 2, static_cast<uint32_t>(in_.Below(8)));
        break;
    }
  }

  // One dword of an MSI-X table entry; it must read back.
  void MsixTableWrite() {
    const uint32_t vectors = transport_->msix_vectors();
    if (vectors == 0) return;
    const uint64_t entry = in_.Below(vectors);
    const uint64_t field = in_.Below(4);
    const uint32_t value = in_.Take<uint32_t>();
    const uint64_t offset = transport_->msix_table_offset() + 16 * entry + 4 * field;
    if (!BarWrite(offset, 4, value)) return;
    const std::optional<uint64_t> back = BarRead(offset, 4);
    if (!back) return;
    // The address's bits 1:0 are reserved zero (dword-aligned messages);
    // of the control word only the mask bit is defined.
    const uint32_t mask = field == 0   ? 0xfffffffc
                          : field == 3 ? pci::kMsixVectorMasked
                                       : 0xffffffff;
    FUZZ_CHECK((*back & mask) == (value & mask), "MSI-X entry %u dword %u: wrote 0x%x, read 0x%x",
               entry, field, value, *back);
  }

  void CheckState() {
    const auto live = ioevents_.live();
    const std::optional<uint64_t> base = root_->MappedAddress(slot_, layout::kBar);
    if (!base) {
      FUZZ_CHECK(live.empty(), "%u ioeventfds live with BAR 0 unmapped", live.size());
    } else {
      FUZZ_CHECK(live.size() <= device_->num_queues(), "%u ioeventfds for %u queues", live.size(),
                 device_->num_queues());
      for (const auto& [gpa, length, fd] : live) {
        FUZZ_CHECK(gpa >= *base && gpa + length <= *base + transport_->bar_size(),
                   "ioeventfd 0x%x outside BAR 0 at 0x%x", gpa, *base);
      }
    }
    if (device_->active()) {
      FUZZ_CHECK(transport_->device_status() & kStatusDriverOk, "device active with status 0x%x",
                 transport_->device_status());
    }
    if (transport_->device_status() == 0) {
      FUZZ_CHECK(!device_->active(), "status 0 but the device was not reset");
    }
  }

  FuzzInput& in_;
  std::shared_ptr<CheckingVirtioDevice> device_;
  std::shared_ptr<VirtioPciTransport> transport_;
  std::shared_ptr<pci::PciRoot> root_;
  const uint8_t slot_;
  Bus& mmio_;
  CheckingIoEventRegistrar& ioevents_;
};

}  // namespace
}  // namespace skiff::virtio

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace skiff::virtio;
  skiff::fuzz::QuietLogs();
  FuzzInput in(data, size);
  CheckingVirtioDevice::Options options = CheckingVirtioDevice::Options::Fuzzed(in, 9);
  options.strict_config_range = false;  // the PCI window is 4 KiB; past the end reads 0
  const bool with_msix = in.Below(4) != 0;
  auto device = std::make_shared<CheckingVirtioDevice>(options);

  // Declared before everything that holds pointers to them.
  skiff::Bus mmio("mmio");
  CheckingIoEventRegistrar ioevents;
  skiff::FakeMsiAllocator msi;
  skiff::FakeGuestMemory mem(kRamSize);
  auto loop = skiff::EventLoop::Create();
  FUZZ_CHECK(loop.ok(), "EventLoop::Create: %s", loop.status().message());

  std::array<std::shared_ptr<skiff::IrqLine>, skiff::pci::kIntxLines> intx;
  for (auto& line : intx) line = std::make_shared<skiff::FakeIrqLine>();
  skiff::pci::PciRootConfig config;
  config.mmio32 = {kMmio32Base, kMmio32Size};
  auto root = skiff::pci::PciRoot::Create(config, &mmio, nullptr, intx);
  FUZZ_CHECK(root.ok(), "PciRoot::Create: %s", root.status().message());
  FUZZ_CHECK(mmio.Register(kEcamBase, skiff::pci::kEcamBytesPerBus,
                           std::make_shared<skiff::pci::PciEcam>(*root), "ecam")
                 .ok(),
             "ECAM registration failed");

  VirtioPciEnv env;
  env.memory = mem.memory();
  env.event_loop = loop->get();
  env.ioevents = &ioevents;
  env.msi = with_msix ? &msi : nullptr;
  auto transport = AddVirtioPciDevice(**root, device, env);
  FUZZ_CHECK(transport.ok(), "AddVirtioPciDevice: %s", transport.status().message());
  uint8_t slot = 0;
  for (uint8_t d = 0; d < 32; ++d) {
    if ((*root)->ReadConfig(0, d, 0, 0, 2) == layout::kVendorId) slot = d;
  }

  Harness harness(in, device, *transport, *root, slot, mmio, ioevents);
  for (int op = 0; op < kMaxOps && !in.empty(); ++op) harness.Step();
  // The transport unregisters its ioeventfds on destruction; the root and
  // the bus hold it, so drop them in order.
  mmio.Clear();
  return 0;
}
