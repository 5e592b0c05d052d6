// One message-signalled interrupt as KVM delivers it: a GSI with an MSI
// route and an irqfd on it. Transports (virtio-pci, VFIO) program the
// address/data the guest wrote into the MSI-X table; a write to the irqfd
// then injects the interrupt without a Skiff hop. Tests use a fake.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace skiff {

class MsiVector {
 public:
  virtual ~MsiVector() = default;
  // Points the vector at the guest's MSI message. `devid` is the requester
  // ID (PCI BDF) for interrupt translation (GICv3 ITS); ignored on x86.
  virtual absl::Status SetMessage(uint64_t address, uint32_t data,
                                  std::optional<uint32_t> devid) = 0;
  // Injects the interrupt (writes the irqfd); any thread.
  virtual void Trigger() = 0;
  // The irqfd, for in-kernel signallers (vhost, VFIO).
  virtual int irqfd() const = 0;
};

class MsiAllocator {
 public:
  virtual ~MsiAllocator() = default;
  virtual absl::StatusOr<std::unique_ptr<MsiVector>> Allocate() = 0;
};

}  // namespace skiff
