// virtio-blk driven like a guest would: requests posted on a split ring in
// fake guest memory, over real image files in a temp directory (or a fake
// back-end where failures or ordering must be observed).
#include <endian.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "devices/virtio/blk.h"
#include "devices/virtio/split_ring.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/temp_dir.h"
#include "tests/unit/virtqueue_builder.h"
#include "tests/unit/virtqueue_test_util.h"
#include "vmm/event_loop.h"
#include "vmm/unique_fd.h"

namespace skiff::virtio {
namespace {

using ::skiff::testing::Pattern;
using ::skiff::testing::PatternByte;
using ::skiff::testing::ReadFile;
using ::skiff::testing::TempDir;
using ::skiff::testing::WriteFile;
using ::skiff::virtio::testing::VirtqueueBuilder;
using ::testing::HasSubstr;
using Buf = VirtqueueBuilder::Buf;

constexpr uint64_t kRamSize = 4 << 20;
constexpr uint64_t kRingBase = 0x1000;
constexpr uint16_t kQueueSize = 256;     // room for 3-descriptor chains past the per-pass cap
constexpr uint64_t kHeaders = 0x20000;   // request i's header at kHeaders + 32 * i
constexpr uint64_t kStatuses = 0x30000;  // request i's status byte at kStatuses + i
constexpr uint64_t kData = 0x100000;     // data buffers from here
constexpr uint64_t kImageSize = 64 * 1024;
constexpr uint64_t kImageSectors = kImageSize / 512;
constexpr uint8_t kUnwritten = 0xAA;  // a status byte the device never wrote

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

// What the device offers minus VIRTIO_F_RING_PACKED: these tests lay out
// split rings (virtio_packed_blk_test.cc covers the packed ones).
uint64_t SplitFeatures(const VirtioBlk& blk) {
  return blk.device_features() & ~Bit(VIRTIO_F_RING_PACKED);
}

block::DiskOptions Disk(std::string path, bool readonly = false, bool direct = false,
                        std::string serial = "") {
  block::DiskOptions options;
  options.path = std::move(path);
  options.readonly = readonly;
  options.direct = direct;
  options.serial = std::move(serial);
  return options;
}

class FakeInterrupt : public VirtioInterrupt {
 public:
  void NotifyQueue(uint16_t queue) override {
    EXPECT_EQ(queue, 0);
    ++notifies;
  }
  void NotifyConfigChange() override {}
  void NeedsReset() override { ++needs_reset; }

  std::atomic<int> notifies{0};
  std::atomic<int> needs_reset{0};
};

// A disk in memory whose failures and flushes the test controls.
class FakeBackend : public block::BlockBackend {
 public:
  explicit FakeBackend(uint64_t size, bool readonly = false)
      : bytes(size, 0), readonly_(readonly) {}

  uint64_t size() const override { return bytes.size(); }
  bool readonly() const override { return readonly_; }
  uint32_t block_size() const override { return 512; }
  uint32_t discard_granularity() const override { return 4096; }
  const std::string& name() const override { return name_; }

  absl::Status ReadAt(uint64_t offset, std::span<const iovec> buffers) override {
    ++reads;
    if (!InRange(offset, buffers)) return absl::OutOfRangeError("device passed a bad range");
    if (!read_error.ok()) return read_error;
    for (const iovec& iov : buffers) {
      std::memcpy(iov.iov_base, &bytes[offset], iov.iov_len);
      offset += iov.iov_len;
    }
    return absl::OkStatus();
  }
  absl::Status WriteAt(uint64_t offset, std::span<const iovec> buffers) override {
    ++writes;
    if (!InRange(offset, buffers)) return absl::OutOfRangeError("device passed a bad range");
    if (!write_error.ok()) return write_error;
    if (on_write) on_write();
    for (const iovec& iov : buffers) {
      std::memcpy(&bytes[offset], iov.iov_base, iov.iov_len);
      offset += iov.iov_len;
    }
    return absl::OkStatus();
  }
  absl::Status Flush() override {
    ++flushes;
    if (on_flush) on_flush();
    return flush_error;
  }
  absl::Status Discard(uint64_t offset, uint64_t length) override {
    ++discards;
    if (offset > bytes.size() || length > bytes.size() - offset) {
      ADD_FAILURE() << "discard past the end reached the back-end";
      return absl::OutOfRangeError("bad range");
    }
    std::memset(&bytes[offset], 0, length);
    return absl::OkStatus();
  }
  absl::Status WriteZeroes(uint64_t offset, uint64_t length, bool) override {
    ++discards;
    if (offset > bytes.size() || length > bytes.size() - offset) {
      ADD_FAILURE() << "write-zeroes past the end reached the back-end";
      return absl::OutOfRangeError("bad range");
    }
    std::memset(&bytes[offset], 0, length);
    return absl::OkStatus();
  }

  std::vector<uint8_t> bytes;
  absl::Status read_error, write_error, flush_error;
  std::function<void()> on_flush;
  std::function<void()> on_write;  // before the bytes land
  int flushes = 0;
  int reads = 0;
  int writes = 0;
  int discards = 0;  // and write-zeroes

 private:
  // The device must never hand the back-end a range past the disk.
  bool InRange(uint64_t offset, std::span<const iovec> buffers) const {
    uint64_t length = 0;
    for (const iovec& iov : buffers) length += iov.iov_len;
    bool ok = offset <= bytes.size() && length <= bytes.size() - offset;
    if (!ok) ADD_FAILURE() << "range " << offset << "+" << length << " reached the back-end";
    return ok;
  }

  bool readonly_;
  std::string name_ = "fake.img";
};

class VirtioBlkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    notify_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    ASSERT_TRUE(notify_.valid());
    image_ = dir_.File("disk.img");
    WriteFile(image_, Pattern(kImageSize));
  }

  std::shared_ptr<VirtioBlk> OpenImage(block::DiskOptions options = {}) {
    if (options.path.empty()) options.path = image_;
    auto device = VirtioBlk::Create(options);
    EXPECT_TRUE(device.ok()) << device.status();
    return device.ok() ? *device : nullptr;
  }

  // A device over a FakeBackend; `fake` stays valid while the device lives.
  std::shared_ptr<VirtioBlk> OpenFake(FakeBackend** fake, bool readonly = false) {
    auto backend = std::make_unique<FakeBackend>(kImageSize, readonly);
    *fake = backend.get();
    auto device = VirtioBlk::Create(std::move(backend), "fake-serial");
    EXPECT_TRUE(device.ok()) << device.status();
    return device.ok() ? *device : nullptr;
  }

