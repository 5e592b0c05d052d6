// A real-mode guest of a few hand-assembled bytes on the local /dev/kvm:
// enough to drive Skiff's vCPU loop, buses and devices without Linux.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "vmm/bus.h"
#include "vmm/exit_handler.h"
#include "vmm/guest_ram.h"
#include "vmm/kvm.h"
#include "vmm/shutdown.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

namespace skiff::testing {

inline constexpr uint64_t kCodeAddress = 0x1000;
inline constexpr uint64_t kTinyRamSize = 0x20000;  // 128 KiB; above is MMIO

class TinyGuest {
 public:
  // Fails the current test (and returns nullptr) if any step fails.
  static std::unique_ptr<TinyGuest> Create(const std::vector<uint8_t>& code,
                                           bool irqchip) {
    auto guest = std::make_unique<TinyGuest>();
    auto kvm = Kvm::Open();
    if (!kvm.ok()) {
      ADD_FAILURE() << "integration tests need /dev/kvm: " << kvm.status();
      return nullptr;
    }
    guest->kvm_ = std::make_unique<Kvm>(*std::move(kvm));
    auto vm = Vm::Create(*guest->kvm_);
    if (!vm.ok()) { ADD_FAILURE() << vm.status(); return nullptr; }
    guest->vm_ = *std::move(vm);
    if (irqchip) {
      // Intel hosts need a TSS address before the irqchip/vCPUs.
      ::ioctl(guest->vm_->fd(), KVM_SET_TSS_ADDR, 0xfffbd000ul);
      if (::ioctl(guest->vm_->fd(), KVM_CREATE_IRQCHIP, 0) < 0) {
        ADD_FAILURE() << "KVM_CREATE_IRQCHIP failed";
        return nullptr;
      }
    }
    auto ram = GuestRam::Allocate({{0, kTinyRamSize}}, {});
    if (!ram.ok()) { ADD_FAILURE() << ram.status(); return nullptr; }
    guest->ram_ = std::make_unique<GuestRam>(*std::move(ram));
    EXPECT_TRUE(guest->vm_->MapGuestMemory(guest->ram_->memory()).ok());
    EXPECT_TRUE(guest->ram_->memory().Write(kCodeAddress, code).ok());
    auto size = guest->kvm_->VcpuMmapSize();
    auto vcpu = Vcpu::Create(*guest->vm_, 0, *size);
    if (!vcpu.ok()) { ADD_FAILURE() << vcpu.status(); return nullptr; }
    guest->vcpu_ = *std::move(vcpu);
    kvm_sregs sregs{};
    ::ioctl(guest->vcpu_->fd(), KVM_GET_SREGS, &sregs);
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    ::ioctl(guest->vcpu_->fd(), KVM_SET_SREGS, &sregs);
    kvm_regs regs{};
    regs.rip = kCodeAddress;
    regs.rflags = 0x2;
    ::ioctl(guest->vcpu_->fd(), KVM_SET_REGS, &regs);
    auto shutdown = Shutdown::Create();
    guest->shutdown_ = *std::move(shutdown);
    return guest;
  }

  // Runs the vCPU on its own thread until it stops by itself.
  void Start() {
    static bool installed = [] { Vcpu::InstallKickHandler(); return true; }();
    (void)installed;
    thread_ = std::thread([this] {
      ExitBuses buses{&pio_, &mmio_};
      vcpu_->RunLoop(buses, *shutdown_, nullptr);
    });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  ~TinyGuest() {
    if (thread_.joinable()) {
      shutdown_->Request(1, "test teardown");
      vcpu_->Kick();
      thread_.join();
    }
  }

  Bus& pio() { return pio_; }
  Bus& mmio() { return mmio_; }
  Vcpu& vcpu() { return *vcpu_; }
  Shutdown& shutdown() { return *shutdown_; }
  const GuestMemory& memory() { return ram_->memory(); }
  Vm& vm() { return *vm_; }

 private:
  std::unique_ptr<Kvm> kvm_;
  std::unique_ptr<Vm> vm_;
  std::unique_ptr<GuestRam> ram_;
  std::unique_ptr<Vcpu> vcpu_;
  std::unique_ptr<Shutdown> shutdown_;
  Bus pio_{"pio"};
  Bus mmio_{"mmio"};
  std::thread thread_;
};

}  // namespace skiff::testing
