#include "vmm/console_panic_watch.h"

#include <string>

#include "gtest/gtest.h"
#include "vmm/exit_codes.h"

namespace skiff {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(ConsolePanicWatchTest, KernelPanicLineEndsTheRunAsAPanic) {
  auto shutdown = Shutdown::Create();
  ASSERT_TRUE(shutdown.ok());
  ConsolePanicWatch watch(shutdown->get());
  watch.OnOutput(Bytes("[    1.000000] sysrq: Trigger a crash\r\n[    1.0"));
  EXPECT_FALSE((*shutdown)->requested());
  // Split mid-line, as a UART delivers it.
  watch.OnOutput(Bytes("01234] Kernel panic - not syncing: sysrq triggered crash\r\n"));
  ASSERT_TRUE((*shutdown)->requested());
  EXPECT_EQ((*shutdown)->status().code, kExitGuestPanic);
  EXPECT_NE((*shutdown)->status().reason.find("sysrq triggered crash"), std::string::npos);
}

TEST(ConsolePanicWatchTest, OnlyAtTheStartOfALine) {
  EXPECT_TRUE(ConsolePanicWatch::IsPanicLine("Kernel panic - not syncing: VFS"));
  EXPECT_TRUE(ConsolePanicWatch::IsPanicLine("[12345.678901] Kernel panic - not syncing: x"));
  EXPECT_FALSE(ConsolePanicWatch::IsPanicLine("echo Kernel panic - not syncing"));
  EXPECT_FALSE(ConsolePanicWatch::IsPanicLine("[abc] Kernel panic - not syncing"));
  EXPECT_FALSE(ConsolePanicWatch::IsPanicLine("Kernel panic"));
  EXPECT_FALSE(ConsolePanicWatch::IsPanicLine(""));
}

TEST(ConsolePanicWatchTest, OrdinaryOutputDoesNothing) {
  auto shutdown = Shutdown::Create();
  ASSERT_TRUE(shutdown.ok());
  ConsolePanicWatch watch(shutdown->get());
  watch.OnOutput(Bytes("login: panic - not syncing\nKernel panic -\n"));
  EXPECT_FALSE((*shutdown)->requested());
}

}  // namespace
}  // namespace skiff
