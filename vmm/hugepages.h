// --hugepages[=SIZE]: which hugetlbfs page sizes exist and whether enough
// pages are free, checked before any KVM set-up so the operator gets one
// line saying how many pages to reserve instead of a failed mmap.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace skiff {

inline constexpr uint64_t kDefaultHugepageSize = 2ull << 20;
inline constexpr std::string_view kHugepagesSysfs = "/sys/kernel/mm/hugepages";

// "2M", "1G", "2MiB", "1GiB", "2048K": a power of two of at least 64 KiB
// (x86 has 2M and 1G, ARM64 also 64K and 32M). Errors name --hugepages.
absl::StatusOr<uint64_t> ParseHugepageSize(std::string_view text);

// "2M", "1G": how an operator writes `size`.
std::string FormatPageSize(uint64_t size);

// Fails (ResourceExhausted, one line naming the size and how to reserve
// more) unless `sysfs_root`/hugepages-<KiB>kB/free_hugepages shows at least
// `bytes` worth of free pages of `page_size`; InvalidArgument if the host
// has no such page size.
absl::Status CheckHugepageSupply(uint64_t page_size, uint64_t bytes,
                                 std::string_view sysfs_root = kHugepagesSysfs);

}  // namespace skiff
