// ChainReader and ChainWriter: byte streams over a chain's buffers that
// never consume part of a request they cannot complete.
#include <array>
#include <cstring>
#include <numeric>
#include <vector>

#include "devices/virtio/queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/virtqueue_builder.h"
#include "tests/unit/virtqueue_test_util.h"

namespace skiff::virtio {
namespace {

using ::skiff::virtio::testing::VirtqueueBuilder;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

constexpr uint64_t kRamSize = 0x10000;

class ChainIoTest : public ::testing::Test {
 protected:
  ChainIoTest() {
    // Guest RAM byte at gpa g holds g & 0xff, so reads show where they came from.
    for (uint64_t gpa = 0; gpa < kRamSize; ++gpa) *mem_.host(gpa) = gpa & 0xff;
    // Readable: 3 bytes at 0x100, an empty buffer, 5 at 0x200, 8 at 0x300.
    chain_.readable = {{0x100, 3}, {0x180, 0}, {0x200, 5}, {0x300, 8}};
    chain_.readable_bytes = 16;
    // Writable: 2 bytes at 0x1000, 6 at 0x2000.
    chain_.writable = {{0x1000, 2}, {0x2000, 6}};
    chain_.writable_bytes = 8;
  }
  const GuestMemory& mem() const { return mem_.memory(); }
  std::vector<uint8_t> Bytes(uint64_t gpa, size_t n) {
    return std::vector<uint8_t>(mem_.host(gpa), mem_.host(gpa) + n);
  }

  FakeGuestMemory mem_{kRamSize};
  DescriptorChain chain_;
};

TEST_F(ChainIoTest, ReaderCopiesAcrossBufferBoundaries) {
  ChainReader reader(mem(), chain_);
  EXPECT_EQ(reader.remaining(), 16u);
  std::vector<uint8_t> out(4);
  ASSERT_TRUE(reader.Read(out).ok());
  EXPECT_THAT(out, ElementsAre(0x00, 0x01, 0x02, 0x00));  // 0x100..0x102, then 0x200
  EXPECT_EQ(reader.remaining(), 12u);
  ASSERT_OK_AND_ASSIGN(uint32_t word, reader.ReadObj<uint32_t>());
  EXPECT_EQ(word, 0x04030201u);  // 0x201..0x204, little-endian
  std::vector<uint8_t> rest(8);
  ASSERT_TRUE(reader.Read(rest).ok());
  EXPECT_THAT(rest, ElementsAre(0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07));
  EXPECT_EQ(reader.remaining(), 0u);
  EXPECT_TRUE(reader.Read(std::span<uint8_t>()).ok());  // empty read at the end is fine
}

TEST_F(ChainIoTest, ReaderFailsWithoutConsumingWhenTooShort) {
  ChainReader reader(mem(), chain_);
  ASSERT_TRUE(reader.Skip(2).ok());
  std::vector<uint8_t> too_much(15, 0xee);
  EXPECT_FALSE(reader.Read(too_much).ok());
  EXPECT_THAT(too_much, ::testing::Each(0xee));
  EXPECT_EQ(reader.remaining(), 14u);
  using Fifteen = std::array<uint8_t, 15>;
  EXPECT_FALSE(reader.ReadObj<Fifteen>().ok());
  EXPECT_FALSE(reader.Skip(15).ok());
  EXPECT_EQ(reader.remaining(), 14u);
  // The position is where it was: the next byte is 0x102.
  ASSERT_OK_AND_ASSIGN(uint8_t next, reader.ReadObj<uint8_t>());
  EXPECT_EQ(next, 0x02);
}

TEST_F(ChainIoTest, ReaderSkipsAcrossBuffers) {
  ChainReader reader(mem(), chain_);
  ASSERT_TRUE(reader.Skip(3).ok());  // exactly the first buffer
  ASSERT_OK_AND_ASSIGN(uint8_t first, reader.ReadObj<uint8_t>());
  EXPECT_EQ(first, 0x00);            // 0x200
  ASSERT_TRUE(reader.Skip(6).ok());  // rest of 0x200 buffer + 2 of 0x300
  ASSERT_OK_AND_ASSIGN(uint8_t later, reader.ReadObj<uint8_t>());
  EXPECT_EQ(later, 0x02);  // 0x302
  EXPECT_EQ(reader.remaining(), 5u);
}

TEST_F(ChainIoTest, ReaderRemainingSpansStartAtTheCursorAndConsumeNothing) {
  ChainReader reader(mem(), chain_);
  ASSERT_TRUE(reader.Skip(4).ok());  // into the 0x200 buffer by one byte
  ASSERT_OK_AND_ASSIGN(auto spans, reader.RemainingSpans(100));
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].data(), mem_.host(0x201));
  EXPECT_EQ(spans[0].size(), 4u);
  EXPECT_EQ(spans[1].data(), mem_.host(0x300));
  EXPECT_EQ(spans[1].size(), 8u);
  ASSERT_OK_AND_ASSIGN(auto capped, reader.RemainingSpans(6));
  ASSERT_EQ(capped.size(), 2u);
  EXPECT_EQ(capped[1].size(), 2u);
  ASSERT_OK_AND_ASSIGN(auto none, reader.RemainingSpans(0));
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(reader.remaining(), 12u);
}

