#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "devices/pci/pci_constants.h"
#include "devices/pci/pci_ecam.h"
#include "devices/pci/pci_root.h"
#include "devices/virtio/pci_layout.h"
#include "devices/virtio/pci_transport.h"
#include "devices/virtio/status_table.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_irq_line.h"
#include "tests/unit/pci_test_fakes.h"
#include "vmm/log.h"

namespace skiff::virtio {
namespace {

namespace layout = pci_layout;

constexpr uint64_t kFeatureVersion1 = uint64_t{1} << VIRTIO_F_VERSION_1;
constexpr uint64_t kOffered = kFeatureVersion1 | (1u << 5) | (1u << 9);
constexpr uint8_t kAck = kStatusAcknowledge;
constexpr uint8_t kDrv = kStatusAcknowledge | kStatusDriver;
constexpr uint8_t kFeat = kDrv | kStatusFeaturesOk;
constexpr uint8_t kLive = kFeat | kStatusDriverOk;

class FakeDevice : public VirtioDevice {
 public:
  FakeDevice() {
    for (size_t i = 0; i < config.size(); ++i) config[i] = i + 1;
  }
  uint32_t device_id() const override { return VIRTIO_ID_BLOCK; }
  uint64_t device_features() const override { return features; }
  uint16_t num_queues() const override { return queues; }
  uint16_t max_queue_size() const override { return 128; }
  uint32_t config_size() const override { return config.size(); }
  void ReadConfig(uint32_t offset, std::span<uint8_t> data) override {
    std::lock_guard lock(mutex);
    for (size_t i = 0; i < data.size(); ++i) {
      data[i] = offset + i < config.size() ? config[offset + i] : 0;
    }
  }
  void WriteConfig(uint32_t offset, std::span<const uint8_t> data) override {
    std::lock_guard lock(mutex);
    for (size_t i = 0; i < data.size(); ++i) {
      if (offset + i < config.size()) config[offset + i] = data[i];
    }
  }
  absl::Status Activate(ActivationContext context) override {
    std::lock_guard lock(mutex);
    ++activations;
    last_context = std::move(context);
    return activate_result;
  }
  void Reset() override {
    std::lock_guard lock(mutex);
    ++resets;
    if (last_context) {
      // A real device takes its notify eventfds out of the event loop here.
      for (const ActivatedQueue& q : last_context->queues) {
        if (::fcntl(q.notify_fd, F_GETFD) < 0) ++resets_with_closed_fds;
      }
    }
    last_context.reset();
  }
  std::string name() const override { return "fake-blk"; }

  std::mutex mutex;
  uint64_t features = kOffered;
  uint16_t queues = 2;
  std::vector<uint8_t> config = std::vector<uint8_t>(8);
  absl::Status activate_result = absl::OkStatus();
  int activations = 0;
  int resets = 0;
  int resets_with_closed_fds = 0;
  std::optional<ActivationContext> last_context;
};

class VirtioPciTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(); }

  void Make(bool with_msi = true) {
    transport_.reset();
    device_ = std::make_shared<FakeDevice>();
    intx_ = std::make_shared<FakeIrqLine>();
    VirtioPciEnv env;
    env.event_loop = reinterpret_cast<EventLoop*>(0x1000);  // only passed through
    env.ioevents = &ioevents_;
    env.msi = with_msi ? &msi_ : nullptr;
    env.intx = intx_;
    env.bdf = 0x18;
    auto transport = VirtioPciTransport::Create(device_, env);
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *transport;
  }

  uint64_t Bar(uint64_t offset, size_t size) {
    uint8_t bytes[8] = {};
    transport_->ReadBar(0, offset, std::span<uint8_t>(bytes, size));
    uint64_t value = 0;
    std::memcpy(&value, bytes, 8);
    return value;
  }
  void SetBar(uint64_t offset, size_t size, uint64_t value) {
    uint8_t bytes[8];
    std::memcpy(bytes, &value, 8);
    transport_->WriteBar(0, offset, std::span<const uint8_t>(bytes, size));
  }
  uint64_t Common(uint32_t reg, size_t size) { return Bar(layout::kCommonOffset + reg, size); }
  void SetCommon(uint32_t reg, size_t size, uint64_t value) {
    SetBar(layout::kCommonOffset + reg, size, value);
  }
  uint8_t Status() { return Common(layout::kDeviceStatus, 1); }
  void SetStatus(uint8_t status) { SetCommon(layout::kDeviceStatus, 1, status); }
  void Negotiate(uint64_t features = kOffered) {
    SetStatus(kAck);
    SetStatus(kDrv);
    SetCommon(layout::kDriverFeatureSelect, 4, 0);
    SetCommon(layout::kDriverFeature, 4, features & 0xffffffff);
    SetCommon(layout::kDriverFeatureSelect, 4, 1);
    SetCommon(layout::kDriverFeature, 4, features >> 32);
    SetStatus(kFeat);
  }
  void SetUpQueue(uint16_t q, uint16_t size, uint64_t desc, uint64_t driver, uint64_t device,
                  uint16_t vector = kNoVector) {
    SetCommon(layout::kQueueSelect, 2, q);
    SetCommon(layout::kQueueSize, 2, size);
    SetCommon(layout::kQueueDesc, 4, desc & 0xffffffff);
    SetCommon(layout::kQueueDesc + 4, 4, desc >> 32);
    SetCommon(layout::kQueueDriver, 8, driver);
    SetCommon(layout::kQueueDevice, 4, device & 0xffffffff);
    SetCommon(layout::kQueueDevice + 4, 4, device >> 32);
    SetCommon(layout::kQueueMsixVector, 2, vector);
    SetCommon(layout::kQueueEnable, 2, 1);
  }
  // Finds the vendor capability of `type`, or 0.
  uint32_t FindVirtioCap(uint8_t type) {
    uint32_t offset = transport_->ReadConfig(pci::kCapabilitiesPointer, 1);
    for (int guard = 0; offset != 0 && guard < 48; ++guard) {
      if (transport_->ReadConfig(offset, 1) == pci::kCapIdVendor &&
          transport_->ReadConfig(offset + layout::kCapCfgType, 1) == type) {
        return offset;
      }
      offset = transport_->ReadConfig(offset + 1, 1);
    }
    return 0;
  }
  uint32_t FindCap(uint8_t id) {
    uint32_t offset = transport_->ReadConfig(pci::kCapabilitiesPointer, 1);
    for (int guard = 0; offset != 0 && guard < 48; ++guard) {
      if (transport_->ReadConfig(offset, 1) == id) return offset;
      offset = transport_->ReadConfig(offset + 1, 1);
    }
    return 0;
  }
  void EnableMsix() {
    const uint32_t cap = FindCap(pci::kCapIdMsix);
    ASSERT_NE(cap, 0u);
    transport_->WriteConfig(cap + 2, 2, pci::kMsixControlEnable);
  }
  void ProgramVector(uint16_t vector, uint32_t data) {
    const uint64_t entry = transport_->msix_table_offset() + 16 * vector;
    SetBar(entry, 4, 0xfee00000);
    SetBar(entry + 4, 4, 0);
    SetBar(entry + 8, 4, data);
    SetBar(entry + 12, 4, 0);  // unmask
  }
  static uint64_t EventCount(int fd) {
    uint64_t count = 0;
    if (::read(fd, &count, sizeof(count)) != sizeof(count)) return 0;
    return count;
  }

