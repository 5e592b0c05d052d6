#include "vmm/irqfd_line.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/status_macros.h"

namespace skiff {

absl::StatusOr<std::shared_ptr<IrqFdLevelLine>> IrqFdLevelLine::Create(Vm& vm, EventLoop& loop,
                                                                       uint32_t gsi) {
  UniqueFd trigger(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  UniqueFd resample(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!trigger || !resample) {
    return absl::InternalError(absl::StrFormat("eventfd: %s", std::strerror(errno)));
  }
  RETURN_IF_ERROR(vm.AddIrqFd(trigger.get(), gsi, resample.get()));
  int resample_fd = resample.get();
  auto line = std::make_shared<IrqFdLevelLine>(vm, loop, gsi, std::move(trigger),
                                               std::move(resample));
  std::weak_ptr<IrqFdLevelLine> weak = line;
  absl::Status watched = loop.Add(resample_fd, EPOLLIN, [weak](uint32_t) {
    if (auto self = weak.lock()) self->OnResample();
  });
  if (!watched.ok()) return watched;  // the destructor deassigns the irqfd
  return line;
}

IrqFdLevelLine::~IrqFdLevelLine() {
  (void)loop_.Remove(resample_.get());
  (void)vm_.RemoveIrqFd(trigger_.get(), gsi_);
}

void IrqFdLevelLine::Raise() {
  uint64_t one = 1;
  (void)!::write(trigger_.get(), &one, sizeof(one));  // EAGAIN: already pending
}

void IrqFdLevelLine::SetLevel(bool asserted) {
  // Lowering needs no action: KVM lowers the GSI at the guest's EOI, and
  // the resample handler then sees level_ false and leaves it low.
  if (asserted && !level_.exchange(true)) {
    Raise();
  } else if (!asserted) {
    level_.store(false);
  }
}

void IrqFdLevelLine::Pulse() { Raise(); }

void IrqFdLevelLine::OnResample() {
  uint64_t count;
  (void)!::read(resample_.get(), &count, sizeof(count));
  if (level_.load()) Raise();
}

}  // namespace skiff
