#include "vmm/hugepages.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "vmm/config.h"

namespace skiff {

absl::StatusOr<uint64_t> ParseHugepageSize(std::string_view text) {
  // ParseSize reads a bare number as MiB (like --memory); a page size
  // without its unit is more likely a mistake.
  if (!text.empty() && absl::ascii_isdigit(static_cast<unsigned char>(text.back()))) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--hugepages %s: give the page size with its unit: 2M or 1G", text));
  }
  absl::StatusOr<uint64_t> size = ParseSize(text);
  if (!size.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--hugepages: ", size.status().message(), " (use 2M or 1G)"));
  }
  if (*size < (64u << 10) || (*size & (*size - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--hugepages %s: a page size is a power of two of at least 64K (use 2M or 1G)", text));
  }
  return *size;
}

std::string FormatPageSize(uint64_t size) {
  if (size % (1ull << 30) == 0) return absl::StrCat(size >> 30, "G");
  if (size % (1ull << 20) == 0) return absl::StrCat(size >> 20, "M");
  return absl::StrCat(size >> 10, "K");
}

absl::Status CheckHugepageSupply(uint64_t page_size, uint64_t bytes, std::string_view sysfs_root) {
  const std::string dir = absl::StrFormat("%s/hugepages-%ukB", sysfs_root, page_size >> 10);
  const std::string size = FormatPageSize(page_size);
  std::ifstream free_file(dir + "/free_hugepages");
  std::string line;
  uint64_t free_pages = 0;
  if (!std::getline(free_file, line)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--hugepages %s: this host has no %s hugepages (no %s)", size, size, dir));
  }
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &free_pages)) {
    return absl::InternalError(
        absl::StrFormat("%s/free_hugepages: '%s' is not a number", dir, line));
  }
  const uint64_t needed = (bytes + page_size - 1) / page_size;
  if (free_pages < needed) {
    // nr_hugepages is the pool's total: grow it by what is missing.
    uint64_t total = 0;
    std::ifstream total_file(dir + "/nr_hugepages");
    if (std::getline(total_file, line)) {
      (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &total);
    }
    return absl::ResourceExhaustedError(absl::StrFormat(
        "--hugepages %s: guest RAM needs %u free %s pages but the host has %u; reserve them "
        "first (as root): echo %u > %s/nr_hugepages",
        size, needed, size, free_pages, total + needed - free_pages, dir));
  }
  return absl::OkStatus();
}

}  // namespace skiff
