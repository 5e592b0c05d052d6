// vhost-net: the kernel moves a queue pair's frames between the guest's
// rings and a tap queue, so the data path never enters Skiff.
//
// One VhostNet per queue pair owns one /dev/vhost-net descriptor. Skiff
// hands it the guest memory map, the two rings (vhost-net's vring 0 is
// receive, vring 1 transmit), the transport's notify eventfds as kicks, an
// interrupt eventfd per ring as calls, and the tap fd as back-end.
#pragma once

#include <linux/virtio_config.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "devices/virtio/net_abi.h"
#include "devices/virtio/queue_config.h"
#include "vmm/guest_memory.h"
#include "vmm/unique_fd.h"

namespace skiff::virtio {

// ioctl(2) behind an interface, so unit tests can record vhost requests
// without /dev/vhost-net.
class IoctlRunner {
 public:
  virtual ~IoctlRunner() = default;
  // Returns 0, or the errno of the failed call.
  virtual int Ioctl(int fd, unsigned long request, void* arg) = 0;
};

class SystemIoctl final : public IoctlRunner {
 public:
  int Ioctl(int fd, unsigned long request, void* arg) override;
};

// struct vhost_memory without its flexible array, and VHOST_SET_MEM_TABLE
// built from the C layout (see vmm/kvm_flex_arrays.h for why).
struct VhostMemoryHeader {
  uint32_t nregions;
  uint32_t padding;
};
static_assert(sizeof(VhostMemoryHeader) == 8);
unsigned long VhostSetMemTableRequest();

// What vhost needs to run one ring.
struct VhostRing {
  QueueConfig config;  // size and guest-physical ring addresses
  int kick_fd = -1;    // signalled by the driver's notifications
  int call_fd = -1;    // vhost signals it to interrupt the driver
};

class VhostNet {
  struct Key {
    explicit Key() = default;
  };

 public:
  // Ring features vhost-net itself implements; the device offers these only
  // when the kernel does.
  static constexpr uint64_t kRingFeatures =
      (1ull << VIRTIO_F_VERSION_1) | (1ull << vnet::kFRingIndirectDesc) |
      (1ull << vnet::kFRingEventIdx) | (1ull << vnet::kFMrgRxbuf);

  // Opens `path` (/dev/vhost-net), then as Create. `label` names the NIC in
  // errors.
  static absl::StatusOr<std::unique_ptr<VhostNet>> Open(const std::string& path,
                                                        std::shared_ptr<IoctlRunner> ioctl,
                                                        std::string label);
  // Claims `fd` for this process (VHOST_SET_OWNER) and reads the features
  // the kernel supports (VHOST_GET_FEATURES).
  static absl::StatusOr<std::unique_ptr<VhostNet>> Create(UniqueFd fd,
                                                          std::shared_ptr<IoctlRunner> ioctl,
                                                          std::string label);

  // Public for std::make_unique; only Create can make a Key.
  VhostNet(Key, UniqueFd fd, std::shared_ptr<IoctlRunner> ioctl, std::string label)
      : fd_(std::move(fd)), ioctl_(std::move(ioctl)), label_(std::move(label)) {}

  uint64_t features() const { return features_; }

  // Starts the data path: VHOST_SET_FEATURES (negotiated & supported),
  // VHOST_SET_MEM_TABLE, then per ring NUM, BASE 0, ADDR, KICK, CALL, and
  // last VHOST_NET_SET_BACKEND with `tap_fd` on both rings. Refused, with
  // nothing sent, when VIRTIO_F_RING_PACKED was negotiated: vhost-net knows
  // only split rings.
  absl::Status Start(const GuestMemory& memory, uint64_t negotiated_features, const VhostRing& rx,
                     const VhostRing& tx, int tap_fd);
  // Detaches the tap (VHOST_NET_SET_BACKEND -1) and unbinds kick and call,
  // so vhost no longer touches guest memory. Safe when not started.
  void Stop();

  // The VHOST_SET_MEM_TABLE argument: a header and one
  // vhost_memory_region per guest RAM region, in one buffer.
  static std::vector<uint64_t> BuildMemTable(const GuestMemory& memory);

 private:
  absl::Status Configure(const GuestMemory& memory, uint64_t negotiated_features,
                         const VhostRing& rx, const VhostRing& tx, int tap_fd);
  absl::Status Call(unsigned long request, const char* name, void* arg);
  absl::Status StartRing(const GuestMemory& memory, unsigned index, const VhostRing& ring);

  UniqueFd fd_;
  std::shared_ptr<IoctlRunner> ioctl_;
  std::string label_;
  uint64_t features_ = 0;
  bool started_ = false;
};

}  // namespace skiff::virtio
