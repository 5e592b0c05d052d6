#include "vmm/kvm_vfio.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/log.h"

namespace skiff {
namespace {

int GroupAttr(int device_fd, uint64_t which, int group_fd) {
  int32_t fd = group_fd;
  kvm_device_attr attr{};
  attr.group = KVM_DEV_VFIO_GROUP;
  attr.attr = which;
  attr.addr = reinterpret_cast<uint64_t>(&fd);
  return ::ioctl(device_fd, KVM_SET_DEVICE_ATTR, &attr);
}

}  // namespace

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

KvmVfioDevice::~KvmVfioDevice() { DeleteGroups(); }

absl::Status KvmVfioDevice::AddGroup(int group_fd) {
  if (GroupAttr(fd_.get(), KVM_DEV_VFIO_GROUP_ADD, group_fd) < 0) {
    return absl::InternalError(absl::StrFormat("KVM_DEV_VFIO_GROUP_ADD: %s", std::strerror(errno)));
  }
  groups_.push_back(group_fd);
  return absl::OkStatus();
}

void KvmVfioDevice::DeleteGroups() {
  for (int group_fd : groups_) {
    if (GroupAttr(fd_.get(), KVM_DEV_VFIO_GROUP_DEL, group_fd) < 0) {
      LOG_WARN("vfio", "KVM_DEV_VFIO_GROUP_DEL: %s", std::strerror(errno));
    }
  }
  groups_.clear();
}

}  // namespace skiff
