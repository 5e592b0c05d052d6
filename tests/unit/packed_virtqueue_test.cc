// The packed virtqueue (virtio 1.2 §2.8) against crafted rings in fake guest
// memory: valid chains, every malformed chain the walker must refuse, used
// descriptors read back the way Linux's driver reads them, wrap-around over
// several laps, out-of-order completion, UndoPop, and event suppression in
// both directions.
#include <sys/mman.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "devices/virtio/packed_ring.h"
#include "devices/virtio/queue.h"
#include "devices/virtio/split_ring.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/packed_virtqueue_builder.h"
#include "tests/unit/virtqueue_test_util.h"
#include "vmm/mapping.h"

namespace skiff::virtio {
namespace {

using ::skiff::virtio::testing::PackedVirtqueueBuilder;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Buf = PackedVirtqueueBuilder::Buf;

constexpr uint16_t kSize = 16;
constexpr uint16_t kMaxSize = 256;
constexpr uint64_t kRingBase = 0x1000;
constexpr uint64_t kRamSize = 0x40000;
constexpr uint64_t kData = 0x10000;   // buffers live from here
constexpr uint64_t kTable = 0x30000;  // indirect tables live from here
constexpr QueueFeatures kPacked{.packed = true};
constexpr QueueFeatures kPackedIndirect{.indirect = true, .packed = true};
constexpr QueueFeatures kPackedEventIdx{.event_idx = true, .packed = true};

MATCHER_P2(IsBuffer, addr, len, "") { return arg.addr == addr && arg.len == len; }

uint16_t UsedFlags(bool wrap, bool written) {
  return static_cast<uint16_t>((wrap ? kPackedDescFlagAvail | kPackedDescFlagUsed : 0) |
                               (written ? kDescFlagWrite : 0));
}

class PackedVirtqueueTest : public ::testing::Test {
 protected:
  const GuestMemory& mem() const { return mem_.memory(); }
  absl::StatusOr<Virtqueue> Create(QueueFeatures features = kPacked) {
    return Virtqueue::Create(vq_.config(), kMaxSize, features, mem());
  }
  // Pops one chain, failing the test if there is none.
  DescriptorChain PopOne(Virtqueue& queue) {
    auto chain = queue.Pop(mem());
    EXPECT_TRUE(chain.ok()) << chain.status();
    if (!chain.ok() || !chain->has_value()) {
      ADD_FAILURE() << "nothing to pop";
      return {};
    }
    return **chain;
  }

  FakeGuestMemory mem_{kRamSize};
  PackedVirtqueueBuilder vq_{mem_, kSize, kRingBase};
};

// ---- Create ----

TEST_F(PackedVirtqueueTest, CreateAcceptsAValidQueue) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  EXPECT_TRUE(queue.packed());
  EXPECT_EQ(queue.size(), kSize);
  EXPECT_EQ(queue.next_avail(), 0);
  EXPECT_EQ(queue.next_used(), 0);
  EXPECT_EQ(queue.config().desc_table, kRingBase);
  // The same configuration without the feature is a split ring.
  ASSERT_OK_AND_ASSIGN(Virtqueue split, Create({}));
  EXPECT_FALSE(split.packed());
}

TEST_F(PackedVirtqueueTest, CreateAcceptsSizesThatAreNotPowersOfTwo) {
  for (uint16_t size : {1, 3, 12, 100, 255, 256}) {
    PackedVirtqueueBuilder vq(mem_, size, 0x20000);
    ASSERT_OK_AND_ASSIGN(Virtqueue queue, Virtqueue::Create(vq.config(), kMaxSize, kPacked, mem()));
    EXPECT_EQ(queue.size(), size);
  }
  // So may the device's own maximum be.
  PackedVirtqueueBuilder vq(mem_, 100, 0x20000);
  EXPECT_TRUE(Virtqueue::Create(vq.config(), 100, kPacked, mem()).ok());
}

TEST_F(PackedVirtqueueTest, CreateRefusesSizesOutOfRange) {
  for (uint16_t size : {0, 257, 32768}) {
    QueueConfig config = vq_.config();
    config.size = size;
    EXPECT_THAT(Virtqueue::Create(config, kMaxSize, kPacked, mem()).status().message(),
                HasSubstr("packed ring size"))
        << "size " << size;
  }
  for (uint16_t max : {0, 32769, 65535}) {
    EXPECT_THAT(Virtqueue::Create(vq_.config(), max, kPacked, mem()).status().message(),
                HasSubstr("device maximum"))
        << "max " << max;
  }
}

TEST_F(PackedVirtqueueTest, CreateRefusesAQueueTheDriverDidNotEnable) {
  QueueConfig config = vq_.config();
  config.ready = false;
  EXPECT_THAT(Virtqueue::Create(config, kMaxSize, kPacked, mem()).status().message(),
              HasSubstr("did not enable"));
}

TEST_F(PackedVirtqueueTest, CreateRefusesMisalignedAreas) {
  QueueConfig config = vq_.config();
  config.desc_table += 8;
  EXPECT_THAT(Virtqueue::Create(config, kMaxSize, kPacked, mem()).status().message(),
              HasSubstr("descriptor ring at 0x1008 is not 16-byte aligned"));
  config = vq_.config();
  config.avail_ring += 2;
  EXPECT_THAT(Virtqueue::Create(config, kMaxSize, kPacked, mem()).status().message(),
              HasSubstr("driver event suppression area at 0x1102 is not 4-byte aligned"));
  config = vq_.config();
  config.used_ring += 1;
  EXPECT_THAT(Virtqueue::Create(config, kMaxSize, kPacked, mem()).status().message(),
              HasSubstr("device event suppression area at 0x1105 is not 4-byte aligned"));
  // The smallest alignments the spec asks for are accepted.
  config = vq_.config();
  config.desc_table += 16;
  config.avail_ring += 12;
  config.used_ring += 12;
  EXPECT_TRUE(Virtqueue::Create(config, kMaxSize, kPacked, mem()).ok());
}

TEST_F(PackedVirtqueueTest, CreateRefusesAreasNotWhollyInRam) {
  const struct {
    uint64_t QueueConfig::*field;
    uint64_t bytes;
    uint64_t align;
    const char* name;
  } areas[] = {
      {&QueueConfig::desc_table, 16 * kSize, 16, "descriptor ring"},
      {&QueueConfig::avail_ring, 4, 4, "driver event suppression area"},
      {&QueueConfig::used_ring, 4, 4, "device event suppression area"},
  };
  for (const auto& area : areas) {
    QueueConfig config = vq_.config();
    config.*area.field = kRamSize - area.bytes + area.align;  // one alignment unit past the end
    EXPECT_THAT(Virtqueue::Create(config, kMaxSize, kPacked, mem()).status().message(),
                HasSubstr(std::string(area.name) + " 0x"))
        << area.name;
    config.*area.field = kRamSize - area.bytes;  // ends exactly at the end of RAM
    EXPECT_TRUE(Virtqueue::Create(config, kMaxSize, kPacked, mem()).ok()) << area.name;
    config.*area.field = 0xfffffffffffffff0ull;  // would overflow
    EXPECT_FALSE(Virtqueue::Create(config, kMaxSize, kPacked, mem()).ok()) << area.name;
  }
}

TEST(PackedVirtqueueCreateTest, RefusesARingAcrossAHoleInGuestRam) {
  auto mem = FakeGuestMemory::WithRegions({{0, 0x1000}, {0x2000, 0x1000}});
  QueueConfig config{
      .size = 16, .desc_table = 0xf80, .avail_ring = 0x2000, .used_ring = 0x2004, .ready = true};
  EXPECT_THAT(Virtqueue::Create(config, 256, kPacked, mem.memory()).status().message(),
              HasSubstr("descriptor ring 0xf80+0x100 is not inside guest RAM"));
  config.desc_table = 0x2100;
  EXPECT_TRUE(Virtqueue::Create(config, 256, kPacked, mem.memory()).ok());
}

// ---- Pop: valid chains ----

TEST_F(PackedVirtqueueTest, PopReturnsNothingWhenTheDriverPostedNothing) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  // A zeroed ring: AVAIL clear does not match the initial wrap counter 1.
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  EXPECT_FALSE(chain.has_value());
  ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 0);
}

