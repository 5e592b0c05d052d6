#include "devices/virtio/net.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_format.h"
#include "devices/net/tap.h"
#include "devices/virtio/net_abi.h"
#include "devices/virtio/net_ctrl.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"

namespace skiff::virtio {
namespace {

using net::kVnetHeaderSize;

constexpr uint64_t Bit(int n) { return 1ull << n; }

// virtio 1.x fields are little-endian; Skiff copies them as native values.
static_assert(std::endian::native == std::endian::little);

// Everything the device offers, before vhost trims ring features.
constexpr uint64_t kBaseFeatures =
    Bit(VIRTIO_F_VERSION_1) | Bit(VIRTIO_F_RING_PACKED) | Bit(vnet::kFRingEventIdx) |
    Bit(vnet::kFRingIndirectDesc) | Bit(vnet::kFMac) | Bit(vnet::kFStatus) | Bit(vnet::kFMrgRxbuf) |
    Bit(vnet::kFCsum) | Bit(vnet::kFGuestCsum) | Bit(vnet::kFGuestTso4) | Bit(vnet::kFGuestTso6) |
    Bit(vnet::kFGuestEcn) | Bit(vnet::kFGuestUfo) | Bit(vnet::kFHostTso4) | Bit(vnet::kFHostTso6) |
    Bit(vnet::kFHostEcn) | Bit(vnet::kFHostUfo);
constexpr uint64_t kMultiqueueFeatures = Bit(vnet::kFCtrlVq) | Bit(vnet::kFMq);

// The fields of struct virtio_net_config Skiff fills (mac, status,
// max_virtqueue_pairs); no MTU, speed or RSS, whose features it does not
// offer.
constexpr uint32_t kConfigSize = 10;

// A received frame's bounce buffer: header, Ethernet + VLAN header and a
// 64 KiB GSO payload, rounded up.
constexpr size_t kRxBufferSize = 68 * 1024;

// Logs the 1st, 2nd, 4th, 8th... occurrence, so a flood costs a few lines.
bool WorthLogging(uint64_t count) { return (count & (count - 1)) == 0; }

void DrainEventFd(int fd) {
  uint64_t value;
  while (::read(fd, &value, sizeof(value)) < 0 && errno == EINTR) {
  }
}

}  // namespace

// One receive/transmit queue pair and its back-end.
struct VirtioNet::Pair {
  std::unique_ptr<net::PacketPort> port;
  std::unique_ptr<VhostNet> vhost;

  // Per activation.
  std::optional<Virtqueue> rx, tx;
  int rx_notify_fd = -1;
  int tx_notify_fd = -1;
  // The port fd is in the event loop only while polled: a detached
  // multiqueue tap queue (or a deleted tap) polls EPOLLERR even with no
  // events requested, which would spin the loop.
  bool rx_polling = false;
  bool port_broken = false;  // a read failed: receive stopped until reset
  bool rx_waiting = false;   // a frame waits for the driver's buffers
  bool rx_kicks = true;      // rx notifications enabled in the ring
  std::vector<UniqueFd> call_relays;