  FakeIoEventRegistrar ioevents_;
  FakeMsiAllocator msi_;
  std::shared_ptr<FakeIrqLine> intx_;
  std::shared_ptr<FakeDevice> device_;
  std::shared_ptr<VirtioPciTransport> transport_;
};

TEST_F(VirtioPciTest, IdentityAndBar) {
  EXPECT_EQ(transport_->ReadConfig(pci::kVendorId, 2), 0x1af4u);
  EXPECT_EQ(transport_->ReadConfig(pci::kDeviceId, 2), 0x1040u + VIRTIO_ID_BLOCK);
  EXPECT_EQ(transport_->ReadConfig(pci::kRevisionId, 1), 1u);
  EXPECT_EQ(transport_->ReadConfig(pci::kRevisionId, 4) >> 8, 0x018000u);
  EXPECT_EQ(transport_->ReadConfig(pci::kSubsystemVendorId, 2), 0x1af4u);
  EXPECT_GE(transport_->ReadConfig(pci::kSubsystemId, 2), 0x40u);
  EXPECT_EQ(transport_->ReadConfig(pci::kInterruptPin, 1), pci::kInterruptPinA);
  auto bar = transport_->GetBar(0);
  ASSERT_TRUE(bar.has_value());
  EXPECT_EQ(bar->type, pci::BarType::kMemory64);
  EXPECT_EQ(bar->size, transport_->bar_size());
  EXPECT_TRUE(std::has_single_bit(bar->size));
  EXPECT_EQ(transport_->msix_vectors(), 3u);  // two queues + config
  transport_->WriteConfig(pci::kBar0, 4, 0xffffffff);
  EXPECT_EQ(transport_->ReadConfig(pci::kBar0, 4),
            static_cast<uint32_t>(~(transport_->bar_size() - 1)) | 0x4);
}

TEST_F(VirtioPciTest, VendorCapabilitiesDescribeTheBar) {
  struct Expect {
    uint8_t type;
    uint64_t offset;
    uint64_t min_length;
  };
  for (auto e : {Expect{VIRTIO_PCI_CAP_COMMON_CFG, layout::kCommonOffset, 0x38},
                 Expect{VIRTIO_PCI_CAP_NOTIFY_CFG, layout::kNotifyOffset, 8},
                 Expect{VIRTIO_PCI_CAP_ISR_CFG, layout::kIsrOffset, 1},
                 Expect{VIRTIO_PCI_CAP_DEVICE_CFG, layout::kDeviceOffset, 8}}) {
    const uint32_t cap = FindVirtioCap(e.type);
    ASSERT_NE(cap, 0u) << "cfg_type " << int{e.type};
    EXPECT_EQ(transport_->ReadConfig(cap + layout::kCapBar, 1), 0u);
    EXPECT_EQ(transport_->ReadConfig(cap + layout::kCapOffset, 4), e.offset);
    const uint64_t length = transport_->ReadConfig(cap + layout::kCapLengthField, 4);
    EXPECT_GE(length, e.min_length);
    EXPECT_LE(e.offset + length, transport_->bar_size());
    EXPECT_GE(transport_->ReadConfig(cap + layout::kCapLength, 1), 16u);
  }
  const uint32_t notify = FindVirtioCap(VIRTIO_PCI_CAP_NOTIFY_CFG);
  EXPECT_EQ(transport_->ReadConfig(notify + layout::kNotifyCapMultiplier, 4), 4u);
  EXPECT_EQ(transport_->ReadConfig(notify + layout::kCapLength, 1), 20u);
  EXPECT_NE(FindVirtioCap(VIRTIO_PCI_CAP_PCI_CFG), 0u);
  // Read-only: the driver cannot move the common config.
  const uint32_t common = FindVirtioCap(VIRTIO_PCI_CAP_COMMON_CFG);
  transport_->WriteConfig(common + layout::kCapOffset, 4, 0x1234);
  EXPECT_EQ(transport_->ReadConfig(common + layout::kCapOffset, 4), 0u);
  // MSI-X: 3 entries, table and PBA in BAR 0 where the transport says.
  const uint32_t msix = FindCap(pci::kCapIdMsix);
  ASSERT_NE(msix, 0u);
  EXPECT_EQ(transport_->ReadConfig(msix + 2, 2), 2u);
  EXPECT_EQ(transport_->ReadConfig(msix + 4, 4), transport_->msix_table_offset());
  EXPECT_EQ(transport_->ReadConfig(msix + 8, 4), transport_->msix_pba_offset());
  EXPECT_NE(transport_->ReadConfig(pci::kStatus, 2) & pci::kStatusCapList, 0u);
}

TEST_F(VirtioPciTest, NoMsixWithoutAnAllocator) {
  Make(/*with_msi=*/false);
  EXPECT_EQ(FindCap(pci::kCapIdMsix), 0u);
  EXPECT_EQ(transport_->msix_vectors(), 0u);
  SetCommon(layout::kMsixConfig, 2, 0);
  EXPECT_EQ(Common(layout::kMsixConfig, 2), kNoVector);
}

TEST_F(VirtioPciTest, FeatureNegotiation) {
  SetCommon(layout::kDeviceFeatureSelect, 4, 0);
  EXPECT_EQ(Common(layout::kDeviceFeature, 4), kOffered & 0xffffffff);
  SetCommon(layout::kDeviceFeatureSelect, 4, 1);
  EXPECT_EQ(Common(layout::kDeviceFeature, 4), kOffered >> 32);
  SetCommon(layout::kDeviceFeatureSelect, 4, 2);
  EXPECT_EQ(Common(layout::kDeviceFeature, 4), 0u);
  EXPECT_EQ(Common(layout::kNumQueues, 2), 2u);

  // Not offered: FEATURES_OK does not stick.
  Negotiate(kOffered | (1u << 7));
  EXPECT_EQ(Status(), kDrv);
  // No VERSION_1: refused as well.
  SetStatus(0);
  Negotiate(1u << 5);
  EXPECT_EQ(Status(), kDrv);
  // A proper subset is accepted, then frozen.
  SetStatus(0);
  Negotiate(kFeatureVersion1 | (1u << 9));
  EXPECT_EQ(Status(), kFeat);
  SetCommon(layout::kDriverFeatureSelect, 4, 0);
  SetCommon(layout::kDriverFeature, 4, 1u << 5);
  EXPECT_EQ(Common(layout::kDriverFeature, 4), 1u << 9);
  SetCommon(layout::kDriverFeatureSelect, 4, 1);
  EXPECT_EQ(Common(layout::kDriverFeature, 4), kFeatureVersion1 >> 32);
}

