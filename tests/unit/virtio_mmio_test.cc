#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "devices/virtio/mmio_transport.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_irq_line.h"

namespace skiff::virtio {
namespace {

constexpr uint64_t kBase = 0xd0000000;
constexpr uint64_t kVersion1 = uint64_t{1} << VIRTIO_F_VERSION_1;
constexpr uint8_t kAck = VIRTIO_CONFIG_S_ACKNOWLEDGE;
constexpr uint8_t kDriver = VIRTIO_CONFIG_S_DRIVER;
constexpr uint8_t kFeaturesOk = VIRTIO_CONFIG_S_FEATURES_OK;
constexpr uint8_t kDriverOk = VIRTIO_CONFIG_S_DRIVER_OK;
constexpr uint8_t kNeedsReset = VIRTIO_CONFIG_S_NEEDS_RESET;
constexpr uint8_t kFailed = VIRTIO_CONFIG_S_FAILED;

// A device that records what the transport did to it.
class FakeVirtioDevice : public VirtioDevice {
 public:
  uint32_t device_id() const override { return VIRTIO_ID_BLOCK; }
  uint64_t device_features() const override { return features; }
  uint16_t num_queues() const override { return queues; }
  uint16_t max_queue_size() const override { return max_size; }
  uint32_t config_size() const override { return static_cast<uint32_t>(config.size()); }
  void ReadConfig(uint32_t offset, std::span<uint8_t> data) override {
    config_reads.push_back({offset, static_cast<uint32_t>(data.size())});
    // The transport promised a range inside config_size(); check it kept it.
    ASSERT_LE(uint64_t{offset} + data.size(), config.size());
    std::memcpy(data.data(), config.data() + offset, data.size());
  }
  void WriteConfig(uint32_t offset, std::span<const uint8_t> data) override {
    config_writes.push_back({offset, static_cast<uint32_t>(data.size())});
    ASSERT_LE(uint64_t{offset} + data.size(), config.size());
    std::memcpy(config.data() + offset, data.data(), data.size());
  }
  absl::Status Activate(ActivationContext context) override {
    ++activations;
    activated = std::move(context);
    return activate_result;
  }
  void Reset() override {
    ++resets;
    activated.reset();
  }
  std::string name() const override { return "fake"; }

  struct Access {
    uint32_t offset;
    uint32_t size;
  };

  uint64_t features = kVersion1 | (1u << 5) | (1u << 9);
  uint16_t queues = 2;
  uint16_t max_size = 256;
  std::vector<uint8_t> config = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  absl::Status activate_result = absl::OkStatus();
  int activations = 0;
  int resets = 0;
  std::optional<ActivationContext> activated;
  std::vector<Access> config_reads;
  std::vector<Access> config_writes;
};

class FakeIoEventRegistrar : public IoEventRegistrar {
 public:
  struct Registration {
    int fd;
    uint64_t gpa;
    uint32_t length;
    std::optional<uint64_t> datamatch;
    bool operator==(const Registration&) const = default;
  };
  absl::Status AddMmio(int eventfd, uint64_t gpa, uint32_t length,
                       std::optional<uint64_t> datamatch) override {
    if (fail_add_at == static_cast<int>(added.size())) {
      return absl::ResourceExhaustedError("no more ioeventfds");
    }
    added.push_back({eventfd, gpa, length, datamatch});
    return absl::OkStatus();
  }
  absl::Status RemoveMmio(int eventfd, uint64_t gpa, uint32_t length,
                          std::optional<uint64_t> datamatch) override {
    removed.push_back({eventfd, gpa, length, datamatch});
    return absl::OkStatus();
  }

