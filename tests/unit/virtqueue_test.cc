// The split virtqueue against crafted rings in fake guest memory: valid
// chains, every malformed chain the walker must refuse, the used ring, and
// notification suppression.
#include <sys/mman.h>

#include <cstring>
#include <optional>
#include <string>

#include "devices/virtio/queue.h"
#include "devices/virtio/split_ring.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/virtqueue_builder.h"
#include "tests/unit/virtqueue_test_util.h"
#include "vmm/mapping.h"

namespace skiff::virtio {
namespace {

using ::skiff::virtio::testing::VirtqueueBuilder;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Buf = VirtqueueBuilder::Buf;

constexpr uint16_t kSize = 16;
constexpr uint16_t kMaxSize = 256;
constexpr uint64_t kRingBase = 0x1000;
constexpr uint64_t kRamSize = 0x40000;
constexpr uint64_t kData = 0x10000;   // buffers live from here
constexpr uint64_t kTable = 0x30000;  // indirect tables live from here

MATCHER_P2(IsBuffer, addr, len, "") { return arg.addr == addr && arg.len == len; }

class VirtqueueTest : public ::testing::Test {
 protected:
  const GuestMemory& mem() const { return mem_.memory(); }
  absl::StatusOr<Virtqueue> Create(QueueFeatures features = {}) {
    return Virtqueue::Create(vq_.config(), kMaxSize, features, mem());
  }

  FakeGuestMemory mem_{kRamSize};
  VirtqueueBuilder vq_{mem_, kSize, kRingBase};
};

// ---- Create ----

TEST_F(VirtqueueTest, CreateAcceptsAValidQueue) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  EXPECT_EQ(queue.size(), kSize);
  EXPECT_EQ(queue.next_avail(), 0);
  EXPECT_EQ(queue.next_used(), 0);
  EXPECT_EQ(queue.config().desc_table, kRingBase);
}

TEST_F(VirtqueueTest, CreateRefusesAQueueTheDriverDidNotEnable) {
  QueueConfig config = vq_.config();
  config.ready = false;
  EXPECT_THAT(Virtqueue::Create(config, kMaxSize, {}, mem()).status().message(),
              HasSubstr("did not enable"));
}

TEST_F(VirtqueueTest, CreateRefusesSizesThatAreNotPowersOfTwoOrTooBig) {
  for (uint16_t size : {0, 3, 12, 255, 512, 32768}) {
    QueueConfig config = vq_.config();
    config.size = size;
    EXPECT_THAT(Virtqueue::Create(config, kMaxSize, {}, mem()).status().message(),
                HasSubstr("not a power of two"))
        << "size " << size;
  }
  QueueConfig config = vq_.config();
  EXPECT_TRUE(Virtqueue::Create(config, kSize, {}, mem()).ok());  // size == max
  config.size = 1;
  EXPECT_TRUE(Virtqueue::Create(config, kMaxSize, {}, mem()).ok());
  // The device's own maximum must be sane too (virtio caps split rings at 32768).
  for (uint16_t max : {0, 100, 65535}) {
    EXPECT_THAT(Virtqueue::Create(vq_.config(), max, {}, mem()).status().message(),
                HasSubstr("device maximum"))
        << "max " << max;
  }
}

TEST_F(VirtqueueTest, CreateRefusesMisalignedRings) {
  QueueConfig config = vq_.config();
  config.desc_table += 8;
  EXPECT_THAT(Virtqueue::Create(config, kMaxSize, {}, mem()).status().message(),
              HasSubstr("descriptor table at 0x1008 is not 16-byte aligned"));
  config = vq_.config();
  config.avail_ring += 1;
  EXPECT_THAT(Virtqueue::Create(config, kMaxSize, {}, mem()).status().message(),
              HasSubstr("available ring at 0x1101 is not 2-byte aligned"));
  config = vq_.config();
  config.used_ring += 2;
  EXPECT_THAT(Virtqueue::Create(config, kMaxSize, {}, mem()).status().message(),
              HasSubstr("not 4-byte aligned"));
  // The smallest alignments the spec asks for are accepted.
  config = vq_.config();
  config.avail_ring += 2;
  config.used_ring += 4;
  EXPECT_TRUE(Virtqueue::Create(config, kMaxSize, {}, mem()).ok());
}

TEST_F(VirtqueueTest, CreateRefusesRingsNotWhollyInRam) {
  const struct {
    uint64_t QueueConfig::*field;
    uint64_t bytes;  // the ring's length for kSize
    uint64_t align;
    const char* name;
  } rings[] = {
      {&QueueConfig::desc_table, 16 * kSize, 16, "descriptor table"},
      {&QueueConfig::avail_ring, 6 + 2 * kSize, 2, "available ring"},
      {&QueueConfig::used_ring, 6 + 8 * kSize, 4, "used ring"},
  };
  for (const auto& ring : rings) {
    QueueConfig config = vq_.config();
    // Last byte one past the end of RAM.
    config.*ring.field = kRamSize - ring.bytes + 16;
    config.*ring.field &= ~uint64_t{15};
    EXPECT_THAT(Virtqueue::Create(config, kMaxSize, {}, mem()).status().message(),
                HasSubstr(std::string(ring.name) + " 0x"))
        << ring.name;
    // As close to the end as alignment allows (the avail ring ends exactly there).
    config.*ring.field = (kRamSize - ring.bytes) & ~(ring.align - 1);
    EXPECT_TRUE(Virtqueue::Create(config, kMaxSize, {}, mem()).ok()) << ring.name;
    config.*ring.field = 0xfffffffffffffff0ull;  // would overflow
    EXPECT_FALSE(Virtqueue::Create(config, kMaxSize, {}, mem()).ok()) << ring.name;
  }
}

TEST(VirtqueueCreateTest, RefusesARingAcrossAHoleInGuestRam) {
  auto mem = FakeGuestMemory::WithRegions({{0, 0x1000}, {0x2000, 0x1000}});
  QueueConfig config{
      .size = 16, .desc_table = 0xf80, .avail_ring = 0x2000, .used_ring = 0x2100, .ready = true};
  // 0xf80 + 256 bytes runs from the first region into the hole.
  EXPECT_THAT(Virtqueue::Create(config, 256, {}, mem.memory()).status().message(),
              HasSubstr("descriptor table 0xf80+0x100 is not inside guest RAM"));
  config.desc_table = 0x2200;
  EXPECT_TRUE(Virtqueue::Create(config, 256, {}, mem.memory()).ok());
}

// ---- Pop: valid chains ----

TEST_F(VirtqueueTest, PopReturnsNothingWhenTheDriverPostedNothing) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  EXPECT_FALSE(chain.has_value());
  ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 0);
}