TEST_F(VirtioPciTest, StatusFollowsTheTable) {
  SetStatus(kLive);  // straight to DRIVER_OK: no
  EXPECT_EQ(Status(), 0u);
  SetStatus(kAck);
  SetStatus(kAck | kStatusFeaturesOk);  // skipping DRIVER
  EXPECT_EQ(Status(), kAck);
  SetStatus(kDrv);
  SetStatus(kDrv | kStatusDriverOk);  // skipping FEATURES_OK
  EXPECT_EQ(Status(), kDrv);
  SetStatus(kAck);  // going back
  EXPECT_EQ(Status(), kDrv);
  SetStatus(kDrv | kStatusFailed);
  EXPECT_EQ(Status(), kDrv | kStatusFailed);
  EXPECT_EQ(device_->activations, 0);
  for (uint8_t from = 0; from < 255; ++from) {
    EXPECT_EQ(IsValidStatusTransition(from, from | kStatusFailed), true);
  }
  EXPECT_FALSE(IsValidStatusTransition(kFeat, kDrv));
  // Wrong widths on device_status are ignored.
  SetStatus(0);
  SetCommon(layout::kDeviceStatus, 2, kAck);
  EXPECT_EQ(Status(), 0u);
}

TEST_F(VirtioPciTest, QueueSetUpAndFreeze) {
  Negotiate();
  SetCommon(layout::kQueueSelect, 2, 1);
  EXPECT_EQ(Common(layout::kQueueSize, 2), 128u);  // max until the driver shrinks it
  EXPECT_EQ(Common(layout::kQueueNotifyOff, 2), 1u);
  EXPECT_EQ(Common(layout::kQueueMsixVector, 2), kNoVector);
  SetCommon(layout::kQueueSize, 2, 0);    // ignored
  SetCommon(layout::kQueueSize, 2, 256);  // above the maximum: ignored
  EXPECT_EQ(Common(layout::kQueueSize, 2), 128u);
  SetUpQueue(1, 64, 0x1'0000'1000, 0x2000, 0x3000, 1);
  EXPECT_EQ(Common(layout::kQueueSize, 2), 64u);
  EXPECT_EQ(Common(layout::kQueueDesc, 8), 0x100001000u);
  EXPECT_EQ(Common(layout::kQueueDesc + 4, 4), 1u);
  EXPECT_EQ(Common(layout::kQueueDriver, 4), 0x2000u);
  EXPECT_EQ(Common(layout::kQueueDevice, 8), 0x3000u);
  EXPECT_EQ(Common(layout::kQueueMsixVector, 2), 1u);
  EXPECT_EQ(Common(layout::kQueueEnable, 2), 1u);
  // Enabled: frozen.
  SetCommon(layout::kQueueSize, 2, 32);
  SetCommon(layout::kQueueDesc, 4, 0x5000);
  SetCommon(layout::kQueueMsixVector, 2, 2);
  SetCommon(layout::kQueueEnable, 2, 0);
  EXPECT_EQ(Common(layout::kQueueSize, 2), 64u);
  EXPECT_EQ(Common(layout::kQueueDesc, 4), 0x1000u);
  EXPECT_EQ(Common(layout::kQueueMsixVector, 2), 1u);
  EXPECT_EQ(Common(layout::kQueueEnable, 2), 1u);
  // Vectors past the table read back as NO_VECTOR.
  SetCommon(layout::kQueueSelect, 2, 0);
  SetCommon(layout::kQueueMsixVector, 2, 3);
  EXPECT_EQ(Common(layout::kQueueMsixVector, 2), kNoVector);
  SetCommon(layout::kMsixConfig, 2, 7);
  EXPECT_EQ(Common(layout::kMsixConfig, 2), kNoVector);
  SetCommon(layout::kMsixConfig, 2, 2);
  EXPECT_EQ(Common(layout::kMsixConfig, 2), 2u);
  // Out-of-range queue_select: reads zero, writes go nowhere.
  SetCommon(layout::kQueueSelect, 2, 2);
  EXPECT_EQ(Common(layout::kQueueSelect, 2), 2u);
  SetCommon(layout::kQueueSize, 2, 16);
  SetCommon(layout::kQueueEnable, 2, 1);
  SetCommon(layout::kQueueDesc, 8, 0x7000);
  for (uint32_t reg : {layout::kQueueSize, layout::kQueueMsixVector, layout::kQueueEnable,
                       layout::kQueueNotifyOff}) {
    EXPECT_EQ(Common(reg, 2), 0u);
  }
  EXPECT_EQ(Common(layout::kQueueDesc, 8), 0u);
  SetCommon(layout::kQueueSelect, 2, 0xffff);
  EXPECT_EQ(Common(layout::kQueueSize, 2), 0u);
  // After DRIVER_OK even a disabled queue is frozen.
  SetStatus(kLive);
  SetCommon(layout::kQueueSelect, 2, 0);
  SetCommon(layout::kQueueSize, 2, 16);
  EXPECT_EQ(Common(layout::kQueueSize, 2), 128u);
  EXPECT_EQ(Common(layout::kQueueEnable, 2), 0u);
}

TEST_F(VirtioPciTest, MisfitCommonAccessesAreIgnored) {
  SetCommon(layout::kQueueSelect, 4, 1);      // 32-bit write to a 16-bit field
  SetCommon(layout::kQueueSelect + 1, 1, 1);  // byte inside it
  EXPECT_EQ(Common(layout::kQueueSelect, 2), 0u);
  EXPECT_EQ(Common(layout::kNumQueues - 1, 2), 0u);  // straddles two fields
  EXPECT_EQ(Common(layout::kNumQueues, 4), 0u);
  EXPECT_EQ(Common(layout::kQueueDesc + 2, 4), 0u);   // not a 32-bit half
  EXPECT_EQ(Common(layout::kCommonSize - 4, 8), 0u);  // runs past the structure
  SetCommon(layout::kNumQueues, 2, 9);
  EXPECT_EQ(Common(layout::kNumQueues, 2), 2u);
  SetCommon(layout::kConfigGeneration, 1, 9);
  EXPECT_EQ(Common(layout::kConfigGeneration, 1), 0u);
  // Accesses past the BAR or of silly sizes.
  uint8_t big[16] = {};
  transport_->ReadBar(0, 0, big);
  transport_->WriteBar(0, 0, big);
  transport_->ReadBar(0, transport_->bar_size() - 2, std::span<uint8_t>(big, 4));
  transport_->WriteBar(0, ~uint64_t{0} - 1, std::span<const uint8_t>(big, 4));
  transport_->ReadBar(1, 0, std::span<uint8_t>(big, 4));
  EXPECT_EQ(Status(), 0u);
}

