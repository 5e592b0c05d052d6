#include "devices/virtio/vhost_net.h"

// <linux/vhost.h> pulls in <linux/virtio_ring.h>, whose legacy inline
// helpers are C only; this hides them.
#define VIRTIO_RING_NO_LEGACY
#include <fcntl.h>
#include <linux/vhost.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"

namespace skiff::virtio {
namespace {

constexpr unsigned kRxRing = 0;  // vhost-net's VHOST_NET_VQ_RX
constexpr unsigned kTxRing = 1;  // VHOST_NET_VQ_TX

static_assert(sizeof(vhost_memory_region) == 4 * sizeof(uint64_t));

// Bytes of each split-ring part for `size` entries (virtio 1.2 §2.7), the
// trailing event-index word included.
uint64_t DescTableBytes(uint16_t size) { return 16ull * size; }
uint64_t AvailRingBytes(uint16_t size) { return 6ull + 2ull * size; }
uint64_t UsedRingBytes(uint16_t size) { return 6ull + 8ull * size; }

}  // namespace

int SystemIoctl::Ioctl(int fd, unsigned long request, void* arg) {
  return ::ioctl(fd, request, arg) < 0 ? errno : 0;
}

unsigned long VhostSetMemTableRequest() {
  return _IOC(_IOC_WRITE, VHOST_VIRTIO, 0x03, sizeof(VhostMemoryHeader));
}
// The C layout, which the kernel checks: the header alone.
static_assert(offsetof(vhost_memory, regions) == sizeof(VhostMemoryHeader));

absl::StatusOr<std::unique_ptr<VhostNet>> VhostNet::Open(const std::string& path,
                                                         std::shared_ptr<IoctlRunner> ioctl,
                                                         std::string label) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    const int error = errno;
    if (error == ENOENT || error == ENODEV || error == ENXIO) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s: vhost=on but %s is missing (%s); load it with: modprobe vhost_net",
                          label, path, std::strerror(error)));
    }
    if (error == EACCES || error == EPERM) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "%s: vhost=on but %s is not accessible (%s); run as root or grant access to it", label,
          path, std::strerror(error)));
    }
    return absl::InternalError(
        absl::StrFormat("%s: open %s: %s", label, path, std::strerror(error)));
  }
  return Create(std::move(fd), std::move(ioctl), std::move(label));
}

absl::StatusOr<std::unique_ptr<VhostNet>> VhostNet::Create(UniqueFd fd,
                                                           std::shared_ptr<IoctlRunner> ioctl,
                                                           std::string label) {
  auto vhost = std::make_unique<VhostNet>(Key{}, std::move(fd), std::move(ioctl), std::move(label));
  RETURN_IF_ERROR(vhost->Call(VHOST_SET_OWNER, "VHOST_SET_OWNER", nullptr));
  RETURN_IF_ERROR(vhost->Call(VHOST_GET_FEATURES, "VHOST_GET_FEATURES", &vhost->features_));
  return vhost;
}

absl::Status VhostNet::Call(unsigned long request, const char* name, void* arg) {
  if (int error = ioctl_->Ioctl(fd_.get(), request, arg); error != 0) {
    return absl::InternalError(
        absl::StrFormat("%s: vhost-net %s: %s", label_, name, std::strerror(error)));
  }
  return absl::OkStatus();
}

std::vector<uint64_t> VhostNet::BuildMemTable(const GuestMemory& memory) {
  const auto& regions = memory.regions();
  constexpr size_t kHeaderWords = sizeof(VhostMemoryHeader) / sizeof(uint64_t);
  constexpr size_t kRegionWords = sizeof(vhost_memory_region) / sizeof(uint64_t);
  std::vector<uint64_t> table(kHeaderWords + kRegionWords * regions.size(), 0);
  VhostMemoryHeader header{static_cast<uint32_t>(regions.size()), 0};
  std::memcpy(table.data(), &header, sizeof(header));
  for (size_t i = 0; i < regions.size(); ++i) {
    vhost_memory_region region{};
    region.guest_phys_addr = regions[i].gpa;
    region.memory_size = regions[i].size;
    region.userspace_addr = reinterpret_cast<uintptr_t>(regions[i].host);
    std::memcpy(&table[kHeaderWords + kRegionWords * i], &region, sizeof(region));
  }
  return table;
}

