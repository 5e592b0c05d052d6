#include "devices/virtio/console.h"

#include <linux/virtio_config.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "vmm/console.h"
#include "vmm/log.h"

namespace skiff::virtio {
namespace {

// <linux/virtio_ring.h> does not compile as C++ (see split_ring.h).
constexpr uint64_t kFeatureIndirectDesc = 1ull << 28;  // VIRTIO_RING_F_INDIRECT_DESC
constexpr uint64_t kFeatureEventIdx = 1ull << 29;      // VIRTIO_RING_F_EVENT_IDX

constexpr uint64_t kFeatureSize = 1ull << VIRTIO_CONSOLE_F_SIZE;
constexpr uint64_t kFeatureEmergWrite = 1ull << VIRTIO_CONSOLE_F_EMERG_WRITE;

constexpr const char* QueueName(uint16_t index) {
  return index == VirtioConsole::kReceiveQueue ? "receiveq0" : "transmitq0";
}

// Prefixes a queue error with the device and queue it happened on.
absl::Status InQueue(uint16_t index, const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat("virtio-console ", QueueName(index), ": ", status.message()));
}

// Clears a notify eventfd's readiness (level-triggered epoll would call us
// again at once). The transport's eventfd may be blocking; we only read
// after epoll said it is readable.
void DrainEventFd(int fd) {
  uint64_t count;
  (void)!::read(fd, &count, sizeof(count));
}

}  // namespace

std::shared_ptr<VirtioConsole> VirtioConsole::Create(VirtioConsoleOptions options) {
  return std::make_shared<VirtioConsole>(Passkey{}, std::move(options));
}

VirtioConsole::VirtioConsole(Passkey, VirtioConsoleOptions options)
    : output_(std::move(options.output)), cols_(options.cols), rows_(options.rows) {}

VirtioConsole::~VirtioConsole() {
  std::lock_guard lock(mutex_);
  if (active_) UnregisterLocked(*active_);
}

uint32_t VirtioConsole::device_id() const { return VIRTIO_ID_CONSOLE; }

uint64_t VirtioConsole::device_features() const {
  return (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_PACKED) | kFeatureIndirectDesc |
         kFeatureEventIdx | kFeatureSize | kFeatureEmergWrite;
}

void VirtioConsole::ReadConfig(uint32_t offset, std::span<uint8_t> data) {
  std::array<uint8_t, kConfigSize> config{};
  {
    std::lock_guard lock(mutex_);
    config[kConfigCols] = static_cast<uint8_t>(cols_);
    config[kConfigCols + 1] = static_cast<uint8_t>(cols_ >> 8);
    config[kConfigRows] = static_cast<uint8_t>(rows_);
    config[kConfigRows + 1] = static_cast<uint8_t>(rows_ >> 8);
  }
  // max_nr_ports is only meaningful with MULTIPORT and emerg_wr is
  // write-only: both read as zero.
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = uint64_t{offset} + i;
    data[i] = at < kConfigSize ? config[at] : 0;
  }
}

void VirtioConsole::WriteConfig(uint32_t offset, std::span<const uint8_t> data) {
  if (offset != kConfigEmergWr || data.empty()) return;
  // Under the lock, so an emergency byte never lands inside a chain's text.
  std::lock_guard lock(mutex_);
  if (output_) output_(data.first(1));
}

absl::Status VirtioConsole::Activate(ActivationContext context) {
  std::function<void()> ready;
  {
    std::lock_guard lock(mutex_);
    if (active_) {
      return absl::FailedPreconditionError("virtio-console: activated again without a reset");
    }
    if (context.queues.size() != num_queues()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("virtio-console: %u queues at activation, expected %u",
                          context.queues.size(), num_queues()));
    }
    if (context.event_loop == nullptr || context.interrupt == nullptr) {
      return absl::InvalidArgumentError(
          "virtio-console: activation without an event loop or interrupt");
    }
    const QueueFeatures features{
        .indirect = (context.features & kFeatureIndirectDesc) != 0,
        .event_idx = (context.features & kFeatureEventIdx) != 0,
        .packed = (context.features & (1ull << VIRTIO_F_RING_PACKED)) != 0};
    Active active;
    active.memory = context.memory;
    active.interrupt = context.interrupt;
    active.event_loop = context.event_loop;
    active.features = context.features;
    for (uint16_t index : {kReceiveQueue, kTransmitQueue}) {
      const ActivatedQueue& queue = context.queues[index];
      if (!queue.config.ready) continue;  // a driver may leave a queue off
      if (queue.notify_fd < 0) {
        return InQueue(index, absl::InvalidArgumentError("no notification eventfd"));
      }
      auto created = Virtqueue::Create(queue.config, kQueueSize, features, active.memory);
      if (!created.ok()) return InQueue(index, created.status());
      // Ask for kicks from the start (with EVENT_IDX: from entry 0).
      if (absl::Status s = created->SetNotification(active.memory, true); !s.ok()) {
        return InQueue(index, s);
      }
      (index == kReceiveQueue ? active.rx : active.tx) = *std::move(created);
    }

    const uint64_t generation = ++generation_;
    std::weak_ptr<VirtioConsole> weak = weak_from_this();
    for (uint16_t index : {kReceiveQueue, kTransmitQueue}) {
      const bool is_rx = index == kReceiveQueue;
      if (!(is_rx ? active.rx : active.tx)) continue;
      const int fd = context.queues[index].notify_fd;
      absl::Status added = active.event_loop->Add(fd, EPOLLIN, [weak, generation, is_rx](uint32_t) {
        std::shared_ptr<VirtioConsole> self = weak.lock();
        if (!self) return;
        if (is_rx) {
          self->OnReceiveNotify(generation);
        } else {
          self->OnTransmitNotify(generation);
        }
      });
      if (!added.ok()) {
        UnregisterLocked(active);
        return InQueue(index, added);
      }
      (is_rx ? active.rx_fd : active.tx_fd) = fd;
    }
    active_ = std::move(active);
    // Input typed before DRIVER_OK (or since a reset) is waiting in the
    // Console: let it try the receive buffers the driver has posted.
    ready = TakeInputReadyLocked();
  }
  if (ready) ready();
  return absl::OkStatus();
}

