// Loads and stores of ring fields in guest memory, shared by the split and
// packed rings. The driver (another CPU) writes what we read and reads what
// we write, so every guest field is accessed exactly once, through
// std::atomic_ref (naturally aligned fields) or volatile byte copies, and
// the caller validates the local copy.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "vmm/guest_memory.h"
#include "vmm/status_macros.h"

namespace skiff::virtio::ring {

// Virtio 1.x rings are little-endian; so are both hosts Skiff supports, and
// the rings rely on it instead of byte-swapping every field.
static_assert(std::endian::native == std::endian::little);

// A host pointer to the naturally aligned T at `gpa`, or an error. Rings
// are aligned in guest-physical terms (checked at Create) and guest RAM is
// mapped page-aligned, so the host check only fails if that invariant of
// GuestMemory is broken; atomic_ref must not be used on a misaligned object.
template <typename T>
absl::StatusOr<T*> AlignedField(const GuestMemory& memory, uint64_t gpa, const char* what) {
  ASSIGN_OR_RETURN(std::span<uint8_t> span, memory.GetSpan(gpa, sizeof(T)));
  if (reinterpret_cast<uintptr_t>(span.data()) % alignof(T) != 0) {
    return absl::InternalError(
        absl::StrFormat("virtqueue: %s at 0x%x is misaligned in host memory", what, gpa));
  }
  return reinterpret_cast<T*>(span.data());
}

template <typename T>
absl::StatusOr<T> LoadOnce(const GuestMemory& memory, uint64_t gpa, std::memory_order order,
                           const char* what) {
  ASSIGN_OR_RETURN(T * field, AlignedField<T>(memory, gpa, what));
  return std::atomic_ref<T>(*field).load(order);
}

template <typename T>
absl::Status StoreOnce(const GuestMemory& memory, uint64_t gpa, T value, std::memory_order order,
                       const char* what) {
  ASSIGN_OR_RETURN(T * field, AlignedField<T>(memory, gpa, what));
  std::atomic_ref<T>(*field).store(value, order);
  return absl::OkStatus();
}

// Copies `out.size()` bytes with volatile byte loads: each byte is read
// exactly once whatever the source's alignment (indirect tables need not be
// aligned), and everything after works on the copy.
inline void CopyOnce(const uint8_t* source, std::span<uint8_t> out) {
  const volatile uint8_t* guest = source;
  for (size_t i = 0; i < out.size(); ++i) out[i] = guest[i];
}

// A ring area the driver programmed: `align`-aligned and wholly in RAM.
inline absl::Status CheckArea(const GuestMemory& memory, const char* name, uint64_t gpa,
                              uint64_t bytes, uint64_t align) {
  if (gpa % align != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: %s at 0x%x is not %u-byte aligned", name, gpa, align));
  }
  auto span = memory.GetSpan(gpa, bytes);
  if (!span.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: %s 0x%x+0x%x is not inside guest RAM", name, gpa, bytes));
  }
  if (reinterpret_cast<uintptr_t>(span->data()) % align != 0) {
    return absl::InternalError(
        absl::StrFormat("virtqueue: %s at 0x%x is misaligned in host memory", name, gpa));
  }
  return absl::OkStatus();
}

}  // namespace skiff::virtio::ring
