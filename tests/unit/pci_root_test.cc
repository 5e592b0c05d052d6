#include "devices/pci/pci_root.h"

#include <cstring>
#include <mutex>
#include <vector>

#include "devices/pci/host_bridge.h"
#include "devices/pci/pci_config_io.h"
#include "devices/pci/pci_config_space.h"
#include "devices/pci/pci_ecam.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_irq_line.h"

namespace skiff::pci {
namespace {

constexpr uint64_t kWindowBase = 0xc0000000;
constexpr uint64_t kWindowSize = 0x10000000;
constexpr uint64_t kEcamBase = 0xe0000000;

// A device with configurable BARs that records what the root told it.
class TestDevice : public PciDevice {
 public:
  explicit TestDevice(std::vector<std::pair<int, BarSpec>> bars, std::string name = "test")
      : name_(std::move(name)),
        config_(PciIds{.vendor_id = 0x1234,
                       .device_id = 0x5678,
                       .class_code = 0xff0000,
                       .interrupt_pin = kInterruptPinA}) {
    for (auto& [index, spec] : bars) EXPECT_TRUE(config_.AddBar(index, spec).ok());
  }
  std::string name() const override { return name_; }
  uint32_t ReadConfig(uint32_t offset, uint32_t size) override {
    std::lock_guard lock(mutex_);
    ++config_reads;
    return config_.Read(offset, size);
  }
  void WriteConfig(uint32_t offset, uint32_t size, uint32_t value) override {
    std::lock_guard lock(mutex_);
    config_.Write(offset, size, value);
  }
  std::optional<BarInfo> GetBar(int index) const override {
    std::lock_guard lock(mutex_);
    return config_.GetBar(index);
  }
  void ReadBar(int index, uint64_t offset, std::span<uint8_t> data) override {
    std::lock_guard lock(mutex_);
    last_access = {index, offset};
    for (size_t i = 0; i < data.size(); ++i) data[i] = 0x40 + index;
  }
  void WriteBar(int index, uint64_t offset, std::span<const uint8_t>) override {
    std::lock_guard lock(mutex_);
    last_access = {index, offset};
  }
  void BarMapped(int index, std::optional<uint64_t> address) override {
    std::lock_guard lock(mutex_);
    mapped_log.push_back({index, address});
  }

  mutable std::mutex mutex_;
  std::vector<std::pair<int, std::optional<uint64_t>>> mapped_log;
  std::pair<int, uint64_t> last_access{-1, 0};
  int config_reads = 0;

 private:
  std::string name_;
  PciConfigSpace config_;
};

class PciRootTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeRoot(PciRootConfig{.mmio32 = {kWindowBase, kWindowSize}}); }

  void MakeRoot(PciRootConfig config) {
    root_.reset();
    mmio_ = std::make_unique<Bus>("mmio");
    pio_ = std::make_unique<Bus>("pio");
    for (auto& line : lines_) line = std::make_shared<FakeIrqLine>();
    auto root = PciRoot::Create(config, mmio_.get(), pio_.get(),
                                {lines_[0], lines_[1], lines_[2], lines_[3]});
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *root;
    config_io_ = std::make_shared<PciConfigIo>(root_);
    ecam_ = std::make_shared<PciEcam>(root_);
    ASSERT_TRUE(pio_->Register(kPciConfigIoBase, kPciConfigIoSize, config_io_, "pci-cf8").ok());
    ASSERT_TRUE(mmio_->Register(kEcamBase, 256 * kEcamBytesPerBus, ecam_, "pci-ecam").ok());
  }

  std::shared_ptr<TestDevice> AddDevice(std::vector<std::pair<int, BarSpec>> bars,
                                        uint8_t* slot_out = nullptr) {
    auto device = std::make_shared<TestDevice>(std::move(bars));
    auto slot = root_->Add(device);
    EXPECT_TRUE(slot.ok()) << slot.status();
    if (slot.ok() && slot_out) *slot_out = slot->device;
    return device;
  }

