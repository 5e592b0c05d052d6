// <linux/vhost.h> needs this in C++ (see devices/virtio/vhost_net.cc).
#define VIRTIO_RING_NO_LEGACY
#include "devices/virtio/vhost_net.h"

#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <sys/eventfd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "devices/virtio/net.h"
#include "devices/virtio/net_abi.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/net_test_fakes.h"
#include "tests/unit/virtqueue_builder.h"
#include "vmm/event_loop.h"

namespace skiff::virtio {
namespace {

using ::skiff::net::testing::FakeIoctl;
using ::skiff::net::testing::FakeNetInterrupt;
using ::skiff::net::testing::FakePacketPort;
using ::skiff::virtio::testing::VirtqueueBuilder;
using ::testing::HasSubstr;

constexpr uint64_t Bit(int n) { return 1ull << n; }
constexpr uint64_t kV1 = Bit(VIRTIO_F_VERSION_1);

template <typename T>
T ArgAs(const FakeIoctl::Call& call) {
  T value{};
  EXPECT_EQ(call.arg.size(), sizeof(T));
  std::memcpy(&value, call.arg.data(), std::min(sizeof(T), call.arg.size()));
  return value;
}

UniqueFd AnyFd() { return UniqueFd(::eventfd(0, EFD_CLOEXEC)); }

// Checks calls[i..] is NUM, BASE, ADDR, KICK, CALL for `ring`; returns the
// index after them.
size_t ExpectRingSetup(const std::vector<FakeIoctl::Call>& calls, size_t i, unsigned ring,
                       const QueueConfig& config, FakeGuestMemory& mem, int kick, int call) {
  EXPECT_EQ(calls[i].request, static_cast<unsigned long>(VHOST_SET_VRING_NUM));
  auto num = ArgAs<vhost_vring_state>(calls[i++]);
  EXPECT_EQ(num.index, ring);
  EXPECT_EQ(num.num, config.size);
  EXPECT_EQ(calls[i].request, static_cast<unsigned long>(VHOST_SET_VRING_BASE));
  auto base = ArgAs<vhost_vring_state>(calls[i++]);
  EXPECT_EQ(base.index, ring);
  EXPECT_EQ(base.num, 0u);
  EXPECT_EQ(calls[i].request, static_cast<unsigned long>(VHOST_SET_VRING_ADDR));
  auto addr = ArgAs<vhost_vring_addr>(calls[i++]);
  EXPECT_EQ(addr.index, ring);
  EXPECT_EQ(addr.flags, 0u);
  EXPECT_EQ(addr.desc_user_addr, reinterpret_cast<uintptr_t>(mem.host(config.desc_table)));
  EXPECT_EQ(addr.avail_user_addr, reinterpret_cast<uintptr_t>(mem.host(config.avail_ring)));
  EXPECT_EQ(addr.used_user_addr, reinterpret_cast<uintptr_t>(mem.host(config.used_ring)));
  EXPECT_EQ(addr.log_guest_addr, 0u);
  EXPECT_EQ(calls[i].request, static_cast<unsigned long>(VHOST_SET_VRING_KICK));
  auto kick_file = ArgAs<vhost_vring_file>(calls[i++]);
  EXPECT_EQ(kick_file.index, ring);
  EXPECT_EQ(kick_file.fd, kick);
  EXPECT_EQ(calls[i].request, static_cast<unsigned long>(VHOST_SET_VRING_CALL));
  auto call_file = ArgAs<vhost_vring_file>(calls[i++]);
  EXPECT_EQ(call_file.index, ring);
  EXPECT_EQ(call_file.fd, call);
  return i;
}

TEST(VhostNetTest, MemTableRequestMatchesTheCLayout) {
  // 8 bytes of header: what the kernel's VHOST_SET_MEM_TABLE encodes.
  EXPECT_EQ(_IOC_SIZE(VhostSetMemTableRequest()), 8u);
  EXPECT_EQ(VhostSetMemTableRequest(), static_cast<unsigned long>(VHOST_SET_MEM_TABLE));
}

TEST(VhostNetTest, CreateClaimsOwnershipAndReadsFeatures) {
  auto ioctl = std::make_shared<FakeIoctl>(VhostNet::kRingFeatures);
  UniqueFd fd = AnyFd();
  const int raw = fd.get();
  auto vhost = VhostNet::Create(std::move(fd), ioctl, "tap t0");
  ASSERT_TRUE(vhost.ok()) << vhost.status();
  EXPECT_EQ((*vhost)->features(), VhostNet::kRingFeatures);
  auto calls = ioctl->calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].fd, raw);
  EXPECT_EQ(calls[0].request, static_cast<unsigned long>(VHOST_SET_OWNER));
  EXPECT_EQ(calls[1].request, static_cast<unsigned long>(VHOST_GET_FEATURES));
}

