// Tap back-end tests. The pure ones need nothing; the rest create real taps
// and need CAP_NET_ADMIN and /dev/net/tun. They fail (never skip) without
// them: a tap back-end that cannot be exercised is a broken test machine.
#include "devices/net/tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "absl/strings/str_format.h"
#include "devices/virtio/net.h"
#include "devices/virtio/net_abi.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/net_test_fakes.h"
#include "tests/unit/virtqueue_builder.h"
#include "vmm/event_loop.h"

namespace skiff::net {
namespace {

namespace vnet = ::skiff::virtio::vnet;
using ::testing::HasSubstr;

constexpr uint64_t Bit(int n) { return 1ull << n; }
constexpr uint16_t kTestEtherType = 0x88b5;  // IEEE "local experimental"

// --- Pure functions -------------------------------------------------------------

TEST(TunOffloadFlagsTest, MapsGuestFeaturesToTunFlags) {
  EXPECT_EQ(TunOffloadFlags(0), 0u);
  EXPECT_EQ(TunOffloadFlags(Bit(vnet::kFGuestCsum)), static_cast<unsigned>(TUN_F_CSUM));
  EXPECT_EQ(
      TunOffloadFlags(Bit(vnet::kFGuestCsum) | Bit(vnet::kFGuestTso4) | Bit(vnet::kFGuestTso6) |
                      Bit(vnet::kFGuestEcn) | Bit(vnet::kFGuestUfo)),
      static_cast<unsigned>(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO));
  EXPECT_EQ(TunOffloadFlags(Bit(vnet::kFGuestCsum) | Bit(vnet::kFGuestTso6)),
            static_cast<unsigned>(TUN_F_CSUM | TUN_F_TSO6));
  // Host-side (transmit) offloads and other features do not concern the tap's
  // receive direction.
  EXPECT_EQ(TunOffloadFlags(Bit(vnet::kFCsum) | Bit(vnet::kFHostTso4) | Bit(vnet::kFHostUfo) |
                            Bit(vnet::kFMrgRxbuf) | Bit(VIRTIO_F_VERSION_1)),
            0u);
}

TEST(TunOffloadFlagsTest, NeverProducesCombinationsTunRefuses) {
  // Without GUEST_CSUM nothing else may be set; ECN needs TSO4 or TSO6.
  EXPECT_EQ(TunOffloadFlags(Bit(vnet::kFGuestTso4) | Bit(vnet::kFGuestUfo)), 0u);
  EXPECT_EQ(TunOffloadFlags(Bit(vnet::kFGuestCsum) | Bit(vnet::kFGuestEcn)),
            static_cast<unsigned>(TUN_F_CSUM));
  EXPECT_EQ(TunOffloadFlags(Bit(vnet::kFGuestCsum) | Bit(vnet::kFGuestEcn) | Bit(vnet::kFGuestUfo)),
            static_cast<unsigned>(TUN_F_CSUM | TUN_F_UFO));
}

TEST(ParseHostAddressTest, AcceptsDottedMasksAndPrefixLengths) {
  EXPECT_FALSE(*ParseHostAddress("t", std::nullopt, std::nullopt));
  auto dotted = ParseHostAddress("t", "192.168.7.1", "255.255.255.0");
  ASSERT_TRUE(dotted.ok()) << dotted.status();
  EXPECT_EQ(ntohl((*dotted)->ip.s_addr), 0xc0a80701u);
  EXPECT_EQ(ntohl((*dotted)->mask.s_addr), 0xffffff00u);
  auto prefix = ParseHostAddress("t", "10.1.2.3", "16");
  ASSERT_TRUE(prefix.ok()) << prefix.status();
  EXPECT_EQ(ntohl((*prefix)->mask.s_addr), 0xffff0000u);
  EXPECT_EQ(ntohl((*ParseHostAddress("t", "10.1.2.3", "32"))->mask.s_addr), 0xffffffffu);
}

TEST(ParseHostAddressTest, RejectsBadAddressesNamingTheTap) {
  struct Case {
    std::optional<std::string> ip, mask;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"10.0.0.1", std::nullopt, "both ip= and mask="},
           {std::nullopt, "24", "both ip= and mask="},
           {"10.0.0", "24", "not an IPv4 address"},
           {"host.example", "24", "not an IPv4 address"},
           {"10.0.0.1", "255.255.0.255", "not a contiguous"},
           {"10.0.0.1", "0.0.0.0", "not a contiguous"},
           {"10.0.0.1", "255.255.255.256", "not an IPv4 address"},
           {"10.0.0.1", "0", "prefix length 1-32"},
           {"10.0.0.1", "33", "prefix length 1-32"},
           {"0.0.0.0", "24", "not a unicast"},
           {"255.255.255.255", "24", "not a unicast"},
           {"224.0.0.1", "24", "not a unicast"},
       }) {
    auto parsed = ParseHostAddress("tapX", c.ip, c.mask);
    ASSERT_FALSE(parsed.ok()) << c.message;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.message));
    EXPECT_THAT(parsed.status().message(), HasSubstr("tap tapX"));
  }
}