absl::Status VhostNet::StartRing(const GuestMemory& memory, unsigned index, const VhostRing& ring) {
  const QueueConfig& config = ring.config;
  vhost_vring_state num{index, config.size};
  RETURN_IF_ERROR(Call(VHOST_SET_VRING_NUM, "VHOST_SET_VRING_NUM", &num));
  // A fresh activation: the driver starts at avail index 0.
  vhost_vring_state base{index, 0};
  RETURN_IF_ERROR(Call(VHOST_SET_VRING_BASE, "VHOST_SET_VRING_BASE", &base));

  // vhost wants host addresses; each ring part must be in one region.
  auto host_address = [&](uint64_t gpa, uint64_t bytes,
                          const char* part) -> absl::StatusOr<uint64_t> {
    auto span = memory.GetSpan(gpa, bytes);
    if (!span.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: vring %u %s at 0x%x (%u bytes) is not in guest RAM", label_, index,
                          part, gpa, bytes));
    }
    return reinterpret_cast<uintptr_t>(span->data());
  };
  vhost_vring_addr addr{};
  addr.index = index;
  ASSIGN_OR_RETURN(addr.desc_user_addr,
                   host_address(config.desc_table, DescTableBytes(config.size), "descriptors"));
  ASSIGN_OR_RETURN(addr.avail_user_addr,
                   host_address(config.avail_ring, AvailRingBytes(config.size), "avail ring"));
  ASSIGN_OR_RETURN(addr.used_user_addr,
                   host_address(config.used_ring, UsedRingBytes(config.size), "used ring"));
  RETURN_IF_ERROR(Call(VHOST_SET_VRING_ADDR, "VHOST_SET_VRING_ADDR", &addr));

  vhost_vring_file kick{index, ring.kick_fd};
  RETURN_IF_ERROR(Call(VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK", &kick));
  vhost_vring_file call{index, ring.call_fd};
  RETURN_IF_ERROR(Call(VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL", &call));
  return absl::OkStatus();
}

absl::Status VhostNet::Start(const GuestMemory& memory, uint64_t negotiated_features,
                             const VhostRing& rx, const VhostRing& tx, int tap_fd) {
  // vhost-net reads the rings as split ones (StartRing hands it a desc
  // table, an avail and a used ring); a packed layout would be misread.
  if (negotiated_features & (1ull << VIRTIO_F_RING_PACKED)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: vhost-net cannot run packed rings (VIRTIO_F_RING_PACKED negotiated)", label_));
  }
  Stop();
  started_ = true;  // from here on, a failure unwinds through Stop()
  absl::Status status = Configure(memory, negotiated_features, rx, tx, tap_fd);
  if (!status.ok()) Stop();
  return status;
}

absl::Status VhostNet::Configure(const GuestMemory& memory, uint64_t negotiated_features,
                                 const VhostRing& rx, const VhostRing& tx, int tap_fd) {
  uint64_t features = negotiated_features & features_;
  RETURN_IF_ERROR(Call(VHOST_SET_FEATURES, "VHOST_SET_FEATURES", &features));
  std::vector<uint64_t> table = BuildMemTable(memory);
  RETURN_IF_ERROR(Call(VhostSetMemTableRequest(), "VHOST_SET_MEM_TABLE", table.data()));
  RETURN_IF_ERROR(StartRing(memory, kRxRing, rx));
  RETURN_IF_ERROR(StartRing(memory, kTxRing, tx));
  // The back-end goes last: vhost refuses ring changes while one is set.
  for (unsigned index : {kRxRing, kTxRing}) {
    vhost_vring_file backend{index, tap_fd};
    RETURN_IF_ERROR(Call(VHOST_NET_SET_BACKEND, "VHOST_NET_SET_BACKEND", &backend));
  }
  return absl::OkStatus();
}

void VhostNet::Stop() {
  if (!started_) return;
  started_ = false;
  for (unsigned index : {kRxRing, kTxRing}) {
    vhost_vring_file backend{index, -1};
    if (absl::Status s = Call(VHOST_NET_SET_BACKEND, "VHOST_NET_SET_BACKEND", &backend); !s.ok()) {
      LOG_ERROR("vhost", "%s", s.message());
    }
  }
  for (unsigned index : {kRxRing, kTxRing}) {
    vhost_vring_file unbind{index, VHOST_FILE_UNBIND};
    // Best effort: with the back-end gone vhost touches no guest memory;
    // unbinding only drops its references to the transport's eventfds.
    (void)Call(VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK", &unbind);
    (void)Call(VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL", &unbind);
  }
}

}  // namespace skiff::virtio