TEST_F(PackedVirtqueueTest, PopWalksAChainAndReturnsItsBufferId) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  const uint16_t id =
      vq_.AddChain({{kData, 16, false}, {kData + 0x100, 512, false}, {kData + 0x1000, 1, true}});
  const DescriptorChain chain = PopOne(queue);
  EXPECT_EQ(chain.head, id);
  EXPECT_THAT(chain.readable, ElementsAre(IsBuffer(kData, 16u), IsBuffer(kData + 0x100, 512u)));
  EXPECT_THAT(chain.writable, ElementsAre(IsBuffer(kData + 0x1000, 1u)));
  EXPECT_EQ(chain.readable_bytes, 528u);
  EXPECT_EQ(chain.writable_bytes, 1u);
  EXPECT_EQ(queue.next_avail(), 3);
  ASSERT_OK_AND_ASSIGN(auto none, queue.Pop(mem()));
  EXPECT_FALSE(none.has_value());
}

TEST_F(PackedVirtqueueTest, PopTakesTheBufferIdFromTheLastDescriptor) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  // §2.8.6: only the last descriptor must carry it; the others hold 0xbeef.
  const uint16_t id = vq_.AddChain({{kData, 8, false}, {kData + 8, 8, true}},
                                   /*id_in_last_only=*/true);
  EXPECT_EQ(PopOne(queue).head, id);
}

TEST_F(PackedVirtqueueTest, PopReturnsChainsInRingOrder) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  const uint16_t a = vq_.AddChain({{kData, 8, true}});
  const uint16_t b = vq_.AddChain({{kData + 8, 8, false}, {kData + 16, 8, true}});
  const uint16_t c = vq_.AddChain({{kData + 32, 8, true}});
  EXPECT_EQ(PopOne(queue).head, a);
  EXPECT_EQ(PopOne(queue).head, b);
  EXPECT_EQ(PopOne(queue).head, c);
  EXPECT_EQ(queue.next_avail(), 4);
}

TEST_F(PackedVirtqueueTest, PopWalksAnIndirectTable) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedIndirect));
  const uint16_t id = vq_.AddIndirectChain(
      kTable, {{kData, 16, false}, {kData + 0x100, 64, true}, {kData + 0x200, 1, true}});
  const DescriptorChain chain = PopOne(queue);
  EXPECT_EQ(chain.head, id);
  EXPECT_THAT(chain.readable, ElementsAre(IsBuffer(kData, 16u)));
  EXPECT_THAT(chain.writable,
              ElementsAre(IsBuffer(kData + 0x100, 64u), IsBuffer(kData + 0x200, 1u)));
  EXPECT_EQ(queue.next_avail(), 1);  // one ring descriptor, whatever the table holds
}