  int fail_add_at = -1;
  std::vector<Registration> added;
  std::vector<Registration> removed;
};

// Reads an eventfd's counter; nullopt when nothing was signalled.
std::optional<uint64_t> ReadEventFd(int fd) {
  uint64_t value = 0;
  if (::read(fd, &value, sizeof(value)) != sizeof(value)) return std::nullopt;
  return value;
}

class VirtioMmioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ram_.resize(0x10000);
    auto memory = GuestMemory::Create({{0, ram_.size(), ram_.data()}});
    ASSERT_TRUE(memory.ok());
    memory_ = *memory;
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok());
    event_loop_ = *std::move(loop);
    MakeTransport(nullptr);
  }

  void MakeTransport(IoEventRegistrar* ioevents) {
    transport_.reset();
    MmioTransportEnv env;
    env.base_gpa = kBase;
    env.memory = memory_;
    env.event_loop = event_loop();
    env.ioevents = ioevents;
    env.irq = irq_;
    auto transport = MmioTransport::Create(device_, std::move(env));
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
  }

  // Never run: the transport only hands it through to the device.
  EventLoop* event_loop() { return event_loop_.get(); }

  uint32_t Read32(uint64_t offset) {
    uint8_t bytes[4];
    transport_->Read(offset, bytes);
    return uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 | uint32_t{bytes[2]} << 16 |
           uint32_t{bytes[3]} << 24;
  }
  void Write32(uint64_t offset, uint32_t value) {
    uint8_t bytes[4];
    for (int i = 0; i < 4; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
    transport_->Write(offset, bytes);
  }
  uint32_t Status() { return Read32(VIRTIO_MMIO_STATUS); }
  void SetStatus(uint32_t status) { Write32(VIRTIO_MMIO_STATUS, status); }

  void WriteDriverFeatures(uint64_t features) {
    Write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    Write32(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features));
    Write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    Write32(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features >> 32));
  }
  // ACKNOWLEDGE, DRIVER, features, FEATURES_OK as Linux does them.
  void Negotiate(uint64_t features) {
    SetStatus(kAck);
    SetStatus(kAck | kDriver);
    WriteDriverFeatures(features);
    SetStatus(kAck | kDriver | kFeaturesOk);
  }
  void SetUpQueue(uint32_t queue, uint32_t num, uint64_t desc, uint64_t avail, uint64_t used) {
    Write32(VIRTIO_MMIO_QUEUE_SEL, queue);
    Write32(VIRTIO_MMIO_QUEUE_NUM, num);
    Write32(VIRTIO_MMIO_QUEUE_DESC_LOW, static_cast<uint32_t>(desc));
    Write32(VIRTIO_MMIO_QUEUE_DESC_HIGH, static_cast<uint32_t>(desc >> 32));
    Write32(VIRTIO_MMIO_QUEUE_AVAIL_LOW, static_cast<uint32_t>(avail));
    Write32(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, static_cast<uint32_t>(avail >> 32));
    Write32(VIRTIO_MMIO_QUEUE_USED_LOW, static_cast<uint32_t>(used));
    Write32(VIRTIO_MMIO_QUEUE_USED_HIGH, static_cast<uint32_t>(used >> 32));
    Write32(VIRTIO_MMIO_QUEUE_READY, 1);
  }
  void Activate() {
    Negotiate(kVersion1);
    SetUpQueue(0, 128, 0x1000, 0x2000, 0x3000);
    SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
    ASSERT_EQ(device_->activations, 1);
  }
  std::shared_ptr<VirtioInterrupt> interrupt() { return device_->activated->interrupt; }

  std::vector<uint8_t> ram_;
  GuestMemory memory_;
  std::unique_ptr<EventLoop> event_loop_;
  std::shared_ptr<FakeVirtioDevice> device_ = std::make_shared<FakeVirtioDevice>();
  std::shared_ptr<FakeIrqLine> irq_ = std::make_shared<FakeIrqLine>();
  FakeIoEventRegistrar ioevents_;  // outlives transport_
  std::shared_ptr<MmioTransport> transport_;
};

TEST_F(VirtioMmioTest, IdentifiesAsVersion2Device) {
  EXPECT_EQ(Read32(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976u);  // "virt"
  EXPECT_EQ(Read32(VIRTIO_MMIO_VERSION), 2u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_DEVICE_ID), uint32_t{VIRTIO_ID_BLOCK});
  EXPECT_EQ(Read32(VIRTIO_MMIO_VENDOR_ID), kVirtioMmioVendorId);
  EXPECT_EQ(Status(), 0u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
}

TEST_F(VirtioMmioTest, DeviceFeaturesInTwoPages) {
  device_->features = kVersion1 | (uint64_t{1} << 34) | (1u << 5) | (1u << 31);
  MakeTransport(nullptr);
  Write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  EXPECT_EQ(Read32(VIRTIO_MMIO_DEVICE_FEATURES), (1u << 5) | (1u << 31));
  Write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  EXPECT_EQ(Read32(VIRTIO_MMIO_DEVICE_FEATURES), 0b101u);  // VERSION_1 (32), RING_PACKED (34)
  Write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
  EXPECT_EQ(Read32(VIRTIO_MMIO_DEVICE_FEATURES), 0u);
  Write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0xffffffff);
  EXPECT_EQ(Read32(VIRTIO_MMIO_DEVICE_FEATURES), 0u);
}

TEST_F(VirtioMmioTest, FeaturesTheTransportCannotHonourAreNotOffered) {
  const uint64_t notification_data = uint64_t{1} << 38;
  const uint64_t ring_reset = uint64_t{1} << VIRTIO_F_RING_RESET;
  device_->features = kVersion1 | notification_data | ring_reset;
  MakeTransport(nullptr);
  EXPECT_EQ(transport_->offered_features(), kVersion1);
  Write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  EXPECT_EQ(Read32(VIRTIO_MMIO_DEVICE_FEATURES), 1u);
  // And a driver that asks for them anyway is refused.
  Negotiate(kVersion1 | ring_reset);
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver});
}

TEST_F(VirtioMmioTest, AcceptsOfferedFeaturesFromBothPages) {
  const uint64_t wanted = kVersion1 | (1u << 9);
  Negotiate(wanted);
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver | kFeaturesOk});
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  ASSERT_TRUE(device_->activated.has_value());
  EXPECT_EQ(device_->activated->features, wanted);
}

TEST_F(VirtioMmioTest, RefusesFeaturesNotOffered) {
  Negotiate(kVersion1 | (1u << 6));  // bit 6 is not offered
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver});
  Negotiate(kVersion1 | (uint64_t{1} << 40));  // nor is bit 40 (high page)
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver});
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  EXPECT_EQ(device_->activations, 0);
}

TEST_F(VirtioMmioTest, RefusesFeaturesWithoutVersion1) {
  Negotiate(1u << 5);
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver});
  // Fixing the features and retrying works.
  WriteDriverFeatures(kVersion1 | (1u << 5));
  SetStatus(kAck | kDriver | kFeaturesOk);
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver | kFeaturesOk});
}

TEST_F(VirtioMmioTest, DriverFeaturesFrozenAfterFeaturesOk) {
  Negotiate(kVersion1);
  ASSERT_EQ(Status(), uint32_t{kAck | kDriver | kFeaturesOk});
  Write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  Write32(VIRTIO_MMIO_DRIVER_FEATURES, 1u << 5);
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  ASSERT_TRUE(device_->activated.has_value());
  EXPECT_EQ(device_->activated->features, kVersion1);
}