TEST_F(VirtioPciTest, ActivationContext) {
  Negotiate(kFeatureVersion1 | (1u << 5));
  SetUpQueue(0, 64, 0x10000, 0x11000, 0x12000, 0);
  SetStatus(kLive);
  EXPECT_EQ(Status(), kLive);
  ASSERT_EQ(device_->activations, 1);
  const ActivationContext& context = *device_->last_context;
  EXPECT_EQ(context.features, kFeatureVersion1 | (1u << 5));
  ASSERT_EQ(context.queues.size(), 2u);
  EXPECT_EQ(context.queues[0].config.size, 64);
  EXPECT_EQ(context.queues[0].config.desc_table, 0x10000u);
  EXPECT_EQ(context.queues[0].config.avail_ring, 0x11000u);
  EXPECT_EQ(context.queues[0].config.used_ring, 0x12000u);
  EXPECT_TRUE(context.queues[0].config.ready);
  EXPECT_FALSE(context.queues[1].config.ready);
  EXPECT_EQ(context.queues[0].notify_fd, transport_->notify_fd(0));
  EXPECT_EQ(context.queues[1].notify_fd, transport_->notify_fd(1));
  EXPECT_NE(context.queues[0].notify_fd, context.queues[1].notify_fd);
  EXPECT_NE(context.interrupt, nullptr);
  EXPECT_EQ(context.event_loop, reinterpret_cast<EventLoop*>(0x1000));
  // Rewriting DRIVER_OK does not activate twice.
  SetStatus(kLive);
  EXPECT_EQ(device_->activations, 1);
}

TEST_F(VirtioPciTest, PackedRingsPassThroughWithAnyQueueSize) {
  // The transport hands the device what was negotiated and the size the
  // driver chose; a packed ring's size need not be a power of two.
  const uint64_t packed = uint64_t{1} << VIRTIO_F_RING_PACKED;
  transport_.reset();
  device_->features = kOffered | packed;
  VirtioPciEnv env;
  env.event_loop = reinterpret_cast<EventLoop*>(0x1000);
  env.ioevents = &ioevents_;
  env.msi = &msi_;
  env.intx = intx_;
  env.bdf = 0x18;
  auto transport = VirtioPciTransport::Create(device_, env);
  ASSERT_TRUE(transport.ok()) << transport.status();
  transport_ = *transport;
  SetCommon(layout::kDeviceFeatureSelect, 4, 1);
  EXPECT_EQ(Common(layout::kDeviceFeature, 4), (kOffered | packed) >> 32);
  Negotiate(kFeatureVersion1 | packed);
  EXPECT_EQ(Status(), kFeat);
  SetUpQueue(0, 100, 0x10000, 0x11000, 0x11004, 0);
  SetStatus(kLive);
  ASSERT_EQ(device_->activations, 1);
  const ActivationContext& context = *device_->last_context;
  EXPECT_EQ(context.features, kFeatureVersion1 | packed);
  EXPECT_EQ(context.queues[0].config.size, 100);
  EXPECT_EQ(context.queues[0].config.avail_ring, 0x11000u);  // driver event area
  EXPECT_EQ(context.queues[0].config.used_ring, 0x11004u);   // device event area
}

TEST_F(VirtioPciTest, FailedActivationNeedsResetAndSaysSo) {
  device_->activate_result = absl::InvalidArgumentError("queue 0: ring outside RAM");
  Negotiate();
  SetStatus(kLive);
  EXPECT_EQ(Status(), kLive | kStatusNeedsReset);
  // MSI-X off: config interrupt by INTx with ISR bit 1.
  EXPECT_TRUE(intx_->level());
  EXPECT_EQ(Bar(layout::kIsrOffset, 1), kIsrConfig);
  EXPECT_FALSE(intx_->level());
  // The driver's read-modify-write of status keeps the device's bit.
  SetStatus(kLive | kStatusNeedsReset | kStatusFailed);
  EXPECT_EQ(Status(), kLive | kStatusNeedsReset | kStatusFailed);
  SetStatus(0);
  EXPECT_EQ(Status(), 0u);
}

TEST_F(VirtioPciTest, ResetClearsEverything) {
  EnableMsix();
  Negotiate();
  SetCommon(layout::kMsixConfig, 2, 2);
  SetUpQueue(1, 32, 0x1000, 0x2000, 0x3000, 1);
  SetStatus(kLive);
  ASSERT_EQ(device_->activations, 1);
  SetBar(layout::kNotifyOffset + 4, 2, 1);  // a kick before the reset
  SetStatus(0);
  EXPECT_EQ(device_->resets, 1);
  EXPECT_FALSE(device_->last_context.has_value());
  EXPECT_EQ(Status(), 0u);
  EXPECT_EQ(Common(layout::kMsixConfig, 2), kNoVector);
  SetCommon(layout::kDriverFeatureSelect, 4, 0);
  EXPECT_EQ(Common(layout::kDriverFeature, 4), 0u);
  EXPECT_EQ(Common(layout::kQueueSelect, 2), 0u);
  SetCommon(layout::kQueueSelect, 2, 1);
  EXPECT_EQ(Common(layout::kQueueSize, 2), 128u);
  EXPECT_EQ(Common(layout::kQueueEnable, 2), 0u);
  EXPECT_EQ(Common(layout::kQueueMsixVector, 2), kNoVector);
  EXPECT_EQ(Common(layout::kQueueDesc, 8), 0u);
  EXPECT_EQ(EventCount(transport_->notify_fd(1)), 0u);  // stale kick drained
  // And the device can be brought up again.
  Negotiate();
  SetUpQueue(0, 16, 0x1000, 0x2000, 0x3000);
  SetStatus(kLive);
  EXPECT_EQ(device_->activations, 2);
}

