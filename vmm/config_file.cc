#include "vmm/config_file.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "vmm/json_lines.h"
#include "vmm/status_macros.h"

namespace skiff {
namespace {

using Json = nlohmann::ordered_json;

// Where a value sits, for messages: "line 7: key 'disk', item 2".
struct Place {
  int line;
  std::string what;
};

// The path=/file= items of a "k=v,k=v" value, and a rom= that names a
// file (--device vfio=...,rom=FILE), resolved against `base_dir`.
std::string ResolveKeyValuePaths(const std::string& base_dir, const std::string& text) {
  std::vector<std::string> items = absl::StrSplit(text, ',');
  for (std::string& item : items) {
    for (const std::string key : {"path=", "file=", "rom="}) {
      if (!absl::StartsWith(item, key)) continue;
      const std::string value = item.substr(key.size());
      if (key == "rom=" && (value.empty() || value == "on" || value == "off" || value == "yes" ||
                            value == "no" || value == "true" || value == "false")) {
        continue;
      }
      item = key + ResolvePath(base_dir, value);
    }
  }
  return absl::StrJoin(items, ",");
}

// Reads one file: carries its name and line table for error messages.
class Translator {
 public:
  Translator(const std::string& file_name, const std::string& base_dir, const JsonWithLines& doc)
      : file_name_(file_name), base_dir_(base_dir), doc_(doc) {}

  absl::Status Error(const Place& place, std::string_view message) const {
    return absl::InvalidArgumentError(absl::StrFormat("--config %s: line %d: %s: %s", file_name_,
                                                      place.line, place.what, message));
  }

  absl::Status TypeError(const Place& place, const Json& value, std::string_view wanted) const {
    return Error(place, absl::StrFormat("must be %s, not %s", wanted,
                                        value.is_number_float() ? "a fraction" : TypeName(value)));
  }

  static std::string TypeName(const Json& value) {
    if (value.is_null()) return "null";
    if (value.is_boolean()) return "a boolean";
    if (value.is_number()) return "a number";
    if (value.is_string()) return "a string";
    if (value.is_array()) return "an array";
    return "an object";
  }