  // Port I/O through the real bus, as a vCPU exit would deliver it.
  uint32_t In(uint16_t port, size_t size) {
    uint8_t bytes[4] = {};
    EXPECT_TRUE(pio_->Read(port, std::span<uint8_t>(bytes, size)));
    uint32_t value = 0;
    std::memcpy(&value, bytes, size);
    return value;
  }
  void Out(uint16_t port, size_t size, uint32_t value) {
    uint8_t bytes[4];
    std::memcpy(bytes, &value, 4);
    EXPECT_TRUE(pio_->Write(port, std::span<const uint8_t>(bytes, size)));
  }
  uint64_t MmioRead(uint64_t address, size_t size, bool* hit = nullptr) {
    uint8_t bytes[8] = {};
    bool ok = mmio_->Read(address, std::span<uint8_t>(bytes, size));
    if (hit) *hit = ok;
    uint64_t value = 0;
    std::memcpy(&value, bytes, size);
    return value;
  }
  void MmioWrite(uint64_t address, size_t size, uint64_t value) {
    uint8_t bytes[8];
    std::memcpy(bytes, &value, 8);
    EXPECT_TRUE(mmio_->Write(address, std::span<const uint8_t>(bytes, size)));
  }
  static uint64_t Ecam(uint8_t bus, uint8_t dev, uint8_t fn, uint32_t reg) {
    return kEcamBase + (uint64_t{bus} << 20 | uint64_t{dev} << 15 | uint64_t{fn} << 12 | reg);
  }
  static uint32_t Cf8(uint8_t bus, uint8_t dev, uint8_t fn, uint32_t reg) {
    return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc);
  }
  // Writes config through ECAM, the way the guest does.
  void CfgWrite(uint8_t dev, uint32_t reg, size_t size, uint32_t value) {
    MmioWrite(Ecam(0, dev, 0, reg), size, value);
  }
  uint32_t CfgRead(uint8_t dev, uint32_t reg, size_t size) {
    return MmioRead(Ecam(0, dev, 0, reg), size);
  }

  std::unique_ptr<Bus> mmio_, pio_;
  std::array<std::shared_ptr<FakeIrqLine>, 4> lines_;
  std::shared_ptr<PciRoot> root_;
  std::shared_ptr<PciConfigIo> config_io_;
  std::shared_ptr<PciEcam> ecam_;
};

TEST_F(PciRootTest, HostBridgeAtSlotZero) {
  EXPECT_EQ(CfgRead(0, kVendorId, 4), uint32_t{kHostBridgeDeviceId} << 16 | kHostBridgeVendorId);
  EXPECT_EQ(CfgRead(0, kClassProgIf + 1, 2), 0x0600u);  // what Linux's type-1 probe checks
  EXPECT_EQ(CfgRead(0, kHeaderType, 1), 0u);
}

TEST_F(PciRootTest, AttachAssignsAlignedBarsInTheWindowAndMapsThem) {
  uint8_t slot_a = 0, slot_b = 0;
  auto a = AddDevice(
      {{0, {BarType::kMemory32, 0x1000, false}}, {2, {BarType::kMemory64, 0x10000, false}}},
      &slot_a);
  auto b = AddDevice({{0, {BarType::kMemory32, 0x4000, false}}}, &slot_b);
  EXPECT_EQ(slot_a, 1);
  EXPECT_EQ(slot_b, 2);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto [dev, slot] : {std::pair{a, slot_a}, std::pair{b, slot_b}}) {
    EXPECT_NE(CfgRead(slot, kCommand, 2) & kCommandMemory, 0u);
    for (int i = 0; i < kNumBars; ++i) {
      auto bar = dev->GetBar(i);
      if (!bar) continue;
      EXPECT_EQ(bar->address % bar->size, 0u);
      EXPECT_GE(bar->address, kWindowBase);
      EXPECT_LE(bar->address + bar->size, kWindowBase + kWindowSize);
      EXPECT_EQ(root_->MappedAddress(slot, i), bar->address);
      ranges.push_back({bar->address, bar->size});
      bool hit = false;
      EXPECT_EQ(MmioRead(bar->address + bar->size - 4, 4, &hit), (0x40u + i) * 0x01010101u);
      EXPECT_TRUE(hit);
      EXPECT_EQ(dev->last_access, (std::pair<int, uint64_t>{i, bar->size - 4}));
    }
  }
  ASSERT_EQ(ranges.size(), 3u);
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    EXPECT_LE(ranges[i - 1].first + ranges[i - 1].second, ranges[i].first);
  }
  ASSERT_FALSE(a->mapped_log.empty());
}