TEST(VhostNetTest, OpenExplainsAMissingDevice) {
  auto vhost = VhostNet::Open("/nonexistent/vhost-net", std::make_shared<SystemIoctl>(), "tap t0");
  ASSERT_FALSE(vhost.ok());
  EXPECT_THAT(vhost.status().message(), HasSubstr("tap t0"));
  EXPECT_THAT(vhost.status().message(), HasSubstr("modprobe vhost_net"));
}

TEST(VhostNetTest, StartProgramsMemoryRingsAndBackendInOrder) {
  auto mem = FakeGuestMemory::WithRegions({{0, 0x100000}, {0x200000, 0x80000}});
  VirtqueueBuilder rx_ring(mem, 64, 0x10000);
  VirtqueueBuilder tx_ring(mem, 32, 0x210000);  // in the second region
  const uint64_t supported =
      Bit(VIRTIO_F_VERSION_1) | Bit(vnet::kFMrgRxbuf) | Bit(vnet::kFRingEventIdx);
  auto ioctl = std::make_shared<FakeIoctl>(supported);
  auto vhost = VhostNet::Create(AnyFd(), ioctl, "tap t0");
  ASSERT_TRUE(vhost.ok());
  ioctl->Clear();

  const uint64_t negotiated = supported | Bit(vnet::kFCsum) | Bit(vnet::kFRingIndirectDesc);
  ASSERT_TRUE((*vhost)
                  ->Start(mem.memory(), negotiated, VhostRing{rx_ring.config(), 10, 11},
                          VhostRing{tx_ring.config(), 12, 13}, 42)
                  .ok());
  auto calls = ioctl->calls();
  ASSERT_EQ(calls.size(), 2u + 5u + 5u + 2u);
  EXPECT_EQ(calls[0].request, static_cast<unsigned long>(VHOST_SET_FEATURES));
  // Only what both sides have: vhost knows nothing of checksum offload.
  EXPECT_EQ(ArgAs<uint64_t>(calls[0]), supported);

  EXPECT_EQ(calls[1].request, VhostSetMemTableRequest());
  ASSERT_EQ(calls[1].arg.size(), 8u + 2 * sizeof(vhost_memory_region));
  VhostMemoryHeader header;
  std::memcpy(&header, calls[1].arg.data(), sizeof(header));
  EXPECT_EQ(header.nregions, 2u);
  vhost_memory_region regions[2];
  std::memcpy(regions, calls[1].arg.data() + 8, sizeof(regions));
  EXPECT_EQ(regions[0].guest_phys_addr, 0u);
  EXPECT_EQ(regions[0].memory_size, 0x100000u);
  EXPECT_EQ(regions[0].userspace_addr, reinterpret_cast<uintptr_t>(mem.host(0)));
  EXPECT_EQ(regions[1].guest_phys_addr, 0x200000u);
  EXPECT_EQ(regions[1].memory_size, 0x80000u);
  EXPECT_EQ(regions[1].userspace_addr, reinterpret_cast<uintptr_t>(mem.host(0x200000)));

  size_t i = ExpectRingSetup(calls, 2, 0, rx_ring.config(), mem, 10, 11);
  i = ExpectRingSetup(calls, i, 1, tx_ring.config(), mem, 12, 13);
  for (unsigned ring : {0u, 1u}) {
    EXPECT_EQ(calls[i].request, static_cast<unsigned long>(VHOST_NET_SET_BACKEND));
    auto backend = ArgAs<vhost_vring_file>(calls[i++]);
    EXPECT_EQ(backend.index, ring);
    EXPECT_EQ(backend.fd, 42);
  }

  ioctl->Clear();
  (*vhost)->Stop();
  calls = ioctl->calls();
  ASSERT_EQ(calls.size(), 6u);
  for (unsigned ring : {0u, 1u}) {
    EXPECT_EQ(calls[ring].request, static_cast<unsigned long>(VHOST_NET_SET_BACKEND));
    EXPECT_EQ(ArgAs<vhost_vring_file>(calls[ring]).index, ring);
    EXPECT_EQ(ArgAs<vhost_vring_file>(calls[ring]).fd, -1);
  }
  for (size_t k = 2; k < 6; ++k) EXPECT_EQ(ArgAs<vhost_vring_file>(calls[k]).fd, -1);
  ioctl->Clear();
  (*vhost)->Stop();  // stopping twice is harmless and silent
  EXPECT_TRUE(ioctl->calls().empty());
}