TEST_F(VirtqueueTest, PopWalksADirectChain) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  const uint16_t head = vq_.AddChain({{kData, 16, false},
                                      {kData + 0x100, 512, false},
                                      {kData + 0x1000, 100, true},
                                      {kData + 0x2000, 1, true}});
  ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 1);
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(chain->head, head);
  EXPECT_THAT(chain->readable, ElementsAre(IsBuffer(kData, 16u), IsBuffer(kData + 0x100, 512u)));
  EXPECT_THAT(chain->writable,
              ElementsAre(IsBuffer(kData + 0x1000, 100u), IsBuffer(kData + 0x2000, 1u)));
  EXPECT_EQ(chain->readable_bytes, 528u);
  EXPECT_EQ(chain->writable_bytes, 101u);
  EXPECT_EQ(queue.next_avail(), 1);
  ASSERT_OK_AND_ASSIGN(auto none, queue.Pop(mem()));
  EXPECT_FALSE(none.has_value());
}

TEST_F(VirtqueueTest, PopReturnsChainsInTheOrderTheDriverPostedThem) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  // Heads posted out of descriptor order.
  vq_.WriteDescriptor(5, kData + 0x500, 5, 0, 0);
  vq_.WriteDescriptor(2, kData + 0x200, 2, kDescFlagWrite, 0);
  vq_.PublishHead(5);
  vq_.PublishHead(2);
  ASSERT_OK_AND_ASSIGN(auto first, queue.Pop(mem()));
  ASSERT_OK_AND_ASSIGN(auto second, queue.Pop(mem()));
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->head, 5);
  EXPECT_THAT(first->readable, ElementsAre(IsBuffer(kData + 0x500, 5u)));
  EXPECT_TRUE(first->writable.empty());
  EXPECT_EQ(second->head, 2);
  EXPECT_TRUE(second->readable.empty());
  EXPECT_THAT(second->writable, ElementsAre(IsBuffer(kData + 0x200, 2u)));
}

TEST_F(VirtqueueTest, PopWalksAnIndirectTable) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.indirect = true}));
  const uint16_t head = vq_.AddIndirectChain(
      kTable, {{kData, 16, false}, {kData + 0x1000, 4096, true}, {kData + 0x3000, 1, true}});
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(chain->head, head);
  EXPECT_THAT(chain->readable, ElementsAre(IsBuffer(kData, 16u)));
  EXPECT_THAT(chain->writable,
              ElementsAre(IsBuffer(kData + 0x1000, 4096u), IsBuffer(kData + 0x3000, 1u)));
  EXPECT_EQ(chain->writable_bytes, 4097u);
}

TEST_F(VirtqueueTest, PopFollowsNextLinksInsideAnIndirectTable) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.indirect = true}));
  // Table of 3: entry 0 -> 2 -> 1; entry order is by link, not by position.
  vq_.WriteDescriptorAt(kTable + 0, kData, 1, kDescFlagNext, 2);
  vq_.WriteDescriptorAt(kTable + 16, kData + 0x100, 3, kDescFlagWrite, 0);
  vq_.WriteDescriptorAt(kTable + 32, kData + 0x200, 2, kDescFlagNext, 1);
  vq_.WriteDescriptor(7, kTable, 48, kDescFlagIndirect, 0);
  vq_.PublishHead(7);
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_THAT(chain->readable, ElementsAre(IsBuffer(kData, 1u), IsBuffer(kData + 0x200, 2u)));
  EXPECT_THAT(chain->writable, ElementsAre(IsBuffer(kData + 0x100, 3u)));
}