TEST_F(PciRootTest, SixtyFourBitBarsUseTheHighWindowWhenGiven) {
  MakeRoot(PciRootConfig{.mmio32 = {kWindowBase, kWindowSize},
                         .mmio64 = PciWindow{0x8000000000, 0x100000000}});
  auto dev = AddDevice(
      {{0, {BarType::kMemory64, 0x4000, true}}, {2, {BarType::kMemory32, 0x1000, false}}});
  EXPECT_EQ(dev->GetBar(0)->address, 0x8000000000u);
  EXPECT_EQ(dev->GetBar(2)->address, kWindowBase);
}

TEST_F(PciRootTest, IoBarsNeedAnIoWindow) {
  auto unassigned = AddDevice({{4, {BarType::kIo, 0x20, false}}});
  EXPECT_EQ(unassigned->GetBar(4)->address, 0u);
  EXPECT_EQ(root_->MappedAddress(1, 4), std::nullopt);

  MakeRoot(PciRootConfig{.mmio32 = {kWindowBase, kWindowSize}, .io = PciWindow{0x1000, 0x1000}});
  uint8_t slot = 0;
  auto dev = AddDevice({{4, {BarType::kIo, 0x20, false}}}, &slot);
  EXPECT_EQ(dev->GetBar(4)->address, 0x1000u);
  EXPECT_NE(CfgRead(slot, kCommand, 2) & kCommandIo, 0u);
  EXPECT_EQ(In(0x1004, 1), 0x44u);
  EXPECT_EQ(dev->last_access, (std::pair<int, uint64_t>{4, 4}));
}

TEST_F(PciRootTest, ConfigPortsAddressAndData) {
  AddDevice({{0, {BarType::kMemory32, 0x1000, false}}});
  Out(0xcf8, 4, Cf8(0, 1, 0, kVendorId));
  EXPECT_EQ(In(0xcf8, 4), Cf8(0, 1, 0, kVendorId));
  EXPECT_EQ(In(0xcfc, 4), 0x56781234u);
  EXPECT_EQ(In(0xcfc, 2), 0x1234u);
  EXPECT_EQ(In(0xcfe, 2), 0x5678u);
  EXPECT_EQ(In(0xcfd, 1), 0x12u);
  EXPECT_EQ(In(0xcff, 1), 0x56u);
  EXPECT_EQ(In(0xcfd, 2), 0x7812u);  // word inside the dword
  // Accesses leaving the data window (the bus stops those reaching past
  // 0xCFF; the device refuses them too).
  uint8_t word[2] = {0, 0};
  config_io_->Read(7, word);
  EXPECT_EQ(word[0] & word[1], 0xff);
  uint8_t dword[4] = {0, 0, 0, 0};
  config_io_->Read(5, dword);
  EXPECT_EQ(dword[0] & dword[1] & dword[2] & dword[3], 0xff);
  uint8_t three[3] = {0, 0, 0};
  config_io_->Read(4, three);
  EXPECT_EQ(three[0] & three[1] & three[2], 0xff);
  config_io_->Write(5, std::span<const uint8_t>(dword, 4));
  // Low address bits are not part of CONFIG_ADDRESS.
  Out(0xcf8, 4, Cf8(0, 1, 0, kVendorId) | 3);
  EXPECT_EQ(In(0xcf8, 4), Cf8(0, 1, 0, kVendorId));
  // Byte/word accesses to 0xCF8-0xCFB leave CONFIG_ADDRESS alone.
  Out(0xcfb, 1, 0x01);
  Out(0xcf8, 2, 0);
  EXPECT_EQ(In(0xcf8, 4), Cf8(0, 1, 0, kVendorId));
  EXPECT_EQ(In(0xcf8, 2), 0xffffu);
  // Writes through the data port.
  Out(0xcf8, 4, Cf8(0, 1, 0, kInterruptLine));
  Out(0xcfc, 1, 10);
  EXPECT_EQ(In(0xcfc, 1), 10u);
  // Disabled CONFIG_ADDRESS: all-ones, writes dropped.
  Out(0xcf8, 4, Cf8(0, 1, 0, kInterruptLine) & 0x7fffffff);
  EXPECT_EQ(In(0xcfc, 4), 0xffffffffu);
  Out(0xcfc, 1, 99);
  Out(0xcf8, 4, Cf8(0, 1, 0, kInterruptLine));
  EXPECT_EQ(In(0xcfc, 1), 10u);
}

