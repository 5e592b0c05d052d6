// JSON parsed with the line of every value remembered, so errors about a
// configuration file can say where the offending key is ("line 7: unknown
// key 'dsik'"). nlohmann::json parses; its SAX interface lets us build the
// document ourselves and note, at each key and array element, how far the
// parser had read.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace skiff {

struct JsonWithLines {
  nlohmann::ordered_json value;
  // JSON Pointer (RFC 6901, "/disk/1") -> 1-based line: of the key for an
  // object member, of the value's first character for an array element.
  std::map<std::string, int> lines;

  // The line recorded for `pointer`, else for its nearest recorded parent,
  // else 1.
  int LineOf(const std::string& pointer) const;
};

// The limit on nesting depth: a configuration needs 3 levels.
inline constexpr int kMaxJsonDepth = 32;

// Parses `text`; comments (// and /* */) are allowed. Errors (an
// InvalidArgument status) read "line L, column C: <what>". A key given twice
// in one object is an error too: silently keeping one of them would hide a
// mistake.
absl::StatusOr<JsonWithLines> ParseJsonWithLines(std::string_view text);

// "/" + key with '~' and '/' escaped, per RFC 6901.
std::string JsonPointerChild(const std::string& parent, std::string_view key);

}  // namespace skiff
