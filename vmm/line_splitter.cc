#include "vmm/line_splitter.h"

#include <algorithm>

namespace skiff {

void LineSplitter::Feed(std::span<const uint8_t> bytes,
                        const std::function<void(std::string_view line)>& on_line) {
  for (uint8_t b : bytes) {
    if (b == '\n') {
      std::string_view line = line_;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      on_line(line);
      line_.clear();
      continue;
    }
    line_.push_back(static_cast<char>(b));
    if (line_.size() >= std::max<size_t>(max_line_, 1)) {
      on_line(line_);
      line_.clear();
    }
  }
}

}  // namespace skiff