TEST_F(PciRootTest, NonexistentFunctionsReadAllOnes) {
  AddDevice({});
  struct Case {
    uint8_t bus, dev, fn;
  } cases[] = {{0, 2, 0}, {0, 31, 0}, {0, 1, 1}, {0, 1, 7}, {1, 0, 0}, {255, 1, 0}};
  for (auto c : cases) {
    Out(0xcf8, 4, Cf8(c.bus, c.dev, c.fn, 0));
    EXPECT_EQ(In(0xcfc, 4), 0xffffffffu);
    EXPECT_EQ(In(0xcfe, 2), 0xffffu);
    EXPECT_EQ(MmioRead(Ecam(c.bus, c.dev, c.fn, 0), 4), 0xffffffffu);
    EXPECT_EQ(MmioRead(Ecam(c.bus, c.dev, c.fn, 0x100), 2), 0xffffu);
    MmioWrite(Ecam(c.bus, c.dev, c.fn, kCommand), 2, 0xffff);  // no crash, no effect
  }
  EXPECT_EQ(CfgRead(1, kVendorId, 2), 0x1234u);
}

TEST_F(PciRootTest, EcamChecksWidths) {
  AddDevice({});
  EXPECT_EQ(MmioRead(Ecam(0, 1, 0, 0), 4), 0x56781234u);
  EXPECT_EQ(MmioRead(Ecam(0, 1, 0, 1), 1), 0x12u);
  EXPECT_EQ(MmioRead(Ecam(0, 1, 0, 1), 2), 0x7812u);
  EXPECT_EQ(MmioRead(Ecam(0, 1, 0, 0), 8), 0xffffffffffffffffu);
  EXPECT_EQ(MmioRead(Ecam(0, 1, 0, 2), 4), 0xffffffffu);
  EXPECT_EQ(MmioRead(Ecam(0, 1, 0, 3), 2), 0xffffu);
  EXPECT_EQ(MmioRead(Ecam(0, 1, 0, 0xffc), 4), 0u);  // extended space exists, empty
  MmioWrite(Ecam(0, 1, 0, kCommand), 8, 0xffffffffffffffff);
  MmioWrite(Ecam(0, 1, 0, kCommand + 1), 4, 0xffffffff);
  EXPECT_EQ(CfgRead(1, kCommand, 2), 0u);
  // Direct calls with absurd values.
  EXPECT_EQ(root_->ReadConfig(0, 200, 9, 0xffffff, 4), 0xffffffffu);
  EXPECT_EQ(root_->ReadConfig(0, 1, 0, 0, 3), 0xffffffu);
  root_->WriteConfig(0, 1, 0, kCommand, 0, 0xffff);
}

TEST_F(PciRootTest, GuestMovesABarAndTheRegistrationFollows) {
  uint8_t slot = 0;
  auto dev = AddDevice({{0, {BarType::kMemory32, 0x1000, false}}}, &slot);
  const uint64_t old_address = dev->GetBar(0)->address;
  dev->mapped_log.clear();
  CfgWrite(slot, kBar0, 4, 0xc8000000);
  EXPECT_EQ(root_->MappedAddress(slot, 0), 0xc8000000u);
  bool hit = true;
  MmioRead(old_address, 4, &hit);
  EXPECT_FALSE(hit);
  MmioRead(0xc8000ffc, 4, &hit);
  EXPECT_TRUE(hit);
  using Log = std::vector<std::pair<int, std::optional<uint64_t>>>;
  EXPECT_EQ(dev->mapped_log, (Log{{0, std::nullopt}, {0, 0xc8000000}}));
  // Other config writes leave it alone.
  dev->mapped_log.clear();
  CfgWrite(slot, kInterruptLine, 1, 5);
  EXPECT_TRUE(dev->mapped_log.empty());
}

