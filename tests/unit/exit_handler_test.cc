#include "vmm/exit_handler.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "vmm/exit_codes.h"

namespace skiff {
namespace {

class PortRecorder : public BusDevice {
 public:
  void Read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) b = 0x42;
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    for (uint8_t b : data) writes.push_back({offset, b});
  }
  std::vector<std::pair<uint64_t, uint8_t>> writes;
};

// kvm_run plus room for port I/O data, as the kernel's mapping has.
struct RunArea {
  RunArea() { std::memset(bytes, 0, sizeof(bytes)); }
  kvm_run& run() { return *reinterpret_cast<kvm_run*>(bytes); }
  alignas(8) uint8_t bytes[8192];
};

class ExitHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pio_.Register(0x3f8, 8, dev_, "uart").ok());
    ASSERT_TRUE(mmio_.Register(0xd0000000, 0x1000, dev_, "mmio").ok());
  }
  ExitOutcome Handle() { return HandleExit(area_.run(), {&pio_, &mmio_}); }
  RunArea area_;
  std::shared_ptr<PortRecorder> dev_ = std::make_shared<PortRecorder>();
  Bus pio_{"pio"};
  Bus mmio_{"mmio"};
};

#if defined(__x86_64__)  // port I/O exits exist on x86 only
TEST_F(ExitHandlerTest, StringPortOutputDeliversEveryElement) {
  kvm_run& run = area_.run();
  run.exit_reason = KVM_EXIT_IO;
  run.io.direction = KVM_EXIT_IO_OUT;
  run.io.size = 1;
  run.io.port = 0x3f8;
  run.io.count = 3;
  run.io.data_offset = 4096;
  std::memcpy(area_.bytes + 4096, "abc", 3);
  EXPECT_EQ(Handle().kind, ExitOutcome::Kind::kContinue);
  ASSERT_EQ(dev_->writes.size(), 3u);
  EXPECT_EQ(dev_->writes[2].second, 'c');
}
#endif

TEST_F(ExitHandlerTest, UnclaimedReadsFloatHigh) {
  kvm_run& run = area_.run();
  run.exit_reason = KVM_EXIT_MMIO;
  run.mmio.phys_addr = 0xe0000000;
  run.mmio.len = 4;
  run.mmio.is_write = 0;
  EXPECT_EQ(Handle().kind, ExitOutcome::Kind::kContinue);
  EXPECT_EQ(run.mmio.data[0], 0xff);
  EXPECT_EQ(run.mmio.data[3], 0xff);
  run.mmio.phys_addr = 0xd0000010;
  EXPECT_EQ(Handle().kind, ExitOutcome::Kind::kContinue);
  EXPECT_EQ(run.mmio.data[0], 0x42);
}

TEST_F(ExitHandlerTest, BadMmioLengthStopsInsteadOfOverflowing) {
  kvm_run& run = area_.run();
  run.exit_reason = KVM_EXIT_MMIO;
  run.mmio.phys_addr = 0xd0000000;
  run.mmio.len = 64;
  ExitOutcome outcome = Handle();
  EXPECT_EQ(outcome.kind, ExitOutcome::Kind::kStop);
  EXPECT_EQ(outcome.exit_code, kExitVmmError);
}

TEST_F(ExitHandlerTest, StopsMapToExitCodes) {
  kvm_run& run = area_.run();
  run.exit_reason = KVM_EXIT_SHUTDOWN;
  ExitOutcome triple = Handle();
  EXPECT_EQ(triple.exit_code, kExitGuestCrash);
  EXPECT_TRUE(triple.describe_cpu);
  EXPECT_NE(triple.reason.find("triple fault"), std::string::npos);

  run.exit_reason = KVM_EXIT_SYSTEM_EVENT;
  run.system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
  EXPECT_EQ(Handle().exit_code, kExitOk);
  run.system_event.type = KVM_SYSTEM_EVENT_RESET;
  EXPECT_EQ(Handle().exit_code, kExitOk);
  run.system_event.type = KVM_SYSTEM_EVENT_CRASH;
  EXPECT_EQ(Handle().exit_code, kExitGuestCrash);

  run.exit_reason = KVM_EXIT_INTERNAL_ERROR;
  run.internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
  ExitOutcome internal = Handle();
  EXPECT_EQ(internal.exit_code, kExitGuestCrash);
  EXPECT_NE(internal.reason.find("suberror 1"), std::string::npos);
  EXPECT_TRUE(internal.describe_cpu);

  run.exit_reason = KVM_EXIT_INTR;
  EXPECT_EQ(Handle().kind, ExitOutcome::Kind::kContinue);
}

}  // namespace
}  // namespace skiff