TEST_F(VirtioMmioTest, DriverFeaturesSelectorOutOfRangeIsIgnored) {
  SetStatus(kAck);
  SetStatus(kAck | kDriver);
  WriteDriverFeatures(kVersion1);
  Write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);
  Write32(VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffff);
  SetStatus(kAck | kDriver | kFeaturesOk);
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver | kFeaturesOk});
}

TEST_F(VirtioMmioTest, StatusFollowsTheInitializationSequence) {
  SetStatus(kAck);
  EXPECT_EQ(Status(), uint32_t{kAck});
  SetStatus(kAck | kDriver);
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver});
  WriteDriverFeatures(kVersion1);
  SetStatus(kAck | kDriver | kFeaturesOk);
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver | kFeaturesOk});
  EXPECT_EQ(device_->activations, 0);
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver | kFeaturesOk | kDriverOk});
  EXPECT_EQ(device_->activations, 1);
  // Writing the same value again is harmless and does not re-activate.
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  EXPECT_EQ(device_->activations, 1);
}

// From every state of the sequence, exactly three writes are accepted: the
// next step, adding FAILED, and 0 (reset). Every other value is ignored.
TEST_F(VirtioMmioTest, StatusRefusesEveryOtherTransition) {
  const uint8_t sequence[] = {0, kAck, kAck | kDriver, kAck | kDriver | kFeaturesOk,
                              kAck | kDriver | kFeaturesOk | kDriverOk};
  for (size_t step = 0; step < std::size(sequence); ++step) {
    const uint8_t from = sequence[step];
    for (uint32_t value = 1; value <= 0xff; ++value) {
      SetStatus(0);
      for (size_t i = 1; i <= step; ++i) {
        SetStatus(sequence[i]);
        if (sequence[i] == (kAck | kDriver)) WriteDriverFeatures(kVersion1);
      }
      ASSERT_EQ(Status(), from);
      SetStatus(value);
      // NEEDS_RESET is the device's: the driver's copy of it is ignored.
      const uint32_t wanted = value & ~kNeedsReset;
      const bool is_next = step + 1 < std::size(sequence) && wanted == sequence[step + 1];
      const bool adds_failed = wanted == (from | kFailed);
      uint32_t expected = from;
      if (is_next) expected = wanted;
      if (adds_failed) expected = from | kFailed;
      EXPECT_EQ(Status(), expected) << "from 0x" << std::hex << int{from} << " write 0x" << value;
    }
  }
}

TEST_F(VirtioMmioTest, FailedIsTerminalUntilReset) {
  SetStatus(kAck);
  SetStatus(kAck | kFailed);
  EXPECT_EQ(Status(), uint32_t{kAck | kFailed});
  SetStatus(kAck | kDriver | kFailed);
  EXPECT_EQ(Status(), uint32_t{kAck | kFailed});
  SetStatus(0);
  EXPECT_EQ(Status(), 0u);
  SetStatus(kAck);
  EXPECT_EQ(Status(), uint32_t{kAck});
}

TEST_F(VirtioMmioTest, FailedFromTheStart) {
  SetStatus(kFailed);
  EXPECT_EQ(Status(), uint32_t{kFailed});
}

TEST_F(VirtioMmioTest, QueueRegistersTake64BitAddresses) {
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_NUM_MAX), 256u);
  Negotiate(kVersion1);
  SetUpQueue(1, 64, 0x12345678'9abcdef0, 0x0fedcba9'87654320, 0x00000001'00002000);
  Write32(VIRTIO_MMIO_QUEUE_SEL, 1);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_NUM), 64u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_READY), 1u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_DESC_LOW), 0x9abcdef0u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_DESC_HIGH), 0x12345678u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_AVAIL_LOW), 0x87654320u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_AVAIL_HIGH), 0x0fedcba9u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_USED_LOW), 0x2000u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_USED_HIGH), 1u);
  Write32(VIRTIO_MMIO_QUEUE_SEL, 0);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_READY), 0u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_DESC_LOW), 0u);

  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  ASSERT_TRUE(device_->activated.has_value());
  const QueueConfig& config = device_->activated->queues[1].config;
  EXPECT_TRUE(config.ready);
  EXPECT_EQ(config.size, 64);
  EXPECT_EQ(config.desc_table, 0x12345678'9abcdef0u);
  EXPECT_EQ(config.avail_ring, 0x0fedcba9'87654320u);
  EXPECT_EQ(config.used_ring, 0x00000001'00002000u);
}

TEST_F(VirtioMmioTest, QueueSelectOutOfRangeSelectsNothing) {
  Negotiate(kVersion1);
  SetUpQueue(0, 128, 0x1000, 0x2000, 0x3000);
  SetUpQueue(1, 128, 0x4000, 0x5000, 0x6000);
  for (uint32_t sel : {2u, 3u, 0x8000u, 0xffffu, 0x10000u, 0xffffffffu}) {
    Write32(VIRTIO_MMIO_QUEUE_SEL, sel);
    EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_NUM_MAX), 0u) << sel;
    EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_READY), 0u) << sel;
    Write32(VIRTIO_MMIO_QUEUE_READY, 0);
    Write32(VIRTIO_MMIO_QUEUE_NUM, 4);
    Write32(VIRTIO_MMIO_QUEUE_DESC_LOW, 0xdead0000);
    Write32(VIRTIO_MMIO_QUEUE_USED_HIGH, 0xdead);
    EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_NUM), 0u) << sel;
    EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_DESC_LOW), 0u) << sel;
  }
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  ASSERT_TRUE(device_->activated.has_value());
  ASSERT_EQ(device_->activated->queues.size(), 2u);
  EXPECT_EQ(device_->activated->queues[0].config.desc_table, 0x1000u);
  EXPECT_EQ(device_->activated->queues[1].config.desc_table, 0x4000u);
  EXPECT_TRUE(device_->activated->queues[1].config.ready);
}