TEST_F(PciRootTest, SizingWithDecodeOnDoesNotMoveTheMapping) {
  uint8_t slot = 0;
  auto dev = AddDevice({{0, {BarType::kMemory64, 0x4000, false}}}, &slot);
  const uint64_t address = dev->GetBar(0)->address;
  dev->mapped_log.clear();
  // Linux's sequence for a 64-bit BAR: size both halves, restore both.
  CfgWrite(slot, kBar0, 4, 0xffffffff);
  EXPECT_EQ(CfgRead(slot, kBar0, 4), 0xffffc004u);
  CfgWrite(slot, kBar0 + 4, 4, 0xffffffff);
  EXPECT_EQ(CfgRead(slot, kBar0 + 4, 4), 0xffffffffu);
  CfgWrite(slot, kBar0, 4, static_cast<uint32_t>(address));
  EXPECT_EQ(root_->MappedAddress(slot, 0), address);
  CfgWrite(slot, kBar0 + 4, 4, static_cast<uint32_t>(address >> 32));
  EXPECT_EQ(root_->MappedAddress(slot, 0), address);
  EXPECT_TRUE(dev->mapped_log.empty());
}

TEST_F(PciRootTest, DecodeBitControlsTheRegistration) {
  uint8_t slot = 0;
  auto dev = AddDevice({{0, {BarType::kMemory32, 0x1000, false}}}, &slot);
  const uint64_t address = dev->GetBar(0)->address;
  CfgWrite(slot, kCommand, 2, 0);
  EXPECT_EQ(root_->MappedAddress(slot, 0), std::nullopt);
  bool hit = true;
  MmioRead(address, 4, &hit);
  EXPECT_FALSE(hit);
  // Reprogramming while decode is off maps at the new place once enabled.
  CfgWrite(slot, kBar0, 4, 0xc9000000);
  EXPECT_EQ(root_->MappedAddress(slot, 0), std::nullopt);
  CfgWrite(slot, kCommand, 2, kCommandMemory);
  EXPECT_EQ(root_->MappedAddress(slot, 0), 0xc9000000u);
  // Address zero means unassigned: not mapped even with decode on.
  CfgWrite(slot, kBar0, 4, 0);
  EXPECT_EQ(root_->MappedAddress(slot, 0), std::nullopt);
  EXPECT_EQ(dev->mapped_log.back(), (std::pair<int, std::optional<uint64_t>>{0, std::nullopt}));
}

TEST_F(PciRootTest, OverlappingMoveIsRefusedAndLeavesTheBarUnmapped) {
  uint8_t slot_a = 0, slot_b = 0;
  auto a = AddDevice({{0, {BarType::kMemory32, 0x1000, false}}}, &slot_a);
  auto b = AddDevice({{0, {BarType::kMemory32, 0x1000, false}}}, &slot_b);
  const uint64_t a_address = a->GetBar(0)->address;
  CfgWrite(slot_b, kBar0, 4, static_cast<uint32_t>(a_address));
  EXPECT_EQ(root_->MappedAddress(slot_b, 0), std::nullopt);
  EXPECT_EQ(root_->MappedAddress(slot_a, 0), a_address);
  MmioRead(a_address, 4);
  EXPECT_EQ(a->last_access.first, 0);
  EXPECT_EQ(b->last_access.first, -1);
  // Onto the ECAM window: refused too.
  CfgWrite(slot_b, kBar0, 4, static_cast<uint32_t>(kEcamBase));
  EXPECT_EQ(root_->MappedAddress(slot_b, 0), std::nullopt);
  EXPECT_EQ(MmioRead(Ecam(0, slot_a, 0, 0), 2), 0x1234u);
  // A free place works again.
  CfgWrite(slot_b, kBar0, 4, 0xca000000);
  EXPECT_EQ(root_->MappedAddress(slot_b, 0), 0xca000000u);
}