TEST_F(ChainIoTest, WriterCopiesAcrossBufferBoundaries) {
  ChainWriter writer(mem(), chain_);
  EXPECT_EQ(writer.remaining(), 8u);
  const std::vector<uint8_t> data = {0xa0, 0xa1, 0xa2};
  ASSERT_TRUE(writer.Write(data).ok());
  EXPECT_THAT(Bytes(0x1000, 3), ElementsAre(0xa0, 0xa1, 0x02));  // third byte untouched
  EXPECT_THAT(Bytes(0x2000, 2), ElementsAre(0xa2, 0x01));
  ASSERT_TRUE(writer.WriteObj<uint32_t>(0xd3d2d1d0).ok());
  EXPECT_THAT(Bytes(0x2001, 4), ElementsAre(0xd0, 0xd1, 0xd2, 0xd3));
  EXPECT_EQ(writer.written(), 7u);
  EXPECT_EQ(writer.remaining(), 1u);
}

TEST_F(ChainIoTest, WriterFailsWithoutWritingWhenTooShort) {
  ChainWriter writer(mem(), chain_);
  ASSERT_TRUE(writer.Skip(1).ok());
  const std::vector<uint8_t> too_much(8, 0xff);
  EXPECT_FALSE(writer.Write(too_much).ok());
  EXPECT_THAT(Bytes(0x1000, 2), ElementsAre(0x00, 0x01));
  EXPECT_THAT(Bytes(0x2000, 6), ElementsAre(0x00, 0x01, 0x02, 0x03, 0x04, 0x05));
  EXPECT_EQ(writer.written(), 1u);
  EXPECT_EQ(writer.remaining(), 7u);
  EXPECT_FALSE(writer.Skip(8).ok());
  EXPECT_EQ(writer.written(), 1u);
}

TEST_F(ChainIoTest, WriterSpansThenSkipCountAsWritten) {
  ChainWriter writer(mem(), chain_);
  ASSERT_TRUE(writer.WriteObj<uint8_t>(0x11).ok());
  ASSERT_OK_AND_ASSIGN(auto spans, writer.RemainingSpans(5));
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].data(), mem_.host(0x1001));
  EXPECT_EQ(spans[0].size(), 1u);
  EXPECT_EQ(spans[1].data(), mem_.host(0x2000));
  EXPECT_EQ(spans[1].size(), 4u);
  EXPECT_EQ(writer.written(), 1u);  // spans alone consume nothing
  for (auto span : spans) std::memset(span.data(), 0x77, span.size());
  ASSERT_TRUE(writer.Skip(5).ok());
  EXPECT_EQ(writer.written(), 6u);
  ASSERT_TRUE(writer.WriteObj<uint16_t>(0x9988).ok());
  EXPECT_THAT(Bytes(0x2000, 6), ElementsAre(0x77, 0x77, 0x77, 0x77, 0x88, 0x99));
  EXPECT_EQ(writer.remaining(), 0u);
  EXPECT_FALSE(writer.WriteObj<uint8_t>(0).ok());
}

TEST_F(ChainIoTest, EmptyDirectionsHaveNothingToGive) {
  DescriptorChain empty;
  ChainReader reader(mem(), empty);
  ChainWriter writer(mem(), empty);
  EXPECT_EQ(reader.remaining(), 0u);
  EXPECT_FALSE(reader.ReadObj<uint8_t>().ok());
  EXPECT_FALSE(writer.WriteObj<uint8_t>(0).ok());
  ASSERT_OK_AND_ASSIGN(auto spans, writer.RemainingSpans(10));
  EXPECT_TRUE(spans.empty());
}

TEST_F(ChainIoTest, WrittenSaturatesInsteadOfWrapping) {
  // Only a hand-built chain can exceed 4 GiB; Skip touches no memory.
  DescriptorChain huge;
  huge.writable = {{0, 0xffff0000}, {0, 0xffff0000}};
  ChainWriter writer(mem(), huge);
  EXPECT_EQ(writer.remaining(), 0x1'fffe'0000ull);
  ASSERT_TRUE(writer.Skip(0x1'0000'0000ull).ok());
  EXPECT_EQ(writer.written(), UINT32_MAX);
  EXPECT_EQ(writer.remaining(), 0xfffe'0000ull);
}

TEST_F(ChainIoTest, WorksOnAChainPoppedFromAQueue) {
  // A block-style request: 16-byte header, 512 data bytes split over two
  // buffers, 1 status byte.
  VirtqueueBuilder vq(mem_, 8, 0x8000);
  vq.AddChain({{0x100, 16, false}, {0x4000, 256, true}, {0x5000, 256, true}, {0x6000, 1, true}});
  ASSERT_OK_AND_ASSIGN(Virtqueue queue, Virtqueue::Create(vq.config(), 8, {}, mem()));
  ASSERT_OK_AND_ASSIGN(auto chain, queue.Pop(mem()));
  ASSERT_TRUE(chain.has_value());
  ChainReader reader(mem(), *chain);
  std::array<uint8_t, 16> header;
  ASSERT_TRUE(reader.Read(header).ok());
  EXPECT_EQ(header[15], 0x0f);
  ChainWriter writer(mem(), *chain);
  std::vector<uint8_t> sector(512);
  std::iota(sector.begin(), sector.end(), 0);
  ASSERT_TRUE(writer.Write(sector).ok());
  ASSERT_TRUE(writer.WriteObj<uint8_t>(0).ok());
  EXPECT_EQ(*mem_.host(0x4000 + 255), 255);
  EXPECT_EQ(*mem_.host(0x5000), 0);  // byte 256 of the sector wraps to 0
  EXPECT_EQ(*mem_.host(0x5001), 1);
  ASSERT_TRUE(queue.PushUsed(mem(), chain->head, writer.written()).ok());
  EXPECT_EQ(vq.used(0).len, 513u);
}

}  // namespace
}  // namespace skiff::virtio
