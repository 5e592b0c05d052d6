// A level-triggered interrupt line driven through a KVM irqfd with a
// resample eventfd, so raising it needs no ioctl on the device's thread.
//
// KVM asserts the GSI when the irqfd is written and lowers it when the
// guest EOIs, signalling the resample fd; if the device still holds the
// line high at that point, the I/O thread raises it again. This is the
// level semantics virtio-mmio and PCI INTx need, on the in-kernel irqchip.
#pragma once

#include <atomic>
#include <memory>

#include "absl/status/statusor.h"
#include "vmm/event_loop.h"
#include "vmm/irq_line.h"
#include "vmm/unique_fd.h"
#include "vmm/vm.h"

namespace skiff {

class IrqFdLevelLine : public IrqLine {
 public:
  // Registers the irqfd pair for `gsi` and the resample fd on `loop`.
  // `vm` and `loop` must outlive the line.
  static absl::StatusOr<std::shared_ptr<IrqFdLevelLine>> Create(Vm& vm, EventLoop& loop,
                                                                uint32_t gsi);
  IrqFdLevelLine(Vm& vm, EventLoop& loop, uint32_t gsi, UniqueFd trigger, UniqueFd resample)
      : vm_(vm), loop_(loop), gsi_(gsi), trigger_(std::move(trigger)),
        resample_(std::move(resample)) {}
  ~IrqFdLevelLine() override;

  void SetLevel(bool asserted) override;
  void Pulse() override;

 private:
  void Raise();
  void OnResample();

  Vm& vm_;
  EventLoop& loop_;
  uint32_t gsi_;
  UniqueFd trigger_;
  UniqueFd resample_;
  std::atomic<bool> level_{false};
};

}  // namespace skiff