TEST(VhostNetTest, StartRefusesPackedRingsWithoutTouchingTheDevice) {
  FakeGuestMemory mem(0x100000);
  VirtqueueBuilder rx_ring(mem, 16, 0x1000);
  VirtqueueBuilder tx_ring(mem, 16, 0x2000);
  // Even a kernel that claimed the feature gets split rings only.
  auto ioctl = std::make_shared<FakeIoctl>(VhostNet::kRingFeatures | Bit(VIRTIO_F_RING_PACKED));
  auto vhost = VhostNet::Create(AnyFd(), ioctl, "tap t0");
  ASSERT_TRUE(vhost.ok());
  ioctl->Clear();
  absl::Status status =
      (*vhost)->Start(mem.memory(), kV1 | Bit(VIRTIO_F_RING_PACKED),
                      VhostRing{rx_ring.config(), 1, 2}, VhostRing{tx_ring.config(), 3, 4}, 5);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("packed"));
  EXPECT_TRUE(ioctl->calls().empty());
}

TEST(VhostNetTest, FailedStartUnwindsTheBackend) {
  FakeGuestMemory mem(0x100000);
  VirtqueueBuilder rx_ring(mem, 16, 0x1000);
  VirtqueueBuilder tx_ring(mem, 16, 0x2000);
  auto ioctl = std::make_shared<FakeIoctl>(VhostNet::kRingFeatures);
  auto vhost = VhostNet::Create(AnyFd(), ioctl, "tap t0");
  ASSERT_TRUE(vhost.ok());
  ioctl->FailRequest(VHOST_SET_VRING_ADDR);
  ioctl->Clear();
  absl::Status status = (*vhost)->Start(mem.memory(), kV1, VhostRing{rx_ring.config(), 1, 2},
                                        VhostRing{tx_ring.config(), 3, 4}, 5);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("VHOST_SET_VRING_ADDR"));
  EXPECT_THAT(status.message(), HasSubstr("tap t0"));
  auto calls = ioctl->calls();
  ASSERT_GE(calls.size(), 2u);
  bool detached = false;
  for (const auto& call : calls) {
    if (call.request == static_cast<unsigned long>(VHOST_NET_SET_BACKEND)) {
      EXPECT_EQ(ArgAs<vhost_vring_file>(call).fd, -1);
      detached = true;
    }
  }
  EXPECT_TRUE(detached);
}

// --- VirtioNet on vhost ----------------------------------------------------------