// Linux on arm64 reassigns every BAR, largest first, with decoding on: a
// BAR can land on one another device still decodes, for a few writes. Once
// that one moves away (or stops decoding) the refused BAR is mapped.
TEST_F(PciRootTest, RefusedBarIsMappedOnceTheOverlapIsGone) {
  uint8_t slot_a = 0, slot_b = 0, slot_c = 0;
  auto a = AddDevice({{0, {BarType::kMemory32, 0x1000, false}}}, &slot_a);
  auto b = AddDevice({{0, {BarType::kMemory32, 0x20000, false}}}, &slot_b);
  auto c = AddDevice({{0, {BarType::kMemory32, 0x1000, false}}}, &slot_c);
  const uint64_t a_address = a->GetBar(0)->address;
  CfgWrite(slot_b, kBar0, 4, static_cast<uint32_t>(a_address));
  EXPECT_EQ(root_->MappedAddress(slot_b, 0), std::nullopt);
  // c moving frees room elsewhere: b is tried again, still overlaps a.
  CfgWrite(slot_c, kBar0, 4, 0xcb000000);
  EXPECT_EQ(root_->MappedAddress(slot_b, 0), std::nullopt);
  // a leaves: b gets the place it was given, and hears about it.
  CfgWrite(slot_a, kBar0, 4, 0xca000000);
  EXPECT_EQ(root_->MappedAddress(slot_a, 0), 0xca000000u);
  EXPECT_EQ(root_->MappedAddress(slot_b, 0), a_address);
  {
    std::lock_guard lock(b->mutex_);
    ASSERT_FALSE(b->mapped_log.empty());
    EXPECT_EQ(b->mapped_log.back(), (std::pair<int, std::optional<uint64_t>>{0, a_address}));
  }
  MmioRead(a_address + 0x10, 4);
  EXPECT_EQ(b->last_access, (std::pair<int, uint64_t>{0, 0x10}));
  // The same when the blocker stops decoding instead of moving.
  CfgWrite(slot_c, kBar0, 4, 0xca000000);  // onto a: refused
  EXPECT_EQ(root_->MappedAddress(slot_c, 0), std::nullopt);
  CfgWrite(slot_a, kCommand, 2, 0);
  EXPECT_EQ(root_->MappedAddress(slot_a, 0), std::nullopt);
  EXPECT_EQ(root_->MappedAddress(slot_c, 0), 0xca000000u);
}

TEST_F(PciRootTest, AttachFailures) {
  MakeRoot(PciRootConfig{.mmio32 = {kWindowBase, 0x2000}});
  AddDevice({{0, {BarType::kMemory32, 0x2000, false}}});
  auto full = std::make_shared<TestDevice>(
      std::vector<std::pair<int, BarSpec>>{{0, {BarType::kMemory32, 0x1000, false}}});
  auto slot = root_->Add(full);
  EXPECT_FALSE(slot.ok());
  EXPECT_NE(slot.status().message().find("no room for BAR 0"), std::string::npos);

  // Attach needs a reserved, free slot.
  EXPECT_FALSE(root_->Attach(PciRoot::Slot{.device = 5}, full).ok());
  auto reserved = root_->ReserveSlot();
  ASSERT_TRUE(reserved.ok());
  EXPECT_FALSE(root_->Attach(*reserved, nullptr).ok());
  MakeRoot(PciRootConfig{.mmio32 = {kWindowBase, kWindowSize}});
  auto r2 = root_->ReserveSlot();
  ASSERT_TRUE(r2.ok());
  ASSERT_TRUE(
      root_->Attach(*r2, std::make_shared<TestDevice>(std::vector<std::pair<int, BarSpec>>{}))
          .ok());
  EXPECT_FALSE(
      root_->Attach(*r2, std::make_shared<TestDevice>(std::vector<std::pair<int, BarSpec>>{}))
          .ok());

  // A window that collides with something already on the bus.
  MakeRoot(PciRootConfig{.mmio32 = {kWindowBase, kWindowSize}});
  ASSERT_TRUE(mmio_->Register(kWindowBase, 0x1000, config_io_, "blocker").ok());
  auto blocked = std::make_shared<TestDevice>(
      std::vector<std::pair<int, BarSpec>>{{0, {BarType::kMemory32, 0x1000, false}}});
  EXPECT_FALSE(root_->Add(blocked).ok());
}

