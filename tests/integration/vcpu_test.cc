// Tiny real-mode guests on the local /dev/kvm exercising the vCPU loop,
// the buses, the UART and the console end to end.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "devices/legacy/serial_16550.h"
#include "gtest/gtest.h"
#include "tests/integration/tiny_guest.h"
#include "tests/unit/fake_irq_line.h"
#include "vmm/console.h"
#include "vmm/exit_codes.h"

namespace skiff {
namespace {

using testing::TinyGuest;

class RecordingDevice : public BusDevice {
 public:
  explicit RecordingDevice(uint8_t read_value) : read_value_(read_value) {}
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    std::lock_guard lock(mutex_);
    reads.push_back(offset);
    for (auto& b : data) b = read_value_;
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    std::lock_guard lock(mutex_);
    writes.push_back({offset, std::vector<uint8_t>(data.begin(), data.end())});
  }
  std::mutex mutex_;
  std::vector<uint64_t> reads;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> writes;

 private:
  uint8_t read_value_;
};

TEST(TinyGuestTest, PortWritesReachTheUartAndTheConsoleOutput) {
  // mov dx,0x3f8; mov al,'H'; out dx,al; mov al,'i'; out dx,al;
  // mov al,'\n'; out dx,al; hlt
  auto guest = TinyGuest::Create({0xba, 0xf8, 0x03, 0xb0, 'H', 0xee, 0xb0, 'i',
                                  0xee, 0xb0, '\n', 0xee, 0xf4},
                                 /*irqchip=*/false);
  ASSERT_NE(guest, nullptr);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  auto console = Console::Create(-1, pipe_fds[1], &guest->shutdown());
  ASSERT_TRUE(console.ok());
  Console* out = console->get();
  auto serial = std::make_shared<Serial16550>(
      std::make_shared<FakeIrqLine>(),
      [out](std::span<const uint8_t> bytes) { out->Output(bytes); });
  ASSERT_TRUE(guest->pio().Register(0x3f8, 8, serial, "uart").ok());
  guest->Start();
  guest->Join();
  EXPECT_EQ(guest->shutdown().status().code, kExitOk);
  EXPECT_EQ(guest->shutdown().status().reason, "vCPU 0: guest halted");
  ::close(pipe_fds[1]);
  char buffer[16] = {};
  ssize_t n = ::read(pipe_fds[0], buffer, sizeof(buffer));
  ::close(pipe_fds[0]);
  EXPECT_EQ(std::string(buffer, n > 0 ? n : 0), "Hi\n");
}

TEST(TinyGuestTest, MmioAccessesReachTheBusWithOffsets) {
  // mov ax,0x2000; mov ds,ax; mov byte [0x10],0x5a; mov al,[0x24];
  // out 0x80,al; hlt       (0x20000 is past the 128 KiB of RAM: MMIO)
  auto guest = TinyGuest::Create({0xb8, 0x00, 0x20, 0x8e, 0xd8, 0xc6, 0x06, 0x10,
                                  0x00, 0x5a, 0xa0, 0x24, 0x00, 0xe6, 0x80, 0xf4},
                                 false);
  ASSERT_NE(guest, nullptr);
  auto mmio_dev = std::make_shared<RecordingDevice>(0x77);
  auto port_dev = std::make_shared<RecordingDevice>(0);
  ASSERT_TRUE(guest->mmio().Register(0x20000, 0x1000, mmio_dev, "mmio").ok());
  ASSERT_TRUE(guest->pio().Register(0x80, 1, port_dev, "post").ok());
  guest->Start();
  guest->Join();
  ASSERT_EQ(mmio_dev->writes.size(), 1u);
  EXPECT_EQ(mmio_dev->writes[0].first, 0x10u);
  EXPECT_EQ(mmio_dev->writes[0].second, std::vector<uint8_t>{0x5a});
  ASSERT_EQ(mmio_dev->reads.size(), 1u);
  EXPECT_EQ(mmio_dev->reads[0], 0x24u);
  ASSERT_EQ(port_dev->writes.size(), 1u);
  EXPECT_EQ(port_dev->writes[0].second, std::vector<uint8_t>{0x77});  // read back
}

TEST(TinyGuestTest, UnclaimedPortsReadAllOnes) {
  // in al,0x99; out 0x80,al; hlt
  auto guest = TinyGuest::Create({0xe4, 0x99, 0xe6, 0x80, 0xf4}, false);
  ASSERT_NE(guest, nullptr);
  auto port_dev = std::make_shared<RecordingDevice>(0);
  ASSERT_TRUE(guest->pio().Register(0x80, 1, port_dev, "post").ok());
  guest->Start();
  guest->Join();
  ASSERT_EQ(port_dev->writes.size(), 1u);
  EXPECT_EQ(port_dev->writes[0].second, std::vector<uint8_t>{0xff});
}

TEST(TinyGuestTest, AVcpuHaltedForeverCanBeStopped) {
  // cli; hlt; jmp $-2 — with an in-kernel irqchip HLT blocks inside KVM_RUN.
  auto guest = TinyGuest::Create({0xfa, 0xf4, 0xeb, 0xfd}, /*irqchip=*/true);
  ASSERT_NE(guest, nullptr);
  guest->Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(guest->shutdown().requested());  // still halted in the kernel
  auto start = std::chrono::steady_clock::now();
  guest->shutdown().Request(kExitSignal, "test stop");
  guest->vcpu().Kick();
  guest->Join();
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  EXPECT_EQ(guest->shutdown().status().code, kExitSignal);
}

}  // namespace
}  // namespace skiff