TEST_F(PackedVirtqueueTest, PopIgnoresNextAndIdsInsideAnIndirectTable) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedIndirect));
  // §2.8.7: only WRITE means anything in a table; entries are consecutive.
  vq_.WriteTableEntry(kTable, kData, 8, kDescFlagNext);
  vq_.WriteTableEntry(kTable + 16, kData + 8, 8, kDescFlagWrite | kDescFlagNext);
  ASSERT_TRUE(mem().WriteObj<uint16_t>(kTable + kPackedDescIdOffset, 999).ok());
  vq_.AddRaw(kTable, 32, 5, kDescFlagIndirect | kDescFlagWrite);  // WRITE ignored here
  const DescriptorChain chain = PopOne(queue);
  EXPECT_EQ(chain.head, 5);
  EXPECT_THAT(chain.readable, ElementsAre(IsBuffer(kData, 8u)));
  EXPECT_THAT(chain.writable, ElementsAre(IsBuffer(kData + 8, 8u)));
}

TEST_F(PackedVirtqueueTest, PopAcceptsChainsOfExactlyTheQueueSize) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedIndirect));
  std::vector<Buf> bufs;
  for (uint16_t i = 0; i < kSize; ++i) bufs.push_back({kData + 8ull * i, 8, false});
  const uint16_t id = vq_.AddChain(bufs);
  const DescriptorChain chain = PopOne(queue);
  EXPECT_EQ(chain.head, id);
  EXPECT_EQ(chain.readable.size(), kSize);
  EXPECT_EQ(queue.next_avail(), 0);  // a whole lap
  ASSERT_TRUE(queue.PushUsed(mem(), id, 0).ok());
  ASSERT_TRUE(vq_.NextUsed().has_value());
  // And an indirect table of the queue size.
  const uint16_t id2 = vq_.AddIndirectChain(kTable, bufs);
  EXPECT_EQ(PopOne(queue).readable.size(), kSize);
  ASSERT_TRUE(queue.PushUsed(mem(), id2, 0).ok());
}

TEST_F(PackedVirtqueueTest, PopDropsZeroLengthDescriptors) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedIndirect));
  vq_.AddChain({{kData, 0, false}, {kData, 8, false}, {0xffffffffffff0000ull, 0, true}});
  DescriptorChain chain = PopOne(queue);
  EXPECT_THAT(chain.readable, ElementsAre(IsBuffer(kData, 8u)));
  EXPECT_TRUE(chain.writable.empty());
  vq_.AddIndirectChain(kTable, {{kData, 0, true}, {kData + 8, 4, true}});
  chain = PopOne(queue);
  EXPECT_THAT(chain.writable, ElementsAre(IsBuffer(kData + 8, 4u)));
}

TEST_F(PackedVirtqueueTest, PopAcceptsBuffersEndingExactlyAtTheEndOfRam) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddChain({{kRamSize - 8, 8, true}});
  EXPECT_THAT(PopOne(queue).writable, ElementsAre(IsBuffer(kRamSize - 8, 8u)));
}

TEST_F(PackedVirtqueueTest, PopIgnoresUnknownDescriptorFlags) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddRaw(kData, 8, 3, kDescFlagWrite | 0x0108);
  const DescriptorChain chain = PopOne(queue);
  EXPECT_EQ(chain.head, 3);
  EXPECT_THAT(chain.writable, ElementsAre(IsBuffer(kData, 8u)));
}

TEST_F(PackedVirtqueueTest, PopCopiesTheChainSoLaterDriverWritesDoNotChangeIt) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddChain({{kData, 8, false}, {kData + 0x100, 8, true}});
  const DescriptorChain chain = PopOne(queue);
  // A hostile driver rewrites the descriptors to point outside RAM.
  ASSERT_TRUE(mem().WriteObj<uint64_t>(vq_.desc_ring(), 0xffffffff0000ull).ok());
  ASSERT_TRUE(mem().WriteObj<uint64_t>(vq_.desc_ring() + 16, 0xffffffff0000ull).ok());
  EXPECT_THAT(chain.readable, ElementsAre(IsBuffer(kData, 8u)));
  EXPECT_THAT(chain.writable, ElementsAre(IsBuffer(kData + 0x100, 8u)));
}

// ---- Pop: malformed chains ----

TEST_F(PackedVirtqueueTest, PopRefusesAChainLongerThanTheQueue) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  // Every descriptor says NEXT: after a whole lap the chain would run onto
  // its own first descriptor.
  for (uint16_t i = 0; i < kSize; ++i) vq_.AddRaw(kData, 8, 0, kDescFlagNext);
  ExpectPopError(queue, mem(), "chain from ring position 0 is longer than the queue size 16");
}

TEST_F(PackedVirtqueueTest, PopRefusesAChainWhoseTailIsNotAvailable) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddRaw(kData, 8, 0, kDescFlagNext);
  vq_.AddRaw(kData + 8, 8, 0, 0, /*publish=*/false);  // still zero flags
  ExpectPopError(queue, mem(),
                 "descriptor at ring position 1 continues the chain from 0 but is not available");
  // A tail marked for the wrong lap (used-looking flags) is no better.
  ASSERT_TRUE(mem()
                  .WriteObj<uint16_t>(vq_.desc_ring() + 16 + kPackedDescFlagsOffset,
                                      kPackedDescFlagAvail | kPackedDescFlagUsed)
                  .ok());
  ExpectPopError(queue, mem(), "is not available");
}

