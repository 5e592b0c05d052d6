#include "devices/virtio/chain_builder.h"

#include "absl/strings/str_format.h"

namespace skiff::virtio {

absl::Status ChainBuilder::AddBuffer(uint64_t addr, uint32_t len, bool writable, uint32_t index,
                                     bool in_indirect) {
  // Device-writable descriptors come after device-readable ones.
  if (!writable && seen_writable_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: %sdescriptor %u is device-readable after a device-writable one",
                        in_indirect ? "indirect " : "", index));
  }
  seen_writable_ |= writable;
  // The spec does not forbid empty buffers. One touches no memory, so it
  // cannot reach outside RAM; it already used a unit of the walk's budget,
  // and dropping it here spares every device an empty-buffer special case.
  if (len == 0) return absl::OkStatus();
  uint64_t end;
  if (__builtin_add_overflow(addr, uint64_t{len}, &end) || !memory_.Contains(addr, len)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: %sdescriptor %u buffer 0x%x+0x%x is not inside guest RAM",
                        in_indirect ? "indirect " : "", index, addr, len));
  }
  std::vector<Buffer>& buffers = writable ? chain_.writable : chain_.readable;
  uint32_t& total = writable ? chain_.writable_bytes : chain_.readable_bytes;
  if (__builtin_add_overflow(total, len, &total)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: chain from head %u has more than 4 GiB of %s buffers", first_,
                        writable ? "device-writable" : "device-readable"));
  }
  buffers.push_back(Buffer{addr, len});
  return absl::OkStatus();
}

}  // namespace skiff::virtio
