#include "vmm/guest_memory.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace skiff {

absl::StatusOr<GuestMemory> GuestMemory::Create(std::vector<Region> regions) {
  std::sort(regions.begin(), regions.end(),
            [](const Region& a, const Region& b) { return a.gpa < b.gpa; });
  for (size_t i = 0; i < regions.size(); ++i) {
    const Region& r = regions[i];
    uint64_t end;
    if (r.size == 0 || r.host == nullptr ||
        __builtin_add_overflow(r.gpa, r.size, &end)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "guest memory region at 0x%x (size 0x%x) is empty or overflows",
          r.gpa, r.size));
    }
    if (i + 1 < regions.size() && end > regions[i + 1].gpa) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "guest memory regions at 0x%x and 0x%x overlap", r.gpa,
          regions[i + 1].gpa));
    }
  }
  return GuestMemory(std::move(regions));
}

absl::StatusOr<std::span<uint8_t>> GuestMemory::GetSpan(uint64_t gpa,
                                                        uint64_t length) const {
  uint64_t end;
  if (length == 0 || __builtin_add_overflow(gpa, length, &end)) {
    return absl::OutOfRangeError(absl::StrFormat(
        "guest range 0x%x+0x%x is empty or overflows", gpa, length));
  }
  // Last region whose base is <= gpa.
  auto it = std::upper_bound(
      regions_.begin(), regions_.end(), gpa,
      [](uint64_t addr, const Region& r) { return addr < r.gpa; });
  if (it != regions_.begin()) {
    const Region& r = *std::prev(it);
    uint64_t offset = gpa - r.gpa;
    if (offset < r.size && length <= r.size - offset) {
      return std::span<uint8_t>(r.host + offset, length);
    }
  }
  return absl::OutOfRangeError(absl::StrFormat(
      "guest range 0x%x+0x%x is not inside guest RAM", gpa, length));
}

absl::Status GuestMemory::Read(uint64_t gpa, std::span<uint8_t> out) const {
  if (out.empty()) return absl::OkStatus();
  auto span = GetSpan(gpa, out.size());
  if (!span.ok()) return span.status();
  std::memcpy(out.data(), span->data(), out.size());
  return absl::OkStatus();
}

absl::Status GuestMemory::Write(uint64_t gpa,
                                std::span<const uint8_t> in) const {
  if (in.empty()) return absl::OkStatus();
  auto span = GetSpan(gpa, in.size());
  if (!span.ok()) return span.status();
  std::memcpy(span->data(), in.data(), in.size());
  return absl::OkStatus();
}

bool GuestMemory::Contains(uint64_t gpa, uint64_t length) const {
  return GetSpan(gpa, length).ok();
}

uint64_t GuestMemory::TotalSize() const {
  uint64_t total = 0;
  for (const Region& r : regions_) total += r.size;
  return total;
}

}  // namespace skiff