TEST_F(VirtioPciTest, IsrAndIntxWhenMsixIsOff) {
  Negotiate();
  SetStatus(kLive);
  auto interrupt = device_->last_context->interrupt;
  interrupt->NotifyQueue(0);
  EXPECT_TRUE(intx_->level());
  EXPECT_NE(transport_->ReadConfig(pci::kStatus, 2) & pci::kStatusInterrupt, 0u);
  EXPECT_NE(transport_->ReadConfig(pci::kCommand, 4) & (pci::kStatusInterrupt << 16), 0u);
  interrupt->NotifyConfigChange();
  EXPECT_EQ(Common(layout::kConfigGeneration, 1), 1u);
  EXPECT_EQ(Bar(layout::kIsrOffset, 1), kIsrQueue | kIsrConfig);
  EXPECT_FALSE(intx_->level());
  EXPECT_EQ(Bar(layout::kIsrOffset, 1), 0u);
  EXPECT_EQ(transport_->ReadConfig(pci::kStatus, 2) & pci::kStatusInterrupt, 0u);
  EXPECT_EQ(interrupt->QueueIrqFd(0), -1);
  // INTx disable in the command register holds the line low.
  transport_->WriteConfig(pci::kCommand, 2, pci::kCommandIntxDisable | pci::kCommandMemory);
  interrupt->NotifyQueue(1);
  EXPECT_FALSE(intx_->level());
  transport_->WriteConfig(pci::kCommand, 2, pci::kCommandMemory);
  EXPECT_TRUE(intx_->level());
  EXPECT_EQ(Bar(layout::kIsrOffset, 1), kIsrQueue);
  EXPECT_FALSE(intx_->level());
  interrupt->NotifyQueue(7);  // no such queue
  EXPECT_FALSE(intx_->level());
  // Only the ISR byte itself clears on read.
  interrupt->NotifyQueue(0);
  EXPECT_EQ(Bar(layout::kIsrOffset + 1, 1), 0u);
  EXPECT_TRUE(intx_->level());
}

// Fault injection: a driver that never reads ISR (INTx) leaves the line
// asserted once and ISR at two bits, however many completions come.
TEST_F(VirtioPciTest, ADriverThatNeverReadsIsrLeavesBoundedState) {
  Negotiate();
  SetStatus(kLive);
  auto interrupt = device_->last_context->interrupt;
  intx_->ClearHistory();
  for (int i = 0; i < 100000; ++i) {
    interrupt->NotifyQueue(i % 2);
    if (i % 1000 == 0) interrupt->NotifyConfigChange();
  }
  EXPECT_EQ(intx_->levels(), (std::vector<bool>{true}));
  EXPECT_EQ(Common(layout::kConfigGeneration, 1), 100u);
  EXPECT_EQ(Bar(layout::kIsrOffset, 1), kIsrQueue | kIsrConfig);
  EXPECT_FALSE(intx_->level());
}

// With MSI-X the message goes out each time (an eventfd write, which KVM
// coalesces), and a vector the driver masked and never unmasks keeps one
// pending bit, not a queue of messages.
TEST_F(VirtioPciTest, AMaskedVectorNeverUnmaskedKeepsOnePendingBit) {
  EnableMsix();
  ProgramVector(0, 0x40);
  Negotiate();
  SetUpQueue(0, 16, 0x1000, 0x2000, 0x3000, 0);
  SetStatus(kLive);
  SetBar(transport_->msix_table_offset() + 12, 4, 1);  // mask vector 0
  auto interrupt = device_->last_context->interrupt;
  for (int i = 0; i < 100000; ++i) interrupt->NotifyQueue(0);
  EXPECT_EQ(msi_.states[0]->trigger_count(), 0);
  EXPECT_EQ(Bar(transport_->msix_pba_offset(), 8), 1u);
  SetBar(transport_->msix_table_offset() + 12, 4, 0);
  EXPECT_EQ(msi_.states[0]->trigger_count(), 1);
}

// Skiff stopping with the device live (SIGTERM, not a guest power-off):
// the transport stops the device while the notify eventfds it watches are
// still open.
TEST_F(VirtioPciTest, DestroyingTheTransportStopsALiveDeviceFirst) {
  Negotiate();
  SetUpQueue(0, 16, 0x1000, 0x2000, 0x3000);
  SetStatus(kLive);
  transport_.reset();
  EXPECT_EQ(device_->resets, 1);
  EXPECT_EQ(device_->resets_with_closed_fds, 0);
  // A device never started is left alone.
  Make();
  transport_.reset();
  EXPECT_EQ(device_->resets, 0);
}

// A back-end completion that outlives a reset (the I/O thread was still
// finishing a request when the driver wrote status 0) must not interrupt
// the device's next activation, nor set its NEEDS_RESET.
TEST_F(VirtioPciTest, AnInterruptKeptPastAResetReachesNothing) {
  Negotiate();
  SetStatus(kLive);
  std::shared_ptr<VirtioInterrupt> stale = device_->last_context->interrupt;
  SetStatus(0);
  Negotiate();
  SetStatus(kLive);
  ASSERT_EQ(device_->activations, 2);
  stale->NotifyQueue(0);
  stale->NotifyConfigChange();
  stale->NeedsReset();
  EXPECT_FALSE(intx_->level());
  EXPECT_EQ(Status(), kLive);
  EXPECT_EQ(Common(layout::kConfigGeneration, 1), 0u);
  EXPECT_EQ(Bar(layout::kIsrOffset, 1), 0u);
  // The current activation's interrupt still works.
  device_->last_context->interrupt->NotifyQueue(0);
  EXPECT_TRUE(intx_->level());
  EXPECT_EQ(Bar(layout::kIsrOffset, 1), kIsrQueue);
}

TEST_F(VirtioPciTest, AnMsixVectorKeptPastAResetFiresNothing) {
  EnableMsix();
  ProgramVector(0, 0x40);
  Negotiate();
  SetUpQueue(0, 16, 0x1000, 0x2000, 0x3000, 0);
  SetStatus(kLive);
  std::shared_ptr<VirtioInterrupt> stale = device_->last_context->interrupt;
  ASSERT_GE(stale->QueueIrqFd(0), 0);
  SetStatus(0);
  Negotiate();
  SetUpQueue(0, 16, 0x1000, 0x2000, 0x3000, 0);
  SetStatus(kLive);
  stale->NotifyQueue(0);
  EXPECT_EQ(msi_.states[0]->trigger_count(), 0);
  EXPECT_EQ(stale->QueueIrqFd(0), -1);  // vhost must not be handed it either
  device_->last_context->interrupt->NotifyQueue(0);
  EXPECT_EQ(msi_.states[0]->trigger_count(), 1);
}

