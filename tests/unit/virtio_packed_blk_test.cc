// virtio-blk on a packed virtqueue, driven through the virtio-mmio transport
// the way Linux's driver does it: feature negotiation with
// VIRTIO_F_RING_PACKED, a queue of a size that is not a power of two, the
// driver and device areas in the QUEUE_AVAIL/QUEUE_USED registers, kicks on
// QUEUE_NOTIFY served by the device on its I/O thread, interrupts on the
// transport's line, used descriptors read back at the driver's position.
#include <endian.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "devices/virtio/blk.h"
#include "devices/virtio/mmio_transport.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/fake_irq_line.h"
#include "tests/unit/packed_virtqueue_builder.h"
#include "tests/unit/temp_dir.h"
#include "vmm/event_loop.h"

namespace skiff::virtio {
namespace {

using ::skiff::testing::Pattern;
using ::skiff::testing::ReadFile;
using ::skiff::testing::TempDir;
using ::skiff::testing::WriteFile;
using ::skiff::virtio::testing::PackedVirtqueueBuilder;
using Buf = PackedVirtqueueBuilder::Buf;

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

constexpr uint64_t kBase = 0xd0000000;
constexpr uint64_t kRamSize = 1 << 20;
constexpr uint64_t kRingBase = 0x1000;
constexpr uint16_t kQueueSize = 100;  // packed rings need no power of two
constexpr uint64_t kHeaders = 0x20000;
constexpr uint64_t kStatuses = 0x30000;
constexpr uint64_t kTables = 0x40000;
constexpr uint64_t kData = 0x80000;
constexpr uint64_t kImageSize = 64 * 1024;
constexpr uint8_t kUnwritten = 0xAA;

class VirtioPackedBlkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    image_ = dir_.File("disk.img");
    WriteFile(image_, Pattern(kImageSize));
    block::DiskOptions options;
    options.path = image_;
    auto blk = VirtioBlk::Create(options);
    ASSERT_TRUE(blk.ok()) << blk.status();
    blk_ = *blk;
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
    MmioTransportEnv env;
    env.base_gpa = kBase;
    env.memory = mem_.memory();
    env.event_loop = loop_.get();
    env.irq = irq_;
    auto transport = MmioTransport::Create(blk_, std::move(env));
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
    io_thread_ = std::thread([this] { loop_->Run(); });
  }
  void TearDown() override {
    loop_->Stop();
    if (io_thread_.joinable()) io_thread_.join();
    transport_.reset();  // resets the device
  }

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
  uint64_t DeviceFeatures() {
    Write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t features = Read32(VIRTIO_MMIO_DEVICE_FEATURES);
    Write32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    return features | uint64_t{Read32(VIRTIO_MMIO_DEVICE_FEATURES)} << 32;
  }

  // virtio 1.2 §3.1.1 with everything offered (RING_PACKED included, as a
  // Linux guest takes it), then the queue at `size`. False when the device
  // refused activation (NEEDS_RESET).
  bool Start(uint16_t size = kQueueSize) {
    Write32(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    Write32(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    const uint64_t features = DeviceFeatures();
    EXPECT_TRUE(features & Bit(VIRTIO_F_RING_PACKED));
    Write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    Write32(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features));
    Write32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    Write32(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features >> 32));
    const uint32_t features_ok =
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
    Write32(VIRTIO_MMIO_STATUS, features_ok);
    EXPECT_EQ(Read32(VIRTIO_MMIO_STATUS), features_ok);

    ring_.emplace(mem_, size, kRingBase);
    const QueueConfig config = ring_->config();
    Write32(VIRTIO_MMIO_QUEUE_SEL, 0);
    Write32(VIRTIO_MMIO_QUEUE_NUM, size);
    Write32(VIRTIO_MMIO_QUEUE_DESC_LOW, static_cast<uint32_t>(config.desc_table));
    Write32(VIRTIO_MMIO_QUEUE_DESC_HIGH, static_cast<uint32_t>(config.desc_table >> 32));
    Write32(VIRTIO_MMIO_QUEUE_AVAIL_LOW, static_cast<uint32_t>(config.avail_ring));  // driver area
    Write32(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, static_cast<uint32_t>(config.avail_ring >> 32));
    Write32(VIRTIO_MMIO_QUEUE_USED_LOW, static_cast<uint32_t>(config.used_ring));  // device area
    Write32(VIRTIO_MMIO_QUEUE_USED_HIGH, static_cast<uint32_t>(config.used_ring >> 32));
    Write32(VIRTIO_MMIO_QUEUE_READY, 1);
    Write32(VIRTIO_MMIO_STATUS, features_ok | VIRTIO_CONFIG_S_DRIVER_OK);
    return (Read32(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET) == 0;
  }

  // Header, data, status byte as one chain (or one indirect table).
  uint16_t Post(uint32_t type, uint64_t sector, std::vector<Buf> data, int slot,
                bool indirect = false) {
    const uint64_t header = kHeaders + 32ull * slot;
    const uint32_t le_type = htole32(type);
    const uint64_t le_sector = htole64(sector);
    std::memcpy(mem_.host(header), &le_type, 4);
    std::memset(mem_.host(header + 4), 0, 4);
    std::memcpy(mem_.host(header + 8), &le_sector, 8);
    *mem_.host(kStatuses + slot) = kUnwritten;
    std::vector<Buf> chain{{header, 16, false}};
    chain.insert(chain.end(), data.begin(), data.end());
    chain.push_back({kStatuses + static_cast<uint64_t>(slot), 1, true});
    return indirect ? ring_->AddIndirectChain(kTables + 0x1000ull * slot, chain)
                    : ring_->AddChain(chain);
  }
  void Kick() { Write32(VIRTIO_MMIO_QUEUE_NOTIFY, 0); }

  // Waits for the used-buffer interrupt, acknowledges it and returns every
  // used descriptor the driver finds.
  std::vector<PackedVirtqueueBuilder::Used> WaitForUsed(size_t expected) {
    std::vector<PackedVirtqueueBuilder::Used> used;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (used.size() < expected && std::chrono::steady_clock::now() < deadline) {
      if (!irq_->level()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      Write32(VIRTIO_MMIO_INTERRUPT_ACK, Read32(VIRTIO_MMIO_INTERRUPT_STATUS));
      while (auto one = ring_->NextUsed()) used.push_back(*one);
    }
    EXPECT_EQ(used.size(), expected);
    return used;
  }

  TempDir dir_;
  std::string image_;
  FakeGuestMemory mem_{kRamSize};
  std::shared_ptr<FakeIrqLine> irq_ = std::make_shared<FakeIrqLine>();
  std::shared_ptr<VirtioBlk> blk_;
  std::unique_ptr<EventLoop> loop_;
  std::shared_ptr<MmioTransport> transport_;
  std::thread io_thread_;
  std::optional<PackedVirtqueueBuilder> ring_;
};

TEST_F(VirtioPackedBlkTest, WritesAndReadsBackOnAPackedQueue) {
  ASSERT_TRUE(Start());
  EXPECT_EQ(Read32(VIRTIO_MMIO_QUEUE_NUM_MAX), VirtioBlk::kQueueSize);
  // A write of two 512-byte buffers at sector 4...
  std::memset(mem_.host(kData), 0x5a, 512);
  std::memset(mem_.host(kData + 0x1000), 0xa5, 512);
  const uint16_t write =
      Post(VIRTIO_BLK_T_OUT, 4, {{kData, 512, false}, {kData + 0x1000, 512, false}}, 0);
  Kick();
  auto used = WaitForUsed(1);
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].id, write);
  EXPECT_EQ(used[0].len, 1u);  // the status byte
  EXPECT_EQ(*mem_.host(kStatuses), VIRTIO_BLK_S_OK);
  const std::vector<uint8_t> image = ReadFile(image_);
  EXPECT_EQ(std::vector<uint8_t>(image.begin() + 4 * 512, image.begin() + 5 * 512),
            std::vector<uint8_t>(512, 0x5a));
  EXPECT_EQ(std::vector<uint8_t>(image.begin() + 5 * 512, image.begin() + 6 * 512),
            std::vector<uint8_t>(512, 0xa5));