TEST_F(VirtqueueTest, PopAcceptsDirectDescriptorsFollowedByAnIndirectOne) {
  // Virtio 1.2 §2.7.5.3.2: zero or more chained descriptors, then one
  // indirect descriptor. The indirect one's WRITE flag is ignored.
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.indirect = true}));
  vq_.WriteDescriptorAt(kTable, kData + 0x100, 8, 0, 0);
  vq_.WriteDescriptorAt(kTable + 16, kData + 0x200, 9, kDescFlagWrite, 0);
  vq_.WriteDescriptorAt(kTable, kData + 0x100, 8, kDescFlagNext, 1);
  vq_.WriteDescriptor(3, kData, 4, kDescFlagNext, 9);
  vq_.WriteDescriptor(9, kTable, 32, kDescFlagIndirect | kDescFlagWrite, 0);
  vq_.PublishHead(3);
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(chain->head, 3);
  EXPECT_THAT(chain->readable, ElementsAre(IsBuffer(kData, 4u), IsBuffer(kData + 0x100, 8u)));
  EXPECT_THAT(chain->writable, ElementsAre(IsBuffer(kData + 0x200, 9u)));
  EXPECT_EQ(chain->readable_bytes, 12u);
  EXPECT_EQ(chain->writable_bytes, 9u);
}

TEST_F(VirtqueueTest, PopAcceptsChainsOfExactlyTheQueueSize) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.indirect = true}));
  std::vector<Buf> bufs;
  for (uint16_t i = 0; i < kSize; ++i) bufs.push_back({kData + 0x100 * i, 0x10, i >= 8});
  vq_.AddChain(bufs);
  // An indirect table of `size` entries: the pointer descriptor itself is
  // not a buffer and does not count against the chain length.
  vq_.AddIndirectChain(kTable, bufs);
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(chain->readable.size(), 8u);
    EXPECT_EQ(chain->writable.size(), 8u);
    EXPECT_EQ(chain->readable_bytes, 0x80u);
  }
}

TEST_F(VirtqueueTest, PopDropsZeroLengthDescriptors) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  // A zero-length buffer touches no memory, so even its bogus address is fine.
  vq_.AddChain({{kData, 0x10, false},
                {0xdead'beef'0000ull, 0, false},
                {kData + 0x100, 0, true},
                {kData + 0x200, 0x20, true}});
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_THAT(chain->readable, ElementsAre(IsBuffer(kData, 0x10u)));
  EXPECT_THAT(chain->writable, ElementsAre(IsBuffer(kData + 0x200, 0x20u)));
}

TEST_F(VirtqueueTest, PopAcceptsBuffersEndingExactlyAtTheEndOfRam) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddChain({{kRamSize - 0x100, 0x100, true}});
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_THAT(chain->writable, ElementsAre(IsBuffer(kRamSize - 0x100, 0x100u)));
}

TEST_F(VirtqueueTest, PopIgnoresUnknownDescriptorFlags) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.WriteDescriptor(0, kData, 8, kDescFlagWrite | 0x8000, 0);
  vq_.PublishHead(0);
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_THAT(chain->writable, ElementsAre(IsBuffer(kData, 8u)));
}

// ---- Pop: malformed rings ----

TEST_F(VirtqueueTest, PopRefusesALoop) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.WriteDescriptor(0, kData, 8, kDescFlagNext, 1);
  vq_.WriteDescriptor(1, kData, 8, kDescFlagNext, 2);
  vq_.WriteDescriptor(2, kData, 8, kDescFlagNext, 0);
  vq_.PublishHead(0);
  ExpectPopError(queue, mem(), "longer than the queue size 16 (or loops)");
}

TEST_F(VirtqueueTest, PopRefusesADescriptorLinkingToItself) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.WriteDescriptor(4, kData, 8, kDescFlagNext, 4);
  vq_.PublishHead(4);
  ExpectPopError(queue, mem(), "(or loops)");
}

TEST_F(VirtqueueTest, PopRefusesALoopInsideAnIndirectTable) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.indirect = true}));
  vq_.WriteDescriptorAt(kTable, kData, 8, kDescFlagNext, 1);
  vq_.WriteDescriptorAt(kTable + 16, kData, 8, kDescFlagNext, 0);
  vq_.WriteDescriptor(0, kTable, 32, kDescFlagIndirect, 0);
  vq_.PublishHead(0);
  ExpectPopError(queue, mem(), "(or loops)");
}

TEST_F(VirtqueueTest, PopRefusesChainsLongerThanTheQueueIndirectIncluded) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.indirect = true}));
  // One direct buffer plus a full-size indirect table: size + 1 buffers.
  std::vector<Buf> bufs(kSize, Buf{kData, 8, false});
  for (uint16_t i = 0; i < kSize; ++i) {
    vq_.WriteDescriptorAt(kTable + 16 * i, kData, 8, i + 1 < kSize ? kDescFlagNext : 0, i + 1);
  }
  vq_.WriteDescriptor(0, kData, 8, kDescFlagNext, 1);
  vq_.WriteDescriptor(1, kTable, 16 * kSize, kDescFlagIndirect, 0);
  vq_.PublishHead(0);
  ExpectPopError(queue, mem(), "longer than the queue size");
}

TEST_F(VirtqueueTest, PopRefusesANextIndexPastTheTable) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.WriteDescriptor(0, kData, 8, kDescFlagNext, kSize);
  vq_.PublishHead(0);
  ExpectPopError(queue, mem(), "descriptor 0 links to 16, past the table's 16 entries");
}

TEST_F(VirtqueueTest, PopRefusesANextIndexPastAnIndirectTable) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.indirect = true}));
  // The table has 2 entries; next = 2 is inside the queue size but past it.
  vq_.WriteDescriptorAt(kTable, kData, 8, kDescFlagNext, 1);
  vq_.WriteDescriptorAt(kTable + 16, kData, 8, kDescFlagNext, 2);
  vq_.WriteDescriptor(0, kTable, 32, kDescFlagIndirect, 0);
  vq_.PublishHead(0);
  ExpectPopError(queue, mem(), "indirect descriptor 1 links to 2, past the table's 2 entries");
}

