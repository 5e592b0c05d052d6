// A deterministic randomized test of the ring walker: rings, descriptor
// tables and would-be indirect tables full of random (and randomly
// plausible) values. Pop must never crash or hang, and every chain it
// accepts must lie wholly in guest RAM and add up. Seeded and bounded so it
// runs the same way, quickly, every time.
#include <algorithm>
#include <chrono>
#include <random>
#include <span>
#include <vector>

#include "devices/virtio/queue.h"
#include "devices/virtio/split_ring.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/virtqueue_builder.h"
#include "tests/unit/virtqueue_test_util.h"

namespace skiff::virtio {
namespace {

using ::skiff::virtio::testing::VirtqueueBuilder;

// Guest RAM: [0, 0x8000) and [0xc000, 0x10000), a hole between.
constexpr uint64_t kLowEnd = 0x8000;
constexpr uint64_t kHighBase = 0xc000;
constexpr uint64_t kHighEnd = 0x10000;
constexpr uint64_t kRingBase = 0x1000;
constexpr uint64_t kTables = 0x4000;  // where plausible indirect tables point
constexpr uint32_t kTableEntries = 128;
constexpr uint64_t kTableStride = 0x100;  // one table per valid chain, <= 16 entries
constexpr uint64_t kFuzzedEnd = kLowEnd;  // everything from kRingBase up to here is fair game
constexpr int kIterations = 6000;

class RandomRing {
 public:
  explicit RandomRing(uint64_t seed) : rng_(seed) {}

  uint64_t Below(uint64_t n) { return rng_() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }

  uint64_t Addr() {
    switch (Below(7)) {
      case 0:
        return rng_();  // anywhere
      case 1:
        return Below(kHighEnd + 0x2000);  // around RAM and the hole
      case 2:
        return kLowEnd - Below(0x40);  // end of the low region
      case 3:
        return kHighEnd - Below(0x40);  // end of RAM
      case 4:
        return ~uint64_t{0} - Below(0x100);  // near 2^64
      case 5:
        return kTables + 16 * Below(kTableEntries);  // an indirect table
      default:
        return kHighBase + Below(0x2000);  // plain data
    }
  }
  uint32_t Len() {
    switch (Below(6)) {
      case 0:
        return 0;
      case 1:
        return static_cast<uint32_t>(rng_());
      case 2:
        return static_cast<uint32_t>(16 * (1 + Below(kTableEntries)));
      case 3:
        return static_cast<uint32_t>(Below(0x10000));
      default:
        return static_cast<uint32_t>(1 + Below(0x100));
    }
  }
  uint16_t Flags() {
    if (OneIn(10)) return static_cast<uint16_t>(rng_());
    uint16_t flags = 0;
    if (!OneIn(3)) flags |= kDescFlagNext;
    if (OneIn(3)) flags |= kDescFlagWrite;
    if (OneIn(5)) flags |= kDescFlagIndirect;
    return flags;
  }
  uint16_t Next(uint16_t size) {
    if (OneIn(10)) return static_cast<uint16_t>(rng_());
    return static_cast<uint16_t>(Below(size + 2u));
  }
  // A buffer wholly inside one RAM region.
  VirtqueueBuilder::Buf ValidBuf(bool writable) {
    const bool high = OneIn(2);
    const uint64_t base = high ? kHighBase : kRingBase;
    const uint64_t end = high ? kHighEnd : kLowEnd;
    const uint64_t addr = base + Below(end - base);
    const uint32_t len = static_cast<uint32_t>(1 + Below(std::min<uint64_t>(end - addr, 0x200)));
    return {addr, len, writable};
  }
  std::vector<VirtqueueBuilder::Buf> ValidBufs(uint64_t max) {
    std::vector<VirtqueueBuilder::Buf> bufs(1 + Below(max));
    const size_t first_writable = Below(bufs.size() + 1);
    for (size_t i = 0; i < bufs.size(); ++i) bufs[i] = ValidBuf(i >= first_writable);
    return bufs;
  }
  void Noise(std::span<uint8_t> bytes) {
    for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(rng_());
  }
  uint16_t Head(uint16_t size) {
    return OneIn(20) ? static_cast<uint16_t>(rng_()) : static_cast<uint16_t>(Below(size));
  }

