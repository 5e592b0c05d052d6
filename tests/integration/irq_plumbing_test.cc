// The KVM side of virtio's fast paths on the local /dev/kvm: ioeventfds
// that swallow a notify write without an exit, GSI routing tables KVM
// accepts (the flexible-array layout), MSI vectors and irqfd level lines.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <mutex>

#include "arch/arch.h"
#include "gtest/gtest.h"
#include "tests/integration/tiny_guest.h"
#include "vmm/event_loop.h"
#include "vmm/irq_routing.h"
#include "vmm/irqfd_line.h"
#include "vmm/kvm_msi.h"

namespace skiff {
namespace {

using testing::TinyGuest;

class WriteRecorder : public BusDevice {
 public:
  void Read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) b = 0;
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    std::lock_guard lock(mutex_);
    uint32_t value = 0;
    std::memcpy(&value, data.data(), std::min<size_t>(data.size(), 4));
    writes.push_back({offset, value});
  }
  std::mutex mutex_;
  std::vector<std::pair<uint64_t, uint32_t>> writes;
};

uint64_t ReadCounter(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) != 1) return 0;
  uint64_t value = 0;
  EXPECT_EQ(::read(fd, &value, sizeof(value)), static_cast<ssize_t>(sizeof(value)));
  return value;
}

TEST(IrqPlumbingTest, IoEventFdTakesMatchingNotifyWritesWithoutAnExit) {
  // mov ax,0x3000; mov ds,ax; mov dword [0x50],1; mov dword [0x50],2; hlt
  auto guest = TinyGuest::Create({0xb8, 0x00, 0x30, 0x8e, 0xd8,
                                  0x66, 0xc7, 0x06, 0x50, 0x00, 0x01, 0x00, 0x00, 0x00,
                                  0x66, 0xc7, 0x06, 0x50, 0x00, 0x02, 0x00, 0x00, 0x00, 0xf4},
                                 /*irqchip=*/false);
  ASSERT_NE(guest, nullptr);
  auto recorder = std::make_shared<WriteRecorder>();
  ASSERT_TRUE(guest->mmio().Register(0x30000, 0x1000, recorder, "notify").ok());
  UniqueFd notify(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  IoEventRegistrar& registrar = guest->vm();
  ASSERT_TRUE(registrar.AddMmio(notify.get(), 0x30050, 4, 1).ok());
  guest->Start();
  guest->Join();
  EXPECT_EQ(ReadCounter(notify.get()), 1u);  // the write of 1, inside KVM
  ASSERT_EQ(recorder->writes.size(), 1u);    // only the write of 2 exited
  EXPECT_EQ(recorder->writes[0].first, 0x50u);
  EXPECT_EQ(recorder->writes[0].second, 2u);
  EXPECT_TRUE(registrar.RemoveMmio(notify.get(), 0x30050, 4, 1).ok());
}

TEST(IrqPlumbingTest, KvmAcceptsTheRoutingTableAndMsiVectors) {
  auto guest = TinyGuest::Create({0xf4}, /*irqchip=*/true);
  ASSERT_NE(guest, nullptr);
  arch::IrqRoutingBase base = arch::DefaultIrqRouting();
  IrqRouting routing(guest->vm().fd(), base.routes, base.first_msi_gsi, 1024);
  KvmMsiAllocator allocator(&guest->vm(), &routing);
  auto a = allocator.Allocate();
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = allocator.Allocate();
  ASSERT_TRUE(b.ok()) << b.status();
  // A wrong ioctl size or entry layout makes KVM answer EINVAL here.
  ASSERT_TRUE((*a)->SetMessage(0xfee00000, 0x4021, std::nullopt).ok());
  ASSERT_TRUE((*b)->SetMessage(0xfee00000, 0x4022, std::nullopt).ok());
  EXPECT_EQ(routing.Table().size(), base.routes.size() + 2);
  (*a)->Trigger();  // delivered into the (idle) local APIC: must not fail
  a->reset();       // frees its GSI and route
  EXPECT_EQ(routing.Table().size(), base.routes.size() + 1);
}

TEST(IrqPlumbingTest, ARouteKvmRefusesDoesNotPoisonLaterUpdates) {
  auto guest = TinyGuest::Create({0xf4}, /*irqchip=*/true);
  ASSERT_NE(guest, nullptr);
  arch::IrqRoutingBase base = arch::DefaultIrqRouting();
  IrqRouting routing(guest->vm().fd(), base.routes, base.first_msi_gsi, 1024);
  const uint32_t good = base.first_msi_gsi;
  ASSERT_TRUE(routing.SetMsiRoute(good, 0xfee00000, 0x4021, std::nullopt).ok());
  // KVM takes GSIs below KVM_MAX_IRQ_ROUTES (4096) only.
  EXPECT_FALSE(routing.SetMsiRoute(5000, 0xfee00000, 0x4022, std::nullopt).ok());
  EXPECT_EQ(routing.Table().size(), base.routes.size() + 1);
  // The next update goes through, and the first route is still there.
  ASSERT_TRUE(routing.SetMsiRoute(good + 1, 0xfee00000, 0x4023, std::nullopt).ok());
  EXPECT_EQ(routing.Table().size(), base.routes.size() + 2);
}

TEST(IrqPlumbingTest, LevelLineOverIrqfdRegistersWithResample) {
  auto guest = TinyGuest::Create({0xf4}, /*irqchip=*/true);
  ASSERT_NE(guest, nullptr);
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  auto line = IrqFdLevelLine::Create(guest->vm(), **loop, 20);
  ASSERT_TRUE(line.ok()) << line.status();
  (*line)->SetLevel(true);
  (*line)->SetLevel(false);
  line->reset();  // deassigns the irqfd; a second line on the GSI then works
  auto again = IrqFdLevelLine::Create(guest->vm(), **loop, 20);
  EXPECT_TRUE(again.ok()) << again.status();
}

}  // namespace
}  // namespace skiff
