#include "vmm/kvm_vfio.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace skiff {

absl::StatusOr<KvmVfioDevice> KvmVfioDevice::Create(Vm& vm) {
  kvm_create_device create{};
  create.type = KVM_DEV_TYPE_VFIO;
  if (::ioctl(vm.fd(), KVM_CREATE_DEVICE, &create) < 0) {
    return absl::InternalError(absl::StrFormat(
        "KVM_CREATE_DEVICE (KVM_DEV_TYPE_VFIO): %s (is the kvm module built with VFIO support?)",
        std::strerror(errno)));
  }
  return KvmVfioDevice(UniqueFd(static_cast<int>(create.fd)));
}

absl::Status KvmVfioDevice::AddGroup(int group_fd) {
  int32_t fd = group_fd;
  kvm_device_attr attr{};
  attr.group = KVM_DEV_VFIO_GROUP;
  attr.attr = KVM_DEV_VFIO_GROUP_ADD;
  attr.addr = reinterpret_cast<uint64_t>(&fd);
  if (::ioctl(fd_.get(), KVM_SET_DEVICE_ATTR, &attr) < 0) {
    return absl::InternalError(absl::StrFormat("KVM_DEV_VFIO_GROUP_ADD: %s", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace skiff