  // ...read back into one buffer through an indirect table.
  const uint16_t read =
      Post(VIRTIO_BLK_T_IN, 4, {{kData + 0x4000, 1024, true}}, 1, /*indirect=*/true);
  Kick();
  used = WaitForUsed(1);
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].id, read);
  EXPECT_EQ(used[0].len, 1025u);           // data and status
  EXPECT_TRUE(used[0].flags & (1u << 1));  // VIRTQ_DESC_F_WRITE: len is meaningful
  EXPECT_EQ(*mem_.host(kStatuses + 1), VIRTIO_BLK_S_OK);
  EXPECT_EQ(std::vector<uint8_t>(mem_.host(kData + 0x4000), mem_.host(kData + 0x4200)),
            std::vector<uint8_t>(512, 0x5a));
  EXPECT_EQ(std::vector<uint8_t>(mem_.host(kData + 0x4200), mem_.host(kData + 0x4400)),
            std::vector<uint8_t>(512, 0xa5));
}

TEST_F(VirtioPackedBlkTest, KeepsGoingAcrossSeveralLapsOfTheRing) {
  ASSERT_TRUE(Start());
  const std::vector<uint8_t> image = Pattern(kImageSize);
  // 3-descriptor requests in batches that leave the ring's end in the middle
  // of a chain: 100 slots, 33 requests per batch, 4 batches.
  for (int batch = 0; batch < 4; ++batch) {
    std::vector<uint16_t> ids;
    for (int i = 0; i < 33; ++i) {
      const uint64_t sector = static_cast<uint64_t>((batch * 33 + i) % 128);
      ids.push_back(Post(VIRTIO_BLK_T_IN, sector, {{kData + 0x200ull * i, 512, true}}, i));
    }
    Kick();
    auto used = WaitForUsed(ids.size());
    ASSERT_EQ(used.size(), ids.size()) << "batch " << batch;
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(used[i].id, ids[i]);  // this device completes in order
      EXPECT_EQ(used[i].len, 513u);
      EXPECT_EQ(*mem_.host(kStatuses + i), VIRTIO_BLK_S_OK);
      const uint64_t sector = (batch * 33 + i) % 128;
      EXPECT_EQ(*mem_.host(kData + 0x200 * i), image[sector * 512]);
    }
  }
  // 396 slots used: three whole laps, so the driver's used wrap counter
  // flipped three times.
  EXPECT_FALSE(ring_->used_wrap());
  EXPECT_EQ(ring_->last_used(), 96);
}

TEST_F(VirtioPackedBlkTest, AMalformedPackedRingNeedsReset) {
  ASSERT_TRUE(Start());
  // A buffer ID past the queue size.
  ring_->AddRaw(kHeaders, 16, kQueueSize, 0);
  Kick();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(Read32(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(Read32(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

TEST_F(VirtioPackedBlkTest, TheTransportRefusesAPackedQueueLargerThanItsMaximum) {
  EXPECT_FALSE(Start(VirtioBlk::kQueueSize + 1));
}

}  // namespace
}  // namespace skiff::virtio
