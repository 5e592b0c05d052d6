// What the I/O thread may do once confined: wait on epoll and serve the
// device back-ends: disk image reads, writes, syncs and hole punching, tap
// frames, the terminal, the timers and signals it watches, and interrupts
// back to the guest (irqfd writes are plain writes).
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>

#include "vmm/seccomp_rules.h"

namespace skiff::seccomp {

std::vector<Rule> IoThreadRules() {
  return {
      Allow("epoll_wait", "the event loop (x86-64)"),
      Allow("epoll_pwait", "the event loop (arm64 has only this form)"),
      Allow("epoll_ctl", "handlers come and go (a tap with no receive buffers leaves epoll)"),
      Allow("read", "eventfds, timerfd, signalfd, the terminal, taps"),
      Allow("readv", "tap: receive a frame"),
      Allow("writev", "tap: send a frame"),
      Allow("preadv", "virtio-blk: read from the image"),
      Allow("pwritev", "virtio-blk: write to the image"),
      Allow("fdatasync", "virtio-blk: FLUSH, or every write without FLUSH negotiated"),
      Allow("fallocate", "virtio-blk: DISCARD and WRITE_ZEROES"),
      Allow("eventfd2", "virtio-net with vhost: a call relay for a queue pair the driver enabled"),
      SKIFF_SECCOMP_IOCTL(TUNSETQUEUE, "virtio-net: the control queue changed the queue pairs"),
      SKIFF_SECCOMP_IOCTL(KVM_IRQ_LINE,
                          "a level interrupt where KVM has no irqfd resample; --api-socket "
                          "shutdown presses the power button (a GSI pulse)"),
      Allow("accept4", "--api-socket: a client connects"),
      Allow("recvfrom", "--api-socket: a request arrives (recv)"),
      Allow("sendto", "--api-socket: an answer goes out (send)"),
      Allow("getpid", "--api-socket: info names the process; pause kicks vCPUs (pthread_kill)"),
      Allow("sched_getaffinity", "--api-socket: info reports each thread's host CPUs"),
      Allow("timerfd_settime", "--api-socket: shutdown holds the arm64 power key for 100 ms"),
      Rule{"tgkill",
           {ArgMatch{2, ~uint64_t{0}, SIGUSR1}},
           "SIGUSR1",
           "--api-socket: pause kicks each vCPU out of KVM_RUN"},
  };
}

}  // namespace skiff::seccomp
