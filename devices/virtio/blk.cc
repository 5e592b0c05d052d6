#include "devices/virtio/blk.h"

#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "devices/block/disk_file.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"

namespace skiff::virtio {
namespace {

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

// From <linux/virtio_ring.h>, which does not compile as C++.
constexpr unsigned kRingIndirectDesc = 28;  // VIRTIO_RING_F_INDIRECT_DESC
constexpr unsigned kRingEventIdx = 29;      // VIRTIO_RING_F_EVENT_IDX

absl::StatusOr<std::array<uint8_t, kBlkIdBytes>> EncodeSerial(const std::string& serial,
                                                              const std::string& disk) {
  if (serial.size() > kBlkIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("disk %s: serial '%s' is longer than %d bytes", disk, serial, kBlkIdBytes));
  }
  std::array<uint8_t, kBlkIdBytes> id{};  // NUL-padded, no terminator at 20
  for (size_t i = 0; i < serial.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(serial[i]);
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrFormat("disk %s: serial must be printable ASCII", disk));
    }
    id[i] = c;
  }
  return id;
}

absl::Status SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return absl::InternalError(
        absl::StrFormat("notify eventfd %d: fcntl: %s", fd, std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<VirtioBlk>> VirtioBlk::Create(const block::DiskOptions& options) {
  // The serial is checked before the image is opened and locked.
  RETURN_IF_ERROR(EncodeSerial(options.serial, options.path).status());
  ASSIGN_OR_RETURN(std::unique_ptr<block::DiskFile> file, block::DiskFile::Open(options));
  return Create(std::move(file), options.serial);
}

absl::StatusOr<std::shared_ptr<VirtioBlk>> VirtioBlk::Create(
    std::unique_ptr<block::BlockBackend> backend, const std::string& serial) {
  if (!backend) return absl::InvalidArgumentError("virtio-blk: no back-end");
  ASSIGN_OR_RETURN(auto id, EncodeSerial(serial, backend->name()));
  return std::shared_ptr<VirtioBlk>(new VirtioBlk(std::move(backend), id));
}

VirtioBlk::VirtioBlk(std::unique_ptr<block::BlockBackend> backend,
                     std::array<uint8_t, kBlkIdBytes> id)
    : backend_(std::move(backend)), id_(id) {
  const bool readonly = backend_->readonly();
  device_features_ = Bit(VIRTIO_F_VERSION_1) | Bit(VIRTIO_F_RING_PACKED) | Bit(kRingEventIdx) |
                     Bit(kRingIndirectDesc) | Bit(VIRTIO_BLK_F_SIZE_MAX) |
                     Bit(VIRTIO_BLK_F_SEG_MAX) | Bit(VIRTIO_BLK_F_BLK_SIZE) |
                     Bit(VIRTIO_BLK_F_FLUSH);
  device_features_ |=
      readonly ? Bit(VIRTIO_BLK_F_RO) : Bit(VIRTIO_BLK_F_DISCARD) | Bit(VIRTIO_BLK_F_WRITE_ZEROES);

  BlkConfigValues values;
  values.capacity_sectors = backend_->size() / block::kSectorSize;
  values.size_max = BlkLimits::kSizeMax;
  values.seg_max = BlkLimits::kSegMax;
  values.blk_size = backend_->block_size();
  if (!readonly) {
    values.max_discard_sectors = BlkLimits::kMaxDiscardSectors;
    values.max_discard_seg = BlkLimits::kMaxDiscardSeg;
    values.discard_sector_alignment =
        static_cast<uint32_t>(backend_->discard_granularity() / block::kSectorSize);
    values.max_write_zeroes_sectors = BlkLimits::kMaxWriteZeroesSectors;
    values.max_write_zeroes_seg = BlkLimits::kMaxWriteZeroesSeg;
    values.write_zeroes_may_unmap = true;  // unmap punches holes
  }
  config_ = EncodeBlkConfig(values);
}

VirtioBlk::~VirtioBlk() {
  std::lock_guard lock(mutex_);
  ResetLocked();
}

uint32_t VirtioBlk::device_id() const { return VIRTIO_ID_BLOCK; }

std::string VirtioBlk::name() const { return "virtio-blk (" + backend_->name() + ")"; }

void VirtioBlk::ReadConfig(uint32_t offset, std::span<uint8_t> data) {
  // config_ never changes after construction: no lock needed.
  for (size_t i = 0; i < data.size(); ++i) {
    uint64_t pos = uint64_t{offset} + i;
    data[i] = pos < config_.size() ? config_[pos] : 0;
  }
}

void VirtioBlk::WriteConfig(uint32_t offset, std::span<const uint8_t> data) {
  LOG_DEBUG("virtio-blk", "%s: ignored write of %d bytes at config offset %u", name(), data.size(),
            offset);
}

absl::Status VirtioBlk::Activate(ActivationContext context) {
  std::lock_guard lock(mutex_);
  if (active_) return absl::FailedPreconditionError(name() + ": activated twice");
  if (context.queues.size() != 1 || !context.interrupt || context.event_loop == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: activation needs 1 queue, an interrupt and an event loop (got %d "
                        "queues)",
                        name(), context.queues.size()));
  }
  if ((context.features & ~device_features_) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: driver accepted features %#x that were not offered", name(),
                        context.features & ~device_features_));
  }
  const ActivatedQueue& requests = context.queues[0];
  if (!requests.config.ready) {
    return absl::FailedPreconditionError(name() + ": the driver did not enable queue 0");
  }
  if (requests.notify_fd < 0) {
    return absl::InvalidArgumentError(name() + ": queue 0 has no notify eventfd");
  }
  QueueFeatures queue_features;
  queue_features.indirect = (context.features & Bit(kRingIndirectDesc)) != 0;
  queue_features.event_idx = (context.features & Bit(kRingEventIdx)) != 0;
  queue_features.packed = (context.features & Bit(VIRTIO_F_RING_PACKED)) != 0;
  auto queue = Virtqueue::Create(requests.config, kQueueSize, queue_features, context.memory);
  if (!queue.ok()) {
    return absl::Status(queue.status().code(),
                        absl::StrFormat("%s: queue 0: %s", name(), queue.status().message()));
  }
  // The pass drains the eventfd with a read that must not block, even when
  // the loop calls us for an event already consumed.
  RETURN_IF_ERROR(SetNonBlocking(requests.notify_fd));

  const uint64_t generation = ++generation_;
  active_.emplace(Active{context.memory, std::move(*queue), requests.notify_fd,
                         std::move(context.interrupt), context.event_loop,
                         BlkRequestHandler(*backend_, id_, context.features)});
  absl::Status added = active_->event_loop->Add(
      requests.notify_fd, EPOLLIN, [weak = weak_from_this(), generation](uint32_t /*events*/) {
        if (auto self = weak.lock()) self->OnNotify(generation);
      });
  if (!added.ok()) {
    active_.reset();
    return added;
  }
  LOG_DEBUG("virtio-blk", "%s: active, features %#x", name(), context.features);
  return absl::OkStatus();
}