  // A frame read from the port and not yet delivered (frame_len > 0), and
  // the receive chains already popped for it.
  std::vector<uint8_t> frame;
  size_t frame_len = 0;
  std::vector<DescriptorChain> held;
  uint64_t held_bytes = 0;
};

struct VirtioNet::Activation {
  GuestMemory memory;
  uint64_t features = 0;
  std::shared_ptr<VirtioInterrupt> interrupt;
  EventLoop* loop = nullptr;
  std::optional<Virtqueue> ctrl;
  std::vector<int> watched_fds;
};

absl::StatusOr<std::shared_ptr<VirtioNet>> VirtioNet::Create(const NetOptions& options) {
  const std::string label = absl::StrFormat("tap %s", options.tap);
  if (options.queues < 1 || options.queues > kMaxQueuePairs) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: queues=%d is out of range 1-%d", label,
                                                      options.queues, kMaxQueuePairs));
  }
  net::MacAddress mac;
  if (options.mac) {
    mac = *options.mac;
    if ((mac[0] & 1) || mac == net::MacAddress{}) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: mac %s is not a unicast address", label, net::FormatMac(mac)));
    }
  } else {
    mac = net::RandomMac();
  }
  ASSIGN_OR_RETURN(std::optional<net::HostAddress> host,
                   net::ParseHostAddress(options.tap, options.host_ip, options.host_mask));

  NetBackends backends;
  if (options.vhost) {
    auto ioctl = std::make_shared<SystemIoctl>();
    for (uint16_t i = 0; i < options.queues; ++i) {
      ASSIGN_OR_RETURN(auto vhost, VhostNet::Open(options.vhost_path, ioctl, label));
      backends.vhost.push_back(std::move(vhost));
    }
  }
  net::TapOptions tap{options.tap, options.queues, host, options.tun_path};
  ASSIGN_OR_RETURN(auto queues, net::OpenTap(tap));
  for (auto& queue : queues) backends.ports.push_back(std::move(queue));
  auto device = CreateWithBackends(options.tap, mac, std::move(backends));
  if (device.ok()) {
    LOG_INFO("virtio-net", "%s: mac %s, %d queue pair(s)%s", label, net::FormatMac(mac),
             options.queues, options.vhost ? ", vhost-net" : "");
  }
  return device;
}

absl::StatusOr<std::shared_ptr<VirtioNet>> VirtioNet::CreateWithBackends(std::string tap_name,
                                                                         net::MacAddress mac,
                                                                         NetBackends backends) {
  const size_t pairs = backends.ports.size();
  if (pairs < 1 || pairs > kMaxQueuePairs) {
    return absl::InvalidArgumentError(absl::StrFormat("tap %s: %d queue pairs is out of range 1-%d",
                                                      tap_name, pairs, kMaxQueuePairs));
  }
  for (const auto& port : backends.ports) {
    if (!port) return absl::InvalidArgumentError("virtio-net: missing packet port");
  }
  uint64_t features = kBaseFeatures | (pairs > 1 ? kMultiqueueFeatures : 0);
  if (!backends.vhost.empty()) {
    if (backends.vhost.size() != pairs) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tap %s: %d vhost-net handles for %d queue pairs", tap_name,
                          backends.vhost.size(), pairs));
    }
    // Offer only the ring features every vhost-net instance implements.
    uint64_t supported = VhostNet::kRingFeatures;
    for (const auto& vhost : backends.vhost) {
      if (!vhost) return absl::InvalidArgumentError("virtio-net: missing vhost-net handle");
      supported &= vhost->features();
    }
    if (!(supported & Bit(VIRTIO_F_VERSION_1))) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "tap %s: this kernel's vhost-net lacks VIRTIO_F_VERSION_1; use vhost=off", tap_name));
    }
    features &= ~(VhostNet::kRingFeatures & ~supported);
    // vhost-net walks split rings only (Linux has no packed-ring vhost), so
    // with it every queue stays split, whatever VHOST_GET_FEATURES says.
    features &= ~Bit(VIRTIO_F_RING_PACKED);
  }
  return std::make_shared<VirtioNet>(Key{}, std::move(tap_name), mac, std::move(backends),
                                     features);
}

VirtioNet::VirtioNet(Key, std::string tap_name, net::MacAddress mac, NetBackends backends,
                     uint64_t features)
    : tap_name_(std::move(tap_name)),
      mac_(mac),
      features_(features),
      vhost_(!backends.vhost.empty()) {
  for (size_t i = 0; i < backends.ports.size(); ++i) {
    auto pair = std::make_unique<Pair>();
    pair->port = std::move(backends.ports[i]);
    if (vhost_) pair->vhost = std::move(backends.vhost[i]);
    pairs_.push_back(std::move(pair));
  }
}

VirtioNet::~VirtioNet() {
  std::lock_guard lock(mutex_);
  StopLocked();
}

uint32_t VirtioNet::device_id() const { return VIRTIO_ID_NET; }

uint16_t VirtioNet::num_queues() const {
  return pairs_.size() > 1 ? static_cast<uint16_t>(2 * pairs_.size() + 1) : 2;
}

uint16_t VirtioNet::ctrl_queue_index() const {
  // §5.1.2: the control queue follows the last pair the driver may use.
  const bool mq = active_ && (active_->features & Bit(vnet::kFMq));
  return mq ? static_cast<uint16_t>(2 * pairs_.size()) : 2;
}