  // Activates with every offered feature but the packed ring unless told
  // otherwise.
  void Activate(VirtioBlk& device, std::optional<uint64_t> features = std::nullopt) {
    ActivationContext context;
    context.memory = mem_.memory();
    context.features = features.value_or(SplitFeatures(device));
    context.queues.push_back(ActivatedQueue{vq_.config(), notify_.get()});
    context.interrupt = interrupt_;
    context.event_loop = loop_.get();
    absl::Status status = device.Activate(std::move(context));
    ASSERT_TRUE(status.ok()) << status;
  }

  // Posts header, data buffers and a status byte as one chain, using
  // request slot `slot` for the header and status.
  uint16_t Post(uint32_t type, uint64_t sector, std::vector<Buf> data, int slot = 0) {
    const uint64_t header = kHeaders + 32ull * slot;
    WriteHeader(header, type, sector);
    *mem_.host(StatusAddr(slot)) = kUnwritten;
    std::vector<Buf> chain{{header, 16, false}};
    chain.insert(chain.end(), data.begin(), data.end());
    chain.push_back({StatusAddr(slot), 1, true});
    return vq_.AddChain(chain);
  }
  void WriteHeader(uint64_t gpa, uint32_t type, uint64_t sector) {
    uint32_t le_type = htole32(type);
    uint64_t le_sector = htole64(sector);
    std::memcpy(mem_.host(gpa), &le_type, 4);
    std::memset(mem_.host(gpa + 4), 0, 4);
    std::memcpy(mem_.host(gpa + 8), &le_sector, 8);
  }
  // A discard / write-zeroes segment at `gpa`.
  void WriteSegment(uint64_t gpa, uint64_t sector, uint32_t num_sectors, uint32_t flags) {
    uint64_t s = htole64(sector);
    uint32_t n = htole32(num_sectors), f = htole32(flags);
    std::memcpy(mem_.host(gpa), &s, 8);
    std::memcpy(mem_.host(gpa + 8), &n, 4);
    std::memcpy(mem_.host(gpa + 12), &f, 4);
  }
  static uint64_t StatusAddr(int slot) { return kStatuses + slot; }
  uint8_t Status(int slot = 0) { return *mem_.host(StatusAddr(slot)); }
  std::vector<uint8_t> Guest(uint64_t gpa, size_t len) {
    return std::vector<uint8_t>(mem_.host(gpa), mem_.host(gpa) + len);
  }
  void FillGuest(uint64_t gpa, size_t len, uint8_t value) {
    std::memset(mem_.host(gpa), value, len);
  }
  // True (and consumed) when the notify eventfd holds a kick.
  bool TakeKick() {
    uint64_t value;
    return ::read(notify_.get(), &value, sizeof(value)) == sizeof(value);
  }

  TempDir dir_;
  std::string image_;
  FakeGuestMemory mem_{kRamSize};
  VirtqueueBuilder vq_{mem_, kQueueSize, kRingBase};
  std::unique_ptr<EventLoop> loop_;
  UniqueFd notify_;
  std::shared_ptr<FakeInterrupt> interrupt_ = std::make_shared<FakeInterrupt>();
};

std::vector<uint8_t> Slice(const std::vector<uint8_t>& v, size_t offset, size_t len) {
  return std::vector<uint8_t>(v.begin() + offset, v.begin() + offset + len);
}

// ---- Identity, features, configuration space ----

TEST_F(VirtioBlkTest, OffersTheBlockFeatures) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  EXPECT_EQ(blk->device_id(), VIRTIO_ID_BLOCK);
  EXPECT_EQ(blk->num_queues(), 1);
  EXPECT_EQ(blk->name(), "virtio-blk (" + image_ + ")");
  const uint64_t f = blk->device_features();
  for (unsigned bit :
       {unsigned{VIRTIO_F_VERSION_1}, unsigned{VIRTIO_F_RING_PACKED}, 28u /*INDIRECT_DESC*/,
        29u /*EVENT_IDX*/, unsigned{VIRTIO_BLK_F_SEG_MAX}, unsigned{VIRTIO_BLK_F_SIZE_MAX},
        unsigned{VIRTIO_BLK_F_BLK_SIZE}, unsigned{VIRTIO_BLK_F_FLUSH},
        unsigned{VIRTIO_BLK_F_DISCARD}, unsigned{VIRTIO_BLK_F_WRITE_ZEROES}}) {
    EXPECT_TRUE(f & Bit(bit)) << "bit " << bit;
  }
  EXPECT_FALSE(f & Bit(VIRTIO_BLK_F_RO));
  EXPECT_FALSE(f & Bit(VIRTIO_BLK_F_CONFIG_WCE));
}

TEST_F(VirtioBlkTest, ReadOnlyDiskOffersRoAndNoDiscard) {
  auto blk = OpenImage(Disk(image_, true));
  ASSERT_NE(blk, nullptr);
  const uint64_t f = blk->device_features();
  EXPECT_TRUE(f & Bit(VIRTIO_BLK_F_RO));
  EXPECT_FALSE(f & Bit(VIRTIO_BLK_F_DISCARD));
  EXPECT_FALSE(f & Bit(VIRTIO_BLK_F_WRITE_ZEROES));
}

uint64_t Le(const std::vector<uint8_t>& config, uint32_t offset, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | config[offset + i];
  return v;
}

TEST_F(VirtioBlkTest, ConfigSpaceFollowsTheLinuxLayout) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  ASSERT_EQ(blk->config_size(), 60u);
  std::vector<uint8_t> config(60);
  blk->ReadConfig(0, config);
  EXPECT_EQ(Le(config, 0, 8), kImageSectors);       // capacity
  EXPECT_EQ(Le(config, 8, 4), 256u * 1024);         // size_max
  EXPECT_EQ(Le(config, 12, 4), 254u);               // seg_max
  EXPECT_EQ(Le(config, 16, 4), 0u);                 // geometry: not offered
  EXPECT_EQ(Le(config, 20, 4), 512u);               // blk_size
  EXPECT_EQ(Le(config, 24, 8), 0u);                 // topology: not offered
  EXPECT_EQ(config[32], 0);                         // wce
  EXPECT_EQ(Le(config, 34, 2), 0u);                 // num_queues (no MQ)
  EXPECT_EQ(Le(config, 36, 4), 1u << 22);           // max_discard_sectors
  EXPECT_EQ(Le(config, 40, 4), 32u);                // max_discard_seg
  EXPECT_GE(Le(config, 44, 4), 1u);                 // discard_sector_alignment
  EXPECT_EQ(Le(config, 48, 4), (64u << 20) / 512);  // max_write_zeroes_sectors
  EXPECT_EQ(Le(config, 52, 4), 1u);                 // max_write_zeroes_seg
  EXPECT_EQ(config[56], 1);                         // write_zeroes_may_unmap
  EXPECT_EQ(Le(config, 57, 3), 0u);                 // unused1
  // seg_max * size_max stays within the per-request cap.
  EXPECT_LE(uint64_t{BlkLimits::kSegMax} * BlkLimits::kSizeMax, BlkLimits::kMaxRequestBytes);
}

