#include "vmm/one_shot_timer.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace skiff {
namespace {

// A loop on its own thread, as the I/O thread runs it.
class LoopThread {
 public:
  LoopThread() {
    auto loop = EventLoop::Create();
    EXPECT_TRUE(loop.ok());
    loop_ = *std::move(loop);
  }
  void Start() {
    thread_ = std::thread([this] { loop_->Run(); });
  }
  ~LoopThread() {
    if (thread_.joinable()) {
      loop_->Stop();
      thread_.join();
    }
  }
  EventLoop& loop() { return *loop_; }

 private:
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
};

bool WaitFor(const std::atomic<int>& value, int want) {
  for (int i = 0; i < 500 && value.load() < want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return value.load() >= want;
}

TEST(OneShotTimerTest, FiresOncePerArmOnTheLoopThread) {
  LoopThread io;
  std::atomic<int> fired{0};
  std::thread::id fired_on;
  auto timer = OneShotTimer::Create(
      io.loop(),
      [&] {
        fired_on = std::this_thread::get_id();
        fired.fetch_add(1);
      },
      "test timer");
  ASSERT_TRUE(timer.ok()) << timer.status();
  io.Start();
  ASSERT_TRUE((*timer)->Arm(absl::Milliseconds(20)).ok());
  ASSERT_TRUE(WaitFor(fired, 1));
  EXPECT_NE(fired_on, std::this_thread::get_id());
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(fired.load(), 1);                             // once, not periodic
  ASSERT_TRUE((*timer)->Arm(absl::ZeroDuration()).ok());  // zero still fires
  ASSERT_TRUE(WaitFor(fired, 2));
}

TEST(OneShotTimerTest, ArmingAgainMovesTheDeadline) {
  LoopThread io;
  std::atomic<int> fired{0};
  auto timer = OneShotTimer::Create(
      io.loop(), [&] { fired.fetch_add(1); }, "test timer");
  ASSERT_TRUE(timer.ok());
  io.Start();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE((*timer)->Arm(absl::Milliseconds(50)).ok());
  ASSERT_TRUE((*timer)->Arm(absl::Milliseconds(150)).ok());
  ASSERT_TRUE(WaitFor(fired, 1));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(fired.load(), 1);
}

TEST(OneShotTimerTest, DestroyedTimerLeavesTheLoop) {
  LoopThread io;
  std::atomic<int> fired{0};
  auto timer = OneShotTimer::Create(
      io.loop(), [&] { fired.fetch_add(1); }, "test timer");
  ASSERT_TRUE(timer.ok());
  ASSERT_TRUE((*timer)->Arm(absl::Milliseconds(10)).ok());
  timer->reset();  // before the loop ever ran
  io.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(fired.load(), 0);
}

}  // namespace
}  // namespace skiff