uint32_t VirtioNet::config_size() const { return kConfigSize; }

void VirtioNet::ReadConfig(uint32_t offset, std::span<uint8_t> data) {
  // Immutable after construction: no lock.
  uint8_t config[kConfigSize] = {};
  std::memcpy(config, mac_.data(), mac_.size());
  const uint16_t status = vnet::kStatusLinkUp;  // little-endian hosts only
  std::memcpy(config + 6, &status, sizeof(status));
  const uint16_t max_pairs = static_cast<uint16_t>(pairs_.size());
  std::memcpy(config + 8, &max_pairs, sizeof(max_pairs));
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = uint64_t{offset} + i;
    data[i] = at < kConfigSize ? config[at] : 0;
  }
}

std::string VirtioNet::name() const { return absl::StrFormat("virtio-net (tap %s)", tap_name_); }

NetCounters VirtioNet::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

bool VirtioNet::rx_polling(uint16_t pair) const {
  std::lock_guard lock(mutex_);
  return pair < pairs_.size() && pairs_[pair]->rx_polling;
}

uint16_t VirtioNet::active_queue_pairs() const {
  std::lock_guard lock(mutex_);
  return active_pairs_;
}

// ---------------------------------------------------------------------------
// Activation and reset.

absl::Status VirtioNet::Activate(ActivationContext context) {
  std::lock_guard lock(mutex_);
  if (active_) return absl::FailedPreconditionError(name() + ": activated twice");
  absl::Status status = ActivateLocked(context);
  if (!status.ok()) StopLocked();
  return status;
}

absl::Status VirtioNet::ActivateLocked(ActivationContext& context) {
  if (context.event_loop == nullptr || context.interrupt == nullptr) {
    return absl::InvalidArgumentError(name() + ": activation without event loop or interrupt");
  }
  if (context.queues.size() != num_queues()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: activated with %d queues, expected %d",
                                                      name(), context.queues.size(), num_queues()));
  }
  if (vhost_ && (context.features & Bit(VIRTIO_F_RING_PACKED))) {
    // Never offered with vhost (see CreateWithBackends), so a transport
    // cannot get here; refused rather than trimmed, since a driver that
    // believes it negotiated packed rings would lay them out so.
    return absl::FailedPreconditionError(name() + ": vhost-net cannot run packed rings");
  }
  active_ = std::make_unique<Activation>();
  Activation& act = *active_;
  act.memory = context.memory;
  act.features = context.features & features_;  // never trust more than was offered
  if (!(act.features & Bit(VIRTIO_F_VERSION_1))) {
    // Legacy drivers use a 10-byte header without MRG_RXBUF; Skiff and its
    // tap speak only the 12-byte one.
    return absl::FailedPreconditionError(name() + ": the driver did not accept VIRTIO_F_VERSION_1");
  }
  act.interrupt = std::move(context.interrupt);
  act.loop = context.event_loop;
  failed_ = false;
  active_pairs_ = 1;

  const QueueFeatures queue_features{
      .indirect = (act.features & Bit(vnet::kFRingIndirectDesc)) != 0,
      .event_idx = (act.features & Bit(vnet::kFRingEventIdx)) != 0,
      .packed = (act.features & Bit(VIRTIO_F_RING_PACKED)) != 0};
  auto make_queue = [&](uint16_t index) -> absl::StatusOr<std::optional<Virtqueue>> {
    const ActivatedQueue& queue = context.queues[index];
    if (!queue.config.ready) return std::optional<Virtqueue>();
    auto created = Virtqueue::Create(queue.config, max_queue_size(), queue_features, act.memory);
    if (!created.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: queue %d: %s", name(), index, created.status().message()));
    }
    return std::optional<Virtqueue>(std::move(*created));
  };

  // Without MQ the driver uses only the first pair (§5.1.2).
  const uint16_t usable = (act.features & Bit(vnet::kFMq)) ? queue_pairs() : 1;
  for (uint16_t p = 0; p < usable; ++p) {
    Pair& pair = *pairs_[p];
    ASSIGN_OR_RETURN(pair.rx, make_queue(2 * p));
    ASSIGN_OR_RETURN(pair.tx, make_queue(2 * p + 1));
    pair.rx_notify_fd = context.queues[2 * p].notify_fd;
    pair.tx_notify_fd = context.queues[2 * p + 1].notify_fd;
    if (pair.rx && !vhost_ && pair.frame.empty()) pair.frame.resize(kRxBufferSize);
  }
  const uint16_t ctrl_index = ctrl_queue_index();
  if ((act.features & Bit(vnet::kFCtrlVq)) && ctrl_index < context.queues.size()) {
    ASSIGN_OR_RETURN(act.ctrl, make_queue(ctrl_index));
  }

  // The tap may now hand the guest what the driver said it can take.
  const unsigned offload = net::TunOffloadFlags(act.features);
  if (absl::Status s = pairs_[0]->port->SetOffload(offload); !s.ok()) {
    LOG_WARN("virtio-net", "%s: %s; continuing without receive offloads", name(), s.message());
    (void)pairs_[0]->port->SetOffload(0);
  }
  if (queue_pairs() > 1) RETURN_IF_ERROR(SetActivePairs(1));

  for (uint16_t p = 0; p < usable; ++p) {
    Pair& pair = *pairs_[p];
    if (vhost_) {
      RETURN_IF_ERROR(StartVhost(p));
      continue;
    }
    if (pair.tx) RETURN_IF_ERROR(Watch(pair.tx_notify_fd, EPOLLIN, Source::kTxNotify, p));
    if (pair.rx) {
      RETURN_IF_ERROR(Watch(pair.rx_notify_fd, EPOLLIN, Source::kRxNotify, p));
      // Receive kicks are only needed while waiting for buffers.
      RETURN_IF_ERROR(pair.rx->SetNotification(act.memory, false));
      pair.rx_kicks = false;
      UpdateRxPolling(p);
    }
  }
  if (act.ctrl) {
    RETURN_IF_ERROR(
        Watch(context.queues[ctrl_index].notify_fd, EPOLLIN, Source::kCtrlNotify, ctrl_index));
  }
  return absl::OkStatus();
}