TEST_F(VirtioBlkTest, ConfigReadsAreBoundsCheckedAndWritesIgnored) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  std::vector<uint8_t> full(60);
  blk->ReadConfig(0, full);
  // Straddling the end: the tail reads as zero.
  std::vector<uint8_t> tail(8, 0xff);
  blk->ReadConfig(56, tail);
  EXPECT_EQ(tail, (std::vector<uint8_t>{full[56], 0, 0, 0, 0, 0, 0, 0}));
  // Far past the end, including offsets that would overflow 32 bits.
  for (uint32_t offset : {60u, 4096u, 0xfffffffcu, 0xffffffffu}) {
    std::vector<uint8_t> out(4, 0xff);
    blk->ReadConfig(offset, out);
    EXPECT_EQ(out, std::vector<uint8_t>(4, 0)) << offset;
  }
  // Byte-wise reads agree with the whole.
  for (uint32_t i = 0; i < 60; ++i) {
    uint8_t b = 0xee;
    blk->ReadConfig(i, {&b, 1});
    EXPECT_EQ(b, full[i]) << i;
  }
  std::vector<uint8_t> junk(60, 0x77);
  blk->WriteConfig(0, junk);
  std::vector<uint8_t> after(60);
  blk->ReadConfig(0, after);
  EXPECT_EQ(after, full);
}

TEST_F(VirtioBlkTest, SizeNotAMultipleOf512IsRoundedDown) {
  WriteFile(image_, Pattern(512 * 3 + 100));
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  std::vector<uint8_t> capacity(8);
  blk->ReadConfig(0, capacity);
  EXPECT_EQ(Le(capacity, 0, 8), 3u);
}

// ---- Reads and writes ----

TEST_F(VirtioBlkTest, ReadFillsMultiSegmentBuffers) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  // 1536 bytes from sector 5, split 100 / 1000 / 436 over scattered buffers.
  uint16_t head =
      Post(VIRTIO_BLK_T_IN, 5,
           {{kData + 0x3000, 100, true}, {kData, 1000, true}, {kData + 0x8000, 436, true}});
  blk->ProcessQueue();

  ASSERT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(vq_.used(0).id, head);
  EXPECT_EQ(vq_.used(0).len, 1536u + 1);
  EXPECT_EQ(Status(), VIRTIO_BLK_S_OK);
  std::vector<uint8_t> want = Slice(Pattern(kImageSize), 5 * 512, 1536);
  std::vector<uint8_t> got = Guest(kData + 0x3000, 100);
  auto middle = Guest(kData, 1000), last = Guest(kData + 0x8000, 436);
  got.insert(got.end(), middle.begin(), middle.end());
  got.insert(got.end(), last.begin(), last.end());
  EXPECT_EQ(got, want);
  EXPECT_EQ(interrupt_->notifies, 1);
  EXPECT_EQ(interrupt_->needs_reset, 0);
}

TEST_F(VirtioBlkTest, WriteReachesTheFileAndReadsBack) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  FillGuest(kData, 512, 0x11);
  FillGuest(kData + 0x1000, 300, 0x22);
  FillGuest(kData + 0x2000, 212, 0x33);
  Post(VIRTIO_BLK_T_OUT, 9,
       {{kData, 512, false}, {kData + 0x1000, 300, false}, {kData + 0x2000, 212, false}});
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(Status(), VIRTIO_BLK_S_OK);
  EXPECT_EQ(vq_.used(0).len, 1u);  // only the status was written into the chain

  std::vector<uint8_t> want = Pattern(kImageSize);
  std::memset(&want[9 * 512], 0x11, 512);
  std::memset(&want[10 * 512], 0x22, 300);
  std::memset(&want[10 * 512 + 300], 0x33, 212);
  EXPECT_EQ(ReadFile(image_), want);

  // And the guest reads its own data back.
  Post(VIRTIO_BLK_T_IN, 9, {{kData + 0x10000, 1024, true}}, 1);
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 2);
  EXPECT_EQ(Status(1), VIRTIO_BLK_S_OK);
  EXPECT_EQ(Guest(kData + 0x10000, 1024), Slice(want, 9 * 512, 1024));
}

TEST_F(VirtioBlkTest, HeaderAndStatusMayShareBuffersWithData) {
  // virtio 1.x has no fixed layout: the header split 8+8 over two
  // descriptors, data and status in one writable buffer.
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  WriteHeader(kHeaders, VIRTIO_BLK_T_IN, 2);
  std::memcpy(mem_.host(kData + 0x5000), mem_.host(kHeaders + 8), 8);
  mem_.host(kData + 512)[0] = kUnwritten;
  vq_.AddChain({{kHeaders, 8, false}, {kData + 0x5000, 8, false}, {kData, 513, true}});
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(vq_.used(0).len, 513u);
  EXPECT_EQ(mem_.host(kData + 512)[0], VIRTIO_BLK_S_OK);
  EXPECT_EQ(Guest(kData, 512), Slice(Pattern(kImageSize), 2 * 512, 512));
}

TEST_F(VirtioBlkTest, IndirectChainsWork) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  WriteHeader(kHeaders, VIRTIO_BLK_T_IN, 1);
  *mem_.host(StatusAddr(0)) = kUnwritten;
  vq_.AddIndirectChain(0x38000, {{kHeaders, 16, false},
                                 {kData, 512, true},
                                 {kData + 0x1000, 512, true},
                                 {StatusAddr(0), 1, true}});
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(Status(), VIRTIO_BLK_S_OK);
  EXPECT_EQ(Guest(kData + 0x1000, 512), Slice(Pattern(kImageSize), 2 * 512, 512));
}