void VirtioConsole::Reset() {
  std::lock_guard lock(mutex_);
  ++generation_;
  if (!active_) return;
  UnregisterLocked(*active_);
  active_.reset();
}

size_t VirtioConsole::ReceiveInput(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  if (bytes.empty()) return 0;
  if (!active_ || active_->failed || !active_->rx) {
    input_refused_ = true;  // Activate will ask the Console to try again
    return 0;
  }
  return ReceiveLocked(*active_, bytes);
}

void VirtioConsole::SetInputReadyCallback(std::function<void()> callback) {
  std::lock_guard lock(mutex_);
  input_ready_ = std::move(callback);
}

void VirtioConsole::Resize(uint16_t cols, uint16_t rows) {
  std::lock_guard lock(mutex_);
  if (cols == cols_ && rows == rows_) return;
  cols_ = cols;
  rows_ = rows;
  if (active_ && !active_->failed && (active_->features & kFeatureSize) != 0) {
    active_->interrupt->NotifyConfigChange();
  }
}

void VirtioConsole::ProcessTransmitQueue() {
  std::lock_guard lock(mutex_);
  if (active_ && !active_->failed) TransmitPassLocked(*active_);
}

void VirtioConsole::OnReceiveNotify(uint64_t generation) {
  std::function<void()> ready;
  {
    std::lock_guard lock(mutex_);
    if (generation != generation_ || !active_) return;
    DrainEventFd(active_->rx_fd);
    if (active_->failed) return;
    ready = TakeInputReadyLocked();
  }
  if (ready) ready();
}

void VirtioConsole::OnTransmitNotify(uint64_t generation) {
  std::lock_guard lock(mutex_);
  if (generation != generation_ || !active_) return;
  DrainEventFd(active_->tx_fd);
  if (!active_->failed) TransmitPassLocked(*active_);
}

void VirtioConsole::TransmitPassLocked(Active& active) {
  if (!active.tx) return;
  Virtqueue& queue = *active.tx;
  // No kicks while we are draining anyway; re-enabled when the ring is empty.
  if (absl::Status s = queue.SetNotification(active.memory, false); !s.ok()) {
    return FailLocked(active, InQueue(kTransmitQueue, s));
  }
  bool used_any = false;
  int chains = 0;
  for (;;) {
    if (chains == kMaxChainsPerPass) {
      // Come back after the loop has served everyone else.
      const uint64_t one = 1;
      (void)!::write(active.tx_fd, &one, sizeof(one));
      break;
    }
    auto chain = queue.Pop(active.memory);
    if (!chain.ok()) return FailLocked(active, InQueue(kTransmitQueue, chain.status()));
    if (!chain->has_value()) {
      // Ask for a kick, then look once more: the driver may have posted
      // after our Pop but before it saw the request.
      if (absl::Status s = queue.SetNotification(active.memory, true); !s.ok()) {
        return FailLocked(active, InQueue(kTransmitQueue, s));
      }
      auto pending = queue.AvailableCount(active.memory);
      if (!pending.ok()) return FailLocked(active, InQueue(kTransmitQueue, pending.status()));
      if (*pending == 0) break;
      continue;
    }
    ++chains;
    if (absl::Status s = TransmitChainLocked(active, **chain); !s.ok()) {
      return FailLocked(active, InQueue(kTransmitQueue, s));
    }
    if (absl::Status s = queue.PushUsed(active.memory, (*chain)->head, 0); !s.ok()) {
      return FailLocked(active, InQueue(kTransmitQueue, s));
    }
    used_any = true;
  }
  if (used_any) NotifyIfNeededLocked(active, queue, kTransmitQueue);
}