  absl::Status AddOption(const OptionSpec& spec, const Json& value, const std::string& pointer,
                         std::vector<std::string>& args) const {
    const Place place{doc_.LineOf(pointer), absl::StrFormat("key '%s'", spec.name)};
    switch (spec.kind) {
      case OptionSpec::Kind::kFlag:
        if (!value.is_boolean()) return TypeError(place, value, "true or false");
        // false is the default of every flag and the file comes first, so
        // it needs no argument; and code reading a flag with count() rather
        // than as<bool>() cannot take "--flag=false" for "--flag".
        if (value.get<bool>()) args.push_back(absl::StrCat("--", spec.name));
        return absl::OkStatus();
      case OptionSpec::Kind::kValue: {
        if (spec.implicit_value) {
          // Attached ("--name=value"): cxxopts takes a separate word after an
          // option whose value is optional for a stray argument.
          if (value.is_boolean()) {
            if (value.get<bool>()) {
              args.push_back(absl::StrCat("--", spec.name, "=", *spec.implicit_value));
            }
            return absl::OkStatus();
          }
          ASSIGN_OR_RETURN(std::string text, ValueText(spec, value, place));
          args.push_back(absl::StrCat("--", spec.name, "=", text));
          return absl::OkStatus();
        }
        ASSIGN_OR_RETURN(std::string text, ValueText(spec, value, place));
        AppendArgs(spec.name, text, args);
        return absl::OkStatus();
      }
      case OptionSpec::Kind::kList: {
        if (!value.is_array()) {
          return TypeError(
              place, value,
              absl::StrCat("an array (--", spec.name, " is repeatable), e.g. [\"...\"]"));
        }
        for (size_t i = 0; i < value.size(); ++i) {
          const std::string item_pointer = absl::StrFormat("%s/%d", pointer, i);
          const Place item{doc_.LineOf(item_pointer),
                           absl::StrFormat("key '%s', item %d", spec.name, i + 1)};
          ASSIGN_OR_RETURN(std::string text, ValueText(spec, value[i], item));
          AppendArgs(spec.name, text, args);
        }
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }

 private:
  // One occurrence's value as it would be typed.
  absl::StatusOr<std::string> ValueText(const OptionSpec& spec, const Json& value,
                                        const Place& place) const {
    const bool key_values = spec.value == OptionSpec::Value::kKeyValues;
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
      if (text.find('\0') != std::string::npos) return Error(place, "contains a NUL character");
    } else if (value.is_number_integer()) {
      text = value.dump();
    } else if (value.is_object() && key_values) {
      ASSIGN_OR_RETURN(text, JoinKeyValues(value, place));
    } else {
      return TypeError(place, value,
                       key_values ? "a \"key=value,...\" string or an object of them"
                                  : "a string or an integer");
    }
    if (spec.value == OptionSpec::Value::kPath) return ResolvePath(base_dir_, text);
    if (key_values) return ResolveKeyValuePaths(base_dir_, text);
    return text;
  }

  // {"path": "d.img", "readonly": true} -> "path=d.img,readonly=on".
  absl::StatusOr<std::string> JoinKeyValues(const Json& object, const Place& place) const {
    std::vector<std::string> items;
    for (const auto& [key, value] : object.items()) {
      const Place member{place.line, absl::StrFormat("%s, member '%s'", place.what, key)};
      if (key.empty() || key.find_first_of("=,") != std::string::npos) {
        return Error(member, "a sub-option name cannot be empty or contain '=' or ','");
      }
      std::string text;
      if (value.is_string()) {
        text = value.get<std::string>();
        if (text.find_first_of(std::string_view(",\0", 2)) != std::string::npos) {
          return Error(member, "a sub-option value cannot contain ',' or a NUL character");
        }
      } else if (value.is_boolean()) {
        text = value.get<bool>() ? "on" : "off";
      } else if (value.is_number_integer()) {
        text = value.dump();
      } else {
        return TypeError(member, value, "a string, a boolean or an integer");
      }
      items.push_back(absl::StrCat(key, "=", text));
    }
    return absl::StrJoin(items, ",");
  }

  static void AppendArgs(const std::string& name, const std::string& value,
                         std::vector<std::string>& args) {
    // "--name value" keeps long values away from cxxopts' regex (see
    // SplitLongOptions in vmm/cli.cc); a value that is empty or looks like
    // an option must stay attached.
    if (value.empty() || value[0] == '-') {
      args.push_back(absl::StrCat("--", name, "=", value));
    } else {
      args.push_back(absl::StrCat("--", name));
      args.push_back(value);
    }
  }

  const std::string& file_name_;
  const std::string& base_dir_;
  const JsonWithLines& doc_;
};

// A dumped SPEC value: an object when it is a plain list of distinct
// "k=v" items, else the string.
Json KeyValuesToJson(const std::string& text) {
  Json object = Json::object();
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    const size_t equals = item.find('=');
    if (equals == 0 || equals == absl::string_view::npos) return text;
    const std::string key(item.substr(0, equals));
    const std::string value(item.substr(equals + 1));
    if (value.empty() || object.contains(key)) return text;
    if (value == "on") {
      object[key] = true;
    } else if (value == "off") {
      object[key] = false;
    } else {
      object[key] = value;
    }
  }
  return object;
}

bool IsPlainInteger(const std::string& text) {
  if (text.empty() || text.size() > 18) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

Json DumpValue(const OptionSpec& spec, const std::string& value, const std::string& cwd) {
  switch (spec.value) {
    case OptionSpec::Value::kPath:
      return ResolvePath(cwd, value);
    case OptionSpec::Value::kKeyValues:
      return KeyValuesToJson(ResolveKeyValuePaths(cwd, value));
    case OptionSpec::Value::kText:
      break;
  }
  if (spec.integer && IsPlainInteger(value)) return std::stoull(value);
  return value;
}

}  // namespace

std::string ResolvePath(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  if (base_dir.back() == '/') return base_dir + path;
  return absl::StrCat(base_dir, "/", path);
}

absl::StatusOr<std::vector<std::string>> ConfigFileToArgs(std::string_view text,
                                                          const std::string& file_name,
                                                          const std::string& base_dir,
                                                          const std::vector<OptionSpec>& options,
                                                          std::map<std::string, int>* key_lines) {
  absl::StatusOr<JsonWithLines> doc = ParseJsonWithLines(text);
  if (!doc.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--config %s: %s", file_name, doc.status().message()));
  }
  if (!doc->value.is_object()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--config %s: line %d: the file must hold a JSON object of skiff run options, not %s",
        file_name, doc->LineOf(""), Translator::TypeName(doc->value)));
  }
  Translator translator(file_name, base_dir, *doc);
  std::vector<std::string> args;
  for (const auto& [key, value] : doc->value.items()) {
    const std::string pointer = JsonPointerChild("", key);
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& s : options) {
      if (s.name == key) spec = &s;
    }
    if (spec == nullptr) {
      return translator.Error({doc->LineOf(pointer), absl::StrFormat("unknown key '%s'", key)},
                              "not a skiff run option (see skiff run --help)");
    }
    RETURN_IF_ERROR(translator.AddOption(*spec, value, pointer, args));
    if (key_lines != nullptr) (*key_lines)[key] = doc->LineOf(pointer);
  }
  return args;
}

std::string DumpConfig(const std::vector<OptionValues>& options, const std::string& cwd) {
  Json root = Json::object();
  for (const OptionValues& option : options) {
    const OptionSpec& spec = *option.spec;
    if (option.values.empty()) continue;
    switch (spec.kind) {
      case OptionSpec::Kind::kFlag:
        root[spec.name] = option.values.back() == "true";
        break;
      case OptionSpec::Kind::kValue:
        root[spec.name] = DumpValue(spec, option.values.back(), cwd);
        break;
      case OptionSpec::Kind::kList: {
        Json list = Json::array();
        for (const std::string& value : option.values) list.push_back(DumpValue(spec, value, cwd));
        root[spec.name] = std::move(list);
        break;
      }
    }
  }
  // Bytes that are not UTF-8 (a --cmdline can hold any) cannot be JSON text.
  return root.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace skiff
