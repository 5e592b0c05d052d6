// Device memory as KVM memory slots on the local /dev/kvm (what a
// passed-through BAR uses): a slot over part of an MMIO range is read by
// the guest without an exit, the rest of the range still exits to the bus,
// and slot ids are recycled.
#include <sys/mman.h>

#include <mutex>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/tiny_guest.h"
#include "vmm/mapping.h"

namespace skiff {
namespace {

using testing::TinyGuest;

class ReadRecorder : public BusDevice {
 public:
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    std::lock_guard lock(mutex);
    reads.push_back(offset);
    for (auto& b : data) b = 0xa5;
  }
  void Write(uint64_t, std::span<const uint8_t>) override {}
  std::mutex mutex;
  std::vector<uint64_t> reads;
};

class PortRecorder : public BusDevice {
 public:
  void Read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) b = 0;
  }
  void Write(uint64_t, std::span<const uint8_t> data) override {
    std::lock_guard lock(mutex);
    values.push_back(data[0]);
  }
  std::mutex mutex;
  std::vector<uint8_t> values;
};

TEST(DeviceMemorySlotTest, SlotIsReadWithoutAnExitAndTheRestStillTraps) {
  // mov ax,0x3000; mov ds,ax; mov al,[0x10]; out 0x80,al; mov al,[0x1010];
  // out 0x80,al; hlt
  auto guest = TinyGuest::Create({0xb8, 0x00, 0x30, 0x8e, 0xd8, 0xa0, 0x10, 0x00, 0xe6, 0x80,
                                  0xa0, 0x10, 0x10, 0xe6, 0x80, 0xf4},
                                 /*irqchip=*/false);
  ASSERT_NE(guest, nullptr);
  // A two-page "BAR" at 0x30000: all of it on the bus, its first page a slot.
  auto bar = std::make_shared<ReadRecorder>();
  ASSERT_TRUE(guest->mmio().Register(0x30000, 0x2000, bar, "bar").ok());
  auto port = std::make_shared<PortRecorder>();
  ASSERT_TRUE(guest->pio().Register(0x80, 1, port, "port 0x80").ok());
  void* host = ::mmap(nullptr, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(host, MAP_FAILED);
  Mapping page(host, 0x1000);
  page.data()[0x10] = 0x5a;
  MemorySlotRegistrar& slots = guest->vm();
  auto slot = slots.AddMemorySlot(0x30000, 0x1000, page.data());
  ASSERT_TRUE(slot.ok()) << slot.status();
  guest->Start();
  guest->Join();
  EXPECT_EQ(port->values, (std::vector<uint8_t>{0x5a, 0xa5}));
  EXPECT_EQ(bar->reads, (std::vector<uint64_t>{0x1010}));  // only the trapped page exited
  // Ids are recycled: a BAR that moves back and forth does not use up slots.
  ASSERT_TRUE(slots.RemoveMemorySlot(*slot).ok());
  auto again = slots.AddMemorySlot(0x40000, 0x1000, page.data());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *slot);
  EXPECT_TRUE(slots.RemoveMemorySlot(*again).ok());
}

}  // namespace
}  // namespace skiff
