// virtio-net without vhost, over fake tap queues: the input picks the
// features the driver accepts (mergeable buffers or not, multiqueue with a
// control queue) and then a sequence of driver and tap events — transmit
// chains of odd shapes and sizes, receive chains of any size, frames from
// the tap (runts, jumbo, garbage headers), kicks, control commands, tap
// failures, device resets.
//
// Input: [pairs] [accepted features] [queue shape] then ops.
//
// Invariants beyond "no crash":
//  - every frame the device sends to the tap is one the driver posted, in
//    order, byte for byte (header included); the transmit used length is 0;
//  - every frame the driver receives (reassembled from the used ring over
//    num_buffers chains) is one the tap delivered, in order, byte for byte
//    apart from num_buffers; chains before the last of a merged frame are
//    full, and no used length exceeds its chain's writable bytes;
//  - the packet counters match what the driver saw;
//  - a control command gets the ack the spec demands, and an accepted
//    VQ_PAIRS_SET changes the active queue pairs;
//  - NEEDS_RESET only after the driver posted a malformed chain.
#include <linux/virtio_config.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "devices/net/packet_port.h"
#include "devices/virtio/net.h"
#include "devices/virtio/net_abi.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/net_test_fakes.h"
#include "tests/unit/virtqueue_builder.h"
#include "vmm/event_loop.h"
#include "vmm/unique_fd.h"

namespace skiff::virtio {
namespace {

using fuzz::FuzzInput;
using net::testing::FakeNetInterrupt;
using net::testing::FakePacketPort;
using testing::VirtqueueBuilder;
using Buf = VirtqueueBuilder::Buf;

constexpr uint64_t kRamSize = 1 << 20;
constexpr uint64_t kDataBase = 0x10000;
constexpr size_t kHdr = net::kVnetHeaderSize;
constexpr size_t kMaxTapFrame = 68 * 1024;  // what the device's bounce buffer holds
constexpr int kMaxOps = 96;
constexpr uint64_t Bit(int n) { return 1ull << n; }

// One queue as the driver keeps it: the ring, and the chains in flight (in
// posting order, which is also the order a virtio-net device consumes them).
struct DriverQueue {
  std::unique_ptr<VirtqueueBuilder> ring;
  UniqueFd notify;
  struct Chain {
    uint16_t head;
    std::vector<Buf> bufs;
  };
  std::deque<Chain> in_flight;
  uint16_t used_seen = 0;
  uint16_t size = 0;

  uint32_t FreeSlots() const {
    uint32_t used = 0;
    for (const Chain& c : in_flight) used += static_cast<uint32_t>(c.bufs.size());
    return size - used;
  }
};

class Harness {
 public:
  explicit Harness(FuzzInput& in) : in_(in) {}

  bool SetUp() {
    pairs_ = static_cast<uint16_t>(1 + in_.Below(2));
    NetBackends backends;
    for (uint16_t p = 0; p < pairs_; ++p) {
      auto port = std::make_unique<FakePacketPort>();
      ports_.push_back(port.get());
      backends.ports.push_back(std::move(port));
    }
    auto net =
        VirtioNet::CreateWithBackends("fuzz0", {0x52, 0x54, 0, 0, 0, 1}, std::move(backends));
    FUZZ_CHECK(net.ok(), "CreateWithBackends: %s", net.status().message());
    net_ = *net;
    auto loop = EventLoop::Create();
    FUZZ_CHECK(loop.ok(), "EventLoop::Create: %s", loop.status().message());
    loop_ = *std::move(loop);

    // The harness lays out split rings, so the driver declines the packed one.
    features_ = net_->device_features() & in_.Take<uint64_t>() & ~Bit(VIRTIO_F_RING_PACKED);
    if (in_.Take<uint8_t>() != 0xff) features_ |= Bit(VIRTIO_F_VERSION_1);
    shape_ = in_.Take<uint8_t>();
    rx_.resize(pairs_);
    return Activate();
  }

  void Step() {
    const uint16_t pair = static_cast<uint16_t>(in_.Below(UsablePairs()));
    switch (in_.Below(12)) {
      case 0:
      case 1:
        PostTx(pair);
        break;
      case 2:
      case 3:
        PostRx(pair);
        break;
      case 4:
        QueueFrame(pair);
        break;
      case 5:
        net_->OnTxNotify(pair);
        break;
      case 6:
        net_->OnRxNotify(pair);
        break;
      case 7:
        net_->OnTapReadable(pair);
        break;
      case 8:
        PostCtrl();
        net_->OnCtrlNotify();
        break;
      case 9:
        if (in_.TakeBool()) {
          ports_[pair]->FailReads(in_.TakeBool());
        } else {
          ports_[pair]->FailWrites(in_.TakeBool());
        }
        break;
      case 10:
        Reset();
        break;
      default:
        net_->OnTxNotify(pair);
        net_->OnRxNotify(pair);
        net_->OnCtrlNotify();
        break;
    }
    Check();
  }

