// virtio-net (virtio 1.2 §5.1) on a tap back-end, optionally with vhost-net.
//
// Queues: receiveq0, transmitq0, receiveq1, transmitq1, ... and, with more
// than one queue pair, the control queue last. Each queue pair owns one
// PacketPort (a tap queue). Without vhost the data path runs on the event
// loop: transmit chains are gathered straight from guest memory into one
// writev; received frames land in a per-pair bounce buffer and are then
// copied into as many receive chains as they need (VIRTIO_NET_F_MRG_RXBUF).
// With vhost=on the kernel runs the data queues; Skiff keeps only the
// control queue.
//
// Hostile drivers: a malformed chain (device-writable buffers on a transmit
// queue, device-readable ones or less than a header on a receive queue, a
// control command with no room for its ack, a ring the walker refuses)
// makes the device report NEEDS_RESET and stop. Frames the device cannot
// carry are dropped and counted, never silently: see NetCounters.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/net/mac_address.h"
#include "devices/net/packet_port.h"
#include "devices/virtio/queue.h"
#include "devices/virtio/vhost_net.h"
#include "devices/virtio/virtio_device.h"

namespace skiff::virtio {

// One --net option, as the CLI parsed it.
struct NetOptions {
  std::string tap;                                // interface name; created if missing
  std::optional<std::array<uint8_t, 6>> mac;      // random locally administered if unset
  std::optional<std::string> host_ip, host_mask;  // host side of the tap, both or none
  uint16_t queues = 1;                            // queue pairs; >1 means a multiqueue tap
  bool vhost = false;                             // data path in the kernel's vhost-net
  // Device nodes; tests point them elsewhere.
  std::string tun_path = "/dev/net/tun";
  std::string vhost_path = "/dev/vhost-net";
};

// Why frames did not make it, for logs and tests. Monotonic.
struct NetCounters {
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;             // frame bytes, without the virtio-net header
  uint64_t tx_dropped_short = 0;     // chain shorter than the virtio-net header
  uint64_t tx_dropped_oversize = 0;  // more than kMaxFrameSize after the header
  uint64_t tx_errors = 0;            // the tap refused the frame
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_dropped_no_room = 0;  // the driver's buffers cannot hold the frame
  uint64_t rx_dropped_reset = 0;    // a frame was waiting for buffers at reset
  uint64_t rx_errors = 0;           // the tap read failed or returned a runt
  uint64_t rx_pauses = 0;           // times receive stopped for want of buffers
  uint64_t tap_wakeups = 0;         // tap readiness handler runs (busy-loop check)
};

// A NIC's back-ends: one port per queue pair, and with vhost one VhostNet
// per queue pair.
struct NetBackends {
  std::vector<std::unique_ptr<net::PacketPort>> ports;
  std::vector<std::unique_ptr<VhostNet>> vhost;  // empty without vhost
};

class VirtioNet final : public VirtioDevice, public std::enable_shared_from_this<VirtioNet> {
  struct Key {
    explicit Key() = default;
  };

 public:
  static constexpr uint16_t kMaxQueuePairs = 64;
  // Largest frame (Ethernet header included) the device accepts from the
  // driver: the Linux TSO limit. The tap never sends more either.
  static constexpr uint32_t kMaxFrameSize = 64 * 1024;
  static constexpr uint16_t kTxChainsPerPass = 128;
  static constexpr uint16_t kRxFramesPerPass = 256;
  static constexpr uint16_t kCtrlCommandsPerPass = 64;

  // Opens the tap (and /dev/vhost-net per queue pair with vhost) and
  // validates everything; errors are one line naming the tap.
  static absl::StatusOr<std::shared_ptr<VirtioNet>> Create(const NetOptions& options);
  // The same over given back-ends (tests, or a caller that opened them).
  // `backends.ports.size()` is the number of queue pairs.
  static absl::StatusOr<std::shared_ptr<VirtioNet>> CreateWithBackends(std::string tap_name,
                                                                       net::MacAddress mac,
                                                                       NetBackends backends);

  VirtioNet(Key, std::string tap_name, net::MacAddress mac, NetBackends backends,
            uint64_t features);
  ~VirtioNet() override;

  uint32_t device_id() const override;
  uint64_t device_features() const override { return features_; }
  uint16_t num_queues() const override;
  uint32_t config_size() const override;
  void ReadConfig(uint32_t offset, std::span<uint8_t> data) override;
  absl::Status Activate(ActivationContext context) override;
  void Reset() override;
  std::string name() const override;

  const net::MacAddress& mac() const { return mac_; }
  uint16_t queue_pairs() const { return static_cast<uint16_t>(pairs_.size()); }
  NetCounters counters() const;

  // The event loop calls these (after draining the eventfd); public so
  // tests can drive the device one step at a time. `pair` is a queue-pair
  // index; out-of-range or inactive calls do nothing.
  void OnTxNotify(uint16_t pair);
  void OnRxNotify(uint16_t pair);
  void OnTapReadable(uint16_t pair);
  void OnCtrlNotify();
  // Test probes: is the tap queue polled for frames? How many pairs does
  // the driver use (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET)?
  bool rx_polling(uint16_t pair) const;
  uint16_t active_queue_pairs() const;

 private:
  struct Pair;
  struct Activation;
  enum class Source { kTxNotify, kRxNotify, kTap, kCtrlNotify, kCallRelay };

  uint16_t ctrl_queue_index() const;
  void Dispatch(uint64_t generation, Source source, uint16_t index, int fd);
  absl::Status Watch(int fd, uint32_t events, Source source, uint16_t index);
  absl::Status ActivateLocked(ActivationContext& context);
  absl::Status StartVhost(uint16_t pair);
  void StopLocked();
  void Fail(const absl::Status& why);
  void NotifyIfNeeded(Virtqueue& queue, uint16_t queue_index);

  void TxLocked(uint16_t pair);
  absl::Status Transmit(Pair& pair, const DescriptorChain& chain);
  void RxLocked(uint16_t pair);
  absl::StatusOr<bool> DeliverFrame(Pair& pair, bool* pushed);
  absl::StatusOr<bool> HoldRxChain(Pair& pair);
  void SetRxPolling(uint16_t pair, bool on);
  void UpdateRxPolling(uint16_t pair);
  void CtrlLocked();
  absl::Status SetActivePairs(uint16_t pairs);

  const std::string tap_name_;
  const net::MacAddress mac_;
  const uint64_t features_;
  const bool vhost_;

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Pair>> pairs_;  // size fixed at construction
  std::unique_ptr<Activation> active_;        // set between Activate and Reset
  uint64_t generation_ = 0;                   // bumped by every reset
  uint16_t active_pairs_ = 1;
  bool failed_ = false;  // NEEDS_RESET reported
  NetCounters counters_;
};

}  // namespace skiff::virtio
