// "The ARM64 test host has a working KVM": a tiny static aarch64 program run
// inside L1 (tests/testhost, --arch arm64) by tests/e2e/arm64_e2e.py. It
// checks the capabilities Skiff relies on, creates a VM with a GICv3 and an
// ITS, brings up one vCPU the way Skiff does (KVM_ARM_PREFERRED_TARGET,
// KVM_ARM_VCPU_INIT with PSCI 0.2, the PC through KVM_SET_ONE_REG) and runs
// a few instructions: an MMIO write, an MMIO read whose value the guest
// writes back, and PSCI SYSTEM_OFF. Every exit must be exactly the expected
// one. Prints "KVM-SMOKE: ..." lines, ends with "KVM-SMOKE: PASS" (exit 0)
// or "KVM-SMOKE: FAIL: why" (exit 1).
//
// Built by the test (aarch64-linux-gnu-gcc -static), never by Meson: the
// native build has no aarch64 compiler.
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_BASE 0x40000000ull
#define RAM_SIZE 0x10000ull
#define MMIO_BASE 0x10000000ull
#define GICD_BASE 0x08000000ull
#define GITS_BASE 0x08080000ull
#define GICR_BASE 0x080a0000ull
#define WRITE_VALUE 42
#define READ_VALUE 0x55aa1234u
#define PSCI_SYSTEM_OFF 0x84000008u

// The guest: position independent, no literal pool.
//   x0 = 0x10000000; [x0] = 42; w2 = [x0 + 4]; [x0 + 8] = w2;
//   PSCI SYSTEM_OFF through HVC; then spin (never reached).
__asm__(
    ".section .rodata\n"
    ".global guest_code\n"
    ".global guest_code_end\n"
    ".balign 4\n"
    "guest_code:\n"
    "  movz x0, #0x1000, lsl #16\n"
    "  movz w1, #42\n"
    "  str w1, [x0]\n"
    "  ldr w2, [x0, #4]\n"
    "  str w2, [x0, #8]\n"
    "  movz w0, #0x0008\n"
    "  movk w0, #0x8400, lsl #16\n"
    "  hvc #0\n"
    "1: b 1b\n"
    "guest_code_end:\n"
    ".text\n");
extern const unsigned char guest_code[], guest_code_end[];

static void fail(const char *what) {
  printf("KVM-SMOKE: FAIL: %s (errno %d: %s)\n", what, errno, strerror(errno));
  exit(1);
}

static void fail_exit(const char *what, const struct kvm_run *run) {
  printf("KVM-SMOKE: FAIL: %s: exit_reason=%u", what, run->exit_reason);
  if (run->exit_reason == KVM_EXIT_MMIO)
    printf(" mmio addr=0x%llx len=%u write=%u", (unsigned long long)run->mmio.phys_addr,
           run->mmio.len, run->mmio.is_write);
  if (run->exit_reason == KVM_EXIT_SYSTEM_EVENT)
    printf(" system_event type=%u", run->system_event.type);
  if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
    printf(" hw_reason=0x%llx",
           (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
  printf("\n");
  exit(1);
}

static int check_cap(int kvm, int cap, const char *name, int required) {
  int r = ioctl(kvm, KVM_CHECK_EXTENSION, cap);
  printf("KVM-SMOKE: cap %s=%d\n", name, r);
  if (required && r <= 0) {
    printf("KVM-SMOKE: FAIL: KVM lacks %s\n", name);
    exit(1);
  }
  return r;
}

static void device_attr(int fd, uint32_t group, uint64_t attr, void *addr, const char *what) {
  struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)addr};
  if (ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0) fail(what);
}

static int create_device(int vm, uint32_t type, const char *what) {
  struct kvm_create_device d = {.type = type};
  if (ioctl(vm, KVM_CREATE_DEVICE, &d) < 0) fail(what);
  return d.fd;
}

static uint64_t core_reg(size_t offset) {
  return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / sizeof(uint32_t));
}

