// The VM's GSI routing table (KVM_SET_GSI_ROUTING).
//
// KVM replaces the whole table on every update, so Skiff keeps the table
// here: the routes the in-kernel irqchip starts with (which must survive
// every update, or legacy interrupts stop) plus one MSI route per
// allocated vector. Vectors are reprogrammed from vCPU threads when the
// guest writes an MSI-X table, so every method is thread-safe.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff {

class IrqRouting {
 public:
  // `base`: the irqchip routes to keep; MSI GSIs are handed out from
  // `first_free_gsi` up to (not including) `gsi_limit`.
  IrqRouting(int vm_fd, std::vector<kvm_irq_routing_entry> base,
             uint32_t first_free_gsi, uint32_t gsi_limit);

  absl::StatusOr<uint32_t> AllocateGsi();
  void FreeGsi(uint32_t gsi);
  // Routes `gsi` to an MSI message; `devid` (the requester ID) is passed
  // with KVM_MSI_VALID_DEVID where the interrupt controller needs it.
  absl::Status SetMsiRoute(uint32_t gsi, uint64_t address, uint32_t data,
                           std::optional<uint32_t> devid);
  // Removes the route (the GSI stays allocated and delivers nothing).
  absl::Status ClearRoute(uint32_t gsi);

  // The table as it would be committed, for tests.
  std::vector<kvm_irq_routing_entry> Table() const;

 private:
  absl::Status CommitLocked();

  int vm_fd_;  // not owned; the Vm outlives the routing table
  std::vector<kvm_irq_routing_entry> base_;
  uint32_t gsi_limit_;
  mutable std::mutex mutex_;
  uint32_t next_gsi_;
  std::vector<uint32_t> free_gsis_;
  std::map<uint32_t, kvm_irq_routing_entry> msi_routes_;
};

}  // namespace skiff