TEST_F(VirtioPciTest, MsixRoutesQueuesAndConfigChanges) {
  EnableMsix();
  for (uint16_t v = 0; v < 3; ++v) ProgramVector(v, 0x40 + v);
  Negotiate();
  SetCommon(layout::kMsixConfig, 2, 2);
  SetUpQueue(0, 16, 0x1000, 0x2000, 0x3000, 0);
  SetUpQueue(1, 16, 0x4000, 0x5000, 0x6000, kNoVector);
  SetStatus(kLive);
  auto interrupt = device_->last_context->interrupt;
  interrupt->NotifyQueue(0);
  EXPECT_EQ(msi_.states[0]->trigger_count(), 1);
  interrupt->NotifyQueue(1);  // NO_VECTOR: nothing at all
  interrupt->NotifyConfigChange();
  EXPECT_EQ(msi_.states[2]->trigger_count(), 1);
  EXPECT_EQ(msi_.states[1]->trigger_count(), 0);
  EXPECT_FALSE(intx_->level());
  EXPECT_EQ(Bar(layout::kIsrOffset, 1), kIsrConfig);  // config bit set regardless
  // Messages carry the BDF as devid.
  ASSERT_EQ(msi_.states[0]->message_log().size(), 1u);
  EXPECT_EQ(msi_.states[0]->message_log()[0].devid, 0x18u);
  EXPECT_EQ(msi_.states[0]->message_log()[0].data, 0x40u);
  // irqfds for in-kernel signallers, only while deliverable.
  EXPECT_GE(interrupt->QueueIrqFd(0), 0);
  EXPECT_EQ(interrupt->QueueIrqFd(1), -1);
  SetBar(transport_->msix_table_offset() + 12, 4, 1);  // mask vector 0
  EXPECT_EQ(interrupt->QueueIrqFd(0), -1);
  interrupt->NotifyQueue(0);
  EXPECT_EQ(msi_.states[0]->trigger_count(), 1);
  EXPECT_EQ(Bar(transport_->msix_pba_offset(), 8), 1u);
  SetBar(transport_->msix_table_offset() + 12, 4, 0);
  EXPECT_EQ(msi_.states[0]->trigger_count(), 2);
  EXPECT_EQ(Bar(transport_->msix_pba_offset(), 8), 0u);
}

TEST_F(VirtioPciTest, NotifyWritesThatExitSignalTheEventfd) {
  SetBar(layout::kNotifyOffset + 4, 2, 1);
  SetBar(layout::kNotifyOffset + 4, 4, 1);  // odd width: still a kick
  SetBar(layout::kNotifyOffset + 2, 2, 0);  // not a queue's address
  SetBar(layout::kNotifyOffset + 8, 2, 2);  // past the queues
  EXPECT_EQ(EventCount(transport_->notify_fd(1)), 2u);
  EXPECT_EQ(EventCount(transport_->notify_fd(0)), 0u);
  EXPECT_EQ(Bar(layout::kNotifyOffset, 2), 0u);
}

TEST_F(VirtioPciTest, DeviceConfigThroughTheBar) {
  EXPECT_EQ(Bar(layout::kDeviceOffset, 4), 0x04030201u);
  EXPECT_EQ(Bar(layout::kDeviceOffset + 6, 4), 0x0807u);  // past the end: zeros
  SetBar(layout::kDeviceOffset + 1, 1, 0xaa);
  EXPECT_EQ(device_->config[1], 0xaa);
  EXPECT_EQ(Bar(layout::kDeviceOffset + layout::kDeviceMaxSize - 2, 4), 0u);  // crosses out
}

TEST_F(VirtioPciTest, PciCfgWindowReachesTheBar) {
  const uint32_t cap = FindVirtioCap(VIRTIO_PCI_CAP_PCI_CFG);
  ASSERT_NE(cap, 0u);
  const uint32_t data = cap + layout::kPciCfgCapData;
  transport_->WriteConfig(cap + layout::kCapBar, 1, 0);
  transport_->WriteConfig(cap + layout::kCapOffset, 4, layout::kNumQueues);
  transport_->WriteConfig(cap + layout::kCapLengthField, 4, 2);
  EXPECT_EQ(transport_->ReadConfig(data, 4) & 0xffff, 2u);
  // A status write through the window drives the state machine.
  transport_->WriteConfig(cap + layout::kCapOffset, 4, layout::kDeviceStatus);
  transport_->WriteConfig(cap + layout::kCapLengthField, 4, 1);
  transport_->WriteConfig(data, 1, kAck);
  EXPECT_EQ(Status(), kAck);
  EXPECT_EQ(transport_->ReadConfig(data, 1), kAck);
  // Bad windows do nothing.
  struct Bad {
    uint32_t bar, offset, length;
  } bad[] = {{1, layout::kDeviceStatus, 1},                          // another BAR
             {0, layout::kDeviceStatus, 3},                          // odd length
             {0, layout::kQueueSelect + 1, 2},                       // misaligned
             {0, static_cast<uint32_t>(transport_->bar_size()), 1},  // past the BAR
             {0, 0xfffffffc, 4}};
  for (const Bad& b : bad) {
    transport_->WriteConfig(cap + layout::kCapBar, 1, b.bar);
    transport_->WriteConfig(cap + layout::kCapOffset, 4, b.offset);
    transport_->WriteConfig(cap + layout::kCapLengthField, 4, b.length);
    transport_->WriteConfig(data, 4, kDrv);
    (void)transport_->ReadConfig(data, 4);
  }
  EXPECT_EQ(Status(), kAck);
}

