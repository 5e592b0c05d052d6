// What a vCPU thread may do once confined: run the guest and handle its
// exits. An exit is a register access, so besides KVM_RUN this is what the
// device models do on a register write: move a virtio-pci BAR's notify
// ioeventfds, program an MSI-X route, start or stop a device (which adds
// its eventfds to the I/O thread's epoll, sets the tap's offloads, or hands
// the rings to vhost-net), raise a level interrupt, forward a command on a
// trapped fsl-mc portal to the MC, and report a crash.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
// <linux/vhost.h> pulls in <linux/virtio_ring.h>, whose legacy inline
// helpers are C only; this hides them.
#define VIRTIO_RING_NO_LEGACY
#include <linux/vhost.h>

#include "devices/virtio/vhost_net.h"
#include "vmm/kvm_flex_arrays.h"
#include "vmm/seccomp_rules.h"

namespace skiff::seccomp {

std::vector<Rule> VcpuThreadRules() {
  return {
      SKIFF_SECCOMP_IOCTL(KVM_RUN, "run the guest"),
      // Device register writes.
      SKIFF_SECCOMP_IOCTL(KVM_IOEVENTFD, "virtio-pci: the guest moved a BAR (notify addresses)"),
      AllowIoctl(static_cast<uint32_t>(kvm_flex::kSetGsiRouting), "KVM_SET_GSI_ROUTING",
                 "MSI-X: the guest programmed a vector's message"),
      SKIFF_SECCOMP_IOCTL(KVM_IRQ_LINE, "a level interrupt where KVM has no irqfd resample"),
      Allow("epoll_ctl", "a device started or reset: its eventfds join or leave the I/O thread"),
      Allow("eventfd2",
            "virtio-net over virtio-mmio with vhost: the call relay; fsl-mc: the irqfd of an "
            "interrupt the guest programs through the MC portal"),
      Allow("read", "a reset device drains its notify eventfds"),
      Rule{"fcntl",
           {ArgMatch{1, ~uint64_t{0}, F_GETFL}},
           "F_GETFL",
           "virtio-blk start: its notify eventfd made non-blocking"},
      Rule{"fcntl",
           {ArgMatch{1, ~uint64_t{0}, F_SETFL}},
           "F_SETFL",
           "virtio-blk start: its notify eventfd made non-blocking"},
      SKIFF_SECCOMP_IOCTL(TUNSETOFFLOAD, "virtio-net start/reset: the offloads the driver took"),
      SKIFF_SECCOMP_IOCTL(TUNSETQUEUE, "virtio-net start: one queue pair until the driver asks"),
      SKIFF_SECCOMP_IOCTL(VHOST_SET_FEATURES, "vhost-net start"),
      AllowIoctl(static_cast<uint32_t>(virtio::VhostSetMemTableRequest()), "VHOST_SET_MEM_TABLE",
                 "vhost-net start"),
      SKIFF_SECCOMP_IOCTL(VHOST_SET_VRING_NUM, "vhost-net start"),
      SKIFF_SECCOMP_IOCTL(VHOST_SET_VRING_BASE, "vhost-net start"),
      SKIFF_SECCOMP_IOCTL(VHOST_SET_VRING_ADDR, "vhost-net start"),
      SKIFF_SECCOMP_IOCTL(VHOST_SET_VRING_KICK, "vhost-net start and stop"),
      SKIFF_SECCOMP_IOCTL(VHOST_SET_VRING_CALL, "vhost-net start and stop"),
      SKIFF_SECCOMP_IOCTL(VHOST_NET_SET_BACKEND, "vhost-net start and stop"),
      Allow("pread64",
            "VFIO: config space and trapped BAR reads forwarded to the device; fsl-mc: the MC's "
            "response to a guest command"),
      Allow("pwrite64",
            "VFIO: config space and trapped BAR writes forwarded to the device; fsl-mc: a guest "
            "command forwarded to the MC portal"),
      SKIFF_SECCOMP_IOCTL(VFIO_DEVICE_SET_IRQS,
                          "VFIO: the guest enabled, masked or moved MSI/MSI-X; fsl-mc: the guest "
                          "programmed an object's MSI (DPRC_SET_OBJ_IRQ)"),
      SKIFF_SECCOMP_IOCTL(KVM_IRQFD, "VFIO: a vector's eventfd becomes an irqfd"),
      SKIFF_SECCOMP_IOCTL(KVM_SET_USER_MEMORY_REGION, "VFIO: the guest moved or disabled a BAR"),
  };
}

// A guest crash is reported with its registers (and, on x86-64, the bytes
// at RIP). docs/security.md lists these by hand: its generated tables are
// the same on every architecture.
std::vector<Rule> VcpuArchRules() {
#if defined(__x86_64__)
  return {
      SKIFF_SECCOMP_IOCTL(KVM_GET_REGS, "crash report: registers"),
      SKIFF_SECCOMP_IOCTL(KVM_GET_SREGS, "crash report: segment registers"),
      SKIFF_SECCOMP_IOCTL(KVM_TRANSLATE, "crash report: the code bytes at RIP"),
  };
#elif defined(__aarch64__)
  return {SKIFF_SECCOMP_IOCTL(KVM_GET_ONE_REG, "crash report: registers")};
#else
  return {};
#endif
}

}  // namespace skiff::seccomp
