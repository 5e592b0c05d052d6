#include "devices/pci/pci_config_space.h"

#include <vector>

#include "gtest/gtest.h"

namespace skiff::pci {
namespace {

PciIds TestIds() {
  return PciIds{.vendor_id = 0x1af4,
                .device_id = 0x1042,
                .revision_id = 1,
                .class_code = 0x010000,
                .subsystem_vendor_id = 0x1af4,
                .subsystem_id = 0x40,
                .interrupt_pin = kInterruptPinA};
}

TEST(PciConfigSpaceTest, HeaderFieldsAreReadOnly) {
  PciConfigSpace config(TestIds());
  EXPECT_EQ(config.Read(kVendorId, 4), 0x10421af4u);
  EXPECT_EQ(config.Read(kRevisionId, 4), 0x01000001u);  // class 01 00 00, rev 1
  EXPECT_EQ(config.Read(kSubsystemVendorId, 4), 0x00401af4u);
  EXPECT_EQ(config.Read(kHeaderType, 1), 0u);
  EXPECT_EQ(config.Read(kInterruptPin, 1), kInterruptPinA);
  for (uint32_t offset :
       {kVendorId, kRevisionId, kSubsystemVendorId, kExpansionRom, kCapabilitiesPointer}) {
    const uint32_t before = config.Read(offset, 4);
    config.Write(offset, 4, 0xa5a5a5a5);
    EXPECT_EQ(config.Read(offset, 4), before) << "offset 0x" << std::hex << offset;
  }
  config.Write(kHeaderType, 1, 0x80);
  EXPECT_EQ(config.Read(kHeaderType, 1), 0u);
  EXPECT_EQ(config.Read(kExpansionRom, 4), 0u);  // no ROM: sizing reads zero
  config.Write(kInterruptPin, 1, 4);
  EXPECT_EQ(config.Read(kInterruptPin, 1), kInterruptPinA);
  config.Write(kInterruptLine, 1, 11);  // scratch byte for the OS
  EXPECT_EQ(config.Read(kInterruptLine, 1), 11u);
}

TEST(PciConfigSpaceTest, OnlyMeaningfulCommandBitsAreWritableAndStatusIsReadOnly) {
  PciConfigSpace config(TestIds());
  config.Write(kCommand, 2, 0xffff);
  EXPECT_EQ(config.command(), kCommandWritable);
  EXPECT_EQ(config.Read(kCommand, 2), 0x0547u);
  config.Write(kStatus, 2, 0xffff);
  EXPECT_EQ(config.Read(kStatus, 2), 0u);
  config.Write(kCommand, 4, 0x00000002);  // dword write covering status too
  EXPECT_EQ(config.Read(kCommand, 4), 0x00000002u);
  config.Write(kCommand + 1, 1, 0x04);  // INTx disable through a byte write
  EXPECT_EQ(config.command(), kCommandMemory | kCommandIntxDisable);
}

TEST(PciConfigSpaceTest, Memory32BarSizingAndRelocation) {
  PciConfigSpace config(TestIds());
  ASSERT_TRUE(config.AddBar(0, {BarType::kMemory32, 0x1000, false}).ok());
  EXPECT_EQ(config.Read(kBar0, 4), 0u);
  config.Write(kBar0, 4, 0xffffffff);
  EXPECT_EQ(config.Read(kBar0, 4), 0xfffff000u);
  EXPECT_TRUE(config.GetBar(0)->sizing);
  config.Write(kBar0, 4, 0xc0001234);  // low bits below the size are dropped
  EXPECT_EQ(config.Read(kBar0, 4), 0xc0001000u);
  auto bar = config.GetBar(0);
  ASSERT_TRUE(bar.has_value());
  EXPECT_FALSE(bar->sizing);
  EXPECT_EQ(bar->address, 0xc0001000u);
  EXPECT_EQ(bar->size, 0x1000u);
  EXPECT_EQ(bar->type, BarType::kMemory32);
  // A byte write merges into the register.
  config.Write(kBar0 + 3, 1, 0xd0);
  EXPECT_EQ(config.GetBar(0)->address, 0xd0001000u);
  // Unused BARs read zero and stay zero.
  for (int i = 1; i < kNumBars; ++i) {
    config.Write(kBar0 + 4 * i, 4, 0xffffffff);
    EXPECT_EQ(config.Read(kBar0 + 4 * i, 4), 0u);
    EXPECT_FALSE(config.GetBar(i).has_value());
  }
}

TEST(PciConfigSpaceTest, Memory64BarSizingKeepsTypeBits) {
  PciConfigSpace config(TestIds());
  ASSERT_TRUE(config.AddBar(2, {BarType::kMemory64, 0x4000, true}).ok());
  EXPECT_EQ(config.Read(kBar0 + 8, 4), 0xcu);  // 64-bit, prefetchable
  config.Write(kBar0 + 8, 4, 0xffffffff);
  EXPECT_EQ(config.Read(kBar0 + 8, 4), 0xffffc00cu);
  config.Write(kBar0 + 12, 4, 0xffffffff);
  EXPECT_EQ(config.Read(kBar0 + 12, 4), 0xffffffffu);
  config.Write(kBar0 + 8, 4, 0x80000000);
  EXPECT_TRUE(config.GetBar(2)->sizing);  // the high half still holds all-ones
  config.Write(kBar0 + 12, 4, 0x10);
  auto bar = config.GetBar(2);
  ASSERT_TRUE(bar.has_value());
  EXPECT_FALSE(bar->sizing);
  EXPECT_EQ(bar->address, 0x1080000000u);
  EXPECT_TRUE(bar->prefetchable);
  EXPECT_FALSE(config.GetBar(3).has_value());  // the upper half is no BAR

  // A BAR larger than 4 GiB: no writable bits in the low dword.
  PciConfigSpace big(TestIds());
  ASSERT_TRUE(big.AddBar(0, {BarType::kMemory64, uint64_t{8} << 30, false}).ok());
  big.Write(kBar0, 4, 0xffffffff);
  big.Write(kBar0 + 4, 4, 0xffffffff);
  EXPECT_EQ(big.Read(kBar0, 4), 0x4u);
  EXPECT_EQ(big.Read(kBar0 + 4, 4), 0xfffffffeu);
}

TEST(PciConfigSpaceTest, IoBarSizing) {
  PciConfigSpace config(TestIds());
  ASSERT_TRUE(config.AddBar(5, {BarType::kIo, 0x20, false}).ok());
  EXPECT_EQ(config.Read(kBar0 + 20, 4), 0x1u);
  config.Write(kBar0 + 20, 4, 0xffffffff);
  EXPECT_EQ(config.Read(kBar0 + 20, 4), 0xffffffe1u);
  config.Write(kBar0 + 20, 2, 0x1040);
  EXPECT_EQ(config.GetBar(5)->address & 0xffff, 0x1040u);
  EXPECT_EQ(config.GetBar(5)->type, BarType::kIo);
}

TEST(PciConfigSpaceTest, RejectsBadBars) {
  PciConfigSpace config(TestIds());
  EXPECT_FALSE(config.AddBar(0, {BarType::kMemory32, 0x1800, false}).ok());  // not 2^n
  EXPECT_FALSE(config.AddBar(0, {BarType::kMemory32, 8, false}).ok());       // too small
  EXPECT_FALSE(config.AddBar(0, {BarType::kMemory32, uint64_t{1} << 32, false}).ok());
  EXPECT_FALSE(config.AddBar(0, {BarType::kIo, 512, false}).ok());
  EXPECT_FALSE(config.AddBar(0, {BarType::kIo, 16, true}).ok());
  EXPECT_FALSE(config.AddBar(5, {BarType::kMemory64, 0x1000, false}).ok());
  EXPECT_FALSE(config.AddBar(6, {BarType::kMemory32, 0x1000, false}).ok());
  EXPECT_FALSE(config.AddBar(-1, {BarType::kMemory32, 0x1000, false}).ok());
  ASSERT_TRUE(config.AddBar(1, {BarType::kMemory64, 0x1000, false}).ok());
  EXPECT_FALSE(config.AddBar(2, {BarType::kMemory32, 0x1000, false}).ok());  // upper half
  EXPECT_FALSE(config.AddBar(0, {BarType::kMemory64, 0x1000, false}).ok());  // overlaps 1
  EXPECT_TRUE(config.AddBar(0, {BarType::kMemory32, 0x1000, false}).ok());
}

TEST(PciConfigSpaceTest, CapabilityListWalk) {
  PciConfigSpace config(TestIds());
  EXPECT_EQ(config.Read(kStatus, 2) & kStatusCapList, 0u);
  const uint8_t a[] = {1, 2};
  const uint8_t b[] = {3, 4, 5, 6, 7};
  const uint8_t b_writable[] = {0, 0xff, 0, 0, 0x0f};
  const uint8_t c[] = {9};
  ASSERT_TRUE(config.AddCapability(0x05, a).ok());
  ASSERT_TRUE(config.AddCapability(0x09, b, b_writable).ok());
  ASSERT_TRUE(config.AddCapability(0x11, c).ok());
  EXPECT_NE(config.Read(kStatus, 2) & kStatusCapList, 0u);

  std::vector<uint32_t> ids, offsets;
  uint32_t offset = config.Read(kCapabilitiesPointer, 1);
  for (int guard = 0; offset != 0 && guard < 48; ++guard) {
    EXPECT_EQ(offset % 4, 0u);
    EXPECT_GE(offset, kHeaderEnd);
    offsets.push_back(offset);
    ids.push_back(config.Read(offset, 1));
    offset = config.Read(offset + 1, 1);
  }
  EXPECT_EQ(ids, (std::vector<uint32_t>{0x05, 0x09, 0x11}));
  ASSERT_EQ(offsets.size(), 3u);
  EXPECT_EQ(offsets[0], 0x40u);
  EXPECT_EQ(config.Read(offsets[1] + 2, 1), 3u);
  // Only the masked bits of a capability change.
  config.Write(offsets[1] + 2, 2, 0xffff);
  EXPECT_EQ(config.Read(offsets[1] + 2, 2), 0xff03u);
  config.Write(offsets[1] + 4, 4, 0xffffffff);
  EXPECT_EQ(config.Read(offsets[1] + 4, 4), 0x000f0605u);
  config.Write(offsets[1] + 1, 1, 0x00);  // next pointer is read-only
  EXPECT_EQ(config.Read(offsets[1] + 1, 1), offsets[2]);

  const std::vector<uint8_t> huge(250, 0);
  EXPECT_FALSE(config.AddCapability(0x09, huge).ok());
  const uint8_t short_mask[] = {0};
  EXPECT_FALSE(config.AddCapability(0x09, b, short_mask).ok());
}

TEST(PciConfigSpaceTest, InvalidAccessesReadAllOnesAndAreIgnored) {
  PciConfigSpace config(TestIds());
  EXPECT_EQ(config.Read(kVendorId, 3), 0xffffffu);
  EXPECT_EQ(config.Read(kVendorId + 2, 4), 0xffffffffu);  // crosses a dword
  EXPECT_EQ(config.Read(kVendorId + 3, 2), 0xffffu);
  EXPECT_EQ(config.Read(kConfigSpaceSize, 1), 0xffu);
  EXPECT_EQ(config.Read(0xffffffff, 4), 0xffffffffu);
  config.Write(kCommand + 1, 4, 0xffffffff);
  config.Write(kCommand, 8, 0xffffffff);
  config.Write(kCommand - 1, 2, 0xffff);  // crosses into the command register
  EXPECT_EQ(config.command(), 0u);
  EXPECT_EQ(config.Read(0x100, 4), 0u);  // no extended capabilities
  EXPECT_EQ(config.Read(0xffc, 4), 0u);
  // Raw writes obey the same bounds and never reach BARs.
  ASSERT_TRUE(config.AddBar(0, {BarType::kMemory32, 0x1000, false}).ok());
  config.SetRaw(kBar0, 4, 0x12345678);
  EXPECT_EQ(config.Read(kBar0, 4), 0u);
  config.SetRaw(kStatus, 2, kStatusInterrupt);
  EXPECT_EQ(config.Read(kStatus, 2), kStatusInterrupt);
}

}  // namespace
}  // namespace skiff::pci
