// Deterministic randomized tests of the packed ring: a driver and a device
// taking turns over many laps with random chain shapes and completion
// orders (every used descriptor must be the one the driver expects), and
// descriptor rings full of random or nearly valid values (Pop must never
// crash or hang, and every chain it accepts must lie wholly in guest RAM and
// add up). Seeded and bounded so they run the same way, quickly, every time.
#include <algorithm>
#include <deque>
#include <random>
#include <span>
#include <vector>

#include "devices/virtio/packed_ring.h"
#include "devices/virtio/queue.h"
#include "devices/virtio/split_ring.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/packed_virtqueue_builder.h"
#include "tests/unit/virtqueue_test_util.h"

namespace skiff::virtio {
namespace {

using ::skiff::virtio::testing::PackedVirtqueueBuilder;
using Buf = PackedVirtqueueBuilder::Buf;

// Guest RAM: [0, 0x8000) and [0xc000, 0x10000), a hole between.
constexpr uint64_t kLowEnd = 0x8000;
constexpr uint64_t kHighBase = 0xc000;
constexpr uint64_t kHighEnd = 0x10000;
constexpr uint64_t kRingBase = 0x1000;
constexpr uint64_t kTables = 0x4000;  // indirect tables, kTableStride apart
constexpr uint64_t kTableStride = 0x100;
constexpr uint16_t kMaxSize = 64;

class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  uint64_t Below(uint64_t n) { return rng_() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }
  uint64_t Raw() { return rng_(); }

  // A buffer wholly inside one RAM region, away from the rings.
  Buf ValidBuf(bool writable) {
    const bool high = OneIn(2);
    const uint64_t base = high ? kHighBase : 0x6000;
    const uint64_t end = high ? kHighEnd : kLowEnd;
    const uint64_t addr = base + Below(end - base);
    const uint32_t len =
        static_cast<uint32_t>(OneIn(8) ? 0 : 1 + Below(std::min<uint64_t>(end - addr, 0x200)));
    return {addr, len, writable};
  }
  std::vector<Buf> ValidBufs(uint64_t max) {
    std::vector<Buf> bufs(1 + Below(max));
    const size_t first_writable = Below(bufs.size() + 1);
    for (size_t i = 0; i < bufs.size(); ++i) bufs[i] = ValidBuf(i >= first_writable);
    return bufs;
  }

