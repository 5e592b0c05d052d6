// Cuts a byte stream that arrives in arbitrary chunks into lines. A line
// ends at '\n' (a '\r' before it is dropped, as terminals send "\r\n"); a
// line longer than the limit is handed out in pieces of the limit, so a
// guest that never sends a newline cannot make the VMM buffer without end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace skiff {

class LineSplitter {
 public:
  static constexpr size_t kDefaultMaxLine = 4096;

  explicit LineSplitter(size_t max_line = kDefaultMaxLine) : max_line_(max_line) {}

  // Calls `on_line` for each line completed by `bytes`, in order. The view
  // is valid only during the call.
  void Feed(std::span<const uint8_t> bytes,
            const std::function<void(std::string_view line)>& on_line);

  // The bytes of the line not yet ended.
  std::string_view partial() const { return line_; }

 private:
  size_t max_line_;
  std::string line_;
};

}  // namespace skiff