TEST_F(VirtioMmioTest, QueueConfigurationFrozenWhileReady) {
  Negotiate(kVersion1);
  SetUpQueue(0, 128, 0x1000, 0x2000, 0x3000);
  Write32(VIRTIO_MMIO_QUEUE_NUM, 16);
  Write32(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x7000);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_NUM), 128u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_DESC_LOW), 0x1000u);
  // Disabling the queue (before DRIVER_OK) makes it writable again.
  Write32(VIRTIO_MMIO_QUEUE_READY, 0);
  Write32(VIRTIO_MMIO_QUEUE_NUM, 16);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_NUM), 16u);
  // Values other than 0 and 1 do not toggle READY.
  Write32(VIRTIO_MMIO_QUEUE_READY, 2);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_READY), 0u);
}

TEST_F(VirtioMmioTest, QueueConfigurationFrozenAfterDriverOk) {
  Activate();
  Write32(VIRTIO_MMIO_QUEUE_SEL, 0);
  Write32(VIRTIO_MMIO_QUEUE_READY, 0);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_READY), 1u);
  Write32(VIRTIO_MMIO_QUEUE_SEL, 1);  // never enabled, still frozen
  Write32(VIRTIO_MMIO_QUEUE_NUM, 8);
  Write32(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x9000);
  Write32(VIRTIO_MMIO_QUEUE_READY, 1);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_NUM), 0u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_DESC_LOW), 0u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_READY), 0u);
  EXPECT_EQ(device_->activations, 1);
}

TEST_F(VirtioMmioTest, ActivationContextCarriesEverything) {
  Negotiate(kVersion1 | (1u << 5));
  SetUpQueue(0, 256, 0x1000, 0x2000, 0x3000);
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  ASSERT_TRUE(device_->activated.has_value());
  const ActivationContext& context = *device_->activated;
  EXPECT_EQ(context.features, kVersion1 | (1u << 5));
  EXPECT_EQ(context.event_loop, event_loop());
  ASSERT_EQ(context.memory.regions().size(), 1u);
  EXPECT_EQ(context.memory.regions()[0].host, ram_.data());
  EXPECT_EQ(context.memory.regions()[0].size, ram_.size());
  ASSERT_NE(context.interrupt, nullptr);
  ASSERT_EQ(context.queues.size(), 2u);
  EXPECT_EQ(context.queues[0].config.size, 256);
  EXPECT_EQ(context.queues[0].config.desc_table, 0x1000u);
  EXPECT_EQ(context.queues[0].config.avail_ring, 0x2000u);
  EXPECT_EQ(context.queues[0].config.used_ring, 0x3000u);
  EXPECT_TRUE(context.queues[0].config.ready);
  EXPECT_FALSE(context.queues[1].config.ready);
  EXPECT_EQ(context.queues[1].config.size, 0);
  for (uint16_t q = 0; q < 2; ++q) {
    EXPECT_GE(context.queues[q].notify_fd, 0);
    EXPECT_EQ(context.queues[q].notify_fd, transport_->notify_fd(q));
  }
  EXPECT_NE(context.queues[0].notify_fd, context.queues[1].notify_fd);
  EXPECT_EQ(transport_->notify_fd(2), -1);
}

TEST_F(VirtioMmioTest, BadQueueSizeNeedsResetWithoutActivating) {
  for (uint32_t num : {0u, 3u, 100u, 512u, 0x10000u + 64u}) {
    SetStatus(0);
    irq_->ClearHistory();
    Negotiate(kVersion1);
    SetUpQueue(0, num, 0x1000, 0x2000, 0x3000);
    SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
    EXPECT_EQ(device_->activations, 0) << num;
    EXPECT_EQ(Status(), uint32_t{kAck | kDriver | kFeaturesOk | kDriverOk | kNeedsReset}) << num;
    EXPECT_EQ(Read32(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_CONFIG});
    EXPECT_TRUE(irq_->level());
  }
}

TEST_F(VirtioMmioTest, PackedQueuesMayHaveAnySizeUpToTheMaximum) {
  const uint64_t packed = uint64_t{1} << VIRTIO_F_RING_PACKED;
  device_->features = kVersion1 | packed;
  MakeTransport(nullptr);
  for (uint32_t num : {1u, 3u, 100u, 255u, 256u}) {
    SetStatus(0);
    Negotiate(kVersion1 | packed);
    SetUpQueue(0, num, 0x1000, 0x2000, 0x3000);
    SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
    ASSERT_TRUE(device_->activated.has_value()) << num;
    EXPECT_EQ(device_->activated->queues[0].config.size, num);
    EXPECT_EQ(device_->activated->features, kVersion1 | packed);
  }
  // Zero and sizes past QUEUE_NUM_MAX are still refused.
  for (uint32_t num : {0u, 257u}) {
    SetStatus(0);
    const int before = device_->activations;
    Negotiate(kVersion1 | packed);
    SetUpQueue(0, num, 0x1000, 0x2000, 0x3000);
    SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
    EXPECT_EQ(device_->activations, before) << num;
    EXPECT_TRUE(Status() & kNeedsReset) << num;
  }
  // Without the packed ring, a split queue still needs a power of two.
  SetStatus(0);
  Negotiate(kVersion1);
  SetUpQueue(0, 100, 0x1000, 0x2000, 0x3000);
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  EXPECT_TRUE(Status() & kNeedsReset);
}