absl::Status VirtioNet::StartVhost(uint16_t p) {
  Activation& act = *active_;
  Pair& pair = *pairs_[p];
  if (!pair.rx || !pair.tx) {
    LOG_WARN("virtio-net", "%s: queue pair %d not fully enabled by the driver; vhost not started",
             name(), p);
    return absl::OkStatus();
  }
  // Interrupts go straight from vhost to KVM when the transport has an
  // irqfd for the queue; otherwise through an eventfd Skiff relays.
  auto call_fd = [&](uint16_t queue) -> absl::StatusOr<int> {
    int fd = act.interrupt->QueueIrqFd(queue);
    if (fd >= 0) return fd;
    UniqueFd relay(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!relay) {
      return absl::InternalError(
          absl::StrFormat("%s: eventfd for queue %d: %s", name(), queue, std::strerror(errno)));
    }
    fd = relay.get();
    pair.call_relays.push_back(std::move(relay));
    RETURN_IF_ERROR(Watch(fd, EPOLLIN, Source::kCallRelay, queue));
    return fd;
  };
  VhostRing rx{pair.rx->config(), pair.rx_notify_fd, -1};
  VhostRing tx{pair.tx->config(), pair.tx_notify_fd, -1};
  ASSIGN_OR_RETURN(rx.call_fd, call_fd(static_cast<uint16_t>(2 * p)));
  ASSIGN_OR_RETURN(tx.call_fd, call_fd(static_cast<uint16_t>(2 * p + 1)));
  return pair.vhost->Start(act.memory, act.features, rx, tx, pair.port->fd());
}

void VirtioNet::Reset() {
  std::lock_guard lock(mutex_);
  StopLocked();
}