 private:
  std::mt19937_64 rng_;
};

void CheckChain(const GuestMemory& memory, const DescriptorChain& chain, uint16_t size) {
  uint64_t readable = 0, writable = 0;
  for (const Buffer& b : chain.readable) {
    ASSERT_GT(b.len, 0u);
    ASSERT_TRUE(memory.Contains(b.addr, b.len)) << std::hex << b.addr << "+" << b.len;
    readable += b.len;
  }
  for (const Buffer& b : chain.writable) {
    ASSERT_GT(b.len, 0u);
    ASSERT_TRUE(memory.Contains(b.addr, b.len)) << std::hex << b.addr << "+" << b.len;
    writable += b.len;
  }
  ASSERT_EQ(readable, chain.readable_bytes);
  ASSERT_EQ(writable, chain.writable_bytes);
  ASSERT_LE(chain.readable.size() + chain.writable.size(), size);
  ASSERT_LT(chain.head, size);
}

TEST(PackedVirtqueueFuzzTest, DriverAndDeviceStayInStepOverManyLaps) {
  auto mem = FakeGuestMemory::WithRegions({{0, kLowEnd}, {kHighBase, kHighEnd - kHighBase}});
  Random random(0x9ac4'ed01);
  constexpr uint16_t kSizes[] = {1, 2, 3, 5, 8, 13, 64};
  uint64_t laps = 0;
  for (int iteration = 0; iteration < 300; ++iteration) {
    const uint16_t size = kSizes[random.Below(std::size(kSizes))];
    PackedVirtqueueBuilder vq(mem, size, kRingBase);
    const QueueFeatures features{
        .indirect = random.OneIn(2), .event_idx = random.OneIn(2), .packed = true};
    ASSERT_OK_AND_ASSIGN(Virtqueue queue,
                         Virtqueue::Create(vq.config(), kMaxSize, features, mem.memory()));
    std::vector<DescriptorChain> in_flight;                   // popped, not yet used
    std::deque<std::pair<uint16_t, uint32_t>> expected_used;  // id, len in push order
    bool wrap = true;
    // A table may be rewritten once its chain was popped (the device copied
    // it). Fewer than 64 chains are ever available unpopped, so cycling
    // through 64 table slots never rewrites one the device has not read.
    uint64_t tables_used = 0;
    for (int round = 0; round < 40; ++round) {
      // The driver posts what fits.
      for (int c = 0; c < 3 && vq.free_descriptors() > 0; ++c) {
        if (features.indirect && random.OneIn(3)) {
          vq.AddIndirectChain(kTables + 0x80 * (tables_used++ % 64),
                              random.ValidBufs(std::min<uint64_t>(size, 8)));
        } else {
          vq.AddChain(random.ValidBufs(std::min<uint64_t>(vq.free_descriptors(), 4)),
                      random.OneIn(2));
        }
      }
      // The device pops some, sometimes handing the newest back.
      for (uint64_t pops = random.Below(4); pops > 0; --pops) {
        auto chain = queue.Pop(mem.memory());
        ASSERT_TRUE(chain.ok()) << chain.status() << " iteration " << iteration;
        if (!chain->has_value()) break;
        ASSERT_NO_FATAL_FAILURE(CheckChain(mem.memory(), **chain, size));
        if (random.OneIn(5)) {
          queue.UndoPop();
          continue;
        }
        in_flight.push_back(**chain);
      }
      // ...and completes some, in any order.
      for (uint64_t done = random.Below(in_flight.size() + 1); done > 0; --done) {
        const size_t pick = random.Below(in_flight.size());
        const DescriptorChain chain = in_flight[pick];
        in_flight.erase(in_flight.begin() + static_cast<ptrdiff_t>(pick));
        const uint32_t written = chain.writable_bytes;
        ASSERT_TRUE(queue.PushUsed(mem.memory(), chain.head, written).ok());
        expected_used.push_back({chain.head, written});
      }
      ASSERT_TRUE(queue.ShouldNotify(mem.memory()).ok());
      ASSERT_TRUE(queue.SetNotification(mem.memory(), random.OneIn(2)).ok());
      // The driver reads back exactly what was used, in order.
      while (auto used = vq.NextUsed()) {
        ASSERT_FALSE(expected_used.empty()) << "iteration " << iteration;
        EXPECT_EQ(used->id, expected_used.front().first);
        EXPECT_EQ(used->len, expected_used.front().second);
        expected_used.pop_front();
      }
      ASSERT_TRUE(expected_used.empty()) << "iteration " << iteration;
      ASSERT_LT(queue.next_avail(), size);
      ASSERT_EQ(queue.next_used(), vq.last_used());
      if (vq.used_wrap() != wrap) {
        wrap = vq.used_wrap();
        ++laps;
      }
    }
  }
  EXPECT_GT(laps, 1000u);  // the walk really went round the rings
  RecordProperty("laps", static_cast<int>(laps));
}

TEST(PackedVirtqueueFuzzTest, RandomRingsNeverCrashOrEscapeGuestRam) {
  auto mem = FakeGuestMemory::WithRegions({{0, kLowEnd}, {kHighBase, kHighEnd - kHighBase}});
  Random random(0x5eed'0bad);
  int chains = 0, errors = 0, empty = 0;
  constexpr uint16_t kSizes[] = {1, 2, 3, 8, 16, 64};
  for (int iteration = 0; iteration < 4000; ++iteration) {
    const uint16_t size = kSizes[random.Below(std::size(kSizes))];
    PackedVirtqueueBuilder vq(mem, size, kRingBase);
    const QueueFeatures features{
        .indirect = !random.OneIn(4), .event_idx = random.OneIn(2), .packed = true};
    ASSERT_OK_AND_ASSIGN(Virtqueue queue,
                         Virtqueue::Create(vq.config(), kMaxSize, features, mem.memory()));
    const uint64_t ring_bytes = kPackedDescSize * size + 2 * kEventSuppressSize;
    switch (random.Below(3)) {
      case 0:  // noise over the ring, the event areas and the tables
        for (uint64_t i = 0; i < ring_bytes; ++i) *mem.host(kRingBase + i) = random.Raw();
        for (uint64_t i = 0; i < 16 * kTableStride; ++i) *mem.host(kTables + i) = random.Raw();
        break;
      case 1: {  // valid chains, then a few flipped bits in ring or tables
        for (int c = 0; c < 4 && vq.free_descriptors() > 0; ++c) {
          if (features.indirect && random.OneIn(3)) {
            vq.AddIndirectChain(kTables + kTableStride * c,
                                random.ValidBufs(std::min<uint64_t>(size, 8)));
          } else {
            vq.AddChain(random.ValidBufs(std::min<uint64_t>(vq.free_descriptors(), 4)));
          }
        }
        for (uint64_t flips = random.Below(4); flips > 0; --flips) {
          const uint64_t at = random.OneIn(2) ? kRingBase + random.Below(ring_bytes)
                                              : kTables + random.Below(4 * kTableStride);
          *mem.host(at) ^= static_cast<uint8_t>(1u << random.Below(8));
        }
        break;
      }
      default:  // plausible descriptors: flags mostly right for lap 1
        for (uint16_t i = 0; i < size; ++i) {
          uint16_t flags = static_cast<uint16_t>(random.Raw());
          if (!random.OneIn(4)) {
            flags = static_cast<uint16_t>(
                (flags & (kDescFlagNext | kDescFlagWrite | kDescFlagIndirect)) |
                kPackedDescFlagAvail);
          }
          const uint64_t addr =
              random.OneIn(3) ? kTables + 16 * random.Below(32) : random.Below(kHighEnd + 0x100);
          const uint32_t len = random.OneIn(3)
                                   ? static_cast<uint32_t>(16 * random.Below(kMaxSize + 2))
                                   : static_cast<uint32_t>(random.Below(0x300));
          vq.AddRaw(addr, len, static_cast<uint16_t>(random.Below(size + 2u)), 0, false);
          ASSERT_TRUE(mem.memory()
                          .WriteObj<uint16_t>(
                              kRingBase + kPackedDescSize * i + kPackedDescFlagsOffset, flags)
                          .ok());
        }
        for (uint64_t i = 0; i < 16 * kTableStride; ++i) *mem.host(kTables + i) = random.Raw();
        vq.SetDriverEvent(static_cast<uint16_t>(random.Below(4)),
                          static_cast<uint16_t>(random.Below(size + 1u)), random.OneIn(2));
        break;
    }
    // More Pops than the ring can legally hold, completing each.
    for (int pop = 0; pop <= size; ++pop) {
      ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem.memory()));
      ASSERT_LE(available, size);
      auto chain = queue.Pop(mem.memory());
      if (!chain.ok()) {
        ++errors;
        break;
      }
      if (!chain->has_value()) {
        EXPECT_EQ(available, 0) << "iteration " << iteration;
        ++empty;
        break;
      }
      EXPECT_GT(available, 0) << "iteration " << iteration;
      ASSERT_NO_FATAL_FAILURE(CheckChain(mem.memory(), **chain, size)) << "iteration " << iteration;
      ++chains;
      ChainReader reader(mem.memory(), **chain);
      std::vector<uint8_t> in(reader.remaining());
      ASSERT_TRUE(reader.Read(in).ok());
      ChainWriter writer(mem.memory(), **chain);
      std::vector<uint8_t> out(writer.remaining(), 0x5a);
      ASSERT_TRUE(writer.Write(out).ok());
      ASSERT_TRUE(queue.PushUsed(mem.memory(), (*chain)->head, writer.written()).ok());
      ASSERT_TRUE(queue.ShouldNotify(mem.memory()).ok());
      ASSERT_LT(queue.next_avail(), size);
      ASSERT_LT(queue.next_used(), size);
    }
  }
  // The generator must reach the interesting paths, or this proves nothing.
  EXPECT_GT(chains, 400);
  EXPECT_GT(errors, 400);
  EXPECT_GT(empty, 100);
  RecordProperty("chains", chains);
  RecordProperty("errors", errors);
  RecordProperty("empty", empty);
}

}  // namespace
}  // namespace skiff::virtio
