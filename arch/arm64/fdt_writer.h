// Builds a flattened device tree with libfdt's sequential-write API.
//
// The writer owns its buffer; every call appends to the tree in order
// (BeginNode ... properties ... EndNode). The first libfdt error sticks:
// later calls do nothing and Finish() reports it with the node or property
// it happened at, so building code reads as a plain list of nodes without
// a check after every line. Cell values are given in host order and stored
// big-endian, as the format requires.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::fdt {

class FdtWriter {
 public:
  // `capacity`: the most bytes the finished tree may take.
  explicit FdtWriter(size_t capacity);

  void BeginNode(const std::string& name);
  void EndNode();

  void Property(const std::string& name, std::span<const uint8_t> value);
  void PropertyEmpty(const std::string& name);  // a boolean property
  void PropertyString(const std::string& name, const std::string& value);
  // A string list ("a\0b\0"), e.g. compatible = "arm,pl031", "arm,primecell".
  void PropertyStrings(const std::string& name, std::span<const std::string> values);
  void PropertyStrings(const std::string& name, std::initializer_list<std::string> values) {
    PropertyStrings(name, std::span<const std::string>(values.begin(), values.size()));
  }
  void PropertyU32(const std::string& name, uint32_t value);
  void PropertyU64(const std::string& name, uint64_t value);
  void PropertyCells(const std::string& name, std::span<const uint32_t> cells);
  void PropertyCells(const std::string& name, std::initializer_list<uint32_t> cells) {
    PropertyCells(name, std::span<const uint32_t>(cells.begin(), cells.size()));
  }

  // Hands the tree under construction to code that writes its own nodes
  // with libfdt's sequential-write calls (a node kept beside the device it
  // describes, e.g. devices/vfio/fsl_mc/fsl_mc_fdt.h); it must leave as
  // many nodes open as it found. Its error sticks like any other.
  void Raw(const std::function<absl::Status(void* fdt)>& write);

  // Closes the tree and returns it, trimmed to its size; or the first error.
  absl::StatusOr<std::vector<uint8_t>> Finish();

 private:
  void Check(int result, const char* what, const std::string& name);
  bool failed() const { return !status_.ok(); }

  std::vector<uint8_t> buffer_;
  absl::Status status_;
  int depth_ = 0;
  bool finished_ = false;
};

// The cells of a 64-bit value as two 32-bit cells (high first), for reg
// and ranges with #address-cells / #size-cells = 2.
inline std::vector<uint32_t> Cells64(std::initializer_list<uint64_t> values) {
  std::vector<uint32_t> cells;
  for (uint64_t v : values) {
    cells.push_back(static_cast<uint32_t>(v >> 32));
    cells.push_back(static_cast<uint32_t>(v));
  }
  return cells;
}

}  // namespace skiff::fdt
