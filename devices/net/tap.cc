#include "devices/net/tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "devices/virtio/net_abi.h"
#include "vmm/status_macros.h"

namespace skiff::net {
namespace {

namespace vnet = ::skiff::virtio::vnet;
static_assert(sizeof(vnet::Header) == kVnetHeaderSize);

std::string Errno(int error) { return std::strerror(error); }

// What the kernel's dev_valid_name accepts, minus '%' (which would make the
// kernel pick a name) so the user gets exactly the tap they named.
absl::Status CheckTapName(std::string_view name) {
  bool bad_char = false;
  for (char c : name) {
    if (c == '/' || c == ':' || c == '%' || c <= ' ' || c == 0x7f) bad_char = true;
  }
  if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == ".." || bad_char) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "tap '%s': not a valid interface name (1-%d characters, no '/', ':', '%%' or "
        "spaces)",
        name, IFNAMSIZ - 1));
  }
  return absl::OkStatus();
}

ifreq RequestFor(std::string_view name) {
  ifreq request{};
  std::memcpy(request.ifr_name, name.data(), name.size());  // checked < IFNAMSIZ
  return request;
}

absl::StatusOr<in_addr> ParseIpv4(std::string_view tap, std::string_view what,
                                  const std::string& text) {
  in_addr address{};
  if (::inet_pton(AF_INET, text.c_str(), &address) != 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("tap %s: %s '%s' is not an IPv4 address", tap, what, text));
  }
  return address;
}

absl::StatusOr<UniqueFd> OpenTunDevice(const TapOptions& options) {
  UniqueFd fd(::open(options.tun_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (fd) return fd;
  const int error = errno;
  if (error == ENOENT || error == ENODEV || error == ENXIO) {
    return absl::FailedPreconditionError(
        absl::StrFormat("tap %s: %s is missing (%s); load the tun module: modprobe tun",
                        options.name, options.tun_path, Errno(error)));
  }
  if (error == EACCES || error == EPERM) {
    return absl::PermissionDeniedError(
        absl::StrFormat("tap %s: cannot open %s (%s); run Skiff as root or with access to it",
                        options.name, options.tun_path, Errno(error)));
  }
  return absl::InternalError(
      absl::StrFormat("tap %s: open %s: %s", options.name, options.tun_path, Errno(error)));
}

absl::Status CheckTunFeatures(int fd, const TapOptions& options) {
  unsigned features = 0;
  if (::ioctl(fd, TUNGETFEATURES, &features) < 0) {
    return absl::InternalError(
        absl::StrFormat("tap %s: TUNGETFEATURES: %s", options.name, Errno(errno)));
  }
  if (!(features & IFF_VNET_HDR)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "tap %s: the kernel's tun driver lacks IFF_VNET_HDR (needed for offloads)", options.name));
  }
  if (options.queues > 1 && !(features & IFF_MULTI_QUEUE)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "tap %s: queues=%d needs IFF_MULTI_QUEUE, which the kernel's tun driver lacks",
        options.name, options.queues));
  }
  return absl::OkStatus();
}

absl::Status AttachError(const TapOptions& options, int error) {
  const bool multi = options.queues > 1;
  switch (error) {
    case EPERM:
      return absl::PermissionDeniedError(absl::StrFormat(
          "tap %s: cannot create or attach it (Operation not permitted): needs CAP_NET_ADMIN, "
          "or create it beforehand for this user: ip tuntap add %s mode tap user $USER%s",
          options.name, options.name, multi ? " multi_queue" : ""));
    case EBUSY:
      return absl::FailedPreconditionError(
          absl::StrFormat("tap %s: busy, another process is attached to it", options.name));
    case EINVAL:
      return absl::FailedPreconditionError(absl::StrFormat(
          "tap %s: exists with incompatible flags (a tun device, or %s); recreate it with: "
          "ip tuntap add %s mode tap%s",
          options.name,
          multi ? "created without multi_queue while queues>1 asks for it"
                : "created with multi_queue while queues=1",
          options.name, multi ? " multi_queue" : ""));
    default:
      return absl::InternalError(
          absl::StrFormat("tap %s: TUNSETIFF: %s", options.name, Errno(error)));
  }
}

absl::StatusOr<std::unique_ptr<TapQueue>> OpenQueue(const TapOptions& options, bool first) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenTunDevice(options));
  if (first) RETURN_IF_ERROR(CheckTunFeatures(fd.get(), options));
  const bool multi = options.queues > 1;
  ifreq request = RequestFor(options.name);
  request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0);
  if (::ioctl(fd.get(), TUNSETIFF, &request) < 0) return AttachError(options, errno);
  int header_size = kVnetHeaderSize;
  if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &header_size) < 0) {
    return absl::InternalError(
        absl::StrFormat("tap %s: TUNSETVNETHDRSZ %d: %s", options.name, header_size, Errno(errno)));
  }
  return std::make_unique<TapQueue>(std::move(fd), options.name, multi);
}

