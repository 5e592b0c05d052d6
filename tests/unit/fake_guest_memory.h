// Guest RAM for unit tests: zero-filled host buffers behind a real
// GuestMemory, so code under test sees exactly the checks it sees in a VM.
//
//   FakeGuestMemory mem(0x10000);                 // [0, 0x10000)
//   FakeGuestMemory mem(0x4000, 0x100000);        // [0x100000, 0x104000)
//   auto mem = FakeGuestMemory::WithRegions({{0, 0x2000}, {0x3000, 0x1000}});  // a hole
//
// Each region's host buffer has the same offset within a 4 KiB page as its
// guest-physical base, like real page-aligned mappings: naturally aligned
// guest fields are naturally aligned on the host too.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "vmm/guest_memory.h"

namespace skiff {

class FakeGuestMemory {
 public:
  struct RegionSpec {
    uint64_t base;
    uint64_t size;
  };

  explicit FakeGuestMemory(uint64_t size, uint64_t base = 0)
      : FakeGuestMemory(std::vector<RegionSpec>{{base, size}}) {}

  // Several regions (non-empty, non-overlapping); gaps between them are
  // holes, not guest RAM.
  static FakeGuestMemory WithRegions(std::vector<RegionSpec> regions) {
    return FakeGuestMemory(std::move(regions));
  }

  // The buffers move with the object (std::vector keeps its heap block on
  // move), so memory() stays valid; copying would alias, so it is refused.
  FakeGuestMemory(FakeGuestMemory&&) = default;
  FakeGuestMemory& operator=(FakeGuestMemory&&) = default;
  FakeGuestMemory(const FakeGuestMemory&) = delete;
  FakeGuestMemory& operator=(const FakeGuestMemory&) = delete;

  const GuestMemory& memory() const { return memory_; }

  // Host address of `gpa`; aborts (a test bug) when gpa is not guest RAM.
  uint8_t* host(uint64_t gpa) {
    auto span = memory_.GetSpan(gpa, 1);
    if (!span.ok()) {
      std::fprintf(stderr, "FakeGuestMemory::host(0x%llx): not guest RAM\n",
                   static_cast<unsigned long long>(gpa));
      std::abort();
    }
    return span->data();
  }

  // Lowest guest-physical address of any region.
  uint64_t base() const { return memory_.regions().front().gpa; }
  // Total bytes of guest RAM (the single region's size for the plain form).
  uint64_t size() const { return memory_.TotalSize(); }

 private:
  static constexpr uint64_t kPage = 4096;

  explicit FakeGuestMemory(std::vector<RegionSpec> regions) {
    std::vector<GuestMemory::Region> guest_regions;
    buffers_.reserve(regions.size());
    for (const RegionSpec& spec : regions) {
      std::vector<uint8_t>& buffer = buffers_.emplace_back(spec.size + kPage, 0);
      const uint64_t host_misalignment = reinterpret_cast<uintptr_t>(buffer.data()) % kPage;
      const uint64_t skew = (spec.base % kPage + kPage - host_misalignment) % kPage;
      guest_regions.push_back({spec.base, spec.size, buffer.data() + skew});
    }
    auto memory = GuestMemory::Create(std::move(guest_regions));
    if (!memory.ok()) {
      std::fprintf(stderr, "FakeGuestMemory: %s\n", memory.status().ToString().c_str());
      std::abort();
    }
    memory_ = *std::move(memory);
  }

  std::vector<std::vector<uint8_t>> buffers_;
  GuestMemory memory_;
};

}  // namespace skiff