TEST_F(VirtqueueTest, PopRefusesBuffersOutsideRam) {
  const struct {
    uint64_t addr;
    uint32_t len;
  } bad[] = {
      {kRamSize, 1},                     // just past the end
      {kRamSize - 0x10, 0x11},           // straddles the end
      {0x1'0000'0000ull, 0x10},          // far away
      {0xffff'ffff'ffff'fff0ull, 0x20},  // addr + len overflows
      {0xffff'ffff'ffff'ffffull, 1},     // ends exactly at 2^64
      {0, 0xffff'ffff},                  // bigger than RAM
  };
  for (const auto& buffer : bad) {
    for (bool writable : {false, true}) {
      FakeGuestMemory mem(kRamSize);
      VirtqueueBuilder vq(mem, kSize, kRingBase);
      ASSERT_OK_AND_ASSIGN(Virtqueue queue,
                           Virtqueue::Create(vq.config(), kMaxSize, {}, mem.memory()));
      vq.AddChain({{kData, 8, false}, {buffer.addr, buffer.len, writable}});
      ExpectPopError(queue, mem.memory(), "is not inside guest RAM");
    }
  }
}

TEST(VirtqueueHoleTest, PopRefusesABufferStraddlingAHole) {
  auto mem = FakeGuestMemory::WithRegions({{0, 0x10000}, {0x20000, 0x10000}});
  VirtqueueBuilder vq(mem, kSize, kRingBase);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Virtqueue::Create(vq.config(), kMaxSize, {}, mem.memory()));
  // Fine on either side of the hole ...
  vq.AddChain({{0xff00, 0x100, false}, {0x20000, 0x100, true}});
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem.memory()));
  ASSERT_TRUE(chain.has_value());
  // ... but not across it, even though both ends are RAM.
  vq.AddChain({{0xff00, 0x20200, false}});
  ExpectPopError(queue, mem.memory(), "buffer 0xff00+0x20200 is not inside guest RAM");
  // Nor inside it.
  VirtqueueBuilder vq2(mem, kSize, 0x21000);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue2,
                       Virtqueue::Create(vq2.config(), kMaxSize, {}, mem.memory()));
  vq2.AddChain({{0x18000, 0x10, true}});
  ExpectPopError(queue2, mem.memory(), "not inside guest RAM");
}

TEST_F(VirtqueueTest, PopRefusesAReadableBufferAfterAWritableOne) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddChain({{kData, 8, false}, {kData + 0x100, 8, true}, {kData + 0x200, 8, false}});
  ExpectPopError(queue, mem(), "descriptor 2 is device-readable after a device-writable one");
}

TEST_F(VirtqueueTest, PopRefusesAReadableBufferAfterAWritableOneAcrossIndirect) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.indirect = true}));
  vq_.WriteDescriptorAt(kTable, kData, 8, 0, 0);  // readable
  vq_.WriteDescriptor(0, kData + 0x100, 8, kDescFlagWrite | kDescFlagNext, 1);
  vq_.WriteDescriptor(1, kTable, 16, kDescFlagIndirect, 0);
  vq_.PublishHead(0);
  ExpectPopError(queue, mem(), "indirect descriptor 0 is device-readable after");
}

TEST_F(VirtqueueTest, PopRefusesAReadableZeroLengthBufferAfterAWritableOne) {
  // Order is a property of the chain, whatever the lengths.
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddChain({{kData, 8, true}, {kData, 0, false}});
  ExpectPopError(queue, mem(), "device-readable after a device-writable one");
}

TEST_F(VirtqueueTest, PopRefusesNestedIndirectTables) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.indirect = true}));
  vq_.WriteDescriptorAt(kTable + 0x100, kData, 8, 0, 0);
  vq_.WriteDescriptorAt(kTable, kData, 8, kDescFlagNext, 1);
  vq_.WriteDescriptorAt(kTable + 16, kTable + 0x100, 16, kDescFlagIndirect, 0);
  vq_.WriteDescriptor(0, kTable, 32, kDescFlagIndirect, 0);
  vq_.PublishHead(0);
  ExpectPopError(queue, mem(), "indirect descriptor 1 points at another indirect table");
}

TEST_F(VirtqueueTest, PopRefusesIndirectWhenNotNegotiated) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.indirect = false}));
  vq_.AddIndirectChain(kTable, {{kData, 8, false}});
  ExpectPopError(queue, mem(), "VIRTIO_F_INDIRECT_DESC was not negotiated");
}

TEST_F(VirtqueueTest, PopRefusesIndirectWithNext) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.indirect = true}));
  vq_.WriteDescriptorAt(kTable, kData, 8, 0, 0);
  vq_.WriteDescriptor(0, kTable, 16, kDescFlagIndirect | kDescFlagNext, 1);
  vq_.WriteDescriptor(1, kData, 8, 0, 0);
  vq_.PublishHead(0);
  ExpectPopError(queue, mem(), "both INDIRECT and NEXT");
}