absl::Status SetHostAddress(const std::string& name, const HostAddress& host) {
  UniqueFd socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!socket) {
    return absl::InternalError(absl::StrFormat("tap %s: socket(AF_INET): %s", name, Errno(errno)));
  }
  auto failed = [&](std::string_view step) {
    const int error = errno;
    if (error == EPERM || error == EACCES) {
      return absl::PermissionDeniedError(
          absl::StrFormat("tap %s: cannot set the host address (%s: %s): needs CAP_NET_ADMIN", name,
                          step, Errno(error)));
    }
    return absl::InternalError(absl::StrFormat("tap %s: %s: %s", name, step, Errno(error)));
  };
  auto set_address = [&](unsigned long request, in_addr value) {
    ifreq ifr = RequestFor(name);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr = value;
    static_assert(sizeof(address) <= sizeof(ifr.ifr_addr));
    std::memcpy(&ifr.ifr_addr, &address, sizeof(address));
    return ::ioctl(socket.get(), request, &ifr);
  };
  if (set_address(SIOCSIFADDR, host.ip) < 0) return failed("SIOCSIFADDR");
  if (set_address(SIOCSIFNETMASK, host.mask) < 0) return failed("SIOCSIFNETMASK");
  ifreq flags = RequestFor(name);
  if (::ioctl(socket.get(), SIOCGIFFLAGS, &flags) < 0) return failed("SIOCGIFFLAGS");
  flags.ifr_flags |= IFF_UP;
  if (::ioctl(socket.get(), SIOCSIFFLAGS, &flags) < 0) return failed("SIOCSIFFLAGS");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::optional<HostAddress>> ParseHostAddress(
    std::string_view tap, const std::optional<std::string>& ip,
    const std::optional<std::string>& mask) {
  if (!ip && !mask) return std::nullopt;
  if (!ip || !mask) {
    return absl::InvalidArgumentError(
        absl::StrFormat("tap %s: give both ip= and mask= for the host side, or neither", tap));
  }
  HostAddress host;
  ASSIGN_OR_RETURN(host.ip, ParseIpv4(tap, "ip", *ip));
  const uint32_t ip_host = ntohl(host.ip.s_addr);
  if (ip_host == 0 || ip_host == 0xffffffff || (ip_host >> 28) == 0xe) {
    return absl::InvalidArgumentError(
        absl::StrFormat("tap %s: ip '%s' is not a unicast address", tap, *ip));
  }
  int prefix = 0;
  uint32_t mask_host = 0;
  if (absl::SimpleAtoi(*mask, &prefix)) {
    if (prefix < 1 || prefix > 32) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tap %s: mask '%s' must be a prefix length 1-32", tap, *mask));
    }
    mask_host = ~uint32_t{0} << (32 - prefix);
  } else {
    ASSIGN_OR_RETURN(in_addr parsed, ParseIpv4(tap, "mask", *mask));
    mask_host = ntohl(parsed.s_addr);
    // Contiguous: the inverted mask plus one is a power of two.
    const uint32_t inverted = ~mask_host;
    if (mask_host == 0 || (inverted & (inverted + 1)) != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("tap %s: mask '%s' is not a contiguous, non-zero netmask", tap, *mask));
    }
  }
  host.mask.s_addr = htonl(mask_host);
  return host;
}

absl::StatusOr<std::vector<std::unique_ptr<TapQueue>>> OpenTap(const TapOptions& options) {
  RETURN_IF_ERROR(CheckTapName(options.name));
  if (options.queues < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("tap %s: queues must be at least 1", options.name));
  }
  std::vector<std::unique_ptr<TapQueue>> queues;
  for (uint16_t i = 0; i < options.queues; ++i) {
    ASSIGN_OR_RETURN(auto queue, OpenQueue(options, i == 0));
    queues.push_back(std::move(queue));
  }
  if (options.host) RETURN_IF_ERROR(SetHostAddress(options.name, *options.host));
  return queues;
}

unsigned TunOffloadFlags(uint64_t virtio_features) {
  auto has = [&](int bit) { return (virtio_features >> bit) & 1; };
  if (!has(vnet::kFGuestCsum)) return 0;
  unsigned flags = TUN_F_CSUM;
  if (has(vnet::kFGuestTso4)) flags |= TUN_F_TSO4;
  if (has(vnet::kFGuestTso6)) flags |= TUN_F_TSO6;
  if (has(vnet::kFGuestEcn) && (flags & (TUN_F_TSO4 | TUN_F_TSO6))) {
    flags |= TUN_F_TSO_ECN;
  }
  if (has(vnet::kFGuestUfo)) flags |= TUN_F_UFO;
  return flags;
}

absl::StatusOr<std::optional<size_t>> TapQueue::ReadPacket(std::span<const iovec> iov) {
  for (;;) {
    ssize_t n = ::readv(fd_.get(), iov.data(), static_cast<int>(iov.size()));
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
    return absl::InternalError(absl::StrFormat("tap %s: read: %s", name_, Errno(errno)));
  }
}

absl::Status TapQueue::WritePacket(std::span<const iovec> iov) {
  for (;;) {
    ssize_t n = ::writev(fd_.get(), iov.data(), static_cast<int>(iov.size()));
    if (n >= 0) return absl::OkStatus();
    if (errno == EINTR) continue;
    return absl::UnavailableError(absl::StrFormat("tap %s: write: %s", name_, Errno(errno)));
  }
}

absl::Status TapQueue::SetOffload(unsigned tun_flags) {
  if (::ioctl(fd_.get(), TUNSETOFFLOAD, static_cast<unsigned long>(tun_flags)) < 0) {
    return absl::InternalError(
        absl::StrFormat("tap %s: TUNSETOFFLOAD 0x%x: %s", name_, tun_flags, Errno(errno)));
  }
  return absl::OkStatus();
}

absl::Status TapQueue::SetQueueEnabled(bool enabled) {
  if (!multi_queue_ || enabled == enabled_) return absl::OkStatus();
  ifreq request{};
  request.ifr_flags = enabled ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
  if (::ioctl(fd_.get(), TUNSETQUEUE, &request) < 0) {
    return absl::InternalError(absl::StrFormat("tap %s: TUNSETQUEUE %s: %s", name_,
                                               enabled ? "attach" : "detach", Errno(errno)));
  }
  enabled_ = enabled;
  return absl::OkStatus();
}

}  // namespace skiff::net
