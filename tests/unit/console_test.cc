#include "vmm/console.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "vmm/event_loop.h"
#include "vmm/shutdown.h"

namespace skiff {
namespace {

using namespace std::chrono_literals;

// Waits up to 5 s for `done`; the I/O thread does the work meanwhile.
bool Eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

// A sink that takes at most `room` bytes, like a receiver with a buffer.
class FakeSink {
 public:
  size_t Take(std::span<const uint8_t> bytes) {
    std::lock_guard lock(mutex_);
    ++calls_;
    size_t taken = std::min(room_, bytes.size());
    received_.insert(received_.end(), bytes.begin(), bytes.begin() + taken);
    room_ -= taken;
    return taken;
  }
  void set_room(size_t room) {
    std::lock_guard lock(mutex_);
    room_ = room;
  }
  std::vector<uint8_t> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  int calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  Console::InputSink AsSink() {
    return [this](std::span<const uint8_t> bytes) { return Take(bytes); };
  }

 private:
  std::mutex mutex_;
  size_t room_ = SIZE_MAX;
  std::vector<uint8_t> received_;
  int calls_ = 0;
};

class ConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto shutdown = Shutdown::Create();
    ASSERT_TRUE(shutdown.ok()) << shutdown.status();
    shutdown_ = std::move(*shutdown);
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
  }
  void TearDown() override {
    if (loop_thread_.joinable()) {
      loop_->Stop();
      loop_thread_.join();
    }
  }

  // A console reading `in_fd` (-1: none), attached to a loop not yet running.
  void CreateConsole(int in_fd) {
    auto console = Console::Create(in_fd, -1, shutdown_.get());
    ASSERT_TRUE(console.ok()) << console.status();
    console_ = std::move(*console);
    console_->SetInputSink(sink_.AsSink());
    ASSERT_TRUE(console_->Attach(*loop_).ok());
  }
  void RunLoop() {
    loop_thread_ = std::thread([this] { loop_->Run(); });
  }
  void StartConsole(int in_fd) {
    CreateConsole(in_fd);
    RunLoop();
  }

  static std::vector<uint8_t> Bytes(std::string_view text) {
    return std::vector<uint8_t>(text.begin(), text.end());
  }

  std::unique_ptr<Shutdown> shutdown_;
  std::unique_ptr<EventLoop> loop_;
  FakeSink sink_;
  std::unique_ptr<Console> console_;
  std::thread loop_thread_;
};

TEST_F(ConsoleTest, TypedBytesGoStraightToTheSink) {
  StartConsole(-1);
  console_->HandleInput(Bytes("ls\r"));
  EXPECT_EQ(sink_.received(), Bytes("ls\r"));
}

TEST_F(ConsoleTest, RefusedInputWaitsForInputReadyWithoutPolling) {
  sink_.set_room(2);
  CreateConsole(-1);
  console_->HandleInput(Bytes("hello"));
  ASSERT_EQ(sink_.received(), Bytes("he"));
  ASSERT_EQ(sink_.calls(), 1);
  // SetInputSink's own wake-up offers the rest once more, on the loop.
  RunLoop();
  ASSERT_TRUE(Eventually([&] { return sink_.calls() == 2; }));

  // Then nothing retries by itself: a timer would keep calling the sink.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(sink_.calls(), 2);
  EXPECT_EQ(sink_.received(), Bytes("he"));

  sink_.set_room(100);
  console_->InputReady();
  EXPECT_TRUE(Eventually([&] { return sink_.received() == Bytes("hello"); }));
}

TEST_F(ConsoleTest, InputReadyFromAnotherThreadKeepsOrder) {
  sink_.set_room(0);
  StartConsole(-1);
  console_->HandleInput(Bytes("abc"));
  console_->HandleInput(Bytes("def"));
  EXPECT_TRUE(sink_.received().empty());
  sink_.set_room(4);
  std::thread([this] { console_->InputReady(); }).join();
  ASSERT_TRUE(Eventually([&] { return sink_.received().size() == 4; }));
  sink_.set_room(10);
  console_->InputReady();
  EXPECT_TRUE(Eventually([&] { return sink_.received() == Bytes("abcdef"); }));
}

