#include "vmm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_format.h"
#include "vmm/kvm_flex_arrays.h"

namespace skiff {

absl::StatusOr<Kvm> Kvm::Open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    if (err == ENOENT) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s not found: this host has no KVM (enable virtualization in the "
          "firmware and load the KVM modules: kvm-intel or kvm-amd on x86; arm64 "
          "kernels need to boot at EL2)",
          path));
    }
    if (err == EACCES || err == EPERM) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "no permission to open %s (run as root or join the 'kvm' group)",
          path));
    }
    return absl::UnavailableError(
        absl::StrFormat("cannot open %s: %s", path, std::strerror(err)));
  }
  int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s speaks KVM API version %d, Skiff needs %d", path, version,
        KVM_API_VERSION));
  }
  return Kvm(std::move(fd));
}

int Kvm::CheckExtension(int capability) const {
  int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
  return r < 0 ? 0 : r;
}

absl::Status Kvm::Require(std::span<const KvmCapability> capabilities) const {
  for (const KvmCapability& cap : capabilities) {
    if (CheckExtension(cap.id) <= 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "this host's KVM lacks %s, which Skiff needs", cap.name));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Kvm::VcpuMmapSize() const {
  int size = ::ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (size < static_cast<int>(sizeof(kvm_run))) {
    return absl::InternalError(absl::StrFormat(
        "KVM_GET_VCPU_MMAP_SIZE returned %d: %s", size, std::strerror(errno)));
  }
  return static_cast<size_t>(size);
}

#if defined(__x86_64__)
absl::StatusOr<std::vector<kvm_cpuid_entry2>> Kvm::SupportedCpuid() const {
  if (supported_cpuid_) return *supported_cpuid_;
  // The kernel reports E2BIG until the buffer is large enough.
  for (uint32_t capacity = 128; capacity <= 4096; capacity *= 2) {
    using kvm_flex::Cpuid2Header;
    size_t bytes = sizeof(Cpuid2Header) + capacity * sizeof(kvm_cpuid_entry2);
    std::vector<uint64_t> storage((bytes + 7) / 8, 0);
    auto* header = reinterpret_cast<Cpuid2Header*>(storage.data());
    auto* entries = reinterpret_cast<kvm_cpuid_entry2*>(header + 1);
    header->nent = capacity;
    if (::ioctl(fd_.get(), kvm_flex::kGetSupportedCpuid, header) == 0) {
      supported_cpuid_.emplace(entries, entries + header->nent);
      return *supported_cpuid_;
    }
    if (errno != E2BIG) {
      return absl::InternalError(absl::StrFormat(
          "KVM_GET_SUPPORTED_CPUID: %s", std::strerror(errno)));
    }
  }
  return absl::InternalError("KVM_GET_SUPPORTED_CPUID: too many entries");
}
#endif

}  // namespace skiff