TEST_F(VirtqueueTest, PopRefusesBadIndirectTableLengths) {
  for (uint32_t len : {0u, 8u, 15u, 17u, 24u, 16u * kSize + 16u, 0xfffffff0u}) {
    FakeGuestMemory mem(kRamSize);
    VirtqueueBuilder vq(mem, kSize, kRingBase);
    ASSERT_OK_AND_ASSIGN(Virtqueue queue, Virtqueue::Create(vq.config(), kMaxSize,
                                                            {.indirect = true}, mem.memory()));
    vq.WriteDescriptor(0, kTable, len, kDescFlagIndirect, 0);
    vq.PublishHead(0);
    ExpectPopError(queue, mem.memory(), "has length " + std::to_string(len));
  }
}

TEST_F(VirtqueueTest, PopRefusesAnIndirectTableOutsideRam) {
  for (uint64_t table : {kRamSize - 16, kRamSize, uint64_t{0xffff'ffff'ffff'fff0}}) {
    FakeGuestMemory mem(kRamSize);
    VirtqueueBuilder vq(mem, kSize, kRingBase);
    ASSERT_OK_AND_ASSIGN(Virtqueue queue, Virtqueue::Create(vq.config(), kMaxSize,
                                                            {.indirect = true}, mem.memory()));
    vq.WriteDescriptor(0, table, 32, kDescFlagIndirect, 0);
    vq.PublishHead(0);
    ExpectPopError(queue, mem.memory(), "indirect table");
  }
}

TEST_F(VirtqueueTest, PopRefusesAnAvailIdxMoreThanSizeAhead) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.SetAvailIdx(kSize + 1);
  ExpectPopError(queue, mem(), "available idx 17 is 17 entries ahead");
  EXPECT_FALSE(queue.AvailableCount(mem()).ok());
  // Going backwards is the same as jumping far ahead modulo 2^16.
  vq_.SetAvailIdx(0xffff);
  ExpectPopError(queue, mem(), "more than the queue size");
}

TEST_F(VirtqueueTest, PopAcceptsAFullRing) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  for (uint16_t i = 0; i < kSize; ++i) vq_.AddChain({{kData + i, 1, true}});
  ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, kSize);
  for (uint16_t i = 0; i < kSize; ++i) {
    ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(chain->head, i);
  }
}

TEST_F(VirtqueueTest, PopRefusesAHeadPastTheQueueSize) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.PublishHead(kSize);
  ExpectPopError(queue, mem(), "names head 16, past the queue size 16");
  vq_.SetAvailIdx(0);
  vq_.PublishHead(0xffff);
  ExpectPopError(queue, mem(), "names head 65535");
}

TEST_F(VirtqueueTest, PopLeavesTheQueuePositionAloneOnError) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  vq_.AddChain({{kRamSize, 8, false}});
  ExpectPopError(queue, mem(), "not inside guest RAM");
  EXPECT_EQ(queue.next_avail(), 0);
}

TEST(VirtqueueTotalTest, PopRefusesChainsWithMoreThanFourGigabytesPerDirection) {
  // 4 GiB + 64 KiB of address space, never touched beyond the rings: the
  // kernel only backs the pages we write.
  constexpr uint64_t kBig = (4ull << 30) + 0x10000;
  void* addr = mmap(nullptr, kBig, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(addr, MAP_FAILED);
  Mapping mapping(addr, kBig);
  ASSERT_OK_AND_ASSIGN(GuestMemory memory, GuestMemory::Create({{0, kBig, mapping.data()}}));
  for (bool writable : {false, true}) {
    // Overlapping buffers are legal but each counts: 0xffff0000 twice > 4 GiB.
    QueueConfig config{
        .size = 16, .desc_table = 0x1000, .avail_ring = 0x1100, .used_ring = 0x1200, .ready = true};
    std::memset(mapping.data(), 0, 0x2000);
    const uint16_t flags = (writable ? kDescFlagWrite : 0);
    auto put = [&](uint64_t gpa, auto value) { ASSERT_TRUE(memory.WriteObj(gpa, value).ok()); };
    put(0x1000, uint64_t{0x10000});
    put(0x1008, uint32_t{0xffff0000});
    put(0x100c, uint16_t(flags | kDescFlagNext));
    put(0x100e, uint16_t{1});
    put(0x1010, uint64_t{0x10000});
    put(0x1018, uint32_t{0xffff0000});
    put(0x101c, uint16_t(flags));
    put(0x1102, uint16_t{1});  // avail idx; ring[0] = head 0
    ASSERT_OK_AND_ASSIGN(Virtqueue queue, Virtqueue::Create(config, 256, {}, memory));
    ExpectPopError(
        queue, memory,
        writable ? "more than 4 GiB of device-writable" : "more than 4 GiB of device-readable");
    // One of them alone is fine.
    put(0x100c, uint16_t(flags));
    ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(memory));
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(writable ? chain->writable_bytes : chain->readable_bytes, 0xffff0000u);
  }
}

TEST(VirtqueueHoleTest, PopRefusesAnIndirectTableStraddlingAHole) {
  auto mem = FakeGuestMemory::WithRegions({{0, 0x10000}, {0x20000, 0x10000}});
  VirtqueueBuilder vq(mem, kSize, kRingBase);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Virtqueue::Create(vq.config(), kMaxSize,
                                                          {.indirect = true}, mem.memory()));
  // Table in the second region: fine.
  vq.AddIndirectChain(0x20000, {{0x100, 8, false}, {0x20100, 8, true}});
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem.memory()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(chain->readable_bytes + chain->writable_bytes, 16u);
  // Two entries: the first in the low region, the second in the hole.
  vq.WriteDescriptor(1, 0xfff0, 32, kDescFlagIndirect, 0);
  vq.PublishHead(1);
  ExpectPopError(queue, mem.memory(), "indirect table 0xfff0+0x20 is not inside guest RAM");
}