TEST_F(PackedVirtqueueTest, PopRefusesATailAcrossTheWrapWithTheOldWrapCounter) {
  PackedVirtqueueBuilder vq(mem_, 4, 0x20000);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Virtqueue::Create(vq.config(), kMaxSize, kPacked, mem()));
  // Fill three slots and recycle them so the next chain starts at slot 3.
  for (int i = 0; i < 3; ++i) {
    vq.AddChain({{kData, 8, true}});
    ASSERT_TRUE(queue.PushUsed(mem(), PopOne(queue).head, 8).ok());
    ASSERT_TRUE(vq.NextUsed().has_value());
  }
  // Slot 3 (wrap 1) continues into slot 0, which needs wrap 0's flags. Write
  // slot 0 with wrap 1's flags, as a confused driver might.
  vq.AddRaw(kData, 8, 0, kDescFlagNext);
  ASSERT_TRUE(
      mem().WriteObj<uint16_t>(vq.desc_ring() + kPackedDescFlagsOffset, kPackedDescFlagAvail).ok());
  ExpectPopError(queue, mem(), "ring position 0 continues the chain from 3 but is not available");
}

TEST_F(PackedVirtqueueTest, PopRefusesABufferIdPastTheQueueSize) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddRaw(kData, 8, kSize, 0);
  ExpectPopError(queue, mem(), "has buffer ID 16, past the queue size 16");
}

TEST_F(PackedVirtqueueTest, PopRefusesABufferIdStillInFlight) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddRaw(kData, 8, 7, 0);
  vq_.AddRaw(kData + 8, 8, 7, 0);
  EXPECT_EQ(PopOne(queue).head, 7);
  ExpectPopError(queue, mem(), "reuses buffer ID 7, which is still in flight");
  // Once used, the ID may come back.
  ASSERT_TRUE(queue.PushUsed(mem(), 7, 0).ok());
  EXPECT_EQ(PopOne(queue).head, 7);
}

TEST_F(PackedVirtqueueTest, PopRefusesMoreDescriptorsInFlightThanTheRingHolds) {
  PackedVirtqueueBuilder vq(mem_, 4, 0x20000);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Virtqueue::Create(vq.config(), kMaxSize, kPacked, mem()));
  vq.AddChain({{kData, 8, false}, {kData, 8, false}, {kData, 8, false}, {kData, 8, false}});
  PopOne(queue);
  // A hostile driver makes slot 0 available again for the next lap before
  // the device used anything.
  vq.AddRaw(kData, 8, 1, 0);
  ExpectPopError(queue, mem(), "would put 5 descriptors in flight in a ring of 4");
}

TEST_F(PackedVirtqueueTest, PopRefusesBuffersOutsideRam) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddChain({{kRamSize - 4, 8, false}});
  ExpectPopError(queue, mem(), "descriptor 0 buffer 0x3fffc+0x8 is not inside guest RAM");
}

TEST_F(PackedVirtqueueTest, PopRefusesABufferWhoseEndOverflows) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddChain({{0xfffffffffffffff0ull, 0x20, true}});
  ExpectPopError(queue, mem(), "is not inside guest RAM");
}

TEST(PackedVirtqueueHoleTest, PopRefusesABufferStraddlingAHole) {
  auto mem = FakeGuestMemory::WithRegions({{0, 0x10000}, {0x20000, 0x10000}});
  PackedVirtqueueBuilder vq(mem, kSize, kRingBase);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue,
                       Virtqueue::Create(vq.config(), kMaxSize, kPacked, mem.memory()));
  vq.AddChain({{0xfff0, 0x20, true}});
  ExpectPopError(queue, mem.memory(), "buffer 0xfff0+0x20 is not inside guest RAM");
}

TEST_F(PackedVirtqueueTest, PopRefusesAReadableBufferAfterAWritableOne) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedIndirect));
  vq_.AddChain({{kData, 8, true}, {kData + 8, 8, false}});
  ExpectPopError(queue, mem(), "descriptor 1 is device-readable after a device-writable one");
}

TEST_F(PackedVirtqueueTest, PopRefusesAReadableBufferAfterAWritableOneInAnIndirectTable) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedIndirect));
  vq_.AddIndirectChain(kTable, {{kData, 8, true}, {kData + 8, 0, false}});
  ExpectPopError(queue, mem(),
                 "indirect descriptor 1 is device-readable after a device-writable one");
}

TEST_F(PackedVirtqueueTest, PopRefusesIndirectWhenNotNegotiated) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddIndirectChain(kTable, {{kData, 8, false}});
  ExpectPopError(queue, mem(), "is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated");
}

TEST_F(PackedVirtqueueTest, PopRefusesIndirectInsideAChain) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedIndirect));
  vq_.WriteTableEntry(kTable, kData, 8, 0);
  // INDIRECT with NEXT...
  vq_.AddRaw(kTable, 16, 0, kDescFlagIndirect | kDescFlagNext);
  vq_.AddRaw(kData, 8, 0, 0);
  ExpectPopError(queue, mem(), "indirect descriptor at ring position 0 is part of a chain");
  // ...and INDIRECT after a direct descriptor.
  PackedVirtqueueBuilder vq(mem_, kSize, 0x20000);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue2,
                       Virtqueue::Create(vq.config(), kMaxSize, kPackedIndirect, mem()));
  vq.AddRaw(kData, 8, 0, kDescFlagNext);
  vq.AddRaw(kTable, 16, 0, kDescFlagIndirect);
  ExpectPopError(queue2, mem(), "indirect descriptor at ring position 1 is part of a chain");
}

TEST_F(PackedVirtqueueTest, PopRefusesNestedIndirectTables) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedIndirect));
  vq_.WriteTableEntry(kTable, kData, 8, 0);
  vq_.WriteTableEntry(kTable + 16, kTable + 0x100, 16, kDescFlagIndirect);
  vq_.AddRaw(kTable, 32, 0, kDescFlagIndirect);
  ExpectPopError(queue, mem(), "indirect descriptor 1 points at another indirect table");
}

