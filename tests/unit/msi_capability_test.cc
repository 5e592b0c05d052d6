// The emulated MSI capability of a passed-through function (PCI 3.0
// §6.8.1): both register layouts, Multiple Message Enable, per-vector
// masking, and the exact sequence Linux (6.1) uses to set MSI up, change
// the message while enabled and take it down again.
#include "devices/vfio/msi_capability.h"

#include <cstdint>
#include <memory>

#include "gtest/gtest.h"
#include "tests/unit/pci_test_fakes.h"

namespace skiff::vfio {
namespace {

constexpr uint16_t k64Bit = 1 << 7;
constexpr uint16_t kPerVectorMask = 1 << 8;
constexpr uint16_t kEnable = 1 << 0;

class MsiCapabilityTest : public ::testing::Test {
 protected:
  void Build(uint16_t control) {
    auto cap = MsiCapability::Create(control, allocator_, /*devid=*/0x08);
    ASSERT_TRUE(cap.ok()) << cap.status();
    cap_ = *std::move(cap);
  }
  // One guest access of `size` bytes at `offset`, as the device applies it.
  void Write(uint32_t offset, uint32_t size, uint32_t value) {
    for (uint32_t i = 0; i < size; ++i) {
      cap_->WriteByte(offset + i, static_cast<uint8_t>(value >> (8 * i)));
    }
    cap_->Commit();
  }
  uint32_t Read(uint32_t offset, uint32_t size) {
    uint32_t value = 0;
    for (uint32_t i = 0; i < size; ++i) value |= uint32_t{cap_->ReadByte(offset + i)} << (8 * i);
    return value;
  }
  FakeMsiState& Vector(uint32_t i) { return *allocator_.states[i]; }