void VirtioNet::StopLocked() {
  if (!active_) return;
  Activation& act = *active_;
  for (auto& pair : pairs_) {
    if (pair->vhost) pair->vhost->Stop();
  }
  for (int fd : act.watched_fds) {
    if (absl::Status s = act.loop->Remove(fd); !s.ok()) {
      LOG_WARN("virtio-net", "%s: %s", name(), s.message());
    }
  }
  (void)pairs_[0]->port->SetOffload(0);
  for (uint16_t p = 0; p < queue_pairs(); ++p) SetRxPolling(p, false);
  for (auto& pair : pairs_) {
    if (pair->frame_len > 0) ++counters_.rx_dropped_reset;
    pair->rx.reset();
    pair->tx.reset();
    pair->rx_notify_fd = pair->tx_notify_fd = -1;
    pair->rx_waiting = pair->port_broken = false;
    pair->rx_kicks = true;
    pair->call_relays.clear();
    pair->frame_len = 0;
    pair->held.clear();
    pair->held_bytes = 0;
  }
  active_.reset();
  failed_ = false;
  ++generation_;
}

// ---------------------------------------------------------------------------
// Event loop plumbing.

absl::Status VirtioNet::Watch(int fd, uint32_t events, Source source, uint16_t index) {
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: queue %d has no notification eventfd", name(), index));
  }
  std::weak_ptr<VirtioNet> weak = weak_from_this();
  const uint64_t generation = generation_;
  RETURN_IF_ERROR(active_->loop->Add(fd, events, [weak, generation, source, index, fd](uint32_t) {
    if (auto self = weak.lock()) self->Dispatch(generation, source, index, fd);
  }));
  active_->watched_fds.push_back(fd);
  return absl::OkStatus();
}

void VirtioNet::Dispatch(uint64_t generation, Source source, uint16_t index, int fd) {
  std::lock_guard lock(mutex_);
  // A handler from before a reset: its fd may belong to someone else now.
  if (!active_ || generation != generation_) return;
  if (source != Source::kTap) DrainEventFd(fd);  // level-triggered: always drain
  switch (source) {
    case Source::kTxNotify:
      TxLocked(index);
      break;
    case Source::kRxNotify:
      RxLocked(index);
      break;
    case Source::kTap:
      ++counters_.tap_wakeups;
      RxLocked(index);
      break;
    case Source::kCtrlNotify:
      CtrlLocked();
      break;
    case Source::kCallRelay:
      active_->interrupt->NotifyQueue(index);
      break;
  }
}

void VirtioNet::OnTxNotify(uint16_t pair) {
  std::lock_guard lock(mutex_);
  TxLocked(pair);
}

void VirtioNet::OnRxNotify(uint16_t pair) {
  std::lock_guard lock(mutex_);
  RxLocked(pair);
}

void VirtioNet::OnTapReadable(uint16_t pair) {
  std::lock_guard lock(mutex_);
  ++counters_.tap_wakeups;
  RxLocked(pair);
}

void VirtioNet::OnCtrlNotify() {
  std::lock_guard lock(mutex_);
  CtrlLocked();
}

void VirtioNet::Fail(const absl::Status& why) {
  if (failed_) return;
  failed_ = true;
  LOG_ERROR("virtio-net", "%s: %s; device needs reset", name(), why.message());
  for (uint16_t p = 0; p < queue_pairs(); ++p) SetRxPolling(p, false);
  active_->interrupt->NeedsReset();
}

void VirtioNet::NotifyIfNeeded(Virtqueue& queue, uint16_t queue_index) {
  auto should = queue.ShouldNotify(active_->memory);
  if (!should.ok()) return Fail(should.status());
  if (*should) active_->interrupt->NotifyQueue(queue_index);
}

// ---------------------------------------------------------------------------
// Transmit: guest -> tap.

