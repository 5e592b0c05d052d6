// Reading a DTB back with libfdt in tests.
#pragma once

#include <libfdt.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace skiff::testing {

// The property's raw bytes, or nullopt when the node or property is missing.
inline std::optional<std::vector<uint8_t>> FdtProp(const std::vector<uint8_t>& blob,
                                                   const std::string& path,
                                                   const std::string& name) {
  int node = fdt_path_offset(blob.data(), path.c_str());
  if (node < 0) return std::nullopt;
  int len = 0;
  const void* value = fdt_getprop(blob.data(), node, name.c_str(), &len);
  if (value == nullptr) return std::nullopt;
  const auto* bytes = static_cast<const uint8_t*>(value);
  return std::vector<uint8_t>(bytes, bytes + len);
}

inline bool FdtHasNode(const std::vector<uint8_t>& blob, const std::string& path) {
  return fdt_path_offset(blob.data(), path.c_str()) >= 0;
}

// Big-endian cells; empty when missing.
inline std::vector<uint32_t> FdtCells(const std::vector<uint8_t>& blob, const std::string& path,
                                      const std::string& name) {
  std::vector<uint32_t> cells;
  auto bytes = FdtProp(blob, path, name);
  if (!bytes) return cells;
  for (size_t i = 0; i + 4 <= bytes->size(); i += 4) {
    cells.push_back(uint32_t{(*bytes)[i]} << 24 | uint32_t{(*bytes)[i + 1]} << 16 |
                    uint32_t{(*bytes)[i + 2]} << 8 | (*bytes)[i + 3]);
  }
  return cells;
}

// A string list property as strings; empty when missing.
inline std::vector<std::string> FdtStrings(const std::vector<uint8_t>& blob,
                                           const std::string& path, const std::string& name) {
  std::vector<std::string> out;
  auto bytes = FdtProp(blob, path, name);
  if (!bytes) return out;
  std::string current;
  for (uint8_t b : *bytes) {
    if (b == 0) {
      out.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(b));
    }
  }
  return out;
}

inline std::string FdtString(const std::vector<uint8_t>& blob, const std::string& path,
                             const std::string& name) {
  auto strings = FdtStrings(blob, path, name);
  return strings.empty() ? "<missing>" : strings[0];
}

}  // namespace skiff::testing
