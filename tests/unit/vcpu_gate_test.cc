#include "vmm/vcpu_gate.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace skiff {
namespace {

// Threads standing in for vCPUs: each passes the gate in a loop, counting
// its "KVM_RUN"s, until the gate is released.
class GateThreads {
 public:
  GateThreads(VcpuGate& gate, int n) : runs_(n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, &gate, i] {
        while (gate.WaitWhileClosed()) {
          runs_[i]++;
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        gate.ThreadExited();
      });
    }
  }
  ~GateThreads() {
    for (auto& t : threads_) t.join();
  }
  uint64_t runs(int i) const { return runs_[i].load(); }

 private:
  std::vector<std::atomic<uint64_t>> runs_;
  std::vector<std::thread> threads_;
};

TEST(VcpuGateTest, StartsClosedAndParksEveryThread) {
  VcpuGate gate(3, /*closed=*/true);
  GateThreads threads(gate, 3);
  ASSERT_TRUE(gate.WaitAllParked(absl::Seconds(10)));
  EXPECT_EQ(gate.parked(), 3u);
  EXPECT_EQ(threads.runs(0) + threads.runs(1) + threads.runs(2), 0u);
  gate.Open();
  while (threads.runs(0) == 0 || threads.runs(1) == 0 || threads.runs(2) == 0) {
    std::this_thread::yield();
  }
  gate.Release();
}

TEST(VcpuGateTest, PauseStopsProgressAndResumeRestartsIt) {
  VcpuGate gate(2);
  GateThreads threads(gate, 2);
  while (threads.runs(0) == 0 || threads.runs(1) == 0) std::this_thread::yield();
  gate.Close();
  ASSERT_TRUE(gate.WaitAllParked(absl::Seconds(10)));
  EXPECT_TRUE(gate.closed());
  const uint64_t before0 = threads.runs(0), before1 = threads.runs(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(threads.runs(0), before0) << "a parked thread ran";
  EXPECT_EQ(threads.runs(1), before1);
  gate.Open();
  while (threads.runs(0) == before0 || threads.runs(1) == before1) std::this_thread::yield();
  EXPECT_FALSE(gate.closed());
  gate.Release();
}

TEST(VcpuGateTest, ReleaseEndsParkedThreadsAndExitedOnesCount) {
  VcpuGate gate(2, /*closed=*/true);
  {
    GateThreads threads(gate, 2);
    ASSERT_TRUE(gate.WaitAllParked(absl::Seconds(10)));
    gate.Release();
  }  // joined: WaitWhileClosed returned false
  EXPECT_FALSE(gate.WaitWhileClosed());
  EXPECT_TRUE(gate.WaitAllParked(absl::ZeroDuration()));
}

TEST(VcpuGateTest, WaitAllParkedTimesOutWhileAThreadRuns) {
  VcpuGate gate(2, /*closed=*/true);
  GateThreads threads(gate, 1);  // the second "vCPU" never arrives
  EXPECT_FALSE(gate.WaitAllParked(absl::Milliseconds(50)));
  gate.ThreadExited();  // ...until it exits
  EXPECT_TRUE(gate.WaitAllParked(absl::Seconds(10)));
  gate.Release();
}

}  // namespace
}  // namespace skiff
