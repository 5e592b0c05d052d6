// What the main thread may do once it has started the others: wait for a
// stop, stop and join the threads, then take the machine apart (ioeventfds,
// irqfds and vhost released, guest RAM unmapped, the terminal restored) and
// write the run's report to the files opened at set-up.
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <signal.h>
#include <sys/ioctl.h>
#define VIRTIO_RING_NO_LEGACY
#include <linux/vhost.h>

#include "vmm/kvm_flex_arrays.h"
#include "vmm/seccomp_rules.h"

namespace skiff::seccomp {

std::vector<Rule> MainThreadRules() {
  return {
      Allow("getpid", "pthread_kill: the tgkill below names this process"),
      Rule{"tgkill",
           {ArgMatch{2, ~uint64_t{0}, SIGUSR1}},
           "SIGUSR1",
           "kick a vCPU out of KVM_RUN at shutdown"},
      Allow("epoll_ctl", "devices and the signalfd leave the event loop"),
      SKIFF_SECCOMP_IOCTL(KVM_IOEVENTFD, "teardown: notify ioeventfds removed"),
      SKIFF_SECCOMP_IOCTL(KVM_IRQFD, "teardown: irqfds removed"),
      AllowIoctl(static_cast<uint32_t>(kvm_flex::kSetGsiRouting), "KVM_SET_GSI_ROUTING",
                 "teardown: MSI routes freed"),
      SKIFF_SECCOMP_IOCTL(TUNSETOFFLOAD, "teardown: a started virtio-net is reset"),
      SKIFF_SECCOMP_IOCTL(VHOST_NET_SET_BACKEND, "teardown: vhost-net stopped"),
      SKIFF_SECCOMP_IOCTL(VHOST_SET_VRING_KICK, "teardown: vhost-net stopped"),
      SKIFF_SECCOMP_IOCTL(VHOST_SET_VRING_CALL, "teardown: vhost-net stopped"),
      Allow("read", "a reset device drains its notify eventfds"),
      Allow("pread64", "teardown: a passed-through device's command register is read"),
      Allow("pwrite64", "teardown: a passed-through device's bus mastering is turned off"),
      SKIFF_SECCOMP_IOCTL(VFIO_DEVICE_SET_IRQS,
                          "teardown: a passed-through device's interrupts off"),
      SKIFF_SECCOMP_IOCTL(VFIO_DEVICE_RESET, "teardown: a passed-through device is reset"),
      SKIFF_SECCOMP_IOCTL(VFIO_IOMMU_UNMAP_DMA, "teardown: guest RAM unmapped from the IOMMU"),
      SKIFF_SECCOMP_IOCTL(KVM_SET_DEVICE_ATTR,
                          "teardown: the KVM-VFIO device lets go of the groups"),
      SKIFF_SECCOMP_IOCTL(KVM_SET_USER_MEMORY_REGION, "teardown: BAR memory slots removed"),
      Allow("ftruncate", "--junit: the report is rewritten from the start"),
      Allow("lseek", "--junit: the report is rewritten from the start"),
      Allow("newfstatat", "--api-socket: at exit, the socket is removed only if it is still ours"),
      Allow("unlink", "--api-socket: the socket is removed at exit (x86-64)"),
      Allow("unlinkat", "--api-socket: the socket is removed at exit (arm64 has only this form)"),
  };
}

}  // namespace skiff::seccomp