TEST(OpenTapTest, RejectsInvalidInterfaceNames) {
  for (const char* name : {"", "a/b", "a:b", "tap%d", "has space", ".", "..", "sixteen-chars-xx"}) {
    auto tap = OpenTap(TapOptions{name, 1, std::nullopt});
    ASSERT_FALSE(tap.ok()) << name;
    EXPECT_THAT(tap.status().message(), HasSubstr("not a valid interface name")) << name;
  }
}

TEST(OpenTapTest, ExplainsAMissingTunDevice) {
  TapOptions options{"sktmissing", 1, std::nullopt, "/nonexistent/dev/net/tun"};
  auto tap = OpenTap(options);
  ASSERT_FALSE(tap.ok());
  EXPECT_THAT(tap.status().message(), HasSubstr("tap sktmissing"));
  EXPECT_THAT(tap.status().message(), HasSubstr("modprobe tun"));
}

// --- Real taps ----------------------------------------------------------------------

std::string TapName(const char* suffix) {
  return absl::StrFormat("skt%d%s", ::getpid() % 1000000, suffix);
}

int IfIndex(const std::string& name) { return static_cast<int>(::if_nametoindex(name.c_str())); }

// An AF_PACKET socket on the host side of the tap, for frames of our test
// EtherType only.
class HostSide {
 public:
  explicit HostSide(const std::string& tap) : index_(IfIndex(tap)) {
    fd_ = UniqueFd(
        ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(kTestEtherType)));
    EXPECT_TRUE(fd_.valid()) << "AF_PACKET socket: " << std::strerror(errno);
    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(kTestEtherType);
    address.sll_ifindex = index_;
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0)
        << std::strerror(errno);
  }

  void Send(const std::vector<uint8_t>& frame) {
    ASSERT_EQ(::send(fd_.get(), frame.data(), frame.size(), 0), static_cast<ssize_t>(frame.size()))
        << std::strerror(errno);
  }

  // The next frame the tap sent to the host, within two seconds.
  std::optional<std::vector<uint8_t>> Receive() {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1) return std::nullopt;
    std::vector<uint8_t> frame(65536);
    ssize_t n = ::recv(fd_.get(), frame.data(), frame.size(), 0);
    if (n < 0) return std::nullopt;
    frame.resize(static_cast<size_t>(n));
    return frame;
  }

 private:
  int index_;
  UniqueFd fd_;
};

// An Ethernet frame of the test EtherType, broadcast, with a payload.
std::vector<uint8_t> EthernetFrame(size_t payload, uint8_t seed) {
  std::vector<uint8_t> frame(14 + payload);
  std::memset(frame.data(), 0xff, 6);
  const uint8_t source[6] = {0x02, 0x00, 0x00, 0x00, 0x00, seed};
  std::memcpy(frame.data() + 6, source, 6);
  frame[12] = kTestEtherType >> 8;
  frame[13] = kTestEtherType & 0xff;
  for (size_t i = 0; i < payload; ++i) frame[14 + i] = static_cast<uint8_t>(seed ^ i);
  return frame;
}