// The transport behind a real root complex and bus: BAR moves carry the
// notify ioeventfds along.
TEST_F(VirtioPciTest, NotifyIoeventfdsFollowTheBar) {
  Bus mmio("mmio");
  auto root = pci::PciRoot::Create(pci::PciRootConfig{.mmio32 = {0xc0000000, 0x10000000}}, &mmio,
                                   nullptr, {});
  ASSERT_TRUE(root.ok());
  auto slot = (*root)->ReserveSlot();
  ASSERT_TRUE(slot.ok());
  VirtioPciEnv env;
  env.ioevents = &ioevents_;
  env.msi = &msi_;
  env.intx = slot->intx;
  env.bdf = slot->bdf;
  auto transport = VirtioPciTransport::Create(device_, env);
  ASSERT_TRUE(transport.ok());
  ASSERT_TRUE((*root)->Attach(*slot, *transport).ok());
  const uint64_t bar = (*transport)->GetBar(0)->address;
  ASSERT_NE(bar, 0u);
  using Key = FakeIoEventRegistrar::Key;
  const int fd0 = (*transport)->notify_fd(0), fd1 = (*transport)->notify_fd(1);
  EXPECT_EQ(ioevents_.live(), (std::set<Key>{{bar + layout::kNotifyOffset, 2, fd0},
                                             {bar + layout::kNotifyOffset + 4, 2, fd1}}));
  // The guest reads the device through the bus.
  uint8_t bytes[2];
  ASSERT_TRUE(mmio.Read(bar + layout::kNumQueues, bytes));
  EXPECT_EQ(bytes[0], 2);
  // Move the BAR (64-bit, two dwords) the way the guest does.
  (*root)->WriteConfig(0, slot->device, 0, pci::kBar0, 4, 0xc8000000);
  (*root)->WriteConfig(0, slot->device, 0, pci::kBar0 + 4, 4, 0);
  const uint64_t moved = 0xc8000000;
  EXPECT_EQ((*transport)->GetBar(0)->address, moved);
  EXPECT_EQ(ioevents_.live(), (std::set<Key>{{moved + layout::kNotifyOffset, 2, fd0},
                                             {moved + layout::kNotifyOffset + 4, 2, fd1}}));
  // Decode off: no ioeventfds left to swallow writes at the old place.
  (*root)->WriteConfig(0, slot->device, 0, pci::kCommand, 2, 0);
  EXPECT_TRUE(ioevents_.live().empty());
  (*root)->WriteConfig(0, slot->device, 0, pci::kCommand, 2, pci::kCommandMemory);
  EXPECT_EQ(ioevents_.live().size(), 2u);
  // A registrar that refuses: notifications still work through exits.
  (*root)->WriteConfig(0, slot->device, 0, pci::kCommand, 2, 0);
  ioevents_.set_fail_adds(true);
  (*root)->WriteConfig(0, slot->device, 0, pci::kCommand, 2, pci::kCommandMemory);
  EXPECT_TRUE(ioevents_.live().empty());
  const uint8_t kick[2] = {1, 0};
  ASSERT_TRUE(mmio.Write(moved + layout::kNotifyOffset + 4, kick));
  EXPECT_EQ(EventCount(fd1), 1u);
  transport->reset();
  (*root).reset();
}

TEST_F(VirtioPciTest, AddVirtioPciDeviceFillsSlotAndAttaches) {
  Bus mmio("mmio");
  auto line = std::make_shared<FakeIrqLine>();
  auto root = pci::PciRoot::Create(pci::PciRootConfig{.mmio32 = {0xc0000000, 0x10000000}}, &mmio,
                                   nullptr, {line, line, line, line});
  ASSERT_TRUE(root.ok());
  VirtioPciEnv env;
  env.msi = &msi_;
  const size_t first_vector = msi_.states.size();  // SetUp's transport has the ones before
  auto added = AddVirtioPciDevice(**root, device_, env);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ((*root)->ReadConfig(0, 1, 0, pci::kVendorId, 4), 0x10421af4u);
  EXPECT_EQ((*added)->ReadConfig(pci::kInterruptPin, 1), pci::kInterruptPinA);
  EXPECT_TRUE((*root)->MappedAddress(1, 0).has_value());
  // MSI messages carry 00:01.0 as requester ID.
  transport_ = *added;
  EnableMsix();
  ProgramVector(0, 0x41);
  ASSERT_EQ(msi_.states[first_vector]->message_log().size(), 1u);
  EXPECT_EQ(msi_.states[first_vector]->message_log()[0].devid, 0x08u);
  // A device the transport refuses gives its slot back.
  auto bad = std::make_shared<FakeDevice>();
  bad->features = 0;
  EXPECT_FALSE(AddVirtioPciDevice(**root, bad, env).ok());
  auto next = AddVirtioPciDevice(**root, std::make_shared<FakeDevice>(), env);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ((*root)->ReadConfig(0, 2, 0, pci::kVendorId, 2), 0x1af4u);
}

TEST_F(VirtioPciTest, CreateRejectsDevicesItCannotHost) {
  VirtioPciEnv env;
  auto device = std::make_shared<FakeDevice>();
  device->features = 1u << 5;  // no VERSION_1
  EXPECT_FALSE(VirtioPciTransport::Create(device, env).ok());
  device = std::make_shared<FakeDevice>();
  device->queues = 0;
  EXPECT_FALSE(VirtioPciTransport::Create(device, env).ok());
  device = std::make_shared<FakeDevice>();
  device->config.resize(layout::kDeviceMaxSize + 1);
  EXPECT_FALSE(VirtioPciTransport::Create(device, env).ok());
  EXPECT_FALSE(VirtioPciTransport::Create(nullptr, env).ok());
  FakeMsiAllocator scarce;
  scarce.limit = 1;
  env.msi = &scarce;
  auto status = VirtioPciTransport::Create(std::make_shared<FakeDevice>(), env).status();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("fake-blk"), std::string::npos);
  // Without INTx, no interrupt pin.
  auto no_pin = VirtioPciTransport::Create(std::make_shared<FakeDevice>(), VirtioPciEnv{});
  ASSERT_TRUE(no_pin.ok());
  EXPECT_EQ((*no_pin)->ReadConfig(pci::kInterruptPin, 1), 0u);
}

// vCPU-side register traffic (ISR reads, resets, re-activation) racing the
// I/O thread's interrupts: no deadlock, and the INTx line ends consistent.
TEST_F(VirtioPciTest, InterruptsRaceRegisterTraffic) {
  Negotiate();
  SetStatus(kLive);
  std::shared_ptr<VirtioInterrupt> interrupt = device_->last_context->interrupt;
  std::atomic<bool> done{false};
  std::thread backend([&] {
    for (int i = 0; !done.load(); ++i) {
      interrupt->NotifyQueue(i % 2);
      if (i % 8 == 0) interrupt->NotifyConfigChange();
    }
  });
  for (int i = 0; i < 300; ++i) {
    (void)Bar(layout::kIsrOffset, 1);
    if (i % 3 == 0) {
      SetStatus(0);
      Negotiate();
      SetStatus(kLive);
    }
    transport_->WriteConfig(pci::kCommand, 2, (i % 5 == 0) ? pci::kCommandIntxDisable : 0);
  }
  done.store(true);
  backend.join();
  transport_->WriteConfig(pci::kCommand, 2, 0);
  (void)Bar(layout::kIsrOffset, 1);
  EXPECT_FALSE(intx_->level());
  // The first activation's interrupt was retired by the first reset (the
  // back-end thread raced retired calls against resets); the current one
  // works.
  interrupt->NotifyQueue(0);
  EXPECT_FALSE(intx_->level());
  device_->last_context->interrupt->NotifyQueue(0);
  EXPECT_TRUE(intx_->level());
}