int main(void) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) fail("open /dev/kvm");
  int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
  printf("KVM-SMOKE: api=%d\n", api);
  if (api != KVM_API_VERSION) fail("KVM_GET_API_VERSION");
  int ipa = check_cap(kvm, KVM_CAP_ARM_VM_IPA_SIZE, "ARM_VM_IPA_SIZE", 1);
  check_cap(kvm, KVM_CAP_ARM_PSCI_0_2, "ARM_PSCI_0_2", 1);
  check_cap(kvm, KVM_CAP_ONE_REG, "ONE_REG", 1);
  check_cap(kvm, KVM_CAP_DEVICE_CTRL, "DEVICE_CTRL", 1);
  check_cap(kvm, KVM_CAP_IRQFD, "IRQFD", 1);
  check_cap(kvm, KVM_CAP_IOEVENTFD, "IOEVENTFD", 1);
  check_cap(kvm, KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING", 1);
  check_cap(kvm, KVM_CAP_SIGNAL_MSI, "SIGNAL_MSI", 1);
  check_cap(kvm, KVM_CAP_USER_MEMORY, "USER_MEMORY", 1);
  int max_vcpus = check_cap(kvm, KVM_CAP_MAX_VCPUS, "MAX_VCPUS", 1);
  if (ipa < 40 || max_vcpus < 2) {
    printf("KVM-SMOKE: FAIL: IPA size %d (want >= 40) or max vCPUs %d (want >= 2)\n", ipa,
           max_vcpus);
    return 1;
  }

  int vm = ioctl(kvm, KVM_CREATE_VM, KVM_VM_TYPE_ARM_IPA_SIZE(40));
  if (vm < 0) fail("KVM_CREATE_VM with a 40-bit IPA space");

  // GICv3 distributor + redistributors, and an ITS: what Skiff creates.
  int gic = create_device(vm, KVM_DEV_TYPE_ARM_VGIC_V3, "KVM_CREATE_DEVICE VGIC_V3");
  uint64_t gicd = GICD_BASE, gicr = GICR_BASE, gits = GITS_BASE;
  device_attr(gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &gicd,
              "set the GICv3 distributor address");
  device_attr(gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &gicr,
              "set the GICv3 redistributor address");
  int its = create_device(vm, KVM_DEV_TYPE_ARM_VGIC_ITS, "KVM_CREATE_DEVICE VGIC_ITS");
  device_attr(its, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, &gits,
              "set the ITS address");
  printf("KVM-SMOKE: vgic-v3 and its created\n");
  // A VM capability: with an ITS, MSIs carry a device ID (virtio-pci's
  // MSI-X through KVM_SET_GSI_ROUTING needs it).
  check_cap(vm, KVM_CAP_MSI_DEVID, "MSI_DEVID (vm)", 1);

  void *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ram == MAP_FAILED) fail("mmap guest RAM");
  memcpy(ram, guest_code, (size_t)(guest_code_end - guest_code));
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = RAM_BASE, .memory_size = RAM_SIZE,
      .userspace_addr = (uint64_t)(uintptr_t)ram};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) fail("KVM_SET_USER_MEMORY_REGION");

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) fail("KVM_CREATE_VCPU");
  struct kvm_vcpu_init init;
  memset(&init, 0, sizeof(init));
  if (ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init) < 0) fail("KVM_ARM_PREFERRED_TARGET");
  printf("KVM-SMOKE: preferred target=%u\n", init.target);
  init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
  if (ioctl(vcpu, KVM_ARM_VCPU_INIT, &init) < 0) fail("KVM_ARM_VCPU_INIT");
  device_attr(gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
              "initialise the GICv3");
  device_attr(its, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
              "initialise the ITS");

  uint64_t pc = RAM_BASE;
  struct kvm_one_reg reg = {.id = core_reg(offsetof(struct kvm_regs, regs.pc)),
                            .addr = (uint64_t)(uintptr_t)&pc};
  if (ioctl(vcpu, KVM_SET_ONE_REG, &reg) < 0) fail("KVM_SET_ONE_REG pc");
  uint64_t back = 0;
  reg.addr = (uint64_t)(uintptr_t)&back;
  if (ioctl(vcpu, KVM_GET_ONE_REG, &reg) < 0 || back != RAM_BASE) fail("KVM_GET_ONE_REG pc");

  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) fail("KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) fail("mmap kvm_run");

  // 1: the MMIO write of 42.
  if (ioctl(vcpu, KVM_RUN, 0) < 0) fail("KVM_RUN (1)");
  uint32_t data = 0;
  memcpy(&data, run->mmio.data, sizeof(data));
  if (run->exit_reason != KVM_EXIT_MMIO || run->mmio.phys_addr != MMIO_BASE ||
      !run->mmio.is_write || run->mmio.len != 4 || data != WRITE_VALUE)
    fail_exit("expected an MMIO write of 42 to 0x10000000", run);
  printf("KVM-SMOKE: mmio write addr=0x%llx value=%u\n",
         (unsigned long long)run->mmio.phys_addr, data);

  // 2: the MMIO read; the value we give comes back in 3.
  if (ioctl(vcpu, KVM_RUN, 0) < 0) fail("KVM_RUN (2)");
  if (run->exit_reason != KVM_EXIT_MMIO || run->mmio.phys_addr != MMIO_BASE + 4 ||
      run->mmio.is_write || run->mmio.len != 4)
    fail_exit("expected an MMIO read at 0x10000004", run);
  data = READ_VALUE;
  memcpy(run->mmio.data, &data, sizeof(data));

  if (ioctl(vcpu, KVM_RUN, 0) < 0) fail("KVM_RUN (3)");
  memcpy(&data, run->mmio.data, sizeof(data));
  if (run->exit_reason != KVM_EXIT_MMIO || run->mmio.phys_addr != MMIO_BASE + 8 ||
      !run->mmio.is_write || data != READ_VALUE)
    fail_exit("expected the value read to be written to 0x10000008", run);
  printf("KVM-SMOKE: mmio read then write back value=0x%x\n", data);

  // 4: PSCI SYSTEM_OFF, handled by KVM's in-kernel PSCI.
  if (ioctl(vcpu, KVM_RUN, 0) < 0) fail("KVM_RUN (4)");
  if (run->exit_reason != KVM_EXIT_SYSTEM_EVENT ||
      run->system_event.type != KVM_SYSTEM_EVENT_SHUTDOWN)
    fail_exit("expected PSCI SYSTEM_OFF as a shutdown system event", run);
  printf("KVM-SMOKE: psci system_off -> KVM_EXIT_SYSTEM_EVENT shutdown\n");
  printf("KVM-SMOKE: PASS\n");
  return 0;
}