TEST_F(VirtioBlkTest, DirectIoReadsAndWrites) {
  auto blk = OpenImage(Disk(image_, false, true));
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  FillGuest(kData, 4096, 0x66);  // FakeGuestMemory keeps guest pages host-page aligned
  Post(VIRTIO_BLK_T_OUT, 8, {{kData, 4096, false}});
  Post(VIRTIO_BLK_T_IN, 0, {{kData + 0x2000, 4096, true}}, 1);
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 2);
  EXPECT_EQ(Status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(Status(1), VIRTIO_BLK_S_OK);
  EXPECT_EQ(Guest(kData + 0x2000, 4096), Slice(Pattern(kImageSize), 0, 4096));
  EXPECT_EQ(Slice(ReadFile(image_), 8 * 512, 4096), std::vector<uint8_t>(4096, 0x66));
}

// ---- Hostile or malformed requests ----

TEST_F(VirtioBlkTest, OutOfRangeSectorsAreIoErrors) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  const std::vector<uint8_t> before = ReadFile(image_);
  FillGuest(kData, 1024, 0x44);
  int slot = 0;
  // Starts at the end; crosses the end; overflows sector*512; overflows sector+len.
  for (uint64_t sector :
       std::initializer_list<uint64_t>{kImageSectors, kImageSectors - 1, ~0ull / 512 + 1, ~0ull}) {
    Post(VIRTIO_BLK_T_IN, sector, {{kData + 0x4000, 1024, true}}, slot++);
    Post(VIRTIO_BLK_T_OUT, sector, {{kData, 1024, false}}, slot++);
  }
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), slot);
  for (int i = 0; i < slot; ++i) {
    EXPECT_EQ(Status(i), VIRTIO_BLK_S_IOERR) << i;
    EXPECT_EQ(vq_.used(i).len, 1u) << i;
  }
  EXPECT_EQ(ReadFile(image_), before);
  EXPECT_EQ(interrupt_->needs_reset, 0);

  // The last sector itself is fine, and so is an empty read at the end.
  Post(VIRTIO_BLK_T_IN, kImageSectors - 1, {{kData + 0x4000, 512, true}}, slot);
  Post(VIRTIO_BLK_T_IN, kImageSectors, {}, slot + 1);
  blk->ProcessQueue();
  EXPECT_EQ(Status(slot), VIRTIO_BLK_S_OK);
  EXPECT_EQ(Status(slot + 1), VIRTIO_BLK_S_OK);
}

TEST_F(VirtioBlkTest, BadRangesNeverReachTheBackEnd) {
  FakeBackend* fake;
  auto blk = OpenFake(&fake);
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  int slot = 0;
  for (uint64_t sector : std::initializer_list<uint64_t>{
           kImageSectors, kImageSectors - 1, ~0ull / 512 + 1, ~0ull / 512, ~0ull - 1, ~0ull}) {
    Post(VIRTIO_BLK_T_IN, sector, {{kData, 1024, true}}, slot++);
    Post(VIRTIO_BLK_T_OUT, sector, {{kData, 1024, false}}, slot++);
    for (uint32_t type : {VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES}) {
      const uint64_t segment = kData + 0x1000 + 16 * slot;
      WriteSegment(segment, sector, 2, 0);
      Post(type, 0, {{segment, 16, false}}, slot);
      ++slot;
    }
  }
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), slot);
  for (int i = 0; i < slot; ++i) EXPECT_EQ(Status(i), VIRTIO_BLK_S_IOERR) << i;
  EXPECT_EQ(fake->reads + fake->writes + fake->discards, 0);
}

TEST_F(VirtioBlkTest, LengthsThatAreNotWholeSectorsAreIoErrors) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  const std::vector<uint8_t> before = ReadFile(image_);
  FillGuest(kData, 1024, 0x44);
  Post(VIRTIO_BLK_T_OUT, 0, {{kData, 100, false}}, 0);
  Post(VIRTIO_BLK_T_OUT, 0, {{kData, 512, false}, {kData + 512, 1, false}}, 1);
  Post(VIRTIO_BLK_T_IN, 0, {{kData + 0x4000, 513, true}}, 2);
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Status(i), VIRTIO_BLK_S_IOERR) << i;
  EXPECT_EQ(ReadFile(image_), before);
}

TEST_F(VirtioBlkTest, RequestsOverThePerRequestCapAreIoErrors) {
  FakeBackend* fake;
  auto blk = OpenFake(&fake);
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  // 65 MiB of "data" described by overlapping descriptors over one 1 MiB
  // buffer: legal for the ring, refused by the device before any I/O.
  std::vector<Buf> data;
  for (int i = 0; i < 65; ++i) data.push_back({kData, 1 << 20, false});
  Post(VIRTIO_BLK_T_OUT, 0, data);
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(Status(), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(fake->writes, 0);
}

TEST_F(VirtioBlkTest, ShortHeaderIsAnIoErrorAndTheDeviceCarriesOn) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  WriteHeader(kHeaders, VIRTIO_BLK_T_IN, 0);
  *mem_.host(StatusAddr(0)) = kUnwritten;
  vq_.AddChain({{kHeaders, 15, false}, {kData, 512, true}, {StatusAddr(0), 1, true}});
  // No readable part at all.
  *mem_.host(StatusAddr(1)) = kUnwritten;
  vq_.AddChain({{kData + 0x1000, 512, true}, {StatusAddr(1), 1, true}});
  Post(VIRTIO_BLK_T_GET_ID, 0, {{kData + 0x2000, 20, true}}, 2);
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 3);
  EXPECT_EQ(Status(0), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(vq_.used(0).len, 1u);
  EXPECT_EQ(Status(1), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(Status(2), VIRTIO_BLK_S_OK);
  EXPECT_EQ(interrupt_->needs_reset, 0);
}

TEST_F(VirtioBlkTest, UnknownTypesAreUnsupported) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  const std::vector<uint8_t> before = ReadFile(image_);
  int slot = 0;
  for (uint32_t type : {2u /*SCSI*/, 10u /*GET_LIFETIME*/, 14u /*SECURE_ERASE*/, 42u,
                        0x80000001u /*OUT|BARRIER*/}) {
    Post(type, 0, {{kData, 512, false}}, slot++);
  }
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), slot);
  for (int i = 0; i < slot; ++i) EXPECT_EQ(Status(i), VIRTIO_BLK_S_UNSUPP) << i;
  EXPECT_EQ(ReadFile(image_), before);
}