TEST(VirtqueueBigTest, HandlesTheLargestQueueSize) {
  constexpr uint16_t kBig = 32768;
  FakeGuestMemory mem(0x200000);
  VirtqueueBuilder vq(mem, kBig, 0x10000);
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Virtqueue::Create(vq.config(), kBig, {}, mem.memory()));
  // A loop over the whole table is caught after 32768 descriptors.
  for (uint32_t i = 0; i < kBig; ++i) {
    vq.WriteDescriptor(static_cast<uint16_t>(i), 0x100, 1, kDescFlagNext,
                       static_cast<uint16_t>((i + 1) % kBig));
  }
  vq.PublishHead(kBig - 1);
  ExpectPopError(queue, mem.memory(), "longer than the queue size 32768 (or loops)");
  // The same table with an end is a legal chain of exactly 32768 buffers.
  vq.WriteDescriptor(kBig - 2, 0x100, 1, 0, 0);
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem.memory()));
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(chain->readable.size(), kBig);
  EXPECT_EQ(chain->readable_bytes, kBig);
}

TEST_F(VirtqueueTest, AvailableCountTracksPops) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  for (int i = 0; i < 5; ++i) vq_.AddChain({{kData, 8, true}});
  ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 5);
  ASSERT_TRUE(queue.Pop(mem()).ok());
  ASSERT_TRUE(queue.Pop(mem()).ok());
  ASSERT_OK_AND_ASSIGN(available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 3);
  queue.UndoPop();
  ASSERT_OK_AND_ASSIGN(available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 4);
}

TEST_F(VirtqueueTest, PopCopiesTheChainSoLaterDriverWritesDoNotChangeIt) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  const uint16_t head = vq_.AddChain({{kData, 8, false}, {kData + 0x100, 8, true}});
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  ASSERT_TRUE(chain.has_value());
  // A hostile driver rewrites the descriptor to point outside RAM.
  vq_.WriteDescriptor(head, 0xffff'ffff'0000ull, 0xffff, 0, 0);
  EXPECT_THAT(chain->readable, ElementsAre(IsBuffer(kData, 8u)));
  EXPECT_THAT(chain->writable, ElementsAre(IsBuffer(kData + 0x100, 8u)));
}

// ---- The test helpers other device tests rely on ----

TEST(FakeGuestMemoryTest, DescribesItsRegions) {
  FakeGuestMemory plain(0x3000, 0x100000);
  EXPECT_EQ(plain.base(), 0x100000u);
  EXPECT_EQ(plain.size(), 0x3000u);
  EXPECT_TRUE(plain.memory().Contains(0x100000, 0x3000));
  EXPECT_FALSE(plain.memory().Contains(0xfffff, 1));
  *plain.host(0x100010) = 0x42;
  ASSERT_OK_AND_ASSIGN(uint8_t byte, plain.memory().ReadObj<uint8_t>(0x100010));
  EXPECT_EQ(byte, 0x42);

  auto holed = FakeGuestMemory::WithRegions({{0x10000, 0x1000}, {0, 0x2000}});
  EXPECT_EQ(holed.base(), 0u);
  EXPECT_EQ(holed.size(), 0x3000u);
  EXPECT_FALSE(holed.memory().Contains(0x2000, 1));
  EXPECT_FALSE(holed.memory().Contains(0x1fff, 2));
  EXPECT_TRUE(holed.memory().Contains(0x10000, 0x1000));
}

TEST(FakeGuestMemoryTest, HostAlignmentMatchesGuestAlignment) {
  // A region at an odd page offset still maps naturally aligned fields to
  // naturally aligned host addresses, as real page-aligned RAM does.
  FakeGuestMemory mem(0x2000, 0x1234);
  for (uint64_t gpa : {0x1240ull, 0x2000ull, 0x3000ull}) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(mem.host(gpa)) % 4096, gpa % 4096);
  }
  FakeGuestMemory moved = std::move(mem);
  EXPECT_TRUE(moved.memory().Contains(0x1234, 0x2000));
  *moved.host(0x1234) = 1;
}

