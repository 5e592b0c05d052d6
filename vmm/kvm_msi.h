// MsiVector and MsiAllocator backed by KVM: a GSI with an MSI route in the
// VM's routing table and an irqfd on it.
#pragma once

#include <memory>

#include "vmm/irq_routing.h"
#include "vmm/msi_vector.h"
#include "vmm/vm.h"

namespace skiff {

class KvmMsiAllocator : public MsiAllocator {
 public:
  // Both must outlive every vector handed out.
  KvmMsiAllocator(Vm* vm, IrqRouting* routing) : vm_(vm), routing_(routing) {}
  absl::StatusOr<std::unique_ptr<MsiVector>> Allocate() override;

 private:
  Vm* vm_;
  IrqRouting* routing_;
};

}  // namespace skiff