TEST_F(PackedVirtqueueTest, PopRefusesBadIndirectTableLengths) {
  for (uint32_t len : {0u, 15u, 17u, 16u * (kSize + 1)}) {
    PackedVirtqueueBuilder vq(mem_, kSize, 0x20000);
    ASSERT_OK_AND_ASSIGN(Virtqueue queue,
                         Virtqueue::Create(vq.config(), kMaxSize, kPackedIndirect, mem()));
    vq.AddRaw(kTable, len, 0, kDescFlagIndirect);
    ExpectPopError(queue, mem(), "has length " + std::to_string(len));
  }
}

TEST_F(PackedVirtqueueTest, PopRefusesAnIndirectTableOutsideRam) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedIndirect));
  vq_.AddRaw(kRamSize - 16, 32, 0, kDescFlagIndirect);
  ExpectPopError(queue, mem(), "indirect table 0x3fff0+0x20 (ring position 0) is not inside");
}

TEST_F(PackedVirtqueueTest, PopRefusesIndirectTableBuffersOutsideRam) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedIndirect));
  vq_.AddIndirectChain(kTable, {{kData, 8, false}, {kRamSize, 1, true}});
  ExpectPopError(queue, mem(), "indirect descriptor 1 buffer 0x40000+0x1 is not inside");
}

TEST_F(PackedVirtqueueTest, PopLeavesTheQueuePositionAloneOnError) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddChain({{kData, 8, false}, {kRamSize, 8, false}});
  ExpectPopError(queue, mem(), "not inside guest RAM");
  EXPECT_EQ(queue.next_avail(), 0);
  // Nothing was taken into flight either: the same ID is poppable once fixed.
  ASSERT_TRUE(mem().WriteObj<uint64_t>(vq_.desc_ring() + 16, kData).ok());
  EXPECT_EQ(PopOne(queue).readable.size(), 2u);
}

TEST(PackedVirtqueueTotalTest, PopRefusesChainsWithMoreThanFourGigabytesPerDirection) {
  // 4 GiB + 64 KiB of address space, never touched beyond the ring: the
  // kernel only backs the pages we write.
  constexpr uint64_t kBig = (4ull << 30) + 0x10000;
  void* addr = mmap(nullptr, kBig, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(addr, MAP_FAILED);
  Mapping mapping(addr, kBig);
  ASSERT_OK_AND_ASSIGN(GuestMemory memory, GuestMemory::Create({{0, kBig, mapping.data()}}));
  for (bool writable : {false, true}) {
    std::memset(mapping.data(), 0, 0x2000);
    QueueConfig config{
        .size = 16, .desc_table = 0x1000, .avail_ring = 0x1100, .used_ring = 0x1104, .ready = true};
    const uint16_t dir = writable ? kDescFlagWrite : 0;
    auto put = [&](uint64_t gpa, auto value) { ASSERT_TRUE(memory.WriteObj(gpa, value).ok()); };
    // Overlapping buffers are legal but each counts: 0xffff0000 twice > 4 GiB.
    put(0x1000, uint64_t{0x10000});
    put(0x1008, uint32_t{0xffff0000});
    put(0x100e, uint16_t(kPackedDescFlagAvail | dir | kDescFlagNext));
    put(0x1010, uint64_t{0x10000});
    put(0x1018, uint32_t{0xffff0000});
    put(0x101e, uint16_t(kPackedDescFlagAvail | dir));
    ASSERT_OK_AND_ASSIGN(Virtqueue queue, Virtqueue::Create(config, 256, kPacked, memory));
    ExpectPopError(
        queue, memory,
        writable ? "more than 4 GiB of device-writable" : "more than 4 GiB of device-readable");
    // One of them alone is fine.
    put(0x100e, uint16_t(kPackedDescFlagAvail | dir));
    ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(memory));
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(writable ? chain->writable_bytes : chain->readable_bytes, 0xffff0000u);
  }
}

TEST(PackedVirtqueueBigTest, HandlesTheLargestQueueSize) {
  constexpr uint16_t kBig = 32768;
  FakeGuestMemory mem(0x200000);
  PackedVirtqueueBuilder vq(mem, kBig, 0x10000);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue,
                       Virtqueue::Create(vq.config(), kBig, kPacked, mem.memory()));
  std::vector<Buf> bufs(kBig, Buf{0x100, 1, false});
  const uint16_t id = vq.AddChain(bufs);
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem.memory()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(chain->head, id);
  EXPECT_EQ(chain->readable.size(), kBig);
  EXPECT_EQ(queue.next_avail(), 0);
  ASSERT_TRUE(queue.PushUsed(mem.memory(), id, 0).ok());
  ASSERT_TRUE(vq.NextUsed().has_value());
  EXPECT_EQ(queue.next_used(), 0);
  // On the second lap, positions and IDs still fit 15 bits.
  const uint16_t last = vq.AddChain({{0x100, 1, true}});
  ASSERT_OK_AND_ASSIGN(chain, queue.Pop(mem.memory()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(chain->head, last);
}

// ---- PushUsed ----

TEST_F(PackedVirtqueueTest, PushUsedWritesTheUsedDescriptorTheDriverReads) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  const uint16_t id = vq_.AddChain({{kData, 16, false}, {kData + 0x100, 512, true}});
  PopOne(queue);
  ASSERT_TRUE(queue.PushUsed(mem(), id, 300).ok());
  EXPECT_EQ(queue.next_used(), 2);  // the chain took two ring slots
  auto used = vq_.NextUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->id, id);
  EXPECT_EQ(used->len, 300u);
  EXPECT_EQ(used->flags, UsedFlags(true, true));
  EXPECT_FALSE(vq_.NextUsed().has_value());
}