absl::Status VirtioConsole::TransmitChainLocked(Active& active, const DescriptorChain& chain) {
  // virtio 1.2 §5.3.6.1: the driver puts only device-readable buffers in a
  // transmitq.
  if (!chain.writable.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("chain %u has device-writable buffers", chain.head));
  }
  const uint32_t length = std::min(chain.readable_bytes, kMaxTransmitChainBytes);
  if (length < chain.readable_bytes && !warned_oversized_) {
    warned_oversized_ = true;
    LOG_WARN("virtio-console", "guest sent %u bytes in one buffer; only the first %u are shown",
             chain.readable_bytes, kMaxTransmitChainBytes);
  }
  if (length == 0) return absl::OkStatus();
  transmit_buffer_.resize(length);
  std::span<uint8_t> bytes(transmit_buffer_.data(), length);
  ChainReader reader(active.memory, chain);
  if (absl::Status s = reader.Read(bytes); !s.ok()) return s;
  if (output_) output_(bytes);
  return absl::OkStatus();
}

size_t VirtioConsole::ReceiveLocked(Active& active, std::span<const uint8_t> bytes) {
  Virtqueue& queue = *active.rx;
  size_t taken = 0;
  bool used_any = false;
  // Each chain takes at least one byte, so this ends within bytes.size() chains.
  while (taken < bytes.size()) {
    auto chain = queue.Pop(active.memory);
    if (!chain.ok()) {
      FailLocked(active, InQueue(kReceiveQueue, chain.status()));
      break;
    }
    if (!chain->has_value()) {
      // Out of buffers: ask for a kick when the driver posts more, then
      // look once more in case it did so before seeing the request.
      if (absl::Status s = queue.SetNotification(active.memory, true); !s.ok()) {
        FailLocked(active, InQueue(kReceiveQueue, s));
        break;
      }
      auto pending = queue.AvailableCount(active.memory);
      if (!pending.ok()) {
        FailLocked(active, InQueue(kReceiveQueue, pending.status()));
        break;
      }
      if (*pending > 0) continue;
      input_refused_ = true;  // the kick we asked for fires the input-ready callback
      break;
    }
    const DescriptorChain& c = **chain;
    // virtio 1.2 §5.3.6.1: the driver puts only device-writable buffers in
    // a receiveq; one with no room at all could never be used either.
    if (!c.readable.empty() || c.writable_bytes == 0) {
      FailLocked(active,
                 InQueue(kReceiveQueue, absl::InvalidArgumentError(absl::StrFormat(
                                            "chain %u has %s", c.head,
                                            c.readable.empty() ? "no writable bytes"
                                                               : "device-readable buffers"))));
      break;
    }
    const size_t length = std::min<size_t>(bytes.size() - taken, c.writable_bytes);
    ChainWriter writer(active.memory, c);
    if (absl::Status s = writer.Write(bytes.subspan(taken, length)); !s.ok()) {
      FailLocked(active, InQueue(kReceiveQueue, s));
      break;
    }
    if (absl::Status s = queue.PushUsed(active.memory, c.head, static_cast<uint32_t>(length));
        !s.ok()) {
      FailLocked(active, InQueue(kReceiveQueue, s));
      break;
    }
    taken += length;
    used_any = true;
  }
  if (used_any && !active.failed) NotifyIfNeededLocked(active, queue, kReceiveQueue);
  return taken;
}

void VirtioConsole::NotifyIfNeededLocked(Active& active, Virtqueue& queue, uint16_t index) {
  auto notify = queue.ShouldNotify(active.memory);
  if (!notify.ok()) return FailLocked(active, InQueue(index, notify.status()));
  if (*notify) active.interrupt->NotifyQueue(index);
}

void VirtioConsole::FailLocked(Active& active, const absl::Status& status) {
  if (active.failed) return;
  active.failed = true;
  LOG_WARN("virtio", "%s; the device needs a reset", status.message());
  active.interrupt->NeedsReset();
}

void VirtioConsole::UnregisterLocked(Active& active) {
  for (int* fd : {&active.rx_fd, &active.tx_fd}) {
    if (*fd >= 0) (void)active.event_loop->Remove(*fd);
    *fd = -1;
  }
}

std::function<void()> VirtioConsole::TakeInputReadyLocked() {
  if (!input_refused_) return nullptr;
  input_refused_ = false;
  return input_ready_;
}

void ConnectConsoleInput(Console& console, const std::shared_ptr<VirtioConsole>& device) {
  Console* target = &console;
  device->SetInputReadyCallback([target] { target->InputReady(); });
  console.SetInputSink(
      [device](std::span<const uint8_t> bytes) { return device->ReceiveInput(bytes); });
}

}  // namespace skiff::virtio
