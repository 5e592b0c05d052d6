// The only way Skiff code touches guest RAM.
//
// GuestMemory is a non-owning view of one or more guest-physical regions.
// Every access names a guest-physical address (gpa) and a length, and is
// checked — with overflow-safe arithmetic — to lie entirely inside one region
// before any host pointer is formed. Guest values are hostile: callers get
// an error, never a crash or an out-of-bounds host access.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace skiff {

class GuestMemory {
 public:
  struct Region {
    uint64_t gpa;    // guest-physical base
    uint64_t size;   // bytes
    uint8_t* host;   // host address of gpa
  };

  GuestMemory() = default;
  // Regions must be non-empty, must not overflow and must not overlap.
  static absl::StatusOr<GuestMemory> Create(std::vector<Region> regions);

  // A host view of [gpa, gpa+length) if the whole range lies in one region.
  absl::StatusOr<std::span<uint8_t>> GetSpan(uint64_t gpa,
                                             uint64_t length) const;
  absl::Status Read(uint64_t gpa, std::span<uint8_t> out) const;
  absl::Status Write(uint64_t gpa, std::span<const uint8_t> in) const;
  // True when [gpa, gpa+length) is guest RAM (length 0 is never valid).
  bool Contains(uint64_t gpa, uint64_t length) const;

  template <typename T>
  absl::StatusOr<T> ReadObj(uint64_t gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    absl::Status status =
        Read(gpa, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&value),
                                     sizeof(T)));
    if (!status.ok()) return status;
    return value;
  }
  template <typename T>
  absl::Status WriteObj(uint64_t gpa, const T& value) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return Write(gpa, std::span<const uint8_t>(
                          reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }

  const std::vector<Region>& regions() const { return regions_; }
  // Total bytes of guest RAM over all regions.
  uint64_t TotalSize() const;

 private:
  explicit GuestMemory(std::vector<Region> regions)
      : regions_(std::move(regions)) {}
  std::vector<Region> regions_;  // sorted by gpa
};

}  // namespace skiff