TEST_F(VirtioBlkTest, ChainWithoutStatusByteNeedsResetAndStopsTheQueue) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  const std::vector<uint8_t> before = ReadFile(image_);
  FillGuest(kData, 512, 0x55);
  WriteHeader(kHeaders, VIRTIO_BLK_T_OUT, 0);
  vq_.AddChain({{kHeaders, 16, false}, {kData, 512, false}});  // all device-readable
  Post(VIRTIO_BLK_T_OUT, 0, {{kData, 512, false}}, 1);
  blk->ProcessQueue();
  EXPECT_EQ(interrupt_->needs_reset, 1);
  EXPECT_EQ(vq_.used_idx(), 0);
  EXPECT_EQ(Status(1), kUnwritten);
  // Further kicks are ignored until the driver resets the device.
  blk->ProcessQueue();
  EXPECT_EQ(vq_.used_idx(), 0);
  EXPECT_EQ(interrupt_->needs_reset, 1);
  EXPECT_EQ(ReadFile(image_), before);
}

TEST_F(VirtioBlkTest, MalformedRingNeedsReset) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  vq_.PublishHead(kQueueSize + 3);  // a head past the table
  blk->ProcessQueue();
  EXPECT_EQ(interrupt_->needs_reset, 1);
  EXPECT_EQ(vq_.used_idx(), 0);
}

// ---- Flush ----

TEST_F(VirtioBlkTest, FlushSyncsBeforeTheStatusIsWritten) {
  FakeBackend* fake;
  auto blk = OpenFake(&fake);
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  std::vector<uint8_t> status_at_sync;
  fake->on_flush = [&] { status_at_sync.push_back(Status()); };
  Post(VIRTIO_BLK_T_FLUSH, 0, {});
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(fake->flushes, 1);
  EXPECT_EQ(status_at_sync, std::vector<uint8_t>{kUnwritten});  // not yet acknowledged
  EXPECT_EQ(Status(), VIRTIO_BLK_S_OK);
  EXPECT_EQ(vq_.used(0).len, 1u);
}

