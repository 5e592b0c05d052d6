#include "vmm/vm.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "arch/arch.h"
#include "vmm/status_macros.h"

namespace skiff {
namespace {

absl::Status IoctlError(const char* what) {
  return absl::InternalError(absl::StrFormat("%s: %s", what, std::strerror(errno)));
}

class KvmIrqLine : public IrqLine {
 public:
  KvmIrqLine(Vm* vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
  void SetLevel(bool asserted) override { (void)vm_->SetIrqLine(gsi_, asserted); }
  void Pulse() override {
    (void)vm_->SetIrqLine(gsi_, true);
    (void)vm_->SetIrqLine(gsi_, false);
  }

 private:
  Vm* vm_;  // the Vm outlives every device it hands lines to
  uint32_t gsi_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Vm>> Vm::Create(const Kvm& kvm,
                                               unsigned long type) {
  int fd = ::ioctl(kvm.fd(), KVM_CREATE_VM, type);
  if (fd < 0) return IoctlError("KVM_CREATE_VM");
  return std::make_unique<Vm>(UniqueFd(fd));
}

absl::Status Vm::MapGuestMemory(const GuestMemory& memory) {
  for (const GuestMemory::Region& r : memory.regions()) {
    RETURN_IF_ERROR(SetMemorySlot(next_slot_, r.gpa, r.size, r.host));
  }
  return absl::OkStatus();
}

absl::Status Vm::SetMemorySlot(uint32_t slot, uint64_t gpa, uint64_t size,
                               void* host, uint32_t flags) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = flags;
  region.guest_phys_addr = gpa;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return absl::InternalError(absl::StrFormat(
        "KVM_SET_USER_MEMORY_REGION slot %u at 0x%x (%u MiB): %s", slot, gpa,
        size >> 20, std::strerror(errno)));
  }
  std::lock_guard lock(slot_mutex_);
  if (slot >= next_slot_) next_slot_ = slot + 1;
  return absl::OkStatus();
}

absl::StatusOr<int> Vm::CreateDevice(uint32_t type, const char* name) {
  if (devices_.count(type) > 0) {
    return absl::AlreadyExistsError(absl::StrFormat("KVM_CREATE_DEVICE %s: already made", name));
  }
  kvm_create_device device{};
  device.type = type;
  if (::ioctl(fd_.get(), KVM_CREATE_DEVICE, &device) < 0) {
    return absl::UnavailableError(
        absl::StrFormat("KVM_CREATE_DEVICE %s: %s", name, std::strerror(errno)));
  }
  const int fd = static_cast<int>(device.fd);
  devices_.emplace(type, UniqueFd(fd));
  return fd;
}

int Vm::DeviceFd(uint32_t type) const {
  auto it = devices_.find(type);
  return it == devices_.end() ? -1 : it->second.get();
}

absl::StatusOr<uint32_t> Vm::AddMemorySlot(uint64_t gpa, uint64_t size, void* host) {
  uint32_t slot;
  {
    std::lock_guard lock(slot_mutex_);
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slot = next_slot_++;
    }
  }
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.guest_phys_addr = gpa;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    const int err = errno;
    std::lock_guard lock(slot_mutex_);
    free_slots_.push_back(slot);
    return absl::InternalError(absl::StrFormat(
        "KVM_SET_USER_MEMORY_REGION slot %u at 0x%x (+0x%x): %s", slot, gpa, size,
        std::strerror(err)));
  }
  return slot;
}

absl::Status Vm::RemoveMemorySlot(uint32_t slot) {
  kvm_userspace_memory_region region{};
  region.slot = slot;  // size 0 deletes the slot
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return IoctlError("KVM_SET_USER_MEMORY_REGION (delete)");
  }
  std::lock_guard lock(slot_mutex_);
  free_slots_.push_back(slot);
  return absl::OkStatus();
}

absl::Status Vm::SetIrqLine(uint32_t gsi, bool level) {
  kvm_irq_level irq{};
  irq.irq = arch::IrqLineNumber(gsi);
  irq.level = level ? 1 : 0;
  if (::ioctl(fd_.get(), KVM_IRQ_LINE, &irq) < 0) return IoctlError("KVM_IRQ_LINE");
  return absl::OkStatus();
}

std::shared_ptr<IrqLine> Vm::MakeIrqLine(uint32_t gsi) {
  return std::make_shared<KvmIrqLine>(this, gsi);
}

absl::Status Vm::IoEventFd(int eventfd, uint64_t address, uint32_t length,
                           bool pio, std::optional<uint64_t> datamatch,
                           bool deassign) {
  kvm_ioeventfd io{};
  io.addr = address;
  io.len = length;
  io.fd = eventfd;
  if (pio) io.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (datamatch) {
    io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    io.datamatch = *datamatch;
  }
  if (deassign) io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  if (::ioctl(fd_.get(), KVM_IOEVENTFD, &io) < 0) {
    return absl::InternalError(absl::StrFormat(
        "KVM_IOEVENTFD at 0x%x: %s", address, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status Vm::AddIoEventFd(int eventfd, uint64_t address, uint32_t length,
                              bool pio, std::optional<uint64_t> datamatch) {
  return IoEventFd(eventfd, address, length, pio, datamatch, false);
}

absl::Status Vm::RemoveIoEventFd(int eventfd, uint64_t address,
                                 uint32_t length, bool pio,
                                 std::optional<uint64_t> datamatch) {
  return IoEventFd(eventfd, address, length, pio, datamatch, true);
}

absl::Status Vm::AddIrqFd(int eventfd, uint32_t gsi, int resample_fd) {
  kvm_irqfd irqfd{};
  irqfd.fd = eventfd;
  irqfd.gsi = gsi;
  if (resample_fd >= 0) {
    irqfd.flags |= KVM_IRQFD_FLAG_RESAMPLE;
    irqfd.resamplefd = resample_fd;
  }
  if (::ioctl(fd_.get(), KVM_IRQFD, &irqfd) < 0) {
    return absl::InternalError(absl::StrFormat("KVM_IRQFD gsi %u: %s", gsi,
                                               std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status Vm::RemoveIrqFd(int eventfd, uint32_t gsi) {
  kvm_irqfd irqfd{};
  irqfd.fd = eventfd;
  irqfd.gsi = gsi;
  irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
  if (::ioctl(fd_.get(), KVM_IRQFD, &irqfd) < 0) return IoctlError("KVM_IRQFD deassign");
  return absl::OkStatus();
}

}  // namespace skiff