TEST_F(PackedVirtqueueTest, PushUsedWithNothingWrittenLeavesWriteClear) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  const uint16_t id = vq_.AddChain({{kData, 16, false}});
  PopOne(queue);
  ASSERT_TRUE(queue.PushUsed(mem(), id, 0).ok());
  auto used = vq_.NextUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->len, 0u);
  EXPECT_EQ(used->flags, UsedFlags(true, false));
}

TEST_F(PackedVirtqueueTest, PushUsedRefusesIdsNotInFlight) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  EXPECT_THAT(queue.PushUsed(mem(), kSize, 0).message(),
              HasSubstr("buffer ID 16 is not in flight"));
  EXPECT_THAT(queue.PushUsed(mem(), 3, 0).message(), HasSubstr("buffer ID 3 is not in flight"));
  const uint16_t id = vq_.AddChain({{kData, 8, true}});
  PopOne(queue);
  ASSERT_TRUE(queue.PushUsed(mem(), id, 8).ok());
  EXPECT_THAT(queue.PushUsed(mem(), id, 8).message(), HasSubstr("is not in flight"));
  EXPECT_EQ(queue.next_used(), 1);
}

TEST_F(PackedVirtqueueTest, OutOfOrderCompletionSkipsEachChainsLength) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  const uint16_t a = vq_.AddChain({{kData, 8, false}, {kData + 8, 8, true}});
  const uint16_t b = vq_.AddChain({{kData + 16, 8, true}});
  const uint16_t c =
      vq_.AddChain({{kData + 32, 8, false}, {kData + 40, 8, true}, {kData, 1, true}});
  for (uint16_t expected : {a, b, c}) EXPECT_EQ(PopOne(queue).head, expected);
  // Completed c, a, b: used descriptors go at 0, 3 (c took 3), 5 (a took 2).
  ASSERT_TRUE(queue.PushUsed(mem(), c, 3).ok());
  EXPECT_EQ(queue.next_used(), 3);
  ASSERT_TRUE(queue.PushUsed(mem(), a, 1).ok());
  EXPECT_EQ(queue.next_used(), 5);
  ASSERT_TRUE(queue.PushUsed(mem(), b, 2).ok());
  EXPECT_EQ(queue.next_used(), 6);
  for (auto [id, len] : {std::pair<uint16_t, uint32_t>{c, 3}, {a, 1}, {b, 2}}) {
    auto used = vq_.NextUsed();
    ASSERT_TRUE(used.has_value());
    EXPECT_EQ(used->id, id);
    EXPECT_EQ(used->len, len);
  }
  EXPECT_EQ(vq_.last_used(), 6);
}

TEST(PackedVirtqueueLapTest, WrapsAroundTheRingForSeveralLapsInStepWithTheDriver) {
  // An odd size, chains of 1-3 descriptors that straddle the end of the
  // ring, completion in reverse order of each batch: after every batch the
  // driver reads exactly what the device used, in order.
  constexpr uint16_t kOdd = 7;
  FakeGuestMemory mem(kRamSize);
  PackedVirtqueueBuilder vq(mem, kOdd, kRingBase);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue,
                       Virtqueue::Create(vq.config(), kMaxSize, kPacked, mem.memory()));
  uint32_t round = 0;
  uint32_t descriptors_used = 0;
  while (descriptors_used < 5u * kOdd) {
    std::vector<uint16_t> ids;
    while (vq.free_descriptors() > 0 && ids.size() < 3) {
      const uint16_t n = std::min<uint16_t>(1 + (round + ids.size()) % 3, vq.free_descriptors());
      std::vector<Buf> bufs;
      for (uint16_t i = 0; i < n; ++i) bufs.push_back({kData + 0x100ull * i, 8, i + 1 == n});
      ids.push_back(vq.AddChain(bufs));
      descriptors_used += n;
    }
    ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem.memory()));
    EXPECT_EQ(available, ids.size());
    for (uint16_t id : ids) {
      ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem.memory()));
      ASSERT_TRUE(chain.has_value());
      EXPECT_EQ(chain->head, id);
    }
    for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
      ASSERT_TRUE(queue.PushUsed(mem.memory(), *it, 1000 + *it).ok());
    }
    for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
      auto used = vq.NextUsed();
      ASSERT_TRUE(used.has_value()) << "round " << round;
      EXPECT_EQ(used->id, *it);
      EXPECT_EQ(used->len, 1000u + *it);
    }
    EXPECT_FALSE(vq.NextUsed().has_value());
    EXPECT_EQ(queue.next_avail(), vq.next_avail());
    EXPECT_EQ(queue.next_used(), vq.last_used());
    ++round;
  }
  EXPECT_GE(round, 5u);
}

// ---- UndoPop ----

TEST_F(PackedVirtqueueTest, UndoPopHandsTheChainBack) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  const uint16_t a = vq_.AddChain({{kData, 8, true}, {kData + 8, 8, true}});
  const uint16_t b = vq_.AddChain({{kData + 16, 8, true}});
  EXPECT_EQ(PopOne(queue).head, a);
  EXPECT_EQ(PopOne(queue).head, b);
  queue.UndoPop();
  EXPECT_EQ(queue.next_avail(), 2);
  EXPECT_EQ(PopOne(queue).head, b);
  queue.UndoPop();
  queue.UndoPop();
  EXPECT_EQ(queue.next_avail(), 0);
  ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 2);
  // The IDs are free again: popping them is not a reuse.
  EXPECT_EQ(PopOne(queue).head, a);
  EXPECT_EQ(PopOne(queue).head, b);
}