  // The device is destroyed before the loop it registered with.
  void TearDown() { net_.reset(); }

 private:
  uint16_t num_queues() const { return net_->num_queues(); }
  uint16_t CtrlIndex() const {
    return (features_ & Bit(vnet::kFMq)) ? static_cast<uint16_t>(2 * pairs_) : 2;
  }
  bool Mergeable() const { return features_ & Bit(vnet::kFMrgRxbuf); }
  // Without MQ the driver uses pair 0 only, and queue 2 is the control
  // queue rather than pair 1's receive queue (§5.1.2).
  uint16_t UsablePairs() const { return (features_ & Bit(vnet::kFMq)) ? pairs_ : 1; }

  // Fresh rings for every queue (some left disabled), then DRIVER_OK.
  bool Activate() {
    queues_.clear();
    for (auto& pending : rx_) pending.clear();
    // A fresh interrupt per activation, so NEEDS_RESET is judged per activation.
    interrupt_ = std::make_shared<FakeNetInterrupt>();
    driver_erred_ = false;
    last_pairs_.reset();
    ActivationContext context;
    context.memory = mem_.memory();
    context.features = features_;
    context.interrupt = interrupt_;
    context.event_loop = loop_.get();
    for (uint16_t q = 0; q < num_queues(); ++q) {
      DriverQueue queue;
      queue.size = static_cast<uint16_t>(1u << ((shape_ >> (q % 4)) % 5));
      queue.ring = std::make_unique<VirtqueueBuilder>(mem_, queue.size, 0x1000ull * (q + 1));
      queue.notify = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
      QueueConfig config = queue.ring->config();
      config.ready = in_.Below(16) != 0;
      context.queues.push_back(ActivatedQueue{config, queue.notify.get()});
      queues_.push_back(std::move(queue));
    }
    if (!net_->Activate(std::move(context)).ok()) return false;
    active_ = true;
    return true;
  }

  void Reset() {
    net_->Reset();
    active_ = false;
    (void)Activate();
  }

  std::optional<uint64_t> Alloc(uint64_t bytes) {
    if (bytes > kRamSize - next_buffer_) return std::nullopt;
    const uint64_t at = next_buffer_;
    next_buffer_ += (bytes + 15) & ~15ull;
    return at;
  }

  // A buffer length, and whether its bytes come from the input (small
  // buffers) or from a pattern (large ones, so seeds stay small).
  std::pair<uint32_t, bool> TxLength() {
    switch (in_.Below(4)) {
      case 0:
        return {static_cast<uint32_t>(in_.Below(0x40)), true};
      case 1:
        return {kHdr, true};
      case 2:
        return {static_cast<uint32_t>(1 + in_.Below(0x800)), true};
      default:
        return {static_cast<uint32_t>(1 + in_.Below(0x11000)), false};  // past 64 KiB too
    }
  }

  // A transmit chain of 1-4 readable buffers (rarely a writable one: a
  // driver error the device must answer with NEEDS_RESET).
  void PostTx(uint16_t pair) {
    DriverQueue& q = queues_[2 * pair + 1];
    const uint64_t pieces = 1 + in_.Below(4);
    const bool bad = in_.Below(32) == 0;
    std::vector<Buf> bufs;
    std::vector<uint8_t> frame;
    for (uint64_t i = 0; i < pieces; ++i) {
      const auto [len, from_input] = TxLength();
      if (len == 0) continue;
      std::optional<uint64_t> at = Alloc(len);
      if (!at) return;
      std::vector<uint8_t> bytes(len);
      const auto given = in_.TakeBytes(from_input ? len : 0);
      std::copy(given.begin(), given.end(), bytes.begin());
      for (size_t j = given.size(); j < len; ++j) bytes[j] = static_cast<uint8_t>(j * 3 + i);
      FUZZ_CHECK(mem_.memory().Write(*at, bytes).ok(), "harness: buffer outside RAM");
      const bool writable = bad && i + 1 == pieces;
      bufs.push_back({*at, len, writable});
      if (!writable) frame.insert(frame.end(), bytes.begin(), bytes.end());
    }
    if (bufs.empty() || bufs.size() > q.FreeSlots()) return;
    const uint16_t head = q.ring->AddChain(bufs);
    q.in_flight.push_back({head, bufs});
    // (The writable piece may have been empty and so left out.)
    if (bufs.back().writable) {
      driver_erred_ = true;
    } else {
      tx_posted_[pair].push_back(std::move(frame));
    }
  }