TEST_F(ConsoleTest, PendingInputGoesToANewSink) {
  sink_.set_room(0);
  StartConsole(-1);
  console_->HandleInput(Bytes("boot"));
  FakeSink other;
  console_->SetInputSink(other.AsSink());
  EXPECT_TRUE(Eventually([&] { return other.received() == Bytes("boot"); }));
  EXPECT_TRUE(sink_.received().empty());
}

TEST_F(ConsoleTest, InputReadyBeforeAttachIsNotLost) {
  auto console = Console::Create(-1, -1, shutdown_.get());
  ASSERT_TRUE(console.ok());
  console_ = std::move(*console);
  sink_.set_room(0);
  console_->SetInputSink(sink_.AsSink());
  console_->HandleInput(Bytes("x"));
  sink_.set_room(1);
  console_->InputReady();
  ASSERT_TRUE(console_->Attach(*loop_).ok());
  loop_thread_ = std::thread([this] { loop_->Run(); });
  EXPECT_TRUE(Eventually([&] { return sink_.received() == Bytes("x"); }));
}

// CPU time the thread has used so far.
std::chrono::nanoseconds ThreadCpuTime(pthread_t thread) {
  clockid_t clock;
  timespec ts{};
  if (pthread_getcpuclockid(thread, &clock) != 0 || clock_gettime(clock, &ts) != 0) {
    return std::chrono::nanoseconds::max();
  }
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

TEST_F(ConsoleTest, StdinIsNotReadWhileTheGuestIsNotReading) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // More than the console holds, so stdin stays readable while it is full.
  std::vector<uint8_t> typed(6000);
  for (size_t i = 0; i < typed.size(); ++i) typed[i] = static_cast<uint8_t>('a' + i % 26);
  ASSERT_EQ(::write(write_end.get(), typed.data(), typed.size()),
            static_cast<ssize_t>(typed.size()));

  sink_.set_room(0);
  StartConsole(read_end.get());
  // Let the console fill up, then check the I/O thread is idle, not
  // spinning on a readable stdin it cannot take.
  std::this_thread::sleep_for(50ms);
  auto before = ThreadCpuTime(loop_thread_.native_handle());
  std::this_thread::sleep_for(200ms);
  auto used = ThreadCpuTime(loop_thread_.native_handle()) - before;
  EXPECT_LT(used, 50ms);
  EXPECT_TRUE(sink_.received().empty());

  // Once the receiver drains, stdin is read again and every byte arrives in order.
  sink_.set_room(SIZE_MAX);
  console_->InputReady();
  EXPECT_TRUE(Eventually([&] { return sink_.received() == typed; }));
  TearDown();  // stop the loop before the pipe closes
}

TEST_F(ConsoleTest, OutputWritesEveryByte) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  auto console = Console::Create(-1, write_end.get(), shutdown_.get());
  ASSERT_TRUE(console.ok());
  std::vector<uint8_t> text = Bytes("Linux version 6.1\r\n");
  (*console)->Output(text);
  std::vector<uint8_t> got(text.size());
  ASSERT_EQ(::read(read_end.get(), got.data(), got.size()), static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got, text);
}

}  // namespace
}  // namespace skiff

namespace skiff {
namespace {

TEST(ConsoleObserverTest, ObserversSeeAllOutputInOrderEvenWithoutStdout) {
  auto shutdown = Shutdown::Create();
  ASSERT_TRUE(shutdown.ok());
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ::close(pipe_fds[0]);  // stdout is a pipe nobody reads: writes fail (SIGPIPE ignored below)
  auto console = Console::Create(-1, pipe_fds[1], shutdown->get());
  ASSERT_TRUE(console.ok());
  std::string first, second;
  std::vector<int> order;
  (*console)->AddOutputObserver([&](std::span<const uint8_t> bytes) {
    first.append(bytes.begin(), bytes.end());
    order.push_back(1);
  });
  (*console)->AddOutputObserver([&](std::span<const uint8_t> bytes) {
    second.append(bytes.begin(), bytes.end());
    order.push_back(2);
  });
  ::signal(SIGPIPE, SIG_IGN);
  const std::string text = "hello\r\n";
  (*console)->Output(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), 5));
  (*console)->Output(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()) + 5, 2));
  EXPECT_EQ(first, text);
  EXPECT_EQ(second, text);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 1, 2}));
  ::close(pipe_fds[1]);
}

}  // namespace
}  // namespace skiff
