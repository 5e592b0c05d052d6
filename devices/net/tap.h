// Tap devices (/dev/net/tun) as virtio-net back-ends.
//
// Each queue pair of a NIC gets its own tap file descriptor: one fd for a
// plain tap, one per pair on an IFF_MULTI_QUEUE tap. Every fd is
// non-blocking, carries the 12-byte virtio-net header (IFF_VNET_HDR,
// TUNSETVNETHDRSZ) and no packet-info prefix (IFF_NO_PI).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/net/packet_port.h"
#include "vmm/unique_fd.h"

namespace skiff::net {

// The host side's IPv4 address on the tap, in network byte order.
struct HostAddress {
  in_addr ip{};
  in_addr mask{};
};

// Both or neither of ip/mask. `mask` is dotted ("255.255.255.0") or a
// prefix length ("24"); it must be contiguous and non-zero, and the address
// must be a unicast one. Errors name the tap.
absl::StatusOr<std::optional<HostAddress>> ParseHostAddress(std::string_view tap,
                                                            const std::optional<std::string>& ip,
                                                            const std::optional<std::string>& mask);

struct TapOptions {
  std::string name;
  uint16_t queues = 1;  // >1: IFF_MULTI_QUEUE, one fd per queue
  std::optional<HostAddress> host;
  std::string tun_path = "/dev/net/tun";  // tests point it elsewhere
};

// One queue of a tap device.
class TapQueue final : public PacketPort {
 public:
  TapQueue(UniqueFd fd, std::string name, bool multi_queue)
      : fd_(std::move(fd)), name_(std::move(name)), multi_queue_(multi_queue) {}

  int fd() const override { return fd_.get(); }
  absl::StatusOr<std::optional<size_t>> ReadPacket(std::span<const iovec> iov) override;
  absl::Status WritePacket(std::span<const iovec> iov) override;
  absl::Status SetOffload(unsigned tun_flags) override;
  absl::Status SetQueueEnabled(bool enabled) override;

  const std::string& name() const { return name_; }

 private:
  UniqueFd fd_;
  std::string name_;
  bool multi_queue_;
  bool enabled_ = true;  // a queue is attached when TUNSETIFF returns
};

// Attaches to the tap `options.name`, creating it if it does not exist (it
// then vanishes when Skiff exits), and, when `options.host` is given, sets
// that address on it and brings the link up. Returns options.queues queues.
absl::StatusOr<std::vector<std::unique_ptr<TapQueue>>> OpenTap(const TapOptions& options);

// The TUN_F_* offloads matching the guest offload features the driver
// accepted (VIRTIO_NET_F_GUEST_CSUM/TSO4/TSO6/ECN/UFO): the tap may then
// hand the guest partially checksummed and unsegmented frames. Only
// combinations the tun driver accepts are produced: TSO/UFO need CSUM,
// ECN needs TSO4 or TSO6 (TUNSETOFFLOAD fails with EINVAL otherwise).
unsigned TunOffloadFlags(uint64_t virtio_features);

}  // namespace skiff::net