  uint32_t RxLength() {
    switch (in_.Below(4)) {
      case 0:
        return static_cast<uint32_t>(in_.Below(0x40));
      case 1:
        return kHdr;
      case 2:
        return static_cast<uint32_t>(1 + in_.Below(0x800));
      default:
        return static_cast<uint32_t>(0x1000 * (1 + in_.Below(17)));
    }
  }

  void PostRx(uint16_t pair) {
    DriverQueue& q = queues_[2 * pair];
    const uint64_t pieces = 1 + in_.Below(4);
    const bool bad = in_.Below(32) == 0;  // a device-readable buffer first (if not empty)
    std::vector<Buf> bufs;
    uint64_t writable = 0;
    for (uint64_t i = 0; i < pieces; ++i) {
      const uint32_t len = RxLength();
      if (len == 0) continue;
      std::optional<uint64_t> at = Alloc(len);
      if (!at) return;
      const bool is_writable = !(bad && i == 0);
      bufs.push_back({*at, len, is_writable});
      if (is_writable) writable += len;
    }
    if (bufs.empty() || bufs.size() > q.FreeSlots()) return;
    const uint16_t head = q.ring->AddChain(bufs);
    q.in_flight.push_back({head, bufs});
    if (!bufs.front().writable || writable < kHdr) driver_erred_ = true;
  }

  void QueueFrame(uint16_t pair) {
    size_t len;
    switch (in_.Below(4)) {
      case 0:
        len = in_.Below(kHdr + 2);  // runts
        break;
      case 1:
        len = kHdr + in_.Below(0x600);
        break;
      case 2:
        len = kHdr + in_.Below(kMaxTapFrame - kHdr + 1);
        break;
      default:
        len = in_.remaining();
        break;
    }
    // Large frames: a header from the input, then a pattern.
    std::vector<uint8_t> frame(len);
    const auto given = in_.TakeBytes(len <= 0x800 ? len : kHdr);
    std::copy(given.begin(), given.end(), frame.begin());
    for (size_t j = given.size(); j < len; ++j) frame[j] = static_cast<uint8_t>(j ^ (j >> 8));
    ports_[pair]->QueueFrame(frame);
    tap_frames_[pair].push_back(std::move(frame));
  }

  void PostCtrl() {
    if (!(features_ & Bit(vnet::kFCtrlVq)) || CtrlIndex() >= queues_.size()) return;
    DriverQueue& q = queues_[CtrlIndex()];
    std::vector<uint8_t> command;
    if (in_.Below(4) != 0) {
      const uint16_t pairs = static_cast<uint16_t>(in_.Below(pairs_ + 2));
      command = {vnet::kCtrlMq, vnet::kCtrlMqVqPairsSet, static_cast<uint8_t>(pairs),
                 static_cast<uint8_t>(pairs >> 8)};
    }
    const auto extra = in_.TakeBytes(in_.Below(8));
    // (A loop: g++ 12 mistakes insert() into an empty vector for an overflow.)
    for (uint8_t byte : extra) command.push_back(byte);
    const uint32_t ack_len = static_cast<uint32_t>(in_.Below(8) == 0 ? in_.Below(3) : 1);
    std::vector<Buf> bufs;
    if (!command.empty()) {
      std::optional<uint64_t> at = Alloc(command.size());
      if (!at) return;
      FUZZ_CHECK(mem_.memory().Write(*at, command).ok(), "harness: buffer outside RAM");
      bufs.push_back({*at, static_cast<uint32_t>(command.size()), false});
    }
    if (ack_len > 0) {
      std::optional<uint64_t> at = Alloc(ack_len);
      if (!at) return;
      std::vector<uint8_t> junk(ack_len, 0xee);
      FUZZ_CHECK(mem_.memory().Write(*at, junk).ok(), "harness: buffer outside RAM");
      bufs.push_back({*at, ack_len, true});
    }
    if (bufs.empty() || bufs.size() > q.FreeSlots()) return;
    const uint16_t head = q.ring->AddChain(bufs);
    q.in_flight.push_back({head, bufs});
    ctrl_commands_[head] = command;
    if (ack_len == 0) driver_erred_ = true;
  }