TEST_F(VirtioBlkTest, FailedFlushIsAnIoError) {
  FakeBackend* fake;
  auto blk = OpenFake(&fake);
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  fake->flush_error = absl::InternalError("disk fake.img: fdatasync: Input/output error");
  Post(VIRTIO_BLK_T_FLUSH, 0, {});
  blk->ProcessQueue();
  EXPECT_EQ(Status(), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(interrupt_->needs_reset, 0);
}

TEST_F(VirtioBlkTest, FlushOnARealImageSucceeds) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  FillGuest(kData, 512, 0x99);
  Post(VIRTIO_BLK_T_OUT, 3, {{kData, 512, false}}, 0);
  Post(VIRTIO_BLK_T_FLUSH, 0, {}, 1);
  blk->ProcessQueue();
  EXPECT_EQ(Status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(Status(1), VIRTIO_BLK_S_OK);
  EXPECT_EQ(Slice(ReadFile(image_), 3 * 512, 512), std::vector<uint8_t>(512, 0x99));
}

TEST_F(VirtioBlkTest, WithoutNegotiatedFlushWritesAreWriteThrough) {
  FakeBackend* fake;
  auto blk = OpenFake(&fake);
  ASSERT_NE(blk, nullptr);
  Activate(*blk, SplitFeatures(*blk) & ~Bit(VIRTIO_BLK_F_FLUSH));
  std::vector<uint8_t> status_at_sync;
  fake->on_flush = [&] { status_at_sync.push_back(Status()); };
  Post(VIRTIO_BLK_T_OUT, 0, {{kData, 512, false}});
  blk->ProcessQueue();
  EXPECT_EQ(Status(), VIRTIO_BLK_S_OK);
  EXPECT_EQ(status_at_sync, std::vector<uint8_t>{kUnwritten});
}

TEST_F(VirtioBlkTest, WithFlushNegotiatedWritesDoNotSync) {
  FakeBackend* fake;
  auto blk = OpenFake(&fake);
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  Post(VIRTIO_BLK_T_OUT, 0, {{kData, 512, false}});
  blk->ProcessQueue();
  EXPECT_EQ(Status(), VIRTIO_BLK_S_OK);
  EXPECT_EQ(fake->flushes, 0);
}

// ---- Host I/O errors ----

TEST_F(VirtioBlkTest, HostReadAndWriteErrorsAreIoErrorsAndTheDeviceCarriesOn) {
  FakeBackend* fake;
  auto blk = OpenFake(&fake);
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  fake->read_error = absl::InternalError("disk fake.img: read at offset 0: Input/output error");
  fake->write_error =
      absl::ResourceExhaustedError("disk fake.img: write at offset 0: No space left on device");
  Post(VIRTIO_BLK_T_IN, 0, {{kData, 512, true}}, 0);
  Post(VIRTIO_BLK_T_OUT, 0, {{kData, 512, false}}, 1);
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 2);
  EXPECT_EQ(Status(0), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(vq_.used(0).len, 1u);  // no data reported as written
  EXPECT_EQ(Status(1), VIRTIO_BLK_S_IOERR);

  fake->read_error = absl::OkStatus();
  fake->bytes[0] = 0x42;
  Post(VIRTIO_BLK_T_IN, 0, {{kData, 512, true}}, 2);
  blk->ProcessQueue();
  EXPECT_EQ(Status(2), VIRTIO_BLK_S_OK);
  EXPECT_EQ(*mem_.host(kData), 0x42);
  EXPECT_EQ(interrupt_->needs_reset, 0);
}

// Fault injection: the driver resets the device while the I/O thread is in
// the middle of a write. The reset waits for the request in flight, every
// request acknowledged OK is in the back-end, and nothing is served after.
TEST_F(VirtioBlkTest, AResetDuringAWriteLosesNoAcknowledgedWrite) {
  FakeBackend* fake;
  auto blk = OpenFake(&fake);
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  std::mutex mutex;
  std::condition_variable cv;
  bool writing = false, release = false;
  fake->on_write = [&] {
    std::unique_lock lock(mutex);
    writing = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  FillGuest(kData, 512, 0x5a);
  const uint16_t heads[2] = {Post(VIRTIO_BLK_T_OUT, 0, {{kData, 512, false}}, 0),
                             Post(VIRTIO_BLK_T_OUT, 8, {{kData, 512, false}}, 1)};
  std::thread io([&] { blk->ProcessQueue(); });
  {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return writing; });
  }
  std::atomic<bool> reset_done{false};
  std::thread vcpu([&] {
    blk->Reset();
    reset_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(reset_done.load()) << "Reset returned while a write was in flight";
  {
    std::lock_guard lock(mutex);
    release = true;
    fake->on_write = nullptr;
  }
  cv.notify_all();
  io.join();
  vcpu.join();
  ASSERT_LE(vq_.used_idx(), 2);
  for (uint16_t i = 0; i < vq_.used_idx(); ++i) {
    const int slot = vq_.used(i).id == heads[0] ? 0 : 1;
    if (Status(slot) != VIRTIO_BLK_S_OK) continue;
    const uint64_t sector = slot == 0 ? 0 : 8;
    EXPECT_EQ(fake->bytes[sector * 512], 0x5a) << "acknowledged write " << slot << " is missing";
    EXPECT_EQ(fake->bytes[sector * 512 + 511], 0x5a);
  }
  // After the reset the device serves nothing until it is activated again.
  const uint16_t used = vq_.used_idx();
  Post(VIRTIO_BLK_T_OUT, 16, {{kData, 512, false}}, 2);
  blk->ProcessQueue();
  EXPECT_EQ(vq_.used_idx(), used);
  EXPECT_EQ(Status(2), kUnwritten);
}

// ---- GET_ID ----

TEST_F(VirtioBlkTest, GetIdReturnsTheSerialNulPadded) {
  auto blk = OpenImage(Disk(image_, false, false, "skiff-disk-1"));
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  FillGuest(kData, 20, 0xff);
  Post(VIRTIO_BLK_T_GET_ID, 0, {{kData, 20, true}});
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(Status(), VIRTIO_BLK_S_OK);
  EXPECT_EQ(vq_.used(0).len, 21u);
  std::vector<uint8_t> want(20, 0);
  std::memcpy(want.data(), "skiff-disk-1", 12);
  EXPECT_EQ(Guest(kData, 20), want);
}

TEST_F(VirtioBlkTest, GetIdOfTwentyBytesHasNoTerminator) {
  auto blk = OpenImage(Disk(image_, false, false, "ABCDEFGHIJKLMNOPQRST"));
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  FillGuest(kData, 24, 0xff);
  Post(VIRTIO_BLK_T_GET_ID, 0, {{kData, 20, true}});
  blk->ProcessQueue();
  EXPECT_EQ(std::string(reinterpret_cast<char*>(mem_.host(kData)), 20), "ABCDEFGHIJKLMNOPQRST");
  EXPECT_EQ(*mem_.host(kData + 20), 0xff);  // nothing written past the buffer
}

TEST_F(VirtioBlkTest, SerialMustFitAndBePrintable) {
  EXPECT_THAT(
      std::string(
          VirtioBlk::Create(Disk(image_, false, false, std::string(21, 'x'))).status().message()),
      HasSubstr("longer than 20"));
  EXPECT_THAT(std::string(VirtioBlk::Create(Disk(image_, false, false, "a\nb")).status().message()),
              HasSubstr("printable ASCII"));
}

// ---- Discard and write-zeroes ----

TEST_F(VirtioBlkTest, DiscardPunchesAHole) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  WriteSegment(kData, 16, 16, 0);  // 8 KiB at 8 KiB
  Post(VIRTIO_BLK_T_DISCARD, 0, {{kData, 16, false}});
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(Status(), VIRTIO_BLK_S_OK);
  std::vector<uint8_t> want = Pattern(kImageSize);
  std::memset(&want[16 * 512], 0, 16 * 512);
  EXPECT_EQ(ReadFile(image_), want);  // size kept, the rest untouched
}

TEST_F(VirtioBlkTest, WriteZeroesWithAndWithoutUnmap) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  WriteSegment(kData, 3, 5, 0);
  WriteSegment(kData + 0x100, 40, 9, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
  Post(VIRTIO_BLK_T_WRITE_ZEROES, 0, {{kData, 16, false}}, 0);
  Post(VIRTIO_BLK_T_WRITE_ZEROES, 0, {{kData + 0x100, 16, false}}, 1);
  blk->ProcessQueue();
  EXPECT_EQ(Status(0), VIRTIO_BLK_S_OK);
  EXPECT_EQ(Status(1), VIRTIO_BLK_S_OK);
  std::vector<uint8_t> want = Pattern(kImageSize);
  std::memset(&want[3 * 512], 0, 5 * 512);
  std::memset(&want[40 * 512], 0, 9 * 512);
  EXPECT_EQ(ReadFile(image_), want);
}

TEST_F(VirtioBlkTest, DiscardSegmentsAreValidated) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  const std::vector<uint8_t> before = ReadFile(image_);
  struct Case {
    const char* what;
    uint32_t type;
    std::vector<Buf> data;
    uint8_t status;
  };
  WriteSegment(kData + 0x000, 0, 8, 1);                  // discard + unmap
  WriteSegment(kData + 0x100, 0, 8, 2);                  // unknown flag
  WriteSegment(kData + 0x200, kImageSectors - 4, 8, 0);  // crosses the end
  WriteSegment(kData + 0x300, ~0ull, 8, 0);              // sector overflow
  WriteSegment(kData + 0x400, 0, (1u << 22) + 1, 0);     // over max sectors
  WriteSegment(kData + 0x500, 0, 8, 0);                  // fine
  WriteSegment(kData + 0x510, 0, 8, 0);                  // a second one
  std::vector<Case> cases = {
      {"unmap on discard", VIRTIO_BLK_T_DISCARD, {{kData, 16, false}}, VIRTIO_BLK_S_UNSUPP},
      {"unknown flag", VIRTIO_BLK_T_DISCARD, {{kData + 0x100, 16, false}}, VIRTIO_BLK_S_UNSUPP},
      {"unknown flag wz",
       VIRTIO_BLK_T_WRITE_ZEROES,
       {{kData + 0x100, 16, false}},
       VIRTIO_BLK_S_UNSUPP},
      {"past end", VIRTIO_BLK_T_DISCARD, {{kData + 0x200, 16, false}}, VIRTIO_BLK_S_IOERR},
      {"overflow", VIRTIO_BLK_T_WRITE_ZEROES, {{kData + 0x300, 16, false}}, VIRTIO_BLK_S_IOERR},
      {"too many sectors", VIRTIO_BLK_T_DISCARD, {{kData + 0x400, 16, false}}, VIRTIO_BLK_S_IOERR},
      {"no segment", VIRTIO_BLK_T_DISCARD, {}, VIRTIO_BLK_S_IOERR},
      {"partial segment", VIRTIO_BLK_T_DISCARD, {{kData + 0x500, 15, false}}, VIRTIO_BLK_S_IOERR},
      {"two write-zeroes segments (max 1)",
       VIRTIO_BLK_T_WRITE_ZEROES,
       {{kData + 0x500, 32, false}},
       VIRTIO_BLK_S_IOERR},
  };
  // A bad segment after a good one: nothing is applied.
  WriteSegment(kData + 0x600, 0, 8, 0);
  WriteSegment(kData + 0x610, kImageSectors, 8, 0);
  cases.push_back(
      {"good then bad", VIRTIO_BLK_T_DISCARD, {{kData + 0x600, 32, false}}, VIRTIO_BLK_S_IOERR});
  // More than max_discard_seg segments.
  for (int i = 0; i < 33; ++i) WriteSegment(kData + 0x1000 + 16 * i, 0, 1, 0);
  cases.push_back({"33 segments",
                   VIRTIO_BLK_T_DISCARD,
                   {{kData + 0x1000, 33 * 16, false}},
                   VIRTIO_BLK_S_IOERR});
  for (size_t i = 0; i < cases.size(); ++i)
    Post(cases[i].type, 0, cases[i].data, static_cast<int>(i));
  blk->ProcessQueue();
  ASSERT_EQ(vq_.used_idx(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(Status(static_cast<int>(i)), cases[i].status) << cases[i].what;
  }
  EXPECT_EQ(ReadFile(image_), before);
  EXPECT_EQ(interrupt_->needs_reset, 0);
}

TEST_F(VirtioBlkTest, DiscardWithoutTheFeatureIsUnsupported) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk,
           SplitFeatures(*blk) & ~(Bit(VIRTIO_BLK_F_DISCARD) | Bit(VIRTIO_BLK_F_WRITE_ZEROES)));
  const std::vector<uint8_t> before = ReadFile(image_);
  WriteSegment(kData, 0, 8, 0);
  Post(VIRTIO_BLK_T_DISCARD, 0, {{kData, 16, false}}, 0);
  Post(VIRTIO_BLK_T_WRITE_ZEROES, 0, {{kData, 16, false}}, 1);
  blk->ProcessQueue();
  EXPECT_EQ(Status(0), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(Status(1), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(ReadFile(image_), before);
}

// ---- Read-only ----

TEST_F(VirtioBlkTest, ReadOnlyRefusesWritesAndLeavesTheFileAlone) {
  struct stat before_stat {};
  ASSERT_EQ(::stat(image_.c_str(), &before_stat), 0);
  const std::vector<uint8_t> before = ReadFile(image_);
  {
    auto blk = OpenImage(Disk(image_, true));
    ASSERT_NE(blk, nullptr);
    Activate(*blk);
    FillGuest(kData, 512, 0x77);
    WriteSegment(kData + 0x1000, 0, 8, 0);
    Post(VIRTIO_BLK_T_OUT, 0, {{kData, 512, false}}, 0);
    Post(VIRTIO_BLK_T_DISCARD, 0, {{kData + 0x1000, 16, false}}, 1);
    Post(VIRTIO_BLK_T_WRITE_ZEROES, 0, {{kData + 0x1000, 16, false}}, 2);
    Post(VIRTIO_BLK_T_FLUSH, 0, {}, 3);
    Post(VIRTIO_BLK_T_IN, 1, {{kData + 0x2000, 512, true}}, 4);
    blk->ProcessQueue();
    ASSERT_EQ(vq_.used_idx(), 5);
    EXPECT_EQ(Status(0), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(Status(1), VIRTIO_BLK_S_UNSUPP);  // not offered, so not negotiated
    EXPECT_EQ(Status(2), VIRTIO_BLK_S_UNSUPP);
    EXPECT_EQ(Status(3), VIRTIO_BLK_S_OK);
    EXPECT_EQ(Status(4), VIRTIO_BLK_S_OK);
    EXPECT_EQ(Guest(kData + 0x2000, 512), Slice(before, 512, 512));
  }
  EXPECT_EQ(ReadFile(image_), before);
  struct stat after_stat {};
  ASSERT_EQ(::stat(image_.c_str(), &after_stat), 0);
  EXPECT_EQ(after_stat.st_mtim.tv_sec, before_stat.st_mtim.tv_sec);
  EXPECT_EQ(after_stat.st_mtim.tv_nsec, before_stat.st_mtim.tv_nsec);
  EXPECT_EQ(after_stat.st_size, before_stat.st_size);
}

TEST_F(VirtioBlkTest, ReadOnlyRefusesWritesEvenIfTheDriverIgnoresRo) {
  // A driver may decline VIRTIO_BLK_F_RO; writes still fail.
  auto blk = OpenImage(Disk(image_, true));
  ASSERT_NE(blk, nullptr);
  Activate(*blk, SplitFeatures(*blk) & ~Bit(VIRTIO_BLK_F_RO));
  const std::vector<uint8_t> before = ReadFile(image_);
  Post(VIRTIO_BLK_T_OUT, 0, {{kData, 512, false}});
  blk->ProcessQueue();
  EXPECT_EQ(Status(), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(ReadFile(image_), before);
}

// ---- Processing, notifications, reset ----

TEST_F(VirtioBlkTest, BusyQueueYieldsAfterOnePassAndReArmsItself) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  const int total = VirtioBlk::kMaxRequestsPerPass + 10;
  for (int i = 0; i < total; ++i) Post(VIRTIO_BLK_T_GET_ID, 0, {{kData + 32 * i, 20, true}}, i);
  uint64_t one = 1;
  ASSERT_EQ(::write(notify_.get(), &one, sizeof(one)), 8);

  blk->ProcessQueue();
  EXPECT_EQ(vq_.used_idx(), VirtioBlk::kMaxRequestsPerPass);
  EXPECT_EQ(interrupt_->notifies, 1);  // what was done is signalled now
  EXPECT_TRUE(TakeKick()) << "a capped pass must re-arm its eventfd";
  ASSERT_EQ(::write(notify_.get(), &one, sizeof(one)), 8);  // put it back for the loop

  blk->ProcessQueue();
  EXPECT_EQ(vq_.used_idx(), total);
  EXPECT_FALSE(TakeKick()) << "a pass that drained the queue must not re-arm";
  for (int i = 0; i < total; ++i) EXPECT_EQ(Status(i), VIRTIO_BLK_S_OK) << i;
}

TEST_F(VirtioBlkTest, ByteBudgetAlsoEndsAPass) {
  FakeBackend* fake;
  auto backend = std::make_unique<FakeBackend>(64ull << 20);
  fake = backend.get();
  auto created = VirtioBlk::Create(std::move(backend), "");
  ASSERT_TRUE(created.ok());
  auto blk = *created;
  Activate(*blk);
  // 1 MiB writes: the 32 MiB budget ends the pass before the request cap.
  const int total = 40;
  for (int i = 0; i < total; ++i) {
    Post(VIRTIO_BLK_T_OUT, 2048ull * i, {{kData, 1 << 20, false}}, i);
  }
  blk->ProcessQueue();
  EXPECT_EQ(vq_.used_idx(), VirtioBlk::kMaxBytesPerPass >> 20);
  EXPECT_TRUE(TakeKick());
  blk->ProcessQueue();
  EXPECT_EQ(vq_.used_idx(), total);
  EXPECT_EQ(fake->writes, total);
}

TEST_F(VirtioBlkTest, EventIdxReEnablesKicksAfterDraining) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  Post(VIRTIO_BLK_T_GET_ID, 0, {{kData, 20, true}}, 0);
  Post(VIRTIO_BLK_T_GET_ID, 0, {{kData, 20, true}}, 1);
  blk->ProcessQueue();
  EXPECT_EQ(vq_.used_idx(), 2);
  // Ask for a kick at the next request the driver posts.
  EXPECT_EQ(vq_.avail_event(), 2);
}

TEST_F(VirtioBlkTest, EventIdxSuppressesInterruptsTheDriverDidNotAskFor) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  vq_.SetUsedEvent(5);  // interrupt me when used idx passes 5
  Post(VIRTIO_BLK_T_GET_ID, 0, {{kData, 20, true}});
  blk->ProcessQueue();
  EXPECT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(interrupt_->notifies, 0);
  vq_.SetUsedEvent(1);
  Post(VIRTIO_BLK_T_GET_ID, 0, {{kData, 20, true}}, 1);
  blk->ProcessQueue();
  EXPECT_EQ(interrupt_->notifies, 1);
}