TEST_F(PackedVirtqueueTest, UndoPopWithNothingPoppedDoesNothing) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  queue.UndoPop();
  EXPECT_EQ(queue.next_avail(), 0);
  vq_.AddChain({{kData, 8, true}});
  PopOne(queue);
  queue.UndoPop();
  queue.UndoPop();  // only one was popped
  EXPECT_EQ(queue.next_avail(), 0);
  ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 1);
}

TEST(PackedVirtqueueUndoTest, UndoPopRestoresTheWrapCounterAcrossTheEndOfTheRing) {
  FakeGuestMemory mem(kRamSize);
  PackedVirtqueueBuilder vq(mem, 3, kRingBase);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue,
                       Virtqueue::Create(vq.config(), kMaxSize, kPacked, mem.memory()));
  const uint16_t first = vq.AddChain({{kData, 8, true}, {kData, 8, true}});
  ASSERT_TRUE(queue.Pop(mem.memory()).ok());
  ASSERT_TRUE(queue.PushUsed(mem.memory(), first, 8).ok());
  ASSERT_TRUE(vq.NextUsed().has_value());
  // Slots 2 and 0: the chain crosses the end, the wrap counter flips.
  const uint16_t across = vq.AddChain({{kData + 0x100, 8, false}, {kData + 0x200, 8, true}});
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem.memory()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(chain->head, across);
  EXPECT_EQ(queue.next_avail(), 1);
  queue.UndoPop();
  EXPECT_EQ(queue.next_avail(), 2);
  // With the wrap counter back at 1 the same chain pops again; with it
  // left at 0 slot 2 would not look available at all.
  ASSERT_OK_AND_ASSIGN(auto again, queue.Pop(mem.memory()));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->head, across);
  EXPECT_THAT(again->readable, ElementsAre(IsBuffer(kData + 0x100, 8u)));
  EXPECT_THAT(again->writable, ElementsAre(IsBuffer(kData + 0x200, 8u)));
  ASSERT_TRUE(queue.PushUsed(mem.memory(), across, 8).ok());
  auto used = vq.NextUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->id, across);
  EXPECT_EQ(used->flags, UsedFlags(true, true));  // written at slot 2, still lap 1
  EXPECT_EQ(queue.next_used(), 1);
}

TEST_F(PackedVirtqueueTest, UndoPopNeverRewindsOverAUsedChain) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  const uint16_t a = vq_.AddChain({{kData, 8, true}});
  const uint16_t b = vq_.AddChain({{kData + 8, 8, true}});
  const uint16_t c = vq_.AddChain({{kData + 16, 8, true}});
  PopOne(queue);
  PopOne(queue);
  PopOne(queue);
  // b used: a (older) can no longer be handed back, c (newer) still can.
  ASSERT_TRUE(queue.PushUsed(mem(), b, 8).ok());
  queue.UndoPop();
  EXPECT_EQ(queue.next_avail(), 2);
  queue.UndoPop();  // would rewind over b: refused
  EXPECT_EQ(queue.next_avail(), 2);
  EXPECT_EQ(PopOne(queue).head, c);
  ASSERT_TRUE(queue.PushUsed(mem(), a, 8).ok());
  ASSERT_TRUE(queue.PushUsed(mem(), c, 8).ok());
}

// ---- AvailableCount ----

TEST_F(PackedVirtqueueTest, AvailableCountCountsChainsNotDescriptors) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedIndirect));
  vq_.AddChain({{kData, 8, true}, {kData, 8, true}, {kData, 8, true}});
  vq_.AddIndirectChain(kTable, {{kData, 8, true}, {kData, 8, true}});
  vq_.AddChain({{kData, 8, true}});
  ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 3);
  PopOne(queue);
  ASSERT_OK_AND_ASSIGN(available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 2);
  queue.UndoPop();
  ASSERT_OK_AND_ASSIGN(available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 3);
}

TEST_F(PackedVirtqueueTest, AvailableCountLeavesOutAChainWhoseTailIsMissing) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddChain({{kData, 8, true}});
  vq_.AddRaw(kData, 8, 5, kDescFlagNext);
  ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 1);
}

TEST_F(PackedVirtqueueTest, AvailableCountStopsAfterOneLap) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  // A full ring: the scan covers one lap and stops there.
  for (uint16_t i = 0; i < kSize; ++i) vq_.AddRaw(kData, 8, i, 0);
  ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, kSize);
}

// ---- Event suppression: driver -> device (ShouldNotify) ----

TEST_F(PackedVirtqueueTest, ShouldNotifyHonoursEnableAndDisable) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  const uint16_t id = vq_.AddChain({{kData, 8, true}});
  PopOne(queue);
  ASSERT_TRUE(queue.PushUsed(mem(), id, 8).ok());
  vq_.SetDriverEvent(kEventFlagsEnable);
  ASSERT_OK_AND_ASSIGN(bool notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);
  vq_.SetDriverEvent(kEventFlagsDisable);
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_FALSE(notify);
  // DESC without EVENT_IDX, and the reserved value 3: interrupt (safe).
  vq_.SetDriverEvent(kEventFlagsDesc, 9, false);
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);
  vq_.SetDriverEvent(3);
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);
}