TEST(VirtioNetVhostTest, DeviceOffersOnlyRingFeaturesVhostHas) {
  auto ioctl = std::make_shared<FakeIoctl>(kV1 | Bit(vnet::kFRingIndirectDesc));
  NetBackends backends;
  backends.ports.push_back(std::make_unique<FakePacketPort>());
  backends.vhost.push_back(std::move(VhostNet::Create(AnyFd(), ioctl, "t").value()));
  auto net = VirtioNet::CreateWithBackends("t", {2, 0, 0, 0, 0, 1}, std::move(backends));
  ASSERT_TRUE(net.ok()) << net.status();
  const uint64_t features = (*net)->device_features();
  EXPECT_TRUE(features & kV1);
  EXPECT_TRUE(features & Bit(vnet::kFRingIndirectDesc));
  EXPECT_FALSE(features & Bit(vnet::kFRingEventIdx));
  EXPECT_FALSE(features & Bit(vnet::kFMrgRxbuf));
  EXPECT_TRUE(features & Bit(vnet::kFGuestTso4));      // the tap's business, not vhost's
  EXPECT_FALSE(features & Bit(VIRTIO_F_RING_PACKED));  // vhost-net has split rings only

  auto old_ioctl = std::make_shared<FakeIoctl>(Bit(vnet::kFMrgRxbuf));
  NetBackends old;
  old.ports.push_back(std::make_unique<FakePacketPort>());
  old.vhost.push_back(std::move(VhostNet::Create(AnyFd(), old_ioctl, "t").value()));
  auto refused = VirtioNet::CreateWithBackends("t", {2, 0, 0, 0, 0, 1}, std::move(old));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("VIRTIO_F_VERSION_1"));
}