void VirtioBlk::Reset() {
  std::lock_guard lock(mutex_);
  ResetLocked();
}

void VirtioBlk::ResetLocked() {
  if (!active_) return;
  if (absl::Status s = active_->event_loop->Remove(active_->notify_fd); !s.ok()) {
    LOG_WARN("virtio-blk", "%s: reset: %s", name(), s.message());
  }
  active_.reset();
  ++generation_;
}

void VirtioBlk::OnNotify(uint64_t generation) {
  std::lock_guard lock(mutex_);
  // A callback dispatched just before Reset removed it, or from an older
  // activation whose fd number was reused.
  if (!active_ || generation != generation_) return;
  RunPassLocked(*active_);
}

void VirtioBlk::ProcessQueue() {
  std::lock_guard lock(mutex_);
  if (active_) RunPassLocked(*active_);
}

void VirtioBlk::RunPassLocked(Active& a) {
  uint64_t count;
  // Level-triggered epoll: consume the kick first, so one arriving while we
  // work wakes us again rather than being lost.
  (void)!::read(a.notify_fd, &count, sizeof(count));
  if (a.failed) return;

  int requests = 0;
  uint64_t bytes = 0;
  bool pushed = false;
  auto signal = [&]() -> absl::Status {
    if (!pushed) return absl::OkStatus();
    ASSIGN_OR_RETURN(bool notify, a.queue.ShouldNotify(a.memory));
    if (notify) a.interrupt->NotifyQueue(0);
    return absl::OkStatus();
  };

  for (;;) {
    // No kicks while we are draining anyway (with EVENT_IDX the queue
    // simply stops publishing avail_event).
    if (absl::Status s = a.queue.SetNotification(a.memory, false); !s.ok()) {
      return FailLocked(a, s);
    }
    while (requests < kMaxRequestsPerPass && bytes < kMaxBytesPerPass) {
      auto chain = a.queue.Pop(a.memory);
      if (!chain.ok()) return FailLocked(a, chain.status());
      if (!chain->has_value()) break;
      auto done = a.handler.Execute(a.memory, **chain);
      if (!done.ok()) return FailLocked(a, done.status());
      if (absl::Status s = a.queue.PushUsed(a.memory, (*chain)->head, done->used_len); !s.ok()) {
        return FailLocked(a, s);
      }
      pushed = true;
      ++requests;
      bytes += done->data_bytes;
    }
    if (requests >= kMaxRequestsPerPass || bytes >= kMaxBytesPerPass) {
      // Out of budget: come back after the loop has served everyone else.
      // Notifications stay off; the re-armed eventfd guarantees the return.
      if (absl::Status s = signal(); !s.ok()) return FailLocked(a, s);
      uint64_t one = 1;
      (void)!::write(a.notify_fd, &one, sizeof(one));
      return;
    }
    if (absl::Status s = a.queue.SetNotification(a.memory, true); !s.ok()) {
      return FailLocked(a, s);
    }
    // A request posted after our last Pop but before notifications came
    // back on was never kicked: look once more.
    auto available = a.queue.AvailableCount(a.memory);
    if (!available.ok()) return FailLocked(a, available.status());
    if (*available == 0) break;
  }
  if (absl::Status s = signal(); !s.ok()) return FailLocked(a, s);
}

void VirtioBlk::FailLocked(Active& a, const absl::Status& status) {
  LOG_ERROR("virtio-blk", "%s: %s; the device needs a reset", name(), status.message());
  a.failed = true;
  a.interrupt->NeedsReset();
}

}  // namespace skiff::virtio