bool IsTestFrame(std::span<const uint8_t> frame) {
  return frame.size() >= 14 && frame[12] == (kTestEtherType >> 8) &&
         frame[13] == (kTestEtherType & 0xff);
}

// Reads frames from a tap queue until one of the test EtherType arrives
// (the host also sends IPv6 chatter once the link is up).
std::optional<std::vector<uint8_t>> ReadTestFrame(PacketPort& port) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    pollfd p{port.fd(), POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1) return std::nullopt;
    std::vector<uint8_t> buffer(70000);
    const iovec iov{buffer.data(), buffer.size()};
    auto read = port.ReadPacket(std::span<const iovec>(&iov, 1));
    if (!read.ok() || !read->has_value()) continue;
    buffer.resize(**read);
    if (buffer.size() > kVnetHeaderSize &&
        IsTestFrame(std::span(buffer).subspan(kVnetHeaderSize))) {
      return buffer;
    }
  }
  return std::nullopt;
}

HostAddress TestAddress() {
  // 198.18.0.0/15 is set aside for network tests (RFC 2544).
  auto host = ParseHostAddress("t", absl::StrFormat("198.18.%d.1", ::getpid() % 250 + 1), "24");
  return **host;
}

TEST(RealTapTest, CreatesTheTapSetsTheHostAddressAndCarriesFrames) {
  const std::string name = TapName("a");
  const HostAddress host = TestAddress();
  auto queues = OpenTap(TapOptions{name, 1, host});
  ASSERT_TRUE(queues.ok()) << queues.status() << " (this test needs CAP_NET_ADMIN)";
  ASSERT_EQ(queues->size(), 1u);
  TapQueue& tap = *(*queues)[0];
  EXPECT_GT(IfIndex(name), 0);
  EXPECT_EQ(tap.name(), name);

  // The fd is non-blocking and carries a 12-byte header.
  int header_size = 0;
  ASSERT_EQ(::ioctl(tap.fd(), TUNGETVNETHDRSZ, &header_size), 0);
  EXPECT_EQ(header_size, 12);
  EXPECT_TRUE(::fcntl(tap.fd(), F_GETFL) & O_NONBLOCK);

  UniqueFd socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ASSERT_EQ(::ioctl(socket.get(), SIOCGIFADDR, &request), 0);
  EXPECT_EQ(reinterpret_cast<sockaddr_in*>(&request.ifr_addr)->sin_addr.s_addr, host.ip.s_addr);
  ASSERT_EQ(::ioctl(socket.get(), SIOCGIFNETMASK, &request), 0);
  EXPECT_EQ(reinterpret_cast<sockaddr_in*>(&request.ifr_netmask)->sin_addr.s_addr,
            host.mask.s_addr);
  ASSERT_EQ(::ioctl(socket.get(), SIOCGIFFLAGS, &request), 0);
  EXPECT_TRUE(request.ifr_flags & IFF_UP);

  HostSide host_side(name);
  // Guest -> host: header (no offload) and frame.
  std::vector<uint8_t> out(kVnetHeaderSize, 0);
  const std::vector<uint8_t> frame = EthernetFrame(200, 7);
  out.insert(out.end(), frame.begin(), frame.end());
  const iovec iov[2] = {{out.data(), kVnetHeaderSize},
                        {out.data() + kVnetHeaderSize, frame.size()}};
  ASSERT_TRUE(tap.WritePacket(iov).ok());
  auto received = host_side.Receive();
  ASSERT_TRUE(received.has_value()) << "the frame did not reach the host";
  EXPECT_EQ(*received, frame);

  // Host -> guest.
  const std::vector<uint8_t> back = EthernetFrame(300, 9);
  host_side.Send(back);
  auto read = ReadTestFrame(tap);
  ASSERT_TRUE(read.has_value()) << "the frame did not reach the tap";
  EXPECT_EQ(std::vector<uint8_t>(read->begin() + kVnetHeaderSize, read->end()), back);
  EXPECT_EQ((*read)[1], 0);  // gso_type NONE

  // Nothing waiting: a non-blocking read says so.
  while (true) {
    std::vector<uint8_t> buffer(70000);
    const iovec drain{buffer.data(), buffer.size()};
    auto again = tap.ReadPacket(std::span<const iovec>(&drain, 1));
    ASSERT_TRUE(again.ok()) << again.status();
    if (!again->has_value()) break;
  }
}

