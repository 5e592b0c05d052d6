#include "devices/legacy/pl061.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/fake_irq_line.h"

namespace skiff {
namespace {

constexpr uint64_t kDir = 0x400;
constexpr uint64_t kIs = 0x404;
constexpr uint64_t kIbe = 0x408;
constexpr uint64_t kIev = 0x40c;
constexpr uint64_t kIe = 0x410;
constexpr uint64_t kRis = 0x414;
constexpr uint64_t kMis = 0x418;
constexpr uint64_t kIc = 0x41c;
constexpr uint64_t kAfsel = 0x420;

// GPIODATA's address for the lines in `mask` (bits [9:2] of the offset).
constexpr uint64_t DataAt(uint8_t mask) { return uint64_t{mask} << 2; }

class Pl061Test : public ::testing::Test {
 protected:
  // As Linux's gpio-pl061 does: readb/writeb.
  uint8_t Readb(uint64_t offset) {
    uint8_t b = 0xaa;
    gpio_.Read(offset, std::span<uint8_t>(&b, 1));
    return b;
  }
  void Writeb(uint64_t offset, uint8_t value) {
    gpio_.Write(offset, std::span<const uint8_t>(&value, 1));
  }
  uint32_t Readl(uint64_t offset) {
    uint8_t b[4] = {0xaa, 0xaa, 0xaa, 0xaa};
    gpio_.Read(offset, b);
    return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  }
  void Writel(uint64_t offset, uint32_t value) {
    uint8_t b[4] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8),
                    static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24)};
    gpio_.Write(offset, b);
  }
  // What the driver does for IRQ_TYPE_EDGE_RISING on `line`, then unmask.
  void EnableRisingEdge(uint32_t line) {
    const uint8_t bit = static_cast<uint8_t>(1u << line);
    Writeb(kIs, Readb(kIs) & ~bit);
    Writeb(kIbe, Readb(kIbe) & ~bit);
    Writeb(kIev, Readb(kIev) | bit);
    Writeb(kIe, Readb(kIe) | bit);
  }

  std::shared_ptr<FakeIrqLine> irq_ = std::make_shared<FakeIrqLine>();
  Pl061 gpio_{irq_};
};

TEST_F(Pl061Test, PrimeCellIdsIdentifyAPl061) {
  // What Linux's AMBA bus assembles (readl of each, low byte): periphid
  // 0x00041061, which gpio-pl061's table matches under mask 0x000fffff.
  uint32_t periph = 0, cell = 0;
  for (int i = 0; i < 4; ++i) {
    periph |= (Readl(0xfe0 + 4 * i) & 0xff) << (8 * i);
    cell |= (Readl(0xff0 + 4 * i) & 0xff) << (8 * i);
  }
  EXPECT_EQ(periph, 0x00041061u);
  EXPECT_EQ(cell, 0xb105f00du);
  // A whole-word read has the ID in the low byte only.
  EXPECT_EQ(Readl(0xfe0), 0x61u);
}

TEST_F(Pl061Test, ResetStateIsAllInputsNoInterrupts) {
  for (uint64_t reg : {kDir, kIs, kIbe, kIev, kIe, kRis, kMis, kAfsel}) {
    EXPECT_EQ(Readl(reg), 0u) << std::hex << reg;
  }
  EXPECT_EQ(Readb(DataAt(0xff)), 0);
  EXPECT_TRUE(irq_->levels().empty());
}

TEST_F(Pl061Test, DataReadsAreMaskedByAddressBits) {
  gpio_.SetInput(3, true);
  gpio_.SetInput(5, true);
  EXPECT_EQ(Readb(DataAt(0xff)), 0x28);
  EXPECT_EQ(Readb(DataAt(1u << 3)), 0x08);  // how the driver reads one line
  EXPECT_EQ(Readb(DataAt(1u << 5)), 0x20);
  EXPECT_EQ(Readb(DataAt(0x07)), 0x00);
  EXPECT_EQ(Readb(0x000), 0x00);  // mask 0: nothing
  gpio_.SetInput(3, false);
  EXPECT_EQ(Readb(DataAt(0xff)), 0x20);
}

