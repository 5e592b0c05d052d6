#include "vmm/kvm_msi.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/status_macros.h"
#include "vmm/unique_fd.h"

namespace skiff {
namespace {

class KvmMsiVector : public MsiVector {
 public:
  KvmMsiVector(Vm* vm, IrqRouting* routing, uint32_t gsi, UniqueFd fd)
      : vm_(vm), routing_(routing), gsi_(gsi), fd_(std::move(fd)) {}
  ~KvmMsiVector() override {
    (void)vm_->RemoveIrqFd(fd_.get(), gsi_);
    routing_->FreeGsi(gsi_);
  }

  absl::Status SetMessage(uint64_t address, uint32_t data,
                          std::optional<uint32_t> devid) override {
    return routing_->SetMsiRoute(gsi_, address, data, devid);
  }
  void Trigger() override {
    uint64_t one = 1;
    // Only EAGAIN (counter saturated) can fail, and then an interrupt is
    // already pending.
    (void)!::write(fd_.get(), &one, sizeof(one));
  }
  int irqfd() const override { return fd_.get(); }

 private:
  Vm* vm_;
  IrqRouting* routing_;
  uint32_t gsi_;
  UniqueFd fd_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MsiVector>> KvmMsiAllocator::Allocate() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) return absl::InternalError(absl::StrFormat("eventfd: %s", std::strerror(errno)));
  ASSIGN_OR_RETURN(uint32_t gsi, routing_->AllocateGsi());
  // The irqfd is attached before the route exists; until the guest
  // programs a message, a trigger goes nowhere, as on real hardware with
  // MSI-X disabled.
  absl::Status attached = vm_->AddIrqFd(fd.get(), gsi);
  if (!attached.ok()) {
    routing_->FreeGsi(gsi);
    return attached;
  }
  return std::unique_ptr<MsiVector>(
      std::make_unique<KvmMsiVector>(vm_, routing_, gsi, std::move(fd)));
}

}  // namespace skiff
