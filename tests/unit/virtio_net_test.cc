#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <thread>

#include "devices/virtio/net.h"
#include "devices/virtio/net_abi.h"
#include "devices/virtio/split_ring.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/net_test_fakes.h"
#include "tests/unit/virtqueue_builder.h"
#include "vmm/event_loop.h"

namespace skiff::virtio {
namespace {

using ::skiff::net::testing::FakeNetInterrupt;
using ::skiff::net::testing::FakePacketPort;
using ::skiff::virtio::testing::VirtqueueBuilder;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t Bit(int n) { return 1ull << n; }
constexpr uint64_t kV1 = Bit(VIRTIO_F_VERSION_1);
constexpr uint64_t kMrg = Bit(vnet::kFMrgRxbuf);
constexpr net::MacAddress kMac{0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
constexpr size_t kHdr = net::kVnetHeaderSize;

// A frame as the driver or the tap sees it: a recognisable virtio-net
// header (num_buffers deliberately garbage) and a patterned payload.
std::vector<uint8_t> Frame(size_t payload, uint8_t seed) {
  std::vector<uint8_t> frame(kHdr + payload);
  frame[0] = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
  frame[1] = 0;
  frame[2] = 54;  // hdr_len
  frame[6] = 34;  // csum_start
  frame[8] = 16;  // csum_offset
  frame[10] = 0xee;
  frame[11] = 0xee;  // num_buffers: the device must overwrite it
  for (size_t i = 0; i < payload; ++i) frame[kHdr + i] = static_cast<uint8_t>(seed + i * 7);
  return frame;
}

bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

class VirtioNetTest : public ::testing::Test {
 protected:
  static constexpr uint16_t kQueueSize = 16;

  void SetUp() override { loop_ = std::move(EventLoop::Create()).value(); }
  void TearDown() override {
    StopLoop();
    net_.reset();
  }

  void MakeDevice(uint16_t pairs) {
    NetBackends backends;
    for (uint16_t p = 0; p < pairs; ++p) {
      auto port = std::make_unique<FakePacketPort>();
      ports_.push_back(port.get());
      backends.ports.push_back(std::move(port));
    }
    auto net = VirtioNet::CreateWithBackends("test0", kMac, std::move(backends));
    ASSERT_TRUE(net.ok()) << net.status();
    net_ = *net;
  }

  ActivationContext Context(uint64_t features, uint16_t queue_size = kQueueSize) {
    queues_.clear();
    notify_.clear();
    ActivationContext context;
    context.memory = mem_.memory();
    context.features = features;
    context.interrupt = irq_;
    context.event_loop = loop_.get();
    for (uint16_t q = 0; q < net_->num_queues(); ++q) {
      queues_.push_back(std::make_unique<VirtqueueBuilder>(mem_, queue_size, 0x10000ull * (q + 1)));
      notify_.emplace_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
      context.queues.push_back(ActivatedQueue{queues_.back()->config(), notify_.back().get()});
    }
    return context;
  }

  void Activate(uint64_t features, uint16_t queue_size = kQueueSize) {
    absl::Status status = net_->Activate(Context(features, queue_size));
    ASSERT_TRUE(status.ok()) << status;
  }

  void StartLoop() {
    loop_thread_ = std::thread([this] { loop_->Run(); });
  }
  void StopLoop() {
    if (!loop_thread_.joinable()) return;
    loop_->Stop();
    loop_thread_.join();
  }

  VirtqueueBuilder& rx(uint16_t pair = 0) { return *queues_[2 * pair]; }
  VirtqueueBuilder& tx(uint16_t pair = 0) { return *queues_[2 * pair + 1]; }

  uint64_t Alloc(uint32_t length) {
    const uint64_t gpa = next_buffer_;
    next_buffer_ += (length + 15) & ~15ull;
    return gpa;
  }
  void Put(uint64_t gpa, std::span<const uint8_t> bytes) {
    ASSERT_TRUE(mem_.memory().Write(gpa, bytes).ok());
  }
  std::vector<uint8_t> Get(uint64_t gpa, size_t length) {
    std::vector<uint8_t> bytes(length);
    EXPECT_TRUE(mem_.memory().Read(gpa, bytes).ok());
    return bytes;
  }

  // One transmit chain carrying the concatenation of `pieces`.
  uint16_t PostTx(const std::vector<std::vector<uint8_t>>& pieces, uint16_t pair = 0) {
    std::vector<VirtqueueBuilder::Buf> bufs;
    for (const auto& piece : pieces) {
      const uint64_t gpa = Alloc(static_cast<uint32_t>(piece.size()));
      Put(gpa, piece);
      bufs.push_back({gpa, static_cast<uint32_t>(piece.size()), false});
    }
    return tx(pair).AddChain(bufs);
  }

  // One receive chain of writable buffers of the given sizes; remembers
  // them so RxBytes can read back what the device wrote.
  uint16_t PostRx(const std::vector<uint32_t>& sizes, uint16_t pair = 0) {
    std::vector<VirtqueueBuilder::Buf> bufs;
    for (uint32_t size : sizes) bufs.push_back({Alloc(size), size, true});
    const uint16_t head = rx(pair).AddChain(bufs);
    rx_chains_[{pair, head}] = bufs;
    return head;
  }
  // The first `length` bytes the device wrote into receive chain `head`.
  std::vector<uint8_t> RxBytes(uint16_t head, uint32_t length, uint16_t pair = 0) {
    std::vector<uint8_t> bytes;
    for (const auto& buf : rx_chains_.at({pair, head})) {
      if (bytes.size() == length) break;
      const uint32_t n = std::min<uint32_t>(buf.len, length - static_cast<uint32_t>(bytes.size()));
      auto part = Get(buf.addr, n);
      bytes.insert(bytes.end(), part.begin(), part.end());
    }
    return bytes;
  }

  FakeGuestMemory mem_{8 << 20};
  std::unique_ptr<EventLoop> loop_;
  std::thread loop_thread_;
  std::shared_ptr<FakeNetInterrupt> irq_ = std::make_shared<FakeNetInterrupt>();
  std::vector<FakePacketPort*> ports_;  // owned by net_
  std::vector<UniqueFd> notify_;
  std::vector<std::unique_ptr<VirtqueueBuilder>> queues_;
  std::map<std::pair<uint16_t, uint16_t>, std::vector<VirtqueueBuilder::Buf>> rx_chains_;
  std::shared_ptr<VirtioNet> net_;
  uint64_t next_buffer_ = 0x100000;
};

// --- Identity, features, config space ---------------------------------------

TEST_F(VirtioNetTest, OffersNetFeaturesAndTwoQueuesForOnePair) {
  MakeDevice(1);
  EXPECT_EQ(net_->device_id(), static_cast<uint32_t>(VIRTIO_ID_NET));
  EXPECT_EQ(net_->num_queues(), 2);
  const uint64_t features = net_->device_features();
  for (int bit : {VIRTIO_F_VERSION_1, VIRTIO_F_RING_PACKED, vnet::kFRingEventIdx,
                  vnet::kFRingIndirectDesc, vnet::kFMac,
                  vnet::kFStatus, vnet::kFMrgRxbuf, vnet::kFCsum, vnet::kFGuestCsum,
                  vnet::kFGuestTso4, vnet::kFGuestTso6, vnet::kFGuestEcn, vnet::kFGuestUfo,
                  vnet::kFHostTso4, vnet::kFHostTso6, vnet::kFHostEcn, vnet::kFHostUfo}) {
    EXPECT_TRUE(features & Bit(bit)) << "bit " << bit;
  }
  EXPECT_FALSE(features & Bit(vnet::kFCtrlVq));
  EXPECT_FALSE(features & Bit(vnet::kFMq));
  EXPECT_THAT(net_->name(), HasSubstr("test0"));
}

TEST_F(VirtioNetTest, MultiqueueAddsControlQueueAndFeatures) {
  MakeDevice(3);
  EXPECT_EQ(net_->num_queues(), 7);  // rx0 tx0 rx1 tx1 rx2 tx2 ctrl
  EXPECT_TRUE(net_->device_features() & Bit(vnet::kFCtrlVq));
  EXPECT_TRUE(net_->device_features() & Bit(vnet::kFMq));
}

TEST_F(VirtioNetTest, ConfigSpaceHoldsMacStatusAndMaxPairs) {
  MakeDevice(3);
  EXPECT_EQ(net_->config_size(), 10u);
  std::vector<uint8_t> config(10);
  net_->ReadConfig(0, config);
  EXPECT_THAT(config, ElementsAre(0x52, 0x54, 0x00, 0xab, 0xcd, 0xef,  // mac
                                  vnet::kStatusLinkUp, 0,              // status
                                  3, 0));                              // max_virtqueue_pairs
  // A 4-byte read straddling the end: the tail reads as zero.
  std::vector<uint8_t> tail(4, 0xff);
  net_->ReadConfig(8, tail);
  EXPECT_THAT(tail, ElementsAre(3, 0, 0, 0));
  std::vector<uint8_t> far(4, 0xff);
  net_->ReadConfig(0xfffffffe, far);  // offset + i must not wrap into the config
  EXPECT_THAT(far, ElementsAre(0, 0, 0, 0));
  // Writes are ignored: the MAC is read-only with VIRTIO_F_VERSION_1.
  const uint8_t junk[6] = {1, 2, 3, 4, 5, 6};
  net_->WriteConfig(0, junk);
  net_->ReadConfig(0, config);
  EXPECT_EQ(config[0], 0x52);
}

TEST_F(VirtioNetTest, CreateRejectsBadOptionsWithClearErrors) {
  NetOptions options;
  options.tap = "skbad0";
  options.queues = 0;
  EXPECT_THAT(VirtioNet::Create(options).status().message(), HasSubstr("queues=0"));
  options.queues = VirtioNet::kMaxQueuePairs + 1;
  EXPECT_THAT(VirtioNet::Create(options).status().message(), HasSubstr("out of range"));
  options.queues = 1;
  options.mac = net::MacAddress{0x01, 0, 0x5e, 0, 0, 1};
  EXPECT_THAT(VirtioNet::Create(options).status().message(), HasSubstr("not a unicast"));
  options.mac.reset();
  options.host_ip = "10.0.0.1";
  EXPECT_THAT(VirtioNet::Create(options).status().message(), HasSubstr("both ip= and mask="));
  options.host_mask = "255.0.255.0";
  EXPECT_THAT(VirtioNet::Create(options).status().message(), HasSubstr("not a contiguous"));
  options.host_mask = "24";
  options.host_ip = "10.0.0.300";
  EXPECT_THAT(VirtioNet::Create(options).status().message(), HasSubstr("not an IPv4 address"));
  options.host_ip.reset();
  options.host_mask.reset();
  options.tun_path = "/nonexistent/net/tun";
  auto missing_tun = VirtioNet::Create(options);
  EXPECT_THAT(missing_tun.status().message(), HasSubstr("/nonexistent/net/tun is missing"));
  EXPECT_THAT(missing_tun.status().message(), HasSubstr("modprobe tun"));
  options.vhost = true;
  options.vhost_path = "/nonexistent/vhost-net";
  auto missing_vhost = VirtioNet::Create(options);
  EXPECT_THAT(missing_vhost.status().message(), HasSubstr("/nonexistent/vhost-net is missing"));
  EXPECT_THAT(missing_vhost.status().message(), HasSubstr("modprobe vhost_net"));
}

TEST_F(VirtioNetTest, ActivateRefusesRingsOutsideGuestRam) {
  MakeDevice(1);
  ActivationContext context = Context(kV1);
  context.queues[1].config.desc_table = 64ull << 20;  // past the 8 MiB of RAM
  absl::Status status = net_->Activate(std::move(context));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("queue 1"));
  // Nothing stayed registered: a correct activation works afterwards.
  Activate(kV1);
}

// --- Transmit -----------------------------------------------------------------

TEST_F(VirtioNetTest, TransmitsHeaderAndPayloadIntact) {
  MakeDevice(1);
  Activate(kV1 | kMrg);
  const std::vector<uint8_t> frame = Frame(100, 3);
  const uint16_t head = PostTx({frame});
  net_->OnTxNotify(0);
  ASSERT_EQ(ports_[0]->written().size(), 1u);
  EXPECT_EQ(ports_[0]->written()[0], frame);  // the header passes through untouched
  ASSERT_EQ(tx().used_idx(), 1);
  EXPECT_EQ(tx().used(0).id, head);
  EXPECT_EQ(tx().used(0).len, 0u);
  EXPECT_EQ(irq_->notified(1), 1);
  EXPECT_EQ(net_->counters().tx_packets, 1u);
  EXPECT_EQ(net_->counters().tx_bytes, 100u);
  EXPECT_FALSE(irq_->needs_reset());
  EXPECT_EQ(tx().used_flags(), 0);  // kicks re-enabled once the queue is empty
}

TEST_F(VirtioNetTest, TransmitGathersAFrameSpreadOverBuffers) {
  MakeDevice(1);
  Activate(kV1);
  const std::vector<uint8_t> frame = Frame(3000, 9);
  // Header alone, then the payload in three uneven pieces.
  std::vector<std::vector<uint8_t>> pieces = {
      {frame.begin(), frame.begin() + kHdr},
      {frame.begin() + kHdr, frame.begin() + kHdr + 1},
      {frame.begin() + kHdr + 1, frame.begin() + kHdr + 1500},
      {frame.begin() + kHdr + 1500, frame.end()}};
  PostTx(pieces);
  // And a second frame whose header is split across two buffers.
  const std::vector<uint8_t> second = Frame(60, 77);
  PostTx({{second.begin(), second.begin() + 5}, {second.begin() + 5, second.end()}});
  net_->OnTxNotify(0);
  ASSERT_EQ(ports_[0]->written().size(), 2u);
  EXPECT_EQ(ports_[0]->written()[0], frame);
  EXPECT_EQ(ports_[0]->written()[1], second);
  EXPECT_EQ(tx().used_idx(), 2);
}

TEST_F(VirtioNetTest, TransmitDropsOversizeAndShortFramesWithoutReset) {
  MakeDevice(1);
  Activate(kV1);
  PostTx({Frame(VirtioNet::kMaxFrameSize + 1, 1)});  // one byte too many
  const std::vector<uint8_t> largest = Frame(VirtioNet::kMaxFrameSize, 2);
  PostTx({largest});                            // exactly the limit
  PostTx({std::vector<uint8_t>(kHdr - 1, 0)});  // not even a header
  const std::vector<uint8_t> after = Frame(40, 5);
  PostTx({after});
  net_->OnTxNotify(0);
  ASSERT_EQ(ports_[0]->written().size(), 2u);
  EXPECT_EQ(ports_[0]->written()[0], largest);
  EXPECT_EQ(ports_[0]->written()[1], after);
  EXPECT_EQ(tx().used_idx(), 4);  // dropped chains are still returned
  const NetCounters counters = net_->counters();
  EXPECT_EQ(counters.tx_dropped_oversize, 1u);
  EXPECT_EQ(counters.tx_dropped_short, 1u);
  EXPECT_EQ(counters.tx_packets, 2u);
  EXPECT_FALSE(irq_->needs_reset());
}

TEST_F(VirtioNetTest, TransmitCountsTapErrorsAndGoesOn) {
  MakeDevice(1);
  Activate(kV1);
  ports_[0]->FailWrites(true);
  PostTx({Frame(10, 1)});
  net_->OnTxNotify(0);
  EXPECT_EQ(net_->counters().tx_errors, 1u);
  EXPECT_EQ(tx().used_idx(), 1);
  ports_[0]->FailWrites(false);
  PostTx({Frame(10, 2)});
  net_->OnTxNotify(0);
  EXPECT_EQ(ports_[0]->written().size(), 1u);
}

TEST_F(VirtioNetTest, TransmitChainWithWritableBufferNeedsReset) {
  MakeDevice(1);
  Activate(kV1);
  const std::vector<uint8_t> frame = Frame(20, 1);
  const uint64_t gpa = Alloc(64);
  Put(gpa, frame);
  tx().AddChain({{gpa, static_cast<uint32_t>(frame.size()), false}, {gpa + 48, 16, true}});
  net_->OnTxNotify(0);
  EXPECT_TRUE(irq_->needs_reset());
  EXPECT_TRUE(ports_[0]->written().empty());
  // Stopped until reset: later work is ignored.
  PostTx({Frame(20, 2)});
  net_->OnTxNotify(0);
  EXPECT_TRUE(ports_[0]->written().empty());
  EXPECT_FALSE(net_->rx_polling(0));
}

TEST_F(VirtioNetTest, MalformedTransmitRingNeedsReset) {
  MakeDevice(1);
  Activate(kV1);
  tx().PublishHead(kQueueSize + 3);  // a head past the table
  net_->OnTxNotify(0);
  EXPECT_TRUE(irq_->needs_reset());
}

TEST_F(VirtioNetTest, TransmitPassIsCappedAndRearmsItself) {
  MakeDevice(1);
  Activate(kV1, 256);
  constexpr int kFrames = VirtioNet::kTxChainsPerPass + 40;
  for (int i = 0; i < kFrames; ++i) PostTx({Frame(20, static_cast<uint8_t>(i))});
  net_->OnTxNotify(0);
  EXPECT_EQ(tx().used_idx(), VirtioNet::kTxChainsPerPass);
  EXPECT_TRUE(Readable(notify_[1].get())) << "the pass must re-arm its notification";
  net_->OnTxNotify(0);
  EXPECT_EQ(tx().used_idx(), kFrames);
  EXPECT_EQ(ports_[0]->written().size(), static_cast<size_t>(kFrames));
}

TEST_F(VirtioNetTest, TransmitRunsFromTheEventLoop) {
  MakeDevice(1);
  Activate(kV1);
  StartLoop();
  const std::vector<uint8_t> frame = Frame(64, 4);
  PostTx({frame});
  const uint64_t one = 1;
  ASSERT_EQ(::write(notify_[1].get(), &one, sizeof(one)), 8);
  ASSERT_TRUE(WaitFor([&] { return net_->counters().tx_packets == 1; }));
  StopLoop();
  EXPECT_EQ(ports_[0]->written()[0], frame);
  EXPECT_FALSE(Readable(notify_[1].get())) << "the notification must be drained";
}

// --- Receive ------------------------------------------------------------------

TEST_F(VirtioNetTest, ReceivesIntoOneChainWithoutMergeableBuffers) {
  MakeDevice(1);
  Activate(kV1);
  EXPECT_TRUE(net_->rx_polling(0));
  const uint16_t head = PostRx({kHdr, 1000, 1000});  // header in its own buffer
  std::vector<uint8_t> frame = Frame(1500, 8);
  ports_[0]->QueueFrame(frame);
  net_->OnTapReadable(0);
  ASSERT_EQ(rx().used_idx(), 1);
  EXPECT_EQ(rx().used(0).id, head);
  EXPECT_EQ(rx().used(0).len, frame.size());
  frame[10] = 1;  // num_buffers = 1, little-endian
  frame[11] = 0;
  EXPECT_EQ(RxBytes(head, static_cast<uint32_t>(frame.size())), frame);
  EXPECT_EQ(irq_->notified(0), 1);
  EXPECT_EQ(net_->counters().rx_packets, 1u);
  EXPECT_EQ(net_->counters().rx_bytes, 1500u);
}

TEST_F(VirtioNetTest, MergeableBuffersSpreadAFrameOverChains) {
  MakeDevice(1);
  Activate(kV1 | kMrg);
  const uint16_t a = PostRx({512});
  const uint16_t b = PostRx({200, 312});
  const uint16_t c = PostRx({512});
  const uint16_t d = PostRx({512});
  std::vector<uint8_t> frame = Frame(1200 - kHdr, 5);  // 1200 bytes: 512 + 512 + 176
  ports_[0]->QueueFrame(frame);
  std::vector<uint8_t> small = Frame(30, 6);
  ports_[0]->QueueFrame(small);
  net_->OnTapReadable(0);
  ASSERT_EQ(rx().used_idx(), 4);
  EXPECT_EQ(rx().used(0).id, a);
  EXPECT_EQ(rx().used(0).len, 512u);
  EXPECT_EQ(rx().used(1).id, b);
  EXPECT_EQ(rx().used(1).len, 512u);
  EXPECT_EQ(rx().used(2).id, c);
  EXPECT_EQ(rx().used(2).len, 176u);
  EXPECT_EQ(rx().used(3).id, d);  // the next frame takes the next chain
  EXPECT_EQ(rx().used(3).len, small.size());
  frame[10] = 3;  // num_buffers in the first chain's header
  frame[11] = 0;
  std::vector<uint8_t> got = RxBytes(a, 512);
  auto more = RxBytes(b, 512);
  got.insert(got.end(), more.begin(), more.end());
  more = RxBytes(c, 176);
  got.insert(got.end(), more.begin(), more.end());
  EXPECT_EQ(got, frame);
  small[10] = 1;
  small[11] = 0;
  EXPECT_EQ(RxBytes(d, static_cast<uint32_t>(small.size())), small);
  EXPECT_EQ(irq_->notified(0), 1);  // one interrupt for the whole pass
}

TEST_F(VirtioNetTest, ReceiveWithoutBuffersPausesTapPollingUntilRxNotify) {
  MakeDevice(1);
  Activate(kV1 | kMrg);
  EXPECT_EQ(rx().used_flags(), kUsedFlagNoNotify);  // no rx kicks needed while polling
  const std::vector<uint8_t> frame = Frame(700, 1);
  ports_[0]->QueueFrame(frame);
  ports_[0]->QueueFrame(Frame(100, 2));
  const uint16_t first = PostRx({512});  // not enough for 712 bytes
  net_->OnTapReadable(0);
  EXPECT_EQ(rx().used_idx(), 0) << "a partial frame must not be published";
  EXPECT_FALSE(net_->rx_polling(0));
  EXPECT_EQ(rx().used_flags(), 0) << "rx kicks must be enabled while waiting";
  EXPECT_EQ(net_->counters().rx_pauses, 1u);
  EXPECT_EQ(ports_[0]->queued(), 1u) << "only the stuck frame may be read";

  const uint16_t second = PostRx({512});
  const uint16_t third = PostRx({512});
  net_->OnRxNotify(0);
  ASSERT_EQ(rx().used_idx(), 3);
  EXPECT_EQ(rx().used(0).id, first);
  EXPECT_EQ(rx().used(1).id, second);
  EXPECT_EQ(rx().used(1).len, 200u);
  EXPECT_EQ(rx().used(2).id, third);  // the second frame, read after resuming
  EXPECT_TRUE(net_->rx_polling(0));
  EXPECT_EQ(rx().used_flags(), kUsedFlagNoNotify);
  EXPECT_EQ(net_->counters().rx_packets, 2u);
  EXPECT_EQ(net_->counters().rx_dropped_no_room, 0u);
}

TEST_F(VirtioNetTest, PausedReceiveDoesNotBusyLoopOnTheEventLoop) {
  MakeDevice(1);
  Activate(kV1 | kMrg);
  StartLoop();
  // Two frames: after the first is stuck the port stays readable, so a
  // device that kept polling would be woken over and over.
  ports_[0]->QueueFrame(Frame(100, 1));
  ports_[0]->QueueFrame(Frame(100, 2));
  ASSERT_TRUE(WaitFor([&] { return net_->counters().rx_pauses == 1; }));
  const uint64_t wakeups = net_->counters().tap_wakeups;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(net_->counters().tap_wakeups, wakeups);
  EXPECT_EQ(ports_[0]->reads(), 1);

  PostRx({1024});
  PostRx({1024});
  const uint64_t one = 1;
  ASSERT_EQ(::write(notify_[0].get(), &one, sizeof(one)), 8);
  ASSERT_TRUE(WaitFor([&] { return net_->counters().rx_packets == 2; }));
  StopLoop();
  EXPECT_EQ(rx().used_idx(), 2);
  EXPECT_GE(irq_->notified(0), 1);
}

TEST_F(VirtioNetTest, ReceiveWakesOnTapReadinessThroughTheEventLoop) {
  MakeDevice(1);
  Activate(kV1 | kMrg);
  PostRx({2048});
  StartLoop();
  ports_[0]->QueueFrame(Frame(300, 3));
  ASSERT_TRUE(WaitFor([&] { return net_->counters().rx_packets == 1; }));
  StopLoop();
  EXPECT_EQ(rx().used(0).len, 312u);
}

TEST_F(VirtioNetTest, WaitingWithEventIdxRequestsAKickAtTheNextEntryEachTime) {
  MakeDevice(1);
  Activate(kV1 | kMrg | Bit(vnet::kFRingEventIdx));
  PostRx({512});
  ports_[0]->QueueFrame(Frame(1000, 1));  // needs two 512-byte chains
  net_->OnTapReadable(0);
  EXPECT_FALSE(net_->rx_polling(0));
  EXPECT_EQ(rx().avail_event(), 1) << "kick me when entry 1 is posted";
  PostRx({100});  // still not enough: 612 bytes
  net_->OnRxNotify(0);
  EXPECT_EQ(rx().used_idx(), 0);
  // The request must move past the chain just taken, or the driver's next
  // post would not kick (its event index would already be behind).
  EXPECT_EQ(rx().avail_event(), 2);
  PostRx({512});
  net_->OnRxNotify(0);
  ASSERT_EQ(rx().used_idx(), 3);
  EXPECT_EQ(rx().used(2).len, 1012u - 612u);
  EXPECT_TRUE(net_->rx_polling(0));
}

TEST_F(VirtioNetTest, TapReadErrorStopsPollingInsteadOfSpinning) {
  MakeDevice(1);
  Activate(kV1 | kMrg);
  PostRx({2048});
  ports_[0]->FailReads(true);
  ports_[0]->QueueFrame(Frame(10, 1));
  net_->OnTapReadable(0);
  EXPECT_EQ(net_->counters().rx_errors, 1u);
  EXPECT_FALSE(net_->rx_polling(0));
  // Out of the event loop altogether (a dead tap polls EPOLLERR forever).
  EXPECT_TRUE(loop_->Add(ports_[0]->fd(), EPOLLIN, [](uint32_t) {}).ok());
  EXPECT_TRUE(loop_->Remove(ports_[0]->fd()).ok());
  // Rx notifications do not bring polling back; a reset does.
  net_->OnRxNotify(0);
  EXPECT_FALSE(net_->rx_polling(0));
  ports_[0]->FailReads(false);
  net_->Reset();
  Activate(kV1 | kMrg);
  EXPECT_TRUE(net_->rx_polling(0));
}

TEST_F(VirtioNetTest, ActivateRefusesALegacyDriver) {
  MakeDevice(1);
  absl::Status status = net_->Activate(Context(kMrg));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("VIRTIO_F_VERSION_1"));
  EXPECT_FALSE(net_->rx_polling(0));
}

TEST_F(VirtioNetTest, FrameTooBigForANonMergeableBufferIsDroppedAndCounted) {
  MakeDevice(1);
  Activate(kV1);
  const uint16_t head = PostRx({200});
  ports_[0]->QueueFrame(Frame(500, 1));
  const std::vector<uint8_t> fits = Frame(100, 2);
  ports_[0]->QueueFrame(fits);
  net_->OnTapReadable(0);
  EXPECT_EQ(net_->counters().rx_dropped_no_room, 1u);
  ASSERT_EQ(rx().used_idx(), 1);  // the buffer was kept for the next frame
  EXPECT_EQ(rx().used(0).id, head);
  EXPECT_EQ(rx().used(0).len, fits.size());
  EXPECT_FALSE(irq_->needs_reset());
}

TEST_F(VirtioNetTest, FrameLargerThanTheWholeRingIsDroppedNotStuck) {
  MakeDevice(1);
  Activate(kV1 | kMrg, 4);
  for (int i = 0; i < 4; ++i) PostRx({100});  // 400 bytes of buffers in all
  ports_[0]->QueueFrame(Frame(1000, 1));
  const std::vector<uint8_t> fits = Frame(50, 2);
  ports_[0]->QueueFrame(fits);
  net_->OnTapReadable(0);
  EXPECT_EQ(net_->counters().rx_dropped_no_room, 1u);
  ASSERT_EQ(rx().used_idx(), 1);
  EXPECT_EQ(rx().used(0).len, fits.size());
  EXPECT_TRUE(net_->rx_polling(0));
}

TEST_F(VirtioNetTest, ReceiveChainWithReadableBufferNeedsReset) {
  MakeDevice(1);
  Activate(kV1 | kMrg);
  rx().AddChain({{Alloc(64), 64, false}, {Alloc(2048), 2048, true}});
  ports_[0]->QueueFrame(Frame(100, 1));
  net_->OnTapReadable(0);
  EXPECT_TRUE(irq_->needs_reset());
  EXPECT_FALSE(net_->rx_polling(0));
  EXPECT_EQ(rx().used_idx(), 0);
}

TEST_F(VirtioNetTest, ReceiveChainSmallerThanTheHeaderNeedsReset) {
  MakeDevice(1);
  Activate(kV1 | kMrg);
  PostRx({kHdr - 1});
  ports_[0]->QueueFrame(Frame(100, 1));
  net_->OnTapReadable(0);
  EXPECT_TRUE(irq_->needs_reset());
}

TEST_F(VirtioNetTest, ResetDropsTheWaitingFrameWithACountAndStopsPolling) {
  MakeDevice(1);
  Activate(kV1 | kMrg);
  ports_[0]->QueueFrame(Frame(100, 1));
  net_->OnTapReadable(0);  // no buffers: waits
  net_->Reset();
  EXPECT_EQ(net_->counters().rx_dropped_reset, 1u);
  EXPECT_FALSE(net_->rx_polling(0));
  // Handlers after reset do nothing, and a new activation starts clean.
  net_->OnTapReadable(0);
  net_->OnTxNotify(0);
  Activate(kV1 | kMrg);
  EXPECT_TRUE(net_->rx_polling(0));
  PostRx({1024});
  ports_[0]->QueueFrame(Frame(10, 2));
  net_->OnTapReadable(0);
  EXPECT_EQ(rx().used_idx(), 1);
}

// --- Offloads -------------------------------------------------------------------

TEST_F(VirtioNetTest, TapOffloadsFollowTheNegotiatedGuestFeatures) {
  MakeDevice(1);
  Activate(kV1 | Bit(vnet::kFGuestCsum) | Bit(vnet::kFGuestTso4) | Bit(vnet::kFGuestEcn) |
           Bit(vnet::kFHostTso6));
  net_->Reset();
  Activate(kV1);
  EXPECT_THAT(ports_[0]->offloads(),
              ElementsAre(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN, 0u /*reset*/, 0u));
}

// --- Control queue and multiqueue -------------------------------------------------

class VirtioNetCtrlTest : public VirtioNetTest {
 protected:
  static constexpr uint64_t kMq = Bit(vnet::kFCtrlVq) | Bit(vnet::kFMq);