TEST(VirtqueueBuilderTest, LaysOutTheRingsAsTheSpecSays) {
  FakeGuestMemory mem(0x10000);
  VirtqueueBuilder vq(mem, 8, 0x2000);
  const QueueConfig config = vq.config();
  EXPECT_TRUE(config.ready);
  EXPECT_EQ(config.size, 8);
  EXPECT_EQ(config.desc_table, 0x2000u);
  EXPECT_EQ(config.avail_ring, 0x2000u + 16 * 8);
  // avail: 6 + 2*8 = 22 bytes, used starts at the next 4-byte boundary.
  EXPECT_EQ(config.used_ring, 0x2000u + 16 * 8 + 24);

  const uint16_t head = vq.AddChain({{0x8000, 0x10, false}, {0x9000, 0x20, true}});
  EXPECT_EQ(head, 0);
  ASSERT_OK_AND_ASSIGN(uint64_t addr, mem.memory().ReadObj<uint64_t>(0x2000));
  ASSERT_OK_AND_ASSIGN(uint16_t flags, mem.memory().ReadObj<uint16_t>(0x2000 + 12));
  ASSERT_OK_AND_ASSIGN(uint16_t next, mem.memory().ReadObj<uint16_t>(0x2000 + 14));
  ASSERT_OK_AND_ASSIGN(uint16_t flags1, mem.memory().ReadObj<uint16_t>(0x2010 + 12));
  EXPECT_EQ(addr, 0x8000u);
  EXPECT_EQ(flags, kDescFlagNext);
  EXPECT_EQ(next, 1);
  EXPECT_EQ(flags1, kDescFlagWrite);
  EXPECT_EQ(vq.avail_idx(), 1);
  ASSERT_OK_AND_ASSIGN(uint16_t ring0, mem.memory().ReadObj<uint16_t>(config.avail_ring + 4));
  EXPECT_EQ(ring0, head);

  // The next chain takes the next free slots.
  EXPECT_EQ(vq.AddChain({{0x8000, 1, true}}), 2);
  vq.SetUsedEvent(0x1234);
  ASSERT_OK_AND_ASSIGN(uint16_t used_event,
                       mem.memory().ReadObj<uint16_t>(config.avail_ring + 4 + 2 * 8));
  EXPECT_EQ(used_event, 0x1234);
  ASSERT_TRUE(mem.memory().WriteObj<uint16_t>(config.used_ring + 4 + 8 * 8, 0x4321).ok());
  EXPECT_EQ(vq.avail_event(), 0x4321);
}

// ---- UndoPop ----

TEST_F(VirtqueueTest, UndoPopHandsTheChainBack) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  const uint16_t a = vq_.AddChain({{kData, 8, true}});
  const uint16_t b = vq_.AddChain({{kData + 0x100, 8, true}});
  ASSERT_OK_AND_ASSIGN(auto first, queue.Pop(mem()));
  ASSERT_OK_AND_ASSIGN(auto second, queue.Pop(mem()));
  ASSERT_TRUE(first && second);
  EXPECT_EQ(second->head, b);
  queue.UndoPop();
  EXPECT_EQ(queue.next_avail(), 1);
  ASSERT_OK_AND_ASSIGN(auto again, queue.Pop(mem()));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->head, b);
  // Several in a row, newest first.
  queue.UndoPop();
  queue.UndoPop();
  ASSERT_OK_AND_ASSIGN(auto oldest, queue.Pop(mem()));
  ASSERT_TRUE(oldest.has_value());
  EXPECT_EQ(oldest->head, a);
  EXPECT_THAT(oldest->writable, ElementsAre(IsBuffer(kData, 8u)));
}

TEST_F(VirtqueueTest, UndoPopWithNothingPoppedDoesNothing) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  queue.UndoPop();
  EXPECT_EQ(queue.next_avail(), 0);
  vq_.AddChain({{kData, 8, true}});
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  ASSERT_TRUE(chain.has_value());
  queue.UndoPop();
  queue.UndoPop();  // only one was popped
  EXPECT_EQ(queue.next_avail(), 0);
  ASSERT_OK_AND_ASSIGN(uint16_t available, queue.AvailableCount(mem()));
  EXPECT_EQ(available, 1);
}

// ---- PushUsed ----

TEST_F(VirtqueueTest, PushUsedWritesTheElementThenTheIndex) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  ASSERT_TRUE(queue.PushUsed(mem(), 7, 1234).ok());
  ASSERT_TRUE(queue.PushUsed(mem(), 3, 0).ok());
  EXPECT_EQ(vq_.used_idx(), 2);
  EXPECT_EQ(queue.next_used(), 2);
  EXPECT_EQ(vq_.used(0).id, 7u);
  EXPECT_EQ(vq_.used(0).len, 1234u);
  EXPECT_EQ(vq_.used(1).id, 3u);
  EXPECT_EQ(vq_.used(1).len, 0u);
}

TEST_F(VirtqueueTest, PushUsedWrapsAroundTheRing) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  for (uint32_t i = 0; i < 3 * kSize + 5; ++i) {
    ASSERT_TRUE(queue.PushUsed(mem(), i % kSize, i).ok());
  }
  EXPECT_EQ(vq_.used_idx(), 3 * kSize + 5);
  // Slot 4 was last written by push number 3*16+4.
  EXPECT_EQ(vq_.used(4).len, 3u * kSize + 4);
  EXPECT_EQ(vq_.used(5).len, 2u * kSize + 5);
}

TEST_F(VirtqueueTest, PushUsedRefusesAHeadPastTheQueueSize) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  EXPECT_FALSE(queue.PushUsed(mem(), kSize, 0).ok());
  EXPECT_EQ(vq_.used_idx(), 0);
  EXPECT_EQ(queue.next_used(), 0);
}

TEST_F(VirtqueueTest, PopAndPushRunPastThe16BitIndexWrap) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  for (uint32_t i = 0; i < 0x10000 + 20; ++i) {
    const uint16_t head = vq_.AddChain({{kData + (i % 64), 4, true}});
    ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
    ASSERT_TRUE(chain.has_value()) << i;
    ASSERT_EQ(chain->head, head);
    ASSERT_TRUE(queue.PushUsed(mem(), chain->head, i).ok());
  }
  EXPECT_EQ(queue.next_avail(), 20);
  EXPECT_EQ(vq_.used_idx(), 20);
  EXPECT_EQ(vq_.used(19).len, 0x10000u + 19);
}

// ---- Notification suppression ----