void VirtioNet::TxLocked(uint16_t p) {
  if (!active_ || failed_ || vhost_ || p >= pairs_.size() || !pairs_[p]->tx) return;
  Pair& pair = *pairs_[p];
  Virtqueue& queue = *pair.tx;
  const GuestMemory& memory = active_->memory;
  const uint16_t queue_index = static_cast<uint16_t>(2 * p + 1);
  // No kicks while draining; re-enabled (and re-checked) once empty.
  if (absl::Status s = queue.SetNotification(memory, false); !s.ok()) return Fail(s);
  bool used = false;
  uint16_t done = 0;
  for (;;) {
    if (done == kTxChainsPerPass) {
      // Let other queues run; a fresh notification brings us back.
      const uint64_t one = 1;
      if (::write(pair.tx_notify_fd, &one, sizeof(one)) < 0) {
        LOG_WARN("virtio-net", "%s: re-arming transmit queue %d: %s", name(), queue_index,
                 std::strerror(errno));
      }
      break;
    }
    auto chain = queue.Pop(memory);
    if (!chain.ok()) return Fail(chain.status());
    if (!chain->has_value()) {
      if (absl::Status s = queue.SetNotification(memory, true); !s.ok()) return Fail(s);
      auto pending = queue.AvailableCount(memory);
      if (!pending.ok()) return Fail(pending.status());
      if (*pending == 0) break;
      if (absl::Status s = queue.SetNotification(memory, false); !s.ok()) return Fail(s);
      continue;
    }
    if (absl::Status s = Transmit(pair, **chain); !s.ok()) return Fail(s);
    // Transmit buffers are device-readable only: nothing written.
    if (absl::Status s = queue.PushUsed(memory, (*chain)->head, 0); !s.ok()) return Fail(s);
    used = true;
    ++done;
  }
  if (used) NotifyIfNeeded(queue, queue_index);
}

absl::Status VirtioNet::Transmit(Pair& pair, const DescriptorChain& chain) {
  if (!chain.writable.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("transmit chain %d has device-writable buffers", chain.head));
  }
  // A driver error the device can survive: drop the frame, keep the queue.
  // Oversized frames break the driver's "MUST NOT" of §5.1.6.2; dropping
  // (as a NIC drops a giant) costs the guest one frame, not its link.
  if (chain.readable_bytes < kVnetHeaderSize) {
    if (WorthLogging(++counters_.tx_dropped_short)) {
      LOG_WARN("virtio-net", "%s: dropped a %d-byte transmit chain (shorter than the header)",
               name(), chain.readable_bytes);
    }
    return absl::OkStatus();
  }
  if (chain.readable_bytes > kVnetHeaderSize + kMaxFrameSize) {
    if (WorthLogging(++counters_.tx_dropped_oversize)) {
      LOG_WARN("virtio-net", "%s: dropped a %d-byte transmit frame (limit %d)", name(),
               chain.readable_bytes - kVnetHeaderSize, kMaxFrameSize);
    }
    return absl::OkStatus();
  }
  ChainReader reader(active_->memory, chain);
  ASSIGN_OR_RETURN(auto spans, reader.RemainingSpans(chain.readable_bytes));
  std::vector<iovec> iov;
  iov.reserve(spans.size());
  for (const auto& span : spans) iov.push_back(iovec{span.data(), span.size()});
  if (absl::Status s = pair.port->WritePacket(iov); !s.ok()) {
    if (WorthLogging(++counters_.tx_errors)) LOG_WARN("virtio-net", "%s", s.message());
    return absl::OkStatus();
  }
  ++counters_.tx_packets;
  counters_.tx_bytes += chain.readable_bytes - kVnetHeaderSize;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Receive: tap -> guest.

void VirtioNet::SetRxPolling(uint16_t index, bool on) {
  Pair& pair = *pairs_[index];
  if (pair.rx_polling == on) return;
  const int fd = pair.port->fd();
  absl::Status status;
  if (on) {
    std::weak_ptr<VirtioNet> weak = weak_from_this();
    const uint64_t generation = generation_;
    status = active_->loop->Add(fd, EPOLLIN, [weak, generation, index, fd](uint32_t) {
      if (auto self = weak.lock()) self->Dispatch(generation, Source::kTap, index, fd);
    });
  } else {
    status = active_->loop->Remove(fd);
  }
  if (!status.ok()) {
    LOG_ERROR("virtio-net", "%s: %s", name(), status.message());
    if (on) return;
  }
  pair.rx_polling = on;
}

// Poll the tap queue only when a frame could go somewhere: the pair is in
// use, its receive queue is live and no frame already waits for buffers.
void VirtioNet::UpdateRxPolling(uint16_t p) {
  Pair& pair = *pairs_[p];
  SetRxPolling(p, !vhost_ && !failed_ && !pair.port_broken && pair.rx && p < active_pairs_ &&
                      !pair.rx_waiting);
}