// A deterministic storm of guest writes to config space and the BAR,
// through a real root and bus, must never crash, hang or corrupt the
// root's view. Device resets and activations happen along the way.
TEST_F(VirtioPciTest, RandomizedConfigAndBarWritesAreSurvived) {
  Bus mmio("mmio");
  auto root = pci::PciRoot::Create(pci::PciRootConfig{.mmio32 = {0xc0000000, 0x10000000}}, &mmio,
                                   nullptr, {intx_, nullptr, nullptr, nullptr});
  ASSERT_TRUE(root.ok());
  auto ecam = std::make_shared<pci::PciEcam>(*root);
  ASSERT_TRUE(mmio.Register(0xe0000000, 0x10000000, ecam, "ecam").ok());
  auto slot = (*root)->ReserveSlot();
  ASSERT_TRUE(slot.ok());
  VirtioPciEnv env;
  env.ioevents = &ioevents_;
  env.msi = &msi_;
  env.intx = slot->intx;
  env.bdf = slot->bdf;
  auto transport = VirtioPciTransport::Create(device_, env);
  ASSERT_TRUE(transport.ok());
  ASSERT_TRUE((*root)->Attach(*slot, *transport).ok());
  transport_ = *transport;  // the helpers below drive this one

  std::mt19937_64 rng(12345);
  const size_t sizes[] = {1, 2, 4, 8, 3};
  const uint64_t interesting[] = {0,
                                  1,
                                  2,
                                  0xff,
                                  0xffff,
                                  0xffffffff,
                                  ~uint64_t{0},
                                  kAck,
                                  kDrv,
                                  kFeat,
                                  kLive,
                                  kOffered & 0xffffffff,
                                  kOffered >> 32,
                                  0xc0000000,
                                  0xfee00000,
                                  0x8000,
                                  0x4000};
  const uint64_t bar_size = (*transport)->bar_size();
  // Offsets where the BAR's registers are, so that the storm mostly hits
  // something that reacts.
  auto bar_offset = [&]() -> uint64_t {
    switch (rng() % 10) {
      case 8:
        return layout::kDeviceStatus;
      case 9:
        return layout::kQueueSelect + 2 * (rng() % 4);  // select/size/vector/enable
      case 0:
      case 1:
      case 2:
        return layout::kCommonOffset + rng() % 0x40;
      case 3:
        return layout::kIsrOffset + rng() % 4;
      case 4:
        return layout::kDeviceOffset + rng() % 16;
      case 5:
        return layout::kNotifyOffset + rng() % 12;
      case 6:
        return (*transport)->msix_table_offset() + rng() % 0x40;
      default:
        return rng() % (bar_size + 64);
    }
  };
  const uint32_t pci_cfg = FindVirtioCap(VIRTIO_PCI_CAP_PCI_CFG);
  // Refused transitions are logged; thousands of lines help nobody here.
  const LogLevel log_level = GetLogLevel();
  SetLogLevel(LogLevel::kError);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t value = rng() % 4 ? interesting[rng() % std::size(interesting)] : rng();
    // Mostly the natural widths, sometimes anything.
    const size_t size = rng() % 4 ? size_t{1} << (rng() % 3) : sizes[rng() % std::size(sizes)];
    uint8_t bytes[8];
    std::memcpy(bytes, &value, 8);
    uint8_t out[8];
    switch (rng() % 8) {
      case 0: {  // config space through ECAM: header, capabilities, anywhere
        uint32_t reg = rng() % 4 == 0 ? rng() % 0x1000 : rng() % 0x100;
        if (rng() % 4 == 0) reg = pci_cfg + rng() % 20;
        const uint64_t address = 0xe0000000 + (uint64_t{slot->device} << 15) + reg;
        if (rng() % 2) {
          mmio.Write(address, std::span<const uint8_t>(bytes, size));
        } else {
          mmio.Read(address, std::span<uint8_t>(out, size));
        }
        break;
      }
      case 1: {  // like firmware: decode on and the BAR somewhere sane
        if (rng() % 64 == 0) {
          // A well-behaved driver bringing the device up amid the noise.
          SetStatus(0);
          Negotiate();
          SetUpQueue(rng() % 2, 16, 0x1000, 0x2000, 0x3000, rng() % 4);
          SetStatus(kLive);
        }
        if (rng() % 8 == 0) {
          (*root)->WriteConfig(0, slot->device, 0, pci::kBar0, 4,
                               0xc0000000 + (rng() % 4) * bar_size);
          (*root)->WriteConfig(0, slot->device, 0, pci::kBar0 + 4, 4, 0);
          (*root)->WriteConfig(0, slot->device, 0, pci::kCommand, 2, pci::kCommandMemory);
        }
        break;
      }
      case 2:
      case 3: {  // through the bus, wherever the BAR is now
        auto bar = (*transport)->GetBar(0);
        const uint64_t base = bar && bar->address ? bar->address : 0xc0000000;
        if (rng() % 2) {
          mmio.Write(base + bar_offset(), std::span<const uint8_t>(bytes, size));
        } else {
          mmio.Read(base + bar_offset(), std::span<uint8_t>(out, size));
        }
        break;
      }
      case 4:
      case 5: {  // straight at the BAR handler, mapped or not
        const uint64_t offset = bar_offset();
        const size_t n = std::min<size_t>(size, 8);
        if (rng() % 2) {
          (*transport)
              ->WriteBar(rng() % 8 == 0 ? 1 : 0, offset, std::span<const uint8_t>(bytes, n));
        } else {
          (*transport)->ReadBar(0, offset, std::span<uint8_t>(out, n));
        }
        break;
      }
      default: {  // the device side interrupting meanwhile
        std::shared_ptr<VirtioInterrupt> interrupt;
        {
          std::lock_guard lock(device_->mutex);
          if (device_->last_context) interrupt = device_->last_context->interrupt;
        }
        if (interrupt) {
          interrupt->NotifyQueue(rng() % 3);
          if (rng() % 16 == 0) interrupt->NotifyConfigChange();
          if (rng() % 64 == 0) interrupt->NeedsReset();
          (void)interrupt->QueueIrqFd(rng() % 3);
        }
        break;
      }
    }
    // The root's registration always matches what the device decodes.
    auto bar = (*transport)->GetBar(0);
    auto mapped = (*root)->MappedAddress(slot->device, 0);
    if (mapped) {
      ASSERT_TRUE(bar.has_value());
      if (!bar->sizing) {
        EXPECT_EQ(*mapped, bar->address);
      }
    }
  }
  SetLogLevel(log_level);
  // The storm reached the interesting states (the seed is fixed).
  EXPECT_GT(device_->activations, 0);
  EXPECT_GT(device_->resets, 0);
  EXPECT_GT(ioevents_.adds(), 2);
  // Whatever happened, a reset brings the device back to a clean state.
  const uint8_t zero[1] = {0};
  const int resets_before = device_->resets;
  (*transport)->WriteBar(0, layout::kDeviceStatus, zero);
  EXPECT_EQ((*transport)->device_status(), 0u);
  EXPECT_EQ(device_->resets, resets_before + 1);
  EXPECT_FALSE(device_->last_context.has_value());
  transport->reset();
}

}  // namespace
}  // namespace skiff::virtio