  // New used entries of queue `index`, with the chains they complete (the
  // device consumes every virtio-net queue in posting order).
  std::vector<std::pair<DriverQueue::Chain, uint32_t>> TakeUsed(uint16_t index) {
    DriverQueue& q = queues_[index];
    std::vector<std::pair<DriverQueue::Chain, uint32_t>> done;
    while (q.used_seen != q.ring->used_idx()) {
      const auto used = q.ring->used(q.used_seen++);
      FUZZ_CHECK(!q.in_flight.empty() && q.in_flight.front().head == used.id,
                 "queue %u: used head %u is not the oldest chain in flight", index, used.id);
      done.emplace_back(std::move(q.in_flight.front()), used.len);
      q.in_flight.pop_front();
    }
    return done;
  }

  std::vector<uint8_t> Bytes(const Buf& b, uint32_t len) {
    std::vector<uint8_t> bytes(len);
    FUZZ_CHECK(mem_.memory().Read(b.addr, bytes).ok(), "harness: buffer outside RAM");
    return bytes;
  }

  void CheckTx(uint16_t pair) {
    for (const auto& [chain, len] : TakeUsed(static_cast<uint16_t>(2 * pair + 1))) {
      FUZZ_CHECK(len == 0, "transmit chain %u completed with used length %u", chain.head, len);
    }
    // What reached the tap is a subsequence, in order, of what was posted.
    // (written() copies every frame so far: only look when one was added.)
    const uint64_t sent = net_->counters().tx_packets;
    if (sent == tx_packets_seen_[pair]) return;
    tx_packets_seen_[pair] = sent;
    const auto written = ports_[pair]->written();
    auto& posted = tx_posted_[pair];
    for (; tx_checked_[pair] < written.size(); ++tx_checked_[pair]) {
      const auto& frame = written[tx_checked_[pair]];
      FUZZ_CHECK(frame.size() >= kHdr && frame.size() <= kHdr + VirtioNet::kMaxFrameSize,
                 "a %u-byte frame reached the tap", frame.size());
      while (!posted.empty() && posted.front() != frame) posted.pop_front();
      FUZZ_CHECK(!posted.empty(), "pair %u sent a frame the driver never posted (%u bytes)", pair,
                 frame.size());
      posted.pop_front();
    }
  }

  void CheckRx(uint16_t pair) {
    auto done = TakeUsed(static_cast<uint16_t>(2 * pair));
    auto& pending = rx_[pair];
    pending.insert(pending.end(), std::make_move_iterator(done.begin()),
                   std::make_move_iterator(done.end()));
    // Reassemble whole frames: the first chain's header names how many.
    while (!pending.empty()) {
      const auto& [first, first_len] = pending.front();
      FUZZ_CHECK(first_len >= kHdr, "received frame starts with a %u-byte used entry", first_len);
      const std::vector<uint8_t> head = Gather(first, kHdr);
      uint16_t num_buffers;
      std::memcpy(&num_buffers, &head[vnet::kNumBuffersOffset], 2);
      FUZZ_CHECK(num_buffers >= 1 && (Mergeable() || num_buffers == 1),
                 "num_buffers %u (mergeable %d)", num_buffers, Mergeable());
      if (pending.size() < num_buffers) break;  // cannot happen: frames complete at once
      std::vector<uint8_t> frame;
      for (uint16_t i = 0; i < num_buffers; ++i) {
        const auto& [chain, len] = pending[i];
        uint64_t writable = 0;
        for (const Buf& b : chain.bufs) writable += b.len;
        FUZZ_CHECK(len <= writable, "used length %u past %u writable bytes", len, writable);
        FUZZ_CHECK(i + 1 == num_buffers || len == writable,
                   "merged frame: chain %u of %u only %u of %u bytes full", i, num_buffers, len,
                   writable);
        const auto part = Gather(chain, len);
        frame.insert(frame.end(), part.begin(), part.end());
      }
      pending.erase(pending.begin(), pending.begin() + num_buffers);
      auto& delivered = tap_frames_[pair];
      auto matches = [&](const std::vector<uint8_t>& sent) {
        if (sent.size() != frame.size()) return false;
        return std::equal(sent.begin(), sent.begin() + vnet::kNumBuffersOffset, frame.begin()) &&
               std::equal(sent.begin() + kHdr, sent.end(), frame.begin() + kHdr);
      };
      while (!delivered.empty() && !matches(delivered.front())) delivered.pop_front();
      FUZZ_CHECK(!delivered.empty(), "pair %u received a %u-byte frame the tap never sent", pair,
                 frame.size());
      delivered.pop_front();
      ++rx_frames_;
    }
    FUZZ_CHECK(pending.empty(), "a frame was only partly delivered");
  }

