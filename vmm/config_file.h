// `skiff run --config FILE` and `--dump-config` (docs/config.md).
//
// A configuration file is a JSON object whose keys are `skiff run`'s long
// option names. It is not a second parser: the file is translated into the
// argument list it stands for, which goes through the command-line parser
// ahead of the real arguments. So every option the command line has is a
// config key, with the same checks and messages, without a list to keep in
// step, and the command line wins where an option takes one value.
//
// What each option accepts comes from its definition (OptionSpec, derived
// from the cxxopts table in vmm/cli.cc):
//   flag       true or false
//   value      a string or an integer
//   list       an array of values (a repeatable option; each item is one
//              occurrence)
//   SPEC value a "k=v,k=v" string or an object {"k": v} (booleans -> on/off)
//   FILE/PATH  relative paths resolve against the config file's directory
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff {

// One `skiff run` option, as the config file and the dump see it.
struct OptionSpec {
  enum class Kind { kFlag, kValue, kList };
  enum class Value {
    kText,
    kPath,       // a file name: resolved against the config file's directory
    kKeyValues,  // "k=v,k=v": may be an object; its path=/file= items are paths
  };
  std::string name;  // the long option name, without "--"
  Kind kind = Kind::kValue;
  Value value = Value::kText;
  std::optional<std::string> default_value;  // as it would be typed
  bool integer = false;  // a count (help "N"): dumped as a JSON number when it is one
  // A value option whose value may be left out ("--hugepages" means
  // "--hugepages=2M"): the config file may then say true (that value) or
  // false (the option not given).
  std::optional<std::string> implicit_value;
};

// The `--config` file `file_name` with contents `text`, as command-line
// arguments ("--name=value" or "--name" "value"), in the file's order.
// Relative paths are made absolute against `base_dir`. Errors are
// InvalidArgument and read "--config FILE: line L: ..." naming the key.
// `key_lines`, if given, gets each key's line, for messages about values
// that only the option's own parser refuses.
absl::StatusOr<std::vector<std::string>> ConfigFileToArgs(
    std::string_view text, const std::string& file_name, const std::string& base_dir,
    const std::vector<OptionSpec>& options, std::map<std::string, int>* key_lines = nullptr);

// An option's effective values: a flag has one, "true" or "false"; a value
// option has none (unset) or one; a list has one per occurrence, in order.
struct OptionValues {
  const OptionSpec* spec;
  std::vector<std::string> values;
};

// The effective configuration as a config file (pretty-printed JSON and a
// newline) that gives the same run when read back from any directory:
// relative paths are made absolute against `cwd`; SPEC values become
// objects when they are plain "k=v" lists. Options with no value are left
// out.
std::string DumpConfig(const std::vector<OptionValues>& options, const std::string& cwd);

// `path` if absolute (or empty), else `base_dir`/`path`.
std::string ResolvePath(const std::string& base_dir, const std::string& path);

}  // namespace skiff
