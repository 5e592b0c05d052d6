// The KVM-VFIO pseudo device (KVM_DEV_TYPE_VFIO): tells KVM which VFIO
// groups the VM uses, so KVM can keep DMA coherent with the guest's cache
// attributes (non-coherent DMA on x86) and tie the groups to the VM.
#pragma once

#include "absl/status/statusor.h"
#include "vmm/unique_fd.h"
#include "vmm/vm.h"

namespace skiff {

class KvmVfioDevice {
 public:
  // KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO) on `vm`.
  static absl::StatusOr<KvmVfioDevice> Create(Vm& vm);
  // KVM_DEV_VFIO_GROUP_ADD.
  absl::Status AddGroup(int group_fd);

 private:
  explicit KvmVfioDevice(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace skiff
