// virtio-console over fake guest memory: config space and emerg_wr, guest
// output through the transmitq, typed input through the receiveq (with the
// input-ready wake-up, alone and through a real Console), hostile chains
// and reset.
#include <linux/virtio_config.h>
#include <linux/virtio_console.h>
#include <sys/eventfd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "devices/virtio/console.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/virtqueue_builder.h"
#include "vmm/console.h"
#include "vmm/event_loop.h"
#include "vmm/shutdown.h"
#include "vmm/unique_fd.h"

namespace skiff::virtio {
namespace {

using namespace std::chrono_literals;
using ::skiff::virtio::testing::VirtqueueBuilder;
using Buf = VirtqueueBuilder::Buf;

constexpr uint64_t kRamSize = 0x100000;
constexpr uint64_t kRxRing = 0x1000;
constexpr uint64_t kTxRing = 0x2000;
constexpr uint64_t kData = 0x40000;  // buffers live from here
constexpr uint16_t kQueueSize = 16;

constexpr uint64_t kIndirect = 1ull << 28;
constexpr uint64_t kEventIdx = 1ull << 29;
constexpr uint64_t kPacked = 1ull << VIRTIO_F_RING_PACKED;
constexpr uint64_t kVersion1 = 1ull << VIRTIO_F_VERSION_1;
constexpr uint64_t kSize = 1ull << VIRTIO_CONSOLE_F_SIZE;
constexpr uint64_t kEmergWrite = 1ull << VIRTIO_CONSOLE_F_EMERG_WRITE;

// Records what the device asked of its transport.
class FakeInterrupt : public VirtioInterrupt {
 public:
  void NotifyQueue(uint16_t queue) override {
    std::lock_guard lock(mutex_);
    queue_notifications_.push_back(queue);
  }
  void NotifyConfigChange() override { ++config_changes_; }
  void NeedsReset() override { ++needs_reset_; }

  std::vector<uint16_t> queue_notifications() {
    std::lock_guard lock(mutex_);
    return queue_notifications_;
  }
  int config_changes() const { return config_changes_; }
  int needs_reset() const { return needs_reset_; }

 private:
  std::mutex mutex_;
  std::vector<uint16_t> queue_notifications_;
  std::atomic<int> config_changes_ = 0;
  std::atomic<int> needs_reset_ = 0;
};

// Waits up to 5 s for `done` while another thread works.
bool Eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

std::vector<uint8_t> Bytes(std::string_view text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

UniqueFd MakeEventFd() { return UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)); }

// The eventfd's counter, consumed (0 when not signalled).
uint64_t TakeEventCount(int fd) {
  uint64_t count = 0;
  if (::read(fd, &count, sizeof(count)) != sizeof(count)) return 0;
  return count;
}

class VirtioConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    device_ = VirtioConsole::Create(
        VirtioConsoleOptions{.output = [this](std::span<const uint8_t> bytes) { Record(bytes); },
                             .cols = 132,
                             .rows = 43});
    device_->SetInputReadyCallback([this] { ++input_ready_calls_; });
  }
  void TearDown() override {
    StopLoop();
    device_->Reset();
  }

  ActivationContext Context(uint64_t features = kVersion1) {
    ActivationContext context;
    context.memory = mem_.memory();
    context.features = features;
    context.queues = {ActivatedQueue{rxq_->config(), rx_fd_.get()},
                      ActivatedQueue{txq_->config(), tx_fd_.get()}};
    context.interrupt = interrupt_;
    context.event_loop = loop_.get();
    return context;
  }
  void Activate(uint64_t features = kVersion1) {
    ASSERT_TRUE(device_->Activate(Context(features)).ok());
  }

  void StartLoop() {
    loop_thread_ = std::thread([this] { loop_->Run(); });
  }
  void StopLoop() {
    if (!loop_thread_.joinable()) return;
    loop_->Stop();
    loop_thread_.join();
  }
  // Returns once the loop has handled everything signalled before the call
  // (epoll reports ready descriptors oldest first).
  void SyncLoop() {
    UniqueFd barrier = MakeEventFd();
    std::atomic<bool> ran = false;
    ASSERT_TRUE(loop_
                    ->Add(barrier.get(), EPOLLIN,
                          [&](uint32_t) {
                            TakeEventCount(barrier.get());
                            ran = true;
                          })
                    .ok());
    Kick(barrier.get());
    EXPECT_TRUE(Eventually([&] { return ran.load(); }));
    ASSERT_TRUE(loop_->Remove(barrier.get()).ok());
  }
  void Kick(int fd) {
    const uint64_t one = 1;
    ASSERT_EQ(::write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  }

  void Record(std::span<const uint8_t> bytes) {
    std::lock_guard lock(output_mutex_);
    output_.insert(output_.end(), bytes.begin(), bytes.end());
    ++output_calls_;
  }
  std::vector<uint8_t> output() {
    std::lock_guard lock(output_mutex_);
    return output_;
  }

  void Put(uint64_t gpa, std::string_view text) {
    std::memcpy(mem_.host(gpa), text.data(), text.size());
  }
  std::string Get(uint64_t gpa, size_t length) {
    return std::string(reinterpret_cast<const char*>(mem_.host(gpa)), length);
  }
  std::vector<uint8_t> Config(uint32_t offset, size_t length) {
    std::vector<uint8_t> data(length, 0xee);
    device_->ReadConfig(offset, data);
    return data;
  }

  FakeGuestMemory mem_{kRamSize};
  // Pointers, so a test can lay the rings out afresh (e.g. after a reset).
  std::unique_ptr<VirtqueueBuilder> rxq_ =
      std::make_unique<VirtqueueBuilder>(mem_, kQueueSize, kRxRing);
  std::unique_ptr<VirtqueueBuilder> txq_ =
      std::make_unique<VirtqueueBuilder>(mem_, kQueueSize, kTxRing);
  UniqueFd rx_fd_ = MakeEventFd();
  UniqueFd tx_fd_ = MakeEventFd();
  std::shared_ptr<FakeInterrupt> interrupt_ = std::make_shared<FakeInterrupt>();
  std::unique_ptr<EventLoop> loop_;
  std::thread loop_thread_;
  std::shared_ptr<VirtioConsole> device_;
  std::atomic<int> input_ready_calls_ = 0;
  std::mutex output_mutex_;
  std::vector<uint8_t> output_;
  int output_calls_ = 0;
};