TEST_F(PackedVirtqueueTest, ShouldNotifyFollowsTheDriverEventWithEventIdx) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedEventIdx));
  auto complete = [&](size_t descriptors) {
    std::vector<Buf> bufs(descriptors, Buf{kData, 8, true});
    const uint16_t id = vq_.AddChain(bufs);
    PopOne(queue);
    ASSERT_TRUE(queue.PushUsed(mem(), id, 8).ok());
    ASSERT_TRUE(vq_.NextUsed().has_value());
  };
  // As Linux arms it: the slot of the next used descriptor it expects.
  vq_.SetDriverEvent(kEventFlagsDesc, 0, true);
  complete(1);  // writes slot 0
  ASSERT_OK_AND_ASSIGN(bool notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);
  complete(1);  // slot 1: the driver asked for slot 0 only
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_FALSE(notify);
  // An event inside a chain's slots (3 of 2-4) is passed by that chain.
  vq_.SetDriverEvent(kEventFlagsDesc, 3, true);
  complete(3);
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);
  // An event ahead (slot 10) is not reached by slot 5.
  vq_.SetDriverEvent(kEventFlagsDesc, 10, true);
  complete(1);
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_FALSE(notify);
  // Nothing used since the last decision: no interrupt.
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_FALSE(notify);
}

TEST(PackedVirtqueueEventTest, ShouldNotifyWithEventIdxAcrossTheWrap) {
  // One pass uses a 4-descriptor chain in slots 14, 15, 0, 1 of a 16-slot
  // ring: it passes slots 14-15 of lap 1 (wrap 1) and 0-1 of lap 2 (wrap 0).
  const struct {
    uint16_t off;
    bool wrap;
    bool expected;
  } cases[] = {{1, false, true}, {0, false, true}, {2, false, false},
               {15, true, true}, {14, true, true}, {13, true, false}};
  for (const auto& c : cases) {
    FakeGuestMemory mem(kRamSize);
    PackedVirtqueueBuilder vq(mem, kSize, kRingBase);
    ASSERT_OK_AND_ASSIGN(Virtqueue queue,
                         Virtqueue::Create(vq.config(), kMaxSize, kPackedEventIdx, mem.memory()));
    const uint16_t first = vq.AddChain(std::vector<Buf>(14, Buf{kData, 8, true}));
    ASSERT_TRUE(queue.Pop(mem.memory()).ok());
    ASSERT_TRUE(queue.PushUsed(mem.memory(), first, 8).ok());
    ASSERT_TRUE(vq.NextUsed().has_value());
    ASSERT_TRUE(queue.ShouldNotify(mem.memory()).ok());  // closes the first pass
    const uint16_t across = vq.AddChain(std::vector<Buf>(4, Buf{kData, 8, true}));
    ASSERT_TRUE(queue.Pop(mem.memory()).ok());
    ASSERT_TRUE(queue.PushUsed(mem.memory(), across, 8).ok());
    EXPECT_EQ(queue.next_used(), 2);
    vq.SetDriverEvent(kEventFlagsDesc, c.off, c.wrap);
    ASSERT_OK_AND_ASSIGN(bool notify, queue.ShouldNotify(mem.memory()));
    EXPECT_EQ(notify, c.expected) << "event at slot " << c.off << " wrap " << c.wrap;
  }
}

TEST_F(PackedVirtqueueTest, ShouldNotifyWithEventIdxAfterAWholeLapAlwaysInterrupts) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create(kPackedEventIdx));
  vq_.SetDriverEvent(kEventFlagsDesc, 0x7fff, false);  // nonsense offset
  for (int i = 0; i < kSize; ++i) {
    const uint16_t id = vq_.AddChain({{kData, 8, true}});
    PopOne(queue);
    ASSERT_TRUE(queue.PushUsed(mem(), id, 8).ok());
    ASSERT_TRUE(vq_.NextUsed().has_value());
  }
  ASSERT_OK_AND_ASSIGN(bool notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);
}

// ---- Event suppression: device -> driver (SetNotification) ----

TEST_F(PackedVirtqueueTest, SetNotificationWritesEnableOrDisableWithoutEventIdx) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  ASSERT_TRUE(queue.SetNotification(mem(), false).ok());
  EXPECT_EQ(vq_.device_event_flags(), kEventFlagsDisable);
  ASSERT_TRUE(queue.SetNotification(mem(), true).ok());
  EXPECT_EQ(vq_.device_event_flags(), kEventFlagsEnable);
}

TEST_F(PackedVirtqueueTest, SetNotificationAsksForTheNextDescriptorWithEventIdx) {
  FakeGuestMemory mem(kRamSize);
  PackedVirtqueueBuilder vq(mem, 3, kRingBase);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue,
                       Virtqueue::Create(vq.config(), kMaxSize, kPackedEventIdx, mem.memory()));
  ASSERT_TRUE(queue.SetNotification(mem.memory(), true).ok());
  EXPECT_EQ(vq.device_event_flags(), kEventFlagsDesc);
  EXPECT_EQ(vq.device_event_off_wrap(), 0x8000);  // slot 0, wrap 1
  ASSERT_TRUE(queue.SetNotification(mem.memory(), false).ok());
  EXPECT_EQ(vq.device_event_flags(), kEventFlagsDisable);
  // After a chain across the end of the ring: slot 1 of lap 2 (wrap 0).
  const uint16_t a = vq.AddChain({{kData, 8, true}, {kData, 8, true}});
  ASSERT_TRUE(queue.Pop(mem.memory()).ok());
  ASSERT_TRUE(queue.PushUsed(mem.memory(), a, 8).ok());
  ASSERT_TRUE(vq.NextUsed().has_value());
  vq.AddChain({{kData, 8, true}, {kData, 8, true}});
  ASSERT_TRUE(queue.Pop(mem.memory()).ok());
  ASSERT_TRUE(queue.SetNotification(mem.memory(), true).ok());
  EXPECT_EQ(vq.device_event_flags(), kEventFlagsDesc);
  EXPECT_EQ(vq.device_event_off_wrap(), 1);
}

}  // namespace
}  // namespace skiff::virtio