 private:
  std::mt19937_64 rng_;
};

struct Outcome {
  int chains = 0;           // chains accepted
  int indirect_chains = 0;  // accepted chains that used an indirect table
  int errors = 0;           // Pops refused
  int empty = 0;            // Pops with nothing available
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

// Uses the chain as a device would: read every readable byte, fill every
// writable one, return it.
void Consume(const GuestMemory& memory, Virtqueue& queue, const DescriptorChain& chain) {
  ChainReader reader(memory, chain);
  std::vector<uint8_t> in(reader.remaining());
  ASSERT_TRUE(reader.Read(in).ok());
  ChainWriter writer(memory, chain);
  std::vector<uint8_t> out(writer.remaining(), 0x5a);
  ASSERT_TRUE(writer.Write(out).ok());
  ASSERT_TRUE(queue.PushUsed(memory, chain.head, writer.written()).ok());
  ASSERT_TRUE(queue.ShouldNotify(memory).ok());
}

TEST(VirtqueueFuzzTest, RandomRingsNeverCrashOrEscapeGuestRam) {
  const auto start = std::chrono::steady_clock::now();
  auto mem = FakeGuestMemory::WithRegions({{0, kLowEnd}, {kHighBase, kHighEnd - kHighBase}});
  RandomRing random(0x5eed'f00d);
  Outcome outcome;
  constexpr uint16_t kSizes[] = {1, 2, 8, 16, 64};

  for (int iteration = 0; iteration < kIterations; ++iteration) {
    const uint16_t size = kSizes[random.Below(std::size(kSizes))];
    VirtqueueBuilder vq(mem, size, kRingBase);
    const QueueFeatures features{.indirect = !random.OneIn(4), .event_idx = random.OneIn(2)};
    ASSERT_OK_AND_ASSIGN(Virtqueue queue,
                         Virtqueue::Create(vq.config(), 64, features, mem.memory()));

    const uint64_t mode = random.Below(4);
    if (mode == 0) {
      // Raw noise over the rings and the table area.
      random.Noise(std::span<uint8_t>(mem.host(kRingBase), kFuzzedEnd - kRingBase));
    } else if (mode == 1) {
      // Valid chains (direct and indirect), then a few flipped bits
      // anywhere in the rings or tables: mostly near-valid input.
      uint16_t slots = size;
      for (uint16_t c = 0; c < size && slots > 0; ++c) {
        if (features.indirect && random.OneIn(3)) {
          vq.AddIndirectChain(kTables + kTableStride * c,
                              random.ValidBufs(std::min<uint64_t>(size, 16)));
          slots -= 1;
        } else {
          const auto bufs = random.ValidBufs(std::min<uint64_t>(slots, 4));
          vq.AddChain(bufs);
          slots -= static_cast<uint16_t>(bufs.size());
        }
      }
      for (uint64_t flips = random.Below(4); flips > 0; --flips) {
        *mem.host(kRingBase + random.Below(kFuzzedEnd - kRingBase)) ^=
            static_cast<uint8_t>(1u << random.Below(8));
      }
    } else {
      for (uint16_t i = 0; i < size; ++i) {
        vq.WriteDescriptor(i, random.Addr(), random.Len(), random.Flags(), random.Next(size));
      }
      for (uint32_t i = 0; i < kTableEntries; ++i) {
        vq.WriteDescriptorAt(kTables + 16 * i, random.Addr(), random.Len(), random.Flags(),
                             random.Next(size));
      }
      vq.SetAvailIdx(0);
      for (uint16_t i = 0; i < size; ++i) vq.PublishHead(random.Head(size));
      vq.SetAvailIdx(random.OneIn(8) ? static_cast<uint16_t>(random.Below(0x10000))
                                     : static_cast<uint16_t>(random.Below(size + 1u)));
      vq.SetUsedEvent(static_cast<uint16_t>(random.Below(4)));
    }

    // At most size + 1 Pops: more than the ring can legally hold.
    for (int pop = 0; pop <= size; ++pop) {
      auto chain = queue.Pop(mem.memory());
      if (!chain.ok()) {
        ++outcome.errors;
        break;
      }
      if (!chain->has_value()) {
        ++outcome.empty;
        break;
      }
      ASSERT_NO_FATAL_FAILURE(CheckChain(mem.memory(), **chain, size)) << "iteration " << iteration;
      ++outcome.chains;
      // Chains whose head is an indirect pointer (read back from the
      // table; earlier Consume calls in this iteration may have scribbled
      // on it, so this count is a lower-bound sanity check only).
      auto flags = mem.memory().ReadObj<uint16_t>(kRingBase + 16ull * (**chain).head + 12);
      if (flags.ok() && (*flags & kDescFlagIndirect)) ++outcome.indirect_chains;
      ASSERT_NO_FATAL_FAILURE(Consume(mem.memory(), queue, **chain)) << "iteration " << iteration;
    }
  }

  // The generator must actually reach the interesting paths, or this test
  // proves nothing.
  EXPECT_GT(outcome.chains, kIterations / 10);
  EXPECT_GT(outcome.indirect_chains, kIterations / 100);
  EXPECT_GT(outcome.errors, kIterations / 4);
  EXPECT_GT(outcome.empty, kIterations / 100);
  // Not asserted (the test machines are shared), but recorded: it should
  // stay well under 2 s.
  const auto elapsed = std::chrono::steady_clock::now() - start;
  RecordProperty(
      "elapsed_ms",
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
  RecordProperty("chains", outcome.chains);
  RecordProperty("indirect_chains", outcome.indirect_chains);
  RecordProperty("errors", outcome.errors);
  RecordProperty("empty", outcome.empty);
}

}  // namespace
}  // namespace skiff::virtio