void VirtioNet::RxLocked(uint16_t p) {
  if (!active_ || failed_ || vhost_ || p >= pairs_.size() || !pairs_[p]->rx) return;
  Pair& pair = *pairs_[p];
  bool pushed = false;
  bool stalled = false;
  for (uint16_t n = 0; n < kRxFramesPerPass && !stalled; ++n) {
    if (pair.frame_len == 0) {
      if (p >= active_pairs_) break;  // the driver no longer uses this pair
      const iovec iov{pair.frame.data(), pair.frame.size()};
      auto read = pair.port->ReadPacket(std::span<const iovec>(&iov, 1));
      if (!read.ok()) {
        // Only EAGAIN is transient on a tap; anything else (the tap was
        // deleted, the queue detached) would fail again on every wake-up.
        ++counters_.rx_errors;
        LOG_ERROR("virtio-net", "%s: %s; receive stopped on queue pair %d until reset", name(),
                  read.status().message(), p);
        pair.port_broken = true;
        break;
      }
      if (!read->has_value()) break;  // the tap queue is empty
      if (**read < kVnetHeaderSize) {
        if (WorthLogging(++counters_.rx_errors)) {
          LOG_WARN("virtio-net", "%s: %d-byte frame from the tap", name(), **read);
        }
        continue;
      }
      pair.frame_len = **read;
    }
    auto delivered = DeliverFrame(pair, &pushed);
    if (!delivered.ok()) return Fail(delivered.status());
    stalled = !*delivered;
  }
  if (pushed) NotifyIfNeeded(*pair.rx, static_cast<uint16_t>(2 * p));
  if (failed_) return;
  if (stalled) {
    // Keep the frame, stop polling the tap until the driver adds buffers:
    // its notification (enabled by HoldRxChain) brings us back.
    if (!pair.rx_waiting) ++counters_.rx_pauses;
    pair.rx_waiting = true;
  } else {
    pair.rx_waiting = false;
    if (pair.rx_kicks) {
      if (absl::Status s = pair.rx->SetNotification(active_->memory, false); !s.ok()) {
        return Fail(s);
      }
      pair.rx_kicks = false;
    }
  }
  UpdateRxPolling(p);
}

// Pops one more receive chain for the waiting frame. False: none available
// (receive notifications are then enabled, so the driver's next buffer
// wakes us).
absl::StatusOr<bool> VirtioNet::HoldRxChain(Pair& pair) {
  const GuestMemory& memory = active_->memory;
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<DescriptorChain> chain, pair.rx->Pop(memory));
    if (chain) {
      if (!chain->readable.empty() || chain->writable_bytes < kVnetHeaderSize) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "receive chain %d: %d readable bytes, %d writable (a header needs %d)", chain->head,
            chain->readable_bytes, chain->writable_bytes, kVnetHeaderSize));
      }
      pair.held_bytes += chain->writable_bytes;
      pair.held.push_back(std::move(*chain));
      return true;
    }
    // Ask for a kick, then look again: the driver may have added buffers
    // before it saw the request. Re-armed on every miss: with EVENT_IDX
    // the request names the next entry, which moves as we pop.
    RETURN_IF_ERROR(pair.rx->SetNotification(memory, true));
    pair.rx_kicks = true;
    ASSIGN_OR_RETURN(uint16_t pending, pair.rx->AvailableCount(memory));
    if (pending == 0) return false;
  }
}