TEST_F(Pl061Test, DataWritesChangeOnlyMaskedOutputLines) {
  Writeb(kDir, 0x0f);          // lines 0-3 out, 4-7 in
  Writeb(DataAt(0x03), 0xff);  // only lines 0 and 1 are in the mask
  EXPECT_EQ(Readb(DataAt(0xff)), 0x03);
  Writeb(DataAt(0xff), 0xf4);  // the input lines ignore it
  EXPECT_EQ(Readb(DataAt(0xff)), 0x04);
  // An input line shows what drives it, not the latch.
  gpio_.SetInput(6, true);
  EXPECT_EQ(Readb(DataAt(0xff)), 0x44);
  // An output line ignores the outside.
  gpio_.SetInput(0, true);
  EXPECT_EQ(Readb(DataAt(0x01)), 0x00);
}

TEST_F(Pl061Test, RisingEdgeRaisesTheLineUntilCleared) {
  EnableRisingEdge(3);
  EXPECT_FALSE(irq_->level());
  gpio_.SetInput(3, true);
  EXPECT_TRUE(irq_->level());
  EXPECT_EQ(Readb(kRis), 0x08);
  EXPECT_EQ(Readb(kMis), 0x08);
  // The edge stays latched after the line falls again (a short press).
  gpio_.SetInput(3, false);
  EXPECT_TRUE(irq_->level());
  EXPECT_EQ(Readb(kMis), 0x08);
  Writeb(kIc, 0x08);
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(Readb(kRis), 0x00);
  EXPECT_EQ(irq_->levels(), (std::vector<bool>{true, false}));
}

TEST_F(Pl061Test, FallingEdgeDoesNotTriggerARisingEdgeLine) {
  gpio_.SetInput(3, true);
  EnableRisingEdge(3);
  gpio_.SetInput(3, false);
  EXPECT_EQ(Readb(kRis), 0x00);
  EXPECT_FALSE(irq_->level());
}

TEST_F(Pl061Test, FallingAndBothEdgeSenses) {
  Writeb(kIe, 0x03);
  Writeb(kIbe, 0x02);  // line 1: both edges; line 0: falling (IEV 0)
  gpio_.SetInput(0, true);
  gpio_.SetInput(1, true);
  EXPECT_EQ(Readb(kRis), 0x02);
  Writeb(kIc, 0x02);
  gpio_.SetInput(0, false);
  gpio_.SetInput(1, false);
  EXPECT_EQ(Readb(kRis), 0x03);
}

TEST_F(Pl061Test, MaskedEdgeIsLatchedAndFiresWhenUnmasked) {
  Writeb(kIev, 0x08);
  gpio_.SetInput(3, true);
  EXPECT_EQ(Readb(kRis), 0x08);
  EXPECT_EQ(Readb(kMis), 0x00);
  EXPECT_FALSE(irq_->level());
  Writeb(kIe, 0x08);
  EXPECT_TRUE(irq_->level());
  Writeb(kIe, 0x00);  // masking lowers the output, the status stays
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(Readb(kRis), 0x08);
}

TEST_F(Pl061Test, ClearOnlyTouchesTheBitsWritten) {
  Writeb(kIev, 0xff);
  Writeb(kIe, 0xff);
  gpio_.SetInput(2, true);
  gpio_.SetInput(3, true);
  Writeb(kIc, 0x04);
  EXPECT_EQ(Readb(kRis), 0x08);
  EXPECT_TRUE(irq_->level());
  Writeb(kIc, 0x00);
  EXPECT_EQ(Readb(kRis), 0x08);
}

TEST_F(Pl061Test, LevelInterruptFollowsThePin) {
  Writeb(kIs, 0x08);
  Writeb(kIev, 0x08);  // high level
  Writeb(kIe, 0x08);
  EXPECT_FALSE(irq_->level());
  gpio_.SetInput(3, true);
  EXPECT_TRUE(irq_->level());
  Writeb(kIc, 0x08);  // clearing does not end a level
  EXPECT_TRUE(irq_->level());
  gpio_.SetInput(3, false);
  EXPECT_FALSE(irq_->level());
  Writeb(kIev, 0x00);  // low level: the low pin is pending now
  EXPECT_TRUE(irq_->level());
  EXPECT_EQ(Readb(kMis), 0x08);
}

TEST_F(Pl061Test, OutputWritesCanTriggerEdges) {
  Writeb(kDir, 0x01);
  Writeb(kIev, 0x01);
  Writeb(kIe, 0x01);
  Writeb(DataAt(0x01), 0x01);
  EXPECT_TRUE(irq_->level());
}

TEST_F(Pl061Test, ConfigurationRegistersReadBack) {
  Writel(kDir, 0xffffff5a);  // 8-bit registers: the upper bits are dropped
  Writeb(kIs, 0x11);
  Writeb(kIbe, 0x22);
  Writeb(kIev, 0x33);
  Writeb(kAfsel, 0x44);
  EXPECT_EQ(Readl(kDir), 0x5au);
  EXPECT_EQ(Readb(kIs), 0x11);
  EXPECT_EQ(Readb(kIbe), 0x22);
  EXPECT_EQ(Readb(kIev), 0x33);
  EXPECT_EQ(Readb(kAfsel), 0x44);
}