TEST_F(VirtqueueTest, ShouldNotifyHonoursNoInterruptWithoutEventIdx) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  ASSERT_TRUE(queue.PushUsed(mem(), 0, 0).ok());
  ASSERT_OK_AND_ASSIGN(bool notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);
  vq_.SetAvailFlags(kAvailFlagNoInterrupt);
  ASSERT_TRUE(queue.PushUsed(mem(), 1, 0).ok());
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_FALSE(notify);
  // used_event is not consulted without EVENT_IDX.
  vq_.SetAvailFlags(0);
  vq_.SetUsedEvent(100);
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);
}

TEST_F(VirtqueueTest, ShouldNotifyFollowsUsedEventWithEventIdx) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.event_idx = true}));
  // The driver wants to hear once entry 0 is used (its initial state).
  vq_.SetUsedEvent(0);
  ASSERT_TRUE(queue.PushUsed(mem(), 0, 0).ok());
  ASSERT_OK_AND_ASSIGN(bool notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);
  // NO_INTERRUPT is ignored with EVENT_IDX.
  vq_.SetAvailFlags(kAvailFlagNoInterrupt);
  vq_.SetUsedEvent(3);  // wants to hear when entry 3 is used, i.e. idx 1 -> 4
  ASSERT_TRUE(queue.PushUsed(mem(), 1, 0).ok());
  ASSERT_TRUE(queue.PushUsed(mem(), 2, 0).ok());
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_FALSE(notify);  // batch 1..3 does not include entry 3
  ASSERT_TRUE(queue.PushUsed(mem(), 3, 0).ok());
  ASSERT_TRUE(queue.PushUsed(mem(), 4, 0).ok());
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);  // batch 3..5 includes entry 3
  // Nothing new since: no interrupt even though used_event is behind.
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_FALSE(notify);
  // The driver already saw entry 3; a later batch that does not reach the
  // new used_event stays quiet, one that does interrupts.
  vq_.SetUsedEvent(10);
  ASSERT_TRUE(queue.PushUsed(mem(), 5, 0).ok());
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_FALSE(notify);
  for (uint16_t i = 6; i < 11; ++i) ASSERT_TRUE(queue.PushUsed(mem(), i, 0).ok());
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);
}

TEST_F(VirtqueueTest, ShouldNotifyWithEventIdxAcrossThe16BitWrap) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.event_idx = true}));
  vq_.SetUsedEvent(0xfff0);  // far away: no interrupts on the way there
  for (uint32_t i = 0; i < 0xfffe; ++i) ASSERT_TRUE(queue.PushUsed(mem(), 0, 0).ok());
  ASSERT_OK_AND_ASSIGN(bool notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);  // the batch 0..0xfffe passed 0xfff0
  // Driver asks for entry 0x0002, after the wrap.
  vq_.SetUsedEvent(0x0002);
  ASSERT_TRUE(queue.PushUsed(mem(), 0, 0).ok());  // used idx 0xffff
  ASSERT_TRUE(queue.PushUsed(mem(), 0, 0).ok());  // used idx 0x0000
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_FALSE(notify);  // entries 0xfffe, 0xffff used: not yet 0x0002
  EXPECT_EQ(queue.next_used(), 0);
  ASSERT_TRUE(queue.PushUsed(mem(), 0, 0).ok());  // entry 0x0000
  ASSERT_TRUE(queue.PushUsed(mem(), 0, 0).ok());  // entry 0x0001
  ASSERT_TRUE(queue.PushUsed(mem(), 0, 0).ok());  // entry 0x0002
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_TRUE(notify);
  // A used_event just behind the batch start (0xffff, seen long ago) is
  // not re-triggered.
  vq_.SetUsedEvent(0x0002);
  ASSERT_TRUE(queue.PushUsed(mem(), 0, 0).ok());
  ASSERT_OK_AND_ASSIGN(notify, queue.ShouldNotify(mem()));
  EXPECT_FALSE(notify);
}

TEST_F(VirtqueueTest, SetNotificationWritesUsedFlagsWithoutEventIdx) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create());
  ASSERT_TRUE(queue.SetNotification(mem(), false).ok());
  EXPECT_EQ(vq_.used_flags(), kUsedFlagNoNotify);
  EXPECT_EQ(vq_.avail_event(), 0);
  ASSERT_TRUE(queue.SetNotification(mem(), true).ok());
  EXPECT_EQ(vq_.used_flags(), 0);
}

TEST_F(VirtqueueTest, SetNotificationWritesAvailEventWithEventIdx) {
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Create({.event_idx = true}));
  for (int i = 0; i < 3; ++i) vq_.AddChain({{kData, 8, true}});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.Pop(mem()).ok());
  ASSERT_TRUE(queue.SetNotification(mem(), true).ok());
  // Kick me when entry 3 (the next one I will pop) is made available.
  EXPECT_EQ(vq_.avail_event(), 3);
  EXPECT_EQ(vq_.used_flags(), 0);  // flags are not used with EVENT_IDX
  // Disabling leaves avail_event behind what the driver posts next.
  vq_.AddChain({{kData, 8, true}});
  ASSERT_TRUE(queue.Pop(mem()).ok());
  ASSERT_TRUE(queue.SetNotification(mem(), false).ok());
  EXPECT_EQ(vq_.avail_event(), 3);
  EXPECT_EQ(vq_.used_flags(), 0);
  ASSERT_TRUE(queue.SetNotification(mem(), true).ok());
  EXPECT_EQ(vq_.avail_event(), 4);
}

}  // namespace
}  // namespace skiff::virtio
