#include "vmm/irq_routing.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/kvm_flex_arrays.h"

namespace skiff {

IrqRouting::IrqRouting(int vm_fd, std::vector<kvm_irq_routing_entry> base,
                       uint32_t first_free_gsi, uint32_t gsi_limit)
    : vm_fd_(vm_fd), base_(std::move(base)), gsi_limit_(gsi_limit), next_gsi_(first_free_gsi) {}

absl::StatusOr<uint32_t> IrqRouting::AllocateGsi() {
  std::lock_guard lock(mutex_);
  if (!free_gsis_.empty()) {
    uint32_t gsi = free_gsis_.back();
    free_gsis_.pop_back();
    return gsi;
  }
  if (next_gsi_ >= gsi_limit_) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("out of interrupt routes (KVM allows %u GSIs)", gsi_limit_));
  }
  return next_gsi_++;
}

void IrqRouting::FreeGsi(uint32_t gsi) {
  std::lock_guard lock(mutex_);
  if (msi_routes_.erase(gsi) > 0) (void)CommitLocked();
  free_gsis_.push_back(gsi);
}

absl::Status IrqRouting::SetMsiRoute(uint32_t gsi, uint64_t address, uint32_t data,
                                     std::optional<uint32_t> devid) {
  kvm_irq_routing_entry entry{};
  entry.gsi = gsi;
  entry.type = KVM_IRQ_ROUTING_MSI;
  entry.u.msi.address_lo = static_cast<uint32_t>(address);
  entry.u.msi.address_hi = static_cast<uint32_t>(address >> 32);
  entry.u.msi.data = data;
  if (devid) {
    entry.flags = KVM_MSI_VALID_DEVID;
    entry.u.msi.devid = *devid;
  }
  std::lock_guard lock(mutex_);
  auto it = msi_routes_.find(gsi);
  if (it != msi_routes_.end() && std::memcmp(&it->second, &entry, sizeof(entry)) == 0) {
    return absl::OkStatus();  // the guest rewrote the same message
  }
  // KVM takes the whole table or none of it: a route it refuses must not
  // stay in ours, or every later commit would carry it and fail too.
  std::optional<kvm_irq_routing_entry> previous;
  if (it != msi_routes_.end()) previous = it->second;
  msi_routes_[gsi] = entry;
  absl::Status status = CommitLocked();
  if (!status.ok()) {
    if (previous) {
      msi_routes_[gsi] = *previous;
    } else {
      msi_routes_.erase(gsi);
    }
  }
  return status;
}

absl::Status IrqRouting::ClearRoute(uint32_t gsi) {
  std::lock_guard lock(mutex_);
  auto it = msi_routes_.find(gsi);
  if (it == msi_routes_.end()) return absl::OkStatus();
  const kvm_irq_routing_entry removed = it->second;
  msi_routes_.erase(it);
  absl::Status status = CommitLocked();
  if (!status.ok()) msi_routes_[gsi] = removed;  // KVM still has it
  return status;
}

std::vector<kvm_irq_routing_entry> IrqRouting::Table() const {
  std::lock_guard lock(mutex_);
  std::vector<kvm_irq_routing_entry> table = base_;
  for (const auto& [gsi, entry] : msi_routes_) table.push_back(entry);
  return table;
}

absl::Status IrqRouting::CommitLocked() {
  std::vector<kvm_irq_routing_entry> entries = base_;
  for (const auto& [gsi, entry] : msi_routes_) entries.push_back(entry);
  // The header and the entries laid out as the C struct kvm_irq_routing.
  using kvm_flex::IrqRoutingHeader;
  std::vector<uint64_t> storage(
      (sizeof(IrqRoutingHeader) + entries.size() * sizeof(kvm_irq_routing_entry) + 7) / 8, 0);
  auto* header = reinterpret_cast<IrqRoutingHeader*>(storage.data());
  header->nr = static_cast<uint32_t>(entries.size());
  // (An empty table has a null data(): memcpy from null is UB even for 0 bytes.)
  if (!entries.empty()) {
    std::memcpy(header + 1, entries.data(), entries.size() * sizeof(kvm_irq_routing_entry));
  }
  if (vm_fd_ < 0) return absl::OkStatus();  // unit tests: no VM
  if (::ioctl(vm_fd_, kvm_flex::kSetGsiRouting, header) < 0) {
    return absl::InternalError(
        absl::StrFormat("KVM_SET_GSI_ROUTING (%zu routes): %s", entries.size(),
                        std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace skiff
