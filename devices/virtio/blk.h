// virtio-blk (virtio 1.2 §5.2): one request queue over a BlockBackend.
//
// Requests run on the event loop thread: the queue's notify eventfd is
// registered at activation and each notification runs one bounded pass
// (kMaxRequestsPerPass requests or kMaxBytesPerPass bytes). A pass that
// hits its bound writes the eventfd again, so the loop comes back to this
// queue after serving everyone else and a busy guest can't starve other
// devices. I/O is synchronous preadv/pwritev straight into guest memory;
// io_uring is future work, worth it only if a benchmark shows it wins.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "devices/block/block_backend.h"
#include "devices/block/disk_options.h"
#include "devices/virtio/blk_config.h"
#include "devices/virtio/blk_request.h"
#include "devices/virtio/queue.h"
#include "devices/virtio/virtio_device.h"

namespace skiff::virtio {

class VirtioBlk final : public VirtioDevice, public std::enable_shared_from_this<VirtioBlk> {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr int kMaxRequestsPerPass = 64;
  static constexpr uint64_t kMaxBytesPerPass = 32ull << 20;

  // Opens the image (see block::DiskFile::Open for the errors) and builds
  // the device. A serial longer than 20 bytes or not printable ASCII is
  // refused.
  static absl::StatusOr<std::shared_ptr<VirtioBlk>> Create(const block::DiskOptions& options);
  // Over any back-end: tests put fakes here.
  static absl::StatusOr<std::shared_ptr<VirtioBlk>> Create(
      std::unique_ptr<block::BlockBackend> backend, const std::string& serial);

  ~VirtioBlk() override;

  uint32_t device_id() const override;
  uint64_t device_features() const override { return device_features_; }
  uint16_t num_queues() const override { return 1; }
  uint16_t max_queue_size() const override { return kQueueSize; }
  uint32_t config_size() const override { return blk_config::kSize; }
  void ReadConfig(uint32_t offset, std::span<uint8_t> data) override;
  // The configuration space is read-only (no VIRTIO_BLK_F_CONFIG_WCE).
  void WriteConfig(uint32_t offset, std::span<const uint8_t> data) override;
  absl::Status Activate(ActivationContext context) override;
  // Waits for a pass in flight to finish (bounded as above; a slow host
  // fdatasync is the worst case), then unregisters from the loop.
  void Reset() override;
  std::string name() const override;

  // One pass over the request queue, exactly as the event loop runs it on
  // a notification; public so tests can drive the device without a loop
  // thread. Does nothing when the device is not active.
  void ProcessQueue();

 private:
  // Everything an activation owns; gone on Reset.
  struct Active {
    GuestMemory memory;
    Virtqueue queue;
    int notify_fd;
    std::shared_ptr<VirtioInterrupt> interrupt;
    EventLoop* event_loop;
    BlkRequestHandler handler;
    bool failed = false;  // NEEDS_RESET reported; the queue is left alone
  };

  VirtioBlk(std::unique_ptr<block::BlockBackend> backend, std::array<uint8_t, kBlkIdBytes> id);

  void OnNotify(uint64_t generation);
  void RunPassLocked(Active& active);
  void FailLocked(Active& active, const absl::Status& status);
  void ResetLocked();

  const std::unique_ptr<block::BlockBackend> backend_;
  const std::array<uint8_t, kBlkIdBytes> id_;
  uint64_t device_features_ = 0;
  std::array<uint8_t, blk_config::kSize> config_{};

  // Held by Activate, Reset and for a whole pass: Reset returns only when
  // no pass is running, and a pass never sees a half-torn-down activation.
  std::mutex mutex_;
  std::optional<Active> active_;
  // Bumped on every Activate and Reset; a loop callback from an older
  // activation (dispatched just before Remove) finds a mismatch and leaves.
  uint64_t generation_ = 0;
};

}  // namespace skiff::virtio