TEST_F(VirtioMmioTest, ActivationErrorNeedsReset) {
  device_->activate_result = absl::InvalidArgumentError("queue 0: ring outside RAM");
  Negotiate(kVersion1);
  SetUpQueue(0, 128, 0x1000, 0x2000, 0x3000);
  const uint32_t generation = Read32(VIRTIO_MMIO_CONFIG_GENERATION);
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  EXPECT_EQ(device_->activations, 1);
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver | kFeaturesOk | kDriverOk | kNeedsReset});
  EXPECT_EQ(Read32(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_CONFIG});
  EXPECT_EQ(Read32(VIRTIO_MMIO_CONFIG_GENERATION), generation);  // config itself unchanged
  EXPECT_TRUE(irq_->level());
  // The driver resets; the device gets a clean start.
  SetStatus(0);
  EXPECT_EQ(Status(), 0u);
  EXPECT_FALSE(irq_->level());
  EXPECT_GE(device_->resets, 1);
}

TEST_F(VirtioMmioTest, NotifyWithoutRegistrarSignalsTheQueueEventFd) {
  Activate();
  Write32(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
  EXPECT_EQ(ReadEventFd(transport_->notify_fd(1)), std::optional<uint64_t>(1));
  EXPECT_EQ(ReadEventFd(transport_->notify_fd(0)), std::nullopt);
  Write32(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  Write32(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  EXPECT_EQ(ReadEventFd(transport_->notify_fd(0)), std::optional<uint64_t>(2));
  // Bogus indices and widths signal nothing.
  Write32(VIRTIO_MMIO_QUEUE_NOTIFY, 2);
  Write32(VIRTIO_MMIO_QUEUE_NOTIFY, 0x10000);
  const uint8_t narrow[2] = {0, 0};
  transport_->Write(VIRTIO_MMIO_QUEUE_NOTIFY, narrow);
  EXPECT_EQ(ReadEventFd(transport_->notify_fd(0)), std::nullopt);
  EXPECT_EQ(ReadEventFd(transport_->notify_fd(1)), std::nullopt);
}

TEST_F(VirtioMmioTest, RegistersOneIoEventFdPerQueueWithDatamatch) {
  FakeIoEventRegistrar& ioevents = ioevents_;
  device_->queues = 3;
  MakeTransport(&ioevents);
  ASSERT_EQ(ioevents.added.size(), 3u);
  for (uint16_t q = 0; q < 3; ++q) {
    FakeIoEventRegistrar::Registration expected{transport_->notify_fd(q),
                                                kBase + VIRTIO_MMIO_QUEUE_NOTIFY, 4, q};
    EXPECT_EQ(ioevents.added[q], expected) << q;
  }
  EXPECT_TRUE(ioevents.removed.empty());
  // A kick that still reaches the transport (no ioeventfd matched it) is
  // handled the same way.
  Write32(VIRTIO_MMIO_QUEUE_NOTIFY, 2);
  EXPECT_EQ(ReadEventFd(transport_->notify_fd(2)), std::optional<uint64_t>(1));
  const std::vector<FakeIoEventRegistrar::Registration> added = ioevents.added;
  transport_.reset();
  EXPECT_EQ(ioevents.removed, added);
}

TEST_F(VirtioMmioTest, CreateUndoesRegistrationsWhenOneFails) {
  FakeIoEventRegistrar ioevents;
  ioevents.fail_add_at = 1;
  MmioTransportEnv env;
  env.base_gpa = kBase;
  env.memory = memory_;
  env.ioevents = &ioevents;
  env.irq = irq_;
  auto transport = MmioTransport::Create(device_, std::move(env));
  ASSERT_FALSE(transport.ok());
  EXPECT_NE(transport.status().message().find("queue 1"), std::string::npos)
      << transport.status();
  ASSERT_EQ(ioevents.removed.size(), 1u);
  EXPECT_EQ(ioevents.removed[0], ioevents.added[0]);
}

TEST_F(VirtioMmioTest, CreateRefusesMissingPieces) {
  MmioTransportEnv env;
  env.memory = memory_;
  EXPECT_FALSE(MmioTransport::Create(device_, env).ok());  // no irq line
  env.irq = irq_;
  EXPECT_FALSE(MmioTransport::Create(nullptr, env).ok());
  env.base_gpa = ~uint64_t{0} - 0x10;
  EXPECT_FALSE(MmioTransport::Create(device_, env).ok());
}

TEST_F(VirtioMmioTest, InterruptStatusAckAndLevel) {
  Activate();
  irq_->ClearHistory();
  interrupt()->NotifyQueue(0);
  EXPECT_EQ(Read32(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_VRING});
  EXPECT_TRUE(irq_->level());
  interrupt()->NotifyQueue(1);  // already pending: no second SetLevel
  interrupt()->NotifyConfigChange();
  EXPECT_EQ(Read32(VIRTIO_MMIO_INTERRUPT_STATUS),
            uint32_t{VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG});
  Write32(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
  EXPECT_EQ(Read32(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_CONFIG});
  EXPECT_TRUE(irq_->level());
  Write32(VIRTIO_MMIO_INTERRUPT_ACK, 0xfffffffc);  // unknown bits do nothing
  EXPECT_TRUE(irq_->level());
  Write32(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
  EXPECT_EQ(Read32(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(irq_->levels(), (std::vector<bool>{true, false}));
  EXPECT_EQ(irq_->pulses(), 0);
}

// Fault injection: a driver that never acknowledges interrupts. However
// many completions the device reports, the line is raised once and the
// status holds two bits: nothing queues up behind a silent guest.
TEST_F(VirtioMmioTest, ADriverThatNeverAcknowledgesLeavesBoundedState) {
  Activate();
  irq_->ClearHistory();
  for (int i = 0; i < 100000; ++i) {
    interrupt()->NotifyQueue(i % 2);
    if (i % 1000 == 0) interrupt()->NotifyConfigChange();
  }
  EXPECT_EQ(irq_->levels(), (std::vector<bool>{true}));
  EXPECT_EQ(Read32(VIRTIO_MMIO_INTERRUPT_STATUS),
            uint32_t{VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG});
  // A late acknowledgement still brings everything back.
  Write32(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
  EXPECT_FALSE(irq_->level());
  interrupt()->NotifyQueue(0);
  EXPECT_TRUE(irq_->level());
}

TEST_F(VirtioMmioTest, ConfigGenerationChangesOnConfigChangeOnly) {
  Activate();
  const uint32_t before = Read32(VIRTIO_MMIO_CONFIG_GENERATION);
  interrupt()->NotifyQueue(0);
  EXPECT_EQ(Read32(VIRTIO_MMIO_CONFIG_GENERATION), before);
  interrupt()->NotifyConfigChange();
  EXPECT_NE(Read32(VIRTIO_MMIO_CONFIG_GENERATION), before);
  const uint32_t after_one = Read32(VIRTIO_MMIO_CONFIG_GENERATION);
  interrupt()->NotifyConfigChange();
  EXPECT_NE(Read32(VIRTIO_MMIO_CONFIG_GENERATION), after_one);
}

TEST_F(VirtioMmioTest, ConfigSpaceAnyWidthWithinBounds) {
  uint8_t one[1];
  transport_->Read(VIRTIO_MMIO_CONFIG + 3, one);
  EXPECT_EQ(one[0], 3);
  uint8_t two[2];
  transport_->Read(VIRTIO_MMIO_CONFIG + 10, two);
  EXPECT_EQ(two[0], 10);
  EXPECT_EQ(two[1], 11);
  EXPECT_EQ(Read32(VIRTIO_MMIO_CONFIG + 4), 0x07060504u);
  uint8_t eight[8];
  transport_->Read(VIRTIO_MMIO_CONFIG + 4, eight);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(eight[i], 4 + i);
  ASSERT_EQ(device_->config_reads.size(), 4u);
  EXPECT_EQ(device_->config_reads[0].offset, 3u);
  EXPECT_EQ(device_->config_reads[3].offset, 4u);
  EXPECT_EQ(device_->config_reads[3].size, 8u);

  const uint8_t value[2] = {0xaa, 0xbb};
  transport_->Write(VIRTIO_MMIO_CONFIG + 1, value);
  EXPECT_EQ(device_->config[1], 0xaa);
  EXPECT_EQ(device_->config[2], 0xbb);
  ASSERT_EQ(device_->config_writes.size(), 1u);
  EXPECT_EQ(device_->config_writes[0].offset, 1u);
}

TEST_F(VirtioMmioTest, ConfigSpaceOutOfRangeReadsZeroAndIgnoresWrites) {
  uint8_t eight[8];
  std::memset(eight, 0x55, sizeof(eight));
  transport_->Read(VIRTIO_MMIO_CONFIG + 8, eight);  // straddles the end (12 bytes)
  for (uint8_t b : eight) EXPECT_EQ(b, 0);
  EXPECT_EQ(Read32(VIRTIO_MMIO_CONFIG + 12), 0u);  // just past the end
  EXPECT_EQ(Read32(0xffc), 0u);
  uint8_t three[3] = {0x55, 0x55, 0x55};  // not a width the spec allows
  transport_->Read(VIRTIO_MMIO_CONFIG, three);
  for (uint8_t b : three) EXPECT_EQ(b, 0);
  EXPECT_TRUE(device_->config_reads.empty());

  Write32(VIRTIO_MMIO_CONFIG + 10, 0xffffffff);
  Write32(VIRTIO_MMIO_CONFIG + 12, 0xffffffff);
  const uint8_t value[3] = {1, 2, 3};
  transport_->Write(VIRTIO_MMIO_CONFIG, value);
  transport_->Write(~uint64_t{0}, std::span<const uint8_t>(value, 1));
  EXPECT_TRUE(device_->config_writes.empty());
  EXPECT_EQ(device_->config, (std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
}

TEST_F(VirtioMmioTest, ControlRegistersTakeOnlyAligned32BitAccesses) {
  uint8_t two[2] = {0x55, 0x55};
  transport_->Read(VIRTIO_MMIO_MAGIC_VALUE, two);
  EXPECT_EQ(two[0], 0);
  EXPECT_EQ(two[1], 0);
  uint8_t eight[8];
  std::memset(eight, 0x55, sizeof(eight));
  transport_->Read(VIRTIO_MMIO_MAGIC_VALUE, eight);
  for (uint8_t b : eight) EXPECT_EQ(b, 0);
  EXPECT_EQ(Read32(VIRTIO_MMIO_MAGIC_VALUE + 2), 0u);  // misaligned
  const uint8_t ack = kAck;
  transport_->Write(VIRTIO_MMIO_STATUS, std::span<const uint8_t>(&ack, 1));
  EXPECT_EQ(Status(), 0u);
  Write32(VIRTIO_MMIO_STATUS + 1, kAck);
  EXPECT_EQ(Status(), 0u);
  transport_->Read(VIRTIO_MMIO_STATUS, std::span<uint8_t>());
  transport_->Write(VIRTIO_MMIO_STATUS, std::span<const uint8_t>());
  EXPECT_EQ(Status(), 0u);
}

TEST_F(VirtioMmioTest, LegacyAndWriteOnlyRegistersReadZero) {
  Negotiate(kVersion1);
  Write32(VIRTIO_MMIO_GUEST_PAGE_SIZE, 4096);
  Write32(VIRTIO_MMIO_QUEUE_SEL, 0);
  Write32(VIRTIO_MMIO_QUEUE_ALIGN, 4096);
  Write32(VIRTIO_MMIO_QUEUE_PFN, 0x10);
  for (uint64_t offset : {VIRTIO_MMIO_GUEST_PAGE_SIZE, VIRTIO_MMIO_QUEUE_ALIGN,
                          VIRTIO_MMIO_QUEUE_PFN, VIRTIO_MMIO_QUEUE_SEL,
                          VIRTIO_MMIO_DEVICE_FEATURES_SEL, VIRTIO_MMIO_DRIVER_FEATURES,
                          VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_MMIO_INTERRUPT_ACK, 0x0c0, 0x0f8}) {
    EXPECT_EQ(Read32(offset), 0u) << std::hex << offset;
  }
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_READY), 0u);
  // No shared memory regions: Linux recognises length ~0 as "absent".
  Write32(VIRTIO_MMIO_SHM_SEL, 0);
  EXPECT_EQ(Read32(VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffffu);
  EXPECT_EQ(Read32(VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffffu);
}

TEST_F(VirtioMmioTest, DeviceNeedsReset) {
  Activate();
  irq_->ClearHistory();
  interrupt()->NeedsReset();
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver | kFeaturesOk | kDriverOk | kNeedsReset});
  EXPECT_EQ(Read32(VIRTIO_MMIO_INTERRUPT_STATUS), uint32_t{VIRTIO_MMIO_INT_CONFIG});
  EXPECT_EQ(irq_->levels(), std::vector<bool>{true});
  // A driver echoing the status it read (NEEDS_RESET included) plus FAILED
  // is understood; it cannot clear NEEDS_RESET itself.
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk | kNeedsReset | kFailed);
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver | kFeaturesOk | kDriverOk | kNeedsReset | kFailed});
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  EXPECT_TRUE(Status() & kNeedsReset);
  SetStatus(0);
  EXPECT_EQ(Status(), 0u);
}

TEST_F(VirtioMmioTest, ResetClearsEverythingAndResetsTheDevice) {
  Negotiate(kVersion1 | (1u << 5));
  SetUpQueue(1, 64, 0x1000, 0x2000, 0x3000);
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  ASSERT_EQ(device_->activations, 1);
  std::shared_ptr<VirtioInterrupt> old_interrupt = interrupt();
  old_interrupt->NotifyQueue(1);
  ASSERT_TRUE(irq_->level());
  Write32(VIRTIO_MMIO_QUEUE_NOTIFY, 1);  // a kick nobody consumed yet
  Write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  const int resets_before = device_->resets;

  SetStatus(0);
  EXPECT_EQ(device_->resets, resets_before + 1);
  EXPECT_FALSE(device_->activated.has_value());
  EXPECT_EQ(Status(), 0u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(ReadEventFd(transport_->notify_fd(1)), std::nullopt);  // drained
  // Selectors are back at 0: feature page 0, queue 0.
  EXPECT_EQ(Read32(VIRTIO_MMIO_DEVICE_FEATURES), (1u << 5) | (1u << 9));
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_NUM_MAX), 256u);
  Write32(VIRTIO_MMIO_QUEUE_SEL, 1);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_READY), 0u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_NUM), 0u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_DESC_LOW), 0u);
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_USED_LOW), 0u);
  // The interrupt of the old activation no longer reaches the driver.
  old_interrupt->NotifyQueue(1);
  old_interrupt->NeedsReset();
  EXPECT_EQ(Read32(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
  EXPECT_EQ(Status(), 0u);
  EXPECT_FALSE(irq_->level());
  // Driver features were cleared: without rewriting them VERSION_1 is missing.
  SetStatus(kAck);
  SetStatus(kAck | kDriver);
  SetStatus(kAck | kDriver | kFeaturesOk);
  EXPECT_EQ(Status(), uint32_t{kAck | kDriver});
  // And the device can be brought up again.
  WriteDriverFeatures(kVersion1);
  SetStatus(kAck | kDriver | kFeaturesOk);
  SetUpQueue(0, 32, 0x1000, 0x2000, 0x3000);
  SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
  EXPECT_EQ(device_->activations, 2);
  ASSERT_TRUE(device_->activated.has_value());
  EXPECT_FALSE(device_->activated->queues[1].config.ready);
  EXPECT_EQ(device_->activated->queues[0].config.size, 32);
}

TEST_F(VirtioMmioTest, DestroyingTheTransportResetsAnActiveDevice) {
  Activate();
  const int resets = device_->resets;
  transport_.reset();
  EXPECT_EQ(device_->resets, resets + 1);
  EXPECT_FALSE(device_->activated.has_value());
}

TEST_F(VirtioMmioTest, InterruptsFromAnotherThreadKeepLineAndStatusInStep) {
  Activate();
  std::shared_ptr<VirtioInterrupt> irq = interrupt();
  std::atomic<bool> stop{false};
  std::thread io([&] {
    while (!stop.load()) irq->NotifyQueue(0);
  });
  for (int i = 0; i < 20000; ++i) {
    Write32(VIRTIO_MMIO_INTERRUPT_ACK, Read32(VIRTIO_MMIO_INTERRUPT_STATUS));
  }
  stop = true;
  io.join();
  EXPECT_EQ(irq_->level(), Read32(VIRTIO_MMIO_INTERRUPT_STATUS) != 0);
  Write32(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
  EXPECT_FALSE(irq_->level());
}

// A hostile guest writing anything anywhere: the transport must never crash,
// never hand the device an out-of-range config access or an invalid queue,
// and keep the line asserted exactly when an interrupt is pending.
TEST_F(VirtioMmioTest, RandomRegisterTrafficNeverBreaksInvariants) {
  std::mt19937_64 random(20240601);
  const uint64_t hot_offsets[] = {
      VIRTIO_MMIO_STATUS,          VIRTIO_MMIO_QUEUE_SEL,         VIRTIO_MMIO_QUEUE_NUM,
      VIRTIO_MMIO_QUEUE_READY,     VIRTIO_MMIO_QUEUE_NOTIFY,      VIRTIO_MMIO_INTERRUPT_ACK,
      VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_MMIO_DRIVER_FEATURES_SEL, VIRTIO_MMIO_QUEUE_DESC_LOW,
      VIRTIO_MMIO_QUEUE_USED_HIGH, VIRTIO_MMIO_CONFIG,            VIRTIO_MMIO_CONFIG + 9};
  const uint32_t hot_values[] = {0,    1,   2,    3,   0xb, 0xf, 0x80, 0x40, 0x10000,
                                 0xffffffff, 128, 256, 257, 1,   0};
  const size_t widths[] = {1, 2, 3, 4, 4, 4, 8};
  const auto start = std::chrono::steady_clock::now();
  int last_activations = 0;
  for (int i = 0; i < 60000; ++i) {
    const uint64_t r = random();
    if (r % 400 == 0) {
      // Now and then a correct bring-up to a random depth, so the random
      // traffic also hits the later states (queues set up, DRIVER_OK).
      const uint64_t depth = (r >> 10) % 4;
      SetStatus(0);
      Negotiate(kVersion1);
      if (depth > 0) SetUpQueue(0, 128, 0x1000, 0x2000, 0x3000);
      if (depth > 1) SetUpQueue(1, 1u << ((r >> 12) % 10), 0x4000, 0x5000, 0x6000);
      if (depth > 2) SetStatus(kAck | kDriver | kFeaturesOk | kDriverOk);
    }
    const uint64_t offset = (r & 1) ? hot_offsets[(r >> 1) % std::size(hot_offsets)]
                                    : (r >> 8) % 0x1010;
    const size_t width = widths[(r >> 20) % std::size(widths)];
    const uint64_t value = (r & 2) ? hot_values[(r >> 24) % std::size(hot_values)] : random();
    uint8_t bytes[8];
    for (size_t b = 0; b < 8; ++b) bytes[b] = static_cast<uint8_t>(value >> (8 * b));
    if ((r >> 40) % 3 == 0) {
      transport_->Read(offset, std::span<uint8_t>(bytes, width));
    } else {
      transport_->Write(offset, std::span<const uint8_t>(bytes, width));
    }
    if (device_->activated.has_value() && (r >> 50) % 16 == 0) {
      const uint64_t which = (r >> 54) % 3;
      if (which == 0) device_->activated->interrupt->NotifyQueue(0);
      if (which == 1) device_->activated->interrupt->NotifyConfigChange();
      if (which == 2) device_->activated->interrupt->NeedsReset();
    }
    if (device_->activations != last_activations && device_->activated.has_value()) {
      last_activations = device_->activations;
      ASSERT_EQ(device_->activated->features & ~transport_->offered_features(), 0u);
      ASSERT_NE(device_->activated->features & kVersion1, 0u);
      for (const ActivatedQueue& q : device_->activated->queues) {
        if (!q.config.ready) continue;
        ASSERT_GT(q.config.size, 0);
        ASSERT_LE(q.config.size, device_->max_size);
        ASSERT_EQ(q.config.size & (q.config.size - 1), 0);
      }
    }
    ASSERT_EQ(irq_->level(), Read32(VIRTIO_MMIO_INTERRUPT_STATUS) != 0) << "step " << i;
    const uint32_t num_max = Read32(VIRTIO_MMIO_QUEUE_NUM_MAX);
    ASSERT_TRUE(num_max == 0 || num_max == device_->max_size);
    ASSERT_EQ(Read32(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976u);
  }
  EXPECT_GT(device_->activations, 0);  // the walk got deep enough to matter
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(VirtioMmioCmdlineTest, FormatsLikeLinuxParsesIt) {
  EXPECT_EQ(VirtioMmioCmdlineArg(0xd0000000, 0x1000, 5), "virtio_mmio.device=4K@0xd0000000:5");
  EXPECT_EQ(VirtioMmioCmdlineArg(0xfeb00000, 0x200, 12), "virtio_mmio.device=512@0xfeb00000:12");
  EXPECT_EQ(VirtioMmioCmdlineArg(0x10000000, 0x100000, 33), "virtio_mmio.device=1M@0x10000000:33");
  EXPECT_EQ(VirtioMmioCmdlineArg(0x100000000, 0x80000000, 7),
            "virtio_mmio.device=2G@0x100000000:7");
}

}  // namespace
}  // namespace skiff::virtio