TEST_F(VirtioBlkTest, WithoutEventIdxHonoursNoInterruptAndClearsNoNotify) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk, SplitFeatures(*blk) & ~Bit(29));
  vq_.SetAvailFlags(kAvailFlagNoInterrupt);
  Post(VIRTIO_BLK_T_GET_ID, 0, {{kData, 20, true}});
  blk->ProcessQueue();
  EXPECT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(interrupt_->notifies, 0);
  EXPECT_EQ(vq_.used_flags() & kUsedFlagNoNotify, 0);  // kicks back on after the pass
  vq_.SetAvailFlags(0);
  Post(VIRTIO_BLK_T_GET_ID, 0, {{kData, 20, true}}, 1);
  blk->ProcessQueue();
  EXPECT_EQ(interrupt_->notifies, 1);
}

TEST_F(VirtioBlkTest, ResetStopsProcessingAndAllowsReactivation) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  blk->Reset();
  Post(VIRTIO_BLK_T_GET_ID, 0, {{kData, 20, true}});
  blk->ProcessQueue();
  EXPECT_EQ(vq_.used_idx(), 0);
  // The notify fd left the loop: registering it again succeeds.
  EXPECT_TRUE(loop_->Add(notify_.get(), EPOLLIN, [](uint32_t) {}).ok());
  ASSERT_TRUE(loop_->Remove(notify_.get()).ok());

  // A fresh ring after reset, as a driver would set up.
  VirtqueueBuilder fresh(mem_, kQueueSize, kRingBase);
  Activate(*blk);
  Post(VIRTIO_BLK_T_GET_ID, 0, {{kData, 20, true}});
  blk->ProcessQueue();
  EXPECT_EQ(fresh.used_idx(), 1);
  EXPECT_EQ(Status(), VIRTIO_BLK_S_OK);
}

