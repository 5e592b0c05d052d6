// The KVM-VFIO pseudo device (KVM_DEV_TYPE_VFIO): tells KVM which VFIO
// groups the VM uses, so KVM can keep DMA coherent with the guest's cache
// attributes (non-coherent DMA on x86) and tie the groups to the VM.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "vmm/unique_fd.h"
#include "vmm/vm.h"

namespace skiff {

class KvmVfioDevice {
 public:
  // KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO) on `vm`.
  static absl::StatusOr<KvmVfioDevice> Create(Vm& vm);
  KvmVfioDevice(KvmVfioDevice&&) = default;
  KvmVfioDevice& operator=(KvmVfioDevice&&) = default;
  // Deletes the groups still added.
  ~KvmVfioDevice();

  // KVM_DEV_VFIO_GROUP_ADD. KVM holds its own reference to the group from
  // now on; keep `group_fd` open until DeleteGroups.
  absl::Status AddGroup(int group_fd);
  // KVM_DEV_VFIO_GROUP_DEL for every group added, so that closing a group
  // fd afterwards really releases the group (detaches it from its
  // container) then and there. Without it KVM keeps the groups until the
  // VM itself is destroyed, and the release happens inside that, after
  // guest RAM is gone.
  void DeleteGroups();

 private:
  explicit KvmVfioDevice(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::vector<int> groups_;
};

}  // namespace skiff