  // Sends one control command; returns the ack byte the device wrote.
  uint8_t Command(uint8_t class_id, uint8_t command, std::vector<uint8_t> data,
                  uint16_t ctrl_queue) {
    std::vector<uint8_t> bytes = {class_id, command};
    bytes.insert(bytes.end(), data.begin(), data.end());
    const uint64_t out = Alloc(static_cast<uint32_t>(bytes.size()));
    Put(out, bytes);
    const uint64_t ack = Alloc(1);
    Put(ack, std::vector<uint8_t>{0xaa});
    VirtqueueBuilder& queue = *queues_[ctrl_queue];
    const uint16_t before = queue.used_idx();
    queue.AddChain({{out, static_cast<uint32_t>(bytes.size()), false}, {ack, 1, true}});
    net_->OnCtrlNotify();
    EXPECT_EQ(queue.used_idx(), before + 1);
    EXPECT_EQ(queue.used(before).len, 1u);
    return Get(ack, 1)[0];
  }
};

TEST_F(VirtioNetCtrlTest, PairsSetEnablesTapQueuesAndPolling) {
  MakeDevice(3);
  Activate(kV1 | kMq);
  // Until the driver says otherwise only the first pair is in use.
  EXPECT_EQ(net_->active_queue_pairs(), 1);
  EXPECT_EQ(ports_[0]->enabled(), true);
  EXPECT_EQ(ports_[1]->enabled(), false);
  EXPECT_EQ(ports_[2]->enabled(), false);
  EXPECT_TRUE(net_->rx_polling(0));
  EXPECT_FALSE(net_->rx_polling(1));

  EXPECT_EQ(Command(vnet::kCtrlMq, vnet::kCtrlMqVqPairsSet, {3, 0}, 6), vnet::kCtrlOk);
  EXPECT_EQ(net_->active_queue_pairs(), 3);
  EXPECT_EQ(ports_[2]->enabled(), true);
  EXPECT_TRUE(net_->rx_polling(2));
  EXPECT_EQ(irq_->notified(6), 1);

  EXPECT_EQ(Command(vnet::kCtrlMq, vnet::kCtrlMqVqPairsSet, {2, 0}, 6), vnet::kCtrlOk);
  EXPECT_EQ(ports_[2]->enabled(), false);
  EXPECT_FALSE(net_->rx_polling(2));

  // Pair 1 carries traffic now.
  PostRx({2048}, 1);
  ports_[1]->QueueFrame(Frame(64, 1));
  net_->OnTapReadable(1);
  EXPECT_EQ(rx(1).used_idx(), 1);
  EXPECT_EQ(irq_->notified(2), 1);
  PostTx({Frame(64, 2)}, 1);
  net_->OnTxNotify(1);
  EXPECT_EQ(ports_[1]->written().size(), 1u);
  EXPECT_EQ(irq_->notified(3), 1);
}

TEST_F(VirtioNetCtrlTest, InvalidCommandsAnswerErrorAndChangeNothing) {
  MakeDevice(3);
  Activate(kV1 | kMq);
  EXPECT_EQ(Command(vnet::kCtrlMq, vnet::kCtrlMqVqPairsSet, {0, 0}, 6), vnet::kCtrlErr);
  EXPECT_EQ(Command(vnet::kCtrlMq, vnet::kCtrlMqVqPairsSet, {4, 0}, 6), vnet::kCtrlErr);
  EXPECT_EQ(Command(vnet::kCtrlMq, vnet::kCtrlMqVqPairsSet, {0, 0x80}, 6), vnet::kCtrlErr);
  EXPECT_EQ(Command(vnet::kCtrlMq, vnet::kCtrlMqVqPairsSet, {2}, 6), vnet::kCtrlErr);  // short
  EXPECT_EQ(Command(vnet::kCtrlMq, 1 /*RSS_CONFIG*/, {}, 6), vnet::kCtrlErr);
  EXPECT_EQ(Command(0 /*RX*/, 0 /*PROMISC*/, {1}, 6), vnet::kCtrlErr);
  EXPECT_EQ(Command(1 /*MAC*/, 1 /*ADDR_SET*/, {2, 0, 0, 0, 0, 1}, 6), vnet::kCtrlErr);
  EXPECT_EQ(Command(2 /*VLAN*/, 0, {1, 0}, 6), vnet::kCtrlErr);
  EXPECT_EQ(Command(3 /*ANNOUNCE*/, 0, {}, 6), vnet::kCtrlErr);
  EXPECT_EQ(Command(5 /*GUEST_OFFLOADS*/, 0, {0, 0, 0, 0, 0, 0, 0, 0}, 6), vnet::kCtrlErr);
  EXPECT_EQ(Command(200, 200, {}, 6), vnet::kCtrlErr);
  EXPECT_EQ(net_->active_queue_pairs(), 1);
  EXPECT_FALSE(irq_->needs_reset());
}

TEST_F(VirtioNetCtrlTest, ControlQueueSitsAtIndexTwoWithoutMq) {
  MakeDevice(3);
  // CTRL_VQ without MQ: one pair, control queue right after it (§5.1.2).
  Activate(kV1 | Bit(vnet::kFCtrlVq));
  EXPECT_EQ(Command(vnet::kCtrlMq, vnet::kCtrlMqVqPairsSet, {2, 0}, 2), vnet::kCtrlErr);
  EXPECT_EQ(net_->active_queue_pairs(), 1);
  EXPECT_EQ(irq_->notified(2), 1);
}

TEST_F(VirtioNetCtrlTest, CommandWithoutRoomForTheAckNeedsReset) {
  MakeDevice(2);
  Activate(kV1 | kMq);
  const uint64_t out = Alloc(4);
  Put(out, std::vector<uint8_t>{vnet::kCtrlMq, vnet::kCtrlMqVqPairsSet, 2, 0});
  queues_[4]->AddChain({{out, 4, false}});
  net_->OnCtrlNotify();
  EXPECT_TRUE(irq_->needs_reset());
  EXPECT_EQ(net_->active_queue_pairs(), 1);
}

}  // namespace
}  // namespace skiff::virtio