TEST(VirtioNetVhostTest, NeverOffersPackedRingsWithVhost) {
  auto ioctl = std::make_shared<FakeIoctl>(VhostNet::kRingFeatures | Bit(VIRTIO_F_RING_PACKED));
  NetBackends backends;
  backends.ports.push_back(std::make_unique<FakePacketPort>());
  backends.vhost.push_back(std::move(VhostNet::Create(AnyFd(), ioctl, "t").value()));
  auto net = VirtioNet::CreateWithBackends("t", {2, 0, 0, 0, 0, 1}, std::move(backends));
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_FALSE((*net)->device_features() & Bit(VIRTIO_F_RING_PACKED));
  // Without vhost the same device offers it.
  NetBackends plain;
  plain.ports.push_back(std::make_unique<FakePacketPort>());
  auto user = VirtioNet::CreateWithBackends("t", {2, 0, 0, 0, 0, 1}, std::move(plain));
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_TRUE((*user)->device_features() & Bit(VIRTIO_F_RING_PACKED));

  // An activation that claims packed rings anyway is refused, and vhost is
  // never started.
  FakeGuestMemory mem(1 << 20);
  auto loop = std::move(EventLoop::Create()).value();
  VirtqueueBuilder rx_ring(mem, 16, 0x1000);
  VirtqueueBuilder tx_ring(mem, 16, 0x2000);
  UniqueFd rx_kick(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  UniqueFd tx_kick(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  ActivationContext context;
  context.memory = mem.memory();
  context.features = kV1 | Bit(VIRTIO_F_RING_PACKED);
  context.interrupt = std::make_shared<FakeNetInterrupt>();
  context.event_loop = loop.get();
  context.queues = {{rx_ring.config(), rx_kick.get()}, {tx_ring.config(), tx_kick.get()}};
  ioctl->Clear();
  absl::Status status = (*net)->Activate(std::move(context));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("packed"));
  for (const auto& call : ioctl->calls()) {
    EXPECT_NE(call.request, static_cast<unsigned long>(VHOST_SET_VRING_ADDR));
  }
}

TEST(VirtioNetVhostTest, ActivationHandsRingsToVhostWithIrqfdOrRelay) {
  FakeGuestMemory mem(1 << 20);
  auto loop = std::move(EventLoop::Create()).value();
  auto irq = std::make_shared<FakeNetInterrupt>();
  UniqueFd irqfd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  irq->SetIrqFd(0, irqfd.get());  // rx has an irqfd, tx needs a relay
  auto ioctl = std::make_shared<FakeIoctl>(VhostNet::kRingFeatures);

  NetBackends backends;
  auto port = std::make_unique<FakePacketPort>();
  FakePacketPort* fake_port = port.get();
  backends.ports.push_back(std::move(port));
  backends.vhost.push_back(std::move(VhostNet::Create(AnyFd(), ioctl, "t").value()));
  auto net = std::move(
      VirtioNet::CreateWithBackends("t", {2, 0, 0, 0, 0, 1}, std::move(backends)).value());
  ioctl->Clear();

  VirtqueueBuilder rx_ring(mem, 16, 0x1000);
  VirtqueueBuilder tx_ring(mem, 16, 0x2000);
  UniqueFd rx_kick(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  UniqueFd tx_kick(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  ActivationContext context;
  context.memory = mem.memory();
  context.features = kV1 | Bit(vnet::kFMrgRxbuf) | Bit(vnet::kFGuestCsum);
  context.interrupt = irq;
  context.event_loop = loop.get();
  context.queues = {{rx_ring.config(), rx_kick.get()}, {tx_ring.config(), tx_kick.get()}};
  ASSERT_TRUE(net->Activate(std::move(context)).ok());

  int relay = -1;
  int backends_set = 0;
  for (const auto& call : ioctl->calls()) {
    if (call.request == static_cast<unsigned long>(VHOST_SET_VRING_KICK)) {
      auto file = ArgAs<vhost_vring_file>(call);
      EXPECT_EQ(file.fd, file.index == 0 ? rx_kick.get() : tx_kick.get());
    } else if (call.request == static_cast<unsigned long>(VHOST_SET_VRING_CALL)) {
      auto file = ArgAs<vhost_vring_file>(call);
      if (file.index == 0) {
        EXPECT_EQ(file.fd, irqfd.get());
      } else {
        relay = file.fd;
      }
    } else if (call.request == static_cast<unsigned long>(VHOST_NET_SET_BACKEND)) {
      EXPECT_EQ(ArgAs<vhost_vring_file>(call).fd, fake_port->fd());
      ++backends_set;
    }
  }
  EXPECT_EQ(backends_set, 2);
  ASSERT_GE(relay, 0);
  EXPECT_NE(relay, irqfd.get());
  EXPECT_EQ(fake_port->offloads().back(), static_cast<unsigned>(TUN_F_CSUM));
  // Skiff must not watch what vhost owns: the kicks and the tap are free.
  for (int fd : {rx_kick.get(), tx_kick.get(), fake_port->fd()}) {
    EXPECT_TRUE(loop->Add(fd, EPOLLIN, [](uint32_t) {}).ok()) << "fd " << fd << " is watched";
    EXPECT_TRUE(loop->Remove(fd).ok());
  }

  // vhost signalling the relay interrupts the driver for transmit queue 1.
  std::thread runner([&] { loop->Run(); });
  const uint64_t one = 1;
  ASSERT_EQ(::write(relay, &one, sizeof(one)), 8);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (irq->notified(1) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  loop->Stop();
  runner.join();
  EXPECT_EQ(irq->notified(1), 1);

  ioctl->Clear();
  net->Reset();
  int detached = 0;
  for (const auto& call : ioctl->calls()) {
    if (call.request == static_cast<unsigned long>(VHOST_NET_SET_BACKEND)) {
      EXPECT_EQ(ArgAs<vhost_vring_file>(call).fd, -1);
      ++detached;
    }
  }
  EXPECT_EQ(detached, 2);
}

}  // namespace
}  // namespace skiff::virtio
