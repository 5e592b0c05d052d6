// Where a virtio-net queue pair sends and receives Ethernet frames: one
// queue of a tap device in production, a fake in unit tests.
//
// Every frame crossing a PacketPort starts with the 12-byte virtio-net
// header (struct virtio_net_hdr_mrg_rxbuf): the tap speaks the same header
// as the guest, so it passes through untouched.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <optional>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace skiff::net {

// sizeof(struct virtio_net_hdr_mrg_rxbuf): the header of every frame with
// VIRTIO_F_VERSION_1, with or without VIRTIO_NET_F_MRG_RXBUF.
inline constexpr size_t kVnetHeaderSize = 12;

class PacketPort {
 public:
  virtual ~PacketPort() = default;

  // Polls readable (EPOLLIN) when ReadPacket has a frame to return.
  virtual int fd() const = 0;
  // Reads one whole frame (header first) into `iov`; its length, or nullopt
  // when no frame is waiting. Never blocks.
  virtual absl::StatusOr<std::optional<size_t>> ReadPacket(std::span<const iovec> iov) = 0;
  // Sends one whole frame (header first) gathered from `iov`.
  virtual absl::Status WritePacket(std::span<const iovec> iov) = 0;
  // TUN_F_* offloads the guest accepts (TUNSETOFFLOAD); they apply to the
  // whole tap, whichever queue sets them.
  virtual absl::Status SetOffload(unsigned tun_flags) = 0;
  // Multiqueue taps only: whether the kernel steers frames to this queue
  // (TUNSETQUEUE attach/detach), following the guest's active queue pairs.
  virtual absl::Status SetQueueEnabled(bool enabled) = 0;
};

}  // namespace skiff::net
