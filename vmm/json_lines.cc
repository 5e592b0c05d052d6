#include "vmm/json_lines.h"

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <vector>

#include "absl/strings/str_format.h"

namespace skiff {
namespace {

using Json = nlohmann::ordered_json;

// A character iterator that records the furthest point the parser has read:
// nlohmann's SAX callbacks carry no position, but they come right after the
// token they report was read.
class TrackingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  TrackingIterator(const char* at, const char** furthest) : at_(at), furthest_(furthest) {}
  reference operator*() const { return *at_; }
  TrackingIterator& operator++() {
    ++at_;
    *furthest_ = std::max(*furthest_, at_);
    return *this;
  }
  TrackingIterator operator++(int) {
    TrackingIterator before = *this;
    ++*this;
    return before;
  }
  bool operator==(const TrackingIterator& other) const { return at_ == other.at_; }
  bool operator!=(const TrackingIterator& other) const { return at_ != other.at_; }

 private:
  const char* at_;
  const char** furthest_;
};

// Builds the document and the line table.
class LineRecordingSax {
 public:
  LineRecordingSax(std::string_view text, const char** furthest, JsonWithLines* out)
      : text_(text), furthest_(furthest), out_(out) {}

  bool null() { return Add(Json(nullptr)) != nullptr; }
  bool boolean(bool v) { return Add(Json(v)) != nullptr; }
  bool number_integer(Json::number_integer_t v) { return Add(Json(v)) != nullptr; }
  bool number_unsigned(Json::number_unsigned_t v) { return Add(Json(v)) != nullptr; }
  bool number_float(Json::number_float_t v, const std::string&) { return Add(Json(v)) != nullptr; }
  bool string(std::string& v) { return Add(Json(std::move(v))) != nullptr; }
  bool binary(Json::binary_t&) { return Fail("binary values are not JSON"); }

  bool start_object(std::size_t) { return Open(Json::object()); }
  bool start_array(std::size_t) { return Open(Json::array()); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }

  bool key(std::string& key) {
    Frame& frame = stack_.back();
    const int line = CurrentLine();
    const std::string pointer = JsonPointerChild(frame.pointer, key);
    if (frame.value->contains(key)) {
      return Fail(absl::StrFormat("line %d: key '%s' given twice (first on line %d)", line, key,
                                  out_->LineOf(pointer)));
    }
    out_->lines[pointer] = line;
    frame.key = std::move(key);
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    // e.what(): "[json.exception.parse_error.101] parse error at line 2,
    // column 5: syntax error ...". Keep the explanation; say where with our
    // own count, which does not put an error on the next line (column 0)
    // when the parser's look-ahead past a number was a newline.
    std::string_view what = e.what();
    const size_t column = what.find("column ");
    const size_t colon = what.find(": ", column == std::string_view::npos ? 0 : column);
    if (colon != std::string_view::npos) what.remove_prefix(colon + 2);
    size_t at = static_cast<size_t>(*furthest_ - text_.data());
    if (at > 0) --at;  // the last character read
    if (at > 0 && text_[at] == '\n') --at;
    const size_t line_start = at == 0 ? 0 : text_.rfind('\n', at - 1);
    const size_t col = line_start == std::string_view::npos || at == 0 ? at + 1 : at - line_start;
    const int line = 1 + static_cast<int>(std::count(text_.begin(), text_.begin() + at, '\n'));
    error_ = absl::InvalidArgumentError(
        absl::StrFormat("line %d, column %d: %s", line, col, std::string(what)));
    return false;
  }

  const absl::Status& error() const { return error_; }

 private:
  struct Frame {
    Json* value;
    std::string pointer;
    std::string key;  // of the member being read, in an object
  };

  bool Fail(std::string message) {
    error_ = absl::InvalidArgumentError(std::move(message));
    return false;
  }

  // 1-based line of the last character read. Every token's last character
  // is its own (a closing quote, a bracket, a literal's last letter) except
  // a number's, where the parser has read one character ahead: counting
  // newlines before that character gives the token's line in both cases.
  int CurrentLine() {
    const size_t end = static_cast<size_t>(*furthest_ - text_.data());
    const size_t upto = end == 0 ? 0 : end - 1;
    line_ += static_cast<int>(
        std::count(text_.begin() + counted_, text_.begin() + std::max(upto, counted_), '\n'));
    counted_ = std::max(upto, counted_);
    return line_;
  }

  // Puts `value` in its place; returns it, or nullptr when the document is
  // already complete (cannot happen with a strict parser).
  Json* Add(Json value) {
    if (stack_.empty()) {
      out_->value = std::move(value);
      out_->lines[""] = CurrentLine();
      return &out_->value;
    }
    Frame& frame = stack_.back();
    if (frame.value->is_array()) {
      const std::string pointer = absl::StrFormat("%s/%d", frame.pointer, frame.value->size());
      out_->lines[pointer] = CurrentLine();
      frame.value->push_back(std::move(value));
      return &frame.value->back();
    }
    return &((*frame.value)[frame.key] = std::move(value));
  }

  bool Open(Json empty) {
    if (static_cast<int>(stack_.size()) >= kMaxJsonDepth) {
      return Fail(
          absl::StrFormat("line %d: nested deeper than %d levels", CurrentLine(), kMaxJsonDepth));
    }
    std::string pointer;
    if (!stack_.empty()) {
      const Frame& parent = stack_.back();
      pointer = parent.value->is_array()
                    ? absl::StrFormat("%s/%d", parent.pointer, parent.value->size())
                    : JsonPointerChild(parent.pointer, parent.key);
    }
    Json* value = Add(std::move(empty));
    if (value == nullptr) return false;
    stack_.push_back(Frame{value, std::move(pointer), ""});
    return true;
  }

  bool Close() {
    stack_.pop_back();
    return true;
  }

  std::string_view text_;
  const char** furthest_;
  JsonWithLines* out_;
  std::vector<Frame> stack_;
  absl::Status error_;
  size_t counted_ = 0;  // newlines before this offset are in line_
  int line_ = 1;
};

}  // namespace

std::string JsonPointerChild(const std::string& parent, std::string_view key) {
  std::string out = parent + "/";
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

int JsonWithLines::LineOf(const std::string& pointer) const {
  std::string p = pointer;
  while (true) {
    auto it = lines.find(p);
    if (it != lines.end()) return it->second;
    const size_t slash = p.rfind('/');
    if (slash == std::string::npos) return 1;
    p.resize(slash);
  }
}

absl::StatusOr<JsonWithLines> ParseJsonWithLines(std::string_view text) {
  JsonWithLines out;
  const char* furthest = text.data();
  LineRecordingSax sax(text, &furthest, &out);
  const TrackingIterator first(text.data(), &furthest);
  const TrackingIterator last(text.data() + text.size(), &furthest);
  const bool ok = Json::sax_parse(first, last, &sax, nlohmann::detail::input_format_t::json,
                                  /*strict=*/true, /*ignore_comments=*/true);
  if (!ok) {
    return sax.error().ok() ? absl::InvalidArgumentError("not valid JSON") : sax.error();
  }
  return out;
}

}  // namespace skiff