  FakeMsiAllocator allocator_;
  std::unique_ptr<MsiCapability> cap_;
};

TEST_F(MsiCapabilityTest, LengthFollowsTheLayout) {
  Build(0);
  EXPECT_EQ(cap_->length(), 0x0au);
  Build(k64Bit);
  EXPECT_EQ(cap_->length(), 0x0eu);
  Build(kPerVectorMask);
  EXPECT_EQ(cap_->length(), 0x14u);
  Build(k64Bit | kPerVectorMask);
  EXPECT_EQ(cap_->length(), 0x18u);
}

// Linux's msi_capability_init + __pci_write_msi_msg for a 64-bit function
// without masking (QEMU's e1000e): disable, Multiple Message Enable,
// address low, address high, data, enable; then request_irq rewrites the
// message while MSI is on. Nothing is delivered until the enable, and each
// change after it reaches the route at once.
TEST_F(MsiCapabilityTest, LinuxSequenceOn64BitFunction) {
  Build(k64Bit);
  ASSERT_EQ(allocator_.states.size(), 1u);
  Write(2, 2, k64Bit);      // pci_msi_set_enable(0)
  Write(2, 2, k64Bit);      // QSIZE = 0
  Write(4, 4, 0xfee00000);  // address low
  Write(8, 4, 0);           // address high
  Write(0x0c, 2, 0x0022);   // data
  EXPECT_FALSE(cap_->enabled());
  EXPECT_EQ(cap_->IrqFd(0), -1);
  EXPECT_TRUE(Vector(0).message_log().empty());  // no route while disabled
  Write(2, 2, k64Bit | kEnable);                 // pci_msi_set_enable(1)
  EXPECT_TRUE(cap_->enabled());
  EXPECT_EQ(cap_->enabled_vectors(), 1u);
  EXPECT_GE(cap_->IrqFd(0), 0);
  ASSERT_FALSE(Vector(0).message_log().empty());
  EXPECT_EQ(Vector(0).message_log().back(),
            (FakeMsiState::Message{0xfee00000, 0x22, uint32_t{0x08}}));
  // request_irq: a new vector on another CPU, written while enabled.
  Write(2, 2, k64Bit | kEnable);
  Write(4, 4, 0xfee01000);
  Write(8, 4, 0);
  Write(0x0c, 2, 0x0041);
  EXPECT_EQ(Vector(0).message_log().back(),
            (FakeMsiState::Message{0xfee01000, 0x41, uint32_t{0x08}}));
  EXPECT_EQ(Read(4, 4), 0xfee01000u);
  EXPECT_EQ(Read(0x0c, 2), 0x41u);
  // pci_disable_msi.
  Write(2, 2, k64Bit);
  EXPECT_FALSE(cap_->enabled());
  EXPECT_EQ(cap_->IrqFd(0), -1);
}

TEST_F(MsiCapabilityTest, ThirtyTwoBitLayoutHasDataAtEight) {
  Build(0);
  Write(4, 4, 0xfee02003);  // the low two bits are reserved (dword aligned)
  Write(8, 2, 0x0055);
  Write(2, 2, kEnable);
  EXPECT_EQ(Read(4, 4), 0xfee02000u);
  EXPECT_EQ(Read(8, 2), 0x55u);
  ASSERT_FALSE(Vector(0).message_log().empty());
  EXPECT_EQ(Vector(0).message_log().back(),
            (FakeMsiState::Message{0xfee02000, 0x55, uint32_t{0x08}}));
  // Past the capability: not ours (the device passes it through).
  Write(0x0c, 4, 0xffffffff);
  EXPECT_EQ(Read(0x0c, 4), 0u);
}

TEST_F(MsiCapabilityTest, ReadOnlyControlBitsStay) {
  Build(k64Bit | (2 << 1));  // 4 vectors capable
  Write(2, 2, 0xffff);
  // Enable and MME (clamped to 4 = log2 2) stick; MMC, 64-bit, mask bit are the device's.
  EXPECT_EQ(Read(2, 2), uint32_t{k64Bit | (2 << 1) | (2 << 4) | kEnable});
  EXPECT_EQ(cap_->enabled_vectors(), 4u);
}

TEST_F(MsiCapabilityTest, MultipleMessagesReplaceTheLowDataBits) {
  Build(k64Bit | (2 << 1));  // 4 capable
  ASSERT_EQ(allocator_.states.size(), 4u);
  Write(4, 4, 0xfee00000);
  Write(0x0c, 2, 0x0040);
  Write(2, 2, k64Bit | (1 << 4) | kEnable);  // 2 enabled
  EXPECT_EQ(cap_->enabled_vectors(), 2u);
  EXPECT_EQ(Vector(0).message_log().back().data, 0x40u);
  EXPECT_EQ(Vector(1).message_log().back().data, 0x41u);
  EXPECT_TRUE(Vector(2).message_log().empty());
  EXPECT_EQ(cap_->IrqFd(2), -1);
  // Four enabled: the low two bits belong to the device.
  Write(0x0c, 2, 0x0044);
  Write(2, 2, k64Bit | (2 << 4) | kEnable);
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(Vector(i).message_log().back().data, 0x44u | i) << i;
}

TEST_F(MsiCapabilityTest, MaskedVectorParksAndDeliversOnUnmask) {
  Build(k64Bit | kPerVectorMask | (1 << 1));  // 2 capable, maskable
  Write(4, 4, 0xfee00000);
  Write(0x0c, 2, 0x0030);
  Write(0x10, 4, 0x1);  // mask vector 0
  Write(2, 2, k64Bit | kPerVectorMask | (1 << 1) | (1 << 4) | kEnable);
  EXPECT_EQ(cap_->IrqFd(0), -1);  // VFIO signals the parked fd instead
  EXPECT_GE(cap_->IrqFd(1), 0);
  cap_->Park(0);
  EXPECT_TRUE(cap_->pending(0));
  EXPECT_EQ(Read(0x14, 4), 0x1u);  // the pending bits
  EXPECT_EQ(Vector(0).trigger_count(), 0);
  Write(0x10, 4, 0x0);  // unmask: programmed, the pending one delivered
  EXPECT_FALSE(cap_->pending(0));
  EXPECT_EQ(Vector(0).trigger_count(), 1);
  EXPECT_GE(cap_->IrqFd(0), 0);
  EXPECT_EQ(Vector(0).message_log().back().data, 0x30u);
  // Mask bits of vectors the device does not have are not writable.
  Write(0x10, 4, 0xffffffff);
  EXPECT_EQ(Read(0x10, 4), 0x3u);
  // Pending bits are read-only.
  Write(0x14, 4, 0xffffffff);
  EXPECT_EQ(Read(0x14, 4), 0x0u);
}

TEST_F(MsiCapabilityTest, ParkWhileDeliverableTriggersAtOnce) {
  Build(k64Bit);
  Write(4, 4, 0xfee00000);
  Write(2, 2, k64Bit | kEnable);
  cap_->Park(0);  // raced with an unmask: deliver, don't lose it
  EXPECT_EQ(Vector(0).trigger_count(), 1);
  EXPECT_FALSE(cap_->pending(0));
  cap_->Park(5);  // past the enabled vectors: ignored
}

// Enabled before the guest wrote an address: no interrupt controller
// decodes address 0, so nothing is routed (KVM would make it vector 0)
// and an interrupt from the device waits instead.
TEST_F(MsiCapabilityTest, UnwrittenMessageIsNeverRouted) {
  Build(k64Bit);
  Write(2, 2, k64Bit | kEnable);
  EXPECT_TRUE(Vector(0).message_log().empty());
  EXPECT_EQ(cap_->IrqFd(0), -1);
  cap_->Park(0);  // lost, as the device's write to address 0 would be
  EXPECT_FALSE(cap_->pending(0));
  Write(4, 4, 0xfee00000);
  Write(0x0c, 2, 0x0023);
  EXPECT_GE(cap_->IrqFd(0), 0);
  EXPECT_EQ(Vector(0).message_log().back().data, 0x23u);
  // Not delivered through the half-written message (data 0 = vector 0).
  EXPECT_EQ(Vector(0).trigger_count(), 0);
}

TEST_F(MsiCapabilityTest, FailedRouteIsNotSignalled) {
  Build(k64Bit);
  Vector(0).fail_set_message = true;
  Write(4, 4, 0xfee00000);
  Write(2, 2, k64Bit | kEnable);
  EXPECT_EQ(cap_->IrqFd(0), -1);  // VFIO gets the parked fd, not a route-less irqfd
  Vector(0).fail_set_message = false;
  Write(0x0c, 2, 0x0023);
  EXPECT_GE(cap_->IrqFd(0), 0);
}

}  // namespace
}  // namespace skiff::vfio
