#include "devices/pci/msix_table.h"

#include <array>
#include <cstring>

#include "gtest/gtest.h"
#include "tests/unit/pci_test_fakes.h"

namespace skiff::pci {
namespace {

constexpr uint16_t kDevid = 0x0018;  // 00:03.0

class MsixTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto table = MsixTable::Create(3, allocator_, kDevid);
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = *std::move(table);
  }

  void Write32(uint64_t offset, uint32_t value) {
    uint8_t bytes[4];
    std::memcpy(bytes, &value, 4);
    table_->WriteTable(offset, bytes);
  }
  uint32_t Read32(uint64_t offset) {
    uint8_t bytes[4];
    table_->ReadTable(offset, bytes);
    uint32_t value;
    std::memcpy(&value, bytes, 4);
    return value;
  }
  uint64_t Pba() {
    uint8_t bytes[8];
    table_->ReadPba(0, bytes);
    uint64_t value;
    std::memcpy(&value, bytes, 8);
    return value;
  }
  void Program(uint32_t vector, uint64_t address, uint32_t data) {
    Write32(16 * vector + 0, static_cast<uint32_t>(address));
    Write32(16 * vector + 4, static_cast<uint32_t>(address >> 32));
    Write32(16 * vector + 8, data);
  }
  FakeMsiState& state(int vector) { return *allocator_.states[vector]; }

  FakeMsiAllocator allocator_;
  std::unique_ptr<MsixTable> table_;
};

TEST_F(MsixTableTest, SizesAndInitialState) {
  EXPECT_EQ(table_->num_vectors(), 3u);
  EXPECT_EQ(table_->table_size(), 48u);
  EXPECT_EQ(table_->pba_size(), 8u);
  for (uint32_t v = 0; v < 3; ++v) {
    EXPECT_EQ(Read32(16 * v + 12), 1u);  // masked
    EXPECT_EQ(Read32(16 * v + 0), 0u);
  }
  EXPECT_FALSE(table_->enabled());
}

TEST_F(MsixTableTest, MessageReachesTheVectorWhenUnmaskedWithDevid) {
  Program(1, 0xfee01004, 0x4041);  // low address bits are reserved zero
  EXPECT_EQ(Read32(16 + 0), 0xfee01004u);
  EXPECT_EQ(Read32(16 + 8), 0x4041u);
  EXPECT_TRUE(state(1).message_log().empty());  // still masked
  Write32(16 + 12, 0);
  ASSERT_EQ(state(1).message_log().size(), 1u);
  EXPECT_EQ(state(1).message_log()[0], (FakeMsiState::Message{0xfee01004, 0x4041, kDevid}));
  // A rewrite while unmasked takes effect too; an identical one does not.
  Write32(16 + 8, 0x4042);
  Write32(16 + 12, 0);
  ASSERT_EQ(state(1).message_log().size(), 2u);
  EXPECT_EQ(state(1).message_log()[1].data, 0x4042u);
  EXPECT_TRUE(state(0).message_log().empty());
}

TEST_F(MsixTableTest, QwordAccesses) {
  uint8_t bytes[8];
  const uint64_t address = 0x00000001fee00000;
  std::memcpy(bytes, &address, 8);
  table_->WriteTable(32, bytes);
  table_->ReadTable(32, bytes);
  uint64_t back;
  std::memcpy(&back, bytes, 8);
  EXPECT_EQ(back, address);
  const uint64_t data_and_unmask = 0x0000000000000055;  // control 0: unmasked
  std::memcpy(bytes, &data_and_unmask, 8);
  table_->WriteTable(40, bytes);
  ASSERT_EQ(state(2).message_log().size(), 1u);
  EXPECT_EQ(state(2).message_log()[0], (FakeMsiState::Message{address, 0x55, kDevid}));
}

TEST_F(MsixTableTest, MaskedTriggerSetsPendingAndUnmaskDelivers) {
  table_->SetControl(kMsixControlEnable);
  Program(0, 0xfee00000, 0x30);
  table_->Trigger(0);
  EXPECT_EQ(state(0).trigger_count(), 0);
  EXPECT_EQ(Pba(), 0x1u);
  EXPECT_EQ(table_->IrqFd(0), -1);
  Write32(12, 0);  // unmask: programs, then delivers the pending interrupt
  EXPECT_EQ(state(0).trigger_count(), 1);
  EXPECT_EQ(Pba(), 0u);
  EXPECT_GE(table_->IrqFd(0), 0);
  table_->Trigger(0);
  EXPECT_EQ(state(0).trigger_count(), 2);
  EXPECT_EQ(Pba(), 0u);
}