TEST_F(Pl061Test, ReadOnlyRegistersIgnoreWrites) {
  Writeb(kRis, 0xff);
  Writeb(kMis, 0xff);
  Writeb(0xfe0, 0x00);
  EXPECT_EQ(Readb(kRis), 0x00);
  EXPECT_EQ(Readb(kMis), 0x00);
  EXPECT_EQ(Readb(0xfe0), 0x61);
  EXPECT_EQ(Readb(kIc), 0x00);  // write-only
  EXPECT_FALSE(irq_->level());
}

TEST_F(Pl061Test, OddAccessesReadZeroAndChangeNothing) {
  Writeb(kIev, 0x08);
  // Upper byte lanes of a register word.
  EXPECT_EQ(Readb(kIev + 1), 0x00);
  Writeb(kIev + 1, 0xff);
  Writeb(kIe + 1, 0xff);
  EXPECT_EQ(Readb(kIev), 0x08);
  EXPECT_EQ(Readb(kIe), 0x00);
  uint8_t two[2] = {0xff, 0xff};
  gpio_.Write(kIe + 2, two);  // halfword in the upper half
  EXPECT_EQ(Readb(kIe), 0x00);
  // Straddling two words, 3 and 8 bytes, empty, unassigned, out of range.
  uint8_t b[8];
  for (size_t size : {size_t{3}, size_t{8}}) {
    std::fill(b, b + 8, 0xaa);
    gpio_.Read(kIev, std::span<uint8_t>(b, size));
    for (size_t i = 0; i < size; ++i) EXPECT_EQ(b[i], 0) << size;
    gpio_.Write(kIe, std::span<const uint8_t>(b, size));
  }
  std::fill(b, b + 8, 0xaa);
  gpio_.Read(kIev + 2, std::span<uint8_t>(b, 4));
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(b[i], 0);
  gpio_.Read(kIev, std::span<uint8_t>());
  gpio_.Write(kIev, std::span<const uint8_t>());
  EXPECT_EQ(Readb(0x424), 0x00);
  Writeb(0x424, 0xff);
  EXPECT_EQ(Readb(Pl061::kRegisterSize), 0x00);
  Writeb(Pl061::kRegisterSize, 0xff);
  Writeb(~uint64_t{0}, 0xff);
  EXPECT_EQ(Readb(~uint64_t{0}), 0x00);
  EXPECT_EQ(Readb(kIe), 0x00);
  EXPECT_EQ(Readb(kIev), 0x08);
  EXPECT_FALSE(irq_->level());
}

TEST_F(Pl061Test, EveryOffsetAndSizeIsSafe) {
  // A hostile guest: every offset of the page, every access size, both
  // ways, interleaved with presses. Nothing may crash; the IDs stay.
  uint8_t b[8];
  for (uint64_t offset = 0; offset < Pl061::kRegisterSize + 8; ++offset) {
    for (size_t size = 1; size <= 8; ++size) {
      std::fill(b, b + 8, static_cast<uint8_t>(offset));
      gpio_.Write(offset, std::span<const uint8_t>(b, size));
      gpio_.Read(offset, std::span<uint8_t>(b, size));
    }
    gpio_.SetInput(static_cast<uint32_t>(offset % 10), offset % 3 == 0);
  }
  EXPECT_EQ(Readb(0xffc), 0xb1);
}

TEST_F(Pl061Test, InputLinesBeyondEightAreIgnored) {
  Writeb(kIev, 0xff);
  Writeb(kIe, 0xff);
  gpio_.SetInput(8, true);
  gpio_.SetInput(~uint32_t{0}, true);
  EXPECT_EQ(Readb(DataAt(0xff)), 0x00);
  EXPECT_FALSE(irq_->level());
}

TEST_F(Pl061Test, TheInterruptChangesOnlyOnTransitions) {
  EnableRisingEdge(3);
  EnableRisingEdge(4);
  gpio_.SetInput(3, true);
  gpio_.SetInput(4, true);  // already high: no second SetLevel
  Writeb(kIc, 0x08);        // line 4 still pending
  Writeb(kIc, 0x10);
  EXPECT_EQ(irq_->levels(), (std::vector<bool>{true, false}));
}

}  // namespace
}  // namespace skiff