TEST_F(VirtioBlkTest, ActivateRefusesBadContexts) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  ActivationContext no_queue;
  no_queue.memory = mem_.memory();
  no_queue.interrupt = interrupt_;
  no_queue.event_loop = loop_.get();
  EXPECT_FALSE(blk->Activate(no_queue).ok());

  ActivationContext not_ready = no_queue;
  QueueConfig config = vq_.config();
  config.ready = false;
  not_ready.queues.push_back({config, notify_.get()});
  EXPECT_THAT(std::string(blk->Activate(not_ready).message()), HasSubstr("did not enable"));

  ActivationContext unoffered = no_queue;
  unoffered.queues.push_back({vq_.config(), notify_.get()});
  unoffered.features = Bit(VIRTIO_BLK_F_RO);  // a writable disk does not offer RO
  EXPECT_THAT(std::string(blk->Activate(unoffered).message()), HasSubstr("not offered"));

  ActivationContext bad_ring = no_queue;
  config = vq_.config();
  config.used_ring = kRamSize - 2;  // outside guest RAM
  bad_ring.queues.push_back({config, notify_.get()});
  EXPECT_FALSE(blk->Activate(bad_ring).ok());

  // None of those left the device half-active.
  Activate(*blk);
}

TEST_F(VirtioBlkTest, RunsOnTheEventLoopThread) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  std::thread io([&] { loop_->Run(); });
  Post(VIRTIO_BLK_T_IN, 4, {{kData, 512, true}});
  uint64_t one = 1;
  ASSERT_EQ(::write(notify_.get(), &one, sizeof(one)), 8);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (interrupt_->notifies == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  blk->Reset();  // with the loop running: must not deadlock
  loop_->Stop();
  io.join();
  EXPECT_EQ(interrupt_->notifies, 1);
  EXPECT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(Status(), VIRTIO_BLK_S_OK);
  EXPECT_EQ(Guest(kData, 512), Slice(Pattern(kImageSize), 4 * 512, 512));
}

TEST_F(VirtioBlkTest, DestroyingAnActiveDeviceUnregistersIt) {
  auto blk = OpenImage();
  ASSERT_NE(blk, nullptr);
  Activate(*blk);
  blk.reset();
  EXPECT_TRUE(loop_->Add(notify_.get(), EPOLLIN, [](uint32_t) {}).ok());
}

}  // namespace
}  // namespace skiff::virtio