TEST_F(PciRootTest, BusHoldsThirtyTwoDevices) {
  for (int i = 1; i < kDevicesPerBus; ++i) AddDevice({});
  auto device = std::make_shared<TestDevice>(std::vector<std::pair<int, BarSpec>>{});
  EXPECT_FALSE(root_->Add(device).ok());
  EXPECT_EQ(CfgRead(31, kVendorId, 2), 0x1234u);
}

TEST(PciRootCreateTest, RejectsBadWindows) {
  Bus mmio("mmio");
  std::array<std::shared_ptr<IrqLine>, 4> none;
  EXPECT_FALSE(PciRoot::Create({.mmio32 = {0xc0000000, 0}}, &mmio, nullptr, none).ok());
  EXPECT_FALSE(PciRoot::Create({.mmio32 = {0xf0000000, 0x20000000}}, &mmio, nullptr, none).ok());
  EXPECT_FALSE(PciRoot::Create({.mmio32 = {0xc0000000, 0x1000}}, nullptr, nullptr, none).ok());
  EXPECT_FALSE(PciRoot::Create(
                   {.mmio32 = {0xc0000000, 0x1000}, .mmio64 = PciWindow{~uint64_t{0} - 10, 0x1000}},
                   &mmio, nullptr, none)
                   .ok());
  EXPECT_FALSE(PciRoot::Create({.mmio32 = {0xc0000000, 0x1000}, .io = PciWindow{0x1000, 0x100}},
                               &mmio, nullptr, none)
                   .ok());
  Bus pio("pio");
  EXPECT_FALSE(PciRoot::Create({.mmio32 = {0xc0000000, 0x1000}, .io = PciWindow{0xf000, 0x2000}},
                               &mmio, &pio, none)
                   .ok());
}

TEST_F(PciRootTest, SlotsGetSwizzledIntxLines) {
  std::vector<PciRoot::Slot> slots;
  for (int i = 0; i < 5; ++i) {
    auto slot = root_->ReserveSlot();
    ASSERT_TRUE(slot.ok());
    slots.push_back(*slot);
  }
  // Slot 0 is the host bridge; the first free slot is 1.
  EXPECT_EQ(slots[0].device, 1);
  EXPECT_EQ(slots[0].bdf, 0x08);
  EXPECT_EQ(slots[4].bdf, 0x28);
  slots[0].intx->SetLevel(true);  // slot 1 INTA -> line 1
  EXPECT_TRUE(lines_[1]->level());
  slots[4].intx->SetLevel(true);  // slot 5 INTA -> line 1 as well
  slots[0].intx->SetLevel(false);
  EXPECT_TRUE(lines_[1]->level());  // wired-OR: slot 5 still asserts it
  slots[4].intx->SetLevel(false);
  EXPECT_FALSE(lines_[1]->level());
  slots[1].intx->SetLevel(true);  // slot 2 -> line 2
  slots[1].intx->SetLevel(true);  // repeated: counted once
  EXPECT_TRUE(lines_[2]->level());
  slots[1].intx->SetLevel(false);
  EXPECT_FALSE(lines_[2]->level());
  EXPECT_EQ(lines_[2]->levels(), (std::vector<bool>{true, false}));
  EXPECT_FALSE(lines_[0]->level());
  EXPECT_EQ(IntxSwizzle(0, 4), 3);
  EXPECT_EQ(IntxSwizzle(3, 2), 0);
}

}  // namespace
}  // namespace skiff::pci