// ---- Identity, features, config space ----

TEST_F(VirtioConsoleTest, IsAConsoleWithTwoQueuesAndTheOfferedFeatures) {
  EXPECT_EQ(device_->device_id(), 3u);  // VIRTIO_ID_CONSOLE
  EXPECT_EQ(device_->num_queues(), 2);
  EXPECT_EQ(device_->device_features(),
            kVersion1 | kPacked | kIndirect | kEventIdx | kSize | kEmergWrite);
  EXPECT_EQ(device_->device_features() & (1ull << VIRTIO_CONSOLE_F_MULTIPORT), 0u);
  EXPECT_EQ(device_->config_size(), 12u);
}

TEST_F(VirtioConsoleTest, ConfigSpaceHoldsTheSizeInLittleEndian) {
  EXPECT_EQ(Config(0, 12), (std::vector<uint8_t>{132, 0, 43, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(Config(2, 2), (std::vector<uint8_t>{43, 0}));
  EXPECT_EQ(Config(1, 1), (std::vector<uint8_t>{0}));
}

TEST_F(VirtioConsoleTest, ConfigReadsPastTheEndAreZeroWithoutOverflow) {
  EXPECT_EQ(Config(10, 4), (std::vector<uint8_t>{0, 0, 0, 0}));
  EXPECT_EQ(Config(12, 4), (std::vector<uint8_t>{0, 0, 0, 0}));
  EXPECT_EQ(Config(0xfffffffe, 8), std::vector<uint8_t>(8, 0));
}

TEST_F(VirtioConsoleTest, SizeFieldsIgnoreWrites) {
  const uint8_t junk[4] = {1, 2, 3, 4};
  device_->WriteConfig(0, junk);
  device_->WriteConfig(4, junk);
  device_->WriteConfig(0xfffffffc, junk);
  EXPECT_EQ(Config(0, 4), (std::vector<uint8_t>{132, 0, 43, 0}));
  EXPECT_TRUE(output().empty());
}

TEST_F(VirtioConsoleTest, EmergWriteOutputsTheLowByteEvenBeforeActivation) {
  const uint8_t le32[4] = {'!', 0, 0, 0};
  device_->WriteConfig(VirtioConsole::kConfigEmergWr, le32);
  const uint8_t one[1] = {'?'};
  device_->WriteConfig(VirtioConsole::kConfigEmergWr, one);
  // A write into the middle of the field is not a character.
  device_->WriteConfig(VirtioConsole::kConfigEmergWr + 1, one);
  EXPECT_EQ(output(), Bytes("!?"));
  EXPECT_EQ(Config(VirtioConsole::kConfigEmergWr, 4), std::vector<uint8_t>(4, 0));
}

TEST_F(VirtioConsoleTest, ResizeUpdatesConfigAndTellsADriverThatAcceptedSize) {
  device_->Resize(100, 30);  // not active: no interrupt
  EXPECT_EQ(Config(0, 4), (std::vector<uint8_t>{100, 0, 30, 0}));
  EXPECT_EQ(interrupt_->config_changes(), 0);

  Activate(kVersion1 | kSize);
  device_->Resize(300, 80);
  EXPECT_EQ(Config(0, 4), (std::vector<uint8_t>{44, 1, 80, 0}));
  EXPECT_EQ(interrupt_->config_changes(), 1);
  device_->Resize(300, 80);  // unchanged: no interrupt
  EXPECT_EQ(interrupt_->config_changes(), 1);
}

TEST_F(VirtioConsoleTest, ResizeDoesNotInterruptADriverWithoutSize) {
  Activate(kVersion1);
  device_->Resize(100, 30);
  EXPECT_EQ(interrupt_->config_changes(), 0);
}

// ---- Activation ----

TEST_F(VirtioConsoleTest, ActivationRefusesBadContexts) {
  ActivationContext one_queue = Context();
  one_queue.queues.pop_back();
  EXPECT_FALSE(device_->Activate(std::move(one_queue)).ok());

  ActivationContext no_fd = Context();
  no_fd.queues[1].notify_fd = -1;
  EXPECT_FALSE(device_->Activate(std::move(no_fd)).ok());

  ActivationContext bad_size = Context();
  bad_size.queues[0].config.size = 3;  // not a power of two
  absl::Status status = device_->Activate(std::move(bad_size));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("receiveq0"), std::string_view::npos) << status;

  ActivationContext no_loop = Context();
  no_loop.event_loop = nullptr;
  EXPECT_FALSE(device_->Activate(std::move(no_loop)).ok());

  // None of the failures left anything registered: a good context works.
  Activate();
  EXPECT_FALSE(device_->Activate(Context()).ok()) << "activated twice without a reset";
}

// ---- transmitq: guest output ----

TEST_F(VirtioConsoleTest, TransmitSendsAMultiBufferChainInOrder) {
  Activate();
  Put(kData, "Hello, ");
  Put(kData + 0x100, "hvc0\r\n");
  uint16_t head = txq_->AddChain({{kData, 7, false}, {kData + 0x100, 6, false}});
  device_->ProcessTransmitQueue();

  EXPECT_EQ(output(), Bytes("Hello, hvc0\r\n"));
  ASSERT_EQ(txq_->used_idx(), 1);
  EXPECT_EQ(txq_->used(0).id, head);
  EXPECT_EQ(txq_->used(0).len, 0u);  // the device wrote nothing
  EXPECT_EQ(interrupt_->queue_notifications(), std::vector<uint16_t>{1});
  EXPECT_EQ(interrupt_->needs_reset(), 0);
}

TEST_F(VirtioConsoleTest, TransmitSendsSeveralChainsInOnePass) {
  Activate(kVersion1 | kIndirect);
  Put(kData, "one ");
  Put(kData + 0x100, "two ");
  Put(kData + 0x200, "three");
  uint16_t a = txq_->AddChain({{kData, 4, false}});
  uint16_t b = txq_->AddChain({{kData + 0x100, 4, false}});
  uint16_t c = txq_->AddIndirectChain(0x30000, {{kData + 0x200, 5, false}});
  device_->ProcessTransmitQueue();

  EXPECT_EQ(output(), Bytes("one two three"));
  ASSERT_EQ(txq_->used_idx(), 3);
  EXPECT_EQ(txq_->used(0).id, a);
  EXPECT_EQ(txq_->used(1).id, b);
  EXPECT_EQ(txq_->used(2).id, c);
  // One interrupt for the whole pass.
  EXPECT_EQ(interrupt_->queue_notifications(), std::vector<uint16_t>{1});
}

TEST_F(VirtioConsoleTest, TransmitRunsFromTheNotifyEventFd) {
  Activate();
  StartLoop();
  Put(kData, "kick");
  txq_->AddChain({{kData, 4, false}});
  Kick(tx_fd_.get());
  EXPECT_TRUE(Eventually([&] { return output() == Bytes("kick"); }));
  EXPECT_TRUE(Eventually([&] { return txq_->used_idx() == 1; }));
}

TEST_F(VirtioConsoleTest, TransmitPassIsBoundedAndComesBack) {
  txq_ = std::make_unique<VirtqueueBuilder>(mem_, 128, 0x10000);
  Activate();
  const int chains = VirtioConsole::kMaxChainsPerPass + 36;
  for (int i = 0; i < chains; ++i) {
    Put(kData + i, std::string(1, static_cast<char>('A' + i % 26)));
    txq_->AddChain({{kData + static_cast<uint64_t>(i), 1, false}});
  }
  device_->ProcessTransmitQueue();
  EXPECT_EQ(txq_->used_idx(), VirtioConsole::kMaxChainsPerPass);
  // The device kicked itself to finish later.
  EXPECT_EQ(TakeEventCount(tx_fd_.get()), 1u);
  device_->ProcessTransmitQueue();
  EXPECT_EQ(txq_->used_idx(), chains);
  EXPECT_EQ(TakeEventCount(tx_fd_.get()), 0u);
  EXPECT_EQ(output().size(), static_cast<size_t>(chains));
}

TEST_F(VirtioConsoleTest, TransmitBoundsTheBytesTakenFromOneChain) {
  Activate();
  const uint32_t big = VirtioConsole::kMaxTransmitChainBytes + 1000;
  txq_->AddChain({{kData, big, false}});
  device_->ProcessTransmitQueue();
  EXPECT_EQ(output().size(), VirtioConsole::kMaxTransmitChainBytes);
  EXPECT_EQ(txq_->used_idx(), 1);
  EXPECT_EQ(interrupt_->needs_reset(), 0);
}

TEST_F(VirtioConsoleTest, TransmitChainWithWritableBuffersNeedsReset) {
  Activate();
  Put(kData, "secret");
  txq_->AddChain({{kData, 6, false}, {kData + 0x100, 16, true}});
  device_->ProcessTransmitQueue();
  EXPECT_TRUE(output().empty());
  EXPECT_EQ(txq_->used_idx(), 0);
  EXPECT_EQ(interrupt_->needs_reset(), 1);

  // The device leaves its queues alone until reset.
  Put(kData + 0x200, "more");
  txq_->AddChain({{kData + 0x200, 4, false}});
  device_->ProcessTransmitQueue();
  EXPECT_TRUE(output().empty());
  EXPECT_EQ(interrupt_->needs_reset(), 1);
}

TEST_F(VirtioConsoleTest, TransmitMalformedRingNeedsReset) {
  Activate();
  txq_->AddChain({{kRamSize - 2, 16, false}});  // runs off the end of RAM
  device_->ProcessTransmitQueue();
  EXPECT_EQ(interrupt_->needs_reset(), 1);
  EXPECT_TRUE(output().empty());
  EXPECT_EQ(txq_->used_idx(), 0);
}

TEST_F(VirtioConsoleTest, TransmitWithEventIdxAsksForTheNextKick) {
  Activate(kVersion1 | kEventIdx);
  txq_->AddChain({{kData, 1, false}});
  txq_->AddChain({{kData, 1, false}});
  device_->ProcessTransmitQueue();
  EXPECT_EQ(txq_->avail_event(), 2);
}

// ---- receiveq: typed input ----

TEST_F(VirtioConsoleTest, ReceiveFillsBuffersAndReportsBytesWritten) {
  Activate();
  uint16_t a = rxq_->AddChain({{kData, 4, true}});
  uint16_t b = rxq_->AddChain({{kData + 0x100, 2, true}, {kData + 0x200, 64, true}});
  EXPECT_EQ(device_->ReceiveInput(Bytes("hello, guest")), 12u);

  ASSERT_EQ(rxq_->used_idx(), 2);
  EXPECT_EQ(rxq_->used(0).id, a);
  EXPECT_EQ(rxq_->used(0).len, 4u);
  EXPECT_EQ(rxq_->used(1).id, b);
  EXPECT_EQ(rxq_->used(1).len, 8u);
  EXPECT_EQ(Get(kData, 4), "hell");
  EXPECT_EQ(Get(kData + 0x100, 2), "o,");
  EXPECT_EQ(Get(kData + 0x200, 6), " guest");
  EXPECT_EQ(interrupt_->queue_notifications(), std::vector<uint16_t>{0});
  EXPECT_EQ(input_ready_calls_, 0);
}

TEST_F(VirtioConsoleTest, ReceiveTakesOnlyWhatFits) {
  Activate();
  rxq_->AddChain({{kData, 3, true}});
  EXPECT_EQ(device_->ReceiveInput(Bytes("abcdef")), 3u);
  EXPECT_EQ(Get(kData, 3), "abc");
  EXPECT_EQ(rxq_->used(0).len, 3u);
}

TEST_F(VirtioConsoleTest, ReceiveWithoutBuffersAcceptsNothingUntilTheDriverPostsSome) {
  Activate();
  StartLoop();
  EXPECT_EQ(device_->ReceiveInput(Bytes("x")), 0u);
  EXPECT_EQ(input_ready_calls_, 0);

  rxq_->AddChain({{kData, 16, true}});
  Kick(rx_fd_.get());
  EXPECT_TRUE(Eventually([&] { return input_ready_calls_ == 1; }));
  EXPECT_EQ(device_->ReceiveInput(Bytes("x")), 1u);
  EXPECT_EQ(Get(kData, 1), "x");

  // A kick when nothing was refused does not wake the console.
  rxq_->AddChain({{kData + 0x100, 16, true}});
  Kick(rx_fd_.get());
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(input_ready_calls_, 1);
}

TEST_F(VirtioConsoleTest, ReceiveWithEventIdxAsksForAKickWhenOutOfBuffers) {
  Activate(kVersion1 | kEventIdx);
  rxq_->AddChain({{kData, 1, true}});
  EXPECT_EQ(device_->ReceiveInput(Bytes("ab")), 1u);
  // The driver must kick when it makes entry 1 available.
  EXPECT_EQ(rxq_->avail_event(), 1);
}

TEST_F(VirtioConsoleTest, InputBeforeActivationWaitsAndActivationWakesTheConsole) {
  rxq_->AddChain({{kData, 16, true}});
  EXPECT_EQ(device_->ReceiveInput(Bytes("early")), 0u);
  EXPECT_EQ(rxq_->used_idx(), 0);
  Activate();
  EXPECT_EQ(input_ready_calls_, 1);
  EXPECT_EQ(device_->ReceiveInput(Bytes("early")), 5u);
}

TEST_F(VirtioConsoleTest, ReceiveChainWithReadableBuffersNeedsReset) {
  Activate();
  rxq_->AddChain({{kData, 4, false}, {kData + 0x100, 16, true}});
  EXPECT_EQ(device_->ReceiveInput(Bytes("hi")), 0u);
  EXPECT_EQ(interrupt_->needs_reset(), 1);
  EXPECT_EQ(rxq_->used_idx(), 0);
  EXPECT_EQ(Get(kData + 0x100, 2), std::string(2, '\0'));
  // Broken until reset: input is refused without touching the ring.
  rxq_->AddChain({{kData + 0x200, 16, true}});
  EXPECT_EQ(device_->ReceiveInput(Bytes("hi")), 0u);
  EXPECT_EQ(rxq_->used_idx(), 0);
}

TEST_F(VirtioConsoleTest, ReceiveChainWithNoRoomNeedsReset) {
  Activate();
  rxq_->AddChain({{kData, 0, true}});
  EXPECT_EQ(device_->ReceiveInput(Bytes("hi")), 0u);
  EXPECT_EQ(interrupt_->needs_reset(), 1);
  EXPECT_EQ(rxq_->used_idx(), 0);
}

TEST_F(VirtioConsoleTest, ReceiveMalformedRingNeedsReset) {
  Activate();
  rxq_->PublishHead(kQueueSize + 3);  // a head past the table
  EXPECT_EQ(device_->ReceiveInput(Bytes("hi")), 0u);
  EXPECT_EQ(interrupt_->needs_reset(), 1);
}

TEST_F(VirtioConsoleTest, ReceiveKeepsTheChainsFilledBeforeAMalformedOne) {
  Activate();
  rxq_->AddChain({{kData, 2, true}});
  rxq_->AddChain({{kData + 0x100, 2, false}});  // readable: malformed
  EXPECT_EQ(device_->ReceiveInput(Bytes("abcd")), 2u);
  EXPECT_EQ(rxq_->used_idx(), 1);
  EXPECT_EQ(interrupt_->needs_reset(), 1);
}

// ---- Reset ----

TEST_F(VirtioConsoleTest, ResetStopsAllQueueWorkAndAllowsReactivation) {
  Activate();
  device_->Reset();
  EXPECT_EQ(device_->ReceiveInput(Bytes("x")), 0u);
  Put(kData, "late");
  txq_->AddChain({{kData, 4, false}});
  device_->ProcessTransmitQueue();
  EXPECT_TRUE(output().empty());
  EXPECT_EQ(txq_->used_idx(), 0);
  // The notify eventfds are no longer on the loop.
  EXPECT_FALSE(loop_->Remove(tx_fd_.get()).ok());
  EXPECT_FALSE(loop_->Remove(rx_fd_.get()).ok());

  // The driver sets the rings up again from scratch.
  rxq_ = std::make_unique<VirtqueueBuilder>(mem_, kQueueSize, kRxRing);
  txq_ = std::make_unique<VirtqueueBuilder>(mem_, kQueueSize, kTxRing);
  Activate();
  EXPECT_EQ(input_ready_calls_, 1);  // the refused "x" may now go in
  Put(kData, "back");
  txq_->AddChain({{kData, 4, false}});
  device_->ProcessTransmitQueue();
  EXPECT_EQ(output(), Bytes("back"));
}

TEST_F(VirtioConsoleTest, ResetWaitsForATransmitPassInFlight) {
  std::mutex mutex;
  std::condition_variable cv;
  bool entered = false, release = false;
  device_ =
      VirtioConsole::Create(VirtioConsoleOptions{.output = [&](std::span<const uint8_t> bytes) {
        Record(bytes);
        std::unique_lock lock(mutex);
        entered = true;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
      }});
  Activate();
  StartLoop();
  Put(kData, "slow");
  txq_->AddChain({{kData, 4, false}});
  Kick(tx_fd_.get());
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return entered; }));
  }
  std::atomic<bool> reset_done = false;
  std::thread resetter([&] {
    device_->Reset();
    reset_done = true;
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(reset_done) << "Reset returned while the pass was still running";
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  resetter.join();
  EXPECT_TRUE(reset_done);
  EXPECT_EQ(txq_->used_idx(), 1);  // the pass in flight finished

  // Nothing runs after Reset, even if the driver kicks.
  Put(kData + 0x100, "gone");
  txq_->AddChain({{kData + 0x100, 4, false}});
  Kick(tx_fd_.get());
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(output(), Bytes("slow"));
}

// ---- Through a real Console ----

TEST_F(VirtioConsoleTest, ConsoleInputWaitsForReceiveBuffersAndThenArrives) {
  auto shutdown = Shutdown::Create();
  ASSERT_TRUE(shutdown.ok());
  auto console = Console::Create(-1, -1, shutdown->get());
  ASSERT_TRUE(console.ok());
  ConnectConsoleInput(**console, device_);
  ASSERT_TRUE((*console)->Attach(*loop_).ok());
  Activate();
  StartLoop();
  SyncLoop();  // the Console's own wake-ups (new sink, activation) are done

  (*console)->HandleInput(Bytes("uname -a\r"));  // no buffers yet: stays in the Console
  EXPECT_EQ(rxq_->used_idx(), 0);
  SyncLoop();
  EXPECT_EQ(rxq_->used_idx(), 0);

  uint16_t head = rxq_->AddChain({{kData, 64, true}});
  Kick(rx_fd_.get());
  ASSERT_TRUE(Eventually([&] { return rxq_->used_idx() == 1; }));
  EXPECT_EQ(rxq_->used(0).id, head);
  EXPECT_EQ(rxq_->used(0).len, 9u);
  EXPECT_EQ(Get(kData, 9), "uname -a\r");
  StopLoop();  // before the Console goes away
}

}  // namespace
}  // namespace skiff::virtio
