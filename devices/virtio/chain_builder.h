// Adds one descriptor's buffer to a DescriptorChain under the rules both
// ring layouts share (virtio 1.2 §2.7.4.2, §2.8.13): device-readable
// buffers precede device-writable ones, every buffer lies in guest RAM with
// no address overflow, each direction totals under 4 GiB, and zero-length
// buffers are legal but dropped, so a chain's buffers are never empty.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "devices/virtio/descriptor_chain.h"
#include "vmm/guest_memory.h"

namespace skiff::virtio {

class ChainBuilder {
 public:
  // `first` (the chain's first descriptor: split head index, packed ring
  // position) only names the chain in errors.
  ChainBuilder(const GuestMemory& memory, DescriptorChain& chain, uint32_t first)
      : memory_(memory), chain_(chain), first_(first) {}

  // `index` and `in_indirect` only name the descriptor in errors.
  absl::Status AddBuffer(uint64_t addr, uint32_t len, bool writable, uint32_t index,
                         bool in_indirect);

 private:
  const GuestMemory& memory_;
  DescriptorChain& chain_;
  const uint32_t first_;
  bool seen_writable_ = false;
};

}  // namespace skiff::virtio