// Copies the waiting frame into receive chains: one chain without
// vnet::kFMrgRxbuf, as many as needed with it. False: not enough
// buffers yet (the frame and the chains held so far stay for next time).
absl::StatusOr<bool> VirtioNet::DeliverFrame(Pair& pair, bool* pushed) {
  const GuestMemory& memory = active_->memory;
  const bool mergeable = active_->features & Bit(vnet::kFMrgRxbuf);
  auto enough = [&] { return mergeable ? pair.held_bytes >= pair.frame_len : !pair.held.empty(); };
  while (!enough()) {
    if (pair.held.size() >= pair.rx->size()) break;  // the whole ring is too small
    ASSIGN_OR_RETURN(bool held, HoldRxChain(pair));
    if (!held) return false;
  }
  if (!enough() || (!mergeable && pair.held[0].writable_bytes < pair.frame_len)) {
    // The driver's buffers cannot take this frame (it must size them for
    // the offloads it accepted, §5.1.6.3.1): drop it, keep the buffers.
    if (WorthLogging(++counters_.rx_dropped_no_room)) {
      LOG_WARN("virtio-net", "%s: dropped a %d-byte frame: receive buffers too small", name(),
               pair.frame_len - kVnetHeaderSize);
    }
    pair.frame_len = 0;
    return true;
  }

  size_t chains = 0;
  for (uint64_t covered = 0; covered < pair.frame_len; ++chains) {
    covered += pair.held[chains].writable_bytes;
  }
  // The tap leaves num_buffers alone; it is ours to fill (§5.1.6.4).
  const uint16_t num_buffers = static_cast<uint16_t>(chains);
  std::memcpy(pair.frame.data() + vnet::kNumBuffersOffset, &num_buffers, sizeof(num_buffers));
  size_t offset = 0;
  for (size_t i = 0; i < chains; ++i) {
    const DescriptorChain& chain = pair.held[i];
    const size_t length = std::min<size_t>(pair.frame_len - offset, chain.writable_bytes);
    ChainWriter writer(memory, chain);
    RETURN_IF_ERROR(writer.Write(std::span<const uint8_t>(pair.frame.data() + offset, length)));
    RETURN_IF_ERROR(pair.rx->PushUsed(memory, chain.head, static_cast<uint32_t>(length)));
    pair.held_bytes -= chain.writable_bytes;
    offset += length;
  }
  pair.held.erase(pair.held.begin(), pair.held.begin() + static_cast<ptrdiff_t>(chains));
  ++counters_.rx_packets;
  counters_.rx_bytes += pair.frame_len - kVnetHeaderSize;
  pair.frame_len = 0;
  *pushed = true;
  return true;
}

// ---------------------------------------------------------------------------
// Control queue.

absl::Status VirtioNet::SetActivePairs(uint16_t pairs) {
  for (uint16_t p = 0; p < queue_pairs(); ++p) {
    RETURN_IF_ERROR(pairs_[p]->port->SetQueueEnabled(p < pairs));
  }
  active_pairs_ = pairs;
  for (uint16_t p = 0; p < queue_pairs(); ++p) UpdateRxPolling(p);
  return absl::OkStatus();
}

void VirtioNet::CtrlLocked() {
  if (!active_ || failed_ || !active_->ctrl) return;
  Virtqueue& queue = *active_->ctrl;
  const GuestMemory& memory = active_->memory;
  bool used = false;
  for (uint16_t n = 0; n < kCtrlCommandsPerPass; ++n) {
    auto chain = queue.Pop(memory);
    if (!chain.ok()) return Fail(chain.status());
    if (!chain->has_value()) break;
    const DescriptorChain& command = **chain;
    if (command.writable_bytes < 1) {
      return Fail(absl::InvalidArgumentError(
          absl::StrFormat("control chain %d has no room for the ack", command.head)));
    }
    ChainReader reader(memory, command);
    NetCtrlOutcome outcome = HandleNetCtrlCommand(reader, active_->features, queue_pairs());
    if (outcome.queue_pairs) {
      if (absl::Status s = SetActivePairs(*outcome.queue_pairs); !s.ok()) {
        LOG_ERROR("virtio-net", "%s: %s", name(), s.message());
        outcome.ack = vnet::kCtrlErr;
      } else {
        LOG_DEBUG("virtio-net", "%s: driver uses %d queue pair(s)", name(), *outcome.queue_pairs);
      }
    }
    ChainWriter writer(memory, command);
    if (absl::Status s = writer.WriteObj(outcome.ack); !s.ok()) return Fail(s);
    if (absl::Status s = queue.PushUsed(memory, command.head, 1); !s.ok()) return Fail(s);
    used = true;
  }
  // More commands than one pass: the driver waits for each ack before the
  // next, so this only happens with a hostile driver; it must kick again.
  if (used) NotifyIfNeeded(queue, ctrl_queue_index());
}

}  // namespace skiff::virtio