TEST(RealTapTest, TunAcceptsEveryOffloadSetTheMappingProduces) {
  auto queues = OpenTap(TapOptions{TapName("o"), 1, std::nullopt});
  ASSERT_TRUE(queues.ok()) << queues.status();
  const int bits[] = {vnet::kFGuestCsum, vnet::kFGuestTso4, vnet::kFGuestTso6, vnet::kFGuestEcn,
                      vnet::kFGuestUfo};
  for (unsigned combo = 0; combo < 32; ++combo) {
    uint64_t features = 0;
    for (int i = 0; i < 5; ++i) {
      if (combo & (1u << i)) features |= Bit(bits[i]);
    }
    absl::Status status = (*queues)[0]->SetOffload(TunOffloadFlags(features));
    EXPECT_TRUE(status.ok()) << "features 0x" << std::hex << features << ": " << status;
  }
  // The rule the mapping guards against is real.
  EXPECT_FALSE((*queues)[0]->SetOffload(TUN_F_TSO_ECN).ok());
}

TEST(RealTapTest, MultiqueueOpensOneFdPerQueueAndDetaches) {
  const std::string name = TapName("m");
  auto queues = OpenTap(TapOptions{name, 3, std::nullopt});
  ASSERT_TRUE(queues.ok()) << queues.status();
  ASSERT_EQ(queues->size(), 3u);
  EXPECT_NE((*queues)[0]->fd(), (*queues)[1]->fd());
  EXPECT_TRUE((*queues)[2]->SetQueueEnabled(false).ok());
  EXPECT_TRUE((*queues)[2]->SetQueueEnabled(false).ok());  // idempotent
  EXPECT_TRUE((*queues)[2]->SetQueueEnabled(true).ok());
  // A single-queue open of a multiqueue tap is refused with advice.
  auto single = OpenTap(TapOptions{name, 1, std::nullopt});
  ASSERT_FALSE(single.ok());
  EXPECT_THAT(single.status().message(), HasSubstr("incompatible flags"));
  EXPECT_THAT(single.status().message(), HasSubstr(name));
}

TEST(RealTapTest, ABusyTapIsReported) {
  const std::string name = TapName("b");
  auto first = OpenTap(TapOptions{name, 1, std::nullopt});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = OpenTap(TapOptions{name, 1, std::nullopt});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("busy"));
  auto multi = OpenTap(TapOptions{name, 2, std::nullopt});
  ASSERT_FALSE(multi.ok());
  EXPECT_THAT(multi.status().message(), HasSubstr("incompatible flags"));
}

TEST(RealTapTest, CreatingWithoutCapNetAdminSaysWhatIsNeeded) {
  // Capabilities are per thread: drop CAP_NET_ADMIN in a helper thread only.
  absl::Status status;
  bool dropped = false;
  std::thread thread([&] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capget, &header, data) != 0) return;
    data[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
    if (::syscall(SYS_capset, &header, data) != 0) return;
    dropped = true;
    status = OpenTap(TapOptions{TapName("p"), 1, std::nullopt}).status();
  });
  thread.join();
  ASSERT_TRUE(dropped) << "could not drop CAP_NET_ADMIN";
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("needs CAP_NET_ADMIN"));
}

