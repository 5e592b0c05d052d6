// KVM ioeventfds for guest MMIO writes, behind an interface so transports
// stay free of KVM ioctls and tests can fake it.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"

namespace skiff {

class IoEventRegistrar {
 public:
  virtual ~IoEventRegistrar() = default;
  // A guest write of `length` bytes at MMIO address `gpa` (of value
  // `datamatch` only, when given) signals `eventfd` without a VM exit.
  virtual absl::Status AddMmio(int eventfd, uint64_t gpa, uint32_t length,
                               std::optional<uint64_t> datamatch) = 0;
  virtual absl::Status RemoveMmio(int eventfd, uint64_t gpa, uint32_t length,
                                  std::optional<uint64_t> datamatch) = 0;
};

}  // namespace skiff