  // The first `len` bytes of a chain's (writable) buffers.
  std::vector<uint8_t> Gather(const DriverQueue::Chain& chain, uint64_t len) {
    std::vector<uint8_t> bytes;
    for (const Buf& b : chain.bufs) {
      if (bytes.size() >= len) break;
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(b.len, len - bytes.size()));
      const auto part = Bytes(b, n);
      bytes.insert(bytes.end(), part.begin(), part.end());
    }
    FUZZ_CHECK(bytes.size() == len, "chain holds %u bytes, used length says %u", bytes.size(), len);
    return bytes;
  }

  void CheckCtrl() {
    if (!(features_ & Bit(vnet::kFCtrlVq)) || CtrlIndex() >= queues_.size()) return;
    for (const auto& [chain, len] : TakeUsed(CtrlIndex())) {
      FUZZ_CHECK(len == 1, "control chain completed with used length %u", len);
      const Buf* ack = nullptr;
      for (const Buf& b : chain.bufs) {
        if (b.writable) {
          ack = &b;
          break;
        }
      }
      FUZZ_CHECK(ack != nullptr, "a control chain without an ack buffer completed");
      const uint8_t got = Bytes(*ack, 1)[0];
      const std::vector<uint8_t>& command = ctrl_commands_[chain.head];
      bool valid = false;
      uint16_t pairs = 0;
      if (command.size() >= 4 && command[0] == vnet::kCtrlMq &&
          command[1] == vnet::kCtrlMqVqPairsSet && (features_ & Bit(vnet::kFMq))) {
        pairs = static_cast<uint16_t>(command[2] | command[3] << 8);
        valid = pairs >= 1 && pairs <= pairs_;
      }
      FUZZ_CHECK(got == (valid ? vnet::kCtrlOk : vnet::kCtrlErr), "control ack %u, expected %u",
                 got, valid ? vnet::kCtrlOk : vnet::kCtrlErr);
      if (valid) last_pairs_ = pairs;
    }
    if (last_pairs_) {
      FUZZ_CHECK(net_->active_queue_pairs() == *last_pairs_, "active pairs %u after setting %u",
                 net_->active_queue_pairs(), *last_pairs_);
    }
  }

  void Check() {
    if (!active_) return;
    for (uint16_t p = 0; p < UsablePairs(); ++p) {
      CheckTx(p);
      CheckRx(p);
    }
    CheckCtrl();
    const NetCounters counters = net_->counters();
    FUZZ_CHECK(counters.rx_packets == rx_frames_, "rx_packets %u, driver received %u",
               counters.rx_packets, rx_frames_);
    uint64_t sent = 0;
    for (const auto& [pair, checked] : tx_checked_) sent += checked;
    FUZZ_CHECK(counters.tx_packets == sent, "tx_packets %u, tap got %u", counters.tx_packets, sent);
    if (interrupt_->needs_reset()) {
      FUZZ_CHECK(driver_erred_, "NEEDS_RESET without a malformed chain");
    }
  }

  FuzzInput& in_;
  FakeGuestMemory mem_{kRamSize};
  std::unique_ptr<EventLoop> loop_;
  std::shared_ptr<FakeNetInterrupt> interrupt_ = std::make_shared<FakeNetInterrupt>();
  std::shared_ptr<VirtioNet> net_;
  std::vector<FakePacketPort*> ports_;  // owned by net_
  uint16_t pairs_ = 1;
  uint64_t features_ = 0;
  uint8_t shape_ = 0;
  bool active_ = false;
  std::vector<DriverQueue> queues_;
  uint64_t next_buffer_ = kDataBase;
  std::map<uint16_t, std::deque<std::vector<uint8_t>>> tx_posted_;
  std::map<uint16_t, size_t> tx_checked_;         // frames of written() checked, per pair
  std::map<uint16_t, uint64_t> tx_packets_seen_;  // tx_packets at the last look
  std::map<uint16_t, std::deque<std::vector<uint8_t>>> tap_frames_;
  std::vector<std::vector<std::pair<DriverQueue::Chain, uint32_t>>> rx_;
  std::map<uint16_t, std::vector<uint8_t>> ctrl_commands_;
  std::optional<uint16_t> last_pairs_;
  uint64_t rx_frames_ = 0;
  bool driver_erred_ = false;
};

}  // namespace
}  // namespace skiff::virtio

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skiff::fuzz::QuietLogs();
  skiff::fuzz::FuzzInput in(data, size);
  skiff::virtio::Harness harness(in);
  if (harness.SetUp()) {
    for (int op = 0; op < skiff::virtio::kMaxOps && !in.empty(); ++op) harness.Step();
  }
  harness.TearDown();
  return 0;
}
