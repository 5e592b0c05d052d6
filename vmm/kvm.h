// The /dev/kvm system handle: API version and capability checks.
#pragma once

#include <linux/kvm.h>

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/unique_fd.h"

namespace skiff {

struct KvmCapability {
  int id;
  const char* name;  // as spelled in linux/kvm.h, for error messages
};
#define SKIFF_KVM_CAP(cap) ::skiff::KvmCapability{cap, #cap}

class Kvm {
 public:
  // Opens the device and checks KVM_GET_API_VERSION.
  static absl::StatusOr<Kvm> Open(const std::string& path = "/dev/kvm");

  int fd() const { return fd_.get(); }
  // KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific value.
  int CheckExtension(int capability) const;
  // Fails naming the first missing capability.
  absl::Status Require(std::span<const KvmCapability> capabilities) const;
  absl::StatusOr<size_t> VcpuMmapSize() const;
#if defined(__x86_64__)
  // KVM_GET_SUPPORTED_CPUID, asked once per handle: the answer never changes
  // and every vCPU's set-up needs it.
  absl::StatusOr<std::vector<kvm_cpuid_entry2>> SupportedCpuid() const;
#endif

 private:
  explicit Kvm(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
#if defined(__x86_64__)
  mutable std::optional<std::vector<kvm_cpuid_entry2>> supported_cpuid_;
#endif
};

}  // namespace skiff
