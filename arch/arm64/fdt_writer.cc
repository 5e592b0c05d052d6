#include "arch/arm64/fdt_writer.h"

#include <libfdt.h>

#include "absl/strings/str_format.h"

namespace skiff::fdt {

FdtWriter::FdtWriter(size_t capacity) : buffer_(capacity, 0) {
  Check(fdt_create(buffer_.data(), static_cast<int>(buffer_.size())), "fdt_create", "");
  Check(fdt_finish_reservemap(buffer_.data()), "fdt_finish_reservemap", "");
}

void FdtWriter::Check(int result, const char* what, const std::string& name) {
  if (result >= 0 || failed()) return;
  status_ = absl::InternalError(
      absl::StrFormat("device tree: %s '%s': %s", what, name, fdt_strerror(result)));
}

void FdtWriter::BeginNode(const std::string& name) {
  if (failed()) return;
  Check(fdt_begin_node(buffer_.data(), name.c_str()), "begin node", name);
  ++depth_;
}

void FdtWriter::EndNode() {
  if (failed()) return;
  if (depth_ == 0) {
    status_ = absl::InternalError("device tree: EndNode without a node");
    return;
  }
  Check(fdt_end_node(buffer_.data()), "end node", "");
  --depth_;
}

void FdtWriter::Property(const std::string& name, std::span<const uint8_t> value) {
  if (failed()) return;
  Check(fdt_property(buffer_.data(), name.c_str(), value.data(), static_cast<int>(value.size())),
        "property", name);
}

void FdtWriter::PropertyEmpty(const std::string& name) { Property(name, {}); }

void FdtWriter::PropertyString(const std::string& name, const std::string& value) {
  // Includes the terminating NUL, as the format requires.
  Property(name, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(value.c_str()),
                                          value.size() + 1));
}

void FdtWriter::PropertyStrings(const std::string& name,
                                std::span<const std::string> values) {
  std::vector<uint8_t> bytes;
  for (const std::string& v : values) {
    bytes.insert(bytes.end(), v.begin(), v.end());
    bytes.push_back(0);
  }
  Property(name, bytes);
}

void FdtWriter::PropertyU32(const std::string& name, uint32_t value) {
  PropertyCells(name, {value});
}

void FdtWriter::PropertyU64(const std::string& name, uint64_t value) {
  PropertyCells(name, Cells64({value}));
}

void FdtWriter::PropertyCells(const std::string& name, std::span<const uint32_t> cells) {
  std::vector<uint8_t> bytes;
  bytes.reserve(cells.size() * 4);
  for (uint32_t c : cells) {
    bytes.push_back(static_cast<uint8_t>(c >> 24));
    bytes.push_back(static_cast<uint8_t>(c >> 16));
    bytes.push_back(static_cast<uint8_t>(c >> 8));
    bytes.push_back(static_cast<uint8_t>(c));
  }
  Property(name, bytes);
}

void FdtWriter::Raw(const std::function<absl::Status(void* fdt)>& write) {
  if (failed()) return;
  absl::Status status = write(buffer_.data());
  if (!status.ok()) status_ = std::move(status);
}

absl::StatusOr<std::vector<uint8_t>> FdtWriter::Finish() {
  if (failed()) return status_;
  if (finished_) return absl::InternalError("device tree: Finish called twice");
  if (depth_ != 0) {
    return absl::InternalError(absl::StrFormat("device tree: %d node(s) left open", depth_));
  }
  Check(fdt_finish(buffer_.data()), "finish", "");
  if (failed()) return status_;
  finished_ = true;
  buffer_.resize(fdt_totalsize(buffer_.data()));
  return std::move(buffer_);
}

}  // namespace skiff::fdt