TEST_F(MsixTableTest, FunctionMaskHoldsEveryVector) {
  for (uint32_t v = 0; v < 3; ++v) {
    Program(v, 0xfee00000, v);
    Write32(16 * v + 12, 0);
  }
  table_->SetControl(kMsixControlEnable | kMsixControlFunctionMask);
  table_->Trigger(0);
  table_->Trigger(2);
  EXPECT_EQ(Pba(), 0b101u);
  EXPECT_EQ(table_->IrqFd(1), -1);
  EXPECT_EQ(state(0).trigger_count() + state(2).trigger_count(), 0);
  table_->SetControl(kMsixControlEnable);
  EXPECT_EQ(state(0).trigger_count(), 1);
  EXPECT_EQ(state(1).trigger_count(), 0);
  EXPECT_EQ(state(2).trigger_count(), 1);
  EXPECT_EQ(Pba(), 0u);
}

TEST_F(MsixTableTest, DisabledOrOutOfRangeTriggersAreIgnored) {
  Program(0, 0xfee00000, 1);
  Write32(12, 0);
  table_->Trigger(0);  // MSI-X disabled
  table_->SetControl(kMsixControlEnable);
  table_->Trigger(3);
  table_->Trigger(0xffff);
  EXPECT_EQ(state(0).trigger_count(), 0);
  EXPECT_EQ(Pba(), 0u);
  EXPECT_EQ(table_->IrqFd(3), -1);
}

TEST_F(MsixTableTest, BadAccessesAreIgnored) {
  Program(0, 0xfee00000, 7);
  uint8_t two[2] = {0xff, 0xff};
  table_->WriteTable(8, two);  // 2 bytes
  uint8_t four[4] = {0xff, 0xff, 0xff, 0xff};
  table_->WriteTable(9, four);                   // misaligned
  table_->WriteTable(48, four);                  // past the table
  table_->WriteTable(0xfffffffffffffffc, four);  // offset overflow
  uint8_t eight[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  table_->WriteTable(4, eight);   // qword not qword-aligned
  table_->WriteTable(44, eight);  // straddles the end
  EXPECT_EQ(Read32(0), 0xfee00000u);
  EXPECT_EQ(Read32(4), 0u);
  EXPECT_EQ(Read32(8), 7u);
  table_->ReadTable(9, four);
  EXPECT_EQ(four[0], 0);
  table_->ReadTable(2, two);
  EXPECT_EQ(two[0], 0);
  // The PBA is read-only, and only qword/dword reads inside it work.
  table_->SetControl(kMsixControlEnable);
  table_->Trigger(1);
  EXPECT_EQ(Pba(), 0b10u);
  table_->ReadPba(8, eight);
  EXPECT_EQ(eight[0], 0);
  table_->ReadPba(4, four);
  EXPECT_EQ(four[0], 0);
}

TEST_F(MsixTableTest, RefusedMessageMeansNoDelivery) {
  table_->SetControl(kMsixControlEnable);
  state(0).fail_set_message = true;
  Program(0, 0xfee00000, 1);
  Write32(12, 0);
  table_->Trigger(0);
  EXPECT_EQ(state(0).trigger_count(), 0);
  EXPECT_EQ(table_->IrqFd(0), -1);
  state(0).fail_set_message = false;
  Write32(8, 2);  // the guest rewrites: now it takes
  table_->Trigger(0);
  EXPECT_EQ(state(0).trigger_count(), 1);
}

TEST(MsixCapabilityTest, LayoutAndWritableBits) {
  FakeMsiAllocator allocator;
  auto table = MsixTable::Create(5, allocator, kDevid);
  ASSERT_TRUE(table.ok());
  PciConfigSpace config(PciIds{.vendor_id = 1});
  auto cap = (*table)->AddCapability(config, 2, 0x4000, 0x5000);
  ASSERT_TRUE(cap.ok());
  EXPECT_EQ(config.Read(*cap, 1), kCapIdMsix);
  EXPECT_EQ(config.Read(*cap + 2, 2), 4u);  // N - 1
  EXPECT_EQ(config.Read(*cap + 4, 4), 0x4002u);
  EXPECT_EQ(config.Read(*cap + 8, 4), 0x5002u);
  config.Write(*cap + 2, 2, 0xffff);
  EXPECT_EQ(config.Read(*cap + 2, 2), 0xc004u);
  config.Write(*cap + 4, 4, 0);
  EXPECT_EQ(config.Read(*cap + 4, 4), 0x4002u);
  EXPECT_FALSE((*table)->AddCapability(config, 0, 0x4004, 0x5000).ok());
  EXPECT_FALSE(MsixTable::Create(0, allocator, kDevid).ok());
  EXPECT_FALSE(MsixTable::Create(2049, allocator, kDevid).ok());
  allocator.limit = 0;
  EXPECT_FALSE(MsixTable::Create(1, allocator, kDevid).ok());
}

}  // namespace
}  // namespace skiff::pci