// --- The whole device on a real tap ---------------------------------------------------

TEST(RealTapTest, VirtioNetMovesFramesBetweenRingsAndTheTap) {
  using ::skiff::virtio::testing::VirtqueueBuilder;
  const std::string name = TapName("d");
  const HostAddress host = TestAddress();
  char ip[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &host.ip, ip, sizeof(ip));
  virtio::NetOptions options;
  options.tap = name;
  options.host_ip = ip;
  options.host_mask = "24";
  auto created = virtio::VirtioNet::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  std::shared_ptr<virtio::VirtioNet> net = *created;
  EXPECT_EQ(net->mac()[0] & 0x03, 0x02);  // generated: local, unicast

  FakeGuestMemory mem(4 << 20);
  auto loop = std::move(EventLoop::Create()).value();
  auto irq = std::make_shared<testing::FakeNetInterrupt>();
  VirtqueueBuilder rx(mem, 64, 0x10000);
  VirtqueueBuilder tx(mem, 64, 0x20000);
  UniqueFd rx_kick(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  UniqueFd tx_kick(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  virtio::ActivationContext context;
  context.memory = mem.memory();
  context.features = Bit(VIRTIO_F_VERSION_1) | Bit(vnet::kFMrgRxbuf) | Bit(vnet::kFGuestCsum) |
                     Bit(vnet::kFGuestTso4) | Bit(vnet::kFGuestTso6) | Bit(vnet::kFGuestEcn) |
                     Bit(vnet::kFGuestUfo);
  context.interrupt = irq;
  context.event_loop = loop.get();
  context.queues = {{rx.config(), rx_kick.get()}, {tx.config(), tx_kick.get()}};
  ASSERT_TRUE(net->Activate(std::move(context)).ok());

  HostSide host_side(name);
  // Transmit: header + frame from guest memory to the host.
  const std::vector<uint8_t> frame = EthernetFrame(500, 3);
  std::vector<uint8_t> out(kVnetHeaderSize, 0);
  out.insert(out.end(), frame.begin(), frame.end());
  ASSERT_TRUE(mem.memory().Write(0x100000, out).ok());
  tx.AddChain({{0x100000, kVnetHeaderSize, false},
               {0x100000 + kVnetHeaderSize, static_cast<uint32_t>(frame.size()), false}});
  net->OnTxNotify(0);
  EXPECT_EQ(tx.used_idx(), 1);
  auto received = host_side.Receive();
  ASSERT_TRUE(received.has_value());
  EXPECT_EQ(*received, frame);

  // Receive: the host sends, the device fills guest buffers. Skip the
  // host's own IPv6 chatter.
  for (int i = 0; i < 32; ++i) rx.AddChain({{0x200000ull + 0x1000ull * i, 0x1000, true}});
  const std::vector<uint8_t> back = EthernetFrame(800, 5);
  host_side.Send(back);
  bool found = false;
  for (int attempt = 0; attempt < 100 && !found; ++attempt) {
    pollfd p{-1, 0, 0};
    (void)::poll(&p, 0, 20);
    net->OnTapReadable(0);
    for (uint16_t u = 0; u < rx.used_idx(); ++u) {
      const auto used = rx.used(u);
      std::vector<uint8_t> bytes(used.len);
      ASSERT_TRUE(mem.memory().Read(0x200000ull + 0x1000ull * used.id, bytes).ok());
      if (bytes.size() > kVnetHeaderSize &&
          IsTestFrame(std::span(bytes).subspan(kVnetHeaderSize))) {
        EXPECT_EQ(std::vector<uint8_t>(bytes.begin() + kVnetHeaderSize, bytes.end()), back);
        EXPECT_EQ(bytes[10], 1);  // num_buffers
        EXPECT_EQ(bytes[11], 0);
        found = true;
      }
    }
  }
  EXPECT_TRUE(found) << "the host's frame never reached the guest ring";
  net->Reset();
}

}  // namespace
}  // namespace skiff::net
