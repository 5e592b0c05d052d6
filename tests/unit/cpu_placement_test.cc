#include "vmm/cpu_placement.h"

#include <pthread.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace skiff {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CpuListTest, ParsesAndFormats) {
  EXPECT_THAT(*ParseCpuList("3"), ElementsAre(3));
  EXPECT_THAT(*ParseCpuList("0-3"), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(*ParseCpuList("6-7,0,4,0-1"), ElementsAre(0, 1, 4, 6, 7));
  EXPECT_EQ(FormatCpuList({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
  EXPECT_EQ(FormatCpuList({4}), "4");
  EXPECT_EQ(FormatCpuList({}), "");
  for (const char* bad :
       {"", ",", "a", "1-", "-1", "3-1", "1,,2", "1.5", "0x1", "1024", "0-99999999999", " 1"}) {
    EXPECT_FALSE(ParseCpuList(bad).ok()) << bad;
  }
}

TEST(CpusOptionTest, CountAlone) {
  auto cpus = ParseCpusOption("4");
  ASSERT_TRUE(cpus.ok());
  EXPECT_EQ(cpus->count, 4u);
  EXPECT_TRUE(cpus->affinity.empty());
}

TEST(CpusOptionTest, AffinityMap) {
  auto cpus = ParseCpusOption("3,affinity=1:3,0:2,2:4-5");
  ASSERT_TRUE(cpus.ok()) << cpus.status();
  EXPECT_EQ(cpus->count, 3u);
  EXPECT_THAT(cpus->affinity,
              ElementsAre(VcpuAffinity{0, {2}}, VcpuAffinity{1, {3}}, VcpuAffinity{2, {4, 5}}));
  // Unlisted vCPUs float.
  cpus = ParseCpusOption("2,affinity=1:0");
  ASSERT_TRUE(cpus.ok());
  EXPECT_THAT(cpus->affinity, ElementsAre(VcpuAffinity{1, {0}}));
}

TEST(CpusOptionTest, Errors) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "is not a number"},
      {"x", "is not a number"},
      {"2,pin=0:1", "expected N or N,affinity="},
      {"2,affinity=", "lists no vCPU"},
      {"2,affinity=0", "is not VCPU:HOSTCPU"},
      {"2,affinity=a:1", "is not a vCPU number"},
      {"2,affinity=2:1", "vCPU 2 does not exist (the guest has 2: 0-1)"},
      {"2,affinity=0:1,0:2", "vCPU 0 is listed twice"},
      {"2,affinity=0:", "is not a CPU number"},
      {"2,affinity=0:3-1", "reversed"},
      {"2,affinity=0:5000", "out of range"},
  };
  for (const auto& [text, message] : cases) {
    auto cpus = ParseCpusOption(text);
    ASSERT_FALSE(cpus.ok()) << text;
    EXPECT_THAT(std::string(cpus.status().message()), HasSubstr(message)) << text;
    EXPECT_EQ(cpus.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(HostCpusTest, RefusesMissingAndForbiddenCpus) {
  HostCpus host{{0, 1, 2, 3}, {0, 1}};
  EXPECT_TRUE(CheckHostCpus("--x", {0, 1}, host).ok());
  absl::Status missing = CheckHostCpus("--cpus affinity 1:7", {1, 7}, host);
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.message(),
            "--cpus affinity 1:7: host CPU 7 does not exist (this host has CPUs 0-3)");
  absl::Status forbidden = CheckHostCpus("--io-affinity", {2}, host);
  EXPECT_THAT(std::string(forbidden.message()),
              HasSubstr("--io-affinity: host CPU 2 is not in the set Skiff may run on (0-1"));
}

TEST(HostCpusTest, ReadsThisHost) {
  auto host = ReadHostCpus();
  ASSERT_TRUE(host.ok()) << host.status();
  ASSERT_FALSE(host->present.empty());
  ASSERT_FALSE(host->allowed.empty());
  for (uint32_t cpu : host->allowed) {
    EXPECT_TRUE(std::binary_search(host->present.begin(), host->present.end(), cpu)) << cpu;
  }
}

TEST(PinThreadTest, PinsAThreadToOneCpu) {
  auto host = ReadHostCpus();
  ASSERT_TRUE(host.ok());
  const uint32_t cpu = host->allowed.back();
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  std::thread worker([&] {
    tid = static_cast<pid_t>(::gettid());
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (tid == 0) std::this_thread::yield();
  ASSERT_TRUE(PinThread(worker.native_handle(), {cpu}, "test thread").ok());
  auto affinity = ThreadAffinity(tid);
  done = true;
  worker.join();
  ASSERT_TRUE(affinity.has_value());
  EXPECT_THAT(*affinity, ElementsAre(cpu));
  EXPECT_FALSE(ThreadAffinity(-1).has_value());
}

}  // namespace
}  // namespace skiff
